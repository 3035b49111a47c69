"""Engine policies against hand arithmetic from each engine's published allocation rules."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.catalog import load_catalog
from core.engines.base import EngineSettings
from core.estimate import MemoryRequest, PlanningError, estimate
from core.fit import fit
from core.sweep import sweep

MIB, GIB = 2**20, 2**30
CATALOG = load_catalog()


def pad(x: int, n: int = 256) -> int:
    return -(-x // n) * n


# --- llama.cpp (src/llama-context.cpp, src/llama-kv-cache-iswa.cpp) ---------------------------

def llama(model="e4b", context=4096, sequences=1, **knobs):
    # -np set explicitly (one stream per sequence) unless a test asks for llama-server's auto slots.
    knobs.setdefault("auto_slots", False)
    return estimate(
        MemoryRequest(
            model=model,
            engine="llama.cpp",
            weight_format="q4_k_m",
            kv_cache_dtype=knobs.pop("kv", "fp16"),
            context_tokens=context,
            concurrent_sequences=sequences,
            engine_settings=EngineSettings(**knobs),
        )
    )


def test_llama_cpp_pads_the_context_to_256_cells():
    # E4B full layers: 4 layers x 2 x 2 heads x 512 x 2 B = 16,384 B per cell
    result = llama(context=1000)
    assert result.engine_report["full_attention_cells"] == 1024
    assert result.kv_cache.full_attention_bytes == 16_384 * 1024


def test_llama_server_auto_slots_share_one_pool_with_four_windows():
    # llama-server -np auto: "n_parallel is set to auto, using n_parallel = 4 and kv_unified = true"
    # (tools/server; docs/research/runtime-rules.md A2). One stream of n_ctx cells; the SWA cache
    # holds a window per slot: pad(min(8192, 512 x 4 + 2048), 256) = 4096 cells, as the public
    # E2B log (ub 2048, -c 8192) prints: non-SWA 8192 cells, SWA 4096 cells, 48 + 48 MiB.
    result = llama(model="e2b", context=8192, n_ubatch=2048, auto_slots=True)
    report = result.engine_report
    assert (report["n_seq_max"], report["streams"], report["kv_unified"]) == (4, 1, True)
    assert (report["full_attention_cells"], report["sliding_attention_cells"]) == (8192, 4096)
    # E2B f16: 3 full layers x 2 KiB x 8192 cells; 12 sliding layers x 1 KiB x 4096 cells.
    assert (report["full_attention_mib"], report["sliding_attention_mib"]) == (48.0, 48.0)


def test_llama_server_auto_slots_give_way_to_explicit_np_above_four():
    # Eight concurrent requests need -np 8: eight streams of pad(8 x 4096 / 8) cells.
    result = llama(context=4096, sequences=8, auto_slots=True)
    assert (result.engine_report["n_seq_max"], result.engine_report["streams"]) == (8, 8)


def test_llama_cpp_separate_streams_per_sequence():
    # -c 40000 --parallel 4: n_ctx = pad(40000) = 40192; n_ctx_seq = pad(40192 / 4) = 10240;
    # each of 4 streams: full 10240 cells, SWA pad(min(10240, 512 x 1 + 512)) = 1024 cells.
    result = llama(context=10_000, sequences=4)
    report = result.engine_report
    assert (report["n_ctx_seq"], report["streams"]) == (10_240, 4)
    assert report["sliding_attention_cells"] == 1024
    assert result.kv_cache.full_attention_bytes == 16_384 * 10_240 * 4
    # E4B sliding: 20 layers x 2 x 2 x 256 x 2 B = 40,960 B per cell
    assert result.kv_cache.sliding_attention_bytes == 40_960 * 1024 * 4


def test_llama_cpp_unified_cache_widens_the_window_by_sequences():
    # --kv-unified: one stream of n_ctx = 40192 cells; SWA pad(min(40192, 512 x 4 + 512)) = 2560.
    result = llama(context=10_000, sequences=4, kv_unified=True)
    report = result.engine_report
    assert (report["n_ctx_seq"], report["streams"]) == (40_192, 1)
    assert report["sliding_attention_cells"] == 2560
    assert result.kv_cache.sliding_attention_bytes == 40_960 * 2560


def test_llama_cpp_swa_full_gives_sliding_layers_the_context():
    result = llama(context=8192, swa_full=True)
    assert result.engine_report["sliding_attention_cells"] == 8192


@pytest.mark.parametrize(("kv", "bits"), [("q8_0", 8.5), ("q4_0", 4.5)])
def test_llama_cpp_quantised_cache_bits(kv, bits):
    # 31B full: 10 layers x 2 x 4 x 512 values per cell; q8_0 stores 34 B per 32 values.
    result = llama(model="31b", context=32_768, kv=kv)
    assert result.kv_cache.full_attention_bytes == 10 * 2 * 4 * 512 * bits / 8 * 32_768


def test_llama_cpp_splits_layers_not_heads_across_gpus():
    one = llama(model="e2b", context=32_768)
    two = estimate(
        MemoryRequest(model="e2b", engine="llama.cpp", weight_format="q4_0", kv_cache_dtype="fp16", context_tokens=32_768, gpus=3,
                      engine_settings=EngineSettings(auto_slots=False))
    )
    assert two.kv_cache_bytes == one.kv_cache_bytes


# --- vLLM (vllm/v1/core/kv_cache_utils.py) ------------------------------------------------------

def vllm(model="31b", context=131_072, sequences=1, gpus=1, gpu=None, **knobs):
    return estimate(
        MemoryRequest(
            model=model,
            engine="vllm",
            weight_format=knobs.pop("weights", "fp8"),
            kv_cache_dtype=knobs.pop("kv", "bf16"),
            context_tokens=context,
            concurrent_sequences=sequences,
            gpus=gpus,
            gpu=gpu,
            engine_settings=EngineSettings(**knobs),
        )
    )


def test_vllm_31b_blocks_by_hand():
    # Pages: sliding 16 tokens x 16 heads x 256 x 2 (K, V) x 2 B = 262,144 B; full layers
    # (4 heads x 512) get 32-token blocks to match. Layers 50 + 10: group size 10, so 5 sliding
    # groups and 1 full group; a pool block is one page for each of the 10 layers.
    # In flight: no GPU named, so vLLM's step when it cannot read the device, 2048 batched
    # tokens (arg_utils.py _set_default_args: device_memory = 0), x 2 (async). Sliding blocks
    # per group: ceil(min(1023 + 4096, 131072) / 16) + 1 = 320 + 1; full: ceil(131072 / 32) = 4096.
    blocks = 5 * (math.ceil(5119 / 16) + 1) + 4096
    assert blocks == 5701
    result = vllm(kv_cache_memory_bytes=40 * GIB)
    report = result.engine_report
    assert (report["page_bytes"], report["group_size"], report["kv_cache_groups"]) == (262_144, 10, 6)
    assert report["blocks_per_request"] == blocks
    assert report["num_blocks"] == 40 * GIB // 262_144 // 10 == 16_384
    assert report["max_concurrency"] == pytest.approx(16_384 / 5701)
    assert report["kv_cache_tokens"] == int(16_384 / 5701 * 131_072)
    assert report["kv_cache_tokens_legacy"] == 16_384 // 6 * 16
    assert result.kv_cache_bytes == blocks * 262_144 * 10


def test_vllm_e2b_raises_the_sliding_block_size():
    # E2B sliding pages (1 head x 256) are half the full pages (1 x 512): sliding blocks of 32.
    # 12 sliding + 3 full owning layers: group size 3, 4 sliding groups + 1 full group.
    report = vllm(model="e2b", context=8192, weights="bf16").engine_report
    assert report["block_tokens"] == {"sliding_attention": 32, "full_attention": 16}
    assert (report["group_size"], report["kv_cache_groups"]) == (3, 5)
    assert report["page_bytes"] == 16 * 1 * 512 * 2 * 2


def test_vllm_tensor_parallel_halves_pages_and_replicates_single_heads():
    assert vllm(gpus=2).engine_report["page_bytes"] == 262_144 // 2
    # E2B has one kv head: both ranks keep it, so the cache across ranks doubles.
    one = vllm(model="e2b", context=8192, weights="bf16")
    two = vllm(model="e2b", context=8192, weights="bf16", gpus=2)
    assert two.kv_cache_bytes == 2 * one.kv_cache_bytes


def test_vllm_claims_utilisation_of_the_gpu():
    result = vllm(gpu="h100", gpu_memory_utilization=0.8)
    h100 = CATALOG.accelerator("h100").memory_bytes
    assert result.engine_report["reserved_bytes"] == math.floor(h100 * 0.8)
    budget = result.engine_report["kv_cache_memory_bytes"]
    non_kv = result.weights_bytes + result.activations_bytes + result.overhead_bytes
    assert budget == math.floor(h100 * 0.8) - non_kv
    assert result.engine_report["num_blocks"] == budget // 262_144 // 10
    fitted = fit(MemoryRequest(model="31b", engine="vllm", weight_format="fp8", gpu="h100", context_tokens=131_072, engine_settings=EngineSettings(gpu_memory_utilization=0.8)))
    # Most sequences equals the floor of the logged concurrency.
    assert fitted.max_concurrent_sequences == math.floor(result.engine_report["max_concurrency"])


def test_vllm_without_the_hybrid_manager_sliding_layers_pay_the_whole_context():
    # 31B at 131,072 tokens: every group holds ceil(T / its block) blocks: 5 x 8192 + 4096.
    report = vllm(disable_hybrid_kv_cache_manager=True).engine_report
    assert report["blocks_per_request"] == 5 * 131_072 // 16 + 131_072 // 32


def test_vllm_fp8_cache_halves_the_pages():
    assert vllm(kv="fp8").engine_report["page_bytes"] == 262_144 // 2


def test_vllm_with_no_room_for_a_kv_cache_says_so_and_does_not_fit():
    # The request: E2B gptq-int4 on 2 x H100 at gpu_memory_utilization 0.05. Per GPU
    # vLLM claims floor(85,520,809,984 x 0.05) = 4,276,040,499 bytes; the KV budget is that
    # less each rank's half of weights, profiling activations and overhead (engines.md), which
    # is negative here. vLLM then raises "No available memory for the cache blocks"
    # (vllm/v1/core/kv_cache_utils.py, _check_enough_kv_cache_memory) instead of starting.
    request = MemoryRequest(
        model="e2b", engine="vllm", weight_format="gptq-int4", kv_cache_dtype="fp8", gpu="h100", gpus=2,
        engine_settings=EngineSettings(gpu_memory_utilization=0.05),
    )
    result = estimate(request)
    h100 = CATALOG.accelerator("h100").memory_bytes
    claimed = math.floor(h100 * 0.05)
    assert claimed == 4_276_040_499
    budget = claimed - math.ceil((result.weights_bytes + result.activations_bytes + result.overhead_bytes) / 2)
    assert budget < 0
    # One 8,192-token request, checked as vLLM does (one step's 8,192 batched tokens in the
    # window): fp8 pages of 16 x 1 head x 512 x 2 = 16,384 B, group size 3; 4 sliding groups of
    # ceil(min(511 + 8192, 8192) / 32) + 1 = 257 blocks and 1 full group of 8192 / 16 = 512.
    needed = 16_384 * 3 * (4 * 257 + 512)
    assert needed == 75_694_080
    report = result.engine_report
    assert report["kv_cache_memory_bytes"] == 0
    assert report["kv_cache_needed_bytes"] == needed
    assert report["kv_cache_shortfall_bytes"] == needed - budget
    assert report["no_room_for_kv_cache"] is True and report["kv_cache_verdict"] == "no_room"
    assert (report["num_blocks"], report["max_concurrency"], report["kv_cache_tokens"], report["kv_cache_tokens_legacy"]) == (0, 0, 0, 0)
    assert report["log_lines"] == [
        "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
        "when initializing the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ "
        "for more details."
    ]
    fitted = fit(request)
    assert (fitted.fits, fitted.verdict, fitted.headroom_bytes) == (False, "does_not_fit", 0)
    assert fitted.shortfall_bytes >= 2 * (needed - budget)
    assert fitted.engine_error.startswith("No available memory for the cache blocks.")
    assert (fitted.max_context_tokens, fitted.max_concurrent_sequences) == (0, 0)


def test_vllm_pool_smaller_than_one_request_is_refused_with_the_longest_length_that_fits():
    # 31B fp8 weights, bf16 cache, --kv-cache-memory-bytes 1 GiB, max_model_len 131,072. As
    # vLLM checks it, one request needs 262,144 B x 10 layers per pool block times
    # 5 x (ceil(min(1023 + 8192, 131072) / 16) + 1) + 131072 / 32 = 5 x 577 + 4096 = 6,981 blocks.
    needed = 262_144 * 10 * 6981
    assert needed == 18_300_272_640  # 17.04 GiB
    # Longest length within 1 GiB = 409.6 blocks: T = 1168 takes 5 x (73 + 1) + 37 = 407
    # blocks; T = 1169 takes 5 x (74 + 1) + 37 = 412.
    request = MemoryRequest(
        model="31b", engine="vllm", weight_format="fp8", context_tokens=131_072, gpu="h100",
        engine_settings=EngineSettings(kv_cache_memory_bytes=GIB),
    )
    report = estimate(request).engine_report
    assert report["kv_cache_verdict"] == "below_one_request" and report["no_room_for_kv_cache"] is False
    assert report["kv_cache_memory_bytes"] == GIB
    assert report["kv_cache_shortfall_bytes"] == needed - GIB
    assert report["num_blocks"] == GIB // 262_144 // 10 == 409
    (line,) = report["log_lines"]
    assert line.startswith(
        "ValueError: To serve at least one request with the models's max seq len (131072), (17.04 GiB KV "
        "cache is needed, which is larger than the available KV cache memory (1.00 GiB). Based on the "
        "available memory, the estimated maximum model length is 1168. Try increasing"
    )
    fitted = fit(request)
    assert fitted.verdict == "does_not_fit" and fitted.shortfall_bytes >= needed - GIB
    assert "estimated maximum model length is 1168" in fitted.engine_error
    assert fitted.max_context_tokens == 1168 and fitted.max_concurrent_sequences == 0


# --- vLLM's step size and sequence cap (vllm/engine/arg_utils.py @99d7eb5, _set_default_args) ----
# `vllm serve` (UsageContext.OPENAI_API_SERVER) with neither flag: 8,192 batched tokens and 1,024
# sequences when the device reports >= 70 GiB (75,161,927,680 B) and its name has no "a100",
# else 2,048 and 256; 2,048 and 256 also when no device can be read (device_memory = 0).
SEVENTY_GIB = 70 * GIB


@pytest.mark.parametrize(
    ("gpu", "step", "seqs"),
    [
        ("nvidia-rtx-4090", 2048, 256),  # 24 GiB (nvidia-smi 24,564 MiB), below 70 GiB
        ("nvidia-a100-80gb-sxm", 2048, 256),  # 80 GiB, but an A100 (vLLM PR #17885)
        ("nvidia-h100-sxm", 8192, 1024),  # 81,559 MiB = 79.6 GiB
        ("nvidia-h200-sxm", 8192, 1024),  # 141 GB
        (None, 2048, 256),  # no device named: vLLM's fallback when it cannot read one
    ],
)
def test_vllm_takes_its_own_step_and_sequence_cap_for_the_gpu(gpu, step, seqs):
    from core.engines.vllm import VllmPolicy

    accelerator = CATALOG.accelerator(gpu) if gpu else None
    if accelerator is not None:
        assert (accelerator.memory_bytes >= SEVENTY_GIB) == (gpu != "nvidia-rtx-4090")
    settings = VllmPolicy().device_settings(EngineSettings(), accelerator)
    assert (settings.max_num_batched_tokens, settings.max_num_seqs) == (step, seqs)
    # Async scheduling keeps two of those steps in each sliding window.
    report = vllm(gpu=gpu, kv_cache_memory_bytes=40 * GIB).engine_report
    assert report["in_flight_tokens"] == 2 * step


def test_vllm_keeps_a_step_and_cap_the_user_set_on_any_gpu():
    from core.engines.vllm import VllmPolicy

    h100 = CATALOG.accelerator("nvidia-h100-sxm")
    settings = VllmPolicy().device_settings(EngineSettings(max_num_batched_tokens=4096, max_num_seqs=8), h100)
    assert (settings.max_num_batched_tokens, settings.max_num_seqs) == (4096, 8)
    # One set, the other still vLLM's default for the GPU.
    settings = VllmPolicy().device_settings(EngineSettings(max_num_batched_tokens=4096), h100)
    assert (settings.max_num_batched_tokens, settings.max_num_seqs) == (4096, 1024)


# 31B: hidden 5,376, MLP 21,504 (the largest layer: 3 x 21,504 gate/up/product values, above
# full attention's 2 x 32 x 512 + 2 x 4 x 512 = 36,864), no per-layer inputs, vocab 262,144.
# core/engines/vllm.py's profiling run: step x (3 x 5,376 + 3 x 21,504) values x 2 B, plus
# max_num_seqs x 262,144 fp32 sampler logits.
GEMMA4_31B_PROFILE_BYTES_PER_TOKEN = (3 * 5376 + 3 * 21_504) * 2
GEMMA4_VOCAB_LOGIT_BYTES = 262_144 * 4


def test_vllm_profiling_run_follows_the_gpus_default_step():
    assert GEMMA4_31B_PROFILE_BYTES_PER_TOKEN == 161_280
    # With the device's own sequence cap (256 below 70 GiB, 1,024 above) set explicitly:
    small = vllm(gpu="nvidia-rtx-4090", kv_cache_memory_bytes=GIB, max_num_seqs=256)
    large = vllm(gpu="nvidia-h100-sxm", kv_cache_memory_bytes=GIB, max_num_seqs=1024)
    # 2,048 x 161,280 + 256 x 1,048,576 and 8,192 x 161,280 + 1,024 x 1,048,576.
    assert small.activations_bytes == 2048 * 161_280 + 256 * GEMMA4_VOCAB_LOGIT_BYTES == 598_736_896
    assert large.activations_bytes == 8192 * 161_280 + 1024 * GEMMA4_VOCAB_LOGIT_BYTES == 2_394_947_584
    # Set by hand, the step is the same on both GPUs.
    pinned = vllm(gpu="nvidia-rtx-4090", kv_cache_memory_bytes=GIB, max_num_batched_tokens=8192, max_num_seqs=256)
    assert pinned.activations_bytes == 8192 * 161_280 + 256 * GEMMA4_VOCAB_LOGIT_BYTES
    # Unset, the cap is the plan's own sequences, as the launch command writes --max-num-seqs:
    # one sequence samples one vocabulary of fp32 logits.
    planned = vllm(gpu="nvidia-h100-sxm", kv_cache_memory_bytes=GIB)
    assert planned.activations_bytes == 8192 * 161_280 + 1 * GEMMA4_VOCAB_LOGIT_BYTES


def test_vllm_start_check_counts_one_step_whatever_async_scheduling_keeps():
    # vllm/v1/kv_cache_interface.py @bc8282e SlidingWindowSpec.max_memory_usage_bytes: one
    # request's window is min(W - 1 + max_num_batched_tokens, max_model_len); nothing of async
    # scheduling. On an H100 (step 8,192), 31B at 131,072 tokens: 5 x (ceil(9215 / 16) + 1) +
    # 4096 = 6,981 blocks of 10 pages of 262,144 B, with async scheduling on or off. The pool
    # itself holds the two steps in flight: 5 x (ceil(17,407 / 16) + 1) + 4096 = 9,541 blocks.
    needed = 262_144 * 10 * (5 * (math.ceil(9215 / 16) + 1) + 4096)
    for async_scheduling, pool_blocks in ((True, 9541), (False, 6981)):
        report = vllm(gpu="nvidia-h100-sxm", kv_cache_memory_bytes=GIB, async_scheduling=async_scheduling).engine_report
        assert report["kv_cache_needed_bytes"] == needed == 18_300_272_640
        assert report["blocks_per_request"] == pool_blocks


def test_vllm_does_not_load_gguf():
    with pytest.raises(PlanningError, match="vllm does not load"):
        vllm(weights="q4_k_m")


# --- MLX -----------------------------------------------------------------------------------------

def test_mlx_rotating_window_and_256_token_steps():
    result = estimate(MemoryRequest(model="31b", engine="mlx", weight_format="mlx-4bit", context_tokens=10_000))
    # full layers grow in steps of 256: 10,240 tokens; sliding keep exactly W = 1024
    assert result.kv_cache.full_attention_tokens == 10_240
    assert result.kv_cache.sliding_attention_tokens == 1024
    assert result.kv_cache.full_attention_bytes == 81_920 * 10_240
    assert result.kv_cache.sliding_attention_bytes == 819_200 * 1024
    short = estimate(MemoryRequest(model="31b", engine="mlx", weight_format="mlx-4bit", context_tokens=300))
    assert short.kv_cache.sliding_attention_tokens == 512


def test_mlx_runs_only_on_apple_silicon():
    with pytest.raises(PlanningError, match="Apple silicon"):
        estimate(MemoryRequest(model="e2b", engine="mlx", gpu="h100"))


def test_mlx_runs_on_one_device_and_reports_the_wired_limit():
    with pytest.raises(PlanningError, match="one device"):
        estimate(MemoryRequest(model="e2b", engine="mlx", gpus=2))
    report = estimate(MemoryRequest(model="e2b", engine="mlx", gpu="m4 max 128gb")).engine_report
    assert report["wired_limit_bytes"] == CATALOG.accelerator("m4 max 128gb").memory_bytes
    assert "iogpu.wired_limit_mb" in report["raise_wired_limit"]


# --- every engine: monotone, and the sweep equals the scalar path -------------------------------

ENGINE_FORMATS = {"transformers": "bf16", "llama.cpp": "q4_k_m", "vllm": "fp8", "mlx": "mlx-4bit"}
ENGINE_KV = {"transformers": "bf16", "llama.cpp": "q8_0", "vllm": "fp8", "mlx": "bf16"}


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from(list(ENGINE_FORMATS)),
    st.sampled_from([m.id for m in CATALOG.models]),
    st.integers(1, 60_000),
    st.integers(1, 16),
    st.integers(1, 5_000),
    st.integers(0, 8),
    st.booleans(),
)
def test_memory_never_falls_as_context_or_sequences_rise(engine, model, tokens, sequences, more, extra_sequences, unified):
    knobs = EngineSettings(kv_unified=unified)
    base = MemoryRequest(model=model, engine=engine, weight_format=ENGINE_FORMATS[engine], kv_cache_dtype=ENGINE_KV[engine], context_tokens=tokens, concurrent_sequences=sequences, engine_settings=knobs)
    first = estimate(base)
    longer = estimate(base.model_copy(update={"context_tokens": tokens + more}))
    wider = estimate(base.model_copy(update={"concurrent_sequences": sequences + extra_sequences}))
    assert longer.total_bytes >= first.total_bytes and longer.kv_cache_bytes >= first.kv_cache_bytes
    assert wider.total_bytes >= first.total_bytes


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(list(ENGINE_FORMATS)),
    st.lists(st.integers(1, 131_072), min_size=1, max_size=4, unique=True),
    st.lists(st.integers(1, 64), min_size=1, max_size=3, unique=True),
    st.sampled_from([None, "h100", "rtx-4090", "m4 max 128gb"]),
    st.booleans(),
)
def test_sweep_equals_scalar_for_every_engine(engine, contexts, batches, gpu, unified):
    knobs = EngineSettings(kv_unified=unified)
    models = [m.id for m in CATALOG.models]
    frame = sweep(models, [ENGINE_FORMATS[engine]], [ENGINE_KV[engine]], contexts, batches, engine=engine, gpu=gpu, engine_settings=knobs)
    # MLX runs only on Apple silicon, vLLM not at all there (runtimes.md §0).
    on_apple = gpu is not None and CATALOG.accelerator(gpu).kind == "apple"
    runs_here = not ((engine == "mlx" and gpu is not None and not on_apple) or (engine == "vllm" and on_apple))
    expected = sum(len(batches) * sum(t <= m.max_context_tokens for t in contexts) for m in CATALOG.models)
    assert len(frame) == (expected if runs_here else 0)
    for row in frame.itertuples():
        scalar = estimate(
            MemoryRequest(model=row.model, engine=engine, weight_format=row.weight_format, kv_cache_dtype=row.kv_cache_dtype, context_tokens=row.context_tokens, concurrent_sequences=row.concurrent_sequences, gpu=gpu, engine_settings=knobs)
        )
        assert (row.total_bytes, row.kv_full_attention_bytes, row.kv_sliding_attention_bytes, row.activations_bytes) == (
            scalar.total_bytes, scalar.kv_cache.full_attention_bytes, scalar.kv_cache.sliding_attention_bytes, scalar.activations_bytes
        )
        if gpu:
            assert row.usable_bytes == fit(
                MemoryRequest(model=row.model, engine=engine, weight_format=row.weight_format, kv_cache_dtype=row.kv_cache_dtype, context_tokens=row.context_tokens, concurrent_sequences=row.concurrent_sequences, gpu=gpu, engine_settings=knobs)
            ).usable_bytes


def test_llama_cpp_without_flash_attention_pads_every_v_cache_to_the_widest_layer():
    # llama-kv-cache.cpp: with FA off, V is stored transposed at n_embd_v_gqa_max for every layer.
    # 31B: full layers K 4 x 512 = 2048, V padded to the sliding layers' 16 x 256 = 4096.
    # 10 full layers x (2048 + 4096) x 2 B x 8192 cells = 960 MiB (640 MiB with FA: 2 x 2048).
    on = llama(model="31b", context=8192)
    off = llama(model="31b", context=8192, flash_attention=False)
    assert on.engine_report["full_attention_mib"] == 640.0
    assert off.engine_report["full_attention_mib"] == 960.0
    # Sliding layers are the widest already: 50 x (4096 + 4096) x 2 B x pad(1024 + 512) cells.
    assert off.engine_report["sliding_attention_mib"] == on.engine_report["sliding_attention_mib"] == 50 * 8192 * 2 * 1536 / MIB


def test_llama_cpp_refuses_a_quantised_v_cache_without_flash_attention():
    with pytest.raises(PlanningError, match="requires Flash Attention"):
        llama(model="31b", context=8192, kv="q8_0", flash_attention=False)
