"""Plotly chart builders: one colour per model everywhere, GiB on every memory axis."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from core.units import BYTES_PER_GIB

# One colour per model across every chart (the first four of .streamlit/config.toml's
# chartCategoricalColors, in catalogue order).
MODEL_COLORS = {
    "gemma-4-e2b": "#1a73e8",
    "gemma-4-e4b": "#e8710a",
    "gemma-4-26b-a4b": "#188038",
    "gemma-4-31b": "#a142f4",
}
FALLBACK_COLORS = ["#d93025", "#12b5cb", "#f9ab00", "#5f6368"]
PART_COLORS = {
    "Weights": "#5f6368",
    "KV cache, full attention": "#1a73e8",
    "KV cache, sliding attention": "#12b5cb",
    "Activations": "#f9ab00",
    "Runtime overhead": "#d93025",
}
GPU_LINE_DASHES = ["dash", "dot", "dashdot", "longdash", "longdashdot"]
# Without explicit fonts plotly falls back to the browser's: no web fonts are fetched (offline).
# No template here: Streamlit themes charts on screen (light or dark), and exports apply
# plotly_white themselves; setting a template per figure costs ~6 ms of deep copies each.
LAYOUT = dict(
    margin=dict(l=60, r=20, t=60, b=60),
    legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    hovermode="x unified",
)


# Imported models ('custom1-...', 'custom2-...'): one colour per slot, whatever else is shown.
CUSTOM_ID = re.compile(r"^custom([1-9])-")


def model_color(model_id: str, index: int = 0) -> str:
    if model_id in MODEL_COLORS:
        return MODEL_COLORS[model_id]
    slot = CUSTOM_ID.match(model_id)
    position = int(slot.group(1)) - 1 if slot else index
    return FALLBACK_COLORS[position % len(FALLBACK_COLORS)]


def gib(values: pd.Series | float) -> pd.Series | float:
    return values / BYTES_PER_GIB


def _gpu_lines(fig: go.Figure, lines: Sequence[tuple[str, float]], vertical: bool = False) -> None:
    """Lines at each GPU's usable memory (GiB), labelled; one layout update (add_hline costs
    ~9 ms a line in plotly)."""
    shapes, notes = [], []
    for index, (label, usable_bytes) in enumerate(lines):
        at = usable_bytes / BYTES_PER_GIB
        line = dict(color="#80868b", width=1.5, dash=GPU_LINE_DASHES[index % len(GPU_LINE_DASHES)])
        if vertical:
            shapes.append(dict(type="line", xref="x", yref="paper", x0=at, x1=at, y0=0, y1=1, line=line))
            notes.append(dict(x=at, y=0, xref="x", yref="paper", text=label, showarrow=False, xanchor="left", yanchor="bottom", font_size=11))
        else:
            shapes.append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=at, y1=at, line=line))
            notes.append(dict(x=0, y=at, xref="paper", yref="y", text=f"{label}: {at:,.1f} GiB usable", showarrow=False, xanchor="left", yanchor="bottom", font_size=11))
    if shapes:
        fig.update_layout(shapes=shapes, annotations=notes)


def breakdown_bar(rows: pd.DataFrame, title: str) -> go.Figure:
    """Stacked bars, one per model: rows have columns model, label and one per part (bytes)."""
    fig = go.Figure()
    for part, color in PART_COLORS.items():
        fig.add_bar(
            x=rows["label"],
            y=gib(rows[part]),
            name=part,
            marker_color=color,
            hovertemplate=f"{part}: %{{y:,.2f}} GiB<extra></extra>",
        )
    fig.update_layout(barmode="stack", title=title, yaxis_title="GiB (2^30 bytes)", **LAYOUT)
    fig.update_layout(hovermode="closest")
    return fig


def memory_lines(
    frame: pd.DataFrame,
    x: str,
    x_title: str,
    title: str,
    names: dict[str, str],
    gpu_lines: Sequence[tuple[str, float]] = (),
    log_x: bool = False,
) -> go.Figure:
    """Total memory against `x`, one line per model (frame from core.sweep)."""
    fig = go.Figure()
    for index, (model_id, part) in enumerate(frame.groupby("model", sort=False)):
        fig.add_scatter(
            x=part[x],
            y=gib(part["total_bytes"]),
            mode="lines+markers",
            marker_size=4,
            name=names.get(model_id, model_id),
            line_color=model_color(model_id, index),
            hovertemplate="%{y:,.2f} GiB<extra>" + names.get(model_id, model_id) + "</extra>",
        )
    _gpu_lines(fig, gpu_lines)
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title="GiB (2^30 bytes)", **LAYOUT)
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def precision_bars(
    frame: pd.DataFrame, names: dict[str, str], format_names: dict[str, str], title: str,
    gpu_lines: Sequence[tuple[str, float]] = (),
) -> go.Figure:
    """Total memory per weight format, grouped by model."""
    fig = go.Figure()
    for index, (model_id, part) in enumerate(frame.groupby("model", sort=False)):
        fig.add_bar(
            x=[format_names.get(f, f) for f in part["weight_format"]],
            y=gib(part["total_bytes"]),
            name=names.get(model_id, model_id),
            marker_color=model_color(model_id, index),
            hovertemplate="%{x}: %{y:,.2f} GiB<extra>" + names.get(model_id, model_id) + "</extra>",
        )
    _gpu_lines(fig, gpu_lines)
    fig.update_layout(barmode="group", title=title, xaxis_title="weight format", yaxis_title="GiB (2^30 bytes)", **LAYOUT)
    fig.update_layout(hovermode="closest")
    return fig


def benchmark_bars(frame: pd.DataFrame, benchmark: str, names: dict[str, str]) -> go.Figure:
    """One benchmark's scores per model (frame from core.quality.benchmark_frame)."""
    row = frame[frame["benchmark"] == benchmark].iloc[0]
    model_ids = [m for m in names if m in frame.columns]
    fig = go.Figure(
        go.Bar(
            x=[names[m] for m in model_ids],
            y=[row[m] for m in model_ids],
            marker_color=[model_color(m, i) for i, m in enumerate(model_ids)],
            text=[f"{row[m]:g}" for m in model_ids],
            textposition="outside",
            hovertemplate="%{x}: %{y:g}<extra></extra>",
        )
    )
    arrow = "higher is better" if row["better"] == "higher" else "lower is better"
    fig.update_layout(title=f"{benchmark} ({row['unit']}, {arrow})", yaxis_title=row["unit"], **LAYOUT)
    fig.update_layout(hovermode="closest", showlegend=False)
    return fig


def quality_vs_memory(
    points: pd.DataFrame, frontier: Sequence[str], names: dict[str, str], title: str,
    gpu_lines: Sequence[tuple[str, float]] = (),
) -> go.Figure:
    """Scatter of quality against memory (points: label, model, total_bytes, quality), with the
    Pareto frontier joined by a line and GPU memory as vertical lines."""
    fig = go.Figure()
    for index, (model_id, part) in enumerate(points.groupby("model", sort=False)):
        fig.add_scatter(
            x=gib(part["total_bytes"]),
            y=part["quality"],
            mode="markers",
            marker=dict(size=10, color=model_color(model_id, index)),
            name=names.get(model_id, model_id),
            text=part["label"],
            hovertemplate="%{text}<br>%{x:,.1f} GiB, quality %{y:.3f}<extra></extra>",
        )
    best = points.set_index("label").loc[list(frontier)]
    fig.add_scatter(
        x=gib(best["total_bytes"]), y=best["quality"], mode="lines", name="Pareto frontier",
        line=dict(color="#3c4043", dash="dot"), hoverinfo="skip",
    )
    _gpu_lines(fig, gpu_lines, vertical=True)
    fig.update_layout(title=title, xaxis_title="total memory, GiB (2^30 bytes)", yaxis_title="quality (1 = best on every benchmark)", **LAYOUT)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(type="log")
    return fig


def throughput_lines(frame: pd.DataFrame, y: str, y_title: str, title: str) -> go.Figure:
    """A throughput figure against concurrent sequences, one line per GPU (frame: gpu, sequences, y)."""
    fig = go.Figure()
    for index, (gpu, part) in enumerate(frame.groupby("gpu_name", sort=False)):
        fig.add_scatter(
            x=part["concurrent_sequences"], y=part[y], mode="lines+markers", name=gpu,
            line_color=FALLBACK_COLORS[index % len(FALLBACK_COLORS)] if index >= 0 else None,
            hovertemplate="%{y:,.0f}<extra>" + gpu + "</extra>",
        )
    fig.update_layout(title=title, xaxis_title="concurrent sequences", yaxis_title=y_title, **LAYOUT)
    fig.update_xaxes(type="log")
    return fig


def predicted_vs_observed(rows: pd.DataFrame) -> go.Figure:
    """Each observation as predicted / observed (1 = exact), grouped by what was observed."""
    fig = go.Figure()
    for index, (kind, part) in enumerate(rows.groupby("kind", sort=False)):
        fig.add_scatter(
            x=part["id"], y=part["ratio"], mode="markers", name=kind,
            marker=dict(size=11, color=FALLBACK_COLORS[index % len(FALLBACK_COLORS)]),
            customdata=part[["observed", "predicted", "unit"]],
            hovertemplate="%{x}<br>observed %{customdata[0]:,.4g} %{customdata[2]}<br>"
            "predicted %{customdata[1]:,.4g}<br>ratio %{y:.4f}<extra></extra>",
        )
    fig.update_layout(shapes=[dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=1, y1=1, line=dict(color="#80868b", dash="dot"))])
    fig.update_layout(title="Predicted / observed (1.00 = exact)", yaxis_title="predicted / observed", xaxis_title="observation", **LAYOUT)
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(tickangle=-45)
    return fig
