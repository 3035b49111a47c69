"""Device fit: usable memory, verdict, headroom, offload, the longest context and most sequences that fit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.catalog import Catalog, load_catalog
from core.estimate import (
    Evaluation,
    MemoryProfile,
    MemoryRequest,
    PlanningError,
    evaluate,
    media_tokens,
    memory_profile,
    runtime_request,
    sequence_tokens_for,
)
from core.engines.registry import engine_policy
from core.offload import Offload, host_usable_bytes, llama_fit, streamed
from core.runtimes import default_kv_cache, formats_for, runtimes_for
from core.units import BYTES_PER_MIB

# Below this share of usable memory left free, a fit is "tight": allocator fragmentation and
# bursts can push it over (gpus.md: "then 5-10% headroom").
TIGHT_HEADROOM_FRACTION = 0.05
# Search bound for concurrent sequences; far beyond any single-node deployment.
MAX_SEARCH_SEQUENCES = 10_000_000

Verdict = Literal["fits", "tight", "fits_with_offload", "does_not_fit"]


class FitResult(BaseModel):
    """How one request sits on `gpus` x one accelerator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gpu: str
    engine: str
    gpus: int = Field(gt=0)
    usable_bytes: int = Field(ge=0, description="memory the model may use, all GPUs together")
    total_bytes: int = Field(ge=0)
    fits: bool
    verdict: Verdict
    headroom_bytes: int = Field(ge=0, description="usable minus needed when it fits; 0 when it does not")
    shortfall_bytes: int = Field(
        ge=0,
        description="when it does not fit: needed minus usable, or what the engine's KV pool lacks "
        "to start, whichever is more; when the runtime offloads, what host RAM lacks for the "
        "offloaded part; 0 when it fits",
    )
    engine_error: str | None = Field(
        default=None, description="what the engine prints when it refuses to start (vLLM: no room for its KV cache)"
    )
    max_context_tokens: int = Field(ge=0, description="longest context_tokens that fits on the GPU(s) alone; 0 if none")
    max_concurrent_sequences: int = Field(ge=0, description="most sequences at the request's context, on the GPU(s) alone")
    offload: Offload | None = Field(
        default=None, description="what the runtime moves to host memory when the GPU(s) alone are too small"
    )
    host_usable_bytes: int = Field(default=0, ge=0, description="host RAM offload may fill (the machine's, less the OS's share)")


def gpu_limit_bytes(profile: MemoryProfile, usable: int) -> int:
    """What the runtime fills before it offloads: llama-server's --fit keeps --fit-target MiB
    free on every device (1,024 by default; Ollama sets projector + 1 GiB, with the projector
    counted in our total, the same 1 GiB)."""
    if profile.policy.offload_method == "llama.cpp --fit" and not profile.allowance.unified_memory:
        return max(0, usable - profile.settings.fit_target_mib * BYTES_PER_MIB * profile.gpus)
    # Unified memory: whatever --fit moves to the CPU stays in the same memory.
    return usable


def host_usable(profile: MemoryProfile, catalog: Catalog) -> int:
    """Host RAM offload may fill: the device's own figure (or its kind's), less the OS's share."""
    accelerator = profile.accelerator
    if accelerator is None or profile.allowance.unified_memory:
        return 0
    host = accelerator.host_memory_bytes
    if host is None:
        host = profile.allowance.host_memory_bytes
    return host_usable_bytes(host, catalog.runtime("cpu").driver_reserved_bytes)


def _offload(profile: MemoryProfile, evaluation: Evaluation, usable: int, shortfall: int) -> Offload | None:
    """The runtime's own offload, where it has one and the GPU(s) alone are too small. Unified
    memory has nowhere else to put weights."""
    method = profile.policy.offload_method
    if method is None or profile.allowance.unified_memory:
        return None
    if method == "llama.cpp --fit":
        return llama_fit(profile, evaluation, gpu_limit_bytes(profile, usable))
    if profile.settings.kv_cache_memory_bytes is not None and method == "vLLM --cpu-offload-gb":
        # A pool set in bytes does not grow when weights leave the GPU.
        return None
    return streamed(profile, evaluation, shortfall, method)


def usable_bytes(profile: MemoryProfile) -> int:
    """Memory the engine may use on the profile's GPUs (driver total less its reserve, or what
    the engine claims of it)."""
    if profile.accelerator is None:
        raise PlanningError("a fit needs a GPU: set gpu (e.g. h100, rtx-4090, m4 max 128gb)")
    # A device smaller than the system's own reserve (a typed-in 0.5 GiB board) has nothing
    # left for a model: zero, not a negative amount.
    return max(0, profile.policy.usable_bytes(
        profile, profile.accelerator.memory_bytes, profile.allowance.driver_reserved_bytes
    ))


def verdict(headroom_bytes: int, shortfall_bytes: int, usable: int) -> Verdict:
    if shortfall_bytes > 0:
        return "does_not_fit"
    if headroom_bytes < TIGHT_HEADROOM_FRACTION * usable:
        return "tight"
    return "fits"


def _memory_bytes(profile: MemoryProfile) -> int:
    return profile.accelerator.memory_bytes  # type: ignore[union-attr]  # usable_bytes checked it


def shortfall_bytes(profile: MemoryProfile, sequence_tokens: int, total: int, usable: int) -> int:
    """Bytes missing for the request to run: beyond what is usable, or, for an engine that sizes
    its KV cache at start-up (vLLM), what that cache lacks for one request, whichever is more."""
    engine = int(profile.policy.start_shortfall_bytes(profile, sequence_tokens, _memory_bytes(profile)))
    return max(total - usable, engine, 0)


def _largest(margin: Callable[[int], int], low: int, high: int) -> int:
    """Largest n in [low, high] with margin(n) >= 0, for margins whose sign is monotone (fits,
    then does not); low - 1 if none. The margins (bytes left, negative when short) guide the
    guesses: memory is nearly affine in tokens and sequences, so interpolating between the
    bracket's ends lands within a block or two of the answer in 3-5 evaluations where bisection
    took ~18. Every guess only narrows a verified bracket, so the result is bisection's; a step
    that does not halve the bracket is followed by a bisection step, which bounds the worst case."""
    if low > high:
        return low - 1
    low_margin = margin(low)
    if low_margin < 0:
        return low - 1
    high_margin = margin(high)
    if high_margin >= 0:
        return high
    bisect_next = False
    while high - low > 1:
        width = high - low
        if bisect_next:
            guess = (low + high) // 2
        else:
            guess = low + (width * low_margin) // (low_margin - high_margin)
        guess = min(max(guess, low + 1), high - 1)
        guess_margin = margin(guess)
        if guess_margin >= 0:
            low, low_margin = guess, guess_margin
        else:
            high, high_margin = guess, guess_margin
        bisect_next = not bisect_next and 2 * (high - low) > width
    return low


def max_context_tokens(profile: MemoryProfile, request: MemoryRequest, usable: int) -> int:
    """Longest `context_tokens` that fits with the request's media, thinking and sequences."""
    model = profile.model
    extra = (
        media_tokens(model, request.images, request.image_tokens, request.audio_seconds)
        + request.thinking_tokens
    )
    sequences = request.concurrent_sequences

    limit = gpu_limit_bytes(profile, usable)
    key = ("max_context_tokens", extra, sequences, limit)
    if key in profile.solved:
        return profile.solved[key]

    def margin(context: int) -> int:
        total = int(evaluate(profile, context + extra, sequences).total_bytes)
        engine = int(profile.policy.start_shortfall_bytes(profile, context + extra, _memory_bytes(profile)))
        return -engine if engine > 0 else limit - total

    longest = max(0, _largest(margin, 1, model.max_context_tokens - extra))
    profile.solved[key] = longest
    return longest


def max_concurrent_sequences(profile: MemoryProfile, sequence_tokens: int, usable: int) -> int:
    """Most sequences of `sequence_tokens` each that fit."""

    if profile.policy.start_shortfall_bytes(profile, sequence_tokens, _memory_bytes(profile)):
        return 0  # the engine does not start, so it serves no sequence at all

    limit = gpu_limit_bytes(profile, usable)

    def margin(sequences: int) -> int:
        return limit - int(evaluate(profile, sequence_tokens, sequences).total_bytes)

    return max(0, _largest(margin, 1, MAX_SEARCH_SEQUENCES))


def fit(request: MemoryRequest, catalog: Catalog | None = None) -> FitResult:
    """Fit a request on its GPU(s): verdict, headroom and both solvers."""
    catalog = catalog or load_catalog()
    request, _ = runtime_request(request, catalog)
    profile = memory_profile(request, catalog)
    usable = usable_bytes(profile)  # refuses a request without a GPU
    tokens, _ = sequence_tokens_for(request, profile.model)
    evaluation = evaluate(profile, tokens, request.concurrent_sequences)
    total = int(evaluation.total_bytes)
    shortfall = shortfall_bytes(profile, tokens, total, usable)
    offload = _offload(profile, evaluation, usable, shortfall)
    host = host_usable(profile, catalog)
    if offload is not None:
        shortfall = max(0, offload.host_bytes - host)
        headroom = 0
        result_verdict: Verdict = "does_not_fit" if shortfall else "fits_with_offload"
    else:
        headroom = 0 if shortfall else usable - total
        result_verdict = verdict(headroom, shortfall, usable)
    return FitResult(
        gpu=profile.accelerator.id,  # type: ignore[union-attr]
        engine=profile.policy.id,
        gpus=request.gpus,
        usable_bytes=usable,
        total_bytes=total,
        fits=shortfall == 0,
        verdict=result_verdict,
        headroom_bytes=headroom,
        shortfall_bytes=shortfall,
        # Offload that works starts the engine; otherwise its own refusal stands.
        engine_error=(
            None if result_verdict == "fits_with_offload" else profile.policy.start_error(profile, tokens, _memory_bytes(profile))
        ),
        max_context_tokens=max_context_tokens(profile, request, usable),
        max_concurrent_sequences=max_concurrent_sequences(profile, tokens, usable),
        offload=offload,
        host_usable_bytes=host,
    )


class FitRow(FitResult):
    """One cell of the variant x weight-format matrix."""

    model: str
    weight_format: str


def fit_matrix(
    request: MemoryRequest, catalog: Catalog | None = None, engines: Sequence[str] | None = None
) -> list[FitRow]:
    """Every variant x every weight format each runtime in `engines` can use on the request's
    GPU(s) (default: the request's engine alone), fitted there; each row names its runtime.
    The request's own model and format are ignored; a KV cache type a runtime lacks becomes its
    default. Variants the runtime refuses for this request (a browser buffer a tensor exceeds,
    no export of that model, audio on a model without an encoder, a context above the model's
    maximum, a tensor-parallel degree that does not divide its heads) are left out: refused_cells
    gives them with the reason."""
    catalog = catalog or load_catalog()
    return list(_fit_cells(request, catalog, tuple(engines or [request.engine]))[0])


class RefusedCell(BaseModel):
    """A variant x weight format a runtime offers on the device but refuses for this request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    weight_format: str
    engine: str
    reason: str = Field(description="the refusal as the planner words it (the runtime's own rule)")


def refused_cells(
    request: MemoryRequest, catalog: Catalog | None = None, engines: Sequence[str] | None = None
) -> list[RefusedCell]:
    """The cells fit_matrix leaves out, each with why: what a user on that device would hit."""
    catalog = catalog or load_catalog()
    return list(_fit_cells(request, catalog, tuple(engines or [request.engine]))[1])


# A page reruns the same matrix on every interaction that does not change the scenario (a tab,
# a download, another model's colour): ~100 fits and their solvers cost ~20 ms, a hit nothing.
# Rows are frozen models, so sharing them is safe; a few scenarios per session are enough.
@lru_cache(maxsize=32)
def _fit_cells(
    request: MemoryRequest, catalog: Catalog, engines: tuple[str, ...]
) -> tuple[tuple[FitRow, ...], tuple[RefusedCell, ...]]:
    accelerator = catalog.accelerator(request.gpu) if request.gpu else None
    rows = []
    refused = []
    for engine in engines:
        engine_id = engine_policy(engine).id
        for model in catalog.models:
            for weight_format in formats_for(catalog, engine_id, accelerator):
                if not weight_format.applies_to(model):
                    continue
                cell = cell_request(request, catalog, model.id, weight_format.id, engine_id)
                try:
                    result = fit(cell, catalog)
                except PlanningError as error:
                    refused.append(
                        RefusedCell(model=model.id, weight_format=weight_format.id, engine=engine_id, reason=str(error))
                    )
                    continue
                rows.append(FitRow(model=model.id, weight_format=weight_format.id, **result.model_dump()))
    return tuple(rows), tuple(refused)


def cell_request(request: MemoryRequest, catalog: Catalog, model: str, weight_format: str, engine: str) -> MemoryRequest:
    """The request one matrix cell fits: its model, format and runtime, and the request's KV
    cache type where the runtime has it (else the runtime's default)."""
    engine_id = engine_policy(engine).id
    kv = catalog.kv_cache_type(request.kv_cache_dtype)
    kv_id = kv.id if engine_id in kv.engines else default_kv_cache(engine_id)
    return request.model_copy(
        update={"model": model, "weight_format": weight_format, "engine": engine_id, "kv_cache_dtype": kv_id}
    )


def device_fit_matrix(request: MemoryRequest, catalog: Catalog | None = None) -> list[FitRow]:
    """The fit matrix for every runtime that runs on the request's device, most usual first."""
    catalog = catalog or load_catalog()
    if request.gpu is None:
        raise PlanningError("a fit needs a device: set gpu (e.g. h100, rtx-4090, rpi5-8gb)")
    return fit_matrix(request, catalog, runtimes_for(catalog, catalog.accelerator(request.gpu)))
