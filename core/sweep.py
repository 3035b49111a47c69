"""Vectorised grid evaluation (models x formats x KV types x contexts x batches) for charts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.catalog import Catalog, load_catalog
from core.engines.base import EngineSettings
from core.estimate import (
    SEQUENCE_CAP_ENGINES,
    MemoryProfile,
    MemoryRequest,
    PlanningError,
    evaluate,
    media_tokens,
    memory_profile,
    runtime_request,
)
from core.fit import usable_bytes

COLUMNS = (
    "model",
    "weight_format",
    "kv_cache_dtype",
    "engine",
    "context_tokens",
    "concurrent_sequences",
    "sequence_tokens",
    "weights_bytes",
    "host_bytes",
    "kv_full_attention_bytes",
    "kv_sliding_attention_bytes",
    "kv_cache_bytes",
    "activations_bytes",
    "overhead_bytes",
    "total_bytes",
    "naive_kv_cache_bytes",
)


def sweep(
    models: Sequence[str],
    weight_formats: Sequence[str],
    kv_cache_dtypes: Sequence[str],
    context_tokens: Sequence[int],
    concurrent_sequences: Sequence[int] = (1,),
    *,
    engine: str = "transformers",
    images: int = 0,
    image_tokens: int = 280,
    audio_seconds: float = 0,
    thinking_tokens: int = 0,
    ple_on_host: bool = False,
    gpu: str | None = None,
    gpus: int = 1,
    engine_settings: EngineSettings | None = None,
    catalog: Catalog | None = None,
    only_applicable_formats: bool = False,
) -> pd.DataFrame:
    """One row per grid point, with the same figures as `estimate` (bytes, int64).

    Combinations the engine cannot run (a format it does not load, audio on a model without
    an encoder, a tensor-parallel degree that does not divide the heads) are left out, and so
    are contexts beyond a model's maximum; with `only_applicable_formats`, so are formats that
    would repeat another row for a model (WeightFormat.applies_to). With `gpu`, adds usable_bytes,
    headroom_bytes and shortfall_bytes (both >= 0, as core.fit defines them) and fits.
    """
    catalog = catalog or load_catalog()
    settings = engine_settings or EngineSettings()
    contexts = np.asarray(context_tokens, dtype=np.int64)
    batches = np.asarray(concurrent_sequences, dtype=np.int64)
    if contexts.ndim != 1 or batches.ndim != 1 or (contexts <= 0).any() or (batches <= 0).any():
        raise PlanningError("context_tokens and concurrent_sequences must be positive integers")
    grid_context, grid_batch = (axis.ravel() for axis in np.meshgrid(contexts, batches, indexing="ij"))

    parts: list[dict[str, np.ndarray]] = []
    for model_name in models:
        for format_name in weight_formats:
            for kv_name in kv_cache_dtypes:
                request = MemoryRequest(
                    model=model_name,
                    weight_format=format_name,
                    kv_cache_dtype=kv_name,
                    engine=engine,
                    ple_on_host=ple_on_host,
                    gpu=gpu,
                    gpus=gpus,
                    engine_settings=settings,
                )
                try:
                    profile = memory_profile(request, catalog)
                    if only_applicable_formats and not profile.weight_format.applies_to(profile.model):
                        continue
                    extra = (
                        media_tokens(profile.model, images, image_tokens, audio_seconds)
                        + thinking_tokens
                    )
                except PlanningError:
                    continue
                tokens = grid_context + extra
                keep = tokens <= profile.model.max_context_tokens
                if not keep.any():
                    continue
                kept_tokens, kept_batch, kept_context = tokens[keep], grid_batch[keep], grid_context[keep]
                for profile, chosen in _runtime_groups(request, profile, kept_tokens, kept_batch, catalog):
                    tokens, batch, context = kept_tokens[chosen], kept_batch[chosen], kept_context[chosen]
                    figures = evaluate(profile, tokens, batch)
                    if gpu:
                        profile_usable = usable_bytes(profile)
                        # What an engine that sizes its KV cache at start-up (vLLM) lacks for one request.
                        start_shortfall = profile.policy.start_shortfall_bytes(
                            profile, tokens, profile.accelerator.memory_bytes  # type: ignore[union-attr]
                        )
                    size = len(tokens)
                    parts.append(
                        {
                            "model": np.full(size, profile.model.id, dtype=object),
                            "weight_format": np.full(size, profile.weight_format.id, dtype=object),
                            "kv_cache_dtype": np.full(size, profile.kv_cache_type.id, dtype=object),
                            "engine": np.full(size, profile.policy.id, dtype=object),
                            "context_tokens": context,
                            "concurrent_sequences": batch,
                            "sequence_tokens": tokens,
                            "weights_bytes": np.full(size, profile.weights_bytes, dtype=np.int64),
                            "host_bytes": np.full(size, profile.host_bytes, dtype=np.int64),
                            # A model without sliding (or full) layers gets a scalar 0 for them.
                            "kv_full_attention_bytes": np.broadcast_to(figures.full_attention_bytes, size),
                            "kv_sliding_attention_bytes": np.broadcast_to(figures.sliding_attention_bytes, size),
                            "kv_cache_bytes": np.broadcast_to(
                                figures.full_attention_bytes + figures.sliding_attention_bytes, size
                            ),
                            "activations_bytes": np.broadcast_to(figures.activations_bytes, size),
                            "overhead_bytes": np.full(size, profile.overhead_bytes, dtype=np.int64),
                            "total_bytes": np.broadcast_to(figures.total_bytes, size),
                            "naive_kv_cache_bytes": np.ceil(
                                profile.naive_kv_bytes_per_token * tokens * batch
                            ).astype(np.int64),
                            **(
                                {
                                    "usable_bytes": np.full(size, profile_usable, dtype=np.int64),
                                    "start_shortfall_bytes": np.broadcast_to(
                                        np.asarray(start_shortfall, dtype=np.int64), size
                                    ),
                                }
                                if gpu
                                else {}
                            ),
                        }
                    )

    columns = (*COLUMNS, "usable_bytes") if gpu else COLUMNS
    if parts:
        frame = pd.DataFrame({column: np.concatenate([p[column] for p in parts]) for column in columns})
        start_shortfall = np.concatenate([p["start_shortfall_bytes"] for p in parts]) if gpu else None
    else:
        frame = pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
        start_shortfall = np.zeros(0, dtype=np.int64)
    if gpu:
        # core.fit's rule: the shortfall is the larger of what is beyond usable memory and what
        # the engine's start-up KV pool lacks; headroom is what is left when there is none.
        over = (frame["total_bytes"] - frame["usable_bytes"]).to_numpy(dtype=np.int64)
        shortfall = np.maximum(np.maximum(over, start_shortfall), 0)
        frame["headroom_bytes"] = np.where(shortfall == 0, -over, 0).astype(np.int64)
        frame["shortfall_bytes"] = shortfall.astype(np.int64)
        frame["fits"] = frame["shortfall_bytes"] == 0
    return frame


def _runtime_groups(
    request: MemoryRequest,
    profile: MemoryProfile,
    tokens: np.ndarray,
    batch: np.ndarray,
    catalog: Catalog,
) -> list[tuple[MemoryProfile, np.ndarray]]:
    """Grid points by the profile they run with: one for most runtimes; Ollama picks its batch
    size (and with it the sliding cache and compute buffer) from each point's context, and vLLM's
    sampler pass follows each point's sequences (its --max-num-seqs) unless the user set a cap."""
    per_point = profile.policy.id == "ollama" or (
        profile.policy.id in SEQUENCE_CAP_ENGINES and request.engine_settings.max_num_seqs is None
    )
    if not per_point:
        return [(profile, np.arange(len(tokens)))]
    groups: dict[EngineSettings, list[int]] = {}
    for index, (sequence_tokens, sequences) in enumerate(zip(tokens.tolist(), batch.tolist())):
        point = request.model_copy(update={"context_tokens": sequence_tokens, "concurrent_sequences": sequences})
        settings = runtime_request(point, catalog)[0].engine_settings
        groups.setdefault(settings, []).append(index)
    return [
        (memory_profile(request.model_copy(update={"engine_settings": settings}), catalog), np.asarray(indices))
        for settings, indices in groups.items()
    ]


def context_grid(max_tokens: int, points_per_doubling: int = 4, start: int = 256) -> list[int]:
    """Log-spaced contexts from `start` to `max_tokens` (inclusive), for charts on a log axis."""
    if max_tokens < start:
        return [max_tokens]
    steps = math.ceil(math.log2(max_tokens / start) * points_per_doubling)
    grid = {int(round(start * 2 ** (i / points_per_doubling))) for i in range(steps + 1)}
    return sorted(t for t in grid | {max_tokens} if t <= max_tokens)
