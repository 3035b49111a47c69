"""Ollama >= 0.30 (llama-server underneath): default context tiers, the automatic batch, the
PredictServerVRAM formula, the KV layout of OLLAMA_NUM_PARALLEL sequences and the library blobs.

Expected values are Ollama's own rules as read in its source (docs/research/runtime-rules.md B,
/work/shared/facts/runtimes.md §2), hand arithmetic from the architecture
(/work/shared/facts/gemma4-architecture.md) and public logs (runtime-rules.md F), never the
code's output."""

import pytest

from core.catalog import load_catalog
from core.engines.ollama import auto_num_batch, default_num_ctx, predicted_vram_bytes
from core.estimate import MemoryRequest, estimate

CATALOG = load_catalog()
GIB, MIB = 2**30, 2**20
GB = 10**9

E2B, E4B, MOE, DENSE = "gemma-4-e2b", "gemma-4-e4b", "gemma-4-26b-a4b", "gemma-4-31b"
TRAINED = {E2B: 131_072, E4B: 131_072, MOE: 262_144, DENSE: 262_144}


def ollama(model: str, gpu: str | None = "nvidia-h100-sxm", **fields) -> MemoryRequest:
    fields.setdefault("context_tokens", 8192)
    return MemoryRequest(
        model=model, engine="ollama", weight_format="ollama-q4_k_m", kv_cache_dtype="fp16", gpu=gpu, **fields
    )


# --- default_num_ctx: server/routes.go Serve, llm/server.go NewLlamaServer, server/sched.go ---

@pytest.mark.parametrize(
    ("total_vram", "expected"),
    [
        (0, 4096),
        (int(22.99 * GIB), 4096),
        (23 * GIB - 1, 4096),
        (23 * GIB, 32_768),  # "slightly lower thresholds (47/23 GiB vs. 48/24 GiB)"
        (int(46.99 * GIB), 32_768),
        (47 * GIB - 1, 32_768),
        (47 * GIB, 262_144),
        (1024 * GIB, 262_144),
    ],
)
def test_default_num_ctx_tiers(total_vram, expected):
    assert default_num_ctx(total_vram, 262_144, vision=False) == expected
    assert default_num_ctx(total_vram, 262_144, vision=True) == expected


@pytest.mark.parametrize("model", [E2B, E4B, MOE, DENSE])
def test_default_num_ctx_is_clamped_to_the_trained_context(model):
    # NewLlamaServer: "requested context size too large for model" -> opts.NumCtx = trainCtx.
    assert default_num_ctx(47 * GIB, TRAINED[model], vision=True) == TRAINED[model]
    assert default_num_ctx(23 * GIB, TRAINED[model], vision=True) == 32_768


def test_vision_minimum_never_exceeds_the_trained_context():
    """getRunner (server/sched.go) raises a vision model's num_ctx to at least 2048 when the
    request arrives; NewLlamaServer (llm/server.go:127, at load, after getRunner) then clamps it
    to n_ctx_train. So a vision model trained on 1,024 tokens runs at 1,024, not 2,048; and the
    tiers (4,096 and up) never fall below 2,048, so the minimum never changes a default."""
    assert default_num_ctx(0, 1024, vision=True) == 1024
    assert default_num_ctx(47 * GIB, 1024, vision=True) == 1024
    assert default_num_ctx(0, 1024, vision=False) == 1024
    assert default_num_ctx(0, 131_072, vision=True) == 4096


def test_default_num_ctx_sums_every_gpu():
    # F-6 (ollama/ollama#16763): gemma4:31b on an RTX 5090 (32607 MiB) + RTX 3090 (24576 MiB),
    # `ollama ps` CONTEXT 262144: 55.8 GiB summed total >= 47 GiB.
    assert default_num_ctx((32_607 + 24_576) * MIB, 262_144, vision=True) == 262_144
    # F-4 (ollama/ollama#16617): a 6.9 GiB GPU launched llama-server with -c 4096 -np 1.
    assert default_num_ctx(int(6.9 * GIB), 262_144, vision=True) == 4096


# --- Through estimate(runtime_context=True) --------------------------------------------------

@pytest.mark.parametrize(
    ("model", "gpu", "gpus", "expected"),
    [
        # RTX 4080: nvidia-smi 16376 MiB = 16.0 GiB < 23 GiB.
        (E4B, "nvidia-rtx-4080", 1, 4096),
        (DENSE, "nvidia-rtx-4080", 1, 4096),
        # RTX 4090: 24564 MiB = 23.99 GiB >= 23 GiB.
        (E4B, "nvidia-rtx-4090", 1, 32_768),
        (DENSE, "nvidia-rtx-4090", 1, 32_768),
        # H100: 81559 MiB = 79.6 GiB >= 47 GiB; E4B clamped to its trained 131,072.
        (E4B, "nvidia-h100-sxm", 1, 131_072),
        (E2B, "nvidia-h100-sxm", 1, 131_072),
        (DENSE, "nvidia-h100-sxm", 1, 262_144),
        # Two RTX 4090s: 47.98 GiB summed >= 47 GiB.
        (DENSE, "nvidia-rtx-4090", 2, 262_144),
        # F-5 (ollama/ollama#15388): gemma4:26b on a 48 GB L40, `ollama ps` CONTEXT 32768
        # (the L40S reads the same 46068 MiB = 44.99 GiB).
        (MOE, "nvidia-l40s", 1, 32_768),
        # A 48 GB Mac: Metal's working set 38654.71 MB = 36 GiB.
        (DENSE, "apple-m4-pro-48gb", 1, 32_768),
    ],
)
def test_estimate_uses_ollamas_default_context(model, gpu, gpus, expected):
    result = estimate(ollama(model, gpu, gpus=gpus, context_tokens=8192, runtime_context=True), CATALOG)
    assert result.context_tokens == expected
    assert result.engine_report["num_ctx"] == expected
    assert "Ollama" in result.context_source
    assert result.context_source != "the request"


def test_without_runtime_context_the_request_stands():
    result = estimate(ollama(DENSE, "nvidia-h100-sxm", context_tokens=8192), CATALOG)
    assert result.context_tokens == 8192
    assert result.context_source == "the request"


# --- auto_num_batch: server/sched.go automaticGenerationBatch ------------------------------------

@pytest.mark.parametrize(
    ("context_total", "expected"),
    [(1, 512), (4096, 512), (4097, 1024), (32_768, 1024), (32_769, 2048), (262_144 * 4, 2048)],
)
def test_auto_num_batch_by_context_when_nothing_is_known(context_total, expected):
    # generationBatchFits: "if predictedVRAM == 0 || availableMemory == 0 { return true }"
    assert auto_num_batch(context_total, 0, 0) == expected
    assert auto_num_batch(context_total, 10 * GIB, 0) == expected
    assert auto_num_batch(context_total, 0, 10 * GIB) == expected


# 10 GiB available: 80 % = 8 GiB, 60 % = 6 GiB, 75 % = 7.5 GiB (all exact in integer division).
# 100 GiB available: 80 % = 80 GiB, 60 % = 60 GiB, 75 % = 75 GiB.
# 5 GiB available: 80 % = 4 GiB, 60 % = 3 GiB, 75 % = 3.75 GiB.
@pytest.mark.parametrize(
    ("context_total", "predicted", "available", "expected"),
    [
        # 2048 candidate (context above 32,768).
        (65_536, 10 * GIB, 100 * GIB, 2048),
        (65_536, 60 * GIB, 100 * GIB, 2048),  # exactly 60 %: headroom holds; 2 GiB <= 80 - 60
        (65_536, 60 * GIB + 1, 100 * GIB, 1024),  # 60 % headroom lost; 1024: 75 % and 768 MiB hold
        (65_536, 75 * GIB, 100 * GIB, 1024),
        (65_536, 75 * GIB + 1, 100 * GIB, 512),  # 75 % headroom lost as well
        (65_536, 80 * GIB + 1, 100 * GIB, 512),  # above 80 % of available
        (65_536, 2 * GIB, 5 * GIB, 2048),  # surcharge 2 GiB == 4 GiB - 2 GiB: fits
        (65_536, 2 * GIB + 1, 5 * GIB, 1024),  # surcharge 2 GiB > 4 GiB - predicted
        (65_536, int(3.25 * GIB), 5 * GIB, 1024),  # 1024: 768 MiB == 4 - 3.25 GiB
        (65_536, int(3.25 * GIB) + 1, 5 * GIB, 512),  # 768 MiB > 4 GiB - predicted
        # 1024 candidate (context above 4,096).
        (8192, int(7.25 * GIB), 10 * GIB, 1024),  # surcharge 768 MiB == 8 - 7.25 GiB
        (8192, int(7.25 * GIB) + 1, 10 * GIB, 512),
        (8192, int(7.5 * GIB), 10 * GIB, 512),  # 75 % holds, the surcharge does not
        (8192, 8 * GIB + 1, 10 * GIB, 512),
        # 512 never steps down.
        (4096, 99 * GIB, 10 * GIB, 512),
    ],
)
def test_auto_num_batch_steps_down(context_total, predicted, available, expected):
    assert auto_num_batch(context_total, predicted, available) == expected


# --- predicted_vram_bytes: llm/llama_server.go PredictServerVRAM ----------------------------------

# 2 (K+V) x block_count x HeadCountKVMin x (n_embd / HeadCountMax) x ctx x 2 B, from the
# architecture sheet: (layers, fewest KV heads of any layer, hidden / query heads).
PREDICTION_GEOMETRY = {
    E2B: (35, 1, 1536 // 8),  # 1 KV head everywhere; 192
    E4B: (42, 2, 2560 // 8),  # 2 KV heads everywhere; 320
    MOE: (30, 2, 2816 // 16),  # sliding 8, full 2; 176
    DENSE: (60, 4, 5376 // 32),  # sliding 16, full 4; 168
}


@pytest.mark.parametrize("model", list(PREDICTION_GEOMETRY))
@pytest.mark.parametrize("context_total", [1, 4096, 32_768, 262_144])
def test_predicted_vram_by_hand(model, context_total):
    layers, kv_heads, head_dim = PREDICTION_GEOMETRY[model]
    text = CATALOG.model(model).config.text_config
    blob = 7_000_000_000
    expected = blob + 2 * layers * kv_heads * head_dim * context_total * 2
    assert predicted_vram_bytes(blob, text, context_total) == expected


def test_predicted_vram_of_the_31b_worked_example():
    # runtimes.md §11d A: 20e9 + 2*60*4*(5376/32)*32768*2 = 25,284,823,040 B (~25.3e9).
    text = CATALOG.model(DENSE).config.text_config
    assert predicted_vram_bytes(20 * GB, text, 32_768) == 25_284_823_040


# --- The automatic batch through estimate ------------------------------------------------------
# available = GPU memory - the 0.5 GiB driver reserve (runtime.csv); predicted = blob (published
# tag size) + the PredictServerVRAM KV term above. Every case below holds across the blob's
# published range (section "library blobs").

@pytest.mark.parametrize(
    ("model", "gpu", "gpus", "expected"),
    [
        # 16 GB card: num_ctx 4096 -> 512 whatever the memory.
        (E4B, "nvidia-rtx-4080", 1, 512),
        # RTX 4090, num_ctx 32768 -> 1024 candidate; predicted = 9.6e9 + 107520*32768 = 13.1e9
        # <= 75 % of 25.2e9 = 18.9e9, and 80 % - predicted = 7.0e9 >= 768 MiB.
        (E4B, "nvidia-rtx-4090", 1, 1024),
        # H100, num_ctx 131072 -> 2048 candidate; predicted = 9.6e9 + 107520*131072 = 23.7e9
        # <= 60 % of 85.0e9 = 51.0e9; 80 % - predicted = 44e9 >= 2 GiB.
        (E4B, "nvidia-h100-sxm", 1, 2048),
        # H100, num_ctx 262144 -> 2048 candidate; predicted = 19.9e9 + 161280*262144 = 62.1e9 >
        # 60 % (51.0e9) -> 1024: <= 75 % (63.7e9), 80 % (68.0e9) - 62.1e9 >= 768 MiB.
        (DENSE, "nvidia-h100-sxm", 1, 1024),
        # Two RTX 4090s, num_ctx 262144: predicted 62.1e9 > 80 % of 50.4e9 -> 512.
        (DENSE, "nvidia-rtx-4090", 2, 512),
        # L40S, num_ctx 32768 -> 1024 candidate; predicted = 18e9 + 42240*32768 = 19.4e9 <= 75 %
        # of 47.8e9.
        (MOE, "nvidia-l40s", 1, 1024),
    ],
)
def test_estimate_runs_with_ollamas_automatic_batch(model, gpu, gpus, expected):
    result = estimate(ollama(model, gpu, gpus=gpus, runtime_context=True), CATALOG)
    assert result.engine_report["n_ubatch"] == expected


def test_public_launch_line_batch():
    # F-4 (ollama/ollama#16617): num_ctx 4096, -np 1 -> "-b 512 -ub 512".
    result = estimate(ollama(E4B, "nvidia-rtx-4060-laptop", runtime_context=True), CATALOG)
    report = result.engine_report
    assert (report["num_ctx"], report["n_seq_max"], report["n_ubatch"]) == (4096, 1, 512)


# --- KV layout: -c num_ctx x OLLAMA_NUM_PARALLEL, -np OLLAMA_NUM_PARALLEL (never unified) ---------

def pad(x: int, n: int = 256) -> int:
    return -(-x // n) * n


# (window, full layers owning a cache, full bytes/token, sliding layers owning one, bytes/token),
# f16 (gemma4-architecture.md: 2 x kv_heads x head_dim x 2 B).
KV_GEOMETRY = {
    E4B: (512, 4, 2 * 2 * 512 * 2, 20, 2 * 2 * 256 * 2),
    DENSE: (1024, 10, 2 * 4 * 512 * 2, 50, 2 * 16 * 256 * 2),
}


@pytest.mark.parametrize("model", list(KV_GEOMETRY))
def test_two_parallel_sequences_get_two_streams(model):
    # OLLAMA_NUM_PARALLEL=2, num_ctx 8192: llama-server -c 16384 -np 2, no -kvu.
    result = estimate(ollama(model, "nvidia-h100-sxm", context_tokens=8192, concurrent_sequences=2), CATALOG)
    report = result.engine_report
    # context_total 16,384 > 4,096 -> 1024; the prediction is far below 75 % of an H100.
    n_ubatch = 1024
    window, full_layers, full_bpt, sliding_layers, sliding_bpt = KV_GEOMETRY[model]
    sliding_cells = pad(min(8192, window + n_ubatch))
    assert report["n_ubatch"] == n_ubatch
    assert report["kv_unified"] is False
    assert (report["n_seq_max"], report["streams"]) == (2, 2)
    assert (report["n_ctx"], report["n_ctx_seq"]) == (16_384, 8192)
    assert (report["num_ctx"], report["num_parallel"]) == (8192, 2)
    assert report["full_attention_cells"] == 8192
    assert report["sliding_attention_cells"] == sliding_cells
    assert result.kv_cache.full_attention_bytes == full_layers * full_bpt * 8192 * 2
    assert result.kv_cache.sliding_attention_bytes == sliding_layers * sliding_bpt * sliding_cells * 2


def test_31b_two_sequences_by_hand():
    # 10 full layers x 8 KiB x 8192 cells x 2 streams = 1280 MiB; 50 sliding layers x 16 KiB x
    # pad(1024 + 1024) = 2048 cells x 2 streams = 3200 MiB.
    result = estimate(ollama(DENSE, "nvidia-h100-sxm", context_tokens=8192, concurrent_sequences=2), CATALOG)
    assert result.kv_cache.full_attention_bytes == 1280 * MIB
    assert result.kv_cache.sliding_attention_bytes == 3200 * MIB


def test_one_sequence_is_one_stream_unlike_llama_servers_auto_slots():
    # Ollama passes -np 1 explicitly (F-4); llama-server alone would start 4 unified slots.
    own = estimate(ollama(DENSE, "nvidia-h100-sxm", context_tokens=8192), CATALOG).engine_report
    assert (own["n_seq_max"], own["streams"], own["kv_unified"]) == (1, 1, False)
    plain = estimate(
        MemoryRequest(
            model=DENSE, engine="llama.cpp", weight_format="gguf-q4_k_m", kv_cache_dtype="fp16",
            context_tokens=8192, gpu="nvidia-h100-sxm",
        ),
        CATALOG,
    ).engine_report
    assert (plain["n_seq_max"], plain["kv_unified"]) == (4, True)


@pytest.mark.parametrize("sequences", [3, 5, 8])
def test_many_parallel_sequences_each_get_num_ctx(sequences):
    result = estimate(ollama(E4B, "nvidia-h100-sxm", context_tokens=4096, concurrent_sequences=sequences), CATALOG)
    report = result.engine_report
    assert (report["streams"], report["n_ctx_seq"], report["n_ctx"]) == (sequences, 4096, 4096 * sequences)
    assert report["kv_unified"] is False
    # 4 full layers x 4 KiB x 4096 cells per stream.
    assert result.kv_cache.full_attention_bytes == 4 * 4096 * 4096 * sequences


def test_parallel_sequences_multiply_the_batch_context():
    # effectiveLlamaServerContext = num_ctx x numParallel: 4096 x 2 = 8192 > 4096 -> 1024.
    one = estimate(ollama(E4B, "nvidia-h100-sxm", context_tokens=4096), CATALOG)
    two = estimate(ollama(E4B, "nvidia-h100-sxm", context_tokens=4096, concurrent_sequences=2), CATALOG)
    assert (one.engine_report["n_ubatch"], two.engine_report["n_ubatch"]) == (512, 1024)


# --- Library blobs (runtimes.md §2.8) ----------------------------------------------------------
# ollama.com lists the tags rounded to the nearest unit (gemma4:e2b 7.2 GB, e4b 9.6 GB, 26b 18 GB,
# 31b 20 GB); `ollama list` prints format.HumanBytes, which truncates at 10 GB and above
# (`fmt.Sprintf("%d %s", int(value), unit)`): a published listing shows gemma4:31b "19 GB",
# gemma4:26b "17 GB", gemma4:e4b "9.6 GB". Both readings together bound each blob; 4 MB of slack
# for the GGUF header (data/observations.csv tolerance basis).
HEADER_SLACK = 4_000_000
BLOB_BOUNDS = {
    E2B: (7.15 * GB, 7.25 * GB),
    E4B: (9.55 * GB, 9.65 * GB),
    MOE: (17.5 * GB, 18.0 * GB),
    DENSE: (19.5 * GB, 20.0 * GB),
}


@pytest.mark.parametrize("model", list(BLOB_BOUNDS))
def test_library_blob_sizes_match_the_published_tags(model):
    low, high = BLOB_BOUNDS[model]
    files = estimate(ollama(model, None), CATALOG).files_bytes
    assert low - HEADER_SLACK <= files < high + HEADER_SLACK


@pytest.mark.parametrize("model", [E2B, DENSE])
def test_blobs_carry_the_encoders_whatever_the_request(model):
    # Vision and audio tensors are inline in the blob and passed as --mmproj (pdevine in
    # ollama/ollama#15356; NewLlamaServerRunner compatClipArches gemma4): text-only changes nothing.
    full = estimate(ollama(model, None), CATALOG)
    text = estimate(ollama(model, None, text_only=True), CATALOG)
    assert text.files_bytes == full.files_bytes
    assert text.weights_bytes == full.weights_bytes
