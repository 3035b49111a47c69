"""Quality trade-offs: the release benchmarks, and quality against memory with its Pareto frontier."""

import pandas as pd
import streamlit as st

from core.engines.registry import ENGINES
from core.fit import fit_matrix
from core.quality import benchmark_frame, pareto_frontier, quality_score
from ui import charts
from ui.export import scenario_line
from ui.loaders import catalog_or_stop
from ui.navigation import through_app
from ui.state import PageState, Param, choice
from ui.views import gpu_lines
from ui.widgets import EXPORT_SCENARIO_KEY, page_header, download_figure, download_table, scenario_params, scenario_sidebar

through_app()
catalog = catalog_or_stop(needs=("gpus", "benchmarks"))
benchmarks = [b.benchmark for b in catalog.benchmarks]
state = PageState(
    "quality",
    [
        *[p for p in scenario_params(catalog, many_models=False, gpu_mode="one") if p.name != "model"],
        Param("benchmark", benchmarks[0], choice(benchmarks)),
    ],
)
state.load()
scenario = scenario_sidebar(state, catalog, many_models=None, gpu_mode="one", show_format=False)
state.sync()
catalog = catalog.with_accelerators(scenario.devices)

request = scenario.request
names = {m.id: m.display_name for m in catalog.models}
format_names = {f.id: f.display_name for f in catalog.weight_formats}

page_header(
    "Quality trade-offs",
    state,
    "Release benchmarks of the instruction-tuned models (bf16). Quantised formats are assumed to "
    "keep these scores: the release measured bf16 only.",
)
# The memory chart's scenario on every export from this page (the caption is about the scores).
st.session_state[EXPORT_SCENARIO_KEY] = scenario_line(
    ["every model and weight format"], ENGINES[request.engine].display_name, None, request.context_tokens,
    request.concurrent_sequences, [f"{request.gpus} x {catalog.accelerator(g).name}" for g in scenario.gpus],
)

scores = benchmark_frame(catalog)
shown = scores.rename(columns=names)
st.dataframe(shown, hide_index=True, key="quality_table")
download_table(shown, "gemma4-benchmarks", "quality_table_csv")

st.selectbox("Benchmark", benchmarks, key=state.key("benchmark"), help="One benchmark's scores per model; OmniDocBench is an edit distance (lower is better).")
bars = charts.benchmark_bars(scores, state.value("benchmark"), names)
st.plotly_chart(bars, key="quality_bars")
download_figure(bars, "benchmark", "quality_bars")

rows = fit_matrix(request, catalog)
gpu = catalog.accelerator(scenario.gpus[0])
points = pd.DataFrame(
    {
        "label": f"{names[r.model]} · {format_names[r.weight_format]}",
        "model": r.model,
        "weight_format": r.weight_format,
        "total_bytes": r.total_bytes,
        "quality": quality_score(catalog, r.model),
        "fits": r.fits,
    }
    for r in rows
)
if points.empty:
    st.warning("No variant can run with these settings; change the engine or the context.")
    st.stop()
frontier = pareto_frontier(list(points[["label", "total_bytes", "quality"]].itertuples(index=False, name=None)))
scatter = charts.quality_vs_memory(
    points, frontier, names,
    f"Quality against memory at {request.context_tokens:,} tokens x {request.concurrent_sequences} ({ENGINES[request.engine].display_name})",
    gpu_lines(catalog, request, scenario.gpus),
)
st.plotly_chart(scatter, key="quality_scatter")
download_figure(scatter, "quality-vs-memory", "quality_scatter")
best = points[points["label"].isin(frontier)].sort_values("total_bytes")
st.markdown("**On the frontier** (no other option is both smaller and better):")
frontier_table = (
    best.assign(**{"memory (GiB)": (best["total_bytes"] / 2**30).round(2)})[["label", "memory (GiB)", "quality", "fits"]]
    .rename(columns={"fits": f"fits on {request.gpus} x {gpu.name}"})
)
st.dataframe(frontier_table, hide_index=True, key="quality_frontier")
download_table(frontier_table, "gemma4-quality-frontier", "quality_frontier_csv")
