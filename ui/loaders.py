"""Cached access to the catalogue; a malformed data file becomes a message, not a traceback."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.catalog import Catalog, CatalogError, load_catalog_parts
from core.kv_cache import kv_layer_groups
from core.params import count_parameters
from ui import untrusted


# Which page needs which optional part of the catalogue, to say what a broken file takes down.
PART_USERS = {
    "gpus": "Memory planner, Device fit, Quality trade-offs, Throughput and cost, Accuracy",
    "benchmarks": "Device fit, Quality trade-offs",
    "observations": "Accuracy",
}


def catalog(custom: tuple[str, ...] = ()) -> Catalog:
    """The validated catalogue (core caches it per data folder for the life of the process),
    plus the imported models that `custom` link values carry (ui.custom)."""
    base = load_catalog_parts().catalog
    if not custom:
        return base
    from ui.custom import custom_specs

    return base.with_models(custom_specs(custom))


def catalog_or_stop(needs: tuple[str, ...] = ()) -> Catalog:
    """The catalogue for a page that needs the optional parts `needs` (gpus, benchmarks,
    observations). A broken file the page needs stops it with an error naming file, row and
    field; a broken file it does not need is a warning, and the page carries on."""
    try:
        loaded = load_catalog_parts()
    except CatalogError as error:
        untrusted.error(f"A data file is malformed, so the planner cannot start: {error}")
        st.stop()
        raise  # st.stop() raises; this line only satisfies type checkers
    for part, error in loaded.broken.items():
        if part in needs:
            untrusted.error(f"A data file this page needs is malformed: {error}")
            st.stop()
        untrusted.warning(f"A data file is malformed ({error}); {PART_USERS[part]} will show this error until it is fixed.")
    return loaded.catalog


def models_table() -> pd.DataFrame:
    """One row per variant: parameters, context and the KV cache shape that decides memory."""
    rows = []
    for model in catalog().models:
        params = count_parameters(model.config)
        text = model.config.text_config
        groups = kv_layer_groups(text)
        rows.append(
            {
                "model": model.display_name,
                "total params (B)": params.total / 1e9,
                "active per token (B)": params.active_per_token / 1e9,
                "effective (B)": params.effective / 1e9,
                "layers": text.num_hidden_layers,
                "sliding window": text.sliding_window,
                "KV-shared layers": text.num_kv_shared_layers,
                "KV bytes/token, full layers (bf16)": sum(
                    g.bytes_per_token(16) for g in groups if g.window_tokens is None
                ),
                "KV bytes/token, sliding layers (bf16)": sum(
                    g.bytes_per_token(16) for g in groups if g.window_tokens is not None
                ),
                "max context": model.max_context_tokens,
                "modalities": ", ".join(model.modalities),
                "license": model.license,
            }
        )
    return pd.DataFrame(rows)
