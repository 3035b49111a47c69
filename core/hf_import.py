"""Reads another model's Hugging Face config.json into the same architecture model as Gemma 4."""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.architecture import (
    FULL,
    GEMMA4_TEXT,
    MODEL_TYPE_PATTERN,
    SLIDING,
    AttentionType,
    AudioConfig,
    ModelConfig,
    SiglipVisionConfig,
    TextConfig,
    VisionConfig,
)
from core.catalog import ModelSpec, clipped, validation_problem
from core.files import read_user_file
from core.kv_cache import kv_layer_groups
from core.params import count_parameters

# Real configs are a few kB (Gemma 4's, with 60 layer types, is 6 kB); 1 MiB leaves room for
# pretty-printing and long per-layer lists while keeping parsing instant.
MAX_CONFIG_BYTES = 2**20
# What a model in a link may inflate to. The sizing fields of the largest shipped config take
# 1.7 kB and a 1,000-layer model with every per-layer list about 40 kB; a link value of 4,000
# characters that inflates further is built to cost CPU, not to describe a model.
MAX_LINK_CONFIG_BYTES = 64 * 2**10
# Real configs nest three deep (rope_scaling inside text_config); deeper input is not a config.
MAX_JSON_DEPTH = 16
# No list in a config is longer than its layer count (at most 1,000, below) by much: a few
# token-id lists (Whisper's suppress_tokens) reach a hundred. Longer lists are refused before
# anything walks them; the importer then holds per-layer lists to the layer count exactly.
MAX_JSON_LIST_ITEMS = 10_000
# Integers longer than this are not sizes (a 4,000-digit number); shorter ones reach the field
# bounds below, which name the field (10^18 layers).
MAX_INTEGER_DIGITS = 30
# Nothing published comes near 10^13 parameters (the largest open models are about 2 x 10^12).
MAX_TOTAL_PARAMS = 10**13
# Links: one imported model per `custom` value, 'name~payload'. A Llama-style config encodes to
# about 300 characters; 4,000 keeps a link with three models well under browsers' URL limits.
LINK_SEPARATOR = "~"
# Imported models one view compares with Gemma 4 (each has its own colour and slot).
MAX_IMPORTED_MODELS = 3
MAX_LINK_VALUE_CHARS = 4_000
# A name for the imported model: shown in legends and carried in links. It starts with a letter
# or digit, so it can never open a Markdown list item or a spreadsheet formula (+, -, =, @).
NAME_PATTERN = re.compile(r"^[^\W_][\w .+()/-]{0,47}$")
# The longest piece of a config (a field name or value) an error message quotes.
QUOTE_CHARS = 40

# (lowest, highest) accepted for each size field; bounds are far outside any real model so a
# real config never trips them, while 10^18 layers or negative widths fail with a clear line.
BOUNDS: dict[str, tuple[int, int]] = {
    "vocab_size": (1, 10_000_000),
    "hidden_size": (1, 131_072),
    "intermediate_size": (1, 1_048_576),
    "num_hidden_layers": (1, 1_000),
    "num_attention_heads": (1, 4_096),
    "num_key_value_heads": (1, 4_096),
    "head_dim": (1, 4_096),
    "global_head_dim": (1, 4_096),
    "num_global_key_value_heads": (1, 4_096),
    "sliding_window": (2, 100_000_000),
    "sliding_window_pattern": (1, 1_000),
    "max_window_layers": (0, 1_000),
    "max_position_embeddings": (1, 100_000_000),
    "num_experts": (1, 4_096),
    "top_k_experts": (1, 4_096),
    "moe_intermediate_size": (1, 1_048_576),
    "shared_expert_intermediate_size": (0, 1_048_576),
    "decoder_sparse_step": (1, 1_000),
    "num_kv_shared_layers": (0, 1_000),
    "hidden_size_per_layer_input": (0, 131_072),
    "vocab_size_per_layer_input": (0, 10_000_000),
    "altup_num_inputs": (0, 64),
    "laurel_rank": (0, 131_072),
    "image_size": (1, 100_000),
    "patch_size": (1, 10_000),
    "mm_tokens_per_image": (1, 100_000),
    "num_channels": (1, 64),
    "pooling_kernel_size": (1, 1_000),
    "position_embedding_size": (1, 10_000_000),
    "subsampling_conv_channels": (1, 131_072),
    "conv_kernel_size": (1, 1_000),
    "output_proj_dims": (1, 131_072),
}


class ConfigImportError(ValueError):
    """A config.json that cannot be sized: the message names the field and what is wrong."""


class ImportedModel(BaseModel):
    """A config.json read into the planner's architecture model, with what was assumed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_type: str
    family: str
    config: ModelConfig
    warnings: tuple[str, ...] = ()
    # Fields the config left to its transformers class default, with the value used.
    defaults: tuple[str, ...] = ()
    # The config as read (sizes only), re-importable: what a shared link carries.
    normalized: str = Field(description="compact JSON of the sizing fields, re-importable")


# --------------------------------------------------------------------------- parsing


def parse_config_json(data: bytes | str, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """The JSON object in `data`, within the size, depth, list-length and number limits above.
    Links, uploads, pastes, scenario files and --config all come through here."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise ConfigImportError(
            f"config.json is {len(raw):,} bytes; the limit is {max_bytes:,} ({_size_label(max_bytes)}). "
            "Paste the model's config.json itself, not weights or a whole repository"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigImportError(f"config.json is not UTF-8 text (byte {error.start})") from None
    try:
        document = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise ConfigImportError(
            f"config.json is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except RecursionError:
        # The C parser stops at Python's recursion limit (about 1,000 levels) by itself.
        raise ConfigImportError(f"config.json nests deeper than {MAX_JSON_DEPTH} levels; a config nests at most {MAX_JSON_DEPTH}") from None
    if not isinstance(document, dict):
        raise ConfigImportError(f"config.json must be a JSON object {{...}}, not a {type(document).__name__}")
    _check_shape(document)
    return document


def _check_shape(document: dict[str, Any]) -> None:
    """Depth and list lengths; a long list is refused before its items are looked at, so the
    walk costs at most the (bounded) number of items."""
    for node, depth in _containers(document):
        if depth > MAX_JSON_DEPTH:
            raise ConfigImportError(f"config.json nests deeper than {MAX_JSON_DEPTH} levels; a config nests at most {MAX_JSON_DEPTH}")
        if len(node) > MAX_JSON_LIST_ITEMS:
            kind = "an object of" if isinstance(node, dict) else "a list of"
            raise ConfigImportError(
                f"config.json holds {kind} {len(node):,} items; no config holds more than {MAX_JSON_LIST_ITEMS:,}"
            )


def _containers(document: Mapping[str, Any]) -> Iterator[tuple[Any, int]]:
    """Every object and list in `document` with its depth (the document is 1), walked without
    recursion. A node's children are listed only after the caller has seen the node, so a
    caller that raises on it never pays for walking them."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        yield node, depth
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _size_label(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:g} MiB" if size_bytes >= 2**20 else f"{size_bytes / 2**10:g} KiB"


def quoted(value: object) -> str:
    """A piece of untrusted input as an error message quotes it: its repr, at most 40 characters."""
    return clipped(repr(value) if not isinstance(value, (dict, list, tuple)) else type(value).__name__, QUOTE_CHARS)


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ConfigImportError(f"config.json holds a {len(digits)}-digit integer; no model size is that large")
    return int(digits)


def _no_constant(name: str) -> Any:
    raise ConfigImportError(f"config.json holds {name}, which is not a number JSON allows")


# --------------------------------------------------------------------------- field readers


class _Fields:
    """Typed, bounded reads from one config section; remembers what it had to assume."""

    def __init__(self, section: Mapping[str, Any], where: str, assumed: list[str]) -> None:
        self.section, self.where, self.assumed = section, where, assumed

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return self.section.get(key) is not None

    def int(self, key: str, default: int | None = None, *, bound: str | None = None, assume: str | None = None) -> int:
        value = self.section.get(key)
        if value is None:
            if default is None:
                raise ConfigImportError(f"config.json has no '{self._name(key)}': it is needed to size the model")
            if assume:
                self.assumed.append(f"{self._name(key)} = {default:,} ({assume})")
            return default
        # JSON integers only, as everywhere else (links and encoders too): true, 4096.0 and
        # "4096" are not sizes.
        low, high = BOUNDS[bound or key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigImportError(
                f"config.json field '{self._name(key)}' must be a whole number from {low:,} to {high:,} (got {quoted(value)})"
            )
        return value

    def optional_int(self, key: str, *, bound: str | None = None) -> int | None:
        return self.int(key, bound=bound) if self.has(key) else None

    def bool(self, key: str, default: bool) -> bool:
        value = self.section.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigImportError(f"config.json field '{self._name(key)}' must be true or false (got {quoted(value)})")
        return value

    def int_list(self, key: str, length: int, *, bound: str) -> tuple[int, ...]:
        value = self.section.get(key)
        if not isinstance(value, list) or len(value) != length:
            raise ConfigImportError(f"config.json field '{self._name(key)}' must list {length} whole numbers")
        return tuple(_Fields({key: item}, self.where, self.assumed).int(key, bound=bound) for item in value)

    def index_list(self, key: str, layers: int) -> tuple[int, ...]:
        value = self.section.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or len(value) > layers:
            raise ConfigImportError(f"config.json field '{self._name(key)}' must list at most {layers} layer numbers")
        indices = tuple(_Fields({key: item}, self.where, self.assumed).int(key, bound="max_window_layers") for item in value)
        if any(index >= layers for index in indices):
            raise ConfigImportError(f"config.json field '{self._name(key)}' names layers beyond num_hidden_layers ({layers})")
        return indices


def _layer_types(fields: _Fields, layers: int) -> tuple[AttentionType, ...] | None:
    value = fields.section.get("layer_types")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != layers:
        raise ConfigImportError(
            f"config.json field '{fields._name('layer_types')}' must list {layers} layers (num_hidden_layers)"
        )
    types = []
    for index, kind in enumerate(value):
        if kind not in (SLIDING, FULL):
            raise ConfigImportError(
                f"config.json layer {index} is {quoted(kind)}: only sliding_attention and full_attention layers "
                "can be sized (linear-attention and chunked layers keep state this planner does not model)"
            )
        types.append(kind)
    return tuple(types)


# --------------------------------------------------------------------------- families


class _Family(BaseModel):
    """How one model_type maps onto TextConfig: the structural switches and its defaults."""

    model_config = ConfigDict(frozen=True)

    display: str
    tie_default: bool = False
    qk_norm: bool = False
    norms_per_layer: int = 2
    # "all": sliding_window applies to every layer when set (Mistral, Phi-3); "qwen": layers
    # from max_window_layers on when use_sliding_window; "alternate": even layers (Gemma 2,
    # gpt-oss); "pattern": all but every Nth (Gemma 3, sliding_window_pattern); "none".
    sliding: str = "none"
    pattern_default: int = 6
    qkv_bias: bool | None = None  # None: attention_bias decides q, k, v and o together
    moe: str = "none"  # "mixtral", "qwen", "gpt_oss", "gemma4"
    ple: bool = False
    gemma3n: bool = False
    # transformers' config-class defaults, which real configs rely on by leaving fields out
    # (Gemma 3's text_config states no vocab_size).
    defaults: dict[str, int] = {}
    source: str = ""


FAMILIES: dict[str, _Family] = {
    "llama": _Family(display="Llama"),
    "mistral": _Family(display="Mistral", sliding="all"),
    "ministral": _Family(display="Ministral", sliding="all"),
    "mixtral": _Family(display="Mixtral", sliding="all", moe="mixtral"),
    "qwen2": _Family(display="Qwen2 / Qwen2.5", sliding="qwen", qkv_bias=True),
    "qwen2_moe": _Family(display="Qwen2 MoE", sliding="qwen", qkv_bias=True, moe="qwen"),
    "qwen3": _Family(display="Qwen3", sliding="qwen", qk_norm=True),
    "qwen3_moe": _Family(display="Qwen3 MoE", sliding="qwen", qk_norm=True, moe="qwen"),
    "phi3": _Family(display="Phi-3 / Phi-4", sliding="all"),
    "gpt_oss": _Family(display="gpt-oss", sliding="alternate", moe="gpt_oss"),
    "gemma": _Family(display="Gemma", tie_default=True),
    "gemma2": _Family(display="Gemma 2", tie_default=True, norms_per_layer=4, sliding="alternate"),
    "gemma3_text": _Family(
        display="Gemma 3", tie_default=True, qk_norm=True, norms_per_layer=4, sliding="pattern",
        defaults={"vocab_size": 262_208, "max_position_embeddings": 131_072},
        source="transformers Gemma3TextConfig",
    ),
    "gemma3n_text": _Family(
        display="Gemma 3n", tie_default=True, qk_norm=True, norms_per_layer=4, sliding="pattern",
        pattern_default=5, ple=True, gemma3n=True,
        defaults={"vocab_size": 262_400, "vocab_size_per_layer_input": 262_144, "hidden_size_per_layer_input": 256},
        source="transformers Gemma3nTextConfig",
    ),
    "gemma4_text": _Family(display="Gemma 4", tie_default=True, qk_norm=True, norms_per_layer=4, moe="gemma4", ple=True),
}
# Multimodal wrappers name their decoder's family.
WRAPPERS = {"gemma3": "gemma3_text", "gemma3n": "gemma3n_text", "gemma4": "gemma4_text"}
# Families whose layers this planner cannot size, with the reason.
UNSUPPORTED = {
    "qwen3_next": "Qwen3-Next mixes Gated DeltaNet linear-attention layers (a fixed recurrent state per "
    "sequence) with full attention; this planner models KV caches only",
    "llama4": "Llama 4 uses chunked attention and interleaved MoE layers this planner does not model yet",
    "mamba": "Mamba layers keep a recurrent state, not a KV cache",
    "falcon_h1": "Falcon-H1 mixes Mamba and attention layers",
    "jamba": "Jamba mixes Mamba and attention layers",
    "deepseek_v2": "DeepSeek's multi-head latent attention caches a compressed latent, not K and V",
    "deepseek_v3": "DeepSeek's multi-head latent attention caches a compressed latent, not K and V",
}


def import_config(document: Mapping[str, Any]) -> ImportedModel:
    """Size a parsed config.json: its decoder (and a Gemma encoder where present)."""
    assumed: list[str] = []
    warnings: list[str] = []
    top = _Fields(document, "", assumed)
    text_section = document.get("text_config")
    if text_section is not None and not isinstance(text_section, dict):
        raise ConfigImportError("config.json field 'text_config' must be a JSON object")
    section = text_section if isinstance(text_section, dict) else document
    where = "text_config" if isinstance(text_section, dict) else ""
    fields = _Fields(section, where, assumed)

    model_type = _model_type(document, section, warnings)
    family = FAMILIES.get(model_type)
    if family is None:
        family = _Family(display=f"unknown ({model_type})")
        warnings.append(
            f"model_type '{model_type}' is not a family this planner knows; it was sized as a plain "
            "Llama-style decoder (gated MLP, two norms per layer, no biases, full attention)"
        )

    defaults = [
        f"{key} = {value:,} ({family.source} default)" for key, value in family.defaults.items() if section.get(key) is None
    ]
    if defaults:
        fields = _Fields({**family.defaults, **{k: v for k, v in section.items() if v is not None}}, where, assumed)
    text = _text_config(fields, top, family, model_type, assumed)
    if family.sliding == "all" and text.sliding_window is not None and fields.section.get("layer_types") is None:
        warnings.append(
            f"every layer is sized with the {text.sliding_window:,}-token sliding_window, as transformers "
            "caches it; engines that ignore a window not listed in layer_types (llama.cpp's llama "
            "architecture, for one) keep the whole context, so there the KV cache is a lower bound"
        )
    vision, vision_note = _vision(document, text, model_type, assumed)
    audio = None
    if model_type == GEMMA4_TEXT and document.get("audio_config") is not None:
        if not isinstance(document["audio_config"], dict):
            raise ConfigImportError("config.json field 'audio_config' must be a JSON object")
        audio = _validated(AudioConfig, _known(document["audio_config"], AudioConfig), "audio_config")
    if vision_note:
        warnings.append(vision_note)
    if family.gemma3n:
        warnings.append(
            "Gemma 3n's MobileNet-V5 vision and USM audio encoders (and their embedders) are not counted: "
            "their size is not derivable from config.json fields; the text decoder is exact"
        )
    config = _validated(ModelConfig, {"text_config": text, "vision_config": vision, "audio_config": audio}, "")
    _check_bounds(config)
    _check_sizable(config)
    if assumed:
        warnings.append("assumed: " + "; ".join(assumed))
    return ImportedModel(
        model_type=model_type, family=family.display, config=config, warnings=tuple(warnings),
        defaults=tuple(defaults), normalized=_normalized(config),
    )


def _model_type(document: Mapping[str, Any], section: Mapping[str, Any], warnings: list[str]) -> str:
    """The decoder's family: text_config's model_type, else the wrapper's. Both must be names
    (never markup or 10 kB of text), and neither may be a family this planner cannot size:
    an unsupported outer model_type is not sized as whatever text_config claims."""
    outer = document.get("model_type")
    inner = section.get("model_type") if section is not document else None
    for where, value in (("model_type", outer), ("text_config.model_type", inner)):
        if value is None:
            continue
        if not isinstance(value, str) or not MODEL_TYPE_PATTERN.match(value):
            raise ConfigImportError(
                f"config.json field '{where}' must be a model type such as 'llama' "
                f"(letters, digits, '_', '-' or '.'; got {quoted(value)})"
            )
        family = WRAPPERS.get(value, value)
        if family in UNSUPPORTED:
            raise ConfigImportError(f"cannot size model_type '{value}': {UNSUPPORTED[family]}")
    if isinstance(outer, str) and outer in WRAPPERS and inner is not None and inner != WRAPPERS[outer]:
        raise ConfigImportError(
            f"config.json's model_type '{outer}' wraps a {WRAPPERS[outer]} decoder, but text_config.model_type "
            f"is '{inner}': the file is not one model's config"
        )
    model_type = inner or outer
    if model_type is None:
        warnings.append("config.json names no model_type")
        return "unknown"
    return WRAPPERS.get(model_type, model_type)


def _text_config(
    fields: _Fields, top: _Fields, family: _Family, model_type: str, assumed: list[str]
) -> TextConfig:
    layers = fields.int("num_hidden_layers")
    hidden = fields.int("hidden_size")
    heads = fields.int("num_attention_heads")
    kv_heads = fields.int("num_key_value_heads", heads, assume="as many as the query heads, no grouping")
    if kv_heads > heads or heads % kv_heads:
        raise ConfigImportError(f"num_key_value_heads ({kv_heads}) must divide num_attention_heads ({heads})")
    # An explicit head_dim beats hidden_size / num_attention_heads (Gemma, Qwen3, Mistral Nemo).
    if fields.has("head_dim"):
        head_dim = fields.int("head_dim")
    elif hidden % heads:
        raise ConfigImportError(
            f"config.json has no 'head_dim' and hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads})"
        )
    else:
        head_dim = hidden // heads
    max_positions = fields.int("max_position_embeddings", 4096, assume="no max_position_embeddings given")

    values: dict[str, Any] = {
        "model_type": model_type,
        "vocab_size": fields.int("vocab_size"),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": max_positions,
        # Multimodal wrappers may state the tie at the top level.
        "tie_word_embeddings": fields.bool(
            "tie_word_embeddings", top.bool("tie_word_embeddings", family.tie_default)
        ),
        "last_layer_full": model_type == GEMMA4_TEXT,
        "qk_norm": family.qk_norm,
        "norms_per_layer": family.norms_per_layer,
        "router_scales": family.moe == "gemma4",
        "moe_extra_norms": 3 if family.moe == "gemma4" else 0,
        "dense_mlp_with_experts": family.moe == "gemma4",
    }
    attention_bias = fields.bool("attention_bias", False)
    values["qkv_bias"] = attention_bias if family.qkv_bias is None else family.qkv_bias
    values["o_proj_bias"] = attention_bias if family.qkv_bias is None else False
    values["mlp_bias"] = fields.bool("mlp_bias", False)

    intermediate = fields.section.get("intermediate_size")
    if isinstance(intermediate, list):
        widths = fields.int_list("intermediate_size", layers, bound="intermediate_size")
        values["intermediate_size"] = max(widths)
        if len(set(widths)) > 1:
            values["layer_intermediate_sizes"] = widths
    else:
        values["intermediate_size"] = fields.int("intermediate_size")

    window = fields.optional_int("sliding_window")
    values["layer_types"] = _resolve_layer_types(fields, family, layers, window)
    if SLIDING in values["layer_types"]:
        values["sliding_window"] = window

    _moe(fields, family, layers, values)
    if family.ple or model_type == GEMMA4_TEXT:
        for key in ("hidden_size_per_layer_input", "vocab_size_per_layer_input", "num_kv_shared_layers"):
            values[key] = fields.int(key, 0)
    if family.gemma3n:
        values["altup_num_inputs"] = fields.int("altup_num_inputs", 4)
        values["laurel_rank"] = fields.int("laurel_rank", 64)
    if model_type == GEMMA4_TEXT:
        values["attention_k_eq_v"] = fields.bool("attention_k_eq_v", False)
        values["use_double_wide_mlp"] = fields.bool("use_double_wide_mlp", False)
        for key in ("global_head_dim", "num_global_key_value_heads"):
            if fields.has(key):
                values[key] = fields.int(key)
        overrides = fields.section.get("per_layer_config")
        if overrides is not None:
            if not isinstance(overrides, dict) or len(overrides) > layers:
                raise ConfigImportError(
                    f"config.json field '{fields._name('per_layer_config')}' must map at most {layers} "
                    "layer numbers to head overrides"
                )
            values["per_layer_config"] = overrides
    if model_type == "gpt_oss":
        values["attention_sinks"] = True
    return _validated(TextConfig, values, fields.where)


def _resolve_layer_types(
    fields: _Fields, family: _Family, layers: int, window: int | None
) -> tuple[AttentionType, ...]:
    """Every layer's attention type: `layer_types` when given, else the family's rule."""
    listed = _layer_types(fields, layers)
    if listed is not None:
        if SLIDING in listed and window is None:
            raise ConfigImportError("config.json lists sliding_attention layers but no 'sliding_window'")
        return listed
    if window is None or family.sliding == "none":
        return (FULL,) * layers
    if family.sliding == "all":
        return (SLIDING,) * layers
    if family.sliding == "qwen":
        # Qwen2Config: sliding only with use_sliding_window, from layer max_window_layers on.
        if not fields.bool("use_sliding_window", False):
            return (FULL,) * layers
        first = fields.int("max_window_layers", layers)
        return tuple(SLIDING if index >= first else FULL for index in range(layers))
    if family.sliding == "alternate":
        return tuple(SLIDING if (index + 1) % 2 else FULL for index in range(layers))
    pattern = fields.int("sliding_window_pattern", family.pattern_default)
    return tuple(SLIDING if (index + 1) % pattern else FULL for index in range(layers))


def _moe(fields: _Fields, family: _Family, layers: int, values: dict[str, Any]) -> None:
    """Expert counts and layout, per family's field names."""
    if family.moe == "gemma4":
        if fields.bool("enable_moe_block", False):
            values["enable_moe_block"] = True
            values["num_experts"] = fields.int("num_experts")
            values["top_k_experts"] = fields.int("top_k_experts")
            values["moe_intermediate_size"] = fields.int("moe_intermediate_size")
        return
    expert_key = next((k for k in ("num_local_experts", "num_experts") if fields.has(k)), None)
    if family.moe == "none":
        if expert_key and fields.int(expert_key, bound="num_experts") > 1:
            raise ConfigImportError(
                f"config.json sets '{expert_key}' but model_type '{values['model_type']}' is not a mixture-of-experts "
                "family this planner knows (Mixtral, Qwen MoE, gpt-oss, Gemma 4)"
            )
        return
    if expert_key is None:
        raise ConfigImportError(f"config.json has no 'num_local_experts' or 'num_experts' for a {family.display} model")
    experts = fields.int(expert_key, bound="num_experts")
    top_k_key = next((k for k in ("num_experts_per_tok", "experts_per_token") if fields.has(k)), "num_experts_per_tok")
    top_k = fields.int(top_k_key, bound="top_k_experts")
    if top_k > experts:
        raise ConfigImportError(f"{top_k_key} ({top_k}) cannot exceed {expert_key} ({experts})")
    values.update(enable_moe_block=True, num_experts=experts, top_k_experts=top_k)
    if family.moe in ("mixtral", "gpt_oss"):
        # Both name the expert width intermediate_size and have no dense MLP.
        values["moe_intermediate_size"] = values["intermediate_size"]
        values["expert_bias"] = values["router_bias"] = family.moe == "gpt_oss"
        return
    values["moe_intermediate_size"] = fields.int("moe_intermediate_size")
    values["shared_expert_intermediate_size"] = fields.int("shared_expert_intermediate_size", 0)
    step = fields.int("decoder_sparse_step", 1)
    dense = set(fields.index_list("mlp_only_layers", layers))
    dense |= {index for index in range(layers) if (index + 1) % step}
    values["mlp_only_layers"] = tuple(sorted(dense))


def _vision(
    document: Mapping[str, Any], text: TextConfig, model_type: str, assumed: list[str]
) -> tuple[VisionConfig | SiglipVisionConfig | None, str | None]:
    section = document.get("vision_config")
    if section is None:
        return None, None
    if not isinstance(section, dict):
        raise ConfigImportError("config.json field 'vision_config' must be a JSON object")
    if model_type == GEMMA4_TEXT:
        return _validated(VisionConfig, _known(section, VisionConfig), "vision_config"), None
    if section.get("model_type") == "siglip_vision_model" and model_type == "gemma3_text":
        fields = _Fields(section, "vision_config", assumed)
        values = {
            "hidden_size": fields.int("hidden_size"),
            "intermediate_size": fields.int("intermediate_size"),
            "num_hidden_layers": fields.int("num_hidden_layers"),
            "num_attention_heads": fields.int("num_attention_heads"),
            "image_size": fields.int("image_size"),
            "patch_size": fields.int("patch_size"),
            "vision_use_head": fields.bool("vision_use_head", False),
            "mm_tokens_per_image": _Fields(document, "", assumed).int("mm_tokens_per_image", 256),
        }
        return _validated(SiglipVisionConfig, values, "vision_config"), None
    kind = section.get("model_type")
    shown = kind[:40] if isinstance(kind, str) else "unnamed"
    return None, f"the {shown} vision encoder is not counted (only Gemma 3's SigLIP and Gemma 4's encoders are); images are not planned"


def _known(section: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The fields of `section` that `model` declares (real configs carry many more)."""
    return {key: value for key, value in section.items() if key in model.model_fields}


def _validated(model: type[Any], values: Mapping[str, Any], where: str) -> Any:
    """`values` validated as JSON in pydantic's strict mode, the one rule set for every path:
    whole numbers are JSON integers (true is not 1, 4096.0 and "4096" are not sizes), switches
    are true or false."""
    try:
        return model.model_validate_json(json.dumps(values, default=_as_json), strict=True)
    except ValidationError as error:
        field, message = validation_problem(error)
        field = ".".join(part for part in (where, field if field != "(entry)" else "") if part)
        raise ConfigImportError(f"config.json field '{field or '(config)'}': {message}") from None


def _as_json(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _check_sizable(config: ModelConfig) -> None:
    """Run the architecture model once: whatever it cannot resolve (a layer layout no engine
    could build) becomes one line for the user here, never a failure on a page later."""
    try:
        total = count_parameters(config).total
        kv_layer_groups(config.text_config)
    except (ValueError, ArithmeticError, TypeError, RecursionError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigImportError(f"config.json describes a model this planner cannot size: {first[:200]}") from None
    if total > MAX_TOTAL_PARAMS:
        raise ConfigImportError(f"config.json describes {total:,} parameters; the planner sizes models up to 10^13")


# --------------------------------------------------------------------------- models for the planner


def custom_model_id(name: str, slot: int) -> str:
    """A catalogue id for an imported model: 'custom<slot>-' and its name as a slug. The slot
    (1, 2, 3) keeps two models with similar names apart and gives each a fixed colour."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
    return f"custom{slot}-{slug[:40]}"


def check_name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise ConfigImportError(
            "a model name is 1 to 48 letters, digits, spaces or . + ( ) / - characters, starting with a letter or digit"
        )
    return name


def model_spec(imported: ImportedModel, name: str, slot: int = 1) -> ModelSpec:
    """A catalogue entry for an imported model, so every planner function takes it."""
    name = check_name(name)
    params = count_parameters(imported.config)
    modalities: tuple[str, ...] = ("text", "image") if imported.config.vision_config else ("text",)
    return ModelSpec(
        id=custom_model_id(name, slot),
        display_name=name,
        hf_repo_id=f"uploaded/{custom_model_id(name, slot)}",
        published_total_params=None,
        published_active_params=None,
        modalities=modalities,  # type: ignore[arg-type]
        license="not stated (uploaded config)",
        source=f"config.json supplied by the user, read as {imported.family}; {params.total:,} parameters counted",
        config=imported.config,
    )


def load_config_file(path: Path) -> ImportedModel:
    """Read and size a config.json from disk (the command line's --config): a regular file of at
    most 1 MiB, read without trusting its reported size (never /dev/zero, never a FIFO)."""
    return import_config(parse_config_json(read_user_file(path, MAX_CONFIG_BYTES, ConfigImportError)))


def read_config(data: bytes | str) -> ImportedModel:
    """Parse and size config.json text in one step (uploads and pastes)."""
    return import_config(parse_config_json(data))


def encode_link(name: str, imported: ImportedModel) -> str:
    """'name~payload': the sizing fields compressed (zlib) and base64url-encoded, no padding.
    Plain data only: decoding parses JSON and validates it like a fresh import (never pickle)."""
    payload = base64.urlsafe_b64encode(zlib.compress(imported.normalized.encode("utf-8"), 9))
    return f"{check_name(name)}{LINK_SEPARATOR}{payload.decode('ascii').rstrip('=')}"


@lru_cache(maxsize=256)
def decode_link(value: str, max_chars: int = MAX_LINK_VALUE_CHARS) -> tuple[str, ImportedModel]:
    """The name and model an encode_link value carries; ConfigImportError if it is not one.
    Links are held to `max_chars`; a value kept in the session only (too long for a link)
    may pass a larger limit. The cheap checks come first and the payload inflates to at most
    64 KiB (1 MiB for a session value), so no value costs more than a few milliseconds."""
    if len(value) > max_chars:
        raise ConfigImportError(f"a model in a link is at most {max_chars:,} characters")
    name, separator, payload = value.partition(LINK_SEPARATOR)
    if not separator or not re.fullmatch(r"[A-Za-z0-9_-]+", payload):
        raise ConfigImportError("not a model from this planner's links (expected name~data)")
    name = check_name(name)
    limit = MAX_LINK_CONFIG_BYTES if len(value) <= MAX_LINK_VALUE_CHARS else MAX_CONFIG_BYTES
    try:
        packed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        inflater = zlib.decompressobj()
        # Bounded: a small link cannot inflate past the limit (no zip bomb).
        data = inflater.decompress(packed, limit + 1)
    except (ValueError, zlib.error):
        raise ConfigImportError("the model's data in the link is damaged (was the link cut short?)") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise ConfigImportError(f"the model's data in the link inflates past {_size_label(limit)}, more than any model needs")
    if not inflater.eof:
        raise ConfigImportError("the model's data in the link is cut short")
    return name, import_normalized(data, limit)


def import_normalized(data: bytes | str, max_bytes: int = MAX_CONFIG_BYTES) -> ImportedModel:
    """Re-read the `normalized` form an ImportedModel carries (a shared link or scenario file),
    with every limit and rule of a fresh import."""
    document = parse_config_json(data, max_bytes)
    _check_layer_lists(document)
    config = _validated(ModelConfig, document, "")
    text = config.text_config
    if text.model_type in UNSUPPORTED:
        raise ConfigImportError(f"cannot size model_type '{text.model_type}': {UNSUPPORTED[text.model_type]}")
    _check_bounds(config)
    _check_sizable(config)
    family = FAMILIES.get(text.model_type)
    display = family.display if family else f"unknown ({text.model_type})"
    return ImportedModel(model_type=text.model_type, family=display, config=config, normalized=_normalized(config))


def _check_layer_lists(document: Mapping[str, Any]) -> None:
    """Before validation walks them: no list in the stored form is longer than the layer count
    (per-layer lists) or a pair, so a link cannot make the validator read 500,000 entries."""
    text = document.get("text_config")
    layers = text.get("num_hidden_layers") if isinstance(text, dict) else None
    low, high = BOUNDS["num_hidden_layers"]
    if isinstance(layers, bool) or not isinstance(layers, int) or not low <= layers <= high:
        raise ConfigImportError(
            f"config field 'text_config.num_hidden_layers' must be a whole number from {low:,} to {high:,} (got {quoted(layers)})"
        )
    longest = max(layers, 2)
    for node, _ in _containers(document):
        if isinstance(node, list) and len(node) > longest:
            raise ConfigImportError(f"config lists {len(node):,} items where a {layers}-layer model has at most {longest}")


def _normalized(config: ModelConfig) -> str:
    return json.dumps(config.model_dump(mode="json", exclude_defaults=True), separators=(",", ":"))


def _check_bounds(config: ModelConfig) -> None:
    """The size bounds of a fresh import, checked on an already structured config."""
    sections = (
        ("text_config", config.text_config),
        ("vision_config", config.vision_config),
        ("audio_config", config.audio_config),
    )
    for where, section in sections:
        if section is None:
            continue
        for key, value in section.model_dump().items():
            # The audio encoder's channel pair is held to its bound item by item.
            values = value if key == "subsampling_conv_channels" else (value,)
            for item in values:
                if key in BOUNDS and isinstance(item, int) and not isinstance(item, bool):
                    low, high = BOUNDS[key]
                    if not low <= item <= high:
                        raise ConfigImportError(
                            f"config field '{where}.{key}' must be a whole number from {low:,} to {high:,} (got {item!r})"
                        )
    text = config.text_config
    widths = text.layer_intermediate_sizes or ()
    if any(width > BOUNDS["intermediate_size"][1] for width in widths):
        raise ConfigImportError("config field 'text_config.intermediate_size' lists a width above 1,048,576")
    for layer, override in text.per_layer_config or ():
        for key in ("head_dim", "num_key_value_heads"):
            value = getattr(override, key)
            low, high = BOUNDS[key]
            if value is not None and not low <= value <= high:
                raise ConfigImportError(
                    f"config field 'text_config.per_layer_config.{layer}.{key}' must be a whole number "
                    f"from {low:,} to {high:,} (got {value!r})"
                )
