"""KV cache types across runtimes: ggml block sizes, TurboQuant slots and layers, refusals, --kv-dtype turboquant."""

import json

import pytest

from core.__main__ import main
from core.engines.llama_cpp import GGML_TYPE_NAMES
from core.estimate import MemoryRequest, PlanningError, estimate
from core.kv_cache import (
    MLX_TURBOQUANT,
    VLLM_TURBOQUANT,
    TurboQuantBits,
    ggml_bits_per_value,
    kv_layer_groups,
    mlx_turboquant_layers,
    mlx_turboquant_vector_bytes,
    turboquant_default,
    turboquant_group_bytes,
    vllm_turboquant_skip_layers,
    vllm_turboquant_slot_bytes,
)

# The file each runtime is usually run with (MemoryRequest defaults to bf16 checkpoints).
FORMAT = {"llama.cpp": "gguf-q4_k_m", "ollama": "ollama-q4_k_m", "mlx": "mlx-4bit", "vllm": "bf16"}
MODELS = ("gemma-4-e2b", "gemma-4-e4b", "gemma-4-26b-a4b", "gemma-4-31b")

# ggml-common.h block structs added up by hand, bytes per 32 values: f16 d (2), f16 m (2),
# qh (4 = one fifth bit per value), qs (16 = 32 nibbles) or 32 int8.
GGML_BYTES_PER_32 = {
    "q8_0": 2 + 32,
    "q4_0": 2 + 16,
    "q4_1": 2 + 2 + 16,
    "iq4_nl": 2 + 16,
    "q5_0": 2 + 4 + 16,
    "q5_1": 2 + 2 + 4 + 16,
    "f16": 64,
    "bf16": 64,
    "f32": 128,
}
# llama.cpp's -ctk/-ctv list (common/arg.cpp kv_cache_types; tools/server/README "allowed values").
LLAMA_CPP_CTK = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"}
# Ollama docs/faq.mdx: "The currently available K/V cache quantization types are: f16, q8_0, q4_0".
OLLAMA_DOCUMENTED = {"f16", "q8_0", "q4_0"}

# vLLM TurboQuantConfig by hand: FP8 key = head_dim B; MSE key = head_dim x bits / 8 + 2 (fp16
# norm); value = head_dim x bits / 8 + 4 (fp16 scale and zero); all sums already even.
VLLM_SLOTS = {
    # preset: (head_dim 256, head_dim 512)
    "turboquant_k8v4": (256 + 128 + 4, 512 + 256 + 4),  # 388, 772
    "turboquant_4bit_nc": (128 + 2 + 128 + 4, 256 + 2 + 256 + 4),  # 262, 518
    "turboquant_k3v4_nc": (96 + 2 + 128 + 4, 192 + 2 + 256 + 4),  # 230, 454
    "turboquant_3bit_nc": (96 + 2 + 96 + 4, 192 + 2 + 192 + 4),  # 198, 390
}
# mlx-vlm's MSE codec by hand: head_dim x bits / 32 uint32 words of 4 bytes, plus an fp16 norm.
MLX_VECTORS = {(256, 2): 64 + 2, (256, 3): 96 + 2, (256, 4): 128 + 2, (512, 3): 192 + 2, (512, 4): 256 + 2}


@pytest.mark.parametrize(("ggml_type", "bytes_per_32"), GGML_BYTES_PER_32.items())
def test_ggml_block_sizes_by_hand(catalog, ggml_type, bytes_per_32):
    assert ggml_bits_per_value(ggml_type) == bytes_per_32 * 8 / 32
    kv_id = next(k for k, name in GGML_TYPE_NAMES.items() if name == ggml_type)
    assert catalog.kv_cache_type(kv_id).bits_per_value == bytes_per_32 * 8 / 32


def test_q5_0_is_22_bytes_per_32_values(catalog):
    assert catalog.kv_cache_type("q5_0").bits_per_value * 32 / 8 == 22


def test_llama_cpp_offers_exactly_its_ctk_types(catalog):
    offered = {GGML_TYPE_NAMES[k.id] for k in catalog.kv_cache_types if "llama.cpp" in k.engines}
    assert offered == LLAMA_CPP_CTK


def test_ollama_offers_its_documented_types(catalog):
    offered = {GGML_TYPE_NAMES[k.id] for k in catalog.kv_cache_types if "ollama" in k.engines}
    assert offered == OLLAMA_DOCUMENTED


@pytest.mark.parametrize(("preset", "slots"), VLLM_SLOTS.items())
def test_vllm_turboquant_slot_sizes_by_hand(catalog, preset, slots):
    assert vllm_turboquant_slot_bytes(VLLM_TURBOQUANT[preset], 256) == slots[0]
    assert vllm_turboquant_slot_bytes(VLLM_TURBOQUANT[preset], 512) == slots[1]
    # The catalogue's bits per value is the head_dim-256 slot over its 2 x 256 values.
    assert catalog.kv_cache_type(preset).bits_per_value == slots[0] * 8 / 512


def test_vllm_slot_odd_sum_is_rounded_up_to_even():
    # head_dim 8, 3-bit keys, 4-bit values: 3 + 2 + 4 + 4 = 13 bytes, stored in 14.
    assert vllm_turboquant_slot_bytes(TurboQuantBits(key_bits=3, value_bits=4), 8) == 14


@pytest.mark.parametrize(("head_dim", "bits"), MLX_VECTORS)
def test_mlx_turboquant_vector_bytes_by_hand(head_dim, bits):
    assert mlx_turboquant_vector_bytes(head_dim, bits) == MLX_VECTORS[(head_dim, bits)]


def test_mlx_turboquant_3_5_bits_splits_3_bit_keys_4_bit_values():
    # mlx-vlm README: "3.5 gives 3-bit keys and 4-bit values".
    assert (MLX_TURBOQUANT["mlx-tq3.5"].key_bits, MLX_TURBOQUANT["mlx-tq3.5"].value_bits) == (3, 4)


# Gemma 4 layer patterns (gemma4-architecture.md): full layers every 5th (E2B) / 6th layer; the
# last cache-owning layer is full in every model, so mlx-vlm leaves exactly that one in bf16.
MLX_QUANTISED = {
    "gemma-4-e2b": {4, 9},  # full 4, 9, 14; 14 is the last of the 15 cache owners
    "gemma-4-e4b": {5, 11, 17},  # full 5, 11, 17, 23; 24 owners
    "gemma-4-26b-a4b": {5, 11, 17, 23},  # full ..., 29 = last of 30
    "gemma-4-31b": {5, 11, 17, 23, 29, 35, 41, 47, 53},  # full ..., 59 = last of 60
}


@pytest.mark.parametrize("model_id", MODELS)
def test_mlx_vlm_quantises_full_layers_but_the_last_cache(catalog, model_id):
    assert mlx_turboquant_layers(catalog.model(model_id).config.text_config) == MLX_QUANTISED[model_id]


def test_vllm_boundary_layers_are_the_first_and_last_two():
    assert vllm_turboquant_skip_layers(60) == {0, 1, 58, 59}
    assert vllm_turboquant_skip_layers(35) == {0, 1, 33, 34}
    assert vllm_turboquant_skip_layers(3) == {0, 2}  # never more than half
    assert vllm_turboquant_skip_layers(1) == set()


def test_vllm_turboquant_layout_on_31b_by_hand(catalog):
    """Were vLLM to run it: 31B's layers 0, 1, 58, 59 in bf16 (0, 1, 58 sliding, 59 full), the
    rest in 4-bit slots. Sliding: 16 heads x 256, full: 4 heads x 512."""
    text = catalog.model("gemma-4-31b").config.text_config
    sliding, full = turboquant_group_bytes(text, kv_layer_groups(text), "turboquant_4bit_nc")
    assert sliding == 3 * 16 * 2 * 256 * 2 + 47 * 16 * 262
    assert full == 1 * 4 * 2 * 512 * 2 + 9 * 4 * 518


def test_mlx_turboquant_31b_at_128k_by_hand(catalog):
    result = estimate(
        MemoryRequest(
            model="gemma-4-31b", engine="mlx", weight_format="mlx-4bit", kv_cache_dtype="mlx-tq3.5", context_tokens=131_072
        )
    )
    # 9 quantised full layers x 4 heads x (194 + 258) B + the last full layer in bf16 (4 x 2 x 512 x 2).
    assert result.kv_cache.full_attention_bytes == 131_072 * (9 * 4 * (194 + 258) + 4 * 2 * 512 * 2)
    bf16 = estimate(
        MemoryRequest(model="gemma-4-31b", engine="mlx", weight_format="mlx-4bit", kv_cache_dtype="bf16", context_tokens=131_072)
    )
    assert result.kv_cache.sliding_attention_bytes == bf16.kv_cache.sliding_attention_bytes  # sliding stay bf16


def test_mlx_vector_formula_reproduces_the_readme_31b_figure():
    """mlx-vlm README (PR #894, 2026-04-02, before PR #909 kept the last layer in bf16): gemma-4-31b
    at 128K, KV 13.3 GB baseline, 4.9 GB with TurboQuant 3.5. Sliding layers hold window - 1 +
    prefill step (2048) tokens during a prefill (runtimes.md §4.1)."""
    tokens, sliding_cells = 131_072, 1024 - 1 + 2048
    sliding = 50 * 16 * 2 * 256 * 2 * sliding_cells
    full_bf16 = 10 * 4 * 2 * 512 * 2 * tokens
    full_tq = 10 * 4 * (mlx_turboquant_vector_bytes(512, 3) + mlx_turboquant_vector_bytes(512, 4)) * tokens
    assert (full_bf16 + sliding) / 1e9 == pytest.approx(13.3, abs=0.05)
    assert (full_tq + sliding) / 1e9 == pytest.approx(4.9, abs=0.05)


@pytest.mark.parametrize("model_id", MODELS)
def test_more_turboquant_bits_never_means_less_memory(model_id):
    order = ["mlx-tq2", "mlx-tq3", "mlx-tq3.5", "mlx-tq4", "bf16"]
    totals = [
        estimate(
            MemoryRequest(model=model_id, engine="mlx", weight_format="mlx-4bit", kv_cache_dtype=kv, context_tokens=65_536)
        ).kv_cache_bytes
        for kv in order
    ]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("preset", VLLM_TURBOQUANT)
def test_vllm_refuses_turboquant_for_gemma_4(model_id, preset):
    with pytest.raises(PlanningError, match=r"TRITON_ATTN.*kv_cache_dtype not supported"):
        estimate(MemoryRequest(model=model_id, engine="vllm", kv_cache_dtype=preset, context_tokens=8192))


@pytest.mark.parametrize("kv", ["mlx-q8", "mlx-q4"])
def test_mlx_lm_kv_bits_refused_for_gemma_4(kv):
    with pytest.raises(PlanningError, match="RotatingKVCache Quantization NYI"):
        estimate(MemoryRequest(model="gemma-4-e4b", engine="mlx", weight_format="mlx-4bit", kv_cache_dtype=kv, context_tokens=8192))


QUANTISED_V = [("llama.cpp", kv) for kv in ("q8_0", "q5_1", "q5_0", "q4_1", "iq4_nl", "q4_0")]


@pytest.mark.parametrize(("engine", "kv"), [*QUANTISED_V, ("ollama", "q8_0"), ("ollama", "q4_0")])
def test_quantised_v_cache_needs_flash_attention(engine, kv):
    request = MemoryRequest(
        model="gemma-4-e4b", engine=engine, weight_format=FORMAT[engine], kv_cache_dtype=kv, context_tokens=8192
    )
    estimate(request)  # flash attention on (llama.cpp's auto resolves on for Gemma 4)
    off = request.model_copy(update={"engine_settings": request.engine_settings.model_copy(update={"flash_attention": False})})
    with pytest.raises(PlanningError, match="requires Flash Attention"):
        estimate(off)


def test_unquantised_llama_cpp_types_run_without_flash_attention():
    for kv in ("fp32", "fp16", "bf16"):
        request = MemoryRequest(
            model="gemma-4-e4b", engine="llama.cpp", weight_format=FORMAT["llama.cpp"], kv_cache_dtype=kv, context_tokens=8192
        )
        settings = request.engine_settings.model_copy(update={"flash_attention": False})
        estimate(request.model_copy(update={"engine_settings": settings}))


@pytest.mark.parametrize(("kv", "bits"), [("q5_0", 5.5), ("q5_1", 6), ("q4_1", 5), ("iq4_nl", 4.5), ("fp32", 32)])
def test_llama_cpp_cache_scales_with_the_block_bits(kv, bits):
    base = estimate(MemoryRequest(
            model="gemma-4-31b", engine="llama.cpp", weight_format=FORMAT["llama.cpp"], kv_cache_dtype="fp16", context_tokens=32_768
        ))
    other = estimate(MemoryRequest(
            model="gemma-4-31b", engine="llama.cpp", weight_format=FORMAT["llama.cpp"], kv_cache_dtype=kv, context_tokens=32_768
        ))
    assert other.kv_cache_bytes == pytest.approx(base.kv_cache_bytes * bits / 16)


def test_ollama_does_not_offer_q5_0():
    with pytest.raises(PlanningError, match="ollama has no q5_0"):
        estimate(MemoryRequest(
                model="gemma-4-e4b", engine="ollama", weight_format=FORMAT["ollama"], kv_cache_dtype="q5_0", context_tokens=8192
            ))


def _cli(capsys, *argv):
    status = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_turboquant_selects_mlx_vlm_3_5_bits(capsys):
    status, out, err = _cli(capsys, "estimate", "--model", "31b", "--engine", "mlx", "--kv-dtype", "turboquant")
    assert status == 0, err
    assert json.loads(out)["kv_cache_dtype"] == "mlx-tq3.5"


def test_cli_turboquant_on_vllm_is_refused_with_the_reason(capsys):
    status, out, err = _cli(capsys, "estimate", "--model", "31b", "--engine", "vllm", "--kv-dtype", "TurboQuant")
    assert status != 0 and out == ""
    assert "turboquant_4bit_nc" in err and "TRITON_ATTN" in err


@pytest.mark.parametrize("engine", ["llama.cpp", "ollama", "transformers"])
def test_cli_turboquant_where_the_runtime_has_none(capsys, engine):
    status, out, err = _cli(capsys, "estimate", "--model", "e4b", "--engine", engine, "--kv-dtype", "turboquant")
    assert status != 0 and out == ""
    assert f"{engine} has no TurboQuant KV cache" in err


def test_turboquant_defaults_name_catalogue_types(catalog):
    # vllm-metal lists vLLM's TurboQuant types only to refuse them with its reason.
    assert catalog.kv_cache_type(turboquant_default("vllm")).engines == ("vllm", "vllm-metal")
    assert catalog.kv_cache_type(turboquant_default("mlx")).engines == ("mlx",)
