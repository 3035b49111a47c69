"""Launch commands: each flag's value by hand from the plan, and every flag in the runtime's own CLI."""

from __future__ import annotations

import ast
import json
import re
import shlex

import pytest

from core.__main__ import main
from core.catalog import CatalogError, load_catalog
from core.estimate import MemoryRequest, PlanningError, estimate
from core.fit import fit
from core.launch import LaunchCommand, launch_command, launch_refusal, launch_repos
from core.runtimes import refusal

CATALOG = load_catalog()

# The runtimes' documented options, transcribed from their argument parsers (docs/launch.md has
# the files and commits). A flag the code writes that is not here is a typo or an invention.
# vLLM: vllm/engine/arg_utils.py EngineArgs (fields become --kebab-case flags; bools also get
# --no-...), vllm/config/scheduler.py (async_scheduling, disable_hybrid_kv_cache_manager),
# vllm/config/multimodal.py (language_model_only, limit_per_prompt as --limit-mm-per-prompt).
VLLM_FLAGS = {
    "--max-model-len", "--max-num-seqs", "--tensor-parallel-size", "--gpu-memory-utilization",
    "--max-num-batched-tokens", "--block-size", "--kv-cache-memory-bytes", "--async-scheduling",
    "--no-async-scheduling", "--disable-hybrid-kv-cache-manager", "--kv-cache-dtype", "--dtype",
    "--quantization", "--cpu-offload-gb", "--language-model-only", "--limit-mm-per-prompt",
}
# llama-server: common/arg.cpp (common_arg option names) and tools/server/README.md.
LLAMA_SERVER_FLAGS = {
    "-hf", "-hfr", "--hf-repo", "-c", "--ctx-size", "-np", "--parallel", "-kvu", "--kv-unified",
    "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "-fa", "--flash-attn", "-ub", "--ubatch-size",
    "--swa-full", "-fit", "--fit", "-fitt", "--fit-target", "-ngl", "--gpu-layers", "--n-gpu-layers",
    "-ncmoe", "--n-cpu-moe", "-cmoe", "--cpu-moe", "--no-mmproj",
}
# Ollama: envconfig/config.go (AsMap) and the `ollama run MODEL` / `ollama serve` commands.
OLLAMA_VARIABLES = {"OLLAMA_CONTEXT_LENGTH", "OLLAMA_NUM_PARALLEL", "OLLAMA_KV_CACHE_TYPE", "OLLAMA_FLASH_ATTENTION"}
# mlx_vlm/server/cli.py and mlx_lm/server.py argparse options.
MLX_VLM_SERVER_FLAGS = {"--model", "--max-kv-size", "--kv-bits", "--kv-quant-scheme", "--max-num-seqs", "--port", "--host"}
MLX_LM_SERVER_FLAGS = {"--model", "--decode-concurrency", "--prompt-concurrency", "--port", "--host"}
# transformers PreTrainedModel.from_pretrained keyword arguments the snippet may use.
FROM_PRETRAINED_KWARGS = {"dtype", "device_map", "max_memory", "quantization_config"}


def plan(**fields) -> tuple[MemoryRequest, LaunchCommand]:
    request = MemoryRequest(**fields)
    result = estimate(request, CATALOG)
    fitted = fit(request, CATALOG) if request.gpu else None
    return request, launch_command(request, result, CATALOG, fitted)


def flags(command: str) -> list[str]:
    return [token for token in shlex.split(command) if token.startswith("-")]


def value(command: str, flag: str) -> str:
    tokens = shlex.split(command)
    return tokens[tokens.index(flag) + 1]


def test_vllm_31b_bf16_on_two_h100_at_128k():
    _, launch = plan(
        model="31b", engine="vllm", weight_format="bf16", gpu="nvidia-h100-sxm", gpus=2, context_tokens=131_072
    )
    assert (launch.runtime, launch.language) == ("vllm", "bash")
    assert shlex.split(launch.command)[:3] == ["vllm", "serve", "google/gemma-4-31B-it"]
    assert value(launch.command, "--max-model-len") == "131072"  # 128 x 1024, no media or thinking
    assert value(launch.command, "--tensor-parallel-size") == "2"
    assert value(launch.command, "--max-num-seqs") == "1"
    assert value(launch.command, "--gpu-memory-utilization") == "0.92"  # vLLM's CacheConfig default (vllm/config/cache.py)
    assert "--kv-cache-dtype" not in launch.command  # bf16 is vLLM's auto for this checkpoint
    assert "--cpu-offload-gb" not in launch.command
    assert set(flags(launch.command)) <= VLLM_FLAGS


def test_vllm_counts_media_and_thinking_in_max_model_len_and_writes_its_settings():
    _, launch = plan(
        model="e4b", engine="vllm", gpu="nvidia-h100-sxm", context_tokens=8192, images=2, image_tokens=280,
        thinking_tokens=1000, concurrent_sequences=16, kv_cache_dtype="fp8",
        engine_settings={"gpu_memory_utilization": 0.85},
    )
    # 8,192 + 2 x (280 + 2) + 1,000 = 9,756
    assert value(launch.command, "--max-model-len") == "9756"
    assert value(launch.command, "--max-num-seqs") == "16"
    assert value(launch.command, "--gpu-memory-utilization") == "0.85"
    assert value(launch.command, "--kv-cache-dtype") == "fp8"
    assert set(flags(launch.command)) <= VLLM_FLAGS


@pytest.mark.parametrize(
    ("gpu", "knobs", "step"),
    [
        # vllm/engine/arg_utils.py @99d7eb5 _set_default_args: `vllm serve` picks 8,192 on a GPU of
        # >= 70 GiB other than an A100, else 2,048; the command writes the plan's step either way.
        ("nvidia-rtx-4090", {}, "2048"),
        ("nvidia-a100-80gb-sxm", {}, "2048"),
        ("nvidia-h100-sxm", {}, "8192"),
        ("nvidia-h100-sxm", {"max_num_batched_tokens": 4096}, "4096"),
    ],
)
def test_vllm_writes_the_step_the_plan_sized_its_profiling_run_with(gpu, knobs, step):
    _, launch = plan(
        model="e4b", engine="vllm", weight_format="bf16", gpu=gpu, context_tokens=8192, engine_settings=knobs
    )
    assert value(launch.command, "--max-num-batched-tokens") == step
    (note,) = [n for n in launch.notes if n.startswith("--max-num-batched-tokens")]
    assert ("as set" in note) == bool(knobs)


@pytest.mark.parametrize(
    ("model", "weights", "repo"),
    [("31b", "nvfp4-mlp-only", "nvidia/Gemma-4-31B-IT-NVFP4"), ("26b-a4b", "nvfp4-experts-only", "nvidia/Gemma-4-26B-A4B-NVFP4")],
)
def test_vllm_downloads_nvidias_own_nvfp4_checkpoints(model, weights, repo):
    _, launch = plan(model=model, engine="vllm", weight_format=weights, gpu="nvidia-b200", context_tokens=8192)
    assert shlex.split(launch.command)[2] == repo


def test_vllm_without_a_published_checkpoint_says_placeholder():
    _, launch = plan(model="e4b", engine="vllm", weight_format="awq-int4", gpu="nvidia-h100-sxm", context_tokens=8192)
    repo = shlex.split(launch.command)[2]
    assert repo.startswith("<") and repo.endswith(">")
    assert any("placeholder" in note for note in launch.notes)


def test_vllm_offload_reuses_the_fit_flags_and_text_only_drops_the_towers():
    request, launch = plan(
        model="31b", engine="vllm", weight_format="nvfp4-mlp-only", gpu="nvidia-rtx-5090", context_tokens=8192,
        text_only=True,
    )
    offload = fit(request, CATALOG).offload
    assert offload is not None and offload.method == "vLLM --cpu-offload-gb"
    gib = int(re.fullmatch(r"--cpu-offload-gb (\d+)", offload.flags).group(1))
    assert value(launch.command, "--cpu-offload-gb") == str(gib)
    assert "--language-model-only" in flags(launch.command)
    assert set(flags(launch.command)) <= VLLM_FLAGS


def test_llama_server_26b_q4_k_m_on_a_16_gb_gpu_offloads_experts():
    request, launch = plan(
        model="26b-a4b", engine="llama.cpp", weight_format="gguf-q4_k_m", kv_cache_dtype="fp16",
        gpu="nvidia-rtx-4060-ti-16gb", context_tokens=32_768,
    )
    fitted = fit(request, CATALOG)
    assert fitted.verdict == "fits_with_offload"
    assert value(launch.command, "-hf") == "ggml-org/gemma-4-26B-A4B-it-GGUF:Q4_K_M"
    assert value(launch.command, "-c") == str(32_768 * 1)
    assert "-np" not in flags(launch.command)  # auto: 4 slots over one pool
    assert value(launch.command, "--n-cpu-moe") == str(fitted.offload.cpu_moe_layers)
    assert fitted.offload.flags in launch.command  # the fit's own string, not a copy of its logic
    assert value(launch.command, "-fa") == "on"
    assert "-ctk" not in launch.command  # f16 is llama-server's default
    assert set(flags(launch.command)) <= LLAMA_SERVER_FLAGS


def test_llama_server_context_is_per_slot_context_times_slots():
    _, auto = plan(
        model="26b-a4b", engine="llama.cpp", weight_format="gguf-q4_k_m", kv_cache_dtype="q8_0",
        gpu="nvidia-h100-sxm", context_tokens=8192, concurrent_sequences=4, text_only=True,
    )
    assert value(auto.command, "-c") == str(4 * 8192)  # 4 auto slots, one pool
    assert "-np" not in flags(auto.command)
    assert (value(auto.command, "-ctk"), value(auto.command, "-ctv")) == ("q8_0", "q8_0")
    assert "--no-mmproj" in flags(auto.command)
    _, explicit = plan(
        model="26b-a4b", engine="llama.cpp", weight_format="gguf-q4_k_m", kv_cache_dtype="fp16",
        gpu="nvidia-h100-sxm", context_tokens=8192, concurrent_sequences=6,
    )
    assert (value(explicit.command, "-c"), value(explicit.command, "-np")) == (str(6 * 8192), "6")
    for launch in (auto, explicit):
        assert set(flags(launch.command)) <= LLAMA_SERVER_FLAGS


def test_ollama_e2b_on_a_pi_5():
    _, launch = plan(
        model="e2b", engine="ollama", weight_format="ollama-q4_k_m", kv_cache_dtype="fp16", gpu="rpi5-8gb",
        runtime_context=True,
    )
    lines = launch.command.splitlines()
    assert lines[-1] == "ollama run gemma4:e2b"
    assert "OLLAMA_CONTEXT_LENGTH" not in launch.command  # Ollama's own default is the plan
    assert any("4,096" in note for note in launch.notes)  # below 23 GiB: 4,096 tokens


def test_ollama_settings_come_from_the_plan():
    _, launch = plan(
        model="e2b", engine="ollama", weight_format="ollama-q4_k_m", kv_cache_dtype="q8_0", gpu="rpi5-8gb",
        context_tokens=8192, concurrent_sequences=2,
    )
    serve = launch.command.splitlines()[0]
    variables = dict(re.findall(r"(OLLAMA_[A-Z_]+)=(\S+)", serve))
    assert variables == {
        "OLLAMA_CONTEXT_LENGTH": "8192",
        "OLLAMA_NUM_PARALLEL": "2",
        "OLLAMA_KV_CACHE_TYPE": "q8_0",
        "OLLAMA_FLASH_ATTENTION": "1",
    }
    assert set(variables) <= OLLAMA_VARIABLES
    assert serve.endswith("ollama serve &")


def test_mlx_e4b_on_a_16_gb_mac():
    _, launch = plan(model="e4b", engine="mlx", weight_format="mlx-4bit", gpu="apple-m4-16gb", context_tokens=8192)
    tokens = shlex.split(launch.command)
    assert tokens[:3] == ["mlx_vlm.server", "--model", "mlx-community/gemma-4-e4b-it-4bit"]
    assert set(flags(launch.command)) <= MLX_VLM_SERVER_FLAGS
    _, text = plan(
        model="e4b", engine="mlx", weight_format="mlx-4bit", gpu="apple-m4-16gb", context_tokens=8192,
        text_only=True, concurrent_sequences=3,
    )
    assert shlex.split(text.command)[0] == "mlx_lm.server"
    assert value(text.command, "--decode-concurrency") == "3"
    assert set(flags(text.command)) <= MLX_LM_SERVER_FLAGS


def test_mlx_turboquant_starts_mlx_vlm_even_for_text_only():
    # mlx-vlm's TurboQuant (mlx_vlm/server/cli.py@9b13f52: --kv-bits float, --kv-quant-scheme
    # uniform|turboquant); "3.5" = 3-bit keys + 4-bit values. mlx_lm.server has no TurboQuant.
    _, launch = plan(
        model="31b", engine="mlx", weight_format="mlx-4bit", kv_cache_dtype="mlx-tq3.5",
        gpu="apple-m4-max-128gb", context_tokens=131072, text_only=True,
    )  # fmt: skip
    assert shlex.split(launch.command)[0] == "mlx_vlm.server"
    assert value(launch.command, "--kv-bits") == "3.5" and value(launch.command, "--kv-quant-scheme") == "turboquant"
    assert set(flags(launch.command)) <= MLX_VLM_SERVER_FLAGS


@pytest.mark.parametrize("kv", ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"])
def test_llama_server_every_quantised_kv_type_says_it_needs_flash_attention(kv):
    # llama-context.cpp: "quantized V cache was requested, but this requires Flash Attention".
    _, launch = plan(model="e4b", engine="llama.cpp", weight_format="gguf-q4_k_m", kv_cache_dtype=kv, gpu="rtx-4090")
    assert value(launch.command, "-ctk") == kv and value(launch.command, "-ctv") == kv
    assert value(launch.command, "-fa") == "on"
    assert any("needs flash attention" in note for note in launch.notes)


def test_llama_cpp_on_a_phone_says_it_runs_inside_an_app():
    _, launch = plan(model="e2b", engine="llama.cpp", weight_format="gguf-q4_k_m", kv_cache_dtype="fp16", gpu="iphone-17-pro")
    assert any("examples/llama.swiftui" in note for note in launch.notes)
    _, desktop = plan(model="e2b", engine="llama.cpp", weight_format="gguf-q4_k_m", kv_cache_dtype="fp16", gpu="rtx-4090")
    assert not any("inside an app" in note for note in desktop.notes)


def test_transformers_with_offload_budgets_the_gpu_in_max_memory():
    request, launch = plan(model="26b-a4b", engine="transformers", gpu="nvidia-rtx-4090", context_tokens=8192)
    fitted = fit(request, CATALOG)
    assert fitted.verdict == "fits_with_offload"
    assert launch.language == "python"
    tree = ast.parse(launch.command)  # a snippet that parses
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "from_pretrained"]
    model_call = next(c for c in calls if c.func.value.id == "AutoModelForImageTextToText")
    kwargs = {k.arg: k.value for k in model_call.keywords}
    assert set(kwargs) <= FROM_PRETRAINED_KWARGS
    assert ast.literal_eval(kwargs["device_map"]) == "auto"
    assert ast.unparse(kwargs["dtype"]) == "torch.bfloat16"
    budget = ast.literal_eval(kwargs["max_memory"])
    per_gpu = re.search(r'"(\d+)MiB"', fitted.offload.flags).group(1)
    assert budget[0] == f"{per_gpu}MiB"
    # 32 GiB assumed for a desktop, less 4 GiB for the OS (data/runtime.csv).
    assert budget["cpu"] == "28GiB"


def test_transformers_quantises_nf4_on_load_and_text_only_uses_the_text_class():
    _, launch = plan(model="e4b", engine="transformers", weight_format="bnb-nf4", gpu="nvidia-h100-sxm", text_only=True)
    assert "BitsAndBytesConfig(load_in_4bit=True" in launch.command
    assert "Gemma4ForCausalLM.from_pretrained(" in launch.command
    ast.parse(launch.command)


def test_an_impossible_pair_gives_one_clear_line(capsys):
    request = MemoryRequest(model="e2b", engine="vllm", gpu="rpi5-8gb")
    line = launch_refusal(request, CATALOG)
    accelerator = CATALOG.accelerator("rpi5-8gb")
    assert line == refusal(CATALOG, "vllm", CATALOG.weight_format("bf16"), accelerator)
    assert line and "\n" not in line and "Raspberry Pi 5" in line
    assert main(["estimate", "--model", "e2b", "--engine", "vllm", "--gpu", "rpi5-8gb", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_a_runnable_pair_has_no_refusal():
    assert launch_refusal(MemoryRequest(model="e2b", engine="ollama", weight_format="ollama-q4_k_m", gpu="rpi5-8gb"), CATALOG) is None


def test_launch_command_refuses_a_plan_its_device_cannot_run():
    request = MemoryRequest(model="e2b", engine="vllm", gpu="nvidia-h100-sxm")
    result = estimate(request, CATALOG)
    with pytest.raises(PlanningError, match="rpi|Raspberry|Pi"):
        launch_command(request.model_copy(update={"gpu": "rpi5-8gb"}), result, CATALOG)


def test_cli_json_carries_the_launch_command(capsys):
    assert main(["estimate", "--model", "31b", "--engine", "vllm", "--gpu", "h100", "--gpus", "2", "--context", "131072", "--json"]) == 0
    launch = json.loads(capsys.readouterr().out)["launch_command"]
    assert set(launch) == {"runtime", "command", "language", "notes"}
    assert launch["runtime"] == "vllm" and launch["language"] == "bash"
    assert value(launch["command"], "--max-model-len") == "131072"
    assert all(isinstance(note, str) and "\n" not in note for note in launch["notes"])


def test_cli_text_output_prints_the_command(capsys):
    assert main(["estimate", "--model", "e2b", "--engine", "ollama", "--gpu", "rpi5-8gb"]) == 0
    out = capsys.readouterr().out
    assert "Launch command (ollama, bash):" in out
    assert "  ollama run gemma4:e2b" in out


def test_every_launch_repository_names_a_model_and_a_format_its_runtime_loads():
    for (runtime, format_id, model_id), row in launch_repos().items():
        assert CATALOG.model(model_id).id == model_id, row.id
        assert runtime in CATALOG.weight_format(format_id).engines, row.id


def test_a_malformed_launch_repos_file_names_file_row_and_field(tmp_path):
    (tmp_path / "launch_repos.csv").write_text(
        "id,runtime,weight_format,model,repo,tag,source\n"
        "ok,vllm,bf16,gemma-4-31b,google/gemma-4-31B-it,,model card\n"
        "bad,vllm,bf16,gemma-4-e2b,has space/repo,,model card\n"
    )
    with pytest.raises(CatalogError) as error:
        launch_repos(tmp_path)
    message = str(error.value)
    assert "launch_repos.csv" in message and "line 3" in message and "'bad'" in message and "repo" in message
