"""The layer-by-layer model of a decoder network (Gemma 4 first), read from config.json-style fields."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

AttentionType = Literal["sliding_attention", "full_attention"]
SLIDING: AttentionType = "sliding_attention"
FULL: AttentionType = "full_attention"

# Gemma 4's default layer rhythm when a config omits `layer_types`: five sliding layers, then
# one full layer (transformers' Gemma4TextConfig.__post_init__, sliding_window_pattern = 6).
DEFAULT_SLIDING_WINDOW_PATTERN = 6
# MoE layers carry three extra norms (pre/post for the expert branch and a post-merge norm).
MOE_EXTRA_NORMS_PER_LAYER = 3
GEMMA4_TEXT = "gemma4_text"
# Defaults that no variant overrides (transformers Gemma4TextConfig: global_head_dim pops 512).
DEFAULT_GLOBAL_HEAD_DIM = 512
# model_type as transformers spells it (gemma4_text, qwen2_moe, phi3, gpt_oss): a name, never
# markup or a paragraph of text, whatever a shared link says.
MODEL_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A layer number as config.json writes it: ASCII digits, no sign, spaces or underscores.
LAYER_NUMBER = re.compile(r"0|[1-9][0-9]{0,5}")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerOverride(_Frozen):
    """One `per_layer_config` entry: the newer config layout's per-layer head overrides."""

    head_dim: int | None = Field(default=None, gt=0)
    num_key_value_heads: int | None = Field(default=None, gt=0)


class TextConfig(_Frozen):
    """The decoder's `text_config`, field names as in Hugging Face's Gemma4TextConfig.

    The fields after `moe_intermediate_size` describe how other families differ from Gemma 4
    (biases, norms, MoE layout); their defaults are Gemma 4's, so data/models.json omits them.
    core/hf_import.py fills them from other families' config.json files."""

    vocab_size: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0, le=10_000)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    # Full-attention overrides: either the older pair of fields or `per_layer_config`.
    global_head_dim: int | None = Field(default=None, gt=0)
    num_global_key_value_heads: int | None = Field(default=None, gt=0)
    # Stored as sorted (layer, override) pairs so the config stays hashable (cache keys).
    per_layer_config: tuple[tuple[int, LayerOverride], ...] | None = None
    # None when no layer uses a sliding window (Llama, Qwen, Phi-4).
    sliding_window: int | None = Field(default=None, gt=1)
    layer_types: tuple[AttentionType, ...] | None = None
    max_position_embeddings: int = Field(gt=0)
    tie_word_embeddings: bool = True
    attention_k_eq_v: bool = False
    num_kv_shared_layers: int = Field(default=0, ge=0)
    use_double_wide_mlp: bool = False
    # Per-layer embeddings (PLE); 0 means the variant has none.
    hidden_size_per_layer_input: int = Field(default=0, ge=0)
    vocab_size_per_layer_input: int = Field(default=0, ge=0)
    enable_moe_block: bool = False
    num_experts: int | None = Field(default=None, gt=0)
    top_k_experts: int | None = Field(default=None, gt=0)
    moe_intermediate_size: int | None = Field(default=None, gt=0)

    # Which family the config came from (its `model_type`), for labels only.
    model_type: str = Field(default=GEMMA4_TEXT, pattern=MODEL_TYPE_PATTERN.pattern)
    # transformers' Gemma 4 forces the last layer to full attention; no other family does.
    last_layer_full: bool = True
    qk_norm: bool = True  # q_norm and k_norm scales of head_dim (Gemma 3/4, Qwen3)
    qkv_bias: bool = False  # biases on q, k, v (Qwen2, gpt-oss, Llama attention_bias)
    o_proj_bias: bool = False  # bias on o_proj (gpt-oss, Llama attention_bias)
    attention_sinks: bool = False  # one learned sink logit per query head (gpt-oss)
    norms_per_layer: int = Field(default=4, ge=0, le=16)  # hidden-wide norms per layer
    mlp_bias: bool = False  # biases on gate, up and down (Llama mlp_bias)
    # Per-layer dense MLP widths when they differ by layer (Gemma 3n's intermediate_size list).
    layer_intermediate_sizes: tuple[Annotated[int, Field(gt=0)], ...] | None = None
    # Whether MoE layers also keep a dense MLP (Gemma 4 26B-A4B) or the experts replace it.
    dense_mlp_with_experts: bool = True
    # MoE models: layers that keep a dense MLP instead of experts (Qwen MoE mlp_only_layers).
    mlp_only_layers: tuple[Annotated[int, Field(ge=0)], ...] = ()
    expert_bias: bool = False  # biases on each expert's gate_up and down (gpt-oss)
    router_bias: bool = False  # bias on the router projection (gpt-oss)
    router_scales: bool = True  # Gemma 4's router input scale [H] and per-expert scale [E]
    moe_extra_norms: int = Field(default=MOE_EXTRA_NORMS_PER_LAYER, ge=0, le=16)
    shared_expert_intermediate_size: int = Field(default=0, ge=0)  # Qwen2-MoE shared expert
    # Gemma 3n: AltUp streams (extra copies of the hidden state) and LAuReL low-rank blocks.
    altup_num_inputs: int = Field(default=0, ge=0, le=64)
    laurel_rank: int = Field(default=0, ge=0)

    @field_validator("per_layer_config", mode="before")
    @classmethod
    def _pairs_from_mapping(cls, value: object) -> object:
        """config.json's {"4": {...}} or the stored [[4, {...}]] pairs, keys read strictly: int()
        would also take " 4 ", "0_0" and other scripts' digits ("١")."""
        if isinstance(value, dict):
            pairs = list(value.items())
        elif isinstance(value, (list, tuple)):
            if not all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in value):
                raise ValueError("per_layer_config must map layer numbers to head overrides")
            pairs = [tuple(pair) for pair in value]
        else:
            return value  # None passes; anything else fails the field's own type check
        layers = []
        for key, override in pairs:
            if isinstance(key, str) and LAYER_NUMBER.fullmatch(key):
                key = int(key)
            if isinstance(key, bool) or not isinstance(key, int):
                raise ValueError(f"per_layer_config keys must be layer numbers like \"4\" (got {str(key)[:20]!r})")
            layers.append((key, override))
        if len({key for key, _ in layers}) < len(layers):
            raise ValueError("per_layer_config names a layer twice")
        return tuple(sorted(layers, key=lambda pair: pair[0]))

    @model_validator(mode="after")
    def _consistent(self) -> TextConfig:
        if self.layer_types is not None and len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(
                f"layer_types lists {len(self.layer_types)} layers but num_hidden_layers is "
                f"{self.num_hidden_layers}"
            )
        if self.num_kv_shared_layers >= self.num_hidden_layers:
            raise ValueError(
                f"num_kv_shared_layers ({self.num_kv_shared_layers}) must be below "
                f"num_hidden_layers ({self.num_hidden_layers})"
            )
        if self.enable_moe_block and None in (
            self.num_experts,
            self.top_k_experts,
            self.moe_intermediate_size,
        ):
            raise ValueError(
                "enable_moe_block needs num_experts, top_k_experts and moe_intermediate_size"
            )
        if self.enable_moe_block and self.top_k_experts > self.num_experts:  # type: ignore[operator]
            raise ValueError("top_k_experts cannot exceed num_experts")
        if self.per_layer_config:
            bad = [i for i, _ in self.per_layer_config if not 0 <= i < self.num_hidden_layers]
            if bad:
                raise ValueError(f"per_layer_config names layers outside the model: {bad}")
        if self.hidden_size_per_layer_input and not self.vocab_size_per_layer_input:
            raise ValueError("hidden_size_per_layer_input needs vocab_size_per_layer_input")
        if self.sliding_window is None and SLIDING in self.resolved_layer_types():
            raise ValueError("sliding_attention layers need a sliding_window")
        orphan = _first_layer_without_cache_owner(self)
        if orphan is not None:
            index, attention = orphan
            raise ValueError(
                f"num_kv_shared_layers ({self.num_kv_shared_layers}) makes layer {index} ({attention}) "
                f"reuse an earlier {attention} layer's KV cache, but no earlier layer of that type keeps one"
            )
        if self.layer_intermediate_sizes is not None and len(self.layer_intermediate_sizes) != self.num_hidden_layers:
            raise ValueError(
                f"intermediate_size lists {len(self.layer_intermediate_sizes)} layers but "
                f"num_hidden_layers is {self.num_hidden_layers}"
            )
        if any(not 0 <= i < self.num_hidden_layers for i in self.mlp_only_layers):
            raise ValueError("mlp_only_layers names layers outside the model")
        return self

    def resolved_layer_types(self) -> tuple[AttentionType, ...]:
        """Every layer's attention type; the last layer is always full attention."""
        if self.layer_types is not None:
            types = list(self.layer_types)
        else:
            types = [
                SLIDING if (i + 1) % DEFAULT_SLIDING_WINDOW_PATTERN else FULL
                for i in range(self.num_hidden_layers)
            ]
        # Gemma 4 in transformers forces the last layer to full attention whatever the config says.
        if self.last_layer_full:
            types[-1] = FULL
        return tuple(types)


def _first_layer_without_cache_owner(text: TextConfig) -> tuple[int, AttentionType] | None:
    """The first KV-shared layer with no earlier cache-owning layer of its type, if any: it
    would read a cache nobody writes (transformers' Gemma 4 takes the last owner per type)."""
    types = text.resolved_layer_types()
    first_shared = text.num_hidden_layers - text.num_kv_shared_layers
    owned = set(types[:first_shared])
    for index in range(first_shared, text.num_hidden_layers):
        if types[index] not in owned:
            return index, types[index]
    return None


class _VisionTower(_Frozen):
    """What every vision transformer's config states (Hugging Face field names)."""

    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)


class VisionConfig(_VisionTower):
    """The vision encoder's `vision_config` (Gemma4VisionConfig field names)."""

    num_key_value_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    patch_size: int = Field(default=16, gt=0)
    pooling_kernel_size: int = Field(default=3, gt=0)
    position_embedding_size: int = Field(default=10_240, gt=0)
    standardize: bool = False


class SiglipVisionConfig(_VisionTower):
    """A SigLIP vision tower (Gemma 3's `vision_config`, model_type siglip_vision_model), with
    Gemma 3's projector into the decoder."""

    image_size: int = Field(gt=0)
    patch_size: int = Field(gt=0)
    num_channels: int = Field(default=3, gt=0)
    vision_use_head: bool = False
    # Soft tokens one image becomes in the decoder (Gemma 3: mm_tokens_per_image = 256).
    mm_tokens_per_image: int = Field(default=256, gt=0)

    @model_validator(mode="after")
    def _patches(self) -> SiglipVisionConfig:
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        return self


class AudioConfig(_Frozen):
    """The conformer audio encoder's `audio_config` (Gemma4AudioConfig field names)."""

    hidden_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    subsampling_conv_channels: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(gt=0)]] = (128, 32)
    conv_kernel_size: int = Field(default=5, gt=0)
    output_proj_dims: int = Field(default=1536, gt=0)


class ModelConfig(_Frozen):
    """A multimodal `config.json`: the decoder plus optional encoders."""

    text_config: TextConfig
    vision_config: VisionConfig | SiglipVisionConfig | None = None
    audio_config: AudioConfig | None = None


class LayerSpec(_Frozen):
    """What one decoder layer holds, resolved from the config."""

    index: int = Field(ge=0)
    attention: AttentionType
    num_query_heads: int = Field(gt=0)
    num_kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    # The layer whose KV cache this one reads (KV-shared layers own no cache and no k/v weights).
    kv_source_layer: int | None = None
    # attention_k_eq_v full layers compute V from the K projection: no v_proj, but V is cached.
    has_v_proj: bool
    # Dense MLP width; 0 where routed experts replace the MLP (Mixtral, Qwen3 MoE, gpt-oss).
    mlp_width: int = Field(ge=0)
    has_experts: bool = False

    @property
    def owns_kv_cache(self) -> bool:
        return self.kv_source_layer is None


def full_layer_overrides(
    text: TextConfig, types: tuple[AttentionType, ...]
) -> dict[int, LayerOverride]:
    """Per-layer head overrides, as transformers builds them.

    A config with `per_layer_config` is taken as written. Otherwise every full layer gets
    `global_head_dim` (default 512) and, only when `attention_k_eq_v` is set,
    `num_global_key_value_heads` (Gemma4TextConfig.__post_init__).
    """
    if text.per_layer_config is not None:
        return dict(text.per_layer_config)
    if text.model_type != GEMMA4_TEXT:
        return {}  # other families give full layers the same heads as sliding ones
    full = LayerOverride(
        head_dim=text.global_head_dim or DEFAULT_GLOBAL_HEAD_DIM,
        num_key_value_heads=text.num_global_key_value_heads if text.attention_k_eq_v else None,
    )
    return {index: full for index, kind in enumerate(types) if kind == FULL}


@lru_cache(maxsize=64)
def decoder_layers(text: TextConfig) -> tuple[LayerSpec, ...]:
    """Resolve every decoder layer: attention type, heads, head_dim, KV sharing, MLP width."""
    types = text.resolved_layer_types()
    layer_count = text.num_hidden_layers
    first_shared = layer_count - text.num_kv_shared_layers
    overrides = full_layer_overrides(text, types)

    # Shared layers read the last non-shared layer of their own attention type.
    last_owner: dict[AttentionType, int] = {}
    for index in range(first_shared):
        last_owner[types[index]] = index

    layers = []
    for index, attention in enumerate(types):
        override = overrides.get(index, LayerOverride())
        head_dim = override.head_dim or text.head_dim
        kv_heads = override.num_key_value_heads or text.num_key_value_heads

        kv_source = None
        if index >= first_shared:
            if attention not in last_owner:
                raise ValueError(
                    f"layer {index} is KV-shared but no earlier layer of type {attention} owns a cache"
                )
            kv_source = last_owner[attention]

        has_experts = text.enable_moe_block and index not in text.mlp_only_layers
        if has_experts and not text.dense_mlp_with_experts:
            mlp_width = 0
        elif text.layer_intermediate_sizes is not None:
            mlp_width = text.layer_intermediate_sizes[index]
        else:
            mlp_width = text.intermediate_size
        if text.use_double_wide_mlp and index >= first_shared:
            mlp_width *= 2

        layers.append(
            LayerSpec(
                index=index,
                attention=attention,
                num_query_heads=text.num_attention_heads,
                num_kv_heads=kv_heads,
                head_dim=head_dim,
                kv_source_layer=kv_source,
                has_v_proj=not (text.attention_k_eq_v and attention == FULL),
                mlp_width=mlp_width,
                has_experts=has_experts,
            )
        )
    return tuple(layers)
