"""mistral.rs ISQ rules against its documented tables and ggml block layouts worked by hand."""

from __future__ import annotations

import pytest

from core.isq import (
    GEMMA4_SENSITIVE_TENSORS,
    SHORTHAND_BITS,
    IsqBackend,
    IsqType,
    bits_per_weight,
    parse_isq,
    quantized_bytes,
    sensitive_isq_type,
    shorthand_isq_type,
    stored_isq_type,
)

# docs/src/content/docs/reference/quantization-types.md "Numeric shorthands" (mistral.rs @9e92262):
# shorthand -> (Metal, CUDA / CPU)
DOCUMENTED_SHORTHANDS = {
    2: ("afq2", "q2k"),
    3: ("afq3", "q3k"),
    4: ("afq4", "q4k"),
    5: ("q5k", "q5k"),
    6: ("afq6", "q6k"),
    8: ("afq8", "q8_0"),
}

# Same page, "Sensitive tensor precision": default type -> embedding and output-head type.
DOCUMENTED_SENSITIVE = {
    "afq2": "afq6",
    "afq3": "afq6",
    "afq4": "afq6",
    "afq6": "afq8",
    "afq8": "afq8",
    "q2k": "q6k",
    "q3k": "q6k",
    "q4k": "q6k",
    "q4_0": "q6k",
    "q4_1": "q6k",
    "q5k": "q8_0",
    "q6k": "q8_0",
    "q8k": "q8_0",
    "q5_0": "q8_0",
    "q5_1": "q8_0",
    "q8_0": "q8_0",
    "q8_1": "q8_0",
}

# Bytes per block / weights per block, from the ggml structs written out by hand:
# Q4_K = d(2) + dmin(2) + scales(12) + qs(128) = 144 B / 256; Q6_K = ql(128) + qh(64) + scales(16)
# + d(2) = 210 B / 256; Q8_0 = d(2) + 32 = 34 B / 32; AFQ b-bit = 64*b/8 B + bf16 scale + bf16 bias
# per group of 64, i.e. b + 32/64 bits.
HAND_BITS = {
    "q4k": 144 * 8 / 256,  # 4.5
    "q6k": 210 * 8 / 256,  # 6.5625
    "q8_0": 34 * 8 / 32,  # 8.5
    "q4_0": 18 * 8 / 32,  # 4.5
    "q4_1": 20 * 8 / 32,  # 5.0
    "q5_0": 22 * 8 / 32,  # 5.5
    "q5_1": 24 * 8 / 32,  # 6.0
    "q2k": 84 * 8 / 256,  # 2.625
    "q3k": 110 * 8 / 256,  # 3.4375
    "q5k": 176 * 8 / 256,  # 5.5
    "q8k": 292 * 8 / 256,  # 9.125
    "afq2": 2 + 32 / 64,
    "afq3": 3 + 32 / 64,
    "afq4": 4 + 32 / 64,
    "afq6": 6 + 32 / 64,
    "afq8": 8 + 32 / 64,
    "mxfp4": 17 * 8 / 32,  # 4.25
    "hqq4": 4 + 64 / 64,  # f32 scale + f32 zero per 64
    "hqq8": 8 + 64 / 64,
    "fp8": 8.0,
}


@pytest.mark.parametrize("bits", sorted(DOCUMENTED_SHORTHANDS))
def test_shorthand_follows_the_documented_table(bits: int) -> None:
    metal, other = DOCUMENTED_SHORTHANDS[bits]
    assert shorthand_isq_type(bits, IsqBackend.METAL).value == metal
    assert shorthand_isq_type(bits, IsqBackend.CUDA).value == other
    assert shorthand_isq_type(bits, IsqBackend.CPU).value == other


def test_documented_levels_are_exactly_the_accepted_ones() -> None:
    assert tuple(sorted(DOCUMENTED_SHORTHANDS)) == SHORTHAND_BITS


@pytest.mark.parametrize("bits", [0, 1, 7, 16])
def test_undocumented_levels_are_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="levels 2, 3, 4, 5, 6, 8"):
        shorthand_isq_type(bits, IsqBackend.CUDA)


@pytest.mark.parametrize(
    ("text", "backend", "expected"),
    [
        ("4", IsqBackend.METAL, "afq4"),
        ("4", IsqBackend.CUDA, "q4k"),
        (" 8 ", IsqBackend.CPU, "q8_0"),
        ("Q4K", IsqBackend.CUDA, "q4k"),
        ("AFQ6", IsqBackend.CUDA, "afq6"),
        ("q8_0", IsqBackend.METAL, "q8_0"),
        ("FP8", IsqBackend.CUDA, "fp8"),
        ("f8q8", IsqBackend.CPU, "f8q8"),
    ],
)
def test_parse_accepts_levels_and_names_in_any_case(text: str, backend: IsqBackend, expected: str) -> None:
    assert parse_isq(text, backend).value == expected


def test_f8q8_is_cpu_only() -> None:
    with pytest.raises(ValueError, match="CPU-only"):
        parse_isq("f8q8", IsqBackend.CUDA)
    with pytest.raises(ValueError, match="CPU-only"):
        parse_isq("F8Q8", IsqBackend.METAL)


@pytest.mark.parametrize("name", ["q8_1", "Q8K"])
def test_cuda_refuses_the_types_outside_its_allow_list(name: str) -> None:
    # the CUDA error message of parse_isq_value lists every type but q8_1 and q8k
    with pytest.raises(ValueError, match="does not accept"):
        parse_isq(name, IsqBackend.CUDA)
    assert parse_isq(name, IsqBackend.CPU).value == name.lower()


def test_unknown_type_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown mistral.rs ISQ type 'q4_k_m'"):
        parse_isq("q4_k_m", IsqBackend.CUDA)


@pytest.mark.parametrize(("default", "promoted"), sorted(DOCUMENTED_SENSITIVE.items()))
def test_sensitive_tensors_go_one_tier_up_as_documented(default: str, promoted: str) -> None:
    assert sensitive_isq_type(IsqType(default)).value == promoted


@pytest.mark.parametrize("isq_type", ["hqq4", "hqq8", "fp8", "f8q8", "mxfp4"])
def test_types_outside_the_table_keep_their_own_type(isq_type: str) -> None:
    assert sensitive_isq_type(IsqType(isq_type)).value == isq_type


@pytest.mark.parametrize(("isq_type", "expected_bits"), sorted(HAND_BITS.items()))
def test_bits_per_weight_from_block_layouts(isq_type: str, expected_bits: float) -> None:
    assert bits_per_weight(IsqType(isq_type)) == pytest.approx(expected_bits, abs=1e-12)


def test_afq_scales_in_f32_cost_a_full_bit() -> None:
    # CPU loads Gemma 4 in f32, so AFQ scales/biases are 4 bytes: 4 + 64/64 bits.
    assert bits_per_weight(IsqType.AFQ4, scale_bytes=4) == pytest.approx(5.0)


def test_sensitive_type_has_fewer_bits_only_for_the_8_bit_ggml_types() -> None:
    # Q8_0 is the common embedding-kernel target, so Q8K (9.125) and Q8_1 (9.0) drop to 8.5 bits.
    fewer = {
        t.value for t in IsqType if bits_per_weight(sensitive_isq_type(t)) < bits_per_weight(t)
    }
    assert fewer == {"q8k", "q8_1"}


def test_more_shorthand_bits_never_fewer_bits_per_weight() -> None:
    for backend in IsqBackend:
        bpw = [bits_per_weight(shorthand_isq_type(b, backend)) for b in SHORTHAND_BITS]
        assert bpw == sorted(bpw)


# Tensor shapes from data/models.json (vocab 262144; E2B PLE 35 layers x 256; 31B hidden 5376),
# bytes worked by hand from the block layouts above.
@pytest.mark.parametrize(
    ("weights", "isq_type", "expected_bytes"),
    [
        # E2B PLE table under --isq 4 on CUDA: promoted to Q6K, 262144*8960/256 blocks * 210 B
        (262_144 * 35 * 256, "q6k", 9_175_040 * 210),
        # 31B token embedding (tied head) under --isq 4 on CUDA: Q6K
        (262_144 * 5376, "q6k", 5_505_024 * 210),
        # same table under --isq 4 on Metal: AFQ6, 64 weights -> 48 B + 2 + 2
        (262_144 * 5376, "afq6", 22_020_096 * 52),
        # a partial last block is stored whole
        (33, "q8_0", 2 * 34),
        (0, "q4k", 0),
    ],
)
def test_quantized_bytes_worked_examples(weights: int, isq_type: str, expected_bytes: int) -> None:
    assert quantized_bytes(weights, IsqType(isq_type)) == expected_bytes


def test_negative_weight_count_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold -1 weights"):
        quantized_bytes(-1, IsqType.Q4K)


def test_gemma4_sensitive_tensors_are_the_ple_table_and_embedding() -> None:
    assert "model.language_model.embed_tokens_per_layer.weight" in GEMMA4_SENSITIVE_TENSORS
    assert "model.language_model.embed_tokens.weight" in GEMMA4_SENSITIVE_TENSORS
    assert not any("vision" in name or "audio" in name for name in GEMMA4_SENSITIVE_TENSORS)


# Row lengths from data/models.json: 26B-A4B intermediate 2112 and expert width 704 (2112 = 8*256 + 64,
# 704 = 2*256 + 192, both multiples of 32 and 64); 31B hidden 5376 = 21*256.
@pytest.mark.parametrize(
    ("isq_type", "input_dim", "expected"),
    [
        ("q4k", 5376, "q4k"),
        ("q4k", 2112, "q4_1"),
        ("q4k", 704, "q4_1"),
        ("q6k", 704, "q5_1"),
        ("q2k", 2112, "q4_0"),
        ("q3k", 2112, "q4_0"),
        ("q5k", 704, "q5_0"),
        ("q8k", 704, "q8_1"),
        ("q8_0", 704, "q8_0"),
        ("q4k", 48, None),  # not a multiple of 32 either: left unquantized (f32 QTensor)
        ("afq4", 704, "afq4"),
        ("afq4", 96, None),  # 96 is not a multiple of the AFQ group of 64
        ("fp8", 7, "fp8"),
    ],
)
def test_rows_the_block_does_not_divide_fall_back(isq_type: str, input_dim: int, expected: str | None) -> None:
    stored = stored_isq_type(IsqType(isq_type), input_dim)
    assert (stored.value if stored is not None else None) == expected


def test_empty_row_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold 0 weights"):
        stored_isq_type(IsqType.Q4K, 0)
