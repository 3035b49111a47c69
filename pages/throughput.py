"""Throughput and cost: decode and prefill speed from bandwidth and compute, and $ per million tokens."""

import pandas as pd
import streamlit as st

from core.engines.registry import ENGINES
from core.estimate import PlanningError
from core.fit import fit
from core.throughput import ThroughputAssumptions, throughput
from ui import charts
from ui.export import scenario_line
from ui.loaders import catalog_or_stop
from ui.navigation import through_app
from ui import untrusted
from ui.state import PageState, Param, number
from ui.widgets import EXPORT_SCENARIO_KEY, page_header, download_figure, download_table, scenario_params, scenario_sidebar

SEQUENCE_GRID = [1, 2, 4, 8, 16, 32, 64, 128, 256]

through_app()
catalog = catalog_or_stop(needs=("gpus",))
assumed = ThroughputAssumptions()
state = PageState(
    "throughput",
    [
        *scenario_params(catalog, many_models=False, gpu_mode="many"),
        Param("bw_eff", assumed.bandwidth_efficiency, number(0.05, 1.0), dump=lambda v: f"{v:g}"),
        Param("mfu", assumed.compute_efficiency, number(0.05, 1.0), dump=lambda v: f"{v:g}"),
    ],
)
state.load()
scenario = scenario_sidebar(state, catalog, many_models=False, gpu_mode="many")
catalog = catalog.with_accelerators(scenario.devices)
with st.sidebar.expander("Assumptions", expanded=True):
    st.slider("Share of peak bandwidth reached in decode", 0.05, 1.0, step=0.05, key=state.key("bw_eff"), help="Decode reads weights and KV cache every step; real kernels reach 60-90% of the datasheet bandwidth.")
    st.slider("Share of peak compute reached in prefill (MFU)", 0.05, 1.0, step=0.05, key=state.key("mfu"), help="Prefill is compute-bound; 30-50% of dense bf16 peak is typical.")
state.sync()

assumptions = ThroughputAssumptions(
    bandwidth_efficiency=float(state.value("bw_eff")), compute_efficiency=float(state.value("mfu"))
)
request = scenario.request
names = {m.id: m.display_name for m in catalog.models}

runtime_name = ENGINES[request.engine].display_name
format_name = catalog.weight_format(request.weight_format).display_name
page_header(
    "Throughput and cost (estimates)",
    state,
    f"{names[request.model]} · {format_name} · {runtime_name} · "
    f"{request.context_tokens:,} tokens x {request.concurrent_sequences} sequence(s). "
    "Estimates from bytes moved and FLOPs done, not measurements.",
)
st.session_state[EXPORT_SCENARIO_KEY] = scenario_line(
    [names[request.model]], runtime_name, format_name, request.context_tokens, request.concurrent_sequences,
    [f"{request.gpus} x {catalog.accelerator(g).name}" for g in scenario.gpus],
)
if not scenario.gpus:
    st.info("Choose at least one GPU in the sidebar.", icon=":material/info:")
    st.stop()

results, notes, verdicts = [], {}, {}
for gpu in scenario.gpus:
    planned = request.model_copy(update={"gpu": gpu})
    try:
        result = throughput(planned, assumptions, catalog)
        verdicts[gpu] = fit(planned, catalog).verdict
    except PlanningError as error:
        untrusted.warning(f"{catalog.accelerator(gpu).name}: {error}")
        continue
    results.append(result)
    # Each device its own assumptions (bandwidth, price, offload): not the last device's for all.
    notes[f"{result.gpus} x {catalog.accelerator(gpu).name}"] = result.assumptions
if not results:
    st.stop()
runs = {gpu: verdict != "does_not_fit" for gpu, verdict in verdicts.items()}

table = pd.DataFrame(
    {
        "device": f"{r.gpus} x {catalog.accelerator(r.gpu).name}",
        # A plan that does not fit has no speed: it does not start.
        "fits": verdicts[r.gpu].replace("_", " "),
        "decode tokens/s (all sequences)": round(r.decode_tokens_per_second, 1) if runs[r.gpu] else None,
        "decode tokens/s per sequence": round(r.decode_tokens_per_second_per_sequence, 1) if runs[r.gpu] else None,
        "prefill tokens/s": None if r.prefill_tokens_per_second is None or not runs[r.gpu] else round(r.prefill_tokens_per_second),
        "bytes read per step (GB)": round((r.weights_read_bytes_per_step + r.kv_read_bytes_per_step) / 1e9, 2),
        "$/hour": r.usd_per_hour,
        "$ per 1M output tokens": None if r.usd_per_million_output_tokens is None or not runs[r.gpu] else round(r.usd_per_million_output_tokens, 3),
        "$ per 1M input tokens": None if r.usd_per_million_input_tokens is None or not runs[r.gpu] else round(r.usd_per_million_input_tokens, 4),
    }
    for r in results
)
st.dataframe(table, hide_index=True, key="throughput_table")
download_table(table, "gemma4-throughput", "throughput_csv")

curve = []
for gpu in scenario.gpus:
    for sequences in SEQUENCE_GRID:
        point = request.model_copy(update={"gpu": gpu, "concurrent_sequences": sequences})
        try:
            verdict = fit(point, catalog).verdict
            if verdict == "does_not_fit":
                break  # more sequences need more memory: none of the rest fit either
            r = throughput(point, assumptions, catalog)
        except PlanningError:
            break
        curve.append(
            {
                "gpu_name": f"{r.gpus} x {catalog.accelerator(gpu).name}",
                "concurrent_sequences": sequences,
                "decode tokens/s": r.decode_tokens_per_second,
                "per sequence": r.decode_tokens_per_second_per_sequence,
                "offload": verdict == "fits_with_offload",
            }
        )
frame = pd.DataFrame(curve)
if not frame.empty:
    figure = charts.throughput_lines(frame, "decode tokens/s", "decode tokens/s (all sequences)", f"Decode throughput against concurrency ({request.context_tokens:,} tokens each)")
    st.plotly_chart(figure, key="throughput_chart")
    download_figure(figure, "decode-throughput", "throughput_chart")
    st.caption(
        "Memory limits concurrency: check the Device fit page for how many sequences fit. A dashed line: "
        "more sequences only fit with part of the model in ordinary RAM, read over the PCIe link every "
        "step, so throughput falls."
    )

if not frame.empty and frame["concurrent_sequences"].max() < SEQUENCE_GRID[-1]:
    st.caption("Each line stops at the most sequences that fit on its device.")
st.subheader("Assumptions")
for device, lines in notes.items():
    st.markdown(f"**{untrusted.markdown_literal(device)}**")
    # Notes can name an imported model: plain text, never Markdown.
    for line in lines:
        st.markdown(f"- {untrusted.markdown_literal(line)}")
