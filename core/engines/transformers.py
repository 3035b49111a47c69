"""Hugging Face transformers: DynamicCache growing with the sequence, prefill in one pass."""

from __future__ import annotations

from core.architecture import FULL, TextConfig, decoder_layers
from core.engines.base import ActivationModel, EnginePolicy, Tokens, minimum
from core.kv_cache import TENSORS_PER_LAYER, KvLayerGroup
from core.params import ParameterCount

# Activations run in the compute dtype (bf16) whatever the weight format.
ACTIVATION_BYTES = 2
# Logits of the last position only (generate() passes logits_to_keep=1), upcast to fp32, and one
# more fp32 copy for the sampling step's softmax.
LOGIT_BYTES = 4
LOGIT_COPIES = 2
# Tensors of hidden width alive across a layer: the residual stream, its normed copy, and the
# attention/MLP branch output before it is added back.
HIDDEN_WIDTH_TENSORS = 3


class TransformersPolicy(EnginePolicy):
    """engines.md: full layers hold T tokens, sliding layers the last W - 1 (once T exceeds the
    window), KV-shared layers nothing; memory grows with the sequence (no pre-allocation)."""

    id = "transformers"
    display_name = "Hugging Face transformers"
    aliases = ("hf", "huggingface", "hf-transformers")

    def retained_tokens(self, group: KvLayerGroup, sequence_tokens: Tokens) -> Tokens:
        if group.attention == FULL or group.window_tokens is None:
            return sequence_tokens
        # DynamicSlidingWindowLayer keeps sliding_window - 1 tokens.
        return minimum(sequence_tokens, group.window_tokens - 1)

    def activations(
        self, text: TextConfig, params: ParameterCount, tensor_parallel: int
    ) -> ActivationModel:
        """Prefill of the whole prompt in one forward pass: the largest layer's working set per
        token, plus tensors that live across layers. During prefill a sliding layer briefly
        holds K and V for every token before trimming to the window, so K and V count at full
        length here. Tensor parallelism splits heads and MLP width; the hidden-width tensors
        are replicated on every rank."""
        tp = tensor_parallel
        replicated = HIDDEN_WIDTH_TENSORS * text.hidden_size
        # E models materialise every layer's per-layer input at once: layers x 256 per token.
        replicated += text.num_hidden_layers * text.hidden_size_per_layer_input

        largest_layer = 0
        for layer in decoder_layers(text):
            query = layer.num_query_heads * layer.head_dim
            key_value = TENSORS_PER_LAYER * layer.num_kv_heads * layer.head_dim
            attention = 2 * query + key_value  # q, attention output, k and v
            mlp = 3 * layer.mlp_width  # gate, up and their product
            if text.enable_moe_block:
                # Each token also passes through top-k experts: gate_up (2 x width) and product.
                mlp += (text.top_k_experts or 0) * 3 * (text.moe_intermediate_size or 0)
            largest_layer = max(largest_layer, max(attention, mlp))

        per_token_values = tp * replicated + largest_layer  # split values summed over ranks
        return ActivationModel(
            bytes_per_token=per_token_values * ACTIVATION_BYTES,
            bytes_per_sequence=tp * text.vocab_size * LOGIT_BYTES * LOGIT_COPIES,
            basis=(
                "prefill of the whole sequence in one forward pass (bf16): residual stream and "
                "its normed copy, the largest layer's q/k/v/attention output or MLP "
                "intermediates, E-model per-layer inputs, and fp32 logits of the last position"
            ),
        )
