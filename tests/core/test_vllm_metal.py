"""vLLM on Apple (vllm-metal): its KV pool, layouts, refusals, device table and launch command, from independent figures."""

import math
import shlex

import pytest

from core.catalog import load_catalog
from core.estimate import MemoryRequest, PlanningError, estimate
from core.engines.base import EngineSettings
from core.fit import fit
from core.kv_cache import turboquant_default
from core.launch import launch_command
from core.runtimes import device_refusal, refusal, runtimes_for

CATALOG = load_catalog()
GIB = 2**30
MIB = 2**20
MAC = "apple-m4-max-128gb"
# data/gpus.csv: the M4 Max 128 GB's Metal working-set limit, 3/4 of 128 GiB = 96 GiB.
M4_MAX_LIMIT_BYTES = 96 * GIB
# data/runtime.csv 'apple': 256 MiB for the Metal runtime and command buffers.
APPLE_PROCESS_OVERHEAD_BYTES = 256 * MIB


def request(**changes):
    values = dict(
        model="gemma-4-e4b", engine="vllm-metal", weight_format="mlx-4bit", kv_cache_dtype="bf16",
        context_tokens=32_768, concurrent_sequences=1, gpu=MAC,
    )
    values.update(changes)
    return MemoryRequest(**values)


# gemma4-architecture.md: E2B owns 12 sliding (1 x 256) + 3 full (1 x 512) caches, E4B 20 sliding
# (2 x 256) + 4 full (2 x 512); bf16 K and V: 2 tensors x 2 bytes.
E2B_BYTES_PER_TOKEN = 2 * 2 * (12 * 1 * 256 + 3 * 1 * 512)
E4B_BYTES_PER_TOKEN = 2 * 2 * (20 * 2 * 256 + 4 * 2 * 512)


def test_hand_figures_match_the_research_note():
    # docs/research/mistralrs-vllm-metal.md §2.2 prints 18,432 and 57,344 B/token.
    assert (E2B_BYTES_PER_TOKEN, E4B_BYTES_PER_TOKEN) == (18_432, 57_344)


@pytest.mark.parametrize(("model", "per_token"), [("gemma-4-e2b", E2B_BYTES_PER_TOKEN), ("gemma-4-e4b", E4B_BYTES_PER_TOKEN)])
@pytest.mark.parametrize("tokens", [1000, 32_768, 131_072])
def test_e_models_charge_every_owning_layer_at_full_length(model, per_token, tokens):
    """YOCO path: one 16-token block holds every owning layer; sliding layers are not windowed."""
    result = estimate(request(model=model, context_tokens=tokens, concurrent_sequences=2), CATALOG)
    blocks = math.ceil(tokens / 16)
    assert result.engine_report["page_bytes"] == 16 * per_token
    assert result.engine_report["blocks_per_request"] == blocks
    assert result.kv_cache_bytes == 2 * blocks * 16 * per_token
    assert result.engine_report["kv_layout"] == "yoco_full_length"
    assert result.kv_cache.shared_layers == {"gemma-4-e2b": 20, "gemma-4-e4b": 18}[model]


def test_31b_plans_per_group_with_sliding_layers_held_to_their_window():
    """31B: 50 sliding layers (16 x 256: 8,192 values per token) and 10 full (4 x 512: 4,096).
    vLLM unifies pages: full blocks hold 32 tokens, page = 16 x 8,192 x 2 B = 256 KiB; group size
    10 (50 >= 1.5 x 10): 5 sliding groups, 1 full. vLLM's start-up check at 32,768 tokens with
    8,192 batched tokens: full 32,768 / 32 = 1,024 blocks; sliding 5 x (ceil((1,023 + 8,192) / 16)
    + 1) = 5 x 577 = 2,885 blocks."""
    result = estimate(request(model="gemma-4-31b"), CATALOG)
    report = result.engine_report
    assert report["kv_layout"] == "grouped"
    assert report["page_bytes"] == 256 * 1024
    assert report["group_size"] == 10
    assert report["kv_cache_needed_bytes"] == (1024 + 2885) * 256 * 1024 * 10
    # Sliding blocks do not grow with the context; a full-length charge would quadruple 128K.
    longer = estimate(request(model="gemma-4-31b", context_tokens=131_072), CATALOG).engine_report
    assert longer["kv_cache_needed_bytes"] - report["kv_cache_needed_bytes"] == (4096 - 1024) * 256 * 1024 * 10


def test_budget_is_the_working_set_limit_times_utilisation_less_weights_and_overhead():
    result = estimate(request(), CATALOG)
    report = result.engine_report
    assert report["metal_limit_bytes"] == M4_MAX_LIMIT_BYTES
    claimed = math.floor(M4_MAX_LIMIT_BYTES * 0.92)  # 94,832,877,895: the docstring's 0.92 (unverified)
    assert claimed == 94_832_877_895
    pool = claimed - result.weights_bytes - result.activations_bytes - APPLE_PROCESS_OVERHEAD_BYTES
    assert report["kv_cache_memory_bytes"] == pool
    assert report["num_blocks"] == pool // (16 * E4B_BYTES_PER_TOKEN)
    assert report["kv_cache_tokens"] == report["num_blocks"] * 16


def test_an_explicit_utilisation_replaces_the_default():
    settings = EngineSettings(gpu_memory_utilization=0.8)
    result = estimate(request(engine_settings=settings), CATALOG)
    pool = math.floor(M4_MAX_LIMIT_BYTES * 0.8) - result.weights_bytes - result.activations_bytes - APPLE_PROCESS_OVERHEAD_BYTES
    assert result.engine_report["kv_cache_memory_bytes"] == pool
    assert result.engine_report["gpu_memory_utilization"] == 0.8


def test_encoders_are_not_loaded_and_media_is_refused():
    text = estimate(request(model="gemma-4-e2b"), CATALOG)
    assert not any(w.group == "encoder" for w in text.weights)
    mlx_text_only = estimate(
        request(model="gemma-4-e2b", engine="mlx", text_only=True), CATALOG
    )
    assert text.weights_bytes == mlx_text_only.weights_bytes
    with pytest.raises(PlanningError, match="text only"):
        estimate(request(model="gemma-4-e2b", images=1), CATALOG)


def _blocks_budget_request(blocks: float):
    """A request whose KV budget is `blocks` E4B blocks: the utilisation that leaves exactly that."""
    probe = estimate(request(context_tokens=16), CATALOG)
    fixed = probe.weights_bytes + probe.activations_bytes + APPLE_PROCESS_OVERHEAD_BYTES
    utilisation = (fixed + blocks * 16 * E4B_BYTES_PER_TOKEN) / M4_MAX_LIMIT_BYTES
    return request(context_tokens=16, engine_settings=EngineSettings(gpu_memory_utilization=utilisation))


def test_fewer_than_16_blocks_is_refused():
    short = fit(_blocks_budget_request(10.5), CATALOG)
    assert not short.fits
    assert "not enough Metal memory for KV cache" in (short.engine_error or "")
    assert "10 blocks" in short.engine_error
    # 16 tokens need 1 block: only the 16-block floor refuses it; at 16.5 blocks it starts.
    enough = fit(_blocks_budget_request(16.5), CATALOG)
    assert enough.engine_error is None


def test_no_budget_at_all_is_refused():
    result = fit(request(model="gemma-4-31b", weight_format="bf16", gpu="apple-m4-pro-48gb"), CATALOG)
    assert not result.fits
    assert "not enough Metal memory" in (result.engine_error or "")


@pytest.mark.parametrize("kv", ["turboquant_4bit_nc", "turboquant_k8v4", "turboquant_3bit_nc"])
def test_turboquant_is_refused_for_gemma_4(kv):
    with pytest.raises(PlanningError, match="per-layer KV shapes"):
        estimate(request(kv_cache_dtype=kv), CATALOG)


def test_turboquant_shorthand_and_fp8_are_refused():
    with pytest.raises(ValueError, match="per-layer KV shapes"):
        turboquant_default("vllm-metal")
    with pytest.raises(PlanningError, match="no fp8 KV cache"):
        estimate(request(kv_cache_dtype="fp8"), CATALOG)


@pytest.mark.parametrize("gpu", ["nvidia-h100-sxm", "amd-mi300x"])
def test_other_devices_refuse_it(gpu):
    accelerator = CATALOG.accelerator(gpu)
    reason = device_refusal(CATALOG, "vllm-metal", accelerator)
    assert reason and "Apple silicon only" in reason
    assert "vllm-metal" not in runtimes_for(CATALOG, accelerator)
    with pytest.raises(PlanningError, match="Apple silicon only"):
        estimate(request(gpu=gpu), CATALOG)


def test_a_mac_lists_it_after_mlx_llama_cpp_and_ollama():
    runtimes = runtimes_for(CATALOG, CATALOG.accelerator(MAC))
    assert "vllm-metal" in runtimes
    for earlier in ("mlx", "llama.cpp", "ollama"):
        assert runtimes.index(earlier) < runtimes.index("vllm-metal")


def test_vllm_on_a_mac_points_at_vllm_metal():
    reason = device_refusal(CATALOG, "vllm", CATALOG.accelerator(MAC))
    assert reason and "vllm-metal" in reason


@pytest.mark.parametrize(("fmt", "allowed"), [("mlx-4bit", True), ("mlx-8bit", True), ("bf16", True), ("gguf-q4_k_m", False)])
def test_weight_formats(fmt, allowed):
    reason = refusal(CATALOG, "vllm-metal", CATALOG.weight_format(fmt), CATALOG.accelerator(MAC))
    assert (reason is None) == allowed


def test_launch_command_flags():
    """vllm-metal README @211a1e4: `vllm serve <repo> --max-model-len N --max-num-seqs S
    --gpu-memory-utilization U` after its install.sh."""
    req = request(concurrent_sequences=4)
    result = estimate(req, CATALOG)
    command = launch_command(req, result, CATALOG)
    assert command.runtime == "vllm-metal"
    assert shlex.split(command.command) == [
        "vllm", "serve", "mlx-community/gemma-4-e4b-it-4bit",
        "--max-model-len", "32768", "--max-num-seqs", "4", "--gpu-memory-utilization", "0.92",
    ]
    assert any("install.sh" in note for note in command.notes)


def test_launch_command_caps_one_sequence_as_planned():
    # --max-num-seqs is always written: left out, vLLM 0.27.1's default cap (1,024 on a 128 GB
    # Mac) would run a profiling pass the plan does not count.
    req = request(model="gemma-4-31b", context_tokens=8192, engine_settings=EngineSettings(gpu_memory_utilization=0.8))
    command = launch_command(req, estimate(req, CATALOG), CATALOG)
    assert shlex.split(command.command) == [
        "vllm", "serve", "mlx-community/gemma-4-31b-it-4bit",
        "--max-model-len", "8192", "--max-num-seqs", "1", "--gpu-memory-utilization", "0.8",
    ]


# --- Step size: vLLM 0.27.1's `vllm serve` default from the Mac's whole RAM -------------------
# vllm/engine/arg_utils.py (@99d7eb5 _set_default_args): 8,192 batched tokens and 1,024 sequences
# when the platform reports >= 70 GiB, else 2,048 and 256. vllm-metal @211a1e4 platform.py
# l.76-93: get_device_total_memory = psutil.virtual_memory().total (VLLM_METAL_MEMORY_FRACTION
# is "auto" by default, envs.py l.22), the whole RAM, not the Metal working set.
@pytest.mark.parametrize(
    ("mac", "ram_bytes", "step", "seqs"),
    [
        ("apple-m4-pro-64gb", 64 * GIB, 2048, 256),  # 64 GiB < 70 GiB (its working set is 48 GiB)
        ("apple-m2-max-96gb", 96 * GIB, 8192, 1024),  # 96 GiB >= 70 GiB, though its working set is 72 GiB
        (MAC, 128 * GIB, 8192, 1024),  # 128 GiB (working set 96 GiB)
    ],
)
def test_step_and_sequence_cap_follow_the_macs_ram(mac, ram_bytes, step, seqs):
    from core.engines.vllm_metal import VllmMetalPolicy

    accelerator = CATALOG.accelerator(mac)
    assert VllmMetalPolicy().device_memory(accelerator)[0] == ram_bytes
    settings = VllmMetalPolicy().device_settings(EngineSettings(), accelerator)
    assert (settings.max_num_batched_tokens, settings.max_num_seqs) == (step, seqs)


def test_typed_in_mac_ram_gives_the_same_step():
    from core.devices import TypedDevice, typed_accelerator
    from core.engines.vllm_metal import VllmMetalPolicy

    for ram_gib, step in ((64, 2048), (96, 8192)):
        accelerator = typed_accelerator(TypedDevice(memory_bytes=ram_gib * GIB, kind="apple"))
        settings = VllmMetalPolicy().device_settings(EngineSettings(), accelerator)
        assert settings.max_num_batched_tokens == step


def test_31b_sliding_windows_hold_the_macs_steps_in_flight():
    """31B on a 64 GB Mac: step 2,048, two in flight (async scheduling): sliding blocks per
    group ceil(min(1023 + 4096, 8192) / 16) + 1 = 321; full ceil(8192 / 32) = 256; 5 sliding
    groups + 1 full. On the 128 GB Mac: ceil(min(1023 + 16384, 8192) / 16) + 1 = 513."""
    small = estimate(request(model="gemma-4-31b", context_tokens=8192, gpu="apple-m4-pro-64gb"), CATALOG)
    large = estimate(request(model="gemma-4-31b", context_tokens=8192), CATALOG)
    assert small.engine_report["in_flight_tokens"] == 4096
    assert small.engine_report["blocks_per_request"] == 5 * 321 + 256
    assert large.engine_report["in_flight_tokens"] == 16_384
    assert large.engine_report["blocks_per_request"] == 5 * 513 + 256


def test_launch_writes_the_step_only_when_it_is_not_vllm_metals_own():
    default = request(model="gemma-4-31b", context_tokens=8192, gpu="apple-m4-pro-64gb")
    assert "--max-num-batched-tokens" not in launch_command(default, estimate(default, CATALOG), CATALOG).command
    chosen = request(
        model="gemma-4-31b", context_tokens=8192, gpu="apple-m4-pro-64gb",
        engine_settings=EngineSettings(max_num_batched_tokens=8192),
    )
    tokens = shlex.split(launch_command(chosen, estimate(chosen, CATALOG), CATALOG).command)
    assert tokens[tokens.index("--max-num-batched-tokens") + 1] == "8192"


def test_profiling_overhead_is_two_logit_buffers_of_one_step():
    # profile_run (v1/model_runner.py @211a1e4): one sequence of max_num_batched_tokens tokens,
    # logits for every position. On a 64 GB Mac the step is 2,048 (vLLM's rule below 70 GiB of
    # RAM): 2 x 2,048 x 262,144 x 2 B = 2,147,483,648 B, whatever the sequences planned. The same
    # rule gives 2.03 GB for a 248,320-token vocabulary, where two public logs read 2.09 and 2.06 GB.
    assert 2 * 2048 * 248_320 * 2 == 2_034_237_440
    for sequences in (1, 8):
        result = estimate(request(model="gemma-4-31b", gpu="apple-m4-pro-64gb", concurrent_sequences=sequences, context_tokens=4096), CATALOG)
        assert result.activations_bytes == 2 * 2048 * 262_144 * 2 == 2_147_483_648
