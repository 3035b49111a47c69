"""Parameter counts by component, counted from the architecture, plus active and effective counts."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import (
    AudioConfig,
    LayerSpec,
    ModelConfig,
    TextConfig,
    VisionConfig,
    decoder_layers,
)

# How a weight format treats a group of tensors: quantised linear layers, or the groups that
# formats commonly keep at another precision (see data/weight_formats.csv).
TensorGroup = Literal[
    "linear", "projection", "token_embedding", "per_layer_embedding", "norm", "router", "encoder"
]

# Norms per decoder layer: input, post-attention, pre- and post-feed-forward (gemma4 modeling).
NORMS_PER_LAYER = 4
# MoE layers carry three extra norms (pre/post for the expert branch and a post-merge norm).
MOE_EXTRA_NORMS_PER_LAYER = 3


class ParameterCount(BaseModel):
    """Parameters of one model by component; every figure is a count, not bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_embedding: int = Field(ge=0, description="vocab x hidden, tied with the output head")
    per_layer_embedding: int = Field(ge=0, description="PLE lookup table (E models)")
    per_layer_model_projection: int = Field(
        ge=0, description="PLE model-level projection hidden -> layers x 256 (outside the layers)"
    )
    per_layer_projection: int = Field(ge=0, description="per-layer PLE gates and projections")
    attention: int = Field(ge=0, description="q/k/v/o projections of every decoder layer")
    mlp: int = Field(ge=0, description="dense MLP gate/up/down of every decoder layer")
    experts: int = Field(ge=0, description="all routed experts (MoE)")
    active_experts: int = Field(ge=0, description="the top-k experts one token uses (MoE)")
    router: int = Field(ge=0, description="router projections and scales (MoE)")
    norms: int = Field(ge=0, description="every RMSNorm scale in the decoder")
    vision: int = Field(ge=0, description="vision encoder plus its projector into the decoder")
    audio: int = Field(ge=0, description="audio encoder plus its projector into the decoder")
    buffers: int = Field(
        ge=0, description="saved non-parameter tensors: not in any published count, but loaded"
    )

    @property
    def text(self) -> int:
        """The text decoder alone (what 'text decoder' counts in Google's release)."""
        return (
            self.token_embedding
            + self.per_layer_embedding
            + self.per_layer_model_projection
            + self.per_layer_projection
            + self.attention
            + self.mlp
            + self.experts
            + self.router
            + self.norms
        )

    @property
    def total(self) -> int:
        return self.text + self.vision + self.audio

    @property
    def checkpoint_values(self) -> int:
        """Every value a checkpoint stores: parameters plus buffers."""
        return self.total + self.buffers

    @property
    def active_per_token(self) -> int:
        """Decoder parameters one text token reads: routed experts count top-k of E, and the
        PLE table counts nothing (a lookup of one row). Encoders run per image or clip."""
        return self.text - self.experts + self.active_experts - self.per_layer_embedding

    @property
    def effective(self) -> int:
        """Google's 'effective' size of the E models: total less the token embedding and the
        PLE table (the convention is approximate; gemma4-architecture.md). Models without
        per-layer embeddings are quoted at their total."""
        if not self.per_layer_embedding:
            return self.total
        return self.total - self.token_embedding - self.per_layer_embedding

    def by_group(self) -> dict[TensorGroup, int]:
        """Counts keyed by how weight formats treat them (quantised or kept)."""
        return {
            "linear": self.per_layer_projection + self.attention + self.mlp + self.experts,
            "projection": self.per_layer_model_projection,
            "token_embedding": self.token_embedding,
            "per_layer_embedding": self.per_layer_embedding,
            "norm": self.norms + self.buffers,
            "router": self.router,
            "encoder": self.vision + self.audio,
        }


def _attention_params(layer: LayerSpec, hidden: int) -> tuple[int, int]:
    """(projection weights, norm scales) of one layer's attention; no biases in Gemma 4."""
    q_width = layer.num_query_heads * layer.head_dim
    kv_width = layer.num_kv_heads * layer.head_dim
    weights = 2 * hidden * q_width  # q_proj and o_proj
    norms = layer.head_dim  # q_norm
    if layer.owns_kv_cache:
        weights += hidden * kv_width  # k_proj
        norms += layer.head_dim  # k_norm
        if layer.has_v_proj:
            weights += hidden * kv_width  # v_proj (the V norm has no scale)
    return weights, norms


def _text_params(text: TextConfig) -> dict[str, int]:
    hidden = text.hidden_size
    layers = decoder_layers(text)
    count = dict.fromkeys(
        (
            "token_embedding",
            "per_layer_embedding",
            "per_layer_model_projection",
            "per_layer_projection",
            "attention",
            "mlp",
            "experts",
            "active_experts",
            "router",
            "norms",
        ),
        0,
    )
    count["token_embedding"] = text.vocab_size * hidden
    if not text.tie_word_embeddings:
        count["token_embedding"] *= 2  # a separate output head of the same shape

    ple_width = text.hidden_size_per_layer_input
    if ple_width:
        packed_width = text.num_hidden_layers * ple_width
        count["per_layer_embedding"] = text.vocab_size_per_layer_input * packed_width
        # Model-level projection hidden -> layers x 256, and its 256-wide norm.
        count["per_layer_model_projection"] = hidden * packed_width
        count["norms"] += ple_width

    for layer in layers:
        attention_weights, attention_norms = _attention_params(layer, hidden)
        count["attention"] += attention_weights
        count["norms"] += attention_norms + NORMS_PER_LAYER * hidden
        count["mlp"] += 3 * hidden * layer.mlp_width  # gate, up, down
        if ple_width:
            # Per layer: gate hidden -> 256, projection 256 -> hidden, and a hidden-wide norm.
            count["per_layer_projection"] += 2 * hidden * ple_width
            count["norms"] += hidden
        if text.enable_moe_block:
            experts = text.num_experts or 0
            expert_params = 3 * hidden * (text.moe_intermediate_size or 0)  # gate_up + down
            count["experts"] += experts * expert_params
            count["active_experts"] += (text.top_k_experts or 0) * expert_params
            # Router: input scale [H], projection [E, H], per-expert scale [E].
            count["router"] += hidden * experts + hidden + experts
            count["norms"] += MOE_EXTRA_NORMS_PER_LAYER * hidden

    count["norms"] += hidden  # final norm
    return count


def buffer_values(config: ModelConfig) -> int:
    """Buffers a checkpoint saves: one `layer_scalar` per decoder layer (transformers
    modeling_gemma4: register_buffer("layer_scalar", torch.ones(1))) and, on the large vision
    encoder, a standardisation bias and scale of its hidden width (gemma4-architecture.md)."""
    values = config.text_config.num_hidden_layers
    if config.vision_config is not None and config.vision_config.standardize:
        values += 2 * config.vision_config.hidden_size
    return values


def vision_params(vision: VisionConfig, text_hidden: int) -> int:
    """Vision encoder and its projector ('embed_vision'): gemma4-architecture.md, Encoders."""
    h = vision.hidden_size
    patch_embedding = 3 * vision.patch_size**2 * h
    position_table = 2 * vision.position_embedding_size * h
    per_layer = (
        4 * h * h  # q, k, v, o (no bias)
        + 2 * vision.head_dim  # q and k norms
        + 3 * h * vision.intermediate_size  # gated MLP
        + 4 * h  # layer norms
    )
    projector = h * text_hidden
    return patch_embedding + position_table + vision.num_hidden_layers * per_layer + projector


def audio_params(audio: AudioConfig, text_hidden: int) -> int:
    """Conformer audio encoder and its projector ('embed_audio'): gemma4-architecture.md."""
    h = audio.hidden_size
    first_channels, second_channels = audio.subsampling_conv_channels
    kernel = 3 * 3
    subsampling = (
        1 * first_channels * kernel
        + first_channels  # norm
        + first_channels * second_channels * kernel
        + second_channels  # norm
        # The second convolution leaves second_channels x second_channels features per frame.
        + second_channels * second_channels * h
    )
    per_layer = (
        2 * (2 * h * 4 * h + 2 * h)  # two half-step feed-forward blocks, 2 norms each
        + 5 * h * h
        + h // audio.num_attention_heads  # q, k, v, o, relative position; per-dim scale
        + 2 * h * h
        + h * h
        + audio.conv_kernel_size * h
        + 2 * h  # light convolution block and its 2 norms
        + 3 * h  # three more norms
    )
    output_projection = h * audio.output_proj_dims + audio.output_proj_dims  # with bias
    projector = audio.output_proj_dims * text_hidden
    return subsampling + audio.num_hidden_layers * per_layer + output_projection + projector


@lru_cache(maxsize=64)
def count_parameters(config: ModelConfig) -> ParameterCount:
    """Every parameter of the model, by component, from its architecture alone."""
    text_hidden = config.text_config.hidden_size
    return ParameterCount(
        **_text_params(config.text_config),
        vision=vision_params(config.vision_config, text_hidden) if config.vision_config else 0,
        audio=audio_params(config.audio_config, text_hidden) if config.audio_config else 0,
        buffers=buffer_values(config),
    )
