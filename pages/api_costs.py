"""Self-host or API: the plan's cost per million tokens on its own device against hosted Gemma 4 prices."""

import pandas as pd
import streamlit as st

from core.api_cost import (
    HOURS_PER_MONTH,
    CostAssumptions,
    api_monthly_usd,
    break_even_tokens,
    load_api_prices,
    load_device_prices,
    self_host_cost,
    self_host_monthly_usd,
    shipped_concurrency,
    volume_grid,
)
from core.catalog import CatalogError
from core.engines.registry import ENGINES
from core.estimate import PlanningError
from ui import cost_charts, untrusted
from ui.loaders import catalog_or_stop
from ui.navigation import through_app
from ui.state import PageState, Param, choice, integer, number
from ui.widgets import download_figure, download_table, page_header, scenario_params, scenario_sidebar

PRICING_LABELS = {"rental": "Rent it (cloud price per hour)", "purchase": "Buy it (purchase price + electricity)"}

through_app()
catalog = catalog_or_stop(needs=("gpus",))
try:
    api_prices = load_api_prices()
    device_prices = load_device_prices()
except CatalogError as error:
    untrusted.error(f"A price file is malformed: {error}")
    st.stop()
assumed = CostAssumptions()
state = PageState(
    "api",
    [
        *scenario_params(catalog, many_models=False, gpu_mode="one"),
        Param("pricing", assumed.pricing, choice(list(PRICING_LABELS))),
        Param("util", assumed.utilisation, number(0.01, 1.0), dump=lambda v: f"{v:g}"),
        Param("months", assumed.amortisation_months, integer(1, 120)),
        Param("kwh", assumed.usd_per_kwh, number(0, 10), dump=lambda v: f"{v:g}"),
        Param("ratio", assumed.input_tokens_per_output_token, number(0, 1000), dump=lambda v: f"{v:g}"),
        Param("tokens", assumed.monthly_tokens, integer(1, 10**15)),
    ],
)
state.load()
# Concurrency nobody chose follows what the runtime serves at once on the device (set on the
# previous run, before the widget exists): priced at one request, a GPU that batches 256 never pays.
SHIPPED_SEQS_KEY = "_api_shipped_seqs"
shipped = st.session_state.pop(SHIPPED_SEQS_KEY, None)
if shipped is not None and not state.chosen("seqs"):
    st.session_state[state.key("seqs")] = shipped
scenario = scenario_sidebar(state, catalog, many_models=False, gpu_mode="one")
catalog = catalog.with_accelerators(scenario.devices)
if not state.chosen("seqs"):
    try:
        shipped = shipped_concurrency(scenario.request, catalog)
    except PlanningError:
        shipped = scenario.request.concurrent_sequences
    if shipped != scenario.request.concurrent_sequences:
        st.session_state[SHIPPED_SEQS_KEY] = shipped
        st.rerun()
key = state.key
with st.sidebar.expander("Cost assumptions", expanded=True):
    st.radio("The device", list(PRICING_LABELS), format_func=PRICING_LABELS.get, key=key("pricing"), help=CostAssumptions.model_fields["pricing"].description)
    st.slider("Utilisation (share of hours busy)", 0.01, 1.0, step=0.01, key=key("util"), help="Share of the month's hours the device generates at full speed. Traffic has peaks and quiet hours; 0.5 is a deployment sized for its peaks, 1.0 a saturated batch job.")
    st.number_input("Amortisation (months)", min_value=1, max_value=120, key=key("months"), help="Months a bought device is paid off over (36: a common three-year schedule). Only for 'Buy it'.")
    st.number_input("Electricity (USD per kWh)", min_value=0.0, max_value=10.0, step=0.01, format="%.3f", key=key("kwh"), help="Your tariff; the device draws its rated power while busy. Only for 'Buy it'.")
    st.number_input("Input tokens per output token", min_value=0.0, max_value=1000.0, step=0.5, key=key("ratio"), help="Prompt tokens sent per token generated: about 3 for chat with history, 10-50 for retrieval or summaries, under 1 for long-form writing.")
    st.number_input("Tokens a month (input and output)", min_value=1, max_value=10**15, step=10_000_000, key=key("tokens"), help="The volume to compare at; the chart shows every volume.")
state.sync()

assumptions = CostAssumptions(
    pricing=state.value("pricing"),
    utilisation=float(state.value("util")),
    amortisation_months=int(state.value("months")),
    usd_per_kwh=float(state.value("kwh")),
    input_tokens_per_output_token=float(state.value("ratio")),
    monthly_tokens=int(state.value("tokens")),
)
request = scenario.request
model = catalog.model(request.model)
accelerator = catalog.accelerator(request.gpu)
count = f"{request.gpus} x " if request.gpus > 1 else ""
device_label = f"{count}{accelerator.name}"
ratio = assumptions.input_tokens_per_output_token
page_header(
    "Self-host or API (estimates)",
    state,
    f"{model.display_name} · {catalog.weight_format(request.weight_format).display_name} · "
    f"{ENGINES[request.engine].display_name} · {device_label} · "
    f"{request.context_tokens:,} tokens x {request.concurrent_sequences} sequence(s). Hosted prices are "
    "dated and sourced; self-hosted figures come from the throughput estimate.",
)

if not state.chosen("seqs"):
    st.caption(
        f"Priced at {request.concurrent_sequences:,} request(s) at once: what {ENGINES[request.engine].display_name} "
        "serves together on this device as shipped, at this context (vLLM: as many as its KV pool holds, up to 256; "
        "llama-server: its 4 default slots; Ollama, MLX, transformers: one). Set 'Concurrent sequences' to price another load."
    )

prices = sorted(
    (p for p in api_prices if p.model == model.id), key=lambda p: (p.blended_usd_per_million_tokens(ratio), p.provider)
)
try:
    cost = self_host_cost(request, assumptions, catalog, device_prices)
except PlanningError as error:
    cost = None
    message = str(error)
    untrusted.info(message[:1].upper() + message[1:])

if cost is not None:
    volume = assumptions.monthly_tokens
    own_month = self_host_monthly_usd(cost, volume)
    cheapest = prices[0] if prices else None
    first, second, third, fourth = st.columns(4)
    first.metric("Self-hosted, $ per 1M output tokens", f"${cost.usd_per_million_output_tokens:,.2f}", help="The month's device cost over the output tokens decode produces in its busy hours.")
    second.metric(f"Self-hosted, $ per 1M tokens ({ratio:g}:1 in:out)", f"${cost.usd_per_million_tokens:,.2f}", help="Input and output together, prompt processing time included.")
    third.metric(f"Self-hosted at {volume:,} tokens a month", f"${own_month:,.0f}", help=f"Deployments needed: each serves {cost.capacity_tokens_per_month:,.0f} tokens a month at this utilisation and costs ${cost.monthly_usd:,.0f} a month ({HOURS_PER_MONTH} hours).")
    if cheapest is not None:
        fourth.metric(f"Cheapest API at the same volume ({cheapest.provider})", f"${api_monthly_usd(cheapest, volume, ratio):,.0f}", help="The lowest blended price for this model in the table below.")
    with st.expander("How the self-hosted figure is computed"):
        # Notes name the device, which may be typed in by the user: plain text.
        st.text("\n".join(cost.assumptions))

st.subheader(f"Hosted prices for {model.display_name}")
if not prices:
    untrusted.info(
        f"No provider publishes a per-token price for {model.display_name} in data/api_prices.csv "
        "(Google's Gemini API serves Gemma 4 free with rate limits only). All Gemma 4 prices are listed."
    )
break_evens = {p.label: (break_even_tokens(cost, p, ratio) if cost is not None else None) for p in prices}
table = pd.DataFrame(
    {
        "provider": p.provider,
        "model": p.model,
        "tier": p.tier or "",
        "$ per 1M input tokens": p.usd_per_million_input_tokens,
        "$ per 1M output tokens": p.usd_per_million_output_tokens,
        f"$ per 1M tokens ({ratio:g}:1)": round(p.blended_usd_per_million_tokens(ratio), 4),
        **(
            {}
            if cost is None
            else {"self-hosting pays from (tokens a month)": f"{b:,.0f}" if (b := break_evens.get(p.label)) else "never"}
        ),
        "as of": p.as_of.isoformat(),
        "source": p.source,
        "notes": p.notes or "",
    }
    for p in (prices or sorted(api_prices, key=lambda p: (p.model, p.provider)))
)
# st.dataframe shows cells as plain text: sources and notes are never read as Markdown.
st.dataframe(table, hide_index=True, key="api_prices_table")
download_table(table, "gemma4-api-prices", "api_prices_csv")
st.caption(
    "Free tiers (Google's Gemini API and AI Studio, OpenRouter's :free routes, NVIDIA's trial endpoints) have "
    "rate limits rather than a price per token, so they are not in the table. 'never': the API costs less "
    "than this device even when every deployment is full."
)

if cost is not None and prices:
    volumes = volume_grid(cost, [b for b in break_evens.values() if b is not None])
    figure = cost_charts.break_even_chart(
        cost, device_label, prices, volumes, ratio, break_evens,
        f"{model.display_name}: self-hosted on {device_label} or an API, by monthly volume",
    )  # fmt: skip
    st.plotly_chart(figure, key="api_break_even_chart")
    download_figure(figure, "self-host-or-api", "api_break_even_chart")
    st.caption(
        "Log scales. The self-hosted line is flat until one deployment is full, then steps up by another "
        "deployment; an API line rises with every token. Self-hosting pays where its line falls below the API's."
    )
elif cost is not None:
    st.caption("No hosted price for this model, so there is no break-even to draw.")
