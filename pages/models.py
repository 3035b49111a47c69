"""Models: the Gemma 4 family side by side, and weight memory per format at a glance."""

import pandas as pd
import streamlit as st

from core.estimate import MemoryRequest, PlanningError, estimate
from ui import untrusted
from ui.glossary import term
from ui.loaders import catalog_or_stop, models_table
from ui.navigation import through_app
from ui.state import PageState
from ui.widgets import page_header, download_table

through_app()
catalog = catalog_or_stop()
state = PageState("models", [])
state.load()
state.sync()

page_header(
    "Gemma 4 models",
    state,
    "Parameters are counted from each model's architecture, layer by layer; published figures "
    "are Google's rounded ones. KV bytes are per token, bf16, for the layers that own a cache.",
)

family = models_table()
st.dataframe(
    family,
    hide_index=True,
    key="models_family",
    column_config={
        "total params (B)": st.column_config.NumberColumn(format="%.2f", help="Every parameter (billions), image and audio encoders included"),
        "active per token (B)": st.column_config.NumberColumn(format="%.2f", help="What one text token reads: top-8 of 128 experts on 26B-A4B (a mixture of experts)"),
        "effective (B)": st.column_config.NumberColumn(format="%.2f", help=term("effective (B)")),
        "sliding window": st.column_config.NumberColumn(help=term("sliding window")),
        "KV-shared layers": st.column_config.NumberColumn(help=term("KV-shared")),
        "KV bytes/token, full layers (bf16)": st.column_config.NumberColumn(help="Conversation memory (KV cache) each token adds in the layers that see the whole context. " + term("KV cache")),
        "KV bytes/token, sliding layers (bf16)": st.column_config.NumberColumn(help="The same for the sliding-window layers, until their window is full; then it stops growing."),
        "max context": st.column_config.NumberColumn(help=term("context")),
    },
)
download_table(family, "gemma4-models", "models_family_csv")

st.subheader("Architecture highlights")
for model in catalog.models:
    text = model.config.text_config
    types = text.resolved_layer_types()
    sliding = sum(t == "sliding_attention" for t in types)
    notes = [
        f"{text.num_hidden_layers} layers: {sliding} sliding-window ({text.sliding_window:,} tokens), "
        f"{text.num_hidden_layers - sliding} full attention",
        f"{text.num_attention_heads} query heads; KV heads {text.num_key_value_heads} x {text.head_dim} "
        f"(sliding)" + (f", {text.num_global_key_value_heads} x {text.global_head_dim} (full, K = V projection)" if text.attention_k_eq_v else f", {text.num_key_value_heads} x {text.global_head_dim} (full)"),
    ]
    if text.num_kv_shared_layers:
        notes.append(f"last {text.num_kv_shared_layers} layers share earlier layers' KV cache")
    if text.hidden_size_per_layer_input:
        notes.append("per-layer embeddings (PLE): a lookup table that can live in ordinary RAM instead of GPU memory")
    if text.enable_moe_block:
        notes.append(f"mixture of experts: {text.num_experts} experts of width {text.moe_intermediate_size}, top-{text.top_k_experts}, plus a dense MLP")
    if text.use_double_wide_mlp:
        notes.append("double-wide MLP on the KV-shared layers")
    # Names come from data files (a GEMMA4_PLANNER_DATA folder may be anyone's): plain text.
    literal = untrusted.markdown_literal
    st.markdown(f"**{literal(model.display_name)}** ({literal(model.hf_repo_id)}, {literal(model.license)}): " + "; ".join(notes) + ".")

st.subheader("Weights in memory per format (GiB, encoders included)")
rows = []
for model in catalog.models:
    row = {"model": model.display_name}
    for weight_format in catalog.weight_formats:
        if not weight_format.applies_to(model):
            continue
        engine = weight_format.engines[0]
        try:
            result = estimate(MemoryRequest(model=model.id, weight_format=weight_format.id, engine=engine, kv_cache_dtype="fp16" if engine == "llama.cpp" else "bf16"), catalog)
        except PlanningError:
            continue
        row[weight_format.display_name] = round(result.weights_bytes / 2**30, 2)
    rows.append(row)
weights = pd.DataFrame(rows)
st.dataframe(weights, hide_index=True, key="models_weights")
download_table(weights, "gemma4-weights-per-format", "models_weights_csv")
st.caption(
    "Quantised formats keep embeddings, norms and encoders at higher precision where the format "
    "does (see the Memory planner for the component breakdown)."
)
