"""Data shaping the pages share: breakdown rows, GPU lines, fit tables (no Streamlit calls)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.architecture import decoder_layers
from core.catalog import Catalog
from core.estimate import MemoryEstimate, MemoryRequest, PlanningError, memory_profile
from core.fit import FitResult, FitRow, usable_bytes
from core.engines.registry import ENGINES
from core.units import BYTES_PER_GIB

VERDICT_LABELS = {
    "fits": "fits",
    "tight": "tight (< 5% free)",
    "fits_with_offload": "runs with offload",
    "does_not_fit": "does not fit",
}
PARTS = (
    "Weights",
    "KV cache, full attention",
    "KV cache, sliding attention",
    "Activations",
    "Runtime overhead",
)


def breakdown_rows(estimates: Sequence[MemoryEstimate], names: dict[str, str]) -> pd.DataFrame:
    """One row per estimate: each part and the total in bytes, plus the naive KV figure."""
    return pd.DataFrame(
        [
            {
                "model": e.model,
                "label": names.get(e.model, e.model),
                "Weights": e.weights_bytes,
                "KV cache, full attention": e.kv_cache.full_attention_bytes,
                "KV cache, sliding attention": e.kv_cache.sliding_attention_bytes,
                "Activations": e.activations_bytes,
                "Runtime overhead": e.overhead_bytes,
                "Total": e.total_bytes,
                "Host memory (PLE table)": e.host_bytes,
                "Naive KV cache": e.naive_kv_cache_bytes,
                "Naive total": e.naive_total_bytes,
            }
            for e in estimates
        ]
    )


def breakdown_table_gib(rows: pd.DataFrame) -> pd.DataFrame:
    """The breakdown in GiB for display and CSV, with the naive comparison as a ratio."""
    table = pd.DataFrame({"model": rows["label"]})
    for column in (*PARTS, "Total", "Host memory (PLE table)", "Naive KV cache", "Naive total"):
        table[f"{column} (GiB)"] = (rows[column] / BYTES_PER_GIB).round(3)
    kv = rows["KV cache, full attention"] + rows["KV cache, sliding attention"]
    # How many times a common calculator overstates the KV cache (every layer full, no sharing).
    table["naive calculator KV (x real)"] = (rows["Naive KV cache"] / kv.where(kv > 0)).round(1)
    return table


def gpu_lines(catalog: Catalog, request: MemoryRequest, gpus: Sequence[str]) -> list[tuple[str, float]]:
    """(label, usable bytes) for each GPU, as the request's engine would use it."""
    lines = []
    for gpu in gpus:
        accelerator = catalog.accelerator(gpu)
        try:
            profile = memory_profile(request.model_copy(update={"gpu": gpu}), catalog)
        except PlanningError:
            continue
        count = f"{request.gpus} x " if request.gpus > 1 else ""
        lines.append((f"{count}{accelerator.name}", usable_bytes(profile)))
    return lines


def fit_rows(results: Sequence[tuple[str, str, FitResult]], catalog: Catalog) -> pd.DataFrame:
    """(model label, gpu id, fit) triples as a display table."""
    return pd.DataFrame(
        [
            {
                "model": label,
                "device": f"{r.gpus} x {catalog.accelerator(gpu).name}",
                "verdict": VERDICT_LABELS[r.verdict],
                "needed (GiB)": round(r.total_bytes / BYTES_PER_GIB, 2),
                "usable (GiB)": round(r.usable_bytes / BYTES_PER_GIB, 2),
                "headroom (GiB)": round(r.headroom_bytes / BYTES_PER_GIB, 2),
                "shortfall (GiB)": round(r.shortfall_bytes / BYTES_PER_GIB, 2),
                "longest context (tokens)": r.max_context_tokens,
                "most sequences at this context": r.max_concurrent_sequences,
                "offload": r.offload.flags if r.offload else "",
            }
            for label, gpu, r in results
        ]
    )


def why_we_differ(catalog: Catalog, model_id: str) -> list[str]:
    """The architecture facts that make a model's memory differ from a naive calculator's."""
    model = catalog.model(model_id)
    text = model.config.text_config
    layers = decoder_layers(text)
    sliding = [layer for layer in layers if layer.attention == "sliding_attention"]
    full = [layer for layer in layers if layer.attention == "full_attention"]
    lines = []
    if sliding:
        lines.append(
            f"{len(sliding)} of {text.num_hidden_layers} layers use sliding-window attention: they keep only "
            f"the last {text.sliding_window:,} tokens, not the whole context."
        )
    else:
        lines.append(f"All {text.num_hidden_layers} layers attend to the whole context: the naive KV figure is right here.")
    if text.num_kv_shared_layers:
        lines.append(
            f"The last {text.num_kv_shared_layers} layers reuse an earlier layer's keys and values "
            "and keep no cache of their own."
        )
    if sliding and full and (full[0].head_dim, full[0].num_kv_heads) != (sliding[0].head_dim, sliding[0].num_kv_heads):
        shared_projection = " (V comes from the K projection, but both are cached)" if text.attention_k_eq_v else ""
        heads = "KV head" if full[0].num_kv_heads == 1 else "KV heads"
        lines.append(
            f"Full-attention layers keep {full[0].num_kv_heads} {heads} of width {full[0].head_dim}{shared_projection}, "
            f"sliding layers {sliding[0].num_kv_heads} of width {sliding[0].head_dim}."
        )
    if text.hidden_size_per_layer_input:
        lines.append(
            "The per-layer-embedding table is a lookup, not a matmul: it can live in host memory "
            "(the 'E' in the name counts parameters without it)."
        )
    if text.enable_moe_block:
        lines.append(
            f"All {text.num_experts} experts sit in memory, but a token reads {text.top_k_experts}: "
            "memory follows the total, speed the active parameters."
        )
    return lines


def verdict_matrix(rows: Sequence[FitRow], names: dict[str, str], format_names: dict[str, str]) -> pd.DataFrame:
    """Variants as rows, weight formats as columns (named with their runtime when several
    runtimes are shown), each cell a short verdict line."""
    several = len({r.engine for r in rows}) > 1
    cells: dict[str, dict[str, str]] = {}
    for r in rows:
        text = VERDICT_LABELS[r.verdict]
        if r.offload is not None and r.verdict == "fits_with_offload":
            text += f" · {r.offload.host_bytes / BYTES_PER_GIB:,.1f} GiB on host · {r.offload.flags}"
        elif r.fits:
            text += (
                f" · {r.headroom_bytes / BYTES_PER_GIB:,.1f} GiB free · {r.max_context_tokens / 1024:,.0f}k ctx"
                f" · {r.max_concurrent_sequences:,} seq"
            )
        else:
            text += f" · needs {r.shortfall_bytes / BYTES_PER_GIB:,.1f} GiB more"
        column = f"{ENGINES[r.engine].short_name}: {format_names[r.weight_format]}" if several else format_names[r.weight_format]
        cells.setdefault(column, {})[names[r.model]] = text
    # Built from plain lists: a frame of nested dicts costs ~3 ms at 150 columns, this ~0.5 ms.
    models = list(dict.fromkeys(model for column in cells.values() for model in column))
    columns = list(cells)
    data = [[cells[column].get(model, "-") for column in columns] for model in models]
    return pd.DataFrame(data, index=models, columns=columns, dtype=object)
