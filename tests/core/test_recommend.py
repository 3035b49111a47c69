"""Recommendation: the best fitting option, cheaper variants beside it, and the plain text."""

import csv
import io
import shutil
from pathlib import Path

import pytest

from core.catalog import DATA_DIR, load_catalog
from core.estimate import MemoryRequest
from core.fit import FitRow, fit_matrix
from core.quality import quality_score
from core.recommend import recommend


def rows_on(gpu: str, context_tokens: int = 8192, catalog=None, **settings) -> list[FitRow]:
    return fit_matrix(MemoryRequest(model="31b", context_tokens=context_tokens, gpu=gpu, **settings), catalog)


def check_properties(recommendation, rows, catalog):
    best = recommendation.best
    assert best is not None and best.verdict in ("fits", "tight")
    fitting = [row for row in rows if row.verdict in ("fits", "tight")]
    # Nothing that fits cleanly scores higher than the recommendation.
    if best.verdict == "fits":
        assert best.quality == max(quality_score(catalog, row.model) for row in fitting if row.verdict == "fits")
    assert all(value == 0 for value in best.given_up.values())
    memories = [option.total_bytes for option in recommendation.cheaper]
    assert memories == sorted(memories)
    models = [option.model for option in recommendation.cheaper]
    assert len(models) == len(set(models)) and best.model not in models
    for option in recommendation.cheaper:
        assert option.total_bytes < best.total_bytes
        assert option.verdict in ("fits", "tight")
        # Each cheaper option's own model scores lower than the best here (31B leads everywhere),
        # so every benchmark shows a positive loss, OmniDocBench (lower is better) included.
        if best.model == "gemma-4-31b":
            assert all(value > 0 for value in option.given_up.values())


def test_h100_at_8192_tokens_recommends_31b(catalog):
    rows = rows_on("h100")
    result = recommend(rows, catalog)
    assert result.best.model == "gemma-4-31b"
    # Both 16-bit formats fit with equal headroom; bf16 comes first in the catalogue.
    assert result.best.weight_format == "bf16"
    check_properties(result, rows, catalog)
    assert result.text.startswith("Run Gemma 4 31B in BF16 with transformers on 1 x NVIDIA H100 80GB SXM5: it fits with")
    # 26B-A4B versus 31B: MMLU Pro 85.2 - 82.6, OmniDocBench 0.149 - 0.131 (lower is better).
    a4b = next(option for option in result.cheaper if option.model == "gemma-4-26b-a4b")
    assert a4b.weight_format == "bf16"
    assert a4b.given_up["MMLU Pro"] == pytest.approx(2.6)
    assert a4b.given_up["OmniDocBench"] == pytest.approx(0.018)
    assert a4b.given_up["Codeforces Elo"] == pytest.approx(432)
    assert "A smaller alternative: Gemma 4 26B-A4B in BF16 with transformers needs" in result.text
    assert "gives up 2.6 points on MMLU Pro" in result.text


def test_rtx_4060_ti_does_not_get_31b_bf16(catalog):
    rows = rows_on("4060ti")
    result = recommend(rows, catalog)
    assert (result.best.model, result.best.weight_format) != ("gemma-4-31b", "bf16")
    check_properties(result, rows, catalog)


@pytest.mark.parametrize(
    ("gpu", "settings"),
    [
        ("rpi5-8gb", {"engine": "llama.cpp", "weight_format": "gguf-q4_0"}),
        ("jetson-orin-nano-8gb", {"engine": "llama.cpp", "weight_format": "gguf-q4_0"}),
        ("m4-pro-48gb", {"engine": "mlx", "weight_format": "mlx-4bit"}),
        ("rtx-4090", {"engine": "vllm"}),
        ("a100-80gb", {}),
    ],
)
def test_properties_hold_wherever_something_fits(catalog, gpu, settings):
    rows = rows_on(gpu, **settings)
    result = recommend(rows, catalog)
    if result.best is None:
        assert all(row.verdict == "does_not_fit" for row in rows)
        assert result.text.startswith("Nothing fits")
    else:
        check_properties(result, rows, catalog)
        assert result.text.startswith("Run ")


def row(model, weight_format, verdict, total_gib, usable_gib=20.0):
    gib = 2**30
    total, usable = int(total_gib * gib), int(usable_gib * gib)
    return FitRow(
        model=model,
        weight_format=weight_format,
        gpu="nvidia-l4",
        engine="vllm",
        gpus=1,
        usable_bytes=usable,
        total_bytes=total,
        fits=total <= usable,
        verdict=verdict,
        headroom_bytes=max(usable - total, 0),
        shortfall_bytes=max(total - usable, 0),
        max_context_tokens=8192 if total <= usable else 0,
        max_concurrent_sequences=1 if total <= usable else 0,
    )


def test_a_clean_fit_beats_a_tight_one_of_higher_quality(catalog):
    rows = [row("gemma-4-31b", "awq-int4", "tight", 19.5), row("gemma-4-26b-a4b", "awq-int4", "fits", 15.0)]
    result = recommend(rows, catalog)
    assert result.best.model == "gemma-4-26b-a4b"


def test_ties_in_quality_go_to_more_bits_then_more_headroom(catalog):
    rows = [
        row("gemma-4-e4b", "awq-int4", "fits", 5.0),
        row("gemma-4-e4b", "fp8", "fits", 8.0),
        row("gemma-4-e4b", "int8", "fits", 7.9),  # 8 bits, below fp8's 8.002
        row("gemma-4-e2b", "bf16", "fits", 9.0),
        row("gemma-4-e2b", "fp8", "fits", 6.0),
    ]
    result = recommend(rows, catalog)
    assert (result.best.model, result.best.weight_format) == ("gemma-4-e4b", "fp8")
    # E2B: bf16 uses more memory than the best, so its highest-precision cheaper format is fp8.
    assert [(o.model, o.weight_format) for o in result.cheaper] == [("gemma-4-e2b", "fp8")]
    assert result.cheaper[0].given_up["MMLU Pro"] == pytest.approx(69.4 - 60.0)
    assert "needs 2.0 GiB less and gives up 9.4 points on MMLU Pro (15.2 on GPQA Diamond at most)" in result.text


def test_tight_fit_says_so(catalog):
    result = recommend([row("gemma-4-e2b", "bf16", "tight", 19.5)], catalog)
    assert "fits, but tightly, with only 0.5 GiB to spare" in result.text


def test_nothing_fits_on_a_tiny_device(tmp_path: Path):
    """A private catalogue with a 1 GiB device: nothing fits, and the text says what the
    smallest option would need."""
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "gpus.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    header = rows[0]
    tiny = dict(zip(header, next(r for r in rows[1:] if r[0] == "rpi5-8gb"), strict=True))
    tiny.update(id="tiny-1gb", name="Tiny 1GB", memory_bytes=str(2**30), memory_gb_marketing="1", aliases="")
    rows.append([tiny[column] for column in header])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    catalog = load_catalog(data)

    fit_rows = rows_on("tiny-1gb", context_tokens=2048, catalog=catalog)
    assert fit_rows and all(r.verdict == "does_not_fit" for r in fit_rows)
    result = recommend(fit_rows, catalog)
    assert result.best is None and result.cheaper == []
    smallest = min(fit_rows, key=lambda r: r.total_bytes)
    assert result.text.startswith("Nothing fits on 1 x Tiny 1GB")
    assert f"{smallest.total_bytes / 2**30:,.1f} GiB" in result.text


def test_no_rows_at_all(catalog):
    result = recommend([], catalog)
    assert result.best is None and "No model and format" in result.text


def test_nothing_fits_when_the_engine_has_no_room_for_its_kv_cache(catalog):
    # Within usable memory (19 of 20 GiB), yet vLLM found its KV pool 1.5 GiB short of one
    # request and would not start: the row does not fit, and the text says why.
    refused = row("gemma-4-e2b", "bf16", "does_not_fit", 19.0).model_copy(
        update={"fits": False, "headroom_bytes": 0, "shortfall_bytes": 3 * 2**29, "max_context_tokens": 0, "max_concurrent_sequences": 0}
    )
    result = recommend([refused], catalog)
    assert result.best is None
    assert "leaves the engine 1.5 GiB short of a KV cache for one request" in result.text


def test_a_file_under_4_bits_is_recommended_only_where_no_4_bit_option_fits():
    # llama.cpp's quantize tool: Q4_K_M +0.18 perplexity on Llama-3-8B, Q3_K_M +0.66, Q2_K +3.52,
    # so a 3-bit 31B is not "the best" on a 24 GB card where 26B-A4B fits at 4 bits.
    from core.fit import device_fit_matrix

    catalog = load_catalog()
    agent = MemoryRequest(model="31b", gpu="nvidia-rtx-4090", context_tokens=32_768, thinking_tokens=4_000)
    rows = device_fit_matrix(agent, catalog)
    fitting = [r for r in rows if r.verdict == "fits"]
    assert any(catalog.weight_format(r.weight_format).main_bits < 4 for r in fitting)  # the 3-bit 31B fits...
    best = recommend(rows, catalog).best
    assert catalog.weight_format(best.weight_format).main_bits >= 4  # ...but is not the answer
    only_small = [r for r in rows if catalog.weight_format(r.weight_format).main_bits < 4]
    assert catalog.weight_format(recommend(only_small, catalog).best.weight_format).main_bits < 4
