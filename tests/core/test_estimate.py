"""Estimate: weights by component and format, media tokens, overhead, fit and the solvers."""

import math

import pytest

from core.estimate import MemoryRequest, PlanningError, estimate
from core.fit import fit
from core.params import count_parameters

MIB = 2**20


def test_bf16_weights_are_two_bytes_per_parameter(catalog):
    for model in catalog.models:
        result = estimate(MemoryRequest(model=model.id))
        p = count_parameters(model.config)
        assert result.weights_bytes == 2 * (p.total + p.buffers)
    # 31B: exactly the bytes of the google/gemma-4-31B-it bf16 safetensors.
    assert estimate(MemoryRequest(model="31b")).weights_bytes == 62_546_177_752


def test_awq_quantises_linear_layers_and_keeps_the_rest_in_bf16(catalog):
    p = count_parameters(catalog.model("31b").config)
    awq_bits = 4 + (16 + 4) / 128  # 4-bit weights, fp16 scale and 4-bit zero per group of 128
    linear = p.attention + p.mlp
    kept = p.token_embedding + p.norms + p.vision
    result = estimate(MemoryRequest(model="31b", weight_format="awq-int4"))
    assert result.weights_bytes == math.ceil(linear * awq_bits / 8) + sum(
        math.ceil(n * 2) for n in (p.token_embedding, p.norms, p.buffers, p.vision)
    )
    by_component = {w.component: w for w in result.weights}
    assert by_component["attention"].quantised and not by_component["token_embedding"].quantised
    assert kept * 2 == sum(by_component[c].bytes for c in ("token_embedding", "norms", "vision"))


@pytest.mark.parametrize(
    ("format_id", "bytes_per_block", "weights_per_block"),
    [("gguf-q8_0", 32 + 2, 32), ("gguf-q4_0", 16 + 2, 32), ("gguf-q6_k", 128 + 64 + 16 + 2, 256), ("gguf-iq4_xs", 128 + 2 + 2 + 4, 256)],
)
def test_gguf_block_sizes_give_the_catalogued_bits(catalog, format_id, bytes_per_block, weights_per_block):
    """ggml block layouts: bits per weight = block bytes x 8 / weights per block."""
    assert catalog.weight_format(format_id).linear_bits == bytes_per_block * 8 / weights_per_block


def test_ple_on_host_moves_exactly_the_ple_table(catalog):
    p = count_parameters(catalog.model("e4b").config)
    on_device = estimate(MemoryRequest(model="e4b"))
    on_host = estimate(MemoryRequest(model="e4b", ple_on_host=True))
    assert on_host.host_bytes == p.per_layer_embedding * 2 == 262_144 * 42 * 256 * 2
    assert on_device.weights_bytes - on_host.weights_bytes == on_host.host_bytes
    assert on_device.total_bytes - on_host.total_bytes == on_host.host_bytes


def test_media_and_thinking_tokens_occupy_the_context():
    # 2 images x (280 + 2 delimiters) + 45 s audio: ceil(45 x 25) = 1125 tokens + 2 clips x 2
    # + 4000 thinking tokens, on top of 10,000 context tokens.
    result = estimate(
        MemoryRequest(model="e2b", context_tokens=10_000, images=2, image_tokens=280, audio_seconds=45, thinking_tokens=4000)
    )
    assert result.media_tokens == 2 * 282 + 1125 + 4
    assert result.sequence_tokens == 10_000 + 564 + 1129 + 4000
    assert result.kv_cache.full_attention_tokens == result.sequence_tokens


def test_audio_on_a_model_without_an_audio_encoder_is_refused():
    with pytest.raises(PlanningError, match="no audio encoder"):
        estimate(MemoryRequest(model="31b", audio_seconds=10))


def test_context_beyond_the_model_maximum_is_refused():
    with pytest.raises(PlanningError, match="131,072"):
        estimate(MemoryRequest(model="e2b", context_tokens=131_000, images=1))


def test_overhead_is_half_a_gib_per_process():
    assert estimate(MemoryRequest(model="e2b")).overhead_bytes == 512 * MIB
    assert estimate(MemoryRequest(model="31b", gpus=4)).overhead_bytes == 4 * 512 * MIB


def test_total_is_the_sum_of_its_parts():
    r = estimate(MemoryRequest(model="26b", context_tokens=65_536, concurrent_sequences=3, images=1))
    assert r.total_bytes == r.weights_bytes + r.kv_cache_bytes + r.activations_bytes + r.overhead_bytes


def test_h100_usable_memory_is_driver_total_less_reserve():
    # nvidia-smi reports 81,559 MiB on an H100 80GB; the driver keeps ~512 MiB back (gpus.md).
    result = fit(MemoryRequest(model="e2b", gpu="H100"))
    assert result.usable_bytes == (81_559 - 512) * MIB
    result = fit(MemoryRequest(model="31b", gpu="h100", gpus=2))
    assert result.usable_bytes == 2 * (81_559 - 512) * MIB


@pytest.mark.parametrize(
    ("model_id", "gpu", "weights", "sequences"),
    [("31b", "h100", "bf16", 1), ("26b-a4b", "rtx-4090", "awq-int4", 2), ("e4b", "l4", "bf16", 4), ("31b", "a100-80gb-pcie", "int8", 8)],
)
def test_longest_context_is_the_boundary(model_id, gpu, weights, sequences):
    request = MemoryRequest(model=model_id, gpu=gpu, weight_format=weights, concurrent_sequences=sequences)
    result = fit(request)
    longest = result.max_context_tokens
    assert longest > 0
    usable = result.usable_bytes
    assert estimate(request.model_copy(update={"context_tokens": longest})).total_bytes <= usable
    beyond = request.model_copy(update={"context_tokens": longest + 1})
    try:
        assert estimate(beyond).total_bytes > usable
    except PlanningError:  # the boundary is the model's own maximum context
        pass


@pytest.mark.parametrize(("model_id", "gpu", "context"), [("e2b", "rtx-4090", 8192), ("31b", "h200", 32_768), ("26b", "h100", 4096)])
def test_most_sequences_is_the_boundary(model_id, gpu, context):
    request = MemoryRequest(model=model_id, gpu=gpu, context_tokens=context)
    result = fit(request)
    most = result.max_concurrent_sequences
    assert most >= 1
    assert estimate(request.model_copy(update={"concurrent_sequences": most})).total_bytes <= result.usable_bytes
    assert estimate(request.model_copy(update={"concurrent_sequences": most + 1})).total_bytes > result.usable_bytes


def test_a_model_that_cannot_fit_reports_zero():
    request = MemoryRequest(model="31b", gpu="rtx-3060-12gb")
    result = fit(request)
    assert not result.fits and result.verdict == "does_not_fit"
    assert result.max_context_tokens == 0 and result.max_concurrent_sequences == 0
    # No negative headroom: nothing is left (0), and what is missing is its own figure. With
    # accelerate's CPU offload the GPU is filled and the rest must sit in host RAM (a desktop's
    # assumed 32 GiB less 4 GiB for the OS): the shortfall is the estimate's total beyond both,
    # at least 31B's bf16 weights (2 bytes x 30 billion parameters) less 12 + 28 GiB.
    assert result.headroom_bytes == 0
    assert result.host_usable_bytes == 28 * 2**30
    assert result.shortfall_bytes == estimate(request).total_bytes - result.usable_bytes - result.host_usable_bytes
    assert result.shortfall_bytes > 2 * 30e9 - 40 * 2**30


def test_verdict_tight_below_five_percent_headroom():
    request = MemoryRequest(model="e4b", gpu="l4")
    longest = fit(request).max_context_tokens
    tight = fit(request.model_copy(update={"context_tokens": longest}))
    assert tight.verdict == "tight" and 0 <= tight.headroom_bytes < 0.05 * tight.usable_bytes
    assert tight.shortfall_bytes == 0


def test_unsupported_engine_format_pairs_are_refused():
    with pytest.raises(PlanningError, match="llama.cpp"):
        estimate(MemoryRequest(model="e2b", weight_format="q4_k_m"))
    with pytest.raises(PlanningError, match="fp8"):
        estimate(MemoryRequest(model="e2b", kv_cache_dtype="fp8"))


def test_tensor_parallel_must_divide_heads():
    with pytest.raises(PlanningError, match="1, 2, 4, 8"):
        estimate(MemoryRequest(model="e2b", gpus=3))
