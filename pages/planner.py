"""Memory planner: the breakdown for a scenario, and memory against context, sequences and precision."""

from datetime import datetime, timezone

import streamlit as st

from core.engines.registry import ENGINES
from core.estimate import PlanningError, estimate
from core.fit import fit
from ui import charts
from ui.cached import context_chart, sequence_and_precision_charts
from ui.export import PlanningSummary, export_stamp, scenario_line
from ui.custom import custom_models_sidebar, custom_param, with_custom_models
from ui.loaders import catalog_or_stop
from ui.navigation import through_app
from ui import untrusted
from ui.state import PageState
from ui.views import breakdown_rows, breakdown_table_gib, fit_rows, gpu_lines, why_we_differ
from ui.widgets import (
    EXPORT_SCENARIO_KEY,
    download_figure,
    download_table,
    launch_or_reason,
    page_header,
    scenario_params,
    scenario_sidebar,
    show_launch,
)

through_app()
gemma = catalog_or_stop(needs=("gpus",))
state = PageState("planner", [*scenario_params(gemma, many_models=True, gpu_mode="many"), custom_param()])
state.load()
catalog, custom, custom_ids = with_custom_models(state, gemma)
scenario = scenario_sidebar(state, gemma, many_models=True, gpu_mode="many")
custom_models_sidebar(state, catalog)
state.sync()
catalog = catalog.with_accelerators(scenario.devices)

names = {m.id: m.display_name for m in catalog.models}
format_names = {f.id: f.display_name for f in catalog.weight_formats}
request = scenario.request

runtime_name = ENGINES[request.engine].display_name
device_names = [f"{request.gpus} x {catalog.accelerator(g).name}" for g in scenario.gpus]
page_header(
    "Memory planner",
    state,
    f"{runtime_name} · {format_names[request.weight_format]} weights · {request.kv_cache_dtype} "
    f"KV cache · {request.context_tokens:,} tokens x {request.concurrent_sequences} sequence(s) · "
    "sizes in GiB (2^30 bytes)",
)
# Exported charts are stamped with the whole scenario (models and devices too), not the caption.
scenario_text = scenario_line(
    [names[m] for m in [*scenario.models, *custom_ids]], runtime_name, format_names[request.weight_format],
    request.context_tokens, request.concurrent_sequences, device_names,
)
st.session_state[EXPORT_SCENARIO_KEY] = scenario_text
if not scenario.models and not custom_ids:
    st.info("Choose at least one model in the sidebar.", icon=":material/info:")
    st.stop()

estimates = []
for model_id in [*scenario.models, *custom_ids]:
    try:
        estimates.append(estimate(scenario.with_model(model_id), catalog))
    except PlanningError as error:
        untrusted.error(f"{names[model_id]}: {error}")
if not estimates:
    st.stop()

rows = breakdown_rows(estimates, names)
metric_columns = st.columns(len(estimates))
for column, result in zip(metric_columns, estimates):
    column.metric(
        untrusted.markdown_literal(names[result.model]),
        f"{result.total_bytes / 2**30:,.2f} GiB",
        f"naive calculator: {result.naive_total_bytes / 2**30:,.1f} GiB",
        delta_color="off",
        delta_arrow="off",  # "naive calculator: X" is a comparison, not growth
        help="Total on the accelerator(s): weights + KV cache + activations + runtime overhead. "
        "Below, what a parameters x bytes x 1.2 calculator with an all-full-attention KV cache says.",
    )

breakdown_figure = charts.breakdown_bar(rows, "Memory breakdown")
st.plotly_chart(breakdown_figure, key="planner_breakdown_chart")
download_figure(breakdown_figure, "memory-breakdown", "planner_breakdown")
table = breakdown_table_gib(rows)
st.dataframe(table, hide_index=True, key="planner_breakdown_table")
download_table(table, "memory-breakdown", "planner_breakdown_csv")

fits = []
for result in estimates:
    for gpu in scenario.gpus:
        try:
            fits.append((names[result.model], gpu, fit(scenario.with_model(result.model, gpu=gpu), catalog)))
        except PlanningError as error:
            untrusted.warning(f"{names[result.model]} on {gpu}: {error}")
if fits:
    st.subheader("Fit on the chosen GPUs")
    fit_table = fit_rows(fits, catalog)
    st.dataframe(fit_table, hide_index=True, key="planner_fit_table")
    download_table(fit_table, "gpu-fit", "planner_fit_csv")

# Each model's command on the first chosen device (the runtime's own defaults where no device is chosen).
first_gpu = scenario.gpus[0] if scenario.gpus else None
launches = {}
for result in estimates:
    plan = scenario.with_model(result.model, gpu=first_gpu) if first_gpu else scenario.with_model(result.model)
    plan_fit = next((f for label, g, f in fits if g == first_gpu and label == names[result.model]), None)
    launches[names[result.model]] = launch_or_reason(plan, result, catalog, plan_fit)
st.subheader("Start it: the launch command" + (f" on {untrusted.markdown_literal(device_names[0])}" if first_gpu else ""))
# Tab labels are Markdown, and an imported model's name comes from a link: shown literally.
launch_tabs = st.tabs([untrusted.markdown_literal(name) for name in launches]) if len(launches) > 1 else [st.container()]
for tab, launch in zip(launch_tabs, launches.values()):
    with tab:
        show_launch(launch)

lines = gpu_lines(catalog, request, scenario.gpus)
models = [e.model for e in estimates]
try:
    context_figure = context_chart(tuple(models), request.model_copy(update={"context_tokens": 1}), tuple(lines), custom)
    sequences_figure, precision_figure = sequence_and_precision_charts(tuple(models), request, tuple(lines), custom)
except PlanningError as error:
    untrusted.error(error)
    st.stop()
tabs = st.tabs(["Against context", "Against sequences", "Across precisions"])
for tab, figure, stem in (
    (tabs[0], context_figure, "memory-vs-context"),
    (tabs[1], sequences_figure, "memory-vs-sequences"),
    (tabs[2], precision_figure, "memory-vs-precision"),
):
    with tab:
        st.plotly_chart(figure, key=f"planner_{stem}")
        download_figure(figure, stem, f"planner_{stem}")

st.subheader("Why a naive calculator gets Gemma 4 wrong")
naive_columns = st.columns(len(estimates))
for column, result in zip(naive_columns, estimates):
    kv = max(result.kv_cache_bytes, 1)
    with column:
        st.markdown(f"**{untrusted.markdown_literal(names[result.model])}**")
        st.markdown(
            f"KV cache: **{result.kv_cache_bytes / 2**30:,.2f} GiB** here, "
            f"{result.naive_kv_cache_bytes / 2**30:,.2f} GiB if every layer were full attention "
            f"with no sharing ({result.naive_kv_cache_bytes / kv:,.1f}x)."
        )
        for line in why_we_differ(catalog, result.model):
            st.markdown(f"- {untrusted.markdown_literal(line)}")
for result in estimates:
    if result.engine_report.get("log_lines"):
        with st.expander(f"What {ENGINES[result.engine].display_name} should print at start-up: {untrusted.markdown_literal(names[result.model])}"):
            st.code("\n".join(result.engine_report["log_lines"]), language=None)

kv_names = {k.id: k.display_name for k in catalog.kv_cache_types}
inputs = {
    "models": ", ".join(names[m] for m in models),
    "runtime": runtime_name,
    "weight format": format_names[request.weight_format],
    "KV cache": kv_names.get(request.kv_cache_dtype, request.kv_cache_dtype),
    "context tokens per sequence": f"{request.context_tokens:,}",
    "concurrent sequences": f"{request.concurrent_sequences:,}",
    "images x budget": f"{request.images} x {request.image_tokens}",
    "audio seconds": f"{request.audio_seconds:g}",
    "thinking tokens": f"{request.thinking_tokens:,}",
    "devices": ", ".join(device_names) or "none",
    "link": state.link(),
}
if request.engine in ("vllm", "vllm-metal"):
    # vLLM claims this share of every GPU at start-up: it sets the "usable" memory of every verdict.
    share = ENGINES[request.engine].utilization(request.engine_settings)  # type: ignore[attr-defined]
    inputs["usable memory"] = f"{ENGINES[request.engine].short_name} gpu_memory_utilization {share:g} of each GPU"
verdict_lines = [
    f"{label} on {result.gpus} x {catalog.accelerator(row_gpu).name}: {result.verdict.replace('_', ' ')}, "
    + (f"headroom {result.headroom_bytes / 2**30:,.2f} GiB" if result.fits else f"short by {result.shortfall_bytes / 2**30:,.2f} GiB")
    + f", longest context {result.max_context_tokens:,} tokens, "
    f"at most {result.max_concurrent_sequences:,} sequences"
    for label, row_gpu, result in fits
]
summary_figures = {
    "Memory breakdown": breakdown_figure, "Memory against context": context_figure,
    "Memory against concurrent sequences": sequences_figure, "Memory across weight formats": precision_figure,
}
summary_stamp = export_stamp(scenario_text, inputs["link"], datetime.now(timezone.utc).strftime("%Y-%m-%d"))


summary = PlanningSummary(
    "Gemma 4 memory plan", inputs, table, verdict_lines, summary_figures,
    datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), summary_stamp,
    {name: (launch.command, launch.language) for name, launch in launches.items() if not isinstance(launch, str)},
)


def planning_summary_files() -> bytes:
    from ui.export import planning_summary_zip

    return planning_summary_zip(summary)


def planning_report() -> str:
    from ui.export import planning_report_html

    return planning_report_html(summary)


with st.container(horizontal=True, gap="small"):
    st.download_button(
        "Planning summary (Markdown and chart images, zip)", data=planning_summary_files, file_name="gemma4-memory-plan.zip",
        mime="application/zip", key="planner_summary", icon=":material/description:", on_click="ignore",
        help="summary.md with the inputs, the breakdown table and the fit verdicts, and the charts as PNG files beside it "
        "(GitHub and wikis show them; they strip images embedded as data)",
    )
    st.download_button(
        "Planning report (HTML)", data=planning_report, file_name="gemma4-memory-plan.html", mime="text/html",
        key="planner_report", icon=":material/article:", on_click="ignore",
        help="One self-contained page with the same content and interactive charts; opens offline",
    )
