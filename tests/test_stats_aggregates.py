"""Point estimates of the aggregates: hand-computed values, properties, rliable cross-check, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats
from harness.errors import InputError
from harness.stats import StatsInputError

# (runs=4, tasks=3)
SCORES = np.array(
    [
        [0.0, 0.1, 0.5],
        [0.3, 0.2, 0.5],
        [0.9, 0.4, 0.6],
        [5.0, 1.0, 0.6],
    ]
)


def test_iqm_by_hand() -> None:
    # pooled, sorted: 0.0 0.1 0.2 | 0.3 0.4 0.5 0.5 0.6 0.6 | 0.9 1.0 5.0
    # n = 12, cut = 12 // 4 = 3 from each end; kept sum = 2.9 over 6 -> 0.483333...
    assert stats.iqm(SCORES) == pytest.approx(2.9 / 6, abs=1e-12)


def test_iqm_by_hand_when_n_is_not_a_multiple_of_four() -> None:
    # pooled, sorted: 1 | 2 3 4 5 | 60; n = 6, cut = 6 // 4 = 1; kept mean = 14 / 4 = 3.5
    assert stats.iqm([[1.0, 2.0], [3.0, 4.0], [5.0, 60.0]]) == pytest.approx(3.5, abs=1e-12)


def test_mean_and_median_by_hand() -> None:
    # task means: (0 + 0.3 + 0.9 + 5) / 4 = 1.55, (0.1 + 0.2 + 0.4 + 1) / 4 = 0.425,
    #             (0.5 + 0.5 + 0.6 + 0.6) / 4 = 0.55
    # mean = (1.55 + 0.425 + 0.55) / 3 = 2.525 / 3; median = 0.55
    assert stats.mean(SCORES) == pytest.approx(2.525 / 3, abs=1e-12)
    assert stats.median(SCORES) == pytest.approx(0.55, abs=1e-12)
    # even number of tasks: median of task means 1.55 and 0.425 = (1.55 + 0.425) / 2
    assert stats.median(SCORES[:, :2]) == pytest.approx(0.9875, abs=1e-12)


def test_optimality_gap_by_hand() -> None:
    # gamma = 1: shortfalls max(1 - s, 0) per task: (1 + .7 + .1 + 0) / 4 = .45,
    # (.9 + .8 + .6 + 0) / 4 = .575, (.5 + .5 + .4 + .4) / 4 = .45; mean = 1.475 / 3
    assert stats.optimality_gap(SCORES) == pytest.approx(1.475 / 3, abs=1e-12)
    # gamma = 0.5: (.5 + .2) / 4 = .175, (.4 + .3 + .1) / 4 = .2, 0; mean = .375 / 3 = .125
    assert stats.optimality_gap(SCORES, gamma=0.5) == pytest.approx(0.125, abs=1e-12)


def test_unequal_runs_by_hand() -> None:
    scores = np.array([[0.2, 0.1], [0.4, np.nan], [0.9, 0.3]])
    with pytest.raises(StatsInputError, match="allow_unequal"):
        stats.mean(scores)
    # task means: (0.2 + 0.4 + 0.9) / 3 = 0.5 and (0.1 + 0.3) / 2 = 0.2; mean = median = 0.35
    assert stats.mean(scores, allow_unequal=True) == pytest.approx(0.35, abs=1e-12)
    assert stats.median(scores, allow_unequal=True) == pytest.approx(0.35, abs=1e-12)
    # available pooled: 0.1 | 0.2 0.3 0.4 | 0.9; n = 5, cut = 1; kept mean = 0.9 / 3 = 0.3
    assert stats.iqm(scores, allow_unequal=True) == pytest.approx(0.3, abs=1e-12)
    # shortfalls: (0.8 + 0.6 + 0.1) / 3 = 0.5 and (0.9 + 0.7) / 2 = 0.8; mean = 0.65
    assert stats.optimality_gap(scores, allow_unequal=True) == pytest.approx(0.65, abs=1e-12)


@pytest.mark.parametrize("kernel", list(stats.AGGREGATES.values()))
def test_stack_kernels_match_one_matrix_at_a_time(kernel: stats.StackAggregate) -> None:
    rng = np.random.default_rng(0)
    stack = rng.random((3, 5, 7))  # (reps, runs, tasks)
    stack[1, :2, 3] = np.nan  # one resample with missing runs, the others complete
    values = kernel(stack)
    assert values.shape == (3,)
    for index in range(3):
        assert values[index] == pytest.approx(float(kernel(stack[index])), abs=1e-12)


@pytest.mark.parametrize("name", list(stats.AGGREGATES))
def test_constant_matrix_gives_the_constant(name: str) -> None:
    point = {"iqm": stats.iqm, "mean": stats.mean, "median": stats.median}
    value = 0.37
    scores = np.full((5, 6), value)
    if name == "optimality_gap":
        assert stats.optimality_gap(scores) == pytest.approx(1.0 - value, abs=1e-12)
    else:
        assert point[name](scores) == pytest.approx(value, abs=1e-12)


def test_permuting_runs_within_each_task_changes_nothing() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((6, 9))
    shuffled = np.stack([rng.permutation(column) for column in scores.T], axis=1)  # (runs, tasks)
    for function in (stats.iqm, stats.mean, stats.median, stats.optimality_gap):
        assert function(shuffled) == pytest.approx(function(scores), abs=1e-12)


@pytest.mark.parametrize("shape", [(5, 7), (3, 104), (10, 1), (2, 50)])
def test_point_estimates_match_rliable(shape: tuple[int, int]) -> None:
    metrics = pytest.importorskip("rliable.metrics")
    rng = np.random.default_rng(sum(shape))
    scores = rng.normal(0.5, 0.4, size=shape)
    assert stats.iqm(scores) == pytest.approx(metrics.aggregate_iqm(scores), abs=1e-12)
    assert stats.mean(scores) == pytest.approx(metrics.aggregate_mean(scores), abs=1e-12)
    assert stats.median(scores) == pytest.approx(metrics.aggregate_median(scores), abs=1e-12)
    for gamma in (1.0, 0.5):
        expected = metrics.aggregate_optimality_gap(scores, gamma)
        assert stats.optimality_gap(scores, gamma) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("scores", "kwargs", "message"),
    [
        (np.ones(5), {}, "expected a 2-D"),
        (np.ones((2, 3, 4)), {}, "expected a 2-D"),
        (np.ones((0, 4)), {}, "empty selection"),
        (np.ones((39, 3)), {"n_tasks": 39}, "looks transposed"),
        (np.ones((3, 38)), {"n_tasks": 39}, "expected 39 tasks"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), {}, "infinite"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), {}, "NaN"),
        (np.array([[1.0, np.nan], [0.0, np.nan]]), {"allow_unequal": True}, "task 1 has 0 available"),
        ([["a", "b"]], {}, "float array"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_message(scores: object, kwargs: dict, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        stats.iqm(scores, **kwargs)  # type: ignore[arg-type]


def test_stats_input_error_is_an_input_error_and_a_value_error() -> None:
    # the CLI reports an InputError with exit code 2; library callers may catch ValueError
    assert issubclass(StatsInputError, InputError)
    assert issubclass(StatsInputError, ValueError)
    with pytest.raises(InputError) as caught:
        stats.iqm(np.ones(5))
    assert caught.value.exit_code == 2


def test_n_tasks_accepts_the_right_orientation() -> None:
    assert stats.mean(np.ones((3, 39)), n_tasks=39) == 1.0
