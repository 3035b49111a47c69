"""A plain-language recommendation from fit rows: the best option that fits, and cheaper ones."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from core.catalog import Catalog
from core.engines.registry import engine_policy
from core.fit import FitRow, Verdict
from core.quality import quality_score
from core.units import gib

# A clean fit beats a tight one whatever the quality: a tight fit can fail under load; running
# partly from host memory (offload) comes last, being many times slower.
VERDICT_PREFERENCE: tuple[Verdict, ...] = ("fits", "tight", "fits_with_offload")
# Formats below this many bits per weight lose noticeably more than the 4-bit ones: llama.cpp's
# quantize tool lists, on Llama-3-8B, Q4_K_M at +0.18 perplexity, Q3_K_M at +0.66 and Q2_K at
# +3.52 (tools/quantize/quantize.cpp, QUANT_OPTIONS descriptions).
QUALITY_FLOOR_BITS = 4.0
# given_up is rounded so that 85.2 - 82.6 reads 2.6, not 2.6000000000000085.
GIVEN_UP_DECIMALS = 6
# The headline benchmark unit for "points" in the text: percentage points read plainly.
HEADLINE_UNIT = "percent"


class Option(BaseModel):
    """One variant in one weight format, as the recommendation presents it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    weight_format: str
    engine: str
    verdict: Verdict
    total_bytes: int = Field(ge=0)
    headroom_bytes: int = Field(ge=0, description="usable minus needed when it fits; 0 when it does not")
    shortfall_bytes: int = Field(ge=0, description="memory missing when it does not fit; 0 when it fits")
    max_context_tokens: int = Field(ge=0)
    max_concurrent_sequences: int = Field(ge=0)
    quality: float = Field(ge=0, description="quality_score: mean share of the best benchmark result")
    given_up: dict[str, float] = Field(
        description="benchmark -> points lost versus the recommended option; positive = worse"
    )


class Recommendation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    best: Option | None
    cheaper: list[Option] = Field(description="other variants using less memory than best, by memory")
    text: str


def given_up(catalog: Catalog, model_id: str, versus_model_id: str) -> dict[str, float]:
    """Points `model_id` loses to `versus_model_id` on each benchmark; positive = worse, so a
    lower-is-better benchmark counts a higher score as a loss."""
    model, versus = catalog.model(model_id).id, catalog.model(versus_model_id).id
    lost = {}
    for benchmark in catalog.benchmarks:
        difference = benchmark.scores[versus] - benchmark.scores[model]
        if benchmark.better == "lower":
            difference = -difference
        lost[benchmark.benchmark] = round(difference, GIVEN_UP_DECIMALS)
    return lost


def _option(row: FitRow, catalog: Catalog, versus_model_id: str) -> Option:
    return Option(
        model=row.model,
        weight_format=row.weight_format,
        engine=row.engine,
        verdict=row.verdict,
        total_bytes=row.total_bytes,
        headroom_bytes=row.headroom_bytes,
        shortfall_bytes=row.shortfall_bytes,
        max_context_tokens=row.max_context_tokens,
        max_concurrent_sequences=row.max_concurrent_sequences,
        quality=quality_score(catalog, row.model),
        given_up=given_up(catalog, row.model, versus_model_id),
    )


def _name(catalog: Catalog, model_id: str, format_id: str, engine: str | None = None) -> str:
    name = f"{catalog.model(model_id).display_name} in {catalog.weight_format(format_id).display_name}"
    return f"{name} with {engine_policy(engine).short_name}" if engine else name


def _hardware(catalog: Catalog, row: FitRow) -> str:
    return f"{row.gpus} x {catalog.accelerator(row.gpu).name}"


def _requests(count: int) -> str:
    return f"{count:,} request" + ("" if count == 1 else "s")


def _points_phrase(catalog: Catalog, lost: dict[str, float]) -> str:
    """'gives up 2.6 points on MMLU Pro (9.6 on BigBench Hard at most)' over percent benchmarks."""
    percent = [b.benchmark for b in catalog.benchmarks if b.unit == HEADLINE_UNIT and b.benchmark in lost]
    if not percent:
        return "scores differently on the release benchmarks"
    headline = percent[0]
    value = lost[headline]
    phrase = (
        f"gives up {value:.1f} points on {headline}"
        if value >= 0
        else f"gains {-value:.1f} points on {headline}"
    )
    worst = max(percent, key=lambda name: lost[name])
    if worst != headline and lost[worst] > max(value, 0):
        phrase += f" ({lost[worst]:.1f} on {worst} at most)"
    return phrase


def _best_row(rows: Sequence[FitRow], catalog: Catalog) -> FitRow | None:
    # Rows come runtime by runtime, the most usual on the device first: a tie goes to it.
    runtime_order = {engine: -index for index, engine in enumerate(dict.fromkeys(row.engine for row in rows))}
    for wanted in VERDICT_PREFERENCE:
        candidates = [row for row in rows if row.verdict == wanted]
        if candidates:
            # A file of at least 4 bits per weight first: the release scores are bf16, and below
            # 4 bits the loss is no longer small (llama.cpp's own perplexity tables), so a 3-bit
            # 31B is named only where no 4-bit option fits. Then the highest quality; then more
            # bits per weight (closer to the measured bf16); then the device's usual runtime
            # (vLLM on an H100, not Ollama with more room); then room.
            return max(
                candidates,
                key=lambda row: (
                    catalog.weight_format(row.weight_format).main_bits >= QUALITY_FLOOR_BITS,
                    quality_score(catalog, row.model),
                    catalog.weight_format(row.weight_format).main_bits,
                    runtime_order[row.engine],
                    row.headroom_bytes,
                ),
            )
    return None


def _cheaper_rows(rows: Sequence[FitRow], catalog: Catalog, best: FitRow) -> list[FitRow]:
    """Per other variant, its highest-precision fitting format among those using less memory
    than the best option; ordered by memory."""
    chosen: dict[str, FitRow] = {}
    for row in rows:
        if row.verdict not in VERDICT_PREFERENCE or row.model == best.model:
            continue
        if row.total_bytes >= best.total_bytes:
            continue
        held = chosen.get(row.model)
        key = (catalog.weight_format(row.weight_format).main_bits, -row.total_bytes)
        if held is None or key > (catalog.weight_format(held.weight_format).main_bits, -held.total_bytes):
            chosen[row.model] = row
    return sorted(chosen.values(), key=lambda row: row.total_bytes)


def option_row(rows: Sequence[FitRow], option: Option) -> FitRow:
    """The fit row an option was made from (same model, format and runtime)."""
    return next(
        row for row in rows
        if (row.model, row.weight_format, row.engine) == (option.model, option.weight_format, option.engine)
    )


def recommend(rows: Sequence[FitRow], catalog: Catalog) -> Recommendation:
    """The highest-quality option that fits (a clean fit before a tight one; ties: more bits per
    weight, then more headroom), cheaper variants beside it, and a sentence or two saying so.
    Quality uses the release's bf16 scores for every weight format (core.quality)."""
    if not rows:
        return Recommendation(
            best=None,
            cheaper=[],
            text="No model and format could be planned with these settings: check the engine, "
            "the context length and the number of GPUs.",
        )
    best_row = _best_row(rows, catalog)
    if best_row is None:
        smallest = min(rows, key=lambda row: row.total_bytes)
        if smallest.total_bytes > smallest.usable_bytes:
            why = (
                f"needs {gib(smallest.total_bytes):,.1f} GiB but only "
                f"{gib(smallest.usable_bytes):,.1f} GiB is usable"
            )
        else:
            # Within usable memory, yet the engine sizes its KV cache at start-up and finds it
            # too small for one request (vLLM's "No available memory for the cache blocks").
            why = (
                f"leaves the engine {gib(smallest.shortfall_bytes):,.1f} GiB short of a KV cache "
                "for one request, so it does not start"
            )
        return Recommendation(
            best=None,
            cheaper=[],
            text=(
                f"Nothing fits on {_hardware(catalog, smallest)} with these settings: the smallest "
                f"option, {_name(catalog, smallest.model, smallest.weight_format)}, {why}. "
                "Shorten the context, serve fewer sequences, or choose a larger GPU."
            ),
        )

    best = _option(best_row, catalog, best_row.model)
    cheaper = [_option(row, catalog, best_row.model) for row in _cheaper_rows(rows, catalog, best_row)]
    spare = f"{gib(best.headroom_bytes):,.1f} GiB to spare"
    if best.verdict == "fits_with_offload" and best_row.offload is not None:
        offload = best_row.offload
        text = (
            f"Run {_name(catalog, best.model, best.weight_format, best.engine)} on "
            f"{_hardware(catalog, best_row)} with part of it in host memory ({offload.flags}: "
            f"{gib(offload.host_bytes):,.1f} GiB on the host, {offload.gpu_layers} of "
            f"{offload.total_layers} layers on the GPU): it runs, but every generated token reads "
            f"{gib(offload.host_read_bytes_per_token):,.2f} GiB from host memory, so it is slow."
        )
    else:
        fit_phrase = f"it fits with {spare}" if best.verdict == "fits" else f"it fits, but tightly, with only {spare}"
        text = (
            f"Run {_name(catalog, best.model, best.weight_format, best.engine)} on {_hardware(catalog, best_row)}: "
            f"{fit_phrase}; it could take up to {best.max_context_tokens:,} tokens of context, or "
            f"{_requests(best.max_concurrent_sequences)} at once at the planned context."
        )
    if cheaper:
        # The cheaper option that keeps the most quality is the one worth naming.
        closest = max(cheaper, key=lambda option: option.quality)
        saved = gib(best.total_bytes - closest.total_bytes)
        text += (
            f" A smaller alternative: {_name(catalog, closest.model, closest.weight_format, closest.engine)} "
            f"needs {saved:,.1f} GiB less and {_points_phrase(catalog, closest.given_up)}."
        )
    return Recommendation(best=best, cheaper=cheaper, text=text)
