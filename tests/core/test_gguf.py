"""GGUF sizes tensor by tensor: ggml block arithmetic by hand, llama-quantize's rules by hand, tensor
counts from public load logs, and every public file size in data/gguf_files.csv that has a recipe."""

import csv
import re
from pathlib import Path

import pytest

from core.architecture import ModelConfig
from core.gguf import (
    GgufFile,
    gguf_tensors,
    mmproj_file,
    ollama_blob,
    quantize,
    tensor_bytes,
    use_more_bits,
)
from core.params import count_parameters

FILES_CSV = Path(__file__).resolve().parents[2] / "data" / "gguf_files.csv"
UNIT_BYTES = {"bytes": 1, "MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30}
# Allowance for the estimated header of a whole file (tokenizer ~14 MB estimated from vocabulary
# size, merge count and an assumed 7-byte mean token; +-2 bytes a token moves it +-1.6 MB):
# figures of tensor data (llama.cpp's 'file size') exclude the header and get none.
HEADER_ALLOWANCE_BYTES = 4_000_000
TEXT_COMPONENTS = (
    "token_embedding", "per_layer_embedding", "per_layer_model_projection", "per_layer_projection",
    "attention", "mlp", "experts", "router", "norms",
)


def config(catalog, model_id) -> ModelConfig:
    return catalog.model(model_id).config


# --- ggml block sizes, by hand from ggml-common.h's struct layouts ---

@pytest.mark.parametrize(
    "ggml_type, values, expected_bytes",
    [
        ("Q4_K", 256, 144),  # 2 fp16 + 12 scale bytes + 128 nibble bytes
        ("Q5_K", 256, 176),
        ("Q6_K", 256, 210),
        ("Q3_K", 256, 110),
        ("IQ4_XS", 256, 136),
        ("Q8_0", 32, 34),
        ("Q4_0", 32, 18),
        ("Q5_0", 32, 22),
        ("Q5_1", 32, 24),
        ("MXFP4", 32, 17),
        ("BF16", 1, 2),
        ("F32", 1, 4),
    ],
)
def test_one_block(ggml_type, values, expected_bytes):
    assert tensor_bytes(ggml_type, (values,)) == expected_bytes


def test_a_k_quant_row_must_fill_whole_blocks():
    with pytest.raises(ValueError, match="multiple of 256"):
        tensor_bytes("Q4_K", (704, 1))


# --- llama-quantize's use_more_bits, by hand ---

def test_use_more_bits_for_30_layers():
    # n/8 = 3, 7n/8 = 26: layers 0-2, 26-29, and (i - 3) % 3 == 2 between them
    assert {i for i in range(30) if use_more_bits(i, 30)} == {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29}


def test_use_more_bits_for_60_layers():
    # n/8 = 7, 7n/8 = 52: layers 0-6, 52-59, and 9, 12, ..., 51
    expected = set(range(7)) | set(range(52, 60)) | set(range(9, 52, 3))
    assert {i for i in range(60) if use_more_bits(i, 60)} == expected
    assert len(expected) == 30


# --- the converter's tensors ---

@pytest.mark.parametrize("model_id", ["e2b", "e4b", "26b", "31b"])
def test_tensor_parameters_add_up_to_count_parameters(catalog, model_id):
    cfg = config(catalog, model_id)
    counted = count_parameters(cfg)
    by_component: dict[str, int] = {}
    for tensor in gguf_tensors(cfg):
        by_component[tensor.component] = by_component.get(tensor.component, 0) + tensor.params
    for component in TEXT_COMPONENTS:
        assert by_component.get(component, 0) == getattr(counted, component), component
    # Beyond the parameters: one layer_output_scale per layer and 512 / 2 rope factors.
    assert by_component["buffers"] == cfg.text_config.num_hidden_layers
    assert by_component["rope_freqs"] == 256


def test_e2b_carries_unused_kv_for_its_20_shared_layers(catalog):
    # Layers 15-34: 16 sliding (k, v 1536 x 256, k_norm 256) and 4 full (k, v 1536 x 512, k_norm 512).
    expected = 16 * (2 * 1536 * 256 + 256) + 4 * (2 * 1536 * 512 + 512)
    tensors = gguf_tensors(config(catalog, "e2b"))
    assert sum(t.params for t in tensors if t.component == "unused_shared_kv") == expected == 18_880_512


@pytest.mark.parametrize(
    "model_id, tensors, f32_tensors, source",
    [
        ("e2b", 601, 283, "animehacker/llama-turboquant#3 load log"),
        ("e4b", 720, None, "ggml-org/llama.cpp#21328 load log (unsloth UD-Q4_K_XL)"),
        ("26b", 658, 392, "ikawrakow/ik_llama.cpp#1772 load log"),
        ("31b", 833, None, "ggml-org/llama.cpp#21760 load log (bartowski Q8_0)"),
    ],
)
def test_tensor_counts_match_public_load_logs(catalog, model_id, tensors, f32_tensors, source):
    written = gguf_tensors(config(catalog, model_id))
    assert len(written) == tensors, source
    if f32_tensors is not None:
        assert sum(t.ggml_type == "F32" for t in written) == f32_tensors, source


# --- llama-quantize's type rules, by hand ---

def test_26b_q4_k_m_expert_rows_of_704_fall_back_to_q5_0(catalog):
    tensors = {t.name: t for t in quantize(config(catalog, "26b"), "Q4_K_M").tensors}
    plain = tensors["blk.4.ffn_down_exps.weight"]  # layer 4: not a use_more_bits layer of 30
    assert plain.ggml_type == "Q5_0"
    assert plain.bytes == 704 // 32 * 22 * 2816 * 128  # 22 bytes per 32 values
    bumped = tensors["blk.0.ffn_down_exps.weight"]  # Q6_K by use_more_bits, then Q6_K -> Q8_0
    assert bumped.ggml_type == "Q8_0"
    assert bumped.bytes == 704 // 32 * 34 * 2816 * 128
    assert tensors["blk.4.ffn_down.weight"].ggml_type == "Q5_0"  # the 2112-wide dense MLP
    assert tensors["blk.4.ffn_gate_up_exps.weight"].ggml_type == "Q4_K"  # rows of 2816 = 11 x 256
    assert tensors["blk.4.ffn_gate_inp.weight"].ggml_type == "F32"  # the router is never quantized


def test_q4_k_m_bumps_attn_v_over_the_layers_that_have_one(catalog):
    # 31B: full layers have no v_proj (attention_k_eq_v), so there are 50 attn_v tensors and the
    # i-th of them is bumped when use_more_bits(i, 50): 6 + 7 + 12 = 25 of them.
    tensors = quantize(config(catalog, "31b"), "Q4_K_M").tensors
    attn_v = [t for t in tensors if t.name.endswith("attn_v.weight")]
    assert len(attn_v) == 50
    assert sum(t.ggml_type == "Q6_K" for t in attn_v) == sum(use_more_bits(i, 50) for i in range(50)) == 25


def test_tied_embeddings_take_the_output_rule(catalog):
    types = {t.name: t.ggml_type for t in quantize(config(catalog, "e4b"), "Q4_K_M").tensors}
    assert types["token_embd.weight"] == "Q6_K"
    assert types["per_layer_token_embd.weight"] == "Q6_K"
    assert types["per_layer_model_proj.weight"] == "BF16"  # never quantized: kept as converted
    mxfp4 = {t.name: t.ggml_type for t in quantize(config(catalog, "26b"), "MXFP4_MOE").tensors}
    assert mxfp4["token_embd.weight"] == "Q8_0"
    assert mxfp4["blk.0.ffn_gate_up_exps.weight"] == "MXFP4"
    assert mxfp4["blk.0.attn_q.weight"] == "Q8_0"


def test_iq4_xs_bumps_attn_v_only_with_four_query_heads_per_kv_head(catalog):
    # n_gqa of layer 0: E2B 8 / 1 and E4B 8 / 2 reach 4, 26B 16 / 8 and 31B 32 / 16 do not.
    for model_id, bumped in (("e2b", True), ("e4b", True), ("26b", False), ("31b", False)):
        types = {t.name: t.ggml_type for t in quantize(config(catalog, model_id), "IQ4_XS").tensors}
        assert (types["blk.0.attn_v.weight"] == "Q5_K") is bumped, model_id


def test_imatrix_changes_only_the_rules_that_name_it(catalog):
    e4b = config(catalog, "e4b")
    assert quantize(e4b, "Q4_K_M", imatrix=True).total_bytes == quantize(e4b, "Q4_K_M").total_bytes
    # IQ4_XS without an imatrix gives the first n/8 = 5 ffn_down Q5_K; with one it does not.
    assert quantize(e4b, "IQ4_XS", imatrix=True).total_bytes < quantize(e4b, "IQ4_XS").total_bytes


def test_ollama_e4b_blob_types_match_its_load_log(catalog):
    # qaribhaider/ollama-to-lmstudio-symlinks#12: q4_K 339, q6_K 41, bf16 134 + f16 116 tensors.
    counts = ollama_blob(config(catalog, "e4b")).types_count()
    assert counts["Q4_K"] == 339
    assert counts["Q6_K"] == 41
    assert counts["BF16"] + counts["F16"] == 134 + 116


def test_26b_q4_k_m_is_larger_than_the_flat_4_85_bit_estimate(catalog):
    cfg = config(catalog, "26b")
    flat_bytes = count_parameters(cfg).text * 4.85 / 8
    assert quantize(cfg, "Q4_K_M").total_bytes > 1.05 * flat_bytes


def test_ftype_names_are_case_insensitive_and_unknown_ones_are_named(catalog):
    cfg = config(catalog, "e2b")
    assert quantize(cfg, "q4_k_m") == quantize(cfg, "Q4_K_M")
    with pytest.raises(ValueError, match="Q4_K_M"):
        quantize(cfg, "Q4_K_XL")


def test_no_mmproj_without_a_gemma4_vision_tower(catalog):
    text_only = ModelConfig(text_config=config(catalog, "31b").text_config)
    assert mmproj_file(text_only) is None


def test_bytes_by_component_adds_up(catalog):
    gguf = quantize(config(catalog, "26b"), "Q4_K_M")
    assert sum(gguf.bytes_by_component.values()) == gguf.tensor_bytes
    assert gguf.total_bytes == gguf.metadata_bytes + gguf.tensor_bytes + gguf.padding_bytes


# --- public file sizes ---

def _rows() -> list[dict[str, str]]:
    with FILES_CSV.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def predicted(catalog, row: dict[str, str]) -> GgufFile | None:
    """The recipe a row's ftype names, or None (Unsloth dynamic mixes, second-hand figures)."""
    cfg = config(catalog, row["model"])
    ftype = row["ftype"]
    if ftype.startswith("ollama:"):
        return ollama_blob(cfg, ftype.removeprefix("ollama:"))
    if ftype.startswith("mmproj:"):
        return mmproj_file(cfg, ftype.removeprefix("mmproj:"))
    base, _, override = ftype.partition("+")
    if not re.fullmatch(r"BF16|F16|Q8_0|Q6_K|Q5_K_[MS]|Q4_K_[MS]|Q3_K_[MSL]|Q2_K|Q4_0|IQ4_XS|IQ4_NL|MXFP4_MOE", base):
        return None
    tensor_types = (tuple(override.split("=")),) if override else ()
    return quantize(cfg, base, tensor_types=tensor_types)


def tolerance_bytes(basis: str) -> int:
    """Half a unit of the figure's last printed digit, plus the header allowance for whole files."""
    quantity, unit, decimals = re.match(r"(file|tensor_data) (\w+) (\d)dp", basis).groups()
    rounding = UNIT_BYTES[unit] * 10 ** -int(decimals) / 2
    return int(rounding) + (HEADER_ALLOWANCE_BYTES if quantity == "file" else 0)


def test_every_row_is_well_formed():
    rows = _rows()
    assert len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert int(row["size_bytes"]) > 0, row["id"]
        assert re.match(r"(file|tensor_data) (bytes|MB|MiB|GB|GiB) \d+dp", row["size_basis"]), row["id"]
        assert row["source"], row["id"]


RECIPE_ROWS = [row for row in _rows() if not row["ftype"].startswith(("secondhand:", "unsloth:", "UD-", "litertlm"))]


@pytest.mark.parametrize("row", RECIPE_ROWS, ids=[row["id"] for row in RECIPE_ROWS])
def test_predicted_size_matches_public_figure(catalog, row):
    gguf = predicted(catalog, row)
    assert gguf is not None, f"{row['id']}: ftype {row['ftype']!r} names no recipe"
    quantity = row["size_basis"].split()[0]
    size = gguf.total_bytes if quantity == "file" else gguf.tensor_bytes
    published = int(row["size_bytes"])
    assert abs(size - published) <= tolerance_bytes(row["size_basis"]), (
        f"{row['id']}: predicted {size:,} B vs published {published:,} B ({(size - published) / published:+.2%})"
    )
