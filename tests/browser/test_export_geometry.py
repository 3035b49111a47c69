"""Exported charts as a planning document shows them: title, legend, axis titles and footer never
overlap, measured on the real SVG (kaleido + Chromium) in headless Chromium."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser

from core.units import BYTES_PER_GIB
from ui import charts
from ui.export import export_stamp, figure_svg
from ui.views import PARTS

NAMES = {"gemma-4-31b": "Gemma 4 31B", "gemma-4-26b-a4b": "Gemma 4 26B-A4B", "gemma-4-e4b": "Gemma 4 E4B", "gemma-4-e2b": "Gemma 4 E2B"}
GPU_LINES = [("NVIDIA H100 80GB SXM5", 75 * BYTES_PER_GIB), ("2 x NVIDIA L4", 40 * BYTES_PER_GIB)]
LONG_LINK = "http://127.0.0.1:8501/planner?" + "&".join(
    f"{k}={v}" for k, v in {"models": "e2b,e4b,26b-a4b,31b", "gpus": "h100,rtx-4090,l4", "engine": "vllm", "weights": "bf16",
                            "kv": "bf16", "ctx": "32768", "seqs": "4", "images": "0", "img_tokens": "280", "audio": "0",
                            "thinking": "0", "gpu_util": "0.9", "block": "16", "batched": "8192", "max_seqs": "256"}.items()
)
LONG_TITLE = "Memory against context at 32,768 tokens x 4 sequences on 2 x NVIDIA H100 80GB SXM5 (vLLM, BF16 weights, bf16 KV)"


def _sweep(x: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"model": m, x: p, "total_bytes": (i + 1) * p * BYTES_PER_GIB, "weight_format": f}
         for i, m in enumerate(NAMES) for p in (1, 8, 64, 512) for f in ("bf16",)]
    )  # fmt: skip


def _figures() -> dict[str, object]:
    breakdown = pd.DataFrame({"model": list(NAMES), "label": list(NAMES.values()),
                              **{part: [(i + 1) * BYTES_PER_GIB] * 4 for i, part in enumerate(PARTS)}})  # fmt: skip
    points = pd.DataFrame(
        [{"label": f"{n} · {f}", "model": m, "weight_format": f, "total_bytes": b * BYTES_PER_GIB, "quality": q, "fits": True}
         for (m, n), q, b in zip(NAMES.items(), (1.0, 0.93, 0.62, 0.49), (60, 48, 15, 10)) for f in ("BF16", "Q4_K_M")]
    )  # fmt: skip
    throughput = pd.DataFrame(
        [{"gpu_name": g, "concurrent_sequences": s, "tokens": 40.0 * s} for g in ("H100", "RTX 4090") for s in (1, 2, 4, 8)]
    )
    return {
        "breakdown": charts.breakdown_bar(breakdown, LONG_TITLE),
        "context": charts.memory_lines(_sweep("context_tokens"), "context_tokens", "context tokens", LONG_TITLE, NAMES, GPU_LINES, log_x=True),
        "precision": charts.precision_bars(
            pd.concat([_sweep("weight_format").drop_duplicates(["model"]),
                       pd.DataFrame([{"model": "gemma-4-26b-a4b", "weight_format": "mxfp4-experts", "total_bytes": 20 * BYTES_PER_GIB}])]),
            NAMES, {"bf16": "BF16", "mxfp4-experts": "MXFP4 experts + BF16 (gpt-oss native)"}, LONG_TITLE, GPU_LINES,
        ),
        # Three reasons, three lines of note between the title and the plot (llama.cpp's Unsloth files).
        "precision_notes": charts.precision_bars(
            pd.DataFrame([{"model": m, "weight_format": f, "total_bytes": (i + 1) * BYTES_PER_GIB}
                          for i, m in enumerate(NAMES) for f in ("bf16", "a", "b", "c") if (m, f) not in
                          {("gemma-4-31b", "a"), ("gemma-4-e2b", "b"), ("gemma-4-e4b", "c"), ("gemma-4-e2b", "c")}]),
            NAMES, {"bf16": "BF16", "a": "Unsloth UD-Q4_K_XL", "b": "Unsloth UD-IQ2_M", "c": "Unsloth UD-IQ3_XXS"}, LONG_TITLE, GPU_LINES,
            {"a": "published as files for some models only, none for Gemma 4 31B",
             "b": "published as files for some models only, none for Gemma 4 E2B",
             "c": "published as files for some models only, none for Gemma 4 E4B, Gemma 4 E2B"},
        ),  # fmt: skip
        "benchmark": charts.benchmark_bars(
            pd.DataFrame([{"benchmark": "MMLU Pro", "unit": "%", "better": "higher", **dict(zip(NAMES, (85.2, 82.6, 69.4, 60.0)))}]),
            "MMLU Pro", NAMES,
        ),
        "quality": charts.quality_vs_memory(points, [points["label"][0]], NAMES, LONG_TITLE, GPU_LINES),
        "throughput": charts.throughput_lines(throughput, "tokens", "tokens/s", LONG_TITLE),
        "accuracy": charts.predicted_vs_observed(pd.DataFrame(
            [{"id": f"llamacpp-e4b-{i}-full-attention-mib", "kind": k, "ratio": 1.0, "observed": 1.0, "predicted": 1.0, "unit": "MiB"}
             for i, k in enumerate(["llamacpp", "vllm", "file", "gguf", "google", "llamaserver"] * 3)]
        )),
    }


BOXES = """
svg => {
  const box = selector => {
    const nodes = [...svg.querySelectorAll(selector)].filter(n => n.getBBox().width > 0);
    if (!nodes.length) return null;
    const rects = nodes.map(n => n.getBoundingClientRect());
    return {left: Math.min(...rects.map(r => r.left)), top: Math.min(...rects.map(r => r.top)),
            right: Math.max(...rects.map(r => r.right)), bottom: Math.max(...rects.map(r => r.bottom))};
  };
  return {title: box('.g-gtitle text'), legend: box('.legend .traces'), xtitle: box('.g-xtitle text'), xticks: box('.xtick text'),
          note: (() => {
            const rects = [...svg.querySelectorAll('text')].filter(t => t.textContent.startsWith('No bar'))
              .map(t => t.getBoundingClientRect());
            return rects.length ? {left: rects[0].left, top: rects[0].top, right: rects[0].right, bottom: rects[0].bottom} : null;
          })(),
          footer: (() => {
            const rects = [...svg.querySelectorAll('text')].filter(t => t.textContent.startsWith('Gemma 4 deployment planner'))
              .map(t => t.getBoundingClientRect());
            return rects.length ? {left: rects[0].left, top: rects[0].top, right: rects[0].right, bottom: rects[0].bottom, text: 1} : null;
          })()};
}
"""


def _disjoint(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return True
    return a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]


@pytest.fixture(scope="module")
def measured(browser: Browser) -> dict[str, dict]:
    """Each chart's exported SVG opened in the suite's Chromium (tests/browser/conftest.py)."""
    boxes = {}
    page = browser.new_page()
    # A planner link as long as a real one (every scenario parameter): the stamp wraps to three lines.
    stamp = export_stamp(
        "Gemma 4 31B, Gemma 4 26B-A4B, Gemma 4 E4B, Gemma 4 E2B · vLLM · BF16 weights · 32,768 tokens x 4 sequences · 2 x NVIDIA H100 80GB SXM5",
        LONG_LINK, "2026-12-03",
    )
    for name, figure in _figures().items():
        page.set_content(figure_svg(figure, stamp=stamp).decode("utf-8"))
        boxes[name] = page.locator("svg").first.evaluate(BOXES)
    page.close()
    return boxes


@pytest.mark.parametrize("name", ["breakdown", "context", "precision", "precision_notes", "quality", "throughput"])
def test_the_title_never_overlaps_the_legend_in_the_exported_svg(measured, name):
    boxes = measured[name]
    assert boxes["title"] is not None and boxes["legend"] is not None
    assert _disjoint(boxes["title"], boxes["legend"]), boxes


@pytest.mark.parametrize("name", ["breakdown", "context", "precision", "precision_notes", "benchmark", "quality", "throughput", "accuracy"])
def test_the_footer_stamp_is_there_and_overlaps_nothing(measured, name):
    boxes = measured[name]
    assert boxes["footer"] is not None, "no stamp in the exported SVG"
    for other in ("title", "legend", "xtitle", "xticks"):
        assert _disjoint(boxes["footer"], boxes[other]), (other, boxes)
    # Wrapped, not cut: every line inside the 1,200 x 650 image.
    assert boxes["footer"]["left"] >= 0 and boxes["footer"]["right"] <= 1200 and boxes["footer"]["bottom"] <= 650, boxes


@pytest.mark.parametrize("name", ["breakdown", "context", "precision", "precision_notes", "quality", "throughput"])
def test_the_legend_never_overlaps_the_x_axis_title(measured, name):
    assert _disjoint(measured[name]["legend"], measured[name]["xtitle"]), measured[name]


def test_the_fit_heatmaps_title_clears_its_model_labels_and_legend(browser: Browser):
    from core.catalog import load_catalog
    from core.estimate import MemoryRequest
    from core.fit import device_fit_matrix
    from ui.fit_chart import verdict_heatmap

    catalog = load_catalog()
    rows = device_fit_matrix(MemoryRequest(model="e2b", gpu="nvidia-rtx-4090"), catalog)
    labels = {m.id: f"{m.display_name}<br>quality 1.00" for m in catalog.models}
    figure = verdict_heatmap(rows, labels, {f.id: f.display_name for f in catalog.weight_formats}, None, LONG_TITLE)
    page = browser.new_page()
    page.set_content(figure_svg(figure, height=figure.layout.height).decode("utf-8"))
    boxes = page.locator("svg").first.evaluate(BOXES.replace("xtitle: box('.g-xtitle text')", "xtitle: box('.xtick text')"))
    page.close()
    assert _disjoint(boxes["title"], boxes["xtitle"]), boxes
    assert _disjoint(boxes["title"], boxes["legend"]), boxes


@pytest.mark.parametrize("name", ["precision", "precision_notes"])
def test_the_precision_chart_says_which_bars_are_missing_without_touching_the_title(measured, name):
    boxes = measured[name]
    assert boxes["note"] is not None
    assert _disjoint(boxes["note"], boxes["title"]) and _disjoint(boxes["note"], boxes["legend"]), boxes



POSITIONS = """
svg => ({
  points: [...svg.querySelectorAll('.scatterlayer .point')].map(p => { const r = p.getBoundingClientRect(); return [(r.left + r.right) / 2, (r.top + r.bottom) / 2]; }),
  lines: [...svg.querySelectorAll('.shapelayer path')].map(p => { const r = p.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; }),
  notes: [...svg.querySelectorAll('.annotation')].map(a => { const r = a.getBoundingClientRect(); return [a.textContent, r.left, r.bottom]; }),
})
"""


def _positions(browser: Browser, figure) -> dict:
    page = browser.new_page()
    page.set_content(figure_svg(figure).decode("utf-8"))
    found = page.locator("svg").first.evaluate(POSITIONS)
    page.close()
    return found


def test_a_device_line_on_a_log_axis_sits_where_a_point_of_the_same_memory_sits(browser: Browser):
    # A variant needing exactly the device's 75 GiB: its marker and the device's line must meet.
    points = pd.DataFrame({"label": ["31B", "E2B"], "model": ["gemma-4-31b", "gemma-4-e2b"],
                           "total_bytes": [75 * BYTES_PER_GIB, 3 * BYTES_PER_GIB], "quality": [1.0, 0.5]})  # fmt: skip
    found = _positions(browser, charts.quality_vs_memory(points, ["E2B", "31B"], NAMES, "Quality", [("H100", 75 * BYTES_PER_GIB)]))
    marker_x = found["points"][0][0]
    (line,) = found["lines"]
    assert line[0] == pytest.approx(marker_x, abs=1.5) and line[1] == pytest.approx(marker_x, abs=1.5), found
    ((text, note_left, _),) = found["notes"]
    assert text == "H100" and note_left == pytest.approx(marker_x, abs=3), found


def test_a_device_line_on_a_log_memory_axis_sits_at_its_memory(browser: Browser):
    frame = pd.DataFrame({"model": ["gemma-4-31b"] * 3, "concurrent_sequences": [1, 2, 4],
                          "total_bytes": [np.float64(g * BYTES_PER_GIB) for g in (20, 75, 300)]})  # fmt: skip
    figure = charts.memory_lines(frame, "concurrent_sequences", "sequences", "Memory", NAMES, [("H100", 75 * BYTES_PER_GIB)], log_x=True, log_y=True)
    found = _positions(browser, figure)
    marker_y = found["points"][1][1]
    (line,) = found["lines"]
    assert line[2] == pytest.approx(marker_y, abs=1.5) and line[3] == pytest.approx(marker_y, abs=1.5), found
    ((_, _, note_bottom),) = found["notes"]
    assert note_bottom == pytest.approx(marker_y, abs=3), found
