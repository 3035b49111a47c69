"""KV cache bytes per token for each group of cache-owning layers."""

from __future__ import annotations

import math
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import FULL, AttentionType, TextConfig, decoder_layers

# K and V are both cached, also on attention_k_eq_v layers (gemma4-architecture.md).
TENSORS_PER_LAYER = 2


class KvLayerGroup(BaseModel):
    """Cache-owning layers that share an attention type and head shape."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attention: AttentionType
    layer_count: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    # Sliding layers only: the attention window in tokens.
    window_tokens: int | None = Field(default=None, gt=1)

    def kv_heads_per_rank(self, tensor_parallel: int) -> int:
        """Tensor parallelism splits kv heads; with fewer heads than ranks each rank keeps a copy."""
        return math.ceil(self.kv_heads / tensor_parallel)

    def values_per_token(self, tensor_parallel: int = 1) -> int:
        """Cached values one token adds to this group, summed over all ranks."""
        return (
            TENSORS_PER_LAYER
            * self.layer_count
            * self.kv_heads_per_rank(tensor_parallel)
            * tensor_parallel
            * self.head_dim
        )

    def bytes_per_token(self, bits_per_value: float, tensor_parallel: int = 1) -> float:
        return self.values_per_token(tensor_parallel) * bits_per_value / 8


@lru_cache(maxsize=64)
def kv_layer_groups(text: TextConfig, *, shared: bool = False) -> tuple[KvLayerGroup, ...]:
    """Group the layers that own a cache; KV-shared layers own none and are left out. With
    `shared`, the KV-shared layers instead, by the shape a cache of their own would have (an
    engine that gives every layer a cache, as mistral.rs's PagedAttention pool does)."""
    counts: dict[tuple[AttentionType, int, int], int] = {}
    for layer in decoder_layers(text):
        if layer.owns_kv_cache != shared:
            key = (layer.attention, layer.num_kv_heads, layer.head_dim)
            counts[key] = counts.get(key, 0) + 1
    return tuple(
        KvLayerGroup(
            attention=attention,
            layer_count=count,
            kv_heads=kv_heads,
            head_dim=head_dim,
            window_tokens=None if attention == FULL else text.sliding_window,
        )
        for (attention, kv_heads, head_dim), count in counts.items()
    )


def naive_values_per_token(text: TextConfig) -> int:
    """What common calculators assume: every layer full attention with num_key_value_heads x
    head_dim, no sliding window and no sharing."""
    return TENSORS_PER_LAYER * text.num_hidden_layers * text.num_key_value_heads * text.head_dim


# --- KV cache types whose size is not one bit width for every layer -------------------------
# Sources are recorded with their commits in docs/research/kv-cache-types.md.

# ggml block layouts (ggml/src/ggml-common.h@01243c5): (values per block, bytes per block).
# llama.cpp's -ctk/-ctv take exactly these types (common/arg.cpp@145b628, kv_cache_types).
GGML_KV_BLOCKS: dict[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "q8_0": (32, 34),  # f16 scale + 32 x int8
    "q4_0": (32, 18),  # f16 scale + 16 B of nibbles
    "q4_1": (32, 20),  # f16 scale + f16 min + 16 B of nibbles
    "iq4_nl": (32, 18),  # f16 scale + 16 B of nibbles (non-linear grid)
    "q5_0": (32, 22),  # f16 scale + 4 B of fifth bits + 16 B of nibbles
    "q5_1": (32, 24),  # f16 scale + f16 min + 4 B of fifth bits + 16 B of nibbles
}


def ggml_bits_per_value(ggml_type: str) -> float:
    """Bits one cached value costs in a ggml type, block scales included."""
    values, size_bytes = GGML_KV_BLOCKS[ggml_type]
    return size_bytes * 8 / values


BF16_BYTES = 2


class TurboQuantBits(BaseModel):
    """Bits per coordinate of keys and of values in a TurboQuant cache."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_bits: int = Field(ge=1, le=8)
    value_bits: int = Field(ge=1, le=8)


# vLLM --kv-cache-dtype presets (vllm/model_executor/layers/quantization/turboquant/config.py@1471680,
# TQ_PRESETS): key_bits 8 means FP8 keys; the `_nc` suffix (norm correction) changes no byte.
VLLM_TURBOQUANT = {
    "turboquant_k8v4": TurboQuantBits(key_bits=8, value_bits=4),
    "turboquant_4bit_nc": TurboQuantBits(key_bits=4, value_bits=4),
    "turboquant_k3v4_nc": TurboQuantBits(key_bits=3, value_bits=4),
    "turboquant_3bit_nc": TurboQuantBits(key_bits=3, value_bits=3),
}
# get_boundary_skip_layers(n=2): the first and last two layers of a dense model keep the model
# dtype ("auto", bf16).
VLLM_TURBOQUANT_BOUNDARY_LAYERS = 2

# mlx-vlm `--kv-bits B --kv-quant-scheme turboquant` (mlx_vlm/turboquant.py@9b13f52,
# resolve_kv_bits): a fractional B gives floor(B)-bit keys and ceil(B)-bit values.
MLX_TURBOQUANT = {
    "mlx-tq2": TurboQuantBits(key_bits=2, value_bits=2),
    "mlx-tq3": TurboQuantBits(key_bits=3, value_bits=3),
    "mlx-tq3.5": TurboQuantBits(key_bits=3, value_bits=4),
    "mlx-tq4": TurboQuantBits(key_bits=4, value_bits=4),
}

# What `--kv-dtype turboquant` means on each runtime. vLLM names no default preset: the 4-bit one
# is the ~4x the Gemma 4 launch material quotes; mlx-vlm's README calls 3.5 bits its
# "Recommended default".
TURBOQUANT_DEFAULTS = {"vllm": "turboquant_4bit_nc", "mlx": "mlx-tq3.5"}
TURBOQUANT_NAMES = ("turboquant", "tq")
NO_TURBOQUANT = {
    "llama.cpp": "llama.cpp's -ctk/-ctv take f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 and q5_1 "
    "(common/arg.cpp); TurboQuant types exist only in forks",
    "ollama": "OLLAMA_KV_CACHE_TYPE is handed to llama-server, which has no TurboQuant type "
    "(documented: f16, q8_0, q4_0)",
    "transformers": "transformers has no TurboQuant cache",
    "vllm-metal": "vllm-metal refuses TurboQuant for every Gemma 4 (\"TurboQuant with per-layer KV shapes is "
    "not yet supported\", v1/cache_policy.py @211a1e4)",
}


def turboquant_default(engine: str) -> str:
    """The KV type `--kv-dtype turboquant` selects on `engine`; ValueError where it has none."""
    if engine in TURBOQUANT_DEFAULTS:
        return TURBOQUANT_DEFAULTS[engine]
    why = NO_TURBOQUANT.get(engine, "it has no TurboQuant KV cache")
    offered = ", ".join(f"{name} ({kv})" for name, kv in TURBOQUANT_DEFAULTS.items())
    raise ValueError(f"{engine} has no TurboQuant KV cache: {why}. TurboQuant runs on {offered}")


def vllm_turboquant_slot_bytes(preset: TurboQuantBits, head_dim: int) -> int:
    """Bytes one KV head of one token takes (TurboQuantConfig.slot_size_aligned): FP8 keys are
    head_dim bytes, MSE keys ceil(head_dim x bits / 8) + a 2-byte fp16 norm; values
    ceil(head_dim x bits / 8) + 4 bytes (fp16 scale and zero); rounded up to even."""
    if preset.key_bits == 8:
        key = head_dim
    else:
        key = math.ceil(head_dim * preset.key_bits / 8) + 2
    value = math.ceil(head_dim * preset.value_bits / 8) + 4
    slot = key + value
    return slot + slot % 2


def vllm_turboquant_skip_layers(num_hidden_layers: int, n: int = VLLM_TURBOQUANT_BOUNDARY_LAYERS) -> set[int]:
    """Layer indices vLLM leaves unquantised: the first n and last n (at most half the layers)."""
    n = min(n, num_hidden_layers // 2)
    if n <= 0:
        return set()
    return set(range(n)) | set(range(num_hidden_layers - n, num_hidden_layers))


def mlx_turboquant_vector_bytes(head_dim: int, bits: int) -> int:
    """Bytes of one key or value vector in mlx-vlm's TurboQuant MSE codec: the indices packed
    into uint32 words, ceil(head_dim x bits / 32) x 4, and its fp16 norm."""
    return math.ceil(head_dim * bits / 32) * 4 + 2


def mlx_turboquant_layers(text: TextConfig) -> set[int]:
    """Layers whose cache mlx-vlm quantises (generate/common.py maybe_quantize_kv_cache): the
    full-attention caches (sliding layers keep a RotatingKVCache), except the model's last
    cache entry when there are more than two ("sensitive to quantization in deep models")."""
    owners = [layer for layer in decoder_layers(text) if layer.owns_kv_cache]
    last = len(owners) - 1 if len(owners) > 2 else -1
    return {layer.index for position, layer in enumerate(owners) if layer.attention == FULL and position != last}


def _bf16_head_bytes(head_dim: int) -> int:
    return TENSORS_PER_LAYER * head_dim * BF16_BYTES


def turboquant_layer_bytes(text: TextConfig, kv_cache_id: str, tensor_parallel: int = 1) -> dict[int, int]:
    """Bytes one token adds to each cache-owning layer (summed over ranks) in a TurboQuant cache,
    layer by layer as the runtime lays it out; unquantised layers stay in bf16."""
    heads = {}
    for layer in decoder_layers(text):
        if layer.owns_kv_cache:
            heads[layer.index] = (math.ceil(layer.num_kv_heads / tensor_parallel) * tensor_parallel, layer.head_dim)
    if kv_cache_id in VLLM_TURBOQUANT:
        preset = VLLM_TURBOQUANT[kv_cache_id]
        skipped = vllm_turboquant_skip_layers(text.num_hidden_layers)
        return {
            index: count * (_bf16_head_bytes(dim) if index in skipped else vllm_turboquant_slot_bytes(preset, dim))
            for index, (count, dim) in heads.items()
        }
    if kv_cache_id in MLX_TURBOQUANT:
        bits = MLX_TURBOQUANT[kv_cache_id]
        quantised = mlx_turboquant_layers(text)
        return {
            index: count
            * (
                mlx_turboquant_vector_bytes(dim, bits.key_bits) + mlx_turboquant_vector_bytes(dim, bits.value_bits)
                if index in quantised
                else _bf16_head_bytes(dim)
            )
            for index, (count, dim) in heads.items()
        }
    raise ValueError(f"{kv_cache_id} is not a TurboQuant KV cache type")


def turboquant_group_bytes(
    text: TextConfig, groups: tuple[KvLayerGroup, ...], kv_cache_id: str, tensor_parallel: int = 1
) -> tuple[float, ...]:
    """Bytes per token of each cache group (kv_layer_groups order) in a TurboQuant cache: the sum
    of its layers, quantised or not."""
    per_layer = turboquant_layer_bytes(text, kv_cache_id, tensor_parallel)
    index_of = {(g.attention, g.kv_heads, g.head_dim): i for i, g in enumerate(groups)}
    totals = [0.0] * len(groups)
    for layer in decoder_layers(text):
        if layer.owns_kv_cache:
            totals[index_of[(layer.attention, layer.num_kv_heads, layer.head_dim)]] += per_layer[layer.index]
    return tuple(totals)
