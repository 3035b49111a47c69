"""The device-fit verdicts as a picture: runtime and format by model, coloured, the recommendation boxed."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.engines.registry import ENGINES
from core.fit import FitRow, Verdict
from core.units import BYTES_PER_GIB
from ui.charts import short_labels

# Traffic-light colours that read on light and dark backgrounds alike (and stay apart for the
# common red-green colour blindness: blue for a clean fit, not green).
VERDICT_COLORS: dict[Verdict, str] = {
    "fits": "#1a73e8",
    "tight": "#f9ab00",
    "fits_with_offload": "#e8710a",
    "does_not_fit": "#9aa0a6",
}
VERDICT_WORDS: dict[Verdict, str] = {
    "fits": "fits",
    "tight": "tight",
    "fits_with_offload": "with offload",
    "does_not_fit": "does not fit",
}
ROW_HEIGHT_PX = 26
# Room for the title above and the model names (with their quality) under the cells.
FRAME_HEIGHT_PX = 150


def _cell_text(row: FitRow) -> str:
    if row.verdict == "does_not_fit":
        return f"needs {row.shortfall_bytes / BYTES_PER_GIB:,.1f} GiB more"
    if row.verdict == "fits_with_offload" and row.offload is not None:
        return f"{row.offload.host_bytes / BYTES_PER_GIB:,.1f} GiB in RAM"
    return f"{row.headroom_bytes / BYTES_PER_GIB:,.1f} GiB free"


def verdict_heatmap(
    rows: Sequence[FitRow],
    model_labels: dict[str, str],
    format_names: dict[str, str],
    best: tuple[str, str, str] | None,
    title: str,
) -> go.Figure:
    """One row per runtime and weight format, one column per model (labelled with its quality),
    each cell coloured by verdict with the memory left or missing; `best` (model, format,
    engine) is boxed, and its runtime's rows come first so it shows without scrolling."""
    engines = list(dict.fromkeys(r.engine for r in rows))
    if best is not None:
        engines.remove(best[2])
        engines.insert(0, best[2])
    models = [m for m in model_labels if any(r.model == m for r in rows)]
    lines = list(dict.fromkeys((r.engine, r.weight_format) for e in engines for r in rows if r.engine == e))
    by_cell = {(r.engine, r.weight_format, r.model): r for r in rows}
    verdict_codes = {verdict: index for index, verdict in enumerate(VERDICT_COLORS)}
    z = np.full((len(lines), len(models)), np.nan)
    text = np.full((len(lines), len(models)), "", dtype=object)
    hover = np.full((len(lines), len(models)), "format does not apply", dtype=object)
    for i, (engine, weight_format) in enumerate(lines):
        for j, model in enumerate(models):
            row = by_cell.get((engine, weight_format, model))
            if row is None:
                continue
            z[i, j] = verdict_codes[row.verdict]
            text[i, j] = _cell_text(row)
            hover[i, j] = (
                f"{VERDICT_WORDS[row.verdict]}: needs {row.total_bytes / BYTES_PER_GIB:,.1f} of "
                f"{row.usable_bytes / BYTES_PER_GIB:,.1f} GiB; longest context {row.max_context_tokens:,} tokens"
            )
    y_labels = short_labels([f"{ENGINES[engine].short_name} · {format_names[weight_format]}" for engine, weight_format in lines])
    x_labels = [model_labels[m] for m in models]
    count = len(VERDICT_COLORS)
    # A stepped colour scale: each verdict code owns one band of [0, 1].
    scale = []
    for index, color in enumerate(VERDICT_COLORS.values()):
        scale += [[index / count, color], [(index + 1) / count, color]]
    shapes = []
    if best is not None and (best[2], best[1]) in lines and best[0] in models:
        i, j = lines.index((best[2], best[1])), models.index(best[0])
        shapes.append(
            dict(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5, line=dict(color="#d93025", width=4))
        )
    # A legend made of empty scatter traces: a heatmap's colour bar would read as a scale.
    legend = [
        dict(type="scatter", x=[None], y=[None], mode="markers", name=VERDICT_WORDS[verdict],
             marker=dict(size=12, symbol="square", color=color), showlegend=True)
        for verdict, color in VERDICT_COLORS.items()
    ]
    data = [
        dict(
            type="heatmap", z=z, x=x_labels, y=y_labels, text=text, texttemplate="%{text}", customdata=hover,
            hovertemplate="%{y} · %{x}<br>%{customdata}<extra></extra>", colorscale=scale, zmin=0, zmax=count,
            showscale=False, xgap=2, ygap=2, textfont=dict(color="#ffffff", size=11),
        ),
        *legend,
    ]
    layout = dict(
        # The title sits at the top of the figure, clear of the two-line model labels under it.
        title=dict(text=title, yref="container", y=1, yanchor="top", pad=dict(t=12)),
        height=FRAME_HEIGHT_PX + ROW_HEIGHT_PX * len(lines),
        margin=dict(l=10, r=10, t=95, b=40),
        xaxis=dict(side="top", automargin=True, showgrid=False, zeroline=False),
        yaxis=dict(autorange="reversed", automargin=True, showgrid=False, zeroline=False),
        legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0),
        shapes=shapes,
        hovermode="closest",
    )
    return go.Figure(data=data, layout=layout)
