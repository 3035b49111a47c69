"""mistral.rs: its PagedAttention pool, growing caches, ISQ weights, refusals and launch command, from hand figures."""

import math
import shlex

import pytest

from core.catalog import load_catalog
from core.engines.base import EngineSettings
from core.estimate import MemoryRequest, PlanningError, estimate
from core.fit import fit
from core.launch import launch_command
from core.runtimes import refusal, runtimes_for

CATALOG = load_catalog()
MIB = 2**20
H100 = "nvidia-h100-sxm"
# data/gpus.csv: nvidia-smi 81559 MiB.
H100_BYTES = 81_559 * MIB
# data/runtime.csv 'datacenter': 0.5 GiB driver reserve + 0.5 GiB CUDA context.
DATACENTER_RESERVED_BYTES = 512 * MIB
CUDA_CONTEXT_BYTES = 512 * MIB
MAC = "apple-m4-max-128gb"
PI = "rpi5-8gb"
# google/gemma-4-31B-it's safetensors, byte for byte (data/README.md: parameters x 2 + buffers).
GEMMA4_31B_CHECKPOINT_BYTES = 62_546_177_752

# gemma4-architecture.md shapes, K and V both cached (k_eq_v layers too), 2 bytes each.
# Every layer, KV-shared included (mistral.rs PagedAttention): sliding kv_heads x 256, full x 512.
PA_BYTES_PER_TOKEN = {
    "gemma-4-e2b": 2 * 2 * (28 * 1 * 256 + 7 * 1 * 512),
    "gemma-4-e4b": 2 * 2 * (35 * 2 * 256 + 7 * 2 * 512),
    "gemma-4-26b-a4b": 2 * 2 * (25 * 8 * 256 + 5 * 2 * 512),
    "gemma-4-31b": 2 * 2 * (50 * 16 * 256 + 10 * 4 * 512),
}


def request(**changes):
    values = dict(
        model="gemma-4-31b", engine="mistral.rs", weight_format="bf16", kv_cache_dtype="bf16",
        context_tokens=4096, concurrent_sequences=1, gpu=H100,
    )
    values.update(changes)
    return MemoryRequest(**values)


def test_hand_figures_match_the_research_note():
    # docs/research/mistralrs-vllm-metal.md §1.5 prints these bf16 bytes per token.
    assert PA_BYTES_PER_TOKEN == {
        "gemma-4-e2b": 43_008, "gemma-4-e4b": 100_352, "gemma-4-26b-a4b": 225_280, "gemma-4-31b": 901_120
    }


@pytest.mark.parametrize("model", sorted(PA_BYTES_PER_TOKEN))
@pytest.mark.parametrize(("tokens", "sequences"), [(4096, 1), (4100, 3), (100_000, 2)])
def test_paged_attention_charges_every_layer_at_full_length_in_32_token_blocks(model, tokens, sequences):
    weights = "isq-q4k" if model == "gemma-4-31b" else "bf16"
    result = estimate(request(model=model, weight_format=weights, context_tokens=tokens, concurrent_sequences=sequences), CATALOG)
    held = math.ceil(tokens / 32) * 32
    assert result.kv_cache_bytes == PA_BYTES_PER_TOKEN[model] * held * sequences
    assert result.kv_cache.shared_layers == 0  # the pool gives the KV-shared layers blocks too
    assert result.kv_cache.full_attention_layers + result.kv_cache.sliding_attention_layers == {
        "gemma-4-e2b": 35, "gemma-4-e4b": 42, "gemma-4-26b-a4b": 30, "gemma-4-31b": 60
    }[model]


# docs/research/mistralrs-vllm-metal.md §1.6, bytes per sequence without PagedAttention (bf16):
# full layers and the sliding donor at 512 x ceil(T/512), other sliding layers at most window + 512.
@pytest.mark.parametrize(
    ("model", "tokens", "expected"),
    [
        ("gemma-4-e2b", 4096, 40_894_464),
        ("gemma-4-e2b", 131_072, 951_058_432),
        ("gemma-4-e4b", 32_768, 643_825_664),
        ("gemma-4-26b-a4b", 4096, 398_458_880),
        ("gemma-4-31b", 131_072, 11_995_709_440),
    ],
)
def test_metal_caches_grow_in_512_token_steps_with_the_sliding_donor_at_full_length(model, tokens, expected):
    result = estimate(request(model=model, weight_format="isq-afq4", gpu=MAC, context_tokens=tokens), CATALOG)
    assert result.engine_report["paged_attention"] is False
    assert result.kv_cache_bytes == expected


def test_growing_caches_round_up_to_the_next_512_tokens_per_sequence():
    # E2B, T = 1000 -> 1024 cells: 3 full layers (1 kv head x 512 x K,V x 2 B = 2,048 B/token) and
    # the donor at 1024; the other 11 sliding layers (1,024 B/token) at min(1024, 512 + 512) = 1024.
    per_sequence = (3 * 2048 + 12 * 1024) * 1024
    result = estimate(request(model="gemma-4-e2b", weight_format="isq-afq4", gpu=MAC, context_tokens=1000, concurrent_sequences=2), CATALOG)
    assert result.kv_cache_bytes == 2 * per_sequence


@pytest.mark.parametrize(
    ("model", "heads", "media_tokens"),
    [("gemma-4-31b", 32, 280), ("gemma-4-26b-a4b", 16, 280), ("gemma-4-e4b", 8, 280 + 750), ("gemma-4-e2b", 8, 280 + 750)],
)
def test_activation_reservation_is_the_device_maps_square(model, heads, media_tokens):
    # Gemma4Loader::mapped_max_act_size_elems at --max-seq-len 4096 --max-batch-size 1, bf16:
    # 31B 32 x 4376^2 x 2 = 1,225,560,064 B (research note §1.5).
    result = estimate(request(model=model, weight_format="isq-q4k"), CATALOG)
    assert result.activations_bytes == heads * (4096 + media_tokens) ** 2 * 2
    if model == "gemma-4-31b":
        assert result.activations_bytes == 1_225_560_064


def test_pool_on_an_h100_follows_calculate_cache_config_by_hand():
    """31B bf16 on an H100: used after load = driver reserve + context + the checkpoint; pool MiB
    = floor(total x 0.9 / MiB - used / MiB) - ceil(reservation / MiB); blocks of 32 tokens."""
    result = estimate(request(context_tokens=8192), CATALOG)
    used = DATACENTER_RESERVED_BYTES + CUDA_CONTEXT_BYTES + GEMMA4_31B_CHECKPOINT_BYTES
    assert result.weights_bytes == GEMMA4_31B_CHECKPOINT_BYTES
    reservation = 32 * 4376**2 * 2
    pool_mib = math.floor(H100_BYTES * 0.9 / MIB - used / MIB) - math.ceil(reservation / MIB)
    free = H100_BYTES - used
    cap_mib = (free - max(int(free * 0.02), 512 * MIB) - reservation) // MIB
    pool_mib = min(pool_mib, cap_mib)
    blocks = pool_mib * MIB // (32 * 901_120)
    report = result.engine_report
    assert report["num_blocks"] == blocks
    assert report["kv_cache_tokens"] == blocks * 32
    assert f"Allocating {pool_mib} MB for PagedAttention KV cache per GPU" in report["log_lines"]
    assert (
        f"Using PagedAttention with block size 32 and {blocks} GPU blocks: available context length is {blocks * 32} tokens"
        in report["log_lines"]
    )
    # The pool holds 13,440 tokens: a 32K request does not fit, and the fit says the same.
    assert blocks * 32 < 32_768
    assert fit(request(context_tokens=32_768), CATALOG).verdict == "does_not_fit"
    assert fit(request(context_tokens=blocks * 32), CATALOG).verdict in ("fits", "tight")
    assert fit(request(context_tokens=blocks * 32 + 32), CATALOG).verdict == "does_not_fit"


def test_isq_q4k_weights_tensor_by_tensor():
    """E2B: token embedding 262,144 x 1,536 and the PLE table 262,144 x 35 x 256 go one tier up
    to Q6K (210 B per 256); 26B-A4B: gate/up at Q4K (144 B per 256), down projections (rows of
    2,112 and 704, not multiples of 256) at Q4_1 (20 B per 32); encoders stay bf16."""
    e2b = {w.component: w.bytes for w in estimate(request(model="gemma-4-e2b", weight_format="isq-q4k"), CATALOG).weights}
    assert e2b["token_embedding"] == 262_144 * 1536 * 210 // 256
    assert e2b["per_layer_embedding"] == 262_144 * 35 * 256 * 210 // 256
    moe = {w.component: w.bytes for w in estimate(request(model="gemma-4-26b-a4b", weight_format="isq-q4k"), CATALOG).weights}
    dense = 2 * 2816 * 2112 * 144 // 256 + 2816 * 2112 * 20 // 32
    expert = 2 * 2816 * 704 * 144 // 256 + 2816 * 704 * 20 // 32
    assert moe["mlp"] == 30 * dense
    assert moe["experts"] == 30 * 128 * expert
    assert moe["router"] == 2 * (30 * (2816 * 128 + 2816 + 128))


def test_afq_groups_of_64_with_bf16_scale_and_bias():
    # AFQ4: 64 x 4 / 8 + 2 + 2 = 36 bytes per 64 weights; sensitive tensors AFQ6: 48 + 4 = 52.
    weights = {w.component: w for w in estimate(request(model="gemma-4-31b", weight_format="isq-afq4", gpu=MAC), CATALOG).weights}
    assert weights["attention"].bits_per_weight == 4.5
    assert weights["token_embedding"].bytes == 262_144 * 5376 * 52 // 64


def test_the_cpu_loads_unquantised_tensors_in_f32():
    result = estimate(request(model="gemma-4-e4b", weight_format="isq-q4k", gpu=PI), CATALOG)
    weights = {w.component: w for w in result.weights}
    assert weights["vision"].bits_per_weight == 32
    assert weights["audio"].bits_per_weight == 32
    assert result.engine_report["load_dtype"] == "f32"
    assert result.engine_report["paged_attention"] is False


def test_kv_and_device_refusals_name_the_reason():
    with pytest.raises(PlanningError, match="only in its PagedAttention pool"):
        estimate(request(model="gemma-4-e4b", weight_format="isq-afq4", gpu=MAC, kv_cache_dtype="fp8"), CATALOG)
    with pytest.raises(PlanningError, match="no PagedAttention on the CPU"):
        estimate(request(model="gemma-4-e2b", weight_format="isq-q4k", gpu=PI, engine_settings=EngineSettings(paged_attention="on")), CATALOG)
    amd = CATALOG.accelerator("amd-mi300x")
    assert "no ROCm build" in (refusal(CATALOG, "mistral.rs", CATALOG.weight_format("bf16"), amd) or "")
    assert "mistral.rs" not in runtimes_for(CATALOG, CATALOG.accelerator("galaxy s25 ultra"))
    # The fp8 pool halves the bytes per token on CUDA.
    fp8 = estimate(request(kv_cache_dtype="fp8", weight_format="isq-q4k"), CATALOG)
    assert fp8.kv_cache_bytes == 901_120 // 2 * 4096


def test_launch_command_writes_isq_type_sequences_and_fp8_cache():
    plan = request(weight_format="isq-q4k", kv_cache_dtype="fp8", concurrent_sequences=4, context_tokens=8192)
    result = estimate(plan, CATALOG)
    command = launch_command(plan, result, CATALOG, fit(plan, CATALOG))
    assert shlex.split(command.command) == [
        "mistralrs", "serve", "-m", "google/gemma-4-31B-it", "--isq", "q4k", "--max-seqs", "4",
        "--pa-cache-type", "f8e4m3",
    ]
    # Metal with PagedAttention forced on, and a pool fraction the user set.
    mac = request(model="gemma-4-e4b", weight_format="isq-afq4", gpu=MAC, engine_settings=EngineSettings(paged_attention="on"))
    args = shlex.split(launch_command(mac, estimate(mac, CATALOG), CATALOG).command)
    assert args[args.index("--paged-attn") + 1] == "on"
    h100 = request(engine_settings=EngineSettings(pa_memory_fraction=0.8))
    args = shlex.split(launch_command(h100, estimate(h100, CATALOG), CATALOG).command)
    assert args[args.index("--pa-memory-fraction") + 1] == "0.8"
    assert "--max-seq-len" not in args


def test_metal_paged_attention_caps_the_pool_at_the_trained_context():
    # calculate_cache_config on Metal: the pool is capped at max_seq_len (131,072 for E4B) tokens
    # of every layer: 131,072 x 100,352 B = 12,544 MiB, far below 90% of 96 GiB.
    plan = request(model="gemma-4-e4b", weight_format="isq-afq4", gpu=MAC, engine_settings=EngineSettings(paged_attention="on"))
    report = estimate(plan, CATALOG).engine_report
    assert report["kv_cache_memory_bytes"] == 131_072 * 100_352
    assert report["kv_cache_tokens"] == 131_072


def test_isq_load_transient_is_the_largest_bf16_table():
    # E2B's PLE table, 262,144 x 35 x 256 bf16 = 4.70 GB; 31B's token embedding 262,144 x 5,376 x 2.
    e2b = estimate(request(model="gemma-4-e2b", weight_format="isq-afq4", gpu=MAC), CATALOG).engine_report
    assert e2b["isq_load_transient_bytes"] == 262_144 * 35 * 256 * 2
    big = estimate(request(weight_format="isq-q4k"), CATALOG).engine_report
    assert big["isq_load_transient_bytes"] == 262_144 * 5376 * 2
    assert "isq_load_transient_bytes" not in estimate(request(), CATALOG).engine_report  # bf16: no ISQ


def test_no_room_for_a_block_is_mistralrs_own_start_error():
    # 26B-A4B bf16 (51.6 GB of weights) on a 16 GB T4: 0.9 x total - in use after loading < 0, so
    # calculate_cache_config bails with "Num GPU blocks is 0".
    plan = request(model="gemma-4-26b-a4b", gpu="nvidia-t4")
    report = estimate(plan, CATALOG).engine_report
    assert report["num_blocks"] == 0 and report["kv_cache_verdict"] == "no_room"
    fitted = fit(plan, CATALOG)
    assert fitted.verdict == "does_not_fit"
    assert fitted.engine_error and fitted.engine_error.startswith("Num GPU blocks is 0")
    assert fit(request(weight_format="isq-q4k"), CATALOG).engine_error is None


def test_isq_reads_the_bf16_checkpoint_from_disk():
    # mistral.rs downloads google/gemma-4-31B-it's safetensors (62,546,177,752 B) and quantises
    # them in memory: the download is the checkpoint, the resident weights the ISQ bytes.
    result = estimate(request(weight_format="isq-q4k"), CATALOG)
    assert result.files_bytes == GEMMA4_31B_CHECKPOINT_BYTES
    assert result.weights_bytes < GEMMA4_31B_CHECKPOINT_BYTES / 3


def test_pa_context_len_sizes_the_pool_to_its_tokens():
    """--pa-context-len 16,896 (the v0.8.2 release benchmark's setting) for E4B bf16:
    16,896 x 100,352 B = 1,617 MiB exactly, 528 blocks of 32 tokens."""
    plan = request(model="gemma-4-e4b", gpu="nvidia-rtx-4090", engine_settings=EngineSettings(pa_context_tokens=16_896))
    report = estimate(plan, CATALOG).engine_report
    assert report["kv_cache_memory_bytes"] == 1617 * MIB == 16_896 * 100_352
    assert report["num_blocks"] == 528 and report["kv_cache_tokens"] == 16_896
    args = shlex.split(launch_command(plan, estimate(plan, CATALOG), CATALOG).command)
    assert args[args.index("--pa-context-len") + 1] == "16896"
    assert "--pa-memory-fraction" not in args


def test_pa_context_len_beyond_what_is_safely_available_is_mistralrs_own_start_error():
    # 31B bf16 on an H100 asking 65,536 tokens: ceil(65,536 x 901,120 B / MiB) = 56,320 MB; after
    # loading, free = total - (driver reserve + context + checkpoint), less max(2%, 512 MiB) and
    # the 1,225,560,064 B reservation, is far less.
    plan = request(engine_settings=EngineSettings(pa_context_tokens=65_536))
    free = H100_BYTES - (DATACENTER_RESERVED_BYTES + CUDA_CONTEXT_BYTES + GEMMA4_31B_CHECKPOINT_BYTES)
    available_mib = (free - max(int(free * 0.02), 512 * MIB) - 32 * 4376**2 * 2) // MIB
    fitted = fit(plan, CATALOG)
    assert fitted.verdict == "does_not_fit"
    assert fitted.engine_error == (
        f"PagedAttention KV cache requires 56320 MB but only {available_mib} MB is safely available after model loading."
    )
