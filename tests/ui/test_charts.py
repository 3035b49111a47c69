"""Chart builders: what the user sees (traces, colours, hover text, titles, axis types, GPU lines)."""

import base64
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from core.units import BYTES_PER_GIB
from ui import charts
from ui.views import PARTS

NAMES = {"gemma-4-31b": "Gemma 4 31B", "gemma-4-e2b": "Gemma 4 E2B", "custom2-mine": "Mine"}
GPU_LINES = [("H100 80GB", 75 * BYTES_PER_GIB), ("2 x L4", 40 * BYTES_PER_GIB)]


def _spec(figure: go.Figure) -> dict:
    """The figure's JSON as Streamlit sends it, with plotly's base64 arrays decoded."""

    def decode(value):
        if isinstance(value, dict) and {"dtype", "bdata"} <= set(value):
            return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
        if isinstance(value, dict):
            return {key: decode(item) for key, item in value.items()}
        if isinstance(value, list):
            return [decode(item) for item in value]
        return value

    return decode(json.loads(pio.to_json(figure, validate=False)))


def _sweep_frame(x: str) -> pd.DataFrame:
    rows = []
    for model_index, model in enumerate(NAMES):
        for point in (1, 2, 4):
            rows.append({"model": model, x: point, "total_bytes": (model_index + 1) * point * BYTES_PER_GIB, "weight_format": "bf16"})
    return pd.DataFrame(rows)


def _common_layout(layout: dict, hovermode: str = "x unified", bottom_px: int = 60) -> None:
    assert layout["margin"] == dict(l=60, r=20, t=60, b=bottom_px)
    assert layout["legend"] == dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02)
    assert layout["hovermode"] == hovermode


def test_breakdown_bar_stacks_the_parts_in_gib_with_their_colours():
    rows = pd.DataFrame({"model": ["gemma-4-31b", "gemma-4-e2b"], "label": ["Gemma 4 31B", "Gemma 4 E2B"],
                         **{part: [(i + 1) * BYTES_PER_GIB, (i + 2) * BYTES_PER_GIB] for i, part in enumerate(PARTS)}})  # fmt: skip
    figure = _spec(charts.breakdown_bar(rows, "Memory breakdown"))
    assert [trace["name"] for trace in figure["data"]] == list(PARTS)
    for index, trace in enumerate(figure["data"]):
        assert trace["type"] == "bar"
        assert list(trace["x"]) == ["Gemma 4 31B", "Gemma 4 E2B"]
        assert np.allclose(trace["y"], [index + 1, index + 2])
        assert trace["marker"] == {"color": charts.PART_COLORS[trace["name"]]}
        assert trace["hovertemplate"] == f"{trace['name']}: %{{y:,.2f}} GiB<extra></extra>"
    layout = figure["layout"]
    assert layout["barmode"] == "stack"
    assert layout["title"] == {"text": "Memory breakdown"}
    assert layout["yaxis"]["title"] == {"text": "GiB (2^30 bytes)"}
    _common_layout(layout, "closest")


@pytest.mark.parametrize("log_x", [True, False])
def test_memory_lines_one_line_per_model_and_a_labelled_line_per_gpu(log_x):
    frame = _sweep_frame("context_tokens")
    figure = _spec(charts.memory_lines(frame, "context_tokens", "context", "Memory against context", NAMES, GPU_LINES, log_x=log_x))
    assert [trace["name"] for trace in figure["data"]] == list(NAMES.values())
    colours = [trace["line"]["color"] for trace in figure["data"]]
    # The catalogue's colour for Gemma; an imported model keeps its slot's colour.
    assert colours == [charts.MODEL_COLORS["gemma-4-31b"], charts.MODEL_COLORS["gemma-4-e2b"], charts.FALLBACK_COLORS[1]]
    first = figure["data"][0]
    assert first["mode"] == "lines+markers" and first["marker"] == {"size": 4}
    assert list(first["x"]) == [1, 2, 4] and np.allclose(first["y"], [1, 2, 4])
    assert first["hovertemplate"] == "%{y:,.2f} GiB<extra>Gemma 4 31B</extra>"
    layout = figure["layout"]
    assert layout["title"] == {"text": "Memory against context"}
    assert layout["xaxis"]["title"] == {"text": "context"}
    assert layout["xaxis"].get("type") == ("log" if log_x else None)
    assert layout["yaxis"]["title"] == {"text": "GiB (2^30 bytes)"}
    _common_layout(layout)
    assert [shape["y0"] for shape in layout["shapes"]] == [75, 40]
    assert [shape["line"]["dash"] for shape in layout["shapes"]] == ["dash", "dot"]
    assert all(shape["xref"] == "paper" and shape["yref"] == "y" for shape in layout["shapes"])
    assert [note["text"] for note in layout["annotations"]] == ["H100 80GB: 75.0 GiB usable", "2 x L4: 40.0 GiB usable"]
    assert all(note["font"] == {"size": 11} and note["showarrow"] is False for note in layout["annotations"])


def test_memory_lines_without_gpus_draw_no_lines():
    layout = _spec(charts.memory_lines(_sweep_frame("concurrent_sequences"), "concurrent_sequences", "s", "t", NAMES))["layout"]
    assert "shapes" not in layout and "annotations" not in layout


def test_precision_bars_grouped_per_model_with_format_names():
    figure = _spec(charts.precision_bars(_sweep_frame("concurrent_sequences"), NAMES, {"bf16": "BF16"}, "Formats", GPU_LINES))
    trace = figure["data"][0]
    assert trace["type"] == "bar" and list(trace["x"]) == ["BF16"] * 3
    assert trace["marker"] == {"color": charts.MODEL_COLORS["gemma-4-31b"]}
    assert trace["hovertemplate"] == "%{x}: %{y:,.2f} GiB<extra>Gemma 4 31B</extra>"
    layout = figure["layout"]
    assert layout["barmode"] == "group" and layout["xaxis"]["title"] == {"text": "weight format"}
    assert len(layout["shapes"]) == 2
    _common_layout(layout, "closest", bottom_px=charts.PRECISION_MARGIN_BOTTOM_PX)


def test_a_format_some_model_has_no_bar_for_is_named_on_the_chart():
    frame = pd.DataFrame([
        {"model": "gemma-4-31b", "weight_format": "bf16", "total_bytes": 60 * BYTES_PER_GIB},
        {"model": "gemma-4-e2b", "weight_format": "bf16", "total_bytes": 10 * BYTES_PER_GIB},
        {"model": "gemma-4-e2b", "weight_format": "mxfp4-experts", "total_bytes": 9 * BYTES_PER_GIB},
    ])  # fmt: skip
    figure = charts.precision_bars(frame, NAMES, {"bf16": "BF16", "mxfp4-experts": "MXFP4 experts (gpt-oss)"}, "Formats")
    notes = [a.text for a in figure.layout.annotations]
    assert any("MXFP4 experts" in n and "Gemma 4 31B" in n for n in notes)
    # The axis shows the shortened name, distinct from every other.
    assert "MXFP4 experts" in list(figure.data[1].x)


def test_benchmark_bars_show_scores_and_which_way_is_better():
    frame = pd.DataFrame([{"benchmark": "MMLU", "unit": "%", "better": "higher", "gemma-4-31b": 85.2, "gemma-4-e2b": 60.0}])
    figure = _spec(charts.benchmark_bars(frame, "MMLU", NAMES))
    (trace,) = figure["data"]
    assert list(trace["x"]) == ["Gemma 4 31B", "Gemma 4 E2B"] and list(trace["text"]) == ["85.2", "60"]
    assert list(trace["marker"]["color"]) == [charts.MODEL_COLORS["gemma-4-31b"], charts.MODEL_COLORS["gemma-4-e2b"]]
    assert trace["textposition"] == "outside"
    layout = figure["layout"]
    assert layout["title"] == {"text": "MMLU (%, higher is better)"} and layout["showlegend"] is False
    _common_layout(layout, "closest")


def test_quality_vs_memory_joins_the_frontier_and_marks_gpus_vertically():
    points = pd.DataFrame({"label": ["31B bf16", "E2B bf16"], "model": ["gemma-4-31b", "gemma-4-e2b"],
                           "total_bytes": [60 * BYTES_PER_GIB, 10 * BYTES_PER_GIB], "quality": [1.0, 0.5]})  # fmt: skip
    figure = _spec(charts.quality_vs_memory(points, ["E2B bf16", "31B bf16"], NAMES, "Quality", GPU_LINES))
    *models, frontier = figure["data"]
    assert [trace["marker"] for trace in models] == [
        {"size": 10, "color": charts.MODEL_COLORS["gemma-4-31b"]}, {"size": 10, "color": charts.MODEL_COLORS["gemma-4-e2b"]},
    ]  # fmt: skip
    assert list(models[0]["text"]) == ["31B bf16"]
    assert frontier["name"] == "Pareto frontier" and frontier["line"] == {"color": charts.FRONTIER_COLOR, "dash": "dot", "width": 2}
    assert np.allclose(frontier["x"], [10, 60]) and frontier["hoverinfo"] == "skip"
    layout = figure["layout"]
    assert layout["xaxis"]["type"] == "log"
    # On a log axis plotly takes annotations in log10 units (75 drew the axis to 10^75) and shapes
    # in data units; tests/browser/test_export_geometry.py checks where both land in the SVG.
    assert [shape["x0"] for shape in layout["shapes"]] == [75, 40]
    assert np.allclose([note["x"] for note in layout["annotations"]], [np.log10(75), np.log10(40)])
    assert layout["shapes"][0]["yref"] == "paper"
    assert [note["text"] for note in layout["annotations"]] == ["H100 80GB", "2 x L4"]
    _common_layout(layout, "closest")


def test_throughput_lines_one_per_gpu_on_a_log_axis():
    frame = pd.DataFrame({"gpu_name": ["H100", "H100", "L4"], "concurrent_sequences": [1, 2, 1], "tokens/s": [10.0, 19.0, 3.0]})
    figure = _spec(charts.throughput_lines(frame, "tokens/s", "decode tokens/s", "Decode"))
    assert [trace["line"]["color"] for trace in figure["data"]] == charts.SERIES_COLORS[:2]
    assert figure["data"][0]["hovertemplate"] == "%{y:,.0f}<extra>H100</extra>"
    xaxis = figure["layout"]["xaxis"]
    assert xaxis["type"] == "log" and xaxis["title"] == {"text": "concurrent sequences"}
    _common_layout(figure["layout"])


def test_offloaded_points_continue_their_devices_line_dashed():
    frame = pd.DataFrame({
        "gpu_name": ["H100"] * 4 + ["4090"] * 2, "concurrent_sequences": [1, 2, 4, 8, 1, 2],
        "tokens/s": [500.0, 900.0, 1100.0, 40.0, 2.0, 2.5], "offload": [False, False, False, True, True, True],
    })  # fmt: skip
    traces = _spec(charts.throughput_lines(frame, "tokens/s", "decode tokens/s", "Decode"))["data"]
    assert [t["name"] for t in traces] == ["H100", "H100: part of the model in host RAM", "4090: part of the model in host RAM"]
    solid, dashed, only_offload = traces
    assert list(solid["x"]) == [1, 2, 4] and "dash" not in solid["line"]
    # The dashed part starts at the last on-device point (4 sequences), in the device's colour.
    assert list(dashed["x"]) == [4, 8] and dashed["line"]["dash"] == "dash"
    assert dashed["line"]["color"] == solid["line"]["color"] and dashed["legendgroup"] == solid["legendgroup"]
    assert list(only_offload["x"]) == [1, 2] and only_offload["line"]["color"] != solid["line"]["color"]


def test_predicted_vs_observed_marks_exact_at_one():
    rows = pd.DataFrame({"id": ["a", "b"], "kind": ["kv", "weights"], "ratio": [1.0, 0.98],
                         "observed": [2.0, 3.0], "predicted": [2.0, 2.94], "unit": ["MiB", "GB"]})  # fmt: skip
    figure = _spec(charts.predicted_vs_observed(rows))
    assert [trace["name"] for trace in figure["data"]] == ["kv", "weights"]
    assert [list(row) for row in figure["data"][1]["customdata"]] == [[3.0, 2.94, "GB"]]
    layout = figure["layout"]
    assert layout["shapes"][0]["y0"] == 1 and layout["shapes"][0]["line"] == {"color": "#80868b", "dash": "dot"}
    assert layout["xaxis"] == {"tickangle": -45, "title": {"text": "observation"}}
    _common_layout(layout, "closest", bottom_px=charts.ACCURACY_MARGIN_BOTTOM_PX)


def test_every_log_axis_spans_the_data_and_the_device_lines_and_no_more():
    """The axis range plotly draws (its full figure, computed by kaleido) from the data's smallest
    to largest value, device lines included, within a decade either side."""
    points = pd.DataFrame({"label": ["31B bf16", "E2B q4"], "model": ["gemma-4-31b", "gemma-4-e2b"],
                           "total_bytes": [60 * BYTES_PER_GIB, 3 * BYTES_PER_GIB], "quality": [1.0, 0.5]})  # fmt: skip
    quality = charts.quality_vs_memory(points, ["E2B q4", "31B bf16"], NAMES, "Quality", GPU_LINES).full_figure_for_development(warn=False)
    low, high = quality.layout.xaxis.range
    assert np.log10(3) - 1 < low <= np.log10(3) and np.log10(75) <= high < np.log10(75) + 1
    sequences = charts.memory_lines(_sweep_frame("concurrent_sequences"), "concurrent_sequences", "sequences", "t", NAMES, GPU_LINES, log_x=True, log_y=True)
    low, high = sequences.full_figure_for_development(warn=False).layout.yaxis.range
    assert low <= np.log10(1) and np.log10(75) <= high < np.log10(75) + 1
    assert sequences.layout.yaxis.type == "log"


def _labels(axis) -> list[str]:
    return list(axis.ticktext)


def test_log_axes_label_clean_values_only():
    # Sequences 1 to 256 (2.4 decades): 1-2-5 steps, written out, a little beyond each end.
    wide = charts.throughput_lines(pd.DataFrame({"gpu_name": ["H100"] * 3, "concurrent_sequences": [1, 16, 256], "t": [1.0, 2.0, 3.0]}), "t", "t", "t")
    assert wide.layout.xaxis.tickmode == "array"
    assert _labels(wide.layout.xaxis) == ["0.5", "1", "2", "5", "10", "20", "50", "100", "200", "500"]
    assert list(wide.layout.xaxis.tickvals) == [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]
    # Contexts 1,024 to 262,144 tokens: thousands as 'k'.
    contexts = charts.memory_lines(_sweep_frame("context_tokens").assign(context_tokens=lambda f: f["context_tokens"] * 1024),
                                   "context_tokens", "c", "t", NAMES, log_x=True)  # fmt: skip
    assert _labels(contexts.layout.xaxis) == ["500", "1k", "2k", "5k", "10k"]
    # Four decades or more: one label a decade.
    huge = charts.throughput_lines(pd.DataFrame({"gpu_name": ["H100"] * 2, "concurrent_sequences": [1, 10_000], "t": [1.0, 2.0]}), "t", "t", "t")
    assert _labels(huge.layout.xaxis) == ["1", "10", "100", "1k", "10k"]
    # Less than a decade still gets labels at each clean step.
    narrow = charts.throughput_lines(pd.DataFrame({"gpu_name": ["H100"] * 2, "concurrent_sequences": [2, 4], "t": [1.0, 2.0]}), "t", "t", "t")
    assert _labels(narrow.layout.xaxis) == ["1", "2", "5", "10"]


def test_every_source_on_the_accuracy_chart_has_its_own_colour():
    from core.calibrate import calibrate

    rows = pd.DataFrame([{"id": r.id, "kind": r.id.split("-")[0], "ratio": 1.0, "observed": 1.0, "predicted": 1.0, "unit": "GB"} for r in calibrate()])
    traces = charts.predicted_vs_observed(rows).data
    assert len(traces) == rows["kind"].nunique() >= 6
    assert len({t.marker.color for t in traces}) == len(traces)


def _contrast(color: str, background: str) -> float:
    """WCAG 2.1 contrast ratio (relative luminance of sRGB colours)."""

    def luminance(hex_color: str) -> float:
        channels = [int(hex_color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(color), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("background", ["#ffffff", "#0e1117"])  # Streamlit's light and dark backgrounds
def test_model_colours_read_on_the_light_and_the_dark_theme(background):
    # WCAG 2.1 success criterion 1.4.11: graphical objects need 3:1 against what is next to them.
    assert min(_contrast(c, background) for c in charts.MODEL_COLORS.values()) >= 3.0


@pytest.mark.parametrize("background", ["#ffffff", "#0e1117"])
def test_every_line_marker_and_part_colour_reads_on_both_themes(background):
    colours = [*charts.SERIES_COLORS, *charts.PART_COLORS.values(), charts.FRONTIER_COLOR]
    assert min(_contrast(c, background) for c in colours) >= 3.0


def test_series_colours_are_apart_from_the_models_and_each_other():
    series = charts.SERIES_COLORS
    assert len(set(series)) == len(series) and not set(series) & set(charts.MODEL_COLORS.values())


def test_the_theme_gives_models_the_same_colours_as_the_charts():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    for theme in (config["theme"], config["theme"]["light"], config["theme"]["dark"]):
        assert theme["chartCategoricalColors"][:4] == list(charts.MODEL_COLORS.values())


@pytest.mark.parametrize("background", ["#ffffff", "#0e1117"])
def test_every_theme_colour_reads_on_both_backgrounds(background):
    # Streamlit uses these for any chart the app does not colour itself.
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    for theme in (config["theme"], config["theme"]["light"], config["theme"]["dark"]):
        colours = theme["chartCategoricalColors"]
        assert len(set(colours)) == len(colours)
        assert min(_contrast(c, background) for c in colours) >= 3.0
