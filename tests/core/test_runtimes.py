"""Which runtime runs on which device, with which weight formats (core.runtimes), and the
refusals a user sees from estimate, fit and the command line.

Expected values come from the issue's own list of pairs, the research notes
(docs/research/runtime-rules.md C and D, /work/shared/facts/runtimes.md §0) and the data files
read here with the csv module (names and reasons), never from the code's output."""

import csv
from pathlib import Path

import pytest

from core.__main__ import main
from core.catalog import load_catalog
from core.devices import TypedDevice, typed_accelerator
from core.estimate import MemoryRequest, PlanningError, estimate
from core.fit import fit
from core.runtimes import default_format, format_for, refusal, runtimes_for

DATA = Path(__file__).resolve().parents[2] / "data"
CATALOG = load_catalog()


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


# Device names as the catalogue file spells them (the refusal names the device).
GPU_NAMES = {row["id"]: row["name"] for row in _rows("gpus.csv")}
# (engine, platform, architecture) -> the reason the runtime table gives.
REASONS = {(r["engine"], r["platform"], r["architecture"]): r["reason"] for r in _rows("runtime_support.csv")}

PI, IPHONE, GALAXY, MAC = "rpi5-8gb", "iphone-16-pro", "galaxy-s25-ultra", "apple-m4-pro-48gb"
H100, A100, RTX_4090, RTX_5090, B200, MI300X = (
    "nvidia-h100-sxm",
    "nvidia-a100-80gb-sxm",
    "nvidia-rtx-4090",
    "nvidia-rtx-5090",
    "nvidia-b200",
    "amd-mi300x",
)


def request(engine: str, weight_format: str, gpu: str | None, model: str = "gemma-4-e2b", **extra) -> MemoryRequest:
    kv = "fp16" if engine in ("llama.cpp", "ollama") else "bf16"
    return MemoryRequest(
        model=model, engine=engine, weight_format=weight_format, kv_cache_dtype=kv, context_tokens=4096, gpu=gpu, **extra
    )


def planning_error(call, *args) -> str:
    with pytest.raises(PlanningError) as caught:
        call(*args)
    return str(caught.value)


# --- Runtimes that do not run on a device at all ------------------------------------------------

# (engine, weight format the user would ask for, device, the runtime table's row for it)
DEVICE_REFUSALS = [
    # vLLM: no Raspberry Pi (CPU backend not modelled), no phones, no Metal backend.
    ("vllm", "bf16", PI, ("vllm", "cpu", "")),
    ("vllm", "bf16", IPHONE, ("vllm", "phone", "")),
    ("vllm", "bf16", GALAXY, ("vllm", "phone", "")),
    ("vllm", "bf16", MAC, ("vllm", "apple", "")),
    # MLX is Apple silicon only here.
    ("mlx", "mlx-4bit", H100, ("mlx", "nvidia", "")),
    ("mlx", "mlx-4bit", RTX_4090, ("mlx", "nvidia", "")),
    # Ollama ships no phone build; PyTorch transformers does not run on phones.
    ("ollama", "ollama-q4_k_m", GALAXY, ("ollama", "phone", "")),
    ("transformers", "bf16", IPHONE, ("transformers", "phone", "")),
]


@pytest.mark.parametrize(("engine", "weight_format", "gpu", "row"), DEVICE_REFUSALS)
def test_estimate_refuses_a_runtime_that_does_not_run_on_the_device(engine, weight_format, gpu, row):
    message = planning_error(estimate, request(engine, weight_format, gpu), CATALOG)
    assert engine in message
    assert GPU_NAMES[gpu] in message, "the refusal names the device"
    assert REASONS[row] in message, "the refusal gives the runtime table's reason"


@pytest.mark.parametrize(("engine", "weight_format", "gpu", "row"), DEVICE_REFUSALS)
def test_fit_refuses_with_the_same_words_as_estimate(engine, weight_format, gpu, row):
    scenario = request(engine, weight_format, gpu)
    assert planning_error(fit, scenario, CATALOG) == planning_error(estimate, scenario, CATALOG)


@pytest.mark.parametrize(("engine", "weight_format", "gpu", "row"), DEVICE_REFUSALS)
def test_refusal_is_the_same_with_the_runtimes_own_context(engine, weight_format, gpu, row):
    # runtime_context=True goes through the runtime's context rule (Ollama's tier, llama-server's
    # fit, vLLM's max_model_len) before the profile: the refusal must not change.
    plain = request(engine, weight_format, gpu)
    own = plain.model_copy(update={"runtime_context": True})
    assert planning_error(estimate, own, CATALOG) == planning_error(estimate, plain, CATALOG)
    assert planning_error(fit, own, CATALOG) == planning_error(estimate, plain, CATALOG)


@pytest.mark.parametrize("command", ["estimate", "fit"])
@pytest.mark.parametrize(
    ("engine", "weights", "gpu"),
    [("vllm", "bf16", PI), ("vllm", "bf16", IPHONE), ("vllm", "bf16", MAC), ("mlx", "mlx-4bit", H100)],
)
def test_cli_prints_the_same_refusal_and_exits_2(capsys, command, engine, weights, gpu):
    argv = [command, "--model", "e2b", "--engine", engine, "--weights", weights, "--gpu", gpu, "--context", "4096"]
    status = main(argv)
    captured = capsys.readouterr()
    expected = planning_error(estimate, request(engine, weights, gpu), CATALOG)
    assert status == 2
    assert captured.out == ""
    assert captured.err == f"error: {expected}\n"


def test_cli_without_a_context_refuses_the_same_way(capsys):
    # No --context: the runtime's own context (runtime_context=True) is asked for.
    status = main(["estimate", "--model", "31b", "--engine", "vllm", "--gpu", PI])
    expected = planning_error(estimate, request("vllm", "bf16", PI, model="31b"), CATALOG)
    assert status == 2
    assert capsys.readouterr().err == f"error: {expected}\n"


# --- Formats a runtime does not take on a device ------------------------------------------------

@pytest.mark.parametrize("weight_format", ["awq-int4", "gptq-int4", "fp8"])
def test_transformers_on_a_mac_refuses_cuda_only_formats(weight_format):
    # transformers,apple takes bf16;fp16 only: AWQ ("AWQ is only available on GPU"), GPTQ and
    # FineGrainedFP8 kernels need CUDA (runtime-rules.md D).
    message = planning_error(estimate, request("transformers", weight_format, MAC), CATALOG)
    assert weight_format in message
    assert GPU_NAMES[MAC] in message
    assert "bf16, fp16" in message, "the refusal says what the runtime takes there"
    assert REASONS[("transformers", "apple", "")] in message
    assert planning_error(fit, request("transformers", weight_format, MAC), CATALOG) == message


@pytest.mark.parametrize("weight_format", ["bf16", "fp16"])
def test_transformers_on_a_mac_takes_16_bit_checkpoints(weight_format):
    assert refusal(CATALOG, "transformers", CATALOG.weight_format(weight_format), CATALOG.accelerator(MAC)) is None
    assert estimate(request("transformers", weight_format, MAC), CATALOG).engine == "transformers"


def test_vllm_on_rocm_refuses_nvfp4():
    # vLLM's ROCm build: bf16, fp16, FP8, GPTQ, AWQ; no NVFP4 (runtime_support.csv amd row).
    message = planning_error(estimate, request("vllm", "nvfp4", MI300X), CATALOG)
    assert "nvfp4" in message and GPU_NAMES[MI300X] in message


def test_a_runtime_never_takes_another_runtimes_format():
    # weight_formats.csv engines: mlx-4bit is MLX only, GGUF is llama.cpp only.
    message = planning_error(estimate, request("vllm", "mlx-4bit", H100), CATALOG)
    assert "mlx-4bit" in message
    message = planning_error(estimate, request("transformers", "gguf-q4_k_m", None), CATALOG)
    assert "gguf-q4_k_m" in message


# --- NVFP4 and its architectures ------------------------------------------------------------------

def test_nvfp4_architectures_in_the_catalogue_follow_the_research():
    # runtime-rules.md C1: below Blackwell vLLM runs NVFP4 weight-only through Marlin
    # (is_fp4_marlin_supported: compute capability 7.5 today, 8.0 in older releases), so Ampere,
    # Ada and Hopper take NVFP4 as well as Blackwell.
    (row,) = [r for r in _rows("weight_formats.csv") if r["id"] == "nvfp4"]
    assert set(row["architectures"].split(";")) >= {"ampere", "ada", "hopper", "blackwell"}


@pytest.mark.parametrize("gpu", [RTX_5090, B200, H100, A100, RTX_4090])
def test_nvfp4_runs_on_vllm_from_ampere_on(gpu):
    accelerator = CATALOG.accelerator(gpu)
    assert refusal(CATALOG, "vllm", CATALOG.weight_format("nvfp4"), accelerator) is None
    result = estimate(request("vllm", "nvfp4", gpu, model="31b"), CATALOG)
    # Weight-only Marlin keeps the 4-bit weights and their fp8 group-16 scales: 4 + 8/16 bits
    # for every quantised linear layer, on Blackwell and below alike.
    (attention,) = [w for w in result.weights if w.component == "attention"]
    assert attention.bits_per_weight == pytest.approx(4.5, abs=1e-3)


def test_nvfp4_on_a_gpu_of_unknown_generation_is_refused():
    # A typed-in NVIDIA card without an architecture cannot be shown to support NVFP4.
    device = typed_accelerator(TypedDevice(memory_bytes=24 * 2**30, kind="nvidia"))
    catalog = CATALOG.with_accelerators((device,))
    message = planning_error(estimate, request("vllm", "nvfp4", device.id), catalog)
    assert "NVFP4" in message and "unknown" in message


def test_transformers_fp8_below_ada_is_not_sized_as_8_bit_weights():
    """transformers FineGrainedFP8 on CUDA below compute capability 8.9 (an A100 is 8.0):
    "FP8 quantized models is only supported on GPUs with compute capability >= 8.9 (e.g
    4090/H100) ... We will default to dequantizing the model to bf16" (older versions raised
    ValueError) - runtime-rules.md D. Either way the A100 never holds 8-bit FP8 weights under
    transformers: the planner must refuse, or size the weights as bf16. The quantizer's
    validate_environment (transformers quantizer_finegrained_fp8.py: `if (major < 8) or (major ==
    8 and minor < 9): logger.warning_once(... dequantizing ...)`) and a public A100 80GB log of an
    FP8 checkpoint ("the dequantized model needs ~55.6GB VRAM vs. ~30.9GB native FP8") agree.
    (vLLM differs: its Marlin W8A16 path keeps 8-bit weights on Ampere, runtime-rules.md C2.)"""
    scenario = request("transformers", "fp8", A100, model="31b")
    try:
        result = estimate(scenario, CATALOG)
    except PlanningError:
        return
    bf16 = estimate(scenario.model_copy(update={"weight_format": "bf16"}), CATALOG)
    assert result.weights_bytes == bf16.weights_bytes


def test_vllm_fp8_on_ampere_keeps_8_bit_weights():
    # vLLM's Marlin W8A16 path (is_fp8_marlin_supported: capability 8.0) keeps FP8 weights.
    assert refusal(CATALOG, "vllm", CATALOG.weight_format("fp8"), CATALOG.accelerator(A100)) is None
    result = estimate(request("vllm", "fp8", A100, model="31b"), CATALOG)
    bf16 = estimate(request("vllm", "bf16", A100, model="31b"), CATALOG)
    assert result.weights_bytes < 0.6 * bf16.weights_bytes


# --- What runs where ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("gpu", "expected"),
    [
        (PI, ["llama.cpp", "litert-lm", "ollama", "transformers", "onnxruntime-genai", "mistral.rs"]),
        (IPHONE, ["litert-lm", "llama.cpp"]),
        (GALAXY, ["litert-lm", "llama.cpp"]),
        (MAC, ["mlx", "llama.cpp", "ollama", "transformers", "litert-lm", "vllm-metal", "mistral.rs"]),
    ],
)
def test_runtimes_for_a_device(gpu, expected):
    assert runtimes_for(CATALOG, CATALOG.accelerator(gpu)) == expected


@pytest.mark.parametrize("gpu", [H100, A100, RTX_4090, RTX_5090, B200])
def test_runtimes_for_an_nvidia_gpu_start_with_vllm(gpu):
    running = runtimes_for(CATALOG, CATALOG.accelerator(gpu))
    assert running[0] == "vllm"
    assert {"llama.cpp", "ollama", "transformers"} <= set(running)
    assert "mlx" not in running


def test_an_architecture_row_overrides_its_platform():
    # llama.cpp and Ollama have no Gaudi backend (runtimes.md §0) though they run on Intel Arc.
    gaudi = runtimes_for(CATALOG, CATALOG.accelerator("intel-gaudi3"))
    arc = runtimes_for(CATALOG, CATALOG.accelerator("intel-arc-b580"))
    assert "llama.cpp" not in gaudi and "ollama" not in gaudi
    assert "llama.cpp" in arc and "ollama" in arc


@pytest.mark.parametrize("gpu", [PI, IPHONE, GALAXY, MAC, H100])
def test_every_listed_runtime_runs_its_default_format_there(gpu):
    accelerator = CATALOG.accelerator(gpu)
    for engine in runtimes_for(CATALOG, accelerator):
        weight_format = default_format(CATALOG, engine, accelerator)
        assert refusal(CATALOG, engine, CATALOG.weight_format(weight_format), accelerator) is None, engine


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ("llama.cpp", "gguf-q4_k_m"),
        ("ollama", "ollama-q4_k_m"),
        ("mlx", "mlx-4bit"),
        ("vllm", "bf16"),
        ("transformers", "bf16"),
    ],
)
def test_default_format_is_the_file_people_download(engine, expected):
    assert default_format(CATALOG, engine, None) == expected


@pytest.mark.parametrize(
    ("engine", "gpu", "expected"),
    [
        ("llama.cpp", PI, "gguf-q4_k_m"),
        ("llama.cpp", IPHONE, "gguf-q4_k_m"),
        ("ollama", PI, "ollama-q4_k_m"),
        ("mlx", MAC, "mlx-4bit"),
        ("llama.cpp", MAC, "gguf-q4_k_m"),
        ("vllm", H100, "bf16"),
    ],
)
def test_default_format_on_a_device(engine, gpu, expected):
    assert default_format(CATALOG, engine, CATALOG.accelerator(gpu)) == expected


@pytest.mark.parametrize(
    ("engine", "asked", "expected"),
    [
        ("llama.cpp", "bf16", "gguf-bf16"),
        ("ollama", "bf16", "ollama-bf16"),
        ("ollama", "gguf-q4_k_m", "ollama-q4_k_m"),
        ("llama.cpp", "ollama-q4_k_m", "gguf-q4_k_m"),
        ("vllm", "gguf-bf16", "bf16"),
        ("mlx", "gguf-bf16", "bf16"),
        ("transformers", "bf16", "bf16"),
        # No equivalent: the format asked for is kept, so that the refusal names it.
        ("llama.cpp", "awq-int4", "awq-int4"),
    ],
)
def test_format_for_maps_the_same_weights_to_the_runtimes_file(engine, asked, expected):
    assert format_for(CATALOG, engine, asked, None) == expected


def test_format_for_accepts_aliases():
    # weight_formats.csv: 'bfloat16' is an alias of bf16.
    assert format_for(CATALOG, "llama.cpp", "bfloat16", None) == "gguf-bf16"


def test_cli_on_a_pi_picks_llama_cpp_and_its_q4_k_m(capsys):
    import json

    status = main(["estimate", "--model", "e2b", "--gpu", PI, "--context", "4096", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["engine"] == "llama.cpp"
    assert out["weight_format"] == "gguf-q4_k_m"
    assert out["kv_cache_dtype"] == "fp16"  # llama.cpp's -ctk/-ctv default


def test_cli_on_a_mac_picks_mlx(capsys):
    import json

    status = main(["estimate", "--model", "e4b", "--gpu", MAC, "--context", "4096", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert (out["engine"], out["weight_format"]) == ("mlx", "mlx-4bit")


def test_cli_maps_bf16_to_the_gguf_file_for_llama_cpp(capsys):
    import json

    status = main(
        ["estimate", "--model", "e2b", "--engine", "llama.cpp", "--weights", "bf16", "--context", "4096", "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out["weight_format"] == "gguf-bf16"
