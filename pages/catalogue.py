"""Catalogue page: the Gemma 4 variants, weight formats, KV cache types, accelerators, benchmarks."""

import pandas as pd
import streamlit as st

from ui.loaders import catalog_or_stop, models_table

catalog = catalog_or_stop()

st.title("Gemma 4 deployment planner")
st.caption(
    "Memory computed layer by layer from each model's architecture: sliding-window layers keep "
    "only their window, KV-shared layers keep nothing. Sizes in GiB (2^30 bytes) unless labelled GB."
)

st.subheader("Models")
st.dataframe(models_table(), hide_index=True, key="catalogue_models")

st.subheader("Weight formats")
st.dataframe(
    pd.DataFrame(
        {
            "format": f.display_name,
            "bits/weight (linear layers)": f.linear_bits,
            "bits/weight (embeddings)": f.token_embedding_bits,
            "engines": ", ".join(f.engines),
            "how": f.derivation,
        }
        for f in catalog.weight_formats
    ),
    hide_index=True,
    key="catalogue_formats",
)

st.subheader("Accelerators")
st.dataframe(
    pd.DataFrame(
        {
            "accelerator": a.name,
            "kind": a.kind,
            "memory (GiB, driver)": a.memory_bytes / 2**30,
            "bandwidth (GB/s)": a.memory_bandwidth_gbs,
            "bf16 dense (TFLOP/s)": a.bf16_dense_tflops,
            "USD/hour": a.usd_per_hour,
        }
        for a in catalog.accelerators
    ),
    hide_index=True,
    key="catalogue_gpus",
)

st.subheader("Benchmarks (instruction-tuned, release table)")
st.dataframe(
    pd.DataFrame(
        {"benchmark": b.benchmark, "better": b.better, **{catalog.model(k).display_name: v for k, v in b.scores.items()}}
        for b in catalog.benchmarks
    ),
    hide_index=True,
    key="catalogue_benchmarks",
)
