"""Predictions for every observation in data/observations.csv, and how far each is off."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.catalog import Catalog, Observation, load_catalog
from core.engines.base import EngineSettings
from core.estimate import MemoryEstimate, MemoryRequest, estimate
from core.params import count_parameters
from core.units import BYTES_PER_GB, BYTES_PER_GIB, BYTES_PER_MIB

# Google's Gemma docs table of weight memory: parameters x nominal bytes per parameter, in GiB,
# plus 20%, labelled "GB" (worked out in data/README.md; reproduces all 12 published figures).
GOOGLE_TABLE_OVERHEAD = 1.2
UNIT_BYTES = {"bytes": 1, "MiB": BYTES_PER_MIB, "GiB": BYTES_PER_GIB, "GB": BYTES_PER_GB}
# Parts of the estimate that are not the text decoder (GGUF files ship them in a separate mmproj).
ENCODER_COMPONENTS = ("vision", "audio")


class CalibrationRow(BaseModel):
    """One observation beside our prediction."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    quantity: str
    unit: str
    observed: float
    predicted: float
    difference: float
    tolerance: float
    within_tolerance: bool
    measured_here: bool
    source: str


def request_for(observation: Observation) -> MemoryRequest:
    """The scenario an observation describes."""
    defaults = EngineSettings()
    settings = EngineSettings(
        n_ubatch=observation.n_ubatch,
        swa_full=observation.swa_full,
        kv_unified=observation.kv_unified,
        # Most logs name their slots ("1/1 seqs"): -np was set, not left to auto.
        auto_slots=observation.auto_slots,
        kv_cache_memory_bytes=observation.kv_cache_memory_bytes,
        # Unset: vLLM's default for the observation's GPU (VllmPolicy.device_settings).
        max_num_batched_tokens=observation.max_num_batched_tokens,
        async_scheduling=(
            defaults.async_scheduling if observation.async_scheduling is None else observation.async_scheduling
        ),
    )
    return MemoryRequest(
        model=observation.model,
        weight_format=observation.weight_format,
        kv_cache_dtype=observation.kv_cache_dtype,
        engine=observation.engine,
        context_tokens=observation.context_tokens,
        concurrent_sequences=observation.concurrent_sequences,
        text_only=observation.text_only,
        gpu=observation.gpu,
        engine_settings=settings,
    )


def _lookup(result: MemoryEstimate, path: str) -> Any:
    value: Any = result.model_dump()
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"estimate has no '{path}'")
        value = value[part]
    return value


def predict(observation: Observation, catalog: Catalog) -> float:
    """Our figure for the observation's quantity, in its unit."""
    request = request_for(observation)
    if observation.quantity == "google_table_gb":
        # No estimate needed: the table is a formula over the parameter count.
        model = catalog.model(request.model)
        nominal_bits = math.floor(catalog.weight_format(request.weight_format).linear_bits)
        total = count_parameters(model.config).total
        return total * nominal_bits / 8 / BYTES_PER_GIB * GOOGLE_TABLE_OVERHEAD
    result = estimate(request, catalog)
    if observation.quantity == "text_weights_bytes":
        value: float = sum(w.bytes for w in result.weights if w.component not in ENCODER_COMPONENTS)
    else:
        value = _lookup(result, observation.quantity)
    if observation.quantity.endswith("_bytes"):
        value = value / UNIT_BYTES[observation.unit]
    return float(value)


def calibrate(catalog: Catalog | None = None) -> list[CalibrationRow]:
    """Every observation against our prediction."""
    catalog = catalog or load_catalog()
    rows = []
    for observation in catalog.observations:
        predicted = predict(observation, catalog)
        difference = predicted - observation.observed
        rows.append(
            CalibrationRow(
                id=observation.id,
                quantity=observation.quantity,
                unit=observation.unit,
                observed=observation.observed,
                predicted=predicted,
                difference=difference,
                tolerance=observation.tolerance,
                # A hair of float slack so '60.00 MiB' compares equal to 60 exactly.
                within_tolerance=abs(difference) <= observation.tolerance + 1e-9,
                measured_here=observation.measured_here,
                source=observation.source,
            )
        )
    return rows
