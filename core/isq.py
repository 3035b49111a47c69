"""mistral.rs in-situ quantization (ISQ): the type a `--quant N` picks, the sensitive-tensor type, bits per weight."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from core.architecture import decoder_layers
from core.params import count_parameters, layer_parameters

if TYPE_CHECKING:
    from core.architecture import ModelConfig

# Every rule here is read from mistral.rs at 9e922623f24b32d41f3892b74f0eed18707f4e6c (v0.9.2-7);
# docs/research/mistralrs-vllm-metal.md §1 quotes the lines.


class IsqBackend(str, Enum):
    """The device mistral.rs resolves a shorthand against (`Device::is_metal()` or not)."""

    METAL = "metal"
    CUDA = "cuda"
    CPU = "cpu"


class IsqType(str, Enum):
    """ISQ types, spelled as `--isq` accepts them (`parse_isq_value`, mistralrs-core/src/pipeline/isq.rs)."""

    Q4_0 = "q4_0"
    Q4_1 = "q4_1"
    Q5_0 = "q5_0"
    Q5_1 = "q5_1"
    Q8_0 = "q8_0"
    Q8_1 = "q8_1"
    Q2K = "q2k"
    Q3K = "q3k"
    Q4K = "q4k"
    Q5K = "q5k"
    Q6K = "q6k"
    Q8K = "q8k"
    AFQ2 = "afq2"
    AFQ3 = "afq3"
    AFQ4 = "afq4"
    AFQ6 = "afq6"
    AFQ8 = "afq8"
    HQQ4 = "hqq4"
    HQQ8 = "hqq8"
    FP8 = "fp8"
    F8Q8 = "f8q8"
    MXFP4 = "mxfp4"


class BlockLayout(BaseModel):
    """How many weights one stored block holds and its bytes, scales and zeros included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    block_weights: int = Field(gt=0)
    block_bytes: float = Field(gt=0)

    @property
    def bits_per_weight(self) -> float:
        return self.block_bytes * 8 / self.block_weights


SHORTHAND_BITS = (2, 3, 4, 5, 6, 8)

# IsqBits::resolve (mistralrs-quant/src/lib.rs): AFQ on Metal except 5 bits, which has no AFQ.
_SHORTHAND_METAL = {
    2: IsqType.AFQ2,
    3: IsqType.AFQ3,
    4: IsqType.AFQ4,
    5: IsqType.Q5K,
    6: IsqType.AFQ6,
    8: IsqType.AFQ8,
}
_SHORTHAND_OTHER = {
    2: IsqType.Q2K,
    3: IsqType.Q3K,
    4: IsqType.Q4K,
    5: IsqType.Q5K,
    6: IsqType.Q6K,
    8: IsqType.Q8_0,
}

# IsqType::promote_for_sensitive_tensor (mistralrs-quant/src/lib.rs); types not listed
# (HQQ, FP8, F8Q8, MXFP4) keep their own type.
_SENSITIVE = {
    IsqType.AFQ2: IsqType.AFQ6,
    IsqType.AFQ3: IsqType.AFQ6,
    IsqType.AFQ4: IsqType.AFQ6,
    IsqType.AFQ6: IsqType.AFQ8,
    IsqType.AFQ8: IsqType.AFQ8,
    IsqType.Q2K: IsqType.Q6K,
    IsqType.Q3K: IsqType.Q6K,
    IsqType.Q4K: IsqType.Q6K,
    IsqType.Q4_0: IsqType.Q6K,
    IsqType.Q4_1: IsqType.Q6K,
    IsqType.Q5K: IsqType.Q8_0,
    IsqType.Q6K: IsqType.Q8_0,
    IsqType.Q8K: IsqType.Q8_0,
    IsqType.Q5_0: IsqType.Q8_0,
    IsqType.Q5_1: IsqType.Q8_0,
    IsqType.Q8_0: IsqType.Q8_0,
    IsqType.Q8_1: IsqType.Q8_0,
}

# The checkpoint tensors Gemma4Loader::promoted_isq_predicates names (multimodal_loaders.rs).
# The output head is tied on every Gemma 4 variant: it reuses embed_tokens, no second copy.
# Vision/audio towers are not in the ISQ predicates and stay at the load dtype.
GEMMA4_SENSITIVE_TENSORS = (
    "model.language_model.embed_tokens.weight",
    "model.language_model.embed_tokens_per_layer.weight",
    "model.language_model.lm_head.weight",
)

# ISQ quantizes AFQ with AfqGroupSize::default() = Med = 64 (unquantized/mod.rs); the
# device-map size estimate uses Low = 32, so it over-counts AFQ a little on purpose.
AFQ_ISQ_GROUP_SIZE = 64
# AFQ scales and biases take the weight's dtype (afq/ops.rs): bf16 for Gemma 4 on GPU/Metal.
AFQ_DEFAULT_SCALE_BYTES = 2
# hqq/mod.rs ISQ_HQQ_GROUP_SIZE, with an f32 scale and an f32 zero per group.
HQQ_GROUP_SIZE = 64
HQQ_SCALE_BYTES = 4

# ggml block layouts (candle k_quants, the same structs as ggml-common.h). Super-blocks of 256 for
# the K-quants, blocks of 32 for the legacy types; f16 scales unless noted.
_GGML_LAYOUTS = {
    IsqType.Q4_0: BlockLayout(block_weights=32, block_bytes=2 + 16),
    IsqType.Q4_1: BlockLayout(block_weights=32, block_bytes=2 + 2 + 16),
    IsqType.Q5_0: BlockLayout(block_weights=32, block_bytes=2 + 4 + 16),
    IsqType.Q5_1: BlockLayout(block_weights=32, block_bytes=2 + 2 + 4 + 16),
    IsqType.Q8_0: BlockLayout(block_weights=32, block_bytes=2 + 32),
    IsqType.Q8_1: BlockLayout(block_weights=32, block_bytes=2 + 2 + 32),
    # scales[16] + qs[64] + d + dmin
    IsqType.Q2K: BlockLayout(block_weights=256, block_bytes=16 + 64 + 2 + 2),
    # hmask[32] + qs[64] + scales[12] + d
    IsqType.Q3K: BlockLayout(block_weights=256, block_bytes=32 + 64 + 12 + 2),
    # d + dmin + scales[12] + qs[128]
    IsqType.Q4K: BlockLayout(block_weights=256, block_bytes=2 + 2 + 12 + 128),
    # d + dmin + scales[12] + qh[32] + qs[128]
    IsqType.Q5K: BlockLayout(block_weights=256, block_bytes=2 + 2 + 12 + 32 + 128),
    # ql[128] + qh[64] + scales[16] + d
    IsqType.Q6K: BlockLayout(block_weights=256, block_bytes=128 + 64 + 16 + 2),
    # f32 d + qs[256] + bsums[16] as i16
    IsqType.Q8K: BlockLayout(block_weights=256, block_bytes=4 + 256 + 32),
    # mxfp4/mod.rs: 32 e2m1 nibbles + one u8 shared exponent
    IsqType.MXFP4: BlockLayout(block_weights=32, block_bytes=16 + 1),
    # f8q8/mod.rs BlockF8Q8: one e4m3 scale + 32 int8 (asserted 33 bytes)
    IsqType.F8Q8: BlockLayout(block_weights=32, block_bytes=1 + 32),
}

_AFQ_BITS = {IsqType.AFQ2: 2, IsqType.AFQ3: 3, IsqType.AFQ4: 4, IsqType.AFQ6: 6, IsqType.AFQ8: 8}
_HQQ_BITS = {IsqType.HQQ4: 4, IsqType.HQQ8: 8}


def shorthand_isq_type(bits: int, backend: IsqBackend) -> IsqType:
    """The type `--quant N` (falling back to ISQ) or `--isq N` resolves to on this backend."""
    if bits not in SHORTHAND_BITS:
        raise ValueError(
            f"mistral.rs accepts --quant/--isq levels {', '.join(map(str, SHORTHAND_BITS))}; got {bits}"
        )
    table = _SHORTHAND_METAL if backend is IsqBackend.METAL else _SHORTHAND_OTHER
    return table[bits]


def parse_isq(value: str, backend: IsqBackend) -> IsqType:
    """A `--isq` value (level or type name, any case) as mistral.rs parses it for this backend."""
    text = value.strip().lower()
    if text.isdigit():
        return shorthand_isq_type(int(text), backend)
    try:
        isq_type = IsqType(text)
    except ValueError:
        known = ", ".join(t.value for t in IsqType)
        raise ValueError(f"unknown mistral.rs ISQ type {value!r}; choose a level or one of {known}") from None
    if isq_type is IsqType.F8Q8 and backend is not IsqBackend.CPU:
        raise ValueError("f8q8 is CPU-only in mistral.rs; choose fp8 or another accelerator ISQ type")
    # parse_isq_value's CUDA allow-list leaves these two out
    if isq_type in (IsqType.Q8_1, IsqType.Q8K) and backend is IsqBackend.CUDA:
        raise ValueError(f"mistral.rs on CUDA does not accept {isq_type.value}; choose q8_0")
    return isq_type


# get_fallback (mistralrs-quant/src/utils/isq.rs): a ggml type whose block does not divide a
# tensor's last (input) dimension is retried with a legacy 32-weight type.
_GGML_FALLBACK = {
    IsqType.Q2K: IsqType.Q4_0,
    IsqType.Q3K: IsqType.Q4_0,
    IsqType.Q4K: IsqType.Q4_1,
    IsqType.Q5K: IsqType.Q5_0,
    IsqType.Q6K: IsqType.Q5_1,
    IsqType.Q8K: IsqType.Q8_1,
}


def stored_isq_type(isq_type: IsqType, input_dim: int) -> IsqType | None:
    """The type a tensor with this last dimension is really stored in; None: left unquantized.

    ggml types fall back once per step (Q4K -> Q4_1 when 256 does not divide the row, then skip);
    a skipped ggml tensor becomes an f32 QTensor, an AFQ one keeps the load dtype. Gemma 4
    26B-A4B's down projections (rows of 2112 and 704) take the fallback.
    """
    if input_dim <= 0:
        raise ValueError(f"a tensor row cannot hold {input_dim} weights")
    if isq_type in _GGML_LAYOUTS and isq_type not in (IsqType.MXFP4, IsqType.F8Q8):
        current: IsqType | None = isq_type
        while current is not None and input_dim % _GGML_LAYOUTS[current].block_weights:
            current = _GGML_FALLBACK.get(current)
        return current
    if isq_type in _AFQ_BITS:
        return isq_type if input_dim % AFQ_ISQ_GROUP_SIZE == 0 else None
    # HQQ, FP8, F8Q8, MXFP4: divisibility rules not read here
    return isq_type


def sensitive_isq_type(isq_type: IsqType) -> IsqType:
    """The type token embeddings, the PLE table and an untied output head get (one tier up)."""
    return _SENSITIVE.get(isq_type, isq_type)


def block_layout(isq_type: IsqType, *, scale_bytes: int = AFQ_DEFAULT_SCALE_BYTES) -> BlockLayout:
    """One stored block of this type; `scale_bytes` is the AFQ scale/bias dtype (2 for bf16, 4 for f32)."""
    if isq_type in _GGML_LAYOUTS:
        return _GGML_LAYOUTS[isq_type]
    if isq_type in _AFQ_BITS:
        # packed b-bit values plus one scale and one bias per group of 64
        packed = AFQ_ISQ_GROUP_SIZE * _AFQ_BITS[isq_type] / 8
        return BlockLayout(block_weights=AFQ_ISQ_GROUP_SIZE, block_bytes=packed + 2 * scale_bytes)
    if isq_type in _HQQ_BITS:
        packed = HQQ_GROUP_SIZE * _HQQ_BITS[isq_type] / 8
        return BlockLayout(block_weights=HQQ_GROUP_SIZE, block_bytes=packed + 2 * HQQ_SCALE_BYTES)
    # FP8 ISQ is an e4m3 tensor with one per-tensor scale: 1 byte per weight.
    return BlockLayout(block_weights=1, block_bytes=1)


def bits_per_weight(isq_type: IsqType, *, scale_bytes: int = AFQ_DEFAULT_SCALE_BYTES) -> float:
    """Stored bits per weight of a tensor quantized to this type, scales and zeros included."""
    return block_layout(isq_type, scale_bytes=scale_bytes).bits_per_weight


def quantized_bytes(weights: int, isq_type: IsqType, *, scale_bytes: int = AFQ_DEFAULT_SCALE_BYTES) -> int:
    """Bytes of a tensor of `weights` elements after ISQ (whole blocks; rows divide evenly on Gemma 4)."""
    if weights < 0:
        raise ValueError(f"a tensor cannot hold {weights} weights")
    layout = block_layout(isq_type, scale_bytes=scale_bytes)
    blocks = -(-weights // layout.block_weights)
    return round(blocks * layout.block_bytes)


def _stored_bytes(weights: int, input_dim: int, isq_type: IsqType, load_dtype_bytes: int) -> int:
    """Bytes of `weights` weights in rows of `input_dim` after ISQ at `isq_type`: the fallback
    type where the block does not divide the row, f32 for a skipped ggml tensor (an f32
    QTensor), the load dtype for a skipped AFQ one."""
    if not weights:
        return 0
    stored = stored_isq_type(isq_type, input_dim)
    if stored is None:
        return weights * (4 if isq_type in _GGML_LAYOUTS else load_dtype_bytes)
    return quantized_bytes(weights, stored, scale_bytes=load_dtype_bytes)


def gemma4_isq_component_bytes(
    config: ModelConfig, isq_type: IsqType | None, load_dtype_bytes: int
) -> dict[str, int]:
    """Resident bytes of each parameter component (core.params' names) of a Gemma 4 checkpoint
    that mistral.rs loads with `--isq isq_type` (None: no ISQ), tensor by tensor.

    Gemma4Loader's predicates (multimodal_loaders.rs l.8098-8153): the token embedding (tied
    head included) and the PLE table take the sensitive type; q/k/v/o, MLP, expert, model-level
    and per-layer PLE projections the model type, each checked against its own row length
    (26B-A4B's down projections, rows of 2112 and 704, fall back); norms, the router and the
    vision/audio towers are never ISQ'd and keep the load dtype (bf16, f32 on the CPU).
    """
    params = count_parameters(config)
    text = config.text_config
    hidden = text.hidden_size
    dense = {
        name: getattr(params, name) * load_dtype_bytes
        for name in ("router", "norms", "buffers", "expert_biases", "vision", "audio")
    }
    if isq_type is None:
        quantisable = (
            "token_embedding", "per_layer_embedding", "per_layer_model_projection", "per_layer_projection",
            "attention", "mlp", "experts",
        )
        return dense | {name: getattr(params, name) * load_dtype_bytes for name in quantisable}

    sensitive = sensitive_isq_type(isq_type)
    ple_width = text.hidden_size_per_layer_input
    attention = mlp = experts = 0
    for layer, counts in zip(decoder_layers(text), layer_parameters(text)):
        # o_proj reads the heads' output (rows of heads x head_dim); q/k/v read the hidden state.
        o_weights = layer.num_query_heads * layer.head_dim * hidden
        attention += _stored_bytes(o_weights, layer.num_query_heads * layer.head_dim, isq_type, load_dtype_bytes)
        attention += _stored_bytes(counts["attention"] - o_weights, hidden, isq_type, load_dtype_bytes)
        # gate and up read the hidden state, down the MLP's width.
        width = layer.mlp_width
        mlp += _stored_bytes(2 * hidden * width, hidden, isq_type, load_dtype_bytes)
        mlp += _stored_bytes(hidden * width, width, isq_type, load_dtype_bytes)
        if layer.has_experts:
            expert_width = text.moe_intermediate_size or 0
            count = text.num_experts or 0
            experts += _stored_bytes(count * 2 * hidden * expert_width, hidden, isq_type, load_dtype_bytes)
            experts += _stored_bytes(count * hidden * expert_width, expert_width, isq_type, load_dtype_bytes)
    per_layer_projection = 0
    if ple_width:
        # Per layer: the input gate reads the hidden state, the projection the 256-wide input.
        per_layer_projection = text.num_hidden_layers * (
            _stored_bytes(hidden * ple_width, hidden, isq_type, load_dtype_bytes)
            + _stored_bytes(hidden * ple_width, ple_width, isq_type, load_dtype_bytes)
        )
    return dense | {
        "token_embedding": _stored_bytes(params.token_embedding, hidden, sensitive, load_dtype_bytes),
        "per_layer_embedding": _stored_bytes(
            params.per_layer_embedding, text.num_hidden_layers * ple_width, sensitive, load_dtype_bytes
        ),
        "per_layer_model_projection": _stored_bytes(
            params.per_layer_model_projection, hidden, isq_type, load_dtype_bytes
        ),
        "per_layer_projection": per_layer_projection,
        "attention": attention,
        "mlp": mlp,
        "experts": experts,
    }
