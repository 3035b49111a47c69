"""The self-host or API break-even chart: monthly cost against monthly tokens, log on both axes."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go

from core.api_cost import ApiPrice, SelfHostCost, api_monthly_usd, self_host_monthly_usd_array

SELF_HOST_COLOR = "#d93025"
# API lines in a fixed order of muted colours; the self-hosted line keeps the one strong red.
API_COLORS = ["#1a73e8", "#188038", "#a142f4", "#e8710a", "#12b5cb", "#f9ab00", "#5f6368", "#795548", "#00897b", "#185abc"]
TOKEN_SUFFIXES = {0: "", 3: "K", 6: "M", 9: "B", 12: "T", 15: "Q"}


def _decade_ticks(low: float, high: float, label: Callable[[float], str]) -> dict:
    """One labelled tick per decade and no minor labels: plotly's own log ticks add '2' and
    '5' between decades, which clutter a range this wide."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    values = [10.0**d for d in decades]
    return dict(type="log", tickmode="array", tickvals=values, ticktext=[label(v) for v in values])


def token_label(tokens: float) -> str:
    exponent = int(round(math.log10(tokens)))
    base = max(e for e in TOKEN_SUFFIXES if e <= exponent)
    return f"{10 ** (exponent - base):g}{TOKEN_SUFFIXES[base]}"


def usd_label(usd: float) -> str:
    return f"${usd:,.0f}" if usd >= 1 else f"${usd:g}"


def break_even_chart(
    cost: SelfHostCost,
    device_label: str,
    prices: Sequence[ApiPrice],
    volumes: np.ndarray,
    input_tokens_per_output_token: float,
    break_evens: dict[str, float | None],
    title: str,
) -> go.Figure:
    """Monthly cost of self-hosting (a step each time another deployment is needed) and of each
    API, over monthly token volume; a marker where self-hosting starts to pay."""
    own = self_host_monthly_usd_array(cost, volumes)
    traces: list[dict] = [
        dict(
            type="scatter", x=volumes, y=own, mode="lines", name=f"Self-hosted: {device_label}",
            line=dict(color=SELF_HOST_COLOR, width=3, shape="hv"),
            hovertemplate="%{x:.3s} tokens: $%{y:,.0f} a month<extra>self-hosted</extra>",
        )
    ]  # fmt: skip
    api_costs = []
    for index, price in enumerate(prices):
        monthly = np.array([api_monthly_usd(price, v, input_tokens_per_output_token) for v in volumes])
        api_costs.append(monthly)
        traces.append(dict(
            type="scatter", x=volumes, y=monthly, mode="lines", name=price.label,
            line=dict(color=API_COLORS[index % len(API_COLORS)], width=1.5, dash="dot" if index >= len(API_COLORS) else None),
            hovertemplate="%{x:.3s} tokens: $%{y:,.2f} a month<extra>" + price.label + "</extra>",
        ))  # fmt: skip
    points = [(label, tokens) for label, tokens in break_evens.items() if tokens is not None]
    if points:
        traces.append(dict(
            type="scatter", x=[t for _, t in points], y=[cost.monthly_usd for _ in points], mode="markers",
            name="Break-even", marker=dict(color=SELF_HOST_COLOR, size=10, symbol="diamond"),
            text=[label for label, _ in points],
            hovertemplate="break-even with %{text}: %{x:.3s} tokens a month<extra></extra>",
        ))  # fmt: skip
    # The y range: every curve's values across the grid, floored at a cent so a free tier's
    # zeros and tiny volumes do not stretch the log axis down to nothing.
    everything = np.concatenate([own, *api_costs]) if api_costs else own
    positive = everything[everything > 0]
    y_low = max(0.01, float(positive.min())) if positive.size else 0.01
    y_high = float(everything.max())
    layout = dict(
        title=dict(text=title),
        margin=dict(l=70, r=20, t=60, b=140),
        # Below the plot, so a long list of providers never meets the title.
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
        hovermode="closest",
        xaxis=dict(
            title=dict(text="tokens a month (input and output)"),
            range=[math.log10(volumes[0]), math.log10(volumes[-1])],
            **_decade_ticks(volumes[0], volumes[-1], token_label),
        ),
        yaxis=dict(
            title=dict(text="USD a month"),
            range=[math.log10(y_low), math.log10(y_high) + 0.1],
            **_decade_ticks(y_low, y_high, usd_label),
        ),
    )
    return go.Figure(data=traces, layout=layout)
