"""Probability of improvement: hand-computed values, rliable cross-check, intervals, pairwise helper."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats
from harness.stats import StatsInputError

# (runs=2, tasks=2)
X = np.array([[2.0, 0.0], [3.0, 0.0]])
Y = np.array([[2.0, 1.0], [1.0, 1.0]])


def test_probability_of_improvement_by_hand() -> None:
    # task 0 pairs (x, y): (2, 2) tie = 1/2, (2, 1) win, (3, 2) win, (3, 1) win -> 3.5 / 4 = 0.875
    # task 1: every x (0) is below every y (1) -> 0; mean over tasks = 0.4375
    assert stats.probability_of_improvement(X, Y) == pytest.approx(0.4375, abs=1e-12)
    # the reverse direction: task 0 -> 0.5 / 4 = 0.125, task 1 -> 1; mean 0.5625 = 1 - 0.4375
    assert stats.probability_of_improvement(Y, X) == pytest.approx(0.5625, abs=1e-12)


def test_tie_tolerance_by_hand() -> None:
    x = np.array([[0.5, 0.9], [0.7, 0.3]])  # (runs_x=2, tasks=2)
    y = np.array([[0.5 + 1e-12, 0.8996], [0.69, 0.3]])  # (runs_y=2, tasks=2)
    # Tolerance 0: task 0 pairs (x, y): (0.5, 0.5+1e-12) loss, (0.5, 0.69) loss, (0.7, 0.5+1e-12) win,
    # (0.7, 0.69) win -> 2 / 4; task 1: (0.9, 0.8996) win, (0.9, 0.3) win, (0.3, 0.8996) loss,
    # (0.3, 0.3) tie -> 2.5 / 4. Mean (0.5 + 0.625) / 2 = 0.5625.
    assert stats.probability_of_improvement(x, y) == pytest.approx(0.5625, abs=1e-12)
    # Tolerance 0.001: (0.5, 0.5+1e-12) and (0.9, 0.8996) become ties, (0.7, 0.69) stays a win:
    # task 0 -> (0.5 + 0 + 1 + 1) / 4 = 0.625; task 1 -> (0.5 + 1 + 0 + 0.5) / 4 = 0.5; mean 0.5625.
    assert stats.probability_of_improvement(x, y, tie_tolerance=0.001) == pytest.approx(0.5625, abs=1e-12)
    # Tolerance 0.02: (0.7, 0.69) is a tie too: task 0 -> (0.5 + 0 + 1 + 0.5) / 4 = 0.5; mean 0.5.
    assert stats.probability_of_improvement(x, y, tie_tolerance=0.02) == pytest.approx(0.5, abs=1e-12)
    # Both directions still add up to 1.
    assert stats.probability_of_improvement(y, x, tie_tolerance=0.02) == pytest.approx(0.5, abs=1e-12)
    assert stats.probability_of_improvement(y, x, tie_tolerance=0.001) == pytest.approx(0.4375, abs=1e-12)


def test_a_copy_scaled_by_one_minus_1e_12_is_a_tie_only_with_a_tolerance() -> None:
    y = np.array([[0.2, 0.6], [0.4, 0.8], [0.3, 1.0]])  # (runs=3, tasks=2), distinct within each task
    x = y * (1 - 1e-12)
    # Without a tolerance each same-seed pair is a loss (x_i < y_i) and the other pairs are those of y
    # against itself (3 wins of 6): P = 3 / 9 on each task. With one, the 3 same-seed pairs tie: 4.5 / 9.
    assert stats.probability_of_improvement(x, y) == pytest.approx(1 / 3, abs=1e-12)
    assert stats.probability_of_improvement(x, y, tie_tolerance=1e-6) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(StatsInputError, match="tie_tolerance"):
        stats.probability_of_improvement(x, y, tie_tolerance=-1.0)


def test_unequal_run_counts_between_agents_and_within_tasks() -> None:
    x = np.array([[1.0, 5.0], [3.0, np.nan], [0.0, 6.0]])  # (runs_x=3, tasks=2); task 1 has 2 runs
    y = np.array([[2.0, 5.0]])  # (runs_y=1, tasks=2)
    # task 0: 1 < 2, 3 > 2, 0 < 2 -> 1 / 3; task 1: (5, 5) tie, (6, 5) win -> 1.5 / 2 = 0.75
    expected = (1 / 3 + 0.75) / 2
    assert stats.probability_of_improvement(x, y, allow_unequal=True) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(StatsInputError, match="allow_unequal"):
        stats.probability_of_improvement(x, y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_rliable_with_ties(seed: int) -> None:
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(5, 8)).astype(float)  # few distinct values: many ties
    y = rng.integers(0, 4, size=(7, 8)).astype(float)
    assert stats.probability_of_improvement(x, y) == pytest.approx(metrics.probability_of_improvement(x, y), abs=1e-12)


def test_interval_contains_point_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(0.6, 0.2, size=(5, 10)), rng.normal(0.5, 0.2, size=(4, 10))
    first = stats.probability_of_improvement_interval(x, y, np.random.default_rng(0), reps=2_000)
    again = stats.probability_of_improvement_interval(x, y, np.random.default_rng(0), reps=2_000)
    assert first == again
    assert first.low <= first.point <= first.high
    assert first.point == pytest.approx(stats.probability_of_improvement(x, y), abs=1e-12)
    bca = stats.probability_of_improvement_interval(x, y, np.random.default_rng(0), reps=2_000, method="bca")
    assert bca.low <= bca.point <= bca.high


def test_pairwise_covers_every_ordered_pair_consistently() -> None:
    rng = np.random.default_rng(4)
    scores = {name: rng.normal(shift, 0.2, size=(4, 6)) for name, shift in [("a", 0.3), ("b", 0.5), ("c", 0.7)]}
    results = stats.pairwise_probability_of_improvement(scores, np.random.default_rng(0), reps=1_000)
    assert set(results) == {(p, q) for p in scores for q in scores if p != q}
    for (p, q), interval in results.items():
        reverse = results[q, p]
        assert interval.point == pytest.approx(1.0 - reverse.point, abs=1e-12)
        assert interval.low == pytest.approx(1.0 - reverse.high, abs=1e-12)
        assert interval.high == pytest.approx(1.0 - reverse.low, abs=1e-12)
        assert interval.point == pytest.approx(stats.probability_of_improvement(scores[p], scores[q]), abs=1e-12)


def test_agents_must_cover_the_same_tasks() -> None:
    with pytest.raises(StatsInputError, match="same tasks"):
        stats.probability_of_improvement(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(StatsInputError, match="same tasks"):
        stats.pairwise_probability_of_improvement(
            {"a": np.ones((3, 4)), "b": np.ones((3, 5))}, np.random.default_rng(0), reps=10
        )
