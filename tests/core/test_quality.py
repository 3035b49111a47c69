"""Quality: normalised release scores by hand, the benchmark frame, and the Pareto frontier."""

import pytest

from core.quality import benchmark_frame, normalised_score, pareto_frontier, quality_score

# The release table (gemma4-architecture.md, Benchmarks): 31B, 26B A4B, E4B, E2B.
TABLE = {
    "MMLU Pro": (85.2, 82.6, 69.4, 60.0),
    "AIME 2026": (89.2, 88.3, 42.5, 37.5),
    "GPQA Diamond": (84.3, 82.3, 58.6, 43.4),
    "BigBench Hard": (74.4, 64.8, 33.1, 21.9),
    "LiveCodeBench v6": (80.0, 77.1, 52.0, 44.0),
    "Codeforces Elo": (2150, 1718, 940, 633),
    "MMMU Pro": (76.9, 73.8, 52.6, 44.2),
    "MATH-Vision": (85.6, 82.4, 59.5, 52.4),
}
OMNIDOC = (0.131, 0.149, 0.181, 0.290)  # edit distance, lower is better


def test_31b_is_best_everywhere_so_it_scores_exactly_one(catalog):
    assert quality_score(catalog, "31b") == 1.0


@pytest.mark.parametrize(("model", "column"), [("26b", 1), ("e4b", 2), ("e2b", 3)])
def test_scores_are_the_mean_share_of_the_best_result(catalog, model, column):
    # 31B holds every best result: higher-is-better scores divide by its score; OmniDocBench
    # (edit distance) divides its 0.131 by the model's distance.
    shares = [scores[column] / scores[0] for scores in TABLE.values()] + [OMNIDOC[0] / OMNIDOC[column]]
    assert quality_score(catalog, model) == pytest.approx(sum(shares) / 9, rel=1e-12)


def test_e2b_by_hand(catalog):
    shares = [60.0 / 85.2, 37.5 / 89.2, 43.4 / 84.3, 21.9 / 74.4, 44.0 / 80.0, 633 / 2150, 44.2 / 76.9, 52.4 / 85.6, 0.131 / 0.290]
    assert quality_score(catalog, "gemma-4-e2b") == pytest.approx(sum(shares) / 9)
    # 0.70423 + 0.42040 + 0.51483 + 0.29435 + 0.55 + 0.29442 + 0.57477 + 0.61215 + 0.45172 = 4.41687
    assert quality_score(catalog, "gemma-4-e2b") == pytest.approx(4.41687 / 9, abs=1e-5)


def test_lower_is_better_divides_the_best_by_the_score(catalog):
    omnidoc = next(b for b in catalog.benchmarks if b.benchmark == "OmniDocBench")
    assert omnidoc.better == "lower"
    assert normalised_score(omnidoc, "gemma-4-e2b") == pytest.approx(0.131 / 0.290)
    assert normalised_score(omnidoc, "gemma-4-31b") == 1.0


def test_scores_order_the_variants(catalog):
    scores = [quality_score(catalog, m) for m in ("31b", "26b", "e4b", "e2b")]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < score <= 1 for score in scores)


def test_benchmark_frame_is_the_release_table(catalog):
    frame = benchmark_frame(catalog)
    assert list(frame.columns) == ["benchmark", "unit", "better", "gemma-4-e2b", "gemma-4-e4b", "gemma-4-26b-a4b", "gemma-4-31b"]
    assert len(frame) == 9
    omnidoc = frame.set_index("benchmark").loc["OmniDocBench"]
    assert omnidoc["better"] == "lower" and omnidoc["gemma-4-e2b"] == 0.290
    assert frame.set_index("benchmark").loc["Codeforces Elo", "gemma-4-26b-a4b"] == 1718


def test_pareto_frontier_on_hand_made_points():
    points = [
        ("big", 60.0, 1.00),
        ("mid", 30.0, 0.90),
        ("worse-mid", 35.0, 0.85),  # more memory and lower quality than mid
        ("small", 10.0, 0.50),
        ("same-memory-worse", 10.0, 0.40),  # dominated: equal memory, strictly lower quality
        ("same-quality-bigger", 70.0, 1.00),  # dominated: equal quality, strictly more memory
    ]
    assert pareto_frontier(points) == ["small", "mid", "big"]


def test_pareto_frontier_keeps_exact_duplicates_and_handles_empty():
    assert pareto_frontier([("b", 1.0, 0.5), ("a", 1.0, 0.5)]) == ["a", "b"]
    assert pareto_frontier([]) == []
