"""Probability of improvement P(X > Y) between two agents.

Per task, P(X > Y) is the Mann-Whitney U statistic of X's runs against Y's divided by
n_x * n_y: the share of (x run, y run) pairs where x scores higher, ties counted 1/2. The
overall value is the mean over tasks. With a tie tolerance t, a pair counts as a tie when
|x - y| <= t and as a win only when x > y + t, so scores that differ by floating-point noise
(a reordered sum, another compiler) are ties rather than wins or losses. Confidence intervals
come from a stratified bootstrap that resamples X's runs and Y's runs independently within each
task.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats.bootstrap import Interval, Method, bootstrap_estimate
from harness.stats.checks import check_same_tasks, check_scores
from harness.stats.errors import StatsInputError


def probability_of_improvement_stack(
    x: NDArray[np.float64], y: NDArray[np.float64], *, tie_tolerance: float = 0.0
) -> NDArray[np.float64]:
    """P(X > Y) averaged over tasks, for each pair of matrices in two stacks.

    x: (..., runs_x, tasks), y: (..., runs_y, tasks), NaN = missing run; the leading axes
    broadcast. A pair with |x - y| <= tie_tolerance counts 1/2 (0: only equal scores are ties).
    Returns (...).
    """
    if not tie_tolerance >= 0.0:
        raise StatsInputError(f"tie_tolerance must be a number >= 0, got {tie_tolerance}")
    wins = np.zeros(np.broadcast_shapes(x.shape[:-2], y.shape[:-2]) + x.shape[-1:])  # (..., tasks)
    for run in range(x.shape[-2]):  # a loop over x's runs keeps memory at the size of y
        gap = x[..., run : run + 1, :] - y  # (..., runs_y, tasks); NaN where either run is missing
        wins += np.count_nonzero(gap > tie_tolerance, axis=-2) + 0.5 * np.count_nonzero(
            np.abs(gap) <= tie_tolerance, axis=-2)
    pairs = np.count_nonzero(~np.isnan(x), axis=-2) * np.count_nonzero(~np.isnan(y), axis=-2)  # (..., tasks)
    return np.mean(wins / pairs, axis=-1)


def probability_of_improvement(
    x: ArrayLike,
    y: ArrayLike,
    *,
    tie_tolerance: float = 0.0,
    n_tasks: int | None = None,
    allow_unequal: bool = False,
) -> float:
    """P(X > Y) averaged over tasks; pairs within `tie_tolerance` of each other count 1/2.

    x: (runs_x, tasks), y: (runs_y, tasks), the same tasks in the same column order.
    `n_tasks` and `allow_unequal` as in `check_scores`.
    """
    x_matrix = check_scores(x, n_tasks=n_tasks, allow_unequal=allow_unequal, name="x")
    y_matrix = check_scores(y, n_tasks=n_tasks, allow_unequal=allow_unequal, name="y")
    check_same_tasks(x_matrix, y_matrix, ("x", "y"))
    return float(probability_of_improvement_stack(x_matrix, y_matrix, tie_tolerance=tie_tolerance))


def _both_directions(stacks: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
    """[P(X > Y), P(Y > X)] per resample: (reps, runs_x, tasks), (reps, runs_y, tasks) -> (reps, 2)."""
    forward = probability_of_improvement_stack(stacks[0], stacks[1])  # (reps,)
    return np.stack([forward, 1.0 - forward], axis=-1)


def probability_of_improvement_interval(
    x: ArrayLike,
    y: ArrayLike,
    rng: np.random.Generator,
    *,
    reps: int = 50_000,
    level: float = 0.95,
    method: Method = "percentile",
    resample_tasks: bool = False,
    n_tasks: int | None = None,
    allow_unequal: bool = False,
) -> Interval:
    """P(X > Y) with a stratified bootstrap confidence interval.

    x: (runs_x, tasks), y: (runs_y, tasks), at least 2 runs per task each. X's and Y's runs are
    resampled independently within each task; with `resample_tasks` both share the task draw.
    """
    return pairwise_probability_of_improvement(
        {"x": x, "y": y},
        rng,
        reps=reps,
        level=level,
        method=method,
        resample_tasks=resample_tasks,
        n_tasks=n_tasks,
        allow_unequal=allow_unequal,
    )["x", "y"]


def pairwise_probability_of_improvement(
    scores: Mapping[str, ArrayLike],
    rng: np.random.Generator,
    *,
    reps: int = 50_000,
    level: float = 0.95,
    method: Method = "percentile",
    resample_tasks: bool = False,
    n_tasks: int | None = None,
    allow_unequal: bool = False,
) -> dict[tuple[str, str], Interval]:
    """P(a > b) with confidence intervals for every ordered pair of distinct agents.

    scores: agent -> (runs, tasks), all with the same tasks in the same column order. Returns
    (a, b) -> Interval of P(a > b). Each unordered pair is bootstrapped once, in the order of
    `scores`, and both directions come from the same resamples (P(b > a) = 1 - P(a > b)).
    """
    matrices = {
        agent: check_scores(matrix, n_tasks=n_tasks, allow_unequal=allow_unequal, min_runs=2, name=agent)
        for agent, matrix in scores.items()
    }
    results: dict[tuple[str, str], Interval] = {}
    for first, second in itertools.combinations(matrices, 2):
        check_same_tasks(matrices[first], matrices[second], (first, second))
        point, low, high = bootstrap_estimate(
            [matrices[first], matrices[second]],
            _both_directions,
            rng,
            reps=reps,
            level=level,
            method=method,
            resample_tasks=resample_tasks,
        )
        for index, pair in enumerate([(first, second), (second, first)]):
            results[pair] = Interval(float(point[index]), float(low[index]), float(high[index]), method, level, reps)
    return results
