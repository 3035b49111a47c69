"""Start: what can I run? Pick a device and a use case; the answer card comes first."""

import dataclasses

import pandas as pd
import streamlit as st

from core.devices import TYPED_DEVICE_ID
from core.engines.registry import ENGINES
from core.estimate import PlanningError
from core.quality import quality_score
from core.usecases import USE_CASE_IDS, USE_CASES, answer, use_case, use_case_request
from ui import untrusted
from ui.glossary import device_word, explain_format, term
from ui.loaders import catalog_or_stop
from ui.navigation import through_app
from ui.state import PageState, Param, choice, integer
from ui.widgets import (
    TYPED_DEVICE_PARAMS,
    copy_link,
    download_table,
    gpu_label,
    gpu_options,
    launch_box,
    scenario_params,
    typed_device_inputs,
)

DEVICE_PARAMS = ("gpu", "count", *TYPED_DEVICE_PARAMS)
CONTEXT_STEPS = [2_048, 4_096, 8_192, 16_384, 32_768, 65_536, 131_072, 262_144]
# A dict's bound get() keeps session state picklable (a lambda is not).
CONTEXT_LABELS = {tokens: f"{tokens // 1024}K tokens" for tokens in CONTEXT_STEPS}
# A first-time visitor sees the most common single GPU people run Gemma on at home.
DEFAULT_DEVICE = "nvidia-rtx-4090"
HEADLINE_BENCHMARK = "MMLU Pro"

through_app()
catalog = catalog_or_stop(needs=("gpus", "benchmarks"))
device_params = [p for p in scenario_params(catalog, many_models=False, gpu_mode="one") if p.name in DEVICE_PARAMS]
device_params = [dataclasses.replace(p, default=DEFAULT_DEVICE) if p.name == "gpu" else p for p in device_params]
state = PageState(
    "start",
    [
        *device_params,
        Param("use", "chat", choice(USE_CASE_IDS)),
        Param("users", 8, integer(1, 1024)),
        Param("ctx", use_case("chat").context_tokens, integer(1, CONTEXT_STEPS[-1])),
    ],
)
state.load()
key = state.key
if not state.chosen("ctx"):
    # Nobody set the context: the use case's (a link with use=documents opens at 128K).
    st.session_state[key("ctx")] = use_case(state.value("use")).context_tokens
if state.value("ctx") not in CONTEXT_STEPS:
    st.session_state[key("ctx")] = min(CONTEXT_STEPS, key=lambda steps: abs(steps - state.value("ctx")))


st.title("What can I run?")
st.caption(
    "Pick your device and what you want to do: the planner sizes every Gemma 4 model, layer by layer, "
    "under the runtimes that really run there. Common memory calculators overstate Gemma 4's "
    "memory 5-12 times over: most of its layers only remember a short window of the conversation."
)
state.show_notices()

device_column, use_column = st.columns([3, 2], gap="large")
with device_column:
    st.selectbox(
        "Your device", gpu_options(catalog), format_func=gpu_label(catalog), key=key("gpu"),
        help="Type to search: GPUs, Macs, laptops, the Raspberry Pi, phones; or pick 'Your own device' and type its memory.",
    )
    devices = (typed_device_inputs(state, st.container()),) if state.value("gpu") == TYPED_DEVICE_ID else ()
    st.number_input("How many of them", min_value=1, max_value=64, key=key("count"), help=term("tensor parallel"))
with use_column:
    labels = {u.id: u.label for u in USE_CASES}
    st.radio("What for", list(labels), format_func=labels.get, key=key("use"), horizontal=True, on_change=state.forget_choice, args=("ctx",))
    case = use_case(state.value("use"))
    st.caption(case.description)
    st.select_slider(
        "Context per request", CONTEXT_STEPS, key=key("ctx"), format_func=CONTEXT_LABELS.get,
        on_change=state.mark_chosen, args=("ctx",), help=term("context"),
    )
    if case.serves_many:
        st.number_input("Users at once", min_value=1, max_value=1024, key=key("users"), help=term("concurrent sequences"))

catalog = catalog.with_accelerators(devices)
accelerator = catalog.accelerator(state.value("gpu"))
request = use_case_request(case, accelerator.id, int(state.value("count")), int(state.value("users")))
request = request.model_copy(update={"context_tokens": int(state.value("ctx"))})
# The use case sets the scenario the other pages open with.
state.also_share = {"seqs": str(request.concurrent_sequences), "thinking": str(request.thinking_tokens)}
state.sync()

try:
    result = answer(request, catalog)
except PlanningError as error:
    untrusted.error(f"This device cannot be planned for: {error}")
    st.stop()

best = result.recommendation.best
hardware = f"{request.gpus} x {accelerator.name}" if request.gpus > 1 else accelerator.name
if best is None or result.plan is None or result.estimate is None or result.best_row is None:
    with st.container(border=True):
        untrusted.warning(result.recommendation.text)
    st.stop()

model = catalog.model(best.model)
weight_format = catalog.weight_format(best.weight_format)
runtime = ENGINES[best.engine]
row = result.best_row
plan = result.plan
with st.container(border=True, key="answer_card"):
    st.subheader(f"Run {untrusted.markdown_literal(model.display_name)} with {runtime.short_name}")
    st.caption(explain_format(weight_format))
    headline = next(b for b in catalog.benchmarks if b.benchmark == HEADLINE_BENCHMARK)
    quality, speed, memory, context = st.columns(4)
    quality.metric(
        f"{HEADLINE_BENCHMARK} score", f"{headline.scores[model.id]:.1f}%",
        help=f"The release benchmark of general knowledge and reasoning (bf16; quantised formats assumed to keep it). {term('quality')}",
    )
    if result.speed is not None:
        per_user = result.speed.decode_tokens_per_second_per_sequence
        speed.metric("Speed per user", f"{per_user:,.0f} tokens/s", help=f"Estimated from memory bandwidth, at the end of a full context. {term('tokens/s')}")
    else:
        speed.metric("Speed per user", "unknown", help="This device has no memory bandwidth figure in the catalogue.")
    memory.metric(
        "Memory", f"{row.total_bytes / 2**30:,.1f} GiB",
        help=f"What the model, its conversation memory (KV cache) and the runtime need, of "
        f"{row.usable_bytes / 2**30:,.1f} GiB usable on the {device_word(accelerator)}. {term('KV cache')}",
    )
    context.metric("Longest context (tokens)", f"{row.max_context_tokens:,}", help=term("context"))
    share = min(1.0, row.total_bytes / row.usable_bytes) if row.usable_bytes else 1.0
    st.progress(
        share,
        text=f"{row.total_bytes / 2**30:,.1f} of {row.usable_bytes / 2**30:,.1f} GiB usable on {hardware} "
        f"({row.verdict.replace('_', ' ')}, {row.headroom_bytes / 2**30:,.1f} GiB spare)",
    )
    if row.offload is not None:
        st.warning(
            f"Part of the model runs from ordinary RAM ({row.offload.flags}): it works, but slowly. {term('offload')}",
            icon=":material/speed:",
        )
    st.markdown("**Start it**")
    launch_box(plan, result.estimate, catalog, row)
    links = st.columns([1, 1, 1, 1])
    with links[0]:
        copy_link(state)
    plan_query = {
        "engine": plan.engine, "weights": plan.weight_format, "kv": plan.kv_cache_dtype, "ctx": str(plan.context_tokens),
        "seqs": str(plan.concurrent_sequences), "thinking": str(plan.thinking_tokens), "count": str(plan.gpus),
        # The typed-in device as this page's link writes it (defaults left out, each value dumped).
        **{name: value for name, value in state.current().items() if devices and name in TYPED_DEVICE_PARAMS},
    }
    links[1].page_link("pages/planner.py", label="Memory breakdown", icon=":material/memory:", query_params={**plan_query, "models": plan.model, "gpus": accelerator.id})
    links[2].page_link("pages/fit.py", label="Every option here", icon=":material/developer_board:", query_params={**plan_query, "engine": "all", "gpu": accelerator.id})
    links[3].page_link("pages/throughput.py", label="Speed and cost", icon=":material/speed:", query_params={**plan_query, "model": plan.model, "gpus": accelerator.id})

naive_kv = result.estimate.naive_kv_cache_bytes
ours_kv = result.estimate.kv_cache_bytes
if ours_kv and naive_kv > ours_kv:
    st.info(
        f"A typical online calculator would put this plan's conversation memory at {naive_kv / 2**30:,.1f} GiB, "
        f"{naive_kv / ours_kv:,.1f} times the {ours_kv / 2**30:,.2f} GiB it really takes, and the whole plan at "
        f"{result.estimate.naive_total_bytes / 2**30:,.1f} GiB instead of {result.estimate.total_bytes / 2**30:,.1f}. "
        "Most Gemma 4 layers only look back 512 or 1,024 tokens, so their memory stops growing; "
        "the small models also share caches between layers.",
        icon=":material/lightbulb:",
    )

st.subheader("The alternatives, and what each gives up")
names = {m.id: m.display_name for m in catalog.models}
options = [best, *result.recommendation.cheaper]
alternatives = pd.DataFrame(
    {
        "model": names[o.model],
        "runtime": ENGINES[o.engine].short_name,
        "weight format": catalog.weight_format(o.weight_format).display_name,
        "memory (GiB)": round(o.total_bytes / 2**30, 1),
        "fits": o.verdict.replace("_", " "),
        "longest context (tokens)": o.max_context_tokens,
        f"{HEADLINE_BENCHMARK} (%)": headline.scores[o.model],
        "points given up": -o.given_up.get(HEADLINE_BENCHMARK, 0.0) if o is not best else 0.0,
        "quality (1 = best)": round(quality_score(catalog, o.model), 3),
    }
    for o in options
)
st.dataframe(
    alternatives,
    hide_index=True,
    key="start_alternatives",
    column_config={
        "memory (GiB)": st.column_config.NumberColumn(help="What the option needs on the device: weights, conversation memory (KV cache) and the runtime's own."),
        "points given up": st.column_config.NumberColumn(format="%.1f", help=f"{HEADLINE_BENCHMARK} points against the recommended model (negative = worse)"),
        "quality (1 = best)": st.column_config.NumberColumn(help=term("quality")),
    },
)
download_table(alternatives, f"gemma4-options-{accelerator.id}", "start_alternatives_csv")
st.caption(
    "The first row is the recommendation; the others are smaller models that also run here, "
    "each in its best-fitting format. Scores are from Google's release (bf16); quantised formats "
    "are assumed to keep them."
)
