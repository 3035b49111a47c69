"""The device-fit heatmap: every option a coloured cell, the recommendation boxed and on top."""

import pytest

from core.catalog import load_catalog
from core.estimate import MemoryRequest
from core.fit import device_fit_matrix
from core.recommend import recommend
from ui.fit_chart import VERDICT_COLORS, verdict_heatmap

CATALOG = load_catalog()
NAMES = {m.id: m.display_name for m in CATALOG.models}
FORMATS = {f.id: f.display_name for f in CATALOG.weight_formats}


@pytest.fixture(scope="module")
def rtx_4090():
    rows = device_fit_matrix(MemoryRequest(model="e2b", gpu="nvidia-rtx-4090", context_tokens=8192), CATALOG)
    best = recommend(rows, CATALOG).best
    figure = verdict_heatmap(rows, NAMES, FORMATS, (best.model, best.weight_format, best.engine), "t")
    return rows, best, figure


def cell(figure, row_label_start: str, model: str):
    heatmap = figure.data[0]
    i = next(i for i, label in enumerate(heatmap.y) if label.startswith(row_label_start))
    j = list(heatmap.x).index(NAMES[model])
    return heatmap.z[i][j], heatmap.text[i][j]


def test_the_31b_bf16_checkpoint_cannot_fit_a_24_gb_card_and_is_grey(rtx_4090):
    # google/gemma-4-31B-it is 62,546,177,752 bytes of bf16 weights: more than the 4090's 24 GB.
    _, _, figure = rtx_4090
    code, text = cell(figure, "vLLM · BF16", "gemma-4-31b")
    assert list(VERDICT_COLORS)[int(code)] == "does_not_fit" and text.startswith("needs ")


def test_e2b_in_4_bits_fits_a_24_gb_card_with_most_of_it_free(rtx_4090):
    # Unsloth's E2B Q4_K_M file is about 3.1 GB: at 8K tokens most of 24 GB stays free.
    _, _, figure = rtx_4090
    code, text = cell(figure, "llama.cpp · GGUF Q4_K_M", "gemma-4-e2b")
    assert list(VERDICT_COLORS)[int(code)] == "fits"
    assert float(text.split()[0]) > 15


def test_every_option_is_one_cell_and_options_that_do_not_apply_are_blank(rtx_4090):
    rows, _, figure = rtx_4090
    heatmap = figure.data[0]
    filled = sum(1 for line in heatmap.z for value in line if value == value)  # NaN != NaN
    assert filled == len(rows)
    assert len(set(heatmap.y)) == len(heatmap.y)


def test_the_recommendation_is_boxed_in_the_first_rows(rtx_4090):
    _, best, figure = rtx_4090
    heatmap = figure.data[0]
    (box,) = figure.layout.shapes
    i, j = round((box.y0 + box.y1) / 2), round((box.x0 + box.x1) / 2)
    assert heatmap.x[j] == NAMES[best.model]
    assert heatmap.y[i].startswith(heatmap.y[0].split(" · ")[0])  # the recommended runtime's block leads
    assert CATALOG.weight_format(best.weight_format).display_name.startswith(heatmap.y[i].split(" · ", 1)[1])


def test_the_picture_grows_with_its_rows_so_labels_never_overlap(rtx_4090):
    rows, _, figure = rtx_4090
    few = verdict_heatmap([r for r in rows if r.engine == "vllm"], NAMES, FORMATS, None, "t")
    assert figure.layout.height > few.layout.height
    assert figure.layout.height / len(figure.data[0].y) >= 20
