"""Parameter counts by component, counted from the architecture, plus active and effective counts."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import (
    GEMMA4_TEXT,
    AudioConfig,
    LayerSpec,
    ModelConfig,
    SiglipVisionConfig,
    TextConfig,
    VisionConfig,
    decoder_layers,
)

# How a weight format treats a group of tensors: quantised linear layers, or the groups that
# formats commonly keep at another precision (see data/weight_formats.csv).
TensorGroup = Literal[
    "linear",
    "attention",
    "mlp",
    "experts",
    "projection",
    "token_embedding",
    "per_layer_embedding",
    "norm",
    "router",
    "encoder",
]
# The groups a weight format quantises (the others it keeps, or stores at their own precision).
QUANTISABLE_GROUPS: tuple[TensorGroup, ...] = ("linear", "attention", "mlp", "experts")

# Gemma 3n AltUp, per layer: correction coefficients [n, n], prediction coefficients
# [n, n^2], a modality router [H, n] with its norm [H], and an output scale [H]
# (transformers modeling_gemma3n, Gemma3nTextAltUp).
ALTUP_HIDDEN_VECTORS = 2


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
    experts: int = Field(ge=0, description="all routed experts' weights (MoE)")
    expert_biases: int = Field(
        default=0, ge=0, description="all routed experts' biases (gpt-oss): kept in 16 bits by MXFP4"
    )
    active_experts: int = Field(ge=0, description="the top-k experts one token uses (MoE)")
    router: int = Field(ge=0, description="router projections and scales (MoE)")
    norms: int = Field(ge=0, description="every RMSNorm scale in the decoder")
    vision: int = Field(ge=0, description="vision encoder plus its projector into the decoder")
    audio: int = Field(ge=0, description="audio encoder plus its projector into the decoder")
    buffers: int = Field(
        ge=0, description="saved non-parameter tensors: not in any published count, but loaded"
    )
    input_embedding_lookup: int = Field(
        default=0,
        ge=0,
        description="the input table of an untied token embedding (inside token_embedding): a "
        "lookup that reads one row per token, unlike the output head",
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
            + self.expert_biases
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
        """Decoder parameters one text token reads: routed experts count top-k of E, and lookup
        tables count nothing (one row each: the PLE table, and the input embedding when it is not
        tied to the output head; OpenAI's gpt-oss convention). Encoders run per image or clip."""
        return (
            self.text
            - self.experts
            - self.expert_biases
            + self.active_experts
            - self.per_layer_embedding
            - self.input_embedding_lookup
        )

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
            "linear": self.per_layer_projection,
            "attention": self.attention,
            "mlp": self.mlp,
            "experts": self.experts,
            "projection": self.per_layer_model_projection,
            "token_embedding": self.token_embedding,
            "per_layer_embedding": self.per_layer_embedding,
            "norm": self.norms + self.buffers + self.expert_biases,
            "router": self.router,
            "encoder": self.vision + self.audio,
        }


def _attention_params(layer: LayerSpec, text: TextConfig) -> tuple[int, int]:
    """(projection weights and biases, norm scales) of one layer's attention."""
    hidden = text.hidden_size
    q_width = layer.num_query_heads * layer.head_dim
    kv_width = layer.num_kv_heads * layer.head_dim
    weights = 2 * hidden * q_width  # q_proj and o_proj
    weights += q_width * text.qkv_bias + hidden * text.o_proj_bias
    weights += layer.num_query_heads * text.attention_sinks
    norms = layer.head_dim * text.qk_norm  # q_norm
    if layer.owns_kv_cache:
        projections = 2 if layer.has_v_proj else 1  # k_proj, and v_proj unless V = K
        weights += projections * (hidden * kv_width + kv_width * text.qkv_bias)
        norms += layer.head_dim * text.qk_norm  # k_norm (the V norm has no scale)
    return weights, norms


def _expert_params(text: TextConfig, width: int) -> tuple[int, int]:
    """(weights, biases) of one gated expert of `width`: gate and up [H -> 2W], down [W -> H]."""
    hidden = text.hidden_size
    return 3 * hidden * width, (2 * width + hidden) * text.expert_bias


def _layer_counts(layer: LayerSpec, text: TextConfig) -> dict[str, int]:
    """One decoder layer's parameters by component (the keys of ParameterCount)."""
    hidden = text.hidden_size
    ple_width = text.hidden_size_per_layer_input
    count = dict.fromkeys(
        ("attention", "mlp", "per_layer_projection", "experts", "expert_biases", "active_experts", "router", "norms"), 0
    )
    attention_weights, attention_norms = _attention_params(layer, text)
    count["attention"] += attention_weights
    count["norms"] += attention_norms + text.norms_per_layer * hidden
    # gate, up, down (+ biases)
    count["mlp"] += 3 * hidden * layer.mlp_width + (2 * layer.mlp_width + hidden) * text.mlp_bias * (layer.mlp_width > 0)
    if ple_width:
        # Per layer: gate hidden -> 256, projection 256 -> hidden, and a hidden-wide norm.
        count["per_layer_projection"] += 2 * hidden * ple_width
        count["norms"] += hidden
    if layer.has_experts:
        experts = text.num_experts or 0
        weights, biases = _expert_params(text, text.moe_intermediate_size or 0)
        count["experts"] += experts * weights
        count["expert_biases"] += experts * biases
        count["active_experts"] += (text.top_k_experts or 0) * (weights + biases)
        # Router projection [E, H]; Gemma 4 adds an input scale [H] and per-expert scale [E].
        count["router"] += hidden * experts + experts * text.router_bias
        count["router"] += (hidden + experts) * text.router_scales
        count["norms"] += text.moe_extra_norms * hidden
        if text.shared_expert_intermediate_size:
            # Always-on shared expert and its sigmoid gate [1, H] (Qwen2-MoE): dense MLP.
            count["mlp"] += 3 * hidden * text.shared_expert_intermediate_size + hidden
    if text.altup_num_inputs:
        streams = text.altup_num_inputs
        count["per_layer_projection"] += streams * streams + streams**3 + hidden * streams
        count["norms"] += ALTUP_HIDDEN_VECTORS * hidden
    if text.laurel_rank:
        # LAuReL: hidden -> rank -> hidden, and its post norm.
        count["per_layer_projection"] += 2 * hidden * text.laurel_rank
        count["norms"] += hidden
    return count


@lru_cache(maxsize=64)
def layer_parameters(text: TextConfig) -> tuple[dict[str, int], ...]:
    """Every decoder layer's parameters by component: what moves when a runtime offloads a
    layer (llama.cpp -ngl) or only its routed experts (--n-cpu-moe)."""
    return tuple(_layer_counts(layer, text) for layer in decoder_layers(text))


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
            "expert_biases",
            "input_embedding_lookup",
        ),
        0,
    )
    count["token_embedding"] = text.vocab_size * hidden
    if not text.tie_word_embeddings:
        count["input_embedding_lookup"] = count["token_embedding"]
        count["token_embedding"] *= 2  # a separate output head of the same shape

    ple_width = text.hidden_size_per_layer_input
    if ple_width:
        packed_width = text.num_hidden_layers * ple_width
        count["per_layer_embedding"] = text.vocab_size_per_layer_input * packed_width
        # Model-level projection hidden -> layers x 256, and its 256-wide norm.
        count["per_layer_model_projection"] = hidden * packed_width
        count["norms"] += ple_width

    for layer in layers:
        for component, value in _layer_counts(layer, text).items():
            count[component] += value

    if text.altup_num_inputs:
        # Model level: projections into and out of the extra AltUp streams, hidden x hidden each.
        count["per_layer_model_projection"] += 2 * (text.altup_num_inputs - 1) * hidden * hidden
    count["norms"] += hidden  # final norm
    return count


def buffer_values(config: ModelConfig) -> int:
    """Buffers a checkpoint saves: one `layer_scalar` per decoder layer (transformers
    modeling_gemma4: register_buffer("layer_scalar", torch.ones(1))) and, on the large vision
    encoder, a standardisation bias and scale of its hidden width (gemma4-architecture.md)."""
    values = config.text_config.num_hidden_layers if config.text_config.model_type == GEMMA4_TEXT else 0
    if isinstance(config.vision_config, VisionConfig) and config.vision_config.standardize:
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


def siglip_params(vision: SiglipVisionConfig, text_hidden: int) -> int:
    """SigLIP tower (transformers modeling_siglip: every linear and LayerNorm has a bias) plus
    Gemma 3's projector: mm_input_projection_weight [H_vision, H_text] and mm_soft_emb_norm."""
    h, width = vision.hidden_size, vision.intermediate_size
    positions = (vision.image_size // vision.patch_size) ** 2
    patch_embedding = vision.num_channels * vision.patch_size**2 * h + h
    per_layer = (
        4 * (h * h + h)  # q, k, v, o with biases
        + (h * width + width) + (width * h + h)  # fc1, fc2 with biases
        + 2 * 2 * h  # two LayerNorms, scale and bias
    )
    post_layernorm = 2 * h
    head = 0
    if vision.vision_use_head:
        # Attention-pooling head: probe, multi-head attention (in/out projections), LayerNorm, MLP.
        head = h + (3 * h * h + 3 * h) + (h * h + h) + 2 * h + (h * width + width) + (width * h + h)
    projector = h * text_hidden + h
    return patch_embedding + positions * h + vision.num_hidden_layers * per_layer + post_layernorm + head + projector


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


def _vision(config: ModelConfig, text_hidden: int) -> int:
    vision = config.vision_config
    if vision is None:
        return 0
    if isinstance(vision, SiglipVisionConfig):
        return siglip_params(vision, text_hidden)
    return vision_params(vision, text_hidden)


@lru_cache(maxsize=64)
def count_parameters(config: ModelConfig) -> ParameterCount:
    """Every parameter of the model, by component, from its architecture alone."""
    text_hidden = config.text_config.hidden_size
    return ParameterCount(
        **_text_params(config.text_config),
        vision=_vision(config, text_hidden),
        audio=audio_params(config.audio_config, text_hidden) if config.audio_config else 0,
        buffers=buffer_values(config),
    )
