"""GGUF files of Gemma 4 tensor by tensor: the converter's tensors, llama-quantize's type rules, exact bytes."""

# Sources (read 2026-09; see docs/gguf.md for line-level citations):
#   llama.cpp src/llama-quant.cpp @007dbbf    type rules (llama_tensor_get_type_impl, fallback table)
#   llama.cpp conversion/gemma.py @061b8c5    Gemma4Model / Gemma4VisionAudioModel (the HF -> GGUF names)
#   llama.cpp conversion/base.py @00bd27a     which tensors the converter keeps in F32
#   llama.cpp src/models/gemma4.cpp @06e514f  the tensors the loader expects (shapes, optional k/v)
#   llama.cpp gguf-py/gguf/constants.py       GGUF tensor names
#   ggml/src/ggml-common.h                    block sizes (bytes per block / values per block)
#   ollama server/quantization.go @v0.20.0, convert/convert_gemma4.go @v0.20.0 (Ollama's own quantizer)

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from core.architecture import FULL, AudioConfig, ModelConfig, TextConfig, VisionConfig, decoder_layers

# --- ggml block layouts: (values per block, bytes per block), from ggml-common.h's static_asserts ---
# e.g. block_q4_K = 2 x fp16 (d, dmin) + 12 bytes of 6-bit scales + 128 bytes of nibbles = 144 / 256.
GGML_BLOCKS: dict[str, tuple[int, int]] = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q4_0": (32, 18),  # fp16 d + 16 bytes of nibbles
    "Q4_1": (32, 20),  # fp16 d, m + 16
    "Q5_0": (32, 22),  # fp16 d + 4 bytes of high bits + 16
    "Q5_1": (32, 24),  # fp16 d, m + 4 + 16
    "Q8_0": (32, 34),  # fp16 d + 32 int8
    "Q2_K": (256, 84),  # 16 scales + 64 quants + 2 x fp16
    "Q3_K": (256, 110),  # 32 hmask + 64 quants + 12 scales + fp16
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),  # Q4_K + 32 bytes of high bits
    "Q6_K": (256, 210),  # 128 low + 64 high + 16 int8 scales + fp16
    "IQ4_NL": (32, 18),  # fp16 d + 16 bytes of 4-bit non-linear indices
    "IQ4_XS": (256, 136),  # fp16 d + u16 scales_h + 4 scales_l + 128
    "MXFP4": (32, 17),  # e8m0 scale byte + 16 bytes of fp4
}
K_QUANT_BLOCK_VALUES = 256

# llama-quantize's default tensor type per file type (llama_ftype_get_default_type).
FTYPE_DEFAULT_TYPE: dict[str, str] = {
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K_M": "Q5_K",
    "Q5_K_S": "Q5_K",
    "Q5_0": "Q5_0",
    "Q5_1": "Q5_1",
    "Q4_K_M": "Q4_K",
    "Q4_K_S": "Q4_K",
    "Q4_0": "Q4_0",
    "Q4_1": "Q4_1",
    "Q3_K_L": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_S": "Q3_K",
    "Q2_K": "Q2_K",
    "IQ4_XS": "IQ4_XS",
    "IQ4_NL": "IQ4_NL",
    "MXFP4_MOE": "MXFP4",
}
FTYPES = tuple(FTYPE_DEFAULT_TYPE)

# tensor_type_fallback: a row length (ne[0]) not divisible by the type's block takes the type on the
# right; if that still does not divide, F16. Gemma 4 26B-A4B meets it on its 704- and 2112-wide rows.
SHAPE_FALLBACK: dict[str, str] = {
    "IQ4_XS": "IQ4_NL",
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}

Component = Literal[
    # ParameterCount's text components (core/params.py): these add up to count_parameters exactly
    "token_embedding", "per_layer_embedding", "per_layer_model_projection", "per_layer_projection",
    "attention", "mlp", "experts", "router", "norms",
    # saved non-parameters: layer_output_scale (text), std_bias/std_scale and out_scale (vision)
    "buffers",
    # k/v projections and k_norm the E checkpoints still carry for KV-shared layers: written to the
    # GGUF (601 tensors for E2B, 720 for E4B in public load logs) although no layer reads them
    "unused_shared_kv",
    # the converter's generated proportional-RoPE factors (global_head_dim / 2 floats)
    "rope_freqs",
    "vision", "audio",
]

# GGUF layout: tensor data is aligned to 32 bytes (GGUF_DEFAULT_ALIGNMENT); so is the data section.
GGUF_ALIGNMENT_BYTES = 32
GGUF_HEADER_BYTES = 24  # magic, version, tensor count, kv count
GGUF_STRING_PREFIX_BYTES = 8  # every string is a u64 length then its bytes
GGUF_TENSOR_INFO_FIXED_BYTES = 4 + 4 + 8  # n_dims, type, offset (plus 8 per dimension and the name)

# --- Tokenizer metadata, the bulk of a text GGUF's header (estimated, not measured) ---
# Gemma 4's GGUF tokenizer is "gemma4": BPE, so it stores tokens, scores, token types AND merges
# (conversion/gemma.py Gemma4Model.set_vocab: SpecialVocab(load_merges=True)).
GEMMA4_VOCAB_TOKENS = 262_144
# Merges of the 262k Gemma tokenizer: 514,906 (curiosity-ai/sentence-transformers-sharp PR #31, a
# Gemma-3-based tokenizer); assumed the same for Gemma 4.
GEMMA4_BPE_MERGES = 514_906
# Assumed mean UTF-8 length of a token (many CJK/Indic pieces are 3 bytes a character); a merge
# "a b" is about one token plus the space. +-2 bytes moves the estimate by about +-1.6 MB.
MEAN_TOKEN_BYTES = 7
CHAT_TEMPLATE_BYTES = 18_700  # ollama model/renderers/testdata/gemma4_31b_chat_template.jinja2
OTHER_KV_BYTES = 4_096  # ~50 architecture and general.* keys, a few dozen bytes each


class GgufTensor(BaseModel):
    """One tensor of a GGUF file: its GGUF name, shape (ne[0] = row length), type and size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    shape: tuple[int, ...] = Field(min_length=1)
    component: Component
    ggml_type: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def params(self) -> int:
        count = 1
        for extent in self.shape:
            count *= extent
        return count

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bytes(self) -> int:
        return tensor_bytes(self.ggml_type, self.shape)


class GgufFile(BaseModel):
    """A whole GGUF file: tensors with their types, bytes by component, and the file's total size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str
    ftype: str
    tensors: tuple[GgufTensor, ...]
    metadata_bytes: int = Field(ge=0, description="header, key/values and tensor infos, padded")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tensor_bytes(self) -> int:
        """What llama.cpp logs as 'file size' (the sum of ggml_nbytes over tensors)."""
        return sum(tensor.bytes for tensor in self.tensors)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def padding_bytes(self) -> int:
        return sum(_pad(tensor.bytes) - tensor.bytes for tensor in self.tensors)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_bytes(self) -> int:
        return self.metadata_bytes + self.tensor_bytes + self.padding_bytes

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bytes_by_component(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for tensor in self.tensors:
            totals[tensor.component] = totals.get(tensor.component, 0) + tensor.bytes
        return totals

    def types_count(self) -> dict[str, int]:
        """Tensors per ggml type, as llama.cpp's loader prints them ('type q4_K: 194 tensors')."""
        counts: dict[str, int] = {}
        for tensor in self.tensors:
            counts[tensor.ggml_type] = counts.get(tensor.ggml_type, 0) + 1
        return counts

    def bits_per_weight(self) -> float:
        """llama.cpp's 'BPW': tensor bytes x 8 / values."""
        return self.tensor_bytes * 8 / sum(tensor.params for tensor in self.tensors)


def tensor_bytes(ggml_type: str, shape: tuple[int, ...]) -> int:
    """ggml_nbytes of a contiguous tensor: rows x ggml_row_size(type, ne[0])."""
    block_values, block_bytes = GGML_BLOCKS[ggml_type]
    row_values = shape[0]
    if row_values % block_values:
        raise ValueError(f"a {ggml_type} row needs a multiple of {block_values} values, not {row_values}")
    rows = 1
    for extent in shape[1:]:
        rows *= extent
    return rows * (row_values // block_values) * block_bytes


def _pad(size_bytes: int) -> int:
    return -(-size_bytes // GGUF_ALIGNMENT_BYTES) * GGUF_ALIGNMENT_BYTES


def use_more_bits(layer: int, layers: int) -> bool:
    """llama-quant.cpp's use_more_bits: the first and last eighth of the layers and every third
    layer between them get the larger type in Q4_K_M / Q5_K_M."""
    return layer < layers // 8 or layer >= 7 * layers // 8 or (layer - layers // 8) % 3 == 2


# --- the converter's tensors -------------------------------------------------------------------

def _t(name: str, shape: tuple[int, ...], component: Component, ggml_type: str = "BF16") -> GgufTensor:
    # Source type as convert_hf_to_gguf.py --outtype bf16 writes it: 1-D tensors, *_norm.weight,
    # ffn_gate_inp and anything not ending in '.weight' in F32 (base.py prepare_tensors).
    if len(shape) == 1:
        ggml_type = "F32"
    return GgufTensor(name=name, shape=shape, component=component, ggml_type=ggml_type)


def _text_tensors(text: TextConfig) -> list[GgufTensor]:
    if text.model_type != "gemma4_text":
        raise ValueError(f"core.gguf models Gemma 4's GGUF layout only (got model_type {text.model_type!r})")
    hidden = text.hidden_size
    vocab = text.vocab_size
    ple = text.hidden_size_per_layer_input
    layers = decoder_layers(text)
    # Global tensors (src/models/gemma4.cpp load_arch_tensors). Tied embeddings: no output.weight.
    tensors = [_t("token_embd.weight", (hidden, vocab), "token_embedding")]
    if not text.tie_word_embeddings:
        raise ValueError("Gemma 4 ties its embeddings; an untied output head is not modelled")
    if ple:
        packed = ple * text.num_hidden_layers
        tensors += [
            _t("per_layer_token_embd.weight", (packed, text.vocab_size_per_layer_input), "per_layer_embedding"),
            _t("per_layer_model_proj.weight", (hidden, packed), "per_layer_model_projection"),
            _t("per_layer_proj_norm.weight", (ple,), "norms"),
        ]
    tensors.append(_t("output_norm.weight", (hidden,), "norms"))
    global_head_dim = max(layer.head_dim for layer in layers if layer.attention == FULL)
    tensors.append(_t("rope_freqs.weight", (global_head_dim // 2,), "rope_freqs"))

    for layer in layers:
        i = layer.index
        q_width = layer.num_query_heads * layer.head_dim
        kv_width = layer.num_kv_heads * layer.head_dim
        # KV-shared layers still carry k/v weights in the checkpoint and the GGUF (loader: TENSOR_NOT_REQUIRED).
        kv_component: Component = "attention" if layer.owns_kv_cache else "unused_shared_kv"
        k_norm_component: Component = "norms" if layer.owns_kv_cache else "unused_shared_kv"
        tensors += [
            _t(f"blk.{i}.attn_norm.weight", (hidden,), "norms"),
            _t(f"blk.{i}.attn_q.weight", (hidden, q_width), "attention"),
            _t(f"blk.{i}.attn_k.weight", (hidden, kv_width), kv_component),
        ]
        if layer.has_v_proj:  # attention_k_eq_v full layers have no v_proj and no attn_v
            tensors.append(_t(f"blk.{i}.attn_v.weight", (hidden, kv_width), kv_component))
        tensors += [
            _t(f"blk.{i}.attn_output.weight", (q_width, hidden), "attention"),
            _t(f"blk.{i}.attn_q_norm.weight", (layer.head_dim,), "norms"),
            _t(f"blk.{i}.attn_k_norm.weight", (layer.head_dim,), k_norm_component),
            _t(f"blk.{i}.post_attention_norm.weight", (hidden,), "norms"),
            _t(f"blk.{i}.layer_output_scale.weight", (1,), "buffers"),
            _t(f"blk.{i}.ffn_norm.weight", (hidden,), "norms"),
            _t(f"blk.{i}.ffn_gate.weight", (hidden, layer.mlp_width), "mlp"),
            _t(f"blk.{i}.ffn_up.weight", (hidden, layer.mlp_width), "mlp"),
            _t(f"blk.{i}.ffn_down.weight", (layer.mlp_width, hidden), "mlp"),
            _t(f"blk.{i}.post_ffw_norm.weight", (hidden,), "norms"),
        ]
        if layer.has_experts:
            experts = text.num_experts or 0
            width = text.moe_intermediate_size or 0
            tensors += [
                # The router projection stays F32 (converter) and is never quantized.
                _t(f"blk.{i}.ffn_gate_inp.weight", (hidden, experts), "router", "F32"),
                _t(f"blk.{i}.ffn_gate_inp.scale", (hidden,), "router"),
                _t(f"blk.{i}.pre_ffw_norm_2.weight", (hidden,), "norms"),
                _t(f"blk.{i}.post_ffw_norm_1.weight", (hidden,), "norms"),
                _t(f"blk.{i}.post_ffw_norm_2.weight", (hidden,), "norms"),
                # experts.gate_up_proj is already fused in the checkpoint: one 3-D tensor
                _t(f"blk.{i}.ffn_gate_up_exps.weight", (hidden, 2 * width, experts), "experts"),
                _t(f"blk.{i}.ffn_down_exps.weight", (width, hidden, experts), "experts"),
                _t(f"blk.{i}.ffn_down_exps.scale", (experts,), "router"),
            ]
        if ple:
            tensors += [
                _t(f"blk.{i}.inp_gate.weight", (hidden, ple), "per_layer_projection"),
                _t(f"blk.{i}.proj.weight", (ple, hidden), "per_layer_projection"),
                _t(f"blk.{i}.post_norm.weight", (hidden,), "norms"),
            ]
    return tensors


def _vision_tensors(vision: VisionConfig, text_hidden: int) -> list[GgufTensor]:
    """Gemma 4's vision tower and projector with clip.cpp names; counts match core.params.vision_params."""
    h, width = vision.hidden_size, vision.intermediate_size
    p = vision.patch_size
    tensors = [
        # patch embedding reshaped to a conv kernel [n_embd, 3, p, p] (ne reversed)
        # Both writers keep it F16: clip's im2col conv kernel needs F16/F32 (Ollama kindOverride)
        _t("v.patch_embd.weight", (p, p, 3, h), "vision", "F16"),
        # converter forces position_embedding_table to F32 (Gemma4VisionAudioModel.tensor_force_quant)
        _t("v.position_embd.weight", (h, vision.position_embedding_size, 2), "vision", "F32"),
    ]
    for i in range(vision.num_hidden_layers):
        tensors += [
            _t(f"v.blk.{i}.attn_q.weight", (h, h), "vision"),
            _t(f"v.blk.{i}.attn_k.weight", (h, h), "vision"),
            _t(f"v.blk.{i}.attn_v.weight", (h, h), "vision"),
            _t(f"v.blk.{i}.attn_out.weight", (h, h), "vision"),
            _t(f"v.blk.{i}.attn_q_norm.weight", (vision.head_dim,), "vision"),
            _t(f"v.blk.{i}.attn_k_norm.weight", (vision.head_dim,), "vision"),
            _t(f"v.blk.{i}.ffn_gate.weight", (h, width), "vision"),
            _t(f"v.blk.{i}.ffn_up.weight", (h, width), "vision"),
            _t(f"v.blk.{i}.ffn_down.weight", (width, h), "vision"),
            _t(f"v.blk.{i}.ln1.weight", (h,), "vision"),
            _t(f"v.blk.{i}.ln2.weight", (h,), "vision"),
            _t(f"v.blk.{i}.attn_post_norm.weight", (h,), "vision"),
            _t(f"v.blk.{i}.ffn_post_norm.weight", (h,), "vision"),
            # layer_scalar of each vision layer (Ollama renames it out_scale): a buffer
            _t(f"v.blk.{i}.out_scale.weight", (1,), "buffers"),
        ]
    if vision.standardize:
        tensors += [_t("v.std_bias", (h,), "buffers"), _t("v.std_scale", (h,), "buffers")]
    tensors.append(_t("mm.input_projection.weight", (h, text_hidden), "vision"))
    return tensors


def _audio_tensors(audio: AudioConfig, text_hidden: int, writer: Writer) -> list[GgufTensor]:
    """The conformer audio encoder and projector; counts match core.params.audio_params. Names
    follow Ollama's convert_gemma4.go. Both writers keep the convolutions F32; llama.cpp's
    converter also keeps the input projection F32 (its HF name contains "_conv")."""
    h = audio.hidden_size
    first, second = audio.subsampling_conv_channels
    tensors = [
        _t("a.conv1d.0.weight", (3, 3, 1, first), "audio", "F32"),
        _t("a.conv1d.0.norm.weight", (first,), "audio"),
        _t("a.conv1d.1.weight", (3, 3, first, second), "audio", "F32"),
        _t("a.conv1d.1.norm.weight", (second,), "audio"),
        # input_proj_linear: llama.cpp's converter matches "_conv" in its HF name and keeps it F32
        _t("a.pre_encode.out.weight", (second * second, h), "audio", "F32" if writer == "llama.cpp" else "BF16"),
    ]
    for i in range(audio.num_hidden_layers):
        for suffix in ("", "_1"):  # two half-step feed-forward blocks
            tensors += [
                _t(f"a.blk.{i}.ffn_up{suffix}.weight", (h, 4 * h), "audio"),
                _t(f"a.blk.{i}.ffn_down{suffix}.weight", (4 * h, h), "audio"),
                _t(f"a.blk.{i}.ffn_norm{suffix}.weight", (h,), "audio"),
                _t(f"a.blk.{i}.ffn_post_norm{suffix}.weight", (h,), "audio"),
            ]
        tensors += [
            _t(f"a.blk.{i}.attn_q.weight", (h, h), "audio"),
            _t(f"a.blk.{i}.attn_k.weight", (h, h), "audio"),
            _t(f"a.blk.{i}.attn_v.weight", (h, h), "audio"),
            _t(f"a.blk.{i}.attn_out.weight", (h, h), "audio"),
            _t(f"a.blk.{i}.linear_pos.weight", (h, h), "audio"),
            _t(f"a.blk.{i}.per_dim_scale.weight", (h // audio.num_attention_heads,), "audio"),
            _t(f"a.blk.{i}.conv_pw1.weight", (h, 2 * h), "audio"),
            _t(f"a.blk.{i}.conv_dw.weight", (audio.conv_kernel_size, h), "audio", "F32"),
            _t(f"a.blk.{i}.conv_pw2.weight", (h, h), "audio"),
            _t(f"a.blk.{i}.conv_norm.weight", (h,), "audio"),
            _t(f"a.blk.{i}.norm_conv.weight", (h,), "audio"),
            _t(f"a.blk.{i}.ln1.weight", (h,), "audio"),
            _t(f"a.blk.{i}.ln2.weight", (h,), "audio"),
            _t(f"a.blk.{i}.layer_pre_norm.weight", (h,), "audio"),
        ]
    tensors += [
        _t("mm.a.fc.weight", (h, audio.output_proj_dims), "audio"),
        _t("mm.a.fc.bias", (audio.output_proj_dims,), "audio"),
        _t("mm.a.input_projection.weight", (audio.output_proj_dims, text_hidden), "audio"),
    ]
    return tensors


@lru_cache(maxsize=32)
def gguf_tensors(config: ModelConfig) -> tuple[GgufTensor, ...]:
    """The text tensors convert_hf_to_gguf.py writes for a Gemma 4 model (--outtype bf16), in
    llama.cpp's load order (by layer, then name: llama-model-loader's weight_name_comparer)."""
    return tuple(sorted(_text_tensors(config.text_config), key=_load_order))


def _load_order(tensor: GgufTensor) -> tuple[int, str]:
    parts = tensor.name.split(".")
    layer = int(parts[1]) if parts[0] == "blk" else -1
    return layer, tensor.name


Writer = Literal["llama.cpp", "ollama"]


def encoder_tensors(config: ModelConfig, writer: Writer = "llama.cpp") -> tuple[GgufTensor, ...]:
    """Vision and audio tensors (empty where the model has no such encoder), 2-D weights in BF16
    as the checkpoint stores them; the F32 ones are those each writer forces."""
    hidden = config.text_config.hidden_size
    tensors: list[GgufTensor] = []
    if isinstance(config.vision_config, VisionConfig):
        tensors += _vision_tensors(config.vision_config, hidden)
    if config.audio_config is not None:
        tensors += _audio_tensors(config.audio_config, hidden, writer)
    return tuple(tensors)


# --- llama-quantize ----------------------------------------------------------------------------

def _quantizable(tensor: GgufTensor) -> bool:
    """tensor_allows_quantization for the names Gemma 4 has: 2-D/3-D '*weight' tensors, except
    norms, the router (ffn_gate_inp) and per_layer_model_proj ('not too big so keep them')."""
    name = tensor.name
    return (
        len(tensor.shape) >= 2
        and name.endswith("weight")
        and "_norm.weight" not in name
        and "ffn_gate_inp.weight" not in name
        and "per_layer_model_proj" not in name
        and ".position_embd" not in name
        and ".patch_embd" not in name
    )


def _category(name: str) -> str:
    """tensor_get_category: the first matching substring wins, in llama-quant.cpp's order."""
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for needle, category in (
        ("attn_v.weight", "attn_v"),
        ("attn_k.weight", "attn_k"),
        ("attn_q.weight", "attn_q"),
        ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"),
        ("ffn_gate", "ffn_gate"),
        ("ffn_down", "ffn_down"),
    ):
        if needle in name:
            return category
    return "other"


def _layer_of(name: str) -> int:
    return int(name.split(".")[1])


def _gqa(text: TextConfig) -> int:
    """hparams.n_gqa() with its default il = 0: layer 0 is a sliding layer in every Gemma 4."""
    first = decoder_layers(text)[0]
    return first.num_query_heads // first.num_kv_heads


def _fallback(ggml_type: str, row_values: int) -> str:
    """tensor_type_fallback, applied after the bumps."""
    if ggml_type not in GGML_BLOCKS or GGML_BLOCKS[ggml_type][0] == 1 or row_values % GGML_BLOCKS[ggml_type][0] == 0:
        return ggml_type
    fallback = SHAPE_FALLBACK.get(ggml_type)
    if fallback is None:
        raise ValueError(f"llama-quantize defines no fallback for {ggml_type} rows of {row_values}")
    return fallback if row_values % GGML_BLOCKS[fallback][0] == 0 else "F16"


def _llama_quantize_type(
    tensor: GgufTensor, ftype: str, default: str, attn_v_index: int, attn_v_count: int, layers: int,
    gqa: int, imatrix: bool,
) -> str:
    """llama_tensor_get_type_impl for the file types in FTYPES (tied embeddings, no --pure, no
    --tensor-type, no --token-embedding-type overrides)."""
    category = _category(tensor.name)
    new = default
    if category == "token_embd":
        # Tied embeddings: token_embd and per_layer_token_embd take the output tensor's rule.
        if ftype == "MXFP4_MOE" or tensor.shape[0] % GGML_BLOCKS[default][0]:
            return "Q8_0"
        return default if default == "Q8_0" else "Q6_K"
    if ftype == "MXFP4_MOE":
        return "MXFP4" if len(tensor.shape) > 2 and tensor.shape[2] > 1 else "Q8_0"
    if category == "attn_v":
        i, n = attn_v_index, attn_v_count
        if ftype == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif ftype == "Q3_K_L":
            new = "Q5_K"
        elif ftype in ("IQ4_NL", "IQ4_XS") and gqa >= 4:
            new = "Q5_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, n):
            new = "Q6_K"
        elif ftype == "Q4_K_S" and i < 4:
            new = "Q5_K"
        elif ftype == "Q2_K":
            new = "Q4_K" if gqa >= 4 else "Q3_K"
    elif category == "ffn_down":
        # MoE (n_expert > 1): the layer is parsed from the name; dense: a running counter, which
        # in load order is the layer too.
        i, n = _layer_of(tensor.name), layers
        if ftype == "Q2_K":
            new = "Q3_K"
        elif ftype == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else "Q4_K"  # non-Falcon: Q4_K for every other layer
        elif ftype == "Q3_K_L":
            new = "Q5_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and use_more_bits(i, n):
            new = "Q6_K"
        elif ftype in ("IQ4_NL", "IQ4_XS") and not imatrix and i < n // 8:
            new = "Q5_K"
        elif ftype == "Q4_K_S" and i < n // 8:
            new = "Q5_K"
        elif ftype in ("Q4_0", "Q5_0") and imatrix and i < n // 8:
            new = "Q4_1" if ftype == "Q4_0" else "Q5_1"
    elif category == "attn_output":
        if ftype == "Q2_K":
            new = "Q3_K"
        elif ftype == "Q3_K_M":
            new = "Q4_K"
        elif ftype == "Q3_K_L":
            new = "Q5_K"
    return new


def _normalise_ftype(ftype: str) -> str:
    key = ftype.strip().upper()
    if key not in FTYPE_DEFAULT_TYPE:
        raise ValueError(f"unknown GGUF file type {ftype!r}; choose one of: {', '.join(FTYPES)}")
    return key


TensorTypes = tuple[tuple[str, str], ...]


def _requantize(
    tensors: tuple[GgufTensor, ...], ftype: str, text: TextConfig, imatrix: bool,
    *, quantizable: Callable[[GgufTensor], bool] = _quantizable, attn_v_count: int | None = None, tensor_types: TensorTypes = (),
) -> tuple[GgufTensor, ...]:
    default = FTYPE_DEFAULT_TYPE[ftype]
    is_quantized_default = GGML_BLOCKS[default][0] > 1
    attn_vs = [t for t in tensors if quantizable(t) and _category(t.name) == "attn_v"]
    n_attn_v = len(attn_vs) if attn_v_count is None else attn_v_count
    gqa = _gqa(text)
    out: list[GgufTensor] = []
    attn_v_index = 0
    for tensor in tensors:
        if not quantizable(tensor):
            out.append(tensor)
            continue
        manual = next((t.upper() for pattern, t in tensor_types if re.search(pattern, tensor.name)), None)
        if not is_quantized_default:
            new = default  # F16 / BF16 / F32 files convert every quantizable tensor, no bumps
        elif manual is not None:
            new = _fallback(manual, tensor.shape[0])  # --tensor-type skips the mixture rules
        else:
            new = _llama_quantize_type(
                tensor, ftype, default, attn_v_index, n_attn_v, text.num_hidden_layers, gqa, imatrix
            )
            new = _fallback(new, tensor.shape[0])
            if _category(tensor.name) == "attn_v":
                attn_v_index += 1  # qs.i_attention_wv counts inside the mixture rules only
        out.append(tensor.model_copy(update={"ggml_type": new}))
    return tuple(out)


@lru_cache(maxsize=128)
def quantize(
    config: ModelConfig, ftype: str, imatrix: bool = False, tensor_types: TensorTypes = ()
) -> GgufFile:
    """The text GGUF llama-quantize writes from the converter's BF16 file, by its default rules
    (what ggml-org, bartowski and lmstudio-community upload as plain Q4_K_M etc.). `imatrix` only
    changes IQ4_NL/IQ4_XS (no Q5_K bump of early ffn_down) and Q4_0/Q5_0 (Q4_1/Q5_1 early ffn_down).
    `tensor_types` are llama-quantize's --tensor-type pairs (regex, type), first match wins, e.g.
    (("per_layer_token_embd", "Q5_K"),) for unsloth's E4B Q4_K_M."""
    key = _normalise_ftype(ftype)
    for _, ggml_type in tensor_types:
        if ggml_type.upper() not in GGML_BLOCKS:
            raise ValueError(f"unknown ggml type {ggml_type!r} in tensor_types")
    tensors = _requantize(gguf_tensors(config), key, config.text_config, imatrix, tensor_types=tensor_types)
    overridden = f" with {', '.join(f'{p}={t}' for p, t in tensor_types)}" if tensor_types else ""
    return GgufFile(
        description=f"llama.cpp text GGUF, {key}{overridden}",
        ftype=key,
        tensors=tensors,
        metadata_bytes=text_metadata_bytes(tensors),
    )


# --- metadata ----------------------------------------------------------------------------------

def _tensor_infos_bytes(tensors: tuple[GgufTensor, ...]) -> int:
    return sum(
        GGUF_STRING_PREFIX_BYTES + len(t.name) + GGUF_TENSOR_INFO_FIXED_BYTES + 8 * len(t.shape) for t in tensors
    )


def tokenizer_metadata_bytes(merges: int = GEMMA4_BPE_MERGES) -> int:
    """tokenizer.ggml.tokens (strings), .scores (f32), .token_type (i32) and .merges (strings)."""
    tokens = GEMMA4_VOCAB_TOKENS * (GGUF_STRING_PREFIX_BYTES + MEAN_TOKEN_BYTES)
    scores_and_types = GEMMA4_VOCAB_TOKENS * (4 + 4)
    merge_strings = merges * (GGUF_STRING_PREFIX_BYTES + MEAN_TOKEN_BYTES + 1)
    return tokens + scores_and_types + merge_strings


def text_metadata_bytes(tensors: tuple[GgufTensor, ...], merges: int = GEMMA4_BPE_MERGES) -> int:
    """Estimated header of a text GGUF: the tokenizer dominates (~14 MB); tensor infos are exact."""
    size = (
        GGUF_HEADER_BYTES + tokenizer_metadata_bytes(merges) + CHAT_TEMPLATE_BYTES + OTHER_KV_BYTES
        + _tensor_infos_bytes(tensors)
    )
    return _pad(size)


def _encoder_metadata_bytes(tensors: tuple[GgufTensor, ...]) -> int:
    # clip.* keys (image mean/std, sizes, eps): a couple of KB besides the tensor infos.
    return _pad(GGUF_HEADER_BYTES + OTHER_KV_BYTES + _tensor_infos_bytes(tensors))


# --- mmproj ------------------------------------------------------------------------------------

MMPROJ_FTYPES = ("F16", "BF16", "Q8_0", "F32")


@lru_cache(maxsize=32)
def mmproj_file(config: ModelConfig, ftype: str = "F16") -> GgufFile | None:
    """The vision (and audio) encoder GGUF that convert_hf_to_gguf.py --mmproj writes, None for a
    model without Gemma 4 encoders. 2-D weights take the out-type; 1-D tensors, the position table
    and the audio convolutions stay F32 (Gemma4VisionAudioModel.tensor_force_quant). For Q8_0, a row
    not divisible by 32 (the large tower's 4304-wide ffn_down) falls back to F16 (gguf-py QuantError)."""
    key = ftype.strip().upper()
    if key not in MMPROJ_FTYPES:
        raise ValueError(f"mmproj files come as {', '.join(MMPROJ_FTYPES)}, not {ftype!r}")
    tensors = encoder_tensors(config, "llama.cpp")
    if not tensors:
        return None
    out = []
    for tensor in tensors:
        if len(tensor.shape) == 1 or tensor.ggml_type in ("F32", "F16"):
            out.append(tensor)
            continue
        new = key
        if key == "Q8_0" and tensor.shape[0] % GGML_BLOCKS["Q8_0"][0]:
            new = "F16"
        out.append(tensor.model_copy(update={"ggml_type": new}))
    result = tuple(out)
    return GgufFile(
        description=f"llama.cpp mmproj (vision{' + audio' if config.audio_config else ''}), {key}",
        ftype=key,
        tensors=result,
        metadata_bytes=_encoder_metadata_bytes(result),
    )


# --- Ollama ------------------------------------------------------------------------------------

def _ollama_quantizable(tensor: GgufTensor) -> bool:
    """Ollama's own quantizer (server/quantization.go newType @v0.20.0, used for the gemma4 library
    tags): encoders ('v.', 'a.', 'mm.') and per_layer_token_embd are never quantized, but unlike
    llama-quantize per_layer_model_proj is."""
    name = tensor.name
    return (
        len(tensor.shape) >= 2
        and name.endswith("weight")
        and not name.startswith(("v.", "a.", "mm."))
        and "_norm.weight" not in name
        and "ffn_gate_inp.weight" not in name
        and "per_layer_token_embd.weight" not in name
    )


@lru_cache(maxsize=32)
def ollama_blob(config: ModelConfig, tag_ftype: str = "Q4_K_M") -> GgufFile:
    """The single GGUF blob of an Ollama library tag (gemma4:e2b/e4b/26b/31b are Q4_K_M): text,
    vision and audio in one file; PLE table kept BF16; encoders unquantized (2-byte weights, F32
    convolutions and position table). Ollama's quantizer counts every '*attn_v.weight' in the
    file, encoders included, as n_attn_v for use_more_bits (quantizeState.nAttnV), while only the
    text ones are quantized: this reproduces the e4b blob's 41 q6_K tensors exactly."""
    key = _normalise_ftype(tag_ftype)
    text = config.text_config
    # Ollama's converter keeps encoder 2-D weights in their checkpoint dtype (BF16, or F16: 2 bytes
    # either way; the e4b blob holds 134 bf16 + 116 f16 tensors).
    encoders = encoder_tensors(config, "ollama")
    text_tensors = gguf_tensors(config)
    every_attn_v = sum(1 for t in text_tensors + encoders if t.name.endswith("attn_v.weight"))
    quantized = _requantize(
        text_tensors, key, text, imatrix=False, quantizable=_ollama_quantizable, attn_v_count=every_attn_v
    )
    tensors = quantized + encoders
    # Ollama writes tokenizer.ggml.model = "llama" (SentencePiece scores, no merges).
    metadata = _pad(
        GGUF_HEADER_BYTES + tokenizer_metadata_bytes(merges=0) + CHAT_TEMPLATE_BYTES + OTHER_KV_BYTES
        + _tensor_infos_bytes(tensors)
    )
    return GgufFile(description=f"Ollama library blob, {key}", ftype=key, tensors=tensors, metadata_bytes=metadata)
