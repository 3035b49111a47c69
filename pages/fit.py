"""Device fit: every variant x weight format under every runtime that runs on the chosen device."""

import pandas as pd
import streamlit as st

from core.engines.registry import ENGINES
from core.estimate import estimate
from core.fit import cell_request, fit_matrix, refused_cells
from core.runtimes import default_kv_cache, device_refusal
from ui import untrusted
from core.quality import benchmark_frame, has_benchmarks, quality_score
from core.recommend import option_row, recommend
from ui.custom import custom_models_sidebar, custom_param, with_custom_models
from ui.loaders import catalog_or_stop
from ui.navigation import through_app
from ui.state import PageState
from ui.fit_chart import verdict_heatmap
from ui.glossary import device_word
from ui.views import verdict_matrix
from ui.export import scenario_line
from ui.widgets import (
    EXPORT_SCENARIO_KEY,
    download_figure,
    download_table,
    launch_box,
    page_header,
    scenario_params,
    scenario_sidebar,
)

through_app()
gemma = catalog_or_stop(needs=("gpus", "benchmarks"))
params = [p for p in scenario_params(gemma, many_models=False, gpu_mode="one") if p.name != "model"]
state = PageState("fit", [*params, custom_param()])
state.load()
catalog, _, custom_ids = with_custom_models(state, gemma)
scenario = scenario_sidebar(state, gemma, many_models=None, gpu_mode="one", show_format=False, every_runtime=True)
custom_models_sidebar(state, catalog)
state.sync()
catalog = catalog.with_accelerators(scenario.devices)

request = scenario.request
accelerator = catalog.accelerator(scenario.gpus[0])
runtime_names = ", ".join(ENGINES[e].short_name for e in scenario.engines) or "none"
names = {m.id: m.display_name for m in catalog.models}
format_names = {f.id: f.display_name for f in catalog.weight_formats}

page_header(
    "Device fit",
    state,
    f"{request.gpus} x {accelerator.name} ({accelerator.memory_bytes / 2**30:,.1f} GiB usable by the "
    f"{device_word(accelerator)} as reported) · runtimes: {runtime_names} · {request.kv_cache_dtype} KV cache (or the runtime's own) · "
    f"{request.context_tokens:,} tokens x {request.concurrent_sequences} sequence(s)",
)
# The heatmap's export names the device and its count, which the caption gives in GiB terms only.
st.session_state[EXPORT_SCENARIO_KEY] = scenario_line(
    ["every model and weight format"], runtime_names, None, request.context_tokens, request.concurrent_sequences,
    [f"{request.gpus} x {accelerator.name}"],
)

if not scenario.engines:
    untrusted.error(f"None of the runtimes this planner models runs on {accelerator.name}.")
    st.stop()
rows = fit_matrix(request, catalog, scenario.engines)
refusals = refused_cells(request, catalog, scenario.engines)


def show_refusals() -> None:
    """What a runtime offers on this device but refuses here (a browser buffer a tensor exceeds,
    no export of that model...), each with its reason, as plain text (a name may come from a link)."""
    if not refusals:
        return
    st.subheader("Refused here, and why")
    refused_table = pd.DataFrame(
        {
            "runtime": ENGINES[r.engine].short_name,
            "model": names[r.model],
            "weight format": format_names[r.weight_format],
            "reason": r.reason,
        }
        for r in refusals
    )
    st.dataframe(refused_table, hide_index=True, key="fit_refused")
    download_table(refused_table, f"gemma4-fit-refused-{accelerator.id}", "fit_refused_csv")


if not rows:
    refused = [reason for e in scenario.engines if (reason := device_refusal(catalog, e, accelerator))]
    refused += [r.reason for r in refusals]
    untrusted.error(
        f"No Gemma 4 variant can run with these settings on {accelerator.name} with {runtime_names}"
        + (f": {refused[0]}" if refused else " (check the device count and the context).")
    )
    show_refusals()
    st.stop()

# The recommendation weighs benchmark quality, which only the Gemma 4 variants have.
gemma_rows = [r for r in rows if has_benchmarks(catalog, r.model)]
advice = recommend(gemma_rows, catalog) if gemma_rows else None
if advice is not None:
    (st.success if advice.best else st.warning)(advice.text, icon=":material/recommend:")
    if advice.best is not None:
        best = advice.best
        # A KV cache type nobody picked is the runtime's own (f16 in llama.cpp, not a -ctk flag).
        kv = request.kv_cache_dtype if state.chosen("kv") else default_kv_cache(best.engine)
        plan = cell_request(request.model_copy(update={"kv_cache_dtype": kv}), catalog, best.model, best.weight_format, best.engine)
        best_row = option_row(gemma_rows, best)
        with st.expander("Start it: the launch command", expanded=True):
            launch_box(plan, estimate(plan, catalog), catalog, best_row)
    st.caption(
        "Quality: the release benchmarks, measured in bf16. Quantised formats are assumed to keep "
        "those scores (Google published bf16 figures only); fewer bits usually cost some quality, "
        "most at 2-3 bits per weight."
    )
if custom_ids:
    st.caption(
        "Your own models are sized like Gemma 4 (same engine rules) but have no release benchmark "
        "scores, so the recommendation and the quality column cover Gemma 4 only."
    )

st.subheader("Every model, format and runtime on this device")
model_labels = {
    m: f"{names[m]}<br>quality {quality_score(catalog, m):.2f}" if has_benchmarks(catalog, m) else names[m]
    for m in names
}
best_cell = (advice.best.model, advice.best.weight_format, advice.best.engine) if advice and advice.best else None
picture = verdict_heatmap(rows, model_labels, format_names, best_cell, f"What runs on {request.gpus} x {accelerator.name}")
st.plotly_chart(picture, key="fit_heatmap", config={"displayModeBar": False})
download_figure(picture, f"gemma4-fit-{accelerator.id}", "fit_heatmap")
st.caption(
    "Blue: fits; amber: tight (under 5% free); orange: runs with part of the model in ordinary RAM "
    "(much slower); grey: does not fit. Each cell gives the memory left (or missing). The red box "
    "is the recommendation. llama.cpp and Ollama keep 1 GiB free per GPU (--fit-target) and move "
    "layers or experts to the CPU rather than fail. Quality: 1 = the best Gemma 4 model on every release benchmark."
)
matrix = verdict_matrix(rows, names, format_names)
download_table(matrix.rename_axis("model").reset_index(), f"gemma4-fit-matrix-{accelerator.id}", "fit_matrix_csv")

detail = pd.DataFrame(
    {
        "runtime": ENGINES[r.engine].short_name,
        "model": names[r.model],
        "weight format": format_names[r.weight_format],
        "verdict": r.verdict.replace("_", " "),
        "needed (GiB)": round(r.total_bytes / 2**30, 2),
        "usable (GiB)": round(r.usable_bytes / 2**30, 2),
        "headroom (GiB)": round(r.headroom_bytes / 2**30, 2),
        "shortfall (GiB)": round(r.shortfall_bytes / 2**30, 2),
        "longest context on the device alone (tokens)": r.max_context_tokens,
        "most sequences at this context": r.max_concurrent_sequences,
        "offload": r.offload.flags if r.offload else "",
        "host RAM for offload (GiB)": round(r.offload.host_bytes / 2**30, 2) if r.offload else 0.0,
        "read from host per token (GiB)": round(r.offload.host_read_bytes_per_token / 2**30, 3) if r.offload else 0.0,
        "quality (1 = best)": round(quality_score(catalog, r.model), 3) if has_benchmarks(catalog, r.model) else None,
    }
    for r in rows
)
st.dataframe(detail, hide_index=True, key="fit_detail")
download_table(detail, f"gemma4-fit-{accelerator.id}", "fit_detail_csv")
show_refusals()

st.subheader("Benchmark quality (release table, instruction-tuned, bf16)")
scores = benchmark_frame(gemma).rename(columns=names)
st.dataframe(scores, hide_index=True, key="fit_benchmarks")
download_table(scores, "gemma4-benchmarks", "fit_benchmarks_csv")
st.caption(
    "Quantised formats are assumed to keep the bf16 scores: the release measured bf16 only. "
    "Quality = mean over benchmarks of each score as a share of the best model's "
    "(for edit distance, best / score)."
)
if advice is not None and advice.cheaper:
    st.subheader("What cheaper options give up")
    given = pd.DataFrame(
        [
            {
                "option": f"{names[o.model]} in {format_names[o.weight_format]}",
                "memory (GiB)": round(o.total_bytes / 2**30, 2),
                **{b: -v for b, v in o.given_up.items()},
            }
            for o in advice.cheaper
        ]
    )
    st.dataframe(given, hide_index=True, key="fit_given_up")
    download_table(given, "gemma4-cheaper-options", "fit_given_up_csv")
    st.caption("Points versus the recommended option (negative = worse).")
