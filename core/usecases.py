"""Use cases and the start page's answer: the best Gemma 4 plan for a device, with its speed and cost."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.catalog import Catalog, load_catalog
from core.estimate import MemoryEstimate, MemoryRequest, PlanningError, estimate
from core.fit import FitRow, cell_request, fit_matrix
from core.quality import has_benchmarks
from core.recommend import Recommendation, option_row, recommend
from core.runtimes import default_kv_cache, runtimes_for
from core.throughput import ThroughputEstimate, throughput

# Gemma 4's thinking traces run to about 4,000 tokens (gemma4-architecture.md: thinking mode);
# an agent keeps them in its context on top of the conversation and tool results.
AGENT_THINKING_TOKENS = 4_000


class UseCase(BaseModel):
    """What the user wants to do, as context per request and requests at once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z]+$")
    label: str
    description: str
    context_tokens: int = Field(gt=0, description="prompt plus answer tokens per request")
    thinking_tokens: int = Field(default=0, ge=0)
    serves_many: bool = Field(default=False, description="concurrent requests = the number of users")


USE_CASES: tuple[UseCase, ...] = (
    UseCase(id="chat", label="Chat", description="one person chatting, 8K tokens of conversation", context_tokens=8_192),
    UseCase(
        id="documents", label="Long documents", description="one person, whole documents in the prompt (128K tokens)",
        context_tokens=131_072,
    ),
    UseCase(
        id="agent", label="Agent with thinking",
        description="tool calls and results in a 32K context, plus about 4,000 tokens of thinking",
        context_tokens=32_768, thinking_tokens=AGENT_THINKING_TOKENS,
    ),
    UseCase(
        id="serving", label="Serving users", description="several people at once, 8K tokens each",
        context_tokens=8_192, serves_many=True,
    ),
)
USE_CASE_IDS = tuple(u.id for u in USE_CASES)


def use_case(use_case_id: str) -> UseCase:
    for case in USE_CASES:
        if case.id == use_case_id:
            return case
    raise PlanningError(f"unknown use case {use_case_id!r}: use one of {', '.join(USE_CASE_IDS)}")


def use_case_request(case: UseCase, gpu: str, gpus: int = 1, users: int = 1) -> MemoryRequest:
    """The request template a use case puts to the device (model and format are the fit's)."""
    return MemoryRequest(
        model="31b",
        gpu=gpu,
        gpus=gpus,
        context_tokens=case.context_tokens,
        thinking_tokens=case.thinking_tokens,
        concurrent_sequences=users if case.serves_many else 1,
    )


class Answer(BaseModel):
    """The best plan for a device and use case, what it needs and how fast it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: tuple[FitRow, ...] = Field(description="every Gemma 4 variant x format x runtime on the device")
    recommendation: Recommendation
    plan: MemoryRequest | None = Field(description="the recommended option as a request; None: nothing runs")
    estimate: MemoryEstimate | None = None
    best_row: FitRow | None = None
    speed: ThroughputEstimate | None = Field(default=None, description="None: the device has no bandwidth figure")


def _as_shipped(request: MemoryRequest, engine: str) -> MemoryRequest:
    return request.model_copy(update={"engine": engine, "kv_cache_dtype": default_kv_cache(engine)})


def answer(request: MemoryRequest, catalog: Catalog | None = None) -> Answer:
    """Fit every Gemma 4 variant under every runtime on the request's device; recommend one."""
    catalog = catalog or load_catalog()
    if request.gpu is None:
        raise PlanningError("an answer needs a device: set gpu (e.g. rtx-4090, rpi5-8gb)")
    # Each runtime as it ships: its own KV cache type (f16 in llama.cpp and Ollama, the model's
    # dtype in vLLM), most usual runtime first.
    rows = tuple(
        row
        for engine in runtimes_for(catalog, catalog.accelerator(request.gpu))
        for row in fit_matrix(_as_shipped(request, engine), catalog, [engine])
        if has_benchmarks(catalog, row.model)
    )
    advice = recommend(rows, catalog)
    if advice.best is None:
        return Answer(rows=rows, recommendation=advice, plan=None)
    best = advice.best
    plan = cell_request(_as_shipped(request, best.engine), catalog, best.model, best.weight_format, best.engine)
    best_row = option_row(rows, best)
    try:
        speed: ThroughputEstimate | None = throughput(plan, catalog=catalog)
    except PlanningError:
        speed = None
    return Answer(
        rows=rows, recommendation=advice, plan=plan, estimate=estimate(plan, catalog), best_row=best_row, speed=speed
    )
