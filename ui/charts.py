"""Plotly chart builders: one colour per model everywhere, GiB on every memory axis."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.units import BYTES_PER_GIB

# One colour per model across every chart (the first four of .streamlit/config.toml's
# chartCategoricalColors, in catalogue order).
# Each at least 3:1 against both the light background (#ffffff) and the dark one (#0e1117), the
# WCAG 2.1 minimum for graphics (1.4.11); the earlier green and dark blue fell to 3.8 and 4.2 on
# dark while reading 5.0 and 4.5 on light: these balance the two (tests/ui/test_charts.py).
MODEL_COLORS = {
    "gemma-4-e2b": "#4285f4",
    "gemma-4-e4b": "#e37400",
    "gemma-4-26b-a4b": "#1e8e3e",
    "gemma-4-31b": "#af5cf7",
}
# Everything else drawn as a line or marker (devices, sources of evidence, imported models): eight
# hues apart from the models', each at least 3:1 on both backgrounds too (the earlier yellow,
# cyan and dark grey read 1.9 and 2.5 on white, 3.1 on dark).
SERIES_COLORS = ["#d93025", "#00838f", "#e52592", "#9e7700", "#5c6bc0", "#8d6e63", "#6d7f00", "#7b8794", "#f4511e", "#00897b"]
FALLBACK_COLORS = SERIES_COLORS[:4]
PART_COLORS = {
    "Weights": "#7b8794",
    "KV cache, full attention": "#5c6bc0",
    "KV cache, sliding attention": "#00838f",
    "Activations": "#9e7700",
    "Runtime overhead": "#d93025",
}
# The Pareto frontier: a neutral line that reads on both themes (#3c4043 was 1.8:1 on dark).
FRONTIER_COLOR = "#7b8794"
# One colour and marker per source of evidence on the Accuracy chart: eight sources there, and
# the four fallback colours repeated red for two of them.
SOURCE_COLORS = SERIES_COLORS
SOURCE_SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down", "hexagon", "pentagon"]
# Format names (shortened) run to about 30 characters, slanted at 30 degrees.
PRECISION_MARGIN_BOTTOM_PX = 150
# Observation ids run to about 40 characters, slanted at 45 degrees.
ACCURACY_MARGIN_BOTTOM_PX = 230
GPU_LINE_DASHES = ["dash", "dot", "dashdot", "longdash", "longdashdot"]
# Without explicit fonts plotly falls back to the browser's: no web fonts are fetched (offline).
# No template here: Streamlit themes charts on screen (light or dark), and exports apply
# plotly_white themselves; setting a template per figure costs ~6 ms of deep copies each.
# The legend stands beside the plot, its top level with the plot's: a legend above the plot
# shares the top margin with the title and overlapped it in every export once either wrapped
# (tests/ui/test_export_geometry.py measures the exported SVG). Outside the plot, plotly widens
# the right margin to fit it.
LAYOUT = dict(
    margin=dict(l=60, r=20, t=60, b=60),
    legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02),
    hovermode="x unified",
)
GIB_AXIS_TITLE = "GiB (2^30 bytes)"

# Every figure is built in one go.Figure(data=..., layout=...) call from nested dicts and numpy
# arrays. Plotly validates each property once that way; add_trace / update_layout calls with
# magic-underscore names (marker_color, yaxis_title) re-parse property paths on every call, and
# pandas columns go through narwhals per array: together three times the cost (7 ms against
# 2 ms for the breakdown bar), paid on every rerun. The figures' JSON is the same either way.


# Imported models ('custom1-...', 'custom2-...'): one colour per slot, whatever else is shown.
CUSTOM_ID = re.compile(r"^custom([1-9])-")


def model_color(model_id: str, index: int = 0) -> str:
    if model_id in MODEL_COLORS:
        return MODEL_COLORS[model_id]
    slot = CUSTOM_ID.match(model_id)
    position = int(slot.group(1)) - 1 if slot else index
    return FALLBACK_COLORS[position % len(FALLBACK_COLORS)]


def _gib_array(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=float) / BYTES_PER_GIB


def _layout(
    title: str, *, x_title: str | None = None, y_title: str | None = None, hovermode: str = LAYOUT["hovermode"],
    log_x: Sequence[float] | np.ndarray | None = None, log_y: Sequence[float] | np.ndarray | None = None,
    **more: object,
) -> dict:
    """LAYOUT plus a title, axis titles and whatever else one chart sets, as one nested dict;
    log_x / log_y: the values shown on a log axis (they decide its tick labels)."""
    xaxis: dict = _log_axis(log_x) if log_x is not None else {}
    if x_title is not None:
        xaxis["title"] = dict(text=x_title)
    layout = {**LAYOUT, "title": dict(text=title), "hovermode": hovermode, **more}
    if xaxis:
        layout["xaxis"] = xaxis | layout.get("xaxis", {})
    yaxis: dict = _log_axis(log_y) if log_y is not None else {}
    if y_title is not None:
        yaxis["title"] = dict(text=y_title)
    if yaxis:
        layout["yaxis"] = yaxis | layout.get("yaxis", {})
    return layout


def _gpu_lines(lines: Sequence[tuple[str, float]], vertical: bool = False, log_axis: bool = False) -> dict:
    """Layout shapes and labels at each GPU's usable memory (GiB); none when there are no lines.
    On a log axis plotly places annotations in log10 units but shapes in data units (its
    annotation docs say to take the log; a shape at log10(80) was drawn at 1.9 GiB in the
    rendered SVG): an annotation at 80 drew the axis out to 10^80."""
    shapes, notes = [], []
    for index, (label, usable_bytes) in enumerate(lines):
        gib = usable_bytes / BYTES_PER_GIB
        note_at = math.log10(gib) if log_axis and gib > 0 else gib
        line = dict(color="#80868b", width=1.5, dash=GPU_LINE_DASHES[index % len(GPU_LINE_DASHES)])
        if vertical:
            shapes.append(dict(type="line", xref="x", yref="paper", x0=gib, x1=gib, y0=0, y1=1, line=line))
            notes.append(dict(x=note_at, y=0, xref="x", yref="paper", text=label, showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=11)))
        else:
            shapes.append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=gib, y1=gib, line=line))
            notes.append(dict(x=0, y=note_at, xref="paper", yref="y", text=f"{label}: {gib:,.1f} GiB usable", showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=11)))
    return dict(shapes=shapes, annotations=notes) if shapes else {}


# Over three decades or more a label per decade is enough; below that, 1-2-5 steps, so a small
# chart still has a few labels and none of plotly's abbreviated minor digits ('2 5 1000 2 5').
DECADES_ONLY_SPAN = 3
LOG_STEPS = (1, 2, 5)


def _log_axis(values: Sequence[float] | np.ndarray) -> dict:
    """A log axis with full labels at clean values only: whole decades (1, 10, 100, 1k) when the
    data span three or more, else 1-2-5 steps; labels written out ('200', '5k'), never plotly's
    small '2' and '5' between decades."""
    positive = [float(v) for v in values if v and v > 0]
    axis: dict = {"type": "log", "minor": {"showgrid": False}}
    if not positive:
        return axis
    low, high = min(positive), max(positive)
    steps = (1,) if math.log10(high / low) >= DECADES_ONLY_SPAN else LOG_STEPS
    ticks = [
        step * 10.0**exponent
        for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
        for step in steps
    ]
    # A little beyond the data too: plotly pads the range, and a label near each end helps.
    shown = [tick for tick in ticks if low / 2.5 <= tick <= high * 2.5]
    return axis | {"tickmode": "array", "tickvals": shown, "ticktext": [_tick_label(tick) for tick in shown]}


def _tick_label(value: float) -> str:
    """1 -> '1', 2000 -> '2k', 5e6 -> '5M', 0.5 -> '0.5' (SI prefixes, 1,000-based)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def breakdown_bar(rows: pd.DataFrame, title: str) -> go.Figure:
    """Stacked bars, one per model: rows have columns model, label and one per part (bytes)."""
    labels = rows["label"].tolist()
    bars = [
        dict(
            type="bar", x=labels, y=_gib_array(rows[part]), name=part, marker=dict(color=color),
            hovertemplate=f"{part}: %{{y:,.2f}} GiB<extra></extra>",
        )
        for part, color in PART_COLORS.items()
    ]
    return go.Figure(data=bars, layout=_layout(title, y_title=GIB_AXIS_TITLE, hovermode="closest", barmode="stack"))


def memory_lines(
    frame: pd.DataFrame,
    x: str,
    x_title: str,
    title: str,
    names: dict[str, str],
    gpu_lines: Sequence[tuple[str, float]] = (),
    log_x: bool = False,
    log_y: bool = False,
) -> go.Figure:
    """Total memory against `x`, one line per model (frame from core.sweep); log_y for memory
    that spans decades (sequences: 1 to 256 of them), where a linear axis flattens the GPU lines."""
    lines = [
        dict(
            type="scatter", x=part[x].to_numpy(), y=_gib_array(part["total_bytes"]), mode="lines+markers",
            marker=dict(size=4), name=names.get(model_id, model_id), line=dict(color=model_color(model_id, index)),
            hovertemplate="%{y:,.2f} GiB<extra>" + names.get(model_id, model_id) + "</extra>",
        )
        for index, (model_id, part) in enumerate(frame.groupby("model", sort=False))
    ]
    gib = _gib_array(frame["total_bytes"])
    shown_y = np.concatenate([gib, [usable / BYTES_PER_GIB for _, usable in gpu_lines]])
    layout = _layout(
        title, x_title=x_title, y_title=GIB_AXIS_TITLE, log_x=frame[x].to_numpy() if log_x else None,
        log_y=shown_y if log_y else None, **_gpu_lines(gpu_lines, log_axis=log_y),
    )  # fmt: skip
    return go.Figure(data=lines, layout=layout)


def precision_bars(
    frame: pd.DataFrame, names: dict[str, str], format_names: dict[str, str], title: str,
    gpu_lines: Sequence[tuple[str, float]] = (), missing_reasons: Mapping[str, str] | None = None,
) -> go.Figure:
    """Total memory per weight format, grouped by model. A note above the plot says why a format
    has no bar for some model: missing_reasons maps a format id to why (ui.cached.missing_reasons:
    experts-only formats on a dense model, a published file that exists for some models only)."""
    shown_formats = list(frame["weight_format"].unique())
    short_names = dict(zip(shown_formats, short_labels([format_names.get(f, f) for f in shown_formats])))
    bars = [
        dict(
            type="bar", x=[short_names[f] for f in part["weight_format"]], y=_gib_array(part["total_bytes"]),
            name=names.get(model_id, model_id), marker=dict(color=model_color(model_id, index)),
            hovertemplate="%{x}: %{y:,.2f} GiB<extra>" + names.get(model_id, model_id) + "</extra>",
        )
        for index, (model_id, part) in enumerate(frame.groupby("model", sort=False))
    ]
    present = set(zip(frame["model"], frame["weight_format"]))
    models = list(frame["model"].unique())
    # One line per reason, naming its formats: many formats share one (Unsloth's files).
    by_reason: dict[str, list[str]] = {}
    for weight_format in shown_formats:
        gone = [m for m in models if (m, weight_format) not in present]
        if gone:
            reason = (missing_reasons or {}).get(weight_format) or f"not for {', '.join(names.get(m, m) for m in gone)}"
            by_reason.setdefault(reason, []).append(short_names[weight_format])
    note_lines = [_plotly_text(f"No bar for {', '.join(formats)}: {reason}") for reason, formats in by_reason.items()]
    gpu = _gpu_lines(gpu_lines)
    notes = gpu.pop("annotations", [])
    if note_lines:
        notes = [*notes, dict(
            text="<br>".join(note_lines), xref="paper", yref="paper", x=0, y=1, xanchor="left", yanchor="bottom",
            showarrow=False, font=dict(size=10), align="left",
        )]  # fmt: skip
    layout = _layout(
        title, x_title="weight format", y_title=GIB_AXIS_TITLE, hovermode="closest", barmode="group",
        # Slanted, shortened names with room for them: the last label was cut off at the edge.
        xaxis=dict(tickangle=-30, automargin=True),
        # The note sits between the title and the plot: a line of room for each of its lines.
        margin=dict(l=60, r=20, t=60 + NOTE_LINE_PX * len(note_lines), b=PRECISION_MARGIN_BOTTOM_PX),
        **gpu, **({"annotations": notes} if notes else {}),
    )  # fmt: skip
    return go.Figure(data=bars, layout=layout)


NOTE_LINE_PX = 14


def _plotly_text(text: str) -> str:
    """Plain text in a plotly label, which renders a small HTML subset: a model name from an
    upload must not become a link or markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def short_labels(labels: Sequence[str]) -> list[str]:
    """Labels without their trailing '(...)' where that leaves them distinct: long format names
    ('Ollama library Q4_K_M (gemma4:e2b, :e4b, :26b, :31b)') crowd an axis on an 800 px screen."""
    short = [re.sub(r" \([^()]*\)$", "", label) for label in labels]
    return [s if short.count(s) == 1 else full for s, full in zip(short, labels)]


def benchmark_bars(frame: pd.DataFrame, benchmark: str, names: dict[str, str]) -> go.Figure:
    """One benchmark's scores per model (frame from core.quality.benchmark_frame)."""
    row = frame[frame["benchmark"] == benchmark].iloc[0]
    model_ids = [m for m in names if m in frame.columns]
    bar = dict(
        type="bar",
        x=[names[m] for m in model_ids],
        y=[row[m] for m in model_ids],
        marker=dict(color=[model_color(m, i) for i, m in enumerate(model_ids)]),
        text=[f"{row[m]:g}" for m in model_ids],
        textposition="outside",
        hovertemplate="%{x}: %{y:g}<extra></extra>",
    )
    arrow = "higher is better" if row["better"] == "higher" else "lower is better"
    layout = _layout(f"{benchmark} ({row['unit']}, {arrow})", y_title=row["unit"], hovermode="closest", showlegend=False)
    return go.Figure(data=[bar], layout=layout)


def quality_vs_memory(
    points: pd.DataFrame, frontier: Sequence[str], names: dict[str, str], title: str,
    gpu_lines: Sequence[tuple[str, float]] = (),
) -> go.Figure:
    """Scatter of quality against memory (points: label, model, total_bytes, quality), with the
    Pareto frontier joined by a line and GPU memory as vertical lines."""
    traces = [
        dict(
            type="scatter", x=_gib_array(part["total_bytes"]), y=part["quality"].to_numpy(), mode="markers",
            marker=dict(size=10, color=model_color(model_id, index)), name=names.get(model_id, model_id),
            text=part["label"].tolist(), hovertemplate="%{text}<br>%{x:,.1f} GiB, quality %{y:.3f}<extra></extra>",
        )
        for index, (model_id, part) in enumerate(points.groupby("model", sort=False))
    ]
    best = points.set_index("label").loc[list(frontier)]
    traces.append(dict(
        type="scatter", x=_gib_array(best["total_bytes"]), y=best["quality"].to_numpy(), mode="lines",
        name="Pareto frontier", line=dict(color=FRONTIER_COLOR, dash="dot", width=2), hoverinfo="skip",
    ))  # fmt: skip
    layout = _layout(
        title, x_title="total memory, GiB (2^30 bytes)", y_title="quality (1 = best on every benchmark)",
        hovermode="closest", log_x=np.concatenate([_gib_array(points["total_bytes"]), [u / BYTES_PER_GIB for _, u in gpu_lines]]),
        **_gpu_lines(gpu_lines, vertical=True, log_axis=True),
    )  # fmt: skip
    return go.Figure(data=traces, layout=layout)


def throughput_lines(frame: pd.DataFrame, y: str, y_title: str, title: str) -> go.Figure:
    """A throughput figure against concurrent sequences, one line per GPU (frame: gpu_name,
    concurrent_sequences, y, and optionally `offload`). Points where part of the model runs from
    host memory continue the device's line dashed, under their own legend entry: they are
    possible but slow, and read as such rather than as a collapse of the device."""
    offload = frame["offload"] if "offload" in frame else pd.Series(False, index=frame.index)
    lines = []
    for index, (gpu, part) in enumerate(frame.groupby("gpu_name", sort=False)):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        moved = offload.loc[part.index].to_numpy(dtype=bool)
        on_device, in_host = part[~moved], part[moved]
        if not on_device.empty:
            lines.append(dict(
                type="scatter", x=on_device["concurrent_sequences"].to_numpy(), y=on_device[y].to_numpy(),
                mode="lines+markers", name=gpu, legendgroup=gpu, line=dict(color=color),
                hovertemplate="%{y:,.0f}<extra>" + gpu + "</extra>",
            ))  # fmt: skip
        if not in_host.empty:
            # Joined to the last on-device point, so the line visibly continues into offload.
            dashed = pd.concat([on_device.tail(1), in_host])
            label = f"{gpu}: part of the model in host RAM"
            lines.append(dict(
                type="scatter", x=dashed["concurrent_sequences"].to_numpy(), y=dashed[y].to_numpy(),
                mode="lines+markers", name=label, legendgroup=gpu, line=dict(color=color, dash="dash"),
                marker=dict(symbol="circle-open"), hovertemplate="%{y:,.0f}<extra>" + label + "</extra>",
            ))  # fmt: skip
    layout = _layout(title, x_title="concurrent sequences", y_title=y_title, log_x=frame["concurrent_sequences"].to_numpy())
    return go.Figure(data=lines, layout=layout)


def predicted_vs_observed(rows: pd.DataFrame) -> go.Figure:
    """Each observation as predicted / observed (1 = exact), grouped by what was observed."""
    points = [
        dict(
            type="scatter", x=part["id"].tolist(), y=part["ratio"].to_numpy(), mode="markers", name=kind,
            marker=dict(size=11, color=SOURCE_COLORS[index % len(SOURCE_COLORS)], symbol=SOURCE_SYMBOLS[index % len(SOURCE_SYMBOLS)]),
            customdata=part[["observed", "predicted", "unit"]].to_numpy(),
            hovertemplate="%{x}<br>observed %{customdata[0]:,.4g} %{customdata[2]}<br>"
            "predicted %{customdata[1]:,.4g}<br>ratio %{y:.4f}<extra></extra>",
        )
        for index, (kind, part) in enumerate(rows.groupby("kind", sort=False))
    ]
    exact = dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=1, y1=1, line=dict(color="#80868b", dash="dot"))
    layout = _layout(
        "Predicted / observed (1.00 = exact)", x_title="observation", y_title="predicted / observed",
        hovermode="closest", shapes=[exact], xaxis=dict(tickangle=-45),
        # Room for the slanted observation ids within the margin itself, so an export's footer
        # stamp (hung below that margin) never meets them.
        margin=dict(l=60, r=20, t=60, b=ACCURACY_MARGIN_BOTTOM_PX),
    )  # fmt: skip
    return go.Figure(data=points, layout=layout)
