"""Hugging Face transformers: DynamicCache growing with the sequence, prefill in one pass."""

from __future__ import annotations

from typing import Any

from core.architecture import TextConfig
from core.engines.base import (
    ACTIVATION_BYTES,
    LOGIT_BYTES,
    ActivationModel,
    EnginePolicy,
    EngineSettings,
    KvFigures,
    KvLayout,
    Tokens,
    forward_values_per_token,
    kv_from_cells,
    minimum,
)

# generate() keeps logits of the last position only (logits_to_keep=1), in fp32, plus one
# more fp32 copy for the sampling step's softmax.
LOGIT_COPIES = 2


class TransformersPolicy(EnginePolicy):
    """engines.md: full layers hold T tokens, sliding layers the last W - 1 (once T exceeds the
    window), KV-shared layers nothing; memory grows with the sequence (no pre-allocation)."""

    id = "transformers"
    display_name = "Hugging Face transformers"
    short_name = "transformers"
    aliases = ("hf", "huggingface", "hf-transformers")
    offload_method = "accelerate device_map"

    def kv_cache(
        self, layout: KvLayout, prepared: Any, settings: EngineSettings, tokens: Tokens, sequences: Tokens
    ) -> KvFigures:
        # DynamicSlidingWindowLayer keeps sliding_window - 1 tokens.
        return kv_from_cells(
            layout, tokens, lambda group: minimum(tokens, (group.window_tokens or 0) - 1), sequences
        )

    def activations(
        self, text: TextConfig, tensor_parallel: int, settings: EngineSettings, unified_memory: bool
    ) -> ActivationModel:
        """generate() prefills every sequence's whole prompt in one forward pass."""
        return ActivationModel(
            bytes_per_token=forward_values_per_token(text, tensor_parallel) * ACTIVATION_BYTES,
            bytes_per_sequence=tensor_parallel * text.vocab_size * LOGIT_BYTES * LOGIT_COPIES,
            basis=(
                "prefill of every sequence in one forward pass (bf16): residual stream and its "
                "normed copy, the largest layer's q/k/v/attention output or MLP intermediates, "
                "E-model per-layer inputs, and fp32 logits of the last position"
            ),
        )
