"""Throughput: bytes read per decode step, prefill FLOPs, speed and cost, checked by hand."""

import csv
import io
import shutil
from pathlib import Path

import pytest

from core.catalog import DATA_DIR, load_catalog
from core.estimate import MemoryRequest, PlanningError, estimate
from core.throughput import (
    ThroughputAssumptions,
    expected_experts_read,
    mean_attended_tokens,
    throughput,
)

H100_BANDWIDTH = 3350e9  # B/s, NVIDIA H100 SXM5 datasheet (gpus.csv)
H100_BF16 = 989e12  # dense FLOP/s
H100_USD_PER_HOUR = 2.99

# 31B vision encoder by hand (gemma4-architecture.md, Encoders): h 1152, i 4304, 27 layers,
# head_dim 72, text hidden 5376: patch 3x16x16xh + positions 2x10240xh + 27 x (4h^2 + 2x72 +
# 3hi + 4h) + projector hxH.
VISION_31B = 3 * 16 * 16 * 1152 + 2 * 10240 * 1152 + 27 * (4 * 1152**2 + 2 * 72 + 3 * 1152 * 4304 + 4 * 1152) + 1152 * 5376
# 26B-A4B: the same encoder, projected into hidden 2816.
VISION_26B = VISION_31B - 1152 * 5376 + 1152 * 2816
# google/gemma-4-31B-it bf16 safetensors (gemma4-architecture.md).
CHECKPOINT_31B_BYTES = 62_546_177_752
# Buffers: one layer_scalar per layer (60) and the large encoder's 2 x 1152 standardisation values.
BUFFERS_31B = 60 + 2 * 1152


def test_31b_bf16_on_h100_by_hand():
    result = throughput(MemoryRequest(model="31b", context_tokens=4096, gpu="h100"))
    # Everything in the checkpoint but the vision encoder is read once per step.
    weights = CHECKPOINT_31B_BYTES - 2 * VISION_31B
    assert VISION_31B == 575_741_232
    assert result.weights_read_bytes_per_step == weights == 61_394_695_288
    # transformers: 10 full layers hold all 4096 tokens at 4 kv heads x 512 x K,V x 2 B = 8192
    # B/token; 50 sliding layers hold window - 1 = 1023 tokens at 16 x 256 x 2 x 2 = 16384 B/token.
    kv = 10 * 8192 * 4096 + 50 * 16384 * 1023
    assert result.kv_read_bytes_per_step == kv == 1_173_585_920
    step = (weights + kv) / (H100_BANDWIDTH * 0.8)
    assert result.decode_step_seconds == pytest.approx(step, rel=1e-12)
    assert result.decode_tokens_per_second == pytest.approx(1 / step)
    assert result.decode_tokens_per_second == pytest.approx(42.83, abs=0.01)
    assert result.usd_per_hour == H100_USD_PER_HOUR
    assert result.usd_per_million_output_tokens == pytest.approx(H100_USD_PER_HOUR / 3600 * step * 1e6)
    assert result.usd_per_million_output_tokens == pytest.approx(19.39, abs=0.01)


def test_31b_prefill_flops_by_hand():
    result = throughput(MemoryRequest(model="31b", context_tokens=4096, gpu="h100"))
    # Text decoder parameters: checkpoint values less the vision encoder and the buffers.
    text_params = CHECKPOINT_31B_BYTES // 2 - VISION_31B - BUFFERS_31B
    assert text_params == 30_697_345_280
    # Attention: 4 x 32 query heads x head_dim x mean attended tokens. Full layers (hd 512) see
    # 4096/2 = 2048 on average; sliding layers (hd 256, window 1024) 1024 - 1024^2 / 8192 = 896.
    attention = 10 * 4 * 32 * 512 * 2048 + 50 * 4 * 32 * 256 * 896
    flops = 2 * text_params + attention
    assert result.prefill_flops_per_token == pytest.approx(flops, rel=1e-12)
    rate = H100_BF16 * 0.4 / flops
    assert result.prefill_tokens_per_second == pytest.approx(rate)
    assert result.usd_per_million_input_tokens == pytest.approx(H100_USD_PER_HOUR / 3600 / rate * 1e6)


def test_mean_attended_tokens_by_hand():
    # Causal: T/2; a window W < T: (W^2/2 + (T - W) W) / T.
    assert mean_attended_tokens(4096, None) == 2048
    assert mean_attended_tokens(512, 1024) == 256
    assert mean_attended_tokens(4096, 1024) == pytest.approx((1024**2 / 2 + 3072 * 1024) / 4096)
    # Continuous where the window starts to bite, and never above the window.
    # At T = W both forms give 512; one token later 1024 - 1024^2 / 2050 = 512.5.
    assert mean_attended_tokens(1024, 1024) == 512
    assert mean_attended_tokens(1025, 1024) == pytest.approx(512.5, abs=0.01)
    assert mean_attended_tokens(10**9, 1024) < 1024


def test_e2b_shared_layers_read_their_source_cache(catalog):
    result = throughput(MemoryRequest(model="e2b", context_tokens=4096, gpu="h100"))
    # E2B: 35 layers, [4 sliding, 1 full] x 7 = 28 sliding + 7 full. Every one attends: full
    # layers over 4096 tokens at 1 x 512 x 2 x 2 = 2048 B/token (the 4 shared full layers read
    # layer 14's cache), sliding over window - 1 = 511 tokens at 1 x 256 x 2 x 2 = 1024 B/token.
    assert result.kv_read_bytes_per_step == 7 * 2048 * 4096 + 28 * 1024 * 511 == 73_371_648
    # Only 3 full and 12 sliding layers own a cache, so the reads exceed what is held.
    held = estimate(MemoryRequest(model="e2b", context_tokens=4096, gpu="h100")).kv_cache_bytes
    assert held == 3 * 2048 * 4096 + 12 * 1024 * 511


@pytest.mark.parametrize("ple_on_host", [False, True])
def test_e2b_reads_one_ple_row_per_sequence_not_the_table(ple_on_host):
    request = MemoryRequest(model="e2b", context_tokens=4096, gpu="h100", concurrent_sequences=3, ple_on_host=ple_on_host)
    memory = estimate(request)
    components = {w.component: w.bytes for w in memory.weights}
    table = 262_144 * 35 * 256 * 2  # vocab x (layers x 256) at bf16
    assert components["per_layer_embedding"] == table
    # 3 sequences each read one row of 35 x 256 bf16 values, unless the table lives on the host.
    rows = 0 if ple_on_host else 3 * 35 * 256 * 2
    on_accelerator = memory.weights_bytes
    encoders = components["vision"] + components["audio"]
    expected = on_accelerator - encoders - (0 if ple_on_host else table) + rows
    assert throughput(request).weights_read_bytes_per_step == expected


def test_26b_a4b_reads_8_of_128_experts():
    request = MemoryRequest(model="26b", context_tokens=4096, gpu="h100")
    memory = estimate(request)
    # Experts: 30 layers x 128 x (gate_up 2 x 704 x 2816 + down 2816 x 704) at 2 bytes.
    experts = 30 * 128 * 3 * 704 * 2816 * 2
    assert experts == 45_675_970_560
    expected = memory.weights_bytes - 2 * VISION_26B - experts + experts * 8 // 128
    assert throughput(request).weights_read_bytes_per_step == expected


def test_a_batch_reads_the_union_of_experts_its_tokens_picked():
    # Uniform routing: an expert escapes both of 2 tokens with probability (120/128)^2.
    assert expected_experts_read(128, 8, 1) == pytest.approx(8)
    assert expected_experts_read(128, 8, 2) == pytest.approx(128 * (1 - (120 / 128) ** 2)) == pytest.approx(15.5)
    assert expected_experts_read(128, 8, 10_000) == pytest.approx(128)


def test_more_sequences_raise_aggregate_speed_but_slow_each_sequence():
    rates = [
        # FP8 weights: every point stays on the GPU (offload would change what limits the step).
        throughput(MemoryRequest(model=model, weight_format="fp8", context_tokens=8192, concurrent_sequences=s, gpu="h100"))
        for model in ("31b", "26b")
        for s in (1, 2, 4, 8)
    ]
    for model_rates in (rates[:4], rates[4:]):
        aggregate = [r.decode_tokens_per_second for r in model_rates]
        each = [r.decode_tokens_per_second_per_sequence for r in model_rates]
        assert aggregate == sorted(aggregate) and len(set(aggregate)) == 4
        assert each == sorted(each, reverse=True) and len(set(each)) == 4


def test_tensor_parallel_scales_bandwidth_and_price():
    one = throughput(MemoryRequest(model="31b", context_tokens=8192, gpu="h100"))
    two = throughput(MemoryRequest(model="31b", context_tokens=8192, gpu="h100", gpus=2))
    # 31B's kv heads (16 sliding, 4 full) split evenly over 2 GPUs: the same bytes, twice the
    # bandwidth, twice the price per hour, the same price per token.
    assert two.decode_tokens_per_second == pytest.approx(2 * one.decode_tokens_per_second)
    assert two.usd_per_hour == 2 * H100_USD_PER_HOUR
    assert two.usd_per_million_output_tokens == pytest.approx(one.usd_per_million_output_tokens)


def test_efficiency_assumptions_scale_speed():
    base = throughput(MemoryRequest(model="e4b", gpu="h100"))
    halved = throughput(MemoryRequest(model="e4b", gpu="h100"), ThroughputAssumptions(bandwidth_efficiency=0.4, compute_efficiency=0.2))
    assert halved.decode_tokens_per_second == pytest.approx(base.decode_tokens_per_second / 2)
    assert halved.prefill_tokens_per_second == pytest.approx(base.prefill_tokens_per_second / 2)
    with pytest.raises(ValueError):
        ThroughputAssumptions(bandwidth_efficiency=0)
    with pytest.raises(ValueError):
        ThroughputAssumptions(compute_efficiency=1.5)


def test_gpu_without_bf16_or_price_gets_no_prefill_or_cost():
    # Raspberry Pi 5: bandwidth 17.1 GB/s, no bf16 figure, no hourly price.
    result = throughput(MemoryRequest(model="e2b", weight_format="gguf-q4_0", engine="llama.cpp", context_tokens=2048, gpu="rpi5"))
    assert result.prefill_tokens_per_second is None
    assert result.usd_per_hour is result.usd_per_million_output_tokens is result.usd_per_million_input_tokens is None
    assert result.decode_step_seconds == pytest.approx(
        (result.weights_read_bytes_per_step + result.kv_read_bytes_per_step) / (17.1e9 * 0.8)
    )
    assert any("prefill" in line for line in result.assumptions)


def test_gpu_without_bandwidth_is_a_planning_error():
    # The Pixel 9's Tensor G4 row has no memory bandwidth.
    with pytest.raises(PlanningError, match="no memory bandwidth"):
        throughput(MemoryRequest(model="e2b", engine="llama.cpp", weight_format="gguf-q4_0", gpu="google-tensor-g4-pixel9"))


def test_no_gpu_is_a_planning_error():
    with pytest.raises(PlanningError, match="needs a GPU"):
        throughput(MemoryRequest(model="e2b"))


def test_added_gpu_without_bandwidth_in_a_private_catalogue(tmp_path: Path):
    """A team's own row with an empty bandwidth cell raises rather than dividing by nothing."""
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "gpus.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    column = rows[0].index("memory_bandwidth_gbs")
    for row in rows[1:]:
        if row[0] == "nvidia-h100-sxm":
            row[column] = ""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    with pytest.raises(PlanningError, match="H100 80GB SXM5 has no memory bandwidth"):
        throughput(MemoryRequest(model="31b", gpu="h100"), catalog=load_catalog(data))
