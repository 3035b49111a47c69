"""Accuracy: every public observation of real deployments beside our prediction."""

import pandas as pd
import streamlit as st

from core.calibrate import calibrate
from ui import charts
from ui.loaders import catalog_or_stop
from ui.navigation import through_app
from ui.state import PageState
from ui.widgets import page_header, download_figure, download_table

through_app()
catalog = catalog_or_stop(needs=("gpus", "observations"))
state = PageState("accuracy", [])
state.load()
state.sync()

page_header(
    "Accuracy against real deployments",
    state,
    "Each row is a public figure (engine start-up logs, published file sizes, Google's table) "
    "with every setting needed to reproduce it, from data/observations.csv.",
)

rows = calibrate(catalog)
passed = sum(r.within_tolerance for r in rows)
left, middle, right = st.columns(3)
left.metric("Observations", len(rows))
middle.metric("Within tolerance", f"{passed} of {len(rows)}")
right.metric("Exact (KV cells, blocks, tokens)", sum(r.difference == 0 for r in rows if r.unit in ("cells", "blocks", "tokens")))

frame = pd.DataFrame(
    {
        "id": r.id,
        "kind": r.id.split("-")[0],
        "quantity": r.quantity,
        "unit": r.unit,
        "observed": r.observed,
        "predicted": round(r.predicted, 4),
        "difference": round(r.difference, 4),
        "tolerance": r.tolerance,
        "within tolerance": r.within_tolerance,
        "ratio": r.predicted / r.observed if r.observed else 1.0,
        "source": r.source,
    }
    for r in rows
)
figure = charts.predicted_vs_observed(frame)
st.plotly_chart(figure, key="accuracy_chart")
download_figure(figure, "predicted-vs-observed", "accuracy_chart")
st.dataframe(frame.drop(columns=["ratio"]), hide_index=True, key="accuracy_table")
download_table(frame, "observations-vs-predictions", "accuracy_csv")
st.caption(
    "No GPU was available to this project, so there are no rows measured here yet; activation "
    "figures remain estimates checked against llama.cpp's compute buffers."
)
