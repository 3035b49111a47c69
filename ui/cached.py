"""The planner's sweep charts: the context chart cached per scenario (bounded), the others built per run."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.devices import TYPED_DEVICE_ID
from core.engines.registry import ENGINES
from core.estimate import MemoryRequest
from core.sweep import context_grid, sweep
from ui import charts
from ui.loaders import catalog

SEQUENCE_GRID = [1, 2, 4, 8, 16, 32, 64, 128, 256]
# Scenarios people are exploring now, not every one ever seen. A cached context chart holds
# ~46 KB and ~200 objects that Streamlit's collection after every run walks again (ui/heap.py
# freezes only the import-made heap): 256 of them were 12 MB and 5 ms a rerun, 32 are 0.3 ms.
# A miss costs a sweep and a figure, ~4 ms.
CACHE_ENTRIES = 32


def _sweep_options(request: MemoryRequest, custom: tuple[str, ...]) -> dict:
    return dict(
        engine=request.engine,
        images=request.images,
        image_tokens=request.image_tokens,
        audio_seconds=request.audio_seconds,
        thinking_tokens=request.thinking_tokens,
        ple_on_host=request.ple_on_host,
        # A typed-in device is not in the cached catalogue (nor in this cache's key): the charts
        # draw its memory as a line, and the sweep sizes for a generic GPU.
        gpu=request.gpu if request.gpu != TYPED_DEVICE_ID else None,
        gpus=request.gpus,
        engine_settings=request.engine_settings,
        catalog=catalog(custom),
    )


def _names(custom: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    return (
        {m.id: m.display_name for m in catalog(custom).models},
        {f.id: f.display_name for f in catalog().weight_formats},
    )


# cache_resource hands back the same figure (no copy per rerun): pages only render it, and
# exports work on a copy (ui.export.for_export).
@st.cache_resource(max_entries=CACHE_ENTRIES, show_spinner=False)
def context_chart(
    models: tuple[str, ...], request: MemoryRequest, lines: tuple[tuple[str, float], ...], custom: tuple[str, ...] = ()
) -> go.Figure:
    """Memory against context: independent of the request's own context, so a context change
    reuses it. `custom`: the page's imported models (ui.custom), which `models` may name."""
    key_request = request.model_copy(update={"context_tokens": 1})
    names, _ = _names(custom)
    longest = max(catalog(custom).model(m).max_context_tokens for m in models)
    frame = sweep(
        list(models), [key_request.weight_format], [key_request.kv_cache_dtype], context_grid(longest),
        [key_request.concurrent_sequences], **_sweep_options(key_request, custom),
    )
    return charts.memory_lines(
        frame, "context_tokens", "context tokens per sequence (log scale)",
        f"Memory against context ({key_request.concurrent_sequences} sequence(s))", names, lines, log_x=True,
    )


def sequence_and_precision_charts(
    models: tuple[str, ...], request: MemoryRequest, lines: tuple[tuple[str, float], ...], custom: tuple[str, ...] = ()
) -> tuple[go.Figure, go.Figure]:
    """Memory against concurrent sequences and across weight formats, at the request's context.

    Built on every run (two small sweeps and two figures), not cached: both depend on the
    context, so a context change missed any cache, and each cached pair held ~93 KB and ~420
    objects that Streamlit's collection after every run walked again (256 of them: +24 MiB)."""
    names, format_names = _names(custom)
    options = _sweep_options(request, custom)
    by_sequences = sweep(list(models), [request.weight_format], [request.kv_cache_dtype], [request.context_tokens], SEQUENCE_GRID, **options)
    by_precision = sweep(
        list(models), [f.id for f in catalog().weight_formats], [request.kv_cache_dtype], [request.context_tokens],
        [request.concurrent_sequences], only_applicable_formats=True, **options,
    )
    sequences = charts.memory_lines(
        by_sequences, "concurrent_sequences", "concurrent sequences (log scale)",
        f"Memory against concurrent sequences ({request.context_tokens:,} tokens each)", names, lines, log_x=True, log_y=True,
    )
    precision = charts.precision_bars(
        by_precision, names, format_names, f"Memory across weight formats ({ENGINES[request.engine].display_name})", lines,
        missing_reasons(by_precision, custom, names),
    )
    return sequences, precision


def missing_reasons(frame: pd.DataFrame, custom: tuple[str, ...], names: dict[str, str]) -> dict[str, str]:
    """Why a format shown for some models has no bar for the others, by format id (the sweep
    leaves out formats that do not apply: WeightFormat.applies_to)."""
    models = catalog(custom)
    present = set(zip(frame["model"], frame["weight_format"]))
    shown = list(frame["model"].unique())
    reasons = {}
    for format_id in frame["weight_format"].unique():
        gone = [m for m in shown if (m, format_id) not in present]
        if not gone:
            continue
        weight_format = models.weight_format(format_id)
        listed = ", ".join(names.get(m, m) for m in gone)
        if weight_format.published_files:
            reasons[format_id] = f"published as files for some models only, none for {listed}"
        elif not any(weight_format.applies_to(models.model(m)) for m in gone):
            reasons[format_id] = f"it changes only mixture-of-experts layers, and {listed} are dense (it would repeat BF16)"
        else:
            reasons[format_id] = f"not run for {listed}"
    return reasons
