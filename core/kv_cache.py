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
def kv_layer_groups(text: TextConfig) -> tuple[KvLayerGroup, ...]:
    """Group the layers that own a cache; KV-shared layers own none and are left out."""
    counts: dict[tuple[AttentionType, int, int], int] = {}
    for layer in decoder_layers(text):
        if layer.owns_kv_cache:
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
