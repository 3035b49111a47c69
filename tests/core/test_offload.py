"""CPU offload (core.offload, core.fit): llama-server --fit, vLLM --cpu-offload-gb, accelerate.

Expected values come from the runtimes' rules as the research notes quote them
(docs/research/runtime-rules.md A1 --fit, C5 --cpu-offload-gb, D accelerate), hand arithmetic
from the architecture (/work/shared/facts/gemma4-architecture.md) and the issue's figures for the
host (32 GiB assumed for a laptop, less 4 GiB for the OS). Byte totals the code computes (a
model's total, its expert bytes) are used only as inputs to those rules, never as expected
values."""

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.catalog import load_catalog
from core.engines.base import EngineSettings
from core.estimate import MemoryRequest, estimate
from core.fit import fit

CATALOG = load_catalog()
GIB, MIB = 2**30, 2**20
FIT_TARGET = 1024 * MIB  # common/common.h: fit_params_target = 1024 MiB per device

E4B, MOE, DENSE = "gemma-4-e4b", "gemma-4-26b-a4b", "gemma-4-31b"
LAYERS = {"gemma-4-e2b": 35, E4B: 42, MOE: 30, DENSE: 60}
# 26B-A4B: 128 experts, top-8 routed (gemma4-architecture.md, Mixture of experts).
EXPERTS, TOP_K = 128, 8


def llama(model: str, gpu: str, context: int = 8192, weights: str = "gguf-q4_k_m", **fields) -> MemoryRequest:
    return MemoryRequest(
        model=model, engine="llama.cpp", weight_format=weights, kv_cache_dtype="fp16", context_tokens=context, gpu=gpu,
        **fields,
    )


def with_device(gpu: str, **changes):
    """The catalogue with one device changed (same id, so requests still name it)."""
    device = CATALOG.accelerator(gpu).model_copy(update=changes)
    return CATALOG.with_accelerators((device,))


def expert_bytes(scenario: MemoryRequest) -> int:
    (experts,) = [w.bytes for w in estimate(scenario, CATALOG).weights if w.component == "experts"]
    return experts


SIXTEEN_GB = "nvidia-rtx-4080"  # nvidia-smi 16376 MiB
LAPTOP = "nvidia-rtx-4060-laptop"
LAPTOP_6GB = LAPTOP  # resized where a test needs the public log's 6 GB card


# --- llama-server --fit: when it changes nothing -----------------------------------------------

def _device_leaving(scenario: MemoryRequest, free_bytes: int, gpus: int = 1):
    """A catalogue whose copy of the request's GPU leaves `free_bytes` usable beyond the total."""
    base = fit(scenario, CATALOG)
    memory = CATALOG.accelerator(scenario.gpu).memory_bytes
    reserved = memory - base.usable_bytes // gpus  # usable = gpus x (memory - reserve)
    per_gpu = -(-(base.total_bytes + free_bytes) // gpus)
    return with_device(scenario.gpu, memory_bytes=per_gpu + reserved)


@pytest.mark.parametrize("free", [FIT_TARGET + MIB, FIT_TARGET, 4 * GIB])
def test_fit_with_at_least_the_target_free_changes_nothing(free):
    # common_params_fit_impl: "will leave N >= 1024 MiB of free device memory, no changes needed".
    scenario = llama(E4B, "nvidia-rtx-4090")
    result = fit(scenario, _device_leaving(scenario, free))
    assert result.usable_bytes - result.total_bytes >= free - 1
    assert result.offload is None
    assert result.verdict in ("fits", "tight")


@pytest.mark.parametrize("free", [FIT_TARGET - 1, FIT_TARGET // 2, 1, 0])
def test_fit_within_the_last_gib_offloads(free):
    # Fits in the usable memory, but not with --fit-target free: --fit moves a layer.
    scenario = llama(E4B, "nvidia-rtx-4090")
    result = fit(scenario, _device_leaving(scenario, free))
    assert result.total_bytes <= result.usable_bytes
    assert result.offload is not None
    assert result.offload.method == "llama.cpp --fit"
    assert result.verdict == "fits_with_offload"
    assert result.offload.device_bytes <= result.usable_bytes - FIT_TARGET
    assert result.offload.gpu_layers < LAYERS[E4B]


def test_a_larger_fit_target_moves_layers_sooner():
    # -fitt 4096: 2 GiB free is no longer enough.
    settings_ = EngineSettings(fit_target_mib=4096)
    scenario = llama(E4B, "nvidia-rtx-4090", engine_settings=settings_)
    catalog = _device_leaving(scenario, 2 * GIB)
    result = fit(scenario, catalog)
    assert result.offload is not None
    assert result.offload.device_bytes <= result.usable_bytes - 4096 * MIB
    default = llama(E4B, "nvidia-rtx-4090")
    assert fit(default, _device_leaving(default, 2 * GIB)).offload is None


def test_two_gpus_keep_the_target_free_on_each():
    # One margin per device (fit_params_target is a vector of llama_max_devices() entries).
    scenario = llama(DENSE, "nvidia-rtx-4090", gpus=2)
    catalog = _device_leaving(scenario, int(1.5 * GIB), gpus=2)
    result = fit(scenario, catalog)
    assert result.usable_bytes - result.total_bytes >= int(1.5 * GIB) - 2
    assert result.offload is not None, "1.5 GiB free over two GPUs is less than 2 x 1024 MiB"
    assert result.offload.device_bytes <= result.usable_bytes - 2 * FIT_TARGET


# --- The figures --fit compares: a public llama-server log -------------------------------------

def test_fit_projection_of_the_public_e2b_log():
    """runtime-rules.md F-1: llama-server b9849, Gemma 4 E2B Q4 (token_embd and PLE in Q6_K, the
    rest Q4_0), --ctx-size 8192 -b 2048 -ub 2048, -np auto, no --mmproj:
    CPU_Mapped model buffer 2152.50 MiB, Vulkan1 model buffer 1341.76 MiB, non-SWA 8192 cells
    48 MiB, SWA 4096 cells 48 MiB, Vulkan1 compute buffer 560.07 MiB, and "projected to use 1997
    MiB of device memory" (= 1341.76 + 48 + 48 + 560.07; host buffers not counted)."""
    scenario = MemoryRequest(
        model="gemma-4-e2b", engine="llama.cpp", weight_format="gguf-q4_0", kv_cache_dtype="fp16", context_tokens=8192,
        text_only=True, engine_settings=EngineSettings(n_ubatch=2048),
    )
    report = estimate(scenario, CATALOG).engine_report
    assert report["model_buffer_device_mib"] == pytest.approx(1341.76, abs=0.01)
    assert report["model_buffer_host_mib"] == pytest.approx(2152.50, abs=0.01)
    assert (report["full_attention_mib"], report["sliding_attention_mib"]) == (48.0, 48.0)
    # The compute buffer is an estimate (backend-dependent): the projection within 10 %.
    assert report["fit_projected_mib"] == pytest.approx(1997, rel=0.10)


def test_fit_changes_nothing_for_the_public_e2b_log():
    # F-1: 5223 MiB free on the RTX 3060 Laptop -> "will leave 3225 >= 1024 MiB of free device
    # memory, no changes needed". The planner's usable memory is before the CUDA context it
    # counts itself: give the copy 5223 MiB free after that context.
    scenario = MemoryRequest(
        model="gemma-4-e2b", engine="llama.cpp", weight_format="gguf-q4_0", kv_cache_dtype="fp16", context_tokens=8192,
        text_only=True, gpu=LAPTOP_6GB, engine_settings=EngineSettings(n_ubatch=2048),
    )
    base = fit(scenario, CATALOG)
    memory = CATALOG.accelerator(LAPTOP_6GB).memory_bytes
    reserved = memory - base.usable_bytes
    overhead = estimate(scenario, CATALOG).overhead_bytes
    catalog = with_device(LAPTOP_6GB, memory_bytes=5223 * MIB + reserved + overhead)
    result = fit(scenario, catalog)
    assert result.offload is None
    assert result.verdict in ("fits", "tight")


# --- llama-server without -c: --fit lowers the context before it moves layers -----------------

def test_e4b_runs_at_its_trained_context_on_an_8_gb_card():
    # runtimes.md §11d B: llama-server defaults, E4B Q4_K_M, 8 GiB GPU: -c 0 -> 131072, 4 slots
    # unified, full-layer KV 2 GiB, SWA 100 MiB, PLE on the host: "fits 8 GiB at full 128K".
    scenario = llama(E4B, "nvidia-rtx-4060-laptop", runtime_context=True)
    assert estimate(scenario, CATALOG).context_tokens == 131_072
    assert fit(scenario, CATALOG).offload is None


def test_fit_lowers_the_context_to_the_largest_multiple_of_256_that_fits():
    # common/fit.cpp: context reduced (linear in n_ctx, rounded down to 256) until the target
    # stays free; one device: "entire model can be fit by reducing context", no layer moves.
    scenario = llama(MOE, "nvidia-rtx-4090", runtime_context=True)
    context = estimate(scenario, CATALOG).context_tokens
    assert 4096 < context < 262_144
    assert context % 256 == 0
    assert fit(scenario, CATALOG).offload is None
    at = llama(MOE, "nvidia-rtx-4090", context=context)
    above = llama(MOE, "nvidia-rtx-4090", context=context + 256)
    assert fit(at, CATALOG).offload is None
    assert fit(above, CATALOG).offload is not None


def test_fit_stops_at_fit_ctx_and_then_moves_layers():
    # --fit-ctx 4096: the context is not lowered further; layers move instead.
    scenario = llama(DENSE, "nvidia-rtx-4060-laptop", runtime_context=True)
    assert estimate(scenario, CATALOG).context_tokens == 4096
    offload = fit(scenario, CATALOG).offload
    assert offload is not None and offload.gpu_layers < LAYERS[DENSE]


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from(sorted(LAYERS)),
    weights=st.sampled_from(["gguf-q4_k_m", "gguf-q8_0", "gguf-bf16"]),
    gpu=st.sampled_from(["nvidia-rtx-4060-laptop", "nvidia-rtx-4070", "nvidia-rtx-4080", "nvidia-rtx-4090",
                         "nvidia-a100-40gb-sxm", "nvidia-h100-sxm"]),
)
def test_fit_context_then_layers(model, weights, gpu):
    scenario = llama(model, gpu, weights=weights, runtime_context=True)
    context = estimate(scenario, CATALOG).context_tokens
    result = fit(scenario, CATALOG)
    trained = CATALOG.model(model).max_context_tokens
    assert 4096 <= context <= trained
    assert context % 256 == 0
    if context > 4096:
        assert result.offload is None, "one device: a lowered context is the whole fit"
    if result.offload is not None:
        assert context == 4096


# --- llama-server --fit: MoE experts to the CPU first -------------------------------------------



def test_26b_a4b_at_32k_on_a_16_gb_card_moves_experts_not_layers():
    scenario = llama(MOE, SIXTEEN_GB, context=32_768)
    result = fit(scenario, CATALOG)
    offload = result.offload
    assert result.verdict == "fits_with_offload"
    assert offload is not None and offload.method == "llama.cpp --fit"
    # Every dense part stays on the GPU; only routed experts of some layers go to the CPU.
    assert offload.gpu_layers == offload.total_layers == LAYERS[MOE]
    assert 1 <= offload.cpu_moe_layers <= LAYERS[MOE] - 1
    assert offload.flags == f"--n-cpu-moe {offload.cpu_moe_layers}"
    budget = result.usable_bytes - FIT_TARGET
    assert offload.device_bytes <= budget
    # Every layer holds the same 128 experts: each layer's share is a 30th of them.
    per_layer = expert_bytes(scenario) / LAYERS[MOE]
    moved = offload.cpu_moe_layers * per_layer
    assert offload.host_bytes >= moved
    # Experts come back layer by layer until the GPU is full: one more would not fit.
    assert offload.device_bytes + per_layer > budget
    # Nothing lost: the GPU's share plus the moved experts is the whole total.
    assert offload.device_bytes + moved == pytest.approx(result.total_bytes, abs=2)


def test_expert_bytes_are_those_of_the_architecture():
    # 30 layers x 128 experts x (gate_up 2 x 704 x 2816 + down 2816 x 704) = 22,837,985,280
    # weights; a Q4_K_M file keeps them between Q4_K (4.5 bits) and Q6_K (6.5625 bits).
    weights = 30 * 128 * 3 * 704 * 2816
    assert weights == 22_837_985_280
    experts = expert_bytes(llama(MOE, SIXTEEN_GB, context=32_768))
    assert weights * 4.5 / 8 <= experts <= weights * 6.5625 / 8


def test_moe_decode_reads_the_moved_layers_active_experts():
    # A decode step runs the top-8 of 128 experts of each layer: for the layers whose experts
    # stay in host memory the CPU reads 8/128 = 1/16 of their expert bytes per token.
    scenario = llama(MOE, SIXTEEN_GB, context=32_768)
    offload = fit(scenario, CATALOG).offload
    assert offload is not None
    moved = offload.cpu_moe_layers * expert_bytes(scenario) / LAYERS[MOE]
    assert offload.host_read_bytes_per_token == pytest.approx(moved * TOP_K / EXPERTS, abs=2)


def test_a_smaller_card_moves_more_experts():
    moved = []
    for gpu in ("nvidia-rtx-4060-laptop", "nvidia-rtx-4070", SIXTEEN_GB):
        offload = fit(llama(MOE, gpu, context=32_768), CATALOG).offload
        assert offload is not None and offload.gpu_layers == LAYERS[MOE]
        moved.append(offload.cpu_moe_layers)
    assert moved[0] > moved[1] > moved[2]


def test_26b_a4b_fits_whole_on_a_big_card():
    assert fit(llama(MOE, "nvidia-h100-sxm", context=32_768), CATALOG).offload is None


# --- llama-server --fit: dense models move whole layers, back to front ------------------------

TWELVE_GB = "nvidia-rtx-4070"  # nvidia-smi 12282 MiB

# The largest 31B layer, bounded from above: a full-attention layer (q and o 5376 x 32 x 512,
# k 5376 x 4 x 512; no v_proj) and its MLP (3 x 5376 x 21504), all at Q6_K's 6.5625 bits, plus
# its f16 KV cache (2 x 4 x 512 x 2 B = 8 KiB per cell) at 8,192 cells.
LARGEST_31B_LAYER = (2 * 5376 * 16384 + 5376 * 2048 + 3 * 5376 * 21504) * 6.5625 / 8 + 8192 * 8192


def test_31b_on_a_12_gb_card_moves_whole_layers():
    result = fit(llama(DENSE, TWELVE_GB), CATALOG)
    offload = result.offload
    assert result.verdict == "fits_with_offload"
    assert offload is not None and offload.method == "llama.cpp --fit"
    assert 1 <= offload.gpu_layers < LAYERS[DENSE]
    assert offload.total_layers == LAYERS[DENSE]
    assert offload.cpu_moe_layers == 0
    # -ngl counts the output layer as one more ("offloaded 36/36 layers" for E2B's 35, F-1).
    assert offload.flags == f"-ngl {offload.gpu_layers + 1}"
    budget = result.usable_bytes - FIT_TARGET
    assert offload.device_bytes <= budget
    # Layers fill the GPU until the next one does not fit.
    assert budget - offload.device_bytes < LARGEST_31B_LAYER
    assert offload.device_bytes + offload.host_bytes >= result.total_bytes
    # Decode reads every CPU-side layer's weights from host memory.
    assert 0 < offload.host_read_bytes_per_token <= offload.host_bytes


def test_more_memory_keeps_more_layers_on_the_gpu():
    layers = [
        fit(llama(DENSE, gpu), CATALOG).offload.gpu_layers
        for gpu in ("nvidia-rtx-4060-laptop", TWELVE_GB, SIXTEEN_GB)
    ]
    assert layers[0] < layers[1] < layers[2]


# --- Host RAM ------------------------------------------------------------------------------


def test_a_laptop_without_enough_host_ram_does_not_fit():
    # 31B BF16 GGUF (~62 GB) on an 8 GB laptop GPU: most of it must live in host RAM, and a
    # laptop is assumed to have 32 GiB, of which the OS keeps 4 GiB.
    host_usable = 32 * GIB - 4 * GIB
    result = fit(llama(DENSE, LAPTOP, weights="gguf-bf16"), CATALOG)
    assert result.offload is not None
    assert result.host_usable_bytes == host_usable
    assert result.offload.host_bytes > host_usable
    assert result.verdict == "does_not_fit"
    assert result.fits is False
    assert result.shortfall_bytes == result.offload.host_bytes - host_usable


def test_more_host_ram_lets_the_same_offload_run():
    catalog = with_device(LAPTOP, host_memory_bytes=128 * GIB)
    result = fit(llama(DENSE, LAPTOP, weights="gguf-bf16"), catalog)
    assert result.host_usable_bytes == 128 * GIB - 4 * GIB
    assert result.verdict == "fits_with_offload"
    assert result.shortfall_bytes == 0
    assert result.fits is True


# --- Unified memory never offloads ---------------------------------------------------------------

@pytest.mark.parametrize(
    ("scenario"),
    [
        llama(DENSE, "apple-m4-pro-48gb", weights="gguf-bf16"),
        llama(DENSE, "rpi5-8gb"),
        llama(MOE, "rpi5-8gb", context=32_768),
        llama(DENSE, "iphone-16-pro"),
        MemoryRequest(model=DENSE, engine="mlx", weight_format="bf16", context_tokens=8192, gpu="apple-m4-pro-48gb"),
        MemoryRequest(
            model=DENSE, engine="ollama", weight_format="ollama-q4_k_m", kv_cache_dtype="fp16", context_tokens=8192,
            gpu="rpi5-8gb",
        ),
    ],
)
def test_unified_memory_never_offloads(scenario):
    # Host and accelerator are one memory: there is nowhere else to put the weights.
    result = fit(scenario, CATALOG)
    assert result.total_bytes > result.usable_bytes
    assert result.offload is None
    assert result.verdict == "does_not_fit"
    assert result.host_usable_bytes == 0


# --- vLLM --cpu-offload-gb ------------------------------------------------------------------

def vllm(gpu: str, gpus: int = 1) -> MemoryRequest:
    return MemoryRequest(model=DENSE, engine="vllm", weight_format="bf16", context_tokens=8192, gpu=gpu, gpus=gpus)


@pytest.mark.parametrize(("gpu", "gpus"), [("nvidia-l40s", 1), ("nvidia-a100-40gb-sxm", 1), ("nvidia-rtx-4090", 2)])
def test_vllm_offloads_whole_gib_per_gpu(gpu, gpus):
    """--cpu-offload-gb: "The space in GiB to offload to CPU, per GPU ... a virtual way to
    increase the GPU memory size" (runtime-rules.md C5): each GPU's KV pool grows by exactly the
    weights moved, so the flag is the fewest whole GiB per GPU that give the pool room for one
    request (and the request's total room on the GPUs)."""
    scenario = vllm(gpu, gpus)
    result = fit(scenario, CATALOG)
    offload = result.offload
    assert offload is not None and offload.method == "vLLM --cpu-offload-gb"
    report = estimate(scenario, CATALOG).engine_report
    missing_per_gpu = max(report["kv_cache_shortfall_bytes"], (result.total_bytes - result.usable_bytes) / gpus)
    per_gpu_gib = math.ceil(missing_per_gpu / GIB)
    assert offload.flags == f"--cpu-offload-gb {per_gpu_gib}"
    assert (per_gpu_gib - 1) * GIB < missing_per_gpu <= per_gpu_gib * GIB
    moved = per_gpu_gib * GIB * gpus
    assert offload.host_bytes == moved
    assert offload.device_bytes == result.total_bytes - moved
    # The moved weights cross PCIe for every forward pass.
    assert offload.host_read_bytes_per_token == moved
    assert offload.cpu_moe_layers == 0
    assert 0 <= offload.gpu_layers < offload.total_layers == LAYERS[DENSE]


def test_vllm_that_fits_does_not_offload():
    assert fit(vllm("nvidia-h100-sxm"), CATALOG).offload is None


def test_vllm_offload_beyond_host_ram_does_not_fit():
    # One RTX 4090 (consumer: 32 GiB of host RAM assumed, 28 GiB usable) would need ~47 GiB.
    result = fit(vllm("nvidia-rtx-4090"), CATALOG)
    assert result.offload is not None
    assert result.offload.host_bytes > 28 * GIB
    assert result.verdict == "does_not_fit"
    assert result.shortfall_bytes == result.offload.host_bytes - 28 * GIB


# --- accelerate device_map="auto" ----------------------------------------------------------------

def test_accelerate_max_memory_leaves_room_for_the_cache_and_activations():
    """accelerate's infer_auto_device_map packs *weights* (compute_module_sizes: parameters and
    buffers) into each device's max_memory; the KV cache, activations and the CUDA context are
    allocated on top of that during generate(), and an explicit max_memory also turns off the
    10 % buffer get_balanced_memory keeps on a single GPU (runtime-rules.md D). So the GPU
    budget the planner prints must be the weights it keeps on the GPU, not everything it
    places there."""
    scenario = MemoryRequest(
        model=DENSE, engine="transformers", weight_format="bf16", context_tokens=8192, gpu="nvidia-a100-40gb-sxm"
    )
    result = fit(scenario, CATALOG)
    offload = result.offload
    assert offload is not None and offload.method == "accelerate device_map"
    assert result.verdict == "fits_with_offload"
    detail = estimate(scenario, CATALOG)
    runtime = detail.kv_cache_bytes + detail.activations_bytes + detail.overhead_bytes
    (gpu_mib,) = re.findall(r'GPU: "(\d+)MiB"', offload.flags)
    assert int(gpu_mib) * MIB <= offload.device_bytes - runtime


def test_accelerate_moves_exactly_the_missing_weights():
    scenario = MemoryRequest(
        model=DENSE, engine="transformers", weight_format="bf16", context_tokens=8192, gpu="nvidia-a100-40gb-sxm"
    )
    result = fit(scenario, CATALOG)
    offload = result.offload
    assert offload is not None
    assert offload.device_bytes + offload.host_bytes >= result.total_bytes
    assert offload.device_bytes <= result.usable_bytes
    assert offload.host_read_bytes_per_token == offload.host_bytes


# --- Property: llama.cpp on a discrete GPU never loses or overfills ----------------------------

DISCRETE_GPUS = [
    "nvidia-rtx-4060-laptop",
    "nvidia-rtx-3060-12gb",
    "nvidia-rtx-4070",
    "nvidia-rtx-4080",
    "nvidia-rtx-4090",
    "amd-rx-7900-gre",
    "intel-arc-b580",
    "nvidia-a100-40gb-sxm",
    "nvidia-h100-sxm",
]
GGUF_FORMATS = ["gguf-q4_k_m", "gguf-q8_0", "gguf-bf16", "gguf-q4_0", "gguf-iq4_xs", "gguf-q6_k"]


@settings(max_examples=80, deadline=None)
@given(
    model=st.sampled_from(sorted(LAYERS)),
    weights=st.sampled_from(GGUF_FORMATS),
    gpu=st.sampled_from(DISCRETE_GPUS),
    gpus=st.integers(1, 2),
    context=st.integers(256, 131_072),
    sequences=st.integers(1, 6),
    auto_slots=st.booleans(),
    kv=st.sampled_from(["fp16", "q8_0"]),
)
def test_llama_fit_accounts_for_everything(model, weights, gpu, gpus, context, sequences, auto_slots, kv):
    scenario = MemoryRequest(
        model=model, engine="llama.cpp", weight_format=weights, kv_cache_dtype=kv, context_tokens=context,
        concurrent_sequences=sequences, gpu=gpu, gpus=gpus, engine_settings=EngineSettings(auto_slots=auto_slots),
    )
    result = fit(scenario, CATALOG)
    budget = result.usable_bytes - gpus * FIT_TARGET
    offload = result.offload
    if offload is None:
        # --fit changes nothing only when the target stays free on every device.
        assert result.total_bytes <= budget
        assert result.verdict in ("fits", "tight")
        return
    assert result.total_bytes > budget
    assert offload.method == "llama.cpp --fit"
    assert offload.device_bytes + offload.host_bytes >= result.total_bytes, "nothing lost"
    assert offload.device_bytes <= budget
    assert offload.total_layers == LAYERS[model]
    assert 0 <= offload.gpu_layers <= offload.total_layers
    assert 0 <= offload.cpu_moe_layers <= offload.total_layers
    if model != MOE:
        assert offload.cpu_moe_layers == 0
    assert offload.host_read_bytes_per_token <= offload.host_bytes
    assert result.verdict in ("fits_with_offload", "does_not_fit")
    assert result.shortfall_bytes == max(0, offload.host_bytes - result.host_usable_bytes)
