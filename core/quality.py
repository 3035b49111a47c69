"""Benchmark quality from the release table: a normalised score per model, and the Pareto frontier.

The release table measures the bf16 instruction-tuned models only, so every weight format of a
variant is assumed to keep its bf16 scores; quantisation usually costs a little, and a page
that shows these scores next to a quantised format must say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.catalog import Benchmark, Catalog


def normalised_score(benchmark: Benchmark, model_id: str) -> float:
    """A model's result on one benchmark in (0, 1], where 1 is the best model on it.

    The benchmarks use different scales (percent, Codeforces Elo, OmniDocBench edit distance),
    so raw scores cannot be averaged; a share of the best result can. Higher-is-better scores
    divide by the best; lower-is-better ones (edit distance) divide the best by the score, so
    half the best error rate would also read as twice as good, not as a negative number."""
    score = benchmark.scores[model_id]
    if benchmark.better == "higher":
        best = max(benchmark.scores.values())
        return score / best
    best = min(benchmark.scores.values())
    return best / score


def has_benchmarks(catalog: Catalog, model_id: str) -> bool:
    """Whether the release table scores this model (imported models have no scores)."""
    model = catalog.model(model_id)
    return bool(catalog.benchmarks) and all(model.id in benchmark.scores for benchmark in catalog.benchmarks)


def quality_score(catalog: Catalog, model_id: str) -> float:
    """Mean normalised score over the release benchmarks (1.0: best on every one). Accepts any
    model id or alias the catalogue knows; the bf16 scores stand for every weight format."""
    model = catalog.model(model_id)
    scores = [normalised_score(benchmark, model.id) for benchmark in catalog.benchmarks]
    return sum(scores) / len(scores)


def benchmark_frame(catalog: Catalog) -> pd.DataFrame:
    """The release table as a frame: benchmark, unit, better, then one column per model id
    (in catalogue order)."""
    model_ids = [model.id for model in catalog.models]
    rows = [
        {
            "benchmark": benchmark.benchmark,
            "unit": benchmark.unit,
            "better": benchmark.better,
            **{model_id: benchmark.scores[model_id] for model_id in model_ids},
        }
        for benchmark in catalog.benchmarks
    ]
    return pd.DataFrame(rows, columns=["benchmark", "unit", "better", *model_ids])


def pareto_frontier(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Labels of the (label, memory_bytes, quality) points no other point dominates, sorted by
    memory. A point is dominated by one that needs no more memory and scores no lower, and is
    strictly better on at least one of the two; exact duplicates dominate neither."""

    def dominated(memory: float, quality: float) -> bool:
        return any(
            other_memory <= memory
            and other_quality >= quality
            and (other_memory < memory or other_quality > quality)
            for _, other_memory, other_quality in points
        )

    frontier = [point for point in points if not dominated(point[1], point[2])]
    # Ties in memory: the better score first, then the label, so the order is stable.
    frontier.sort(key=lambda point: (point[1], -point[2], point[0]))
    return [label for label, _, _ in frontier]
