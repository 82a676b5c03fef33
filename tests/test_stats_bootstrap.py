"""Stratified bootstrap intervals: hand-checked cases, properties, determinism, BCa, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats
from harness.stats import StatsInputError
from harness.stats import bootstrap as bootstrap_module


def _random_scores(seed: int = 0, shape: tuple[int, int] = (5, 12)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.6, 0.3, size=shape)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_intervals_contain_the_point_estimate(method: stats.Method) -> None:
    scores = _random_scores()
    intervals = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(3), reps=2_000, method=method)
    assert list(intervals) == ["iqm", "mean", "median", "optimality_gap"]
    for name, interval in intervals.items():
        assert interval.low <= interval.point <= interval.high, name
        assert interval.low < interval.high, name
        assert (interval.method, interval.level, interval.reps) == (method, 0.95, 2_000)
    assert intervals["mean"].point == pytest.approx(stats.mean(scores), abs=1e-12)


def test_same_seed_gives_bit_identical_intervals_and_different_seeds_differ() -> None:
    scores = _random_scores(1)
    first = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(7), reps=1_000)
    again = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(7), reps=1_000)
    other = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(8), reps=1_000)
    assert first == again  # dataclass equality compares the floats exactly
    for name in first:
        assert (first[name].low, first[name].high) != (other[name].low, other[name].high)


def test_two_runs_one_task_by_hand() -> None:
    # runs {0, 1}: a resample's mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4.
    # level 0.4 -> quantiles 0.3 and 0.7, both inside the mass at 0.5: the interval is [0.5, 0.5].
    # level 0.9 -> quantiles 0.05 and 0.95, inside the masses at 0 and 1: the interval is [0, 1].
    scores = np.array([[0.0], [1.0]])
    narrow = stats.bootstrap_intervals(
        scores, {"mean": stats.mean_stack}, np.random.default_rng(0), reps=4_000, level=0.4
    )
    wide = stats.bootstrap_intervals(
        scores, {"mean": stats.mean_stack}, np.random.default_rng(0), reps=4_000, level=0.9
    )
    assert (narrow["mean"].low, narrow["mean"].high) == (0.5, 0.5)
    assert (wide["mean"].low, wide["mean"].high) == (0.0, 1.0)


def test_runs_are_resampled_within_each_task() -> None:
    # Task 0 always scores 0 and task 1 always 1: a within-task resample keeps the mean at exactly 0.5,
    # whereas resampling the pooled runs (ignoring tasks) would not.
    scores = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    within = stats.bootstrap_intervals(scores, {"mean": stats.mean_stack}, np.random.default_rng(0), reps=500)
    assert (within["mean"].low, within["mean"].high) == (0.5, 0.5)
    # Resampling tasks too: the mean of two drawn tasks is 0, 0.5 or 1.
    tasks = stats.bootstrap_intervals(
        scores, {"mean": stats.mean_stack}, np.random.default_rng(0), reps=500, resample_tasks=True
    )
    assert (tasks["mean"].low, tasks["mean"].high) == (0.0, 1.0)


def test_unequal_runs_use_each_tasks_own_runs() -> None:
    # Task 1 has two runs (both 1) and a missing one; missing cells must never be drawn.
    scores = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, np.nan]])
    with pytest.raises(StatsInputError, match="allow_unequal"):
        stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=100)
    intervals = stats.bootstrap_intervals(
        scores, stats.AGGREGATES, np.random.default_rng(0), reps=500, allow_unequal=True
    )
    assert (intervals["mean"].low, intervals["mean"].high) == (0.5, 0.5)
    for interval in intervals.values():
        assert np.isfinite([interval.point, interval.low, interval.high]).all()


def test_unequal_runs_interval_is_close_to_a_reference_bootstrap() -> None:
    # Reference: each task resampled over its own runs with a plain loop over tasks.
    rng = np.random.default_rng(11)
    scores = rng.random((6, 4))
    scores[4:, 1] = np.nan
    scores[5, 3] = np.nan
    ours = stats.bootstrap_intervals(
        scores, {"mean": stats.mean_stack}, np.random.default_rng(1), reps=20_000, allow_unequal=True
    )["mean"]
    reference_rng = np.random.default_rng(2)
    task_means = []
    for column in scores.T:
        runs = column[~np.isnan(column)]
        task_means.append(runs[reference_rng.integers(0, runs.size, size=(20_000, runs.size))].mean(axis=1))
    reference = np.quantile(np.mean(task_means, axis=0), [0.025, 0.975])
    assert ours.low == pytest.approx(reference[0], abs=0.01)
    assert ours.high == pytest.approx(reference[1], abs=0.01)


def test_reps_not_a_multiple_of_the_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = _random_scores(2, (4, 5))
    reference = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=3_001)
    # 7 repetitions per chunk of resampled scores; the built-in aggregates' run-count route gets 1
    monkeypatch.setattr(bootstrap_module, "CHUNK_BYTES", 8 * 4 * 5 * 7)
    chunked = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=3_001)
    for name in reference:
        assert chunked[name].reps == 3_001
        assert chunked[name].point == reference[name].point
        assert chunked[name].low == pytest.approx(reference[name].low, abs=0.03)
        assert chunked[name].high == pytest.approx(reference[name].high, abs=0.03)


def test_bca_matches_scipy_for_one_task() -> None:
    # With one task the stratified bootstrap is the ordinary bootstrap and the stratified jackknife is the
    # ordinary jackknife, so BCa must agree with scipy's (within Monte Carlo error).
    scipy_stats = pytest.importorskip("scipy.stats")
    sample = np.random.default_rng(5).exponential(1.0, size=25)  # skewed: BCa differs from percentile
    ours = stats.bootstrap_intervals(
        sample[:, None], {"mean": stats.mean_stack}, np.random.default_rng(0), reps=20_000, method="bca"
    )["mean"]
    theirs = scipy_stats.bootstrap(
        (sample,), np.mean, n_resamples=20_000, method="BCa", rng=np.random.default_rng(1)
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.02)
    assert ours.high == pytest.approx(theirs.high, abs=0.02)
    percentile = stats.bootstrap_intervals(
        sample[:, None], {"mean": stats.mean_stack}, np.random.default_rng(0), reps=20_000
    )["mean"]
    assert ours.high > percentile.high  # right skew moves the BCa interval up


def test_interval_shrinks_with_more_runs() -> None:
    rng = np.random.default_rng(4)
    few = stats.bootstrap_intervals(rng.random((3, 20)), {"iqm": stats.iqm_stack}, rng, reps=2_000)["iqm"]
    many = stats.bootstrap_intervals(rng.random((30, 20)), {"iqm": stats.iqm_stack}, rng, reps=2_000)["iqm"]
    assert many.high - many.low < few.high - few.low


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reps": 0}, "reps"),
        ({"level": 1.0}, "level"),
        ({"method": "basic"}, "method"),
        ({"method": "bca", "resample_tasks": True}, "not supported"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        stats.bootstrap_intervals(_random_scores(), stats.AGGREGATES, np.random.default_rng(0), **kwargs)


def test_a_confidence_interval_needs_two_runs_per_task() -> None:
    with pytest.raises(StatsInputError, match="at least 2 needed for a confidence interval"):
        stats.bootstrap_intervals(np.ones((1, 5)), stats.AGGREGATES, np.random.default_rng(0), reps=10)
    with pytest.raises(StatsInputError, match="task 2 has 1 available"):
        scores = np.ones((3, 4))
        scores[1:, 2] = np.nan
        stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=10, allow_unequal=True)
    with pytest.raises(StatsInputError, match="no aggregate"):
        stats.bootstrap_intervals(np.ones((3, 4)), {}, np.random.default_rng(0), reps=10)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_constant_scores_give_a_zero_width_interval(method: stats.Method) -> None:
    scores = np.full((3, 4), 0.25)
    intervals = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=200, method=method)
    for name, interval in intervals.items():
        expected = 0.75 if name == "optimality_gap" else 0.25
        assert interval.low == interval.point == interval.high == pytest.approx(expected, abs=1e-12), name


def test_task_resampling_with_unequal_runs() -> None:
    # tasks drawn with replacement: the mean of two drawn task means (0 and 1) is 0, 0.5 or 1
    scores = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, np.nan]])
    interval = stats.bootstrap_intervals(
        scores,
        {"mean": stats.mean_stack},
        np.random.default_rng(0),
        reps=500,
        resample_tasks=True,
        allow_unequal=True,
    )["mean"]
    assert (interval.low, interval.point, interval.high) == (0.0, 0.5, 1.0)


def test_randomness_must_come_from_an_explicit_generator() -> None:
    with pytest.raises(StatsInputError, match=r"numpy\.random\.Generator"):
        stats.bootstrap_intervals(_random_scores(), stats.AGGREGATES, np.random.RandomState(0), reps=10)  # type: ignore[arg-type]
