"""Performance profiles: the share of scores above each threshold tau.

- run-score profile: the fraction of all available (run, task) scores, pooled, above tau;
- average-score profile: the fraction of tasks whose mean score over runs is above tau.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats.aggregates import task_means
from harness.stats.bootstrap import IntervalBand, Method, bootstrap_estimate
from harness.stats.checks import check_grid, check_scores


def _fraction_above(values: NDArray[np.float64], taus: NDArray[np.float64]) -> NDArray[np.float64]:
    """Share of the non-NaN values above each tau, per row.

    values: (..., width), NaN left out; taus: (thresholds,), sorted. Returns (..., thresholds).
    """
    rows = values.reshape(-1, values.shape[-1])  # (batch, width)
    valid = ~np.isnan(rows)
    bins = taus.size + 1
    # Number of taus strictly below each value: the value is above tau[j] exactly when j < that.
    below = np.where(valid, np.searchsorted(taus, rows, side="left"), 0)  # (batch, width)
    below += bins * np.arange(rows.shape[0])[:, None]
    histogram = np.bincount(below.ravel(), minlength=rows.shape[0] * bins).reshape(-1, bins)  # (batch, bins)
    above = np.cumsum(histogram[:, ::-1], axis=1)[:, ::-1][:, 1:]  # (batch, thresholds)
    fraction = above / np.count_nonzero(valid, axis=1)[:, None]
    return fraction.reshape(*values.shape[:-1], taus.size)


def run_score_profile_stack(samples: NDArray[np.float64], taus: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of all available runs x tasks scores above each tau.

    samples: (..., runs, tasks), NaN = missing run; taus: (thresholds,), sorted.
    Returns (..., thresholds).
    """
    return _fraction_above(samples.reshape(*samples.shape[:-2], -1), taus)


def average_score_profile_stack(samples: NDArray[np.float64], taus: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of tasks whose mean score is above each tau.

    samples: (..., runs, tasks), NaN = missing run; taus: (thresholds,), sorted.
    Returns (..., thresholds).
    """
    return _fraction_above(task_means(samples), taus)


def run_score_profile(
    scores: ArrayLike, taus: ArrayLike, *, n_tasks: int | None = None, allow_unequal: bool = False
) -> NDArray[np.float64]:
    """Run-score profile.

    scores: (runs, tasks); taus: (thresholds,), increasing. Returns (thresholds,).
    """
    matrix = check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal)
    return run_score_profile_stack(matrix, check_grid(taus, "taus", strict=False))


def average_score_profile(
    scores: ArrayLike, taus: ArrayLike, *, n_tasks: int | None = None, allow_unequal: bool = False
) -> NDArray[np.float64]:
    """Average-score profile.

    scores: (runs, tasks); taus: (thresholds,), increasing. Returns (thresholds,).
    """
    matrix = check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal)
    return average_score_profile_stack(matrix, check_grid(taus, "taus", strict=False))


def performance_profiles(
    scores: ArrayLike,
    taus: ArrayLike,
    rng: np.random.Generator,
    *,
    reps: int = 50_000,
    level: float = 0.95,
    method: Method = "percentile",
    resample_tasks: bool = False,
    n_tasks: int | None = None,
    allow_unequal: bool = False,
) -> dict[str, IntervalBand]:
    """Run-score and average-score profiles with pointwise bootstrap confidence bands.

    scores: (runs, tasks), at least 2 runs per task; taus: (thresholds,), increasing. Both
    profiles come from the same resamples. Returns {"run_score": band, "average_score": band},
    each band over x = taus.
    """
    matrix = check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal, min_runs=2)
    grid = check_grid(taus, "taus", strict=False)

    def statistic(stacks: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        # (reps, runs, tasks) -> (reps, 2 * thresholds): run-score profile, then average-score
        return np.concatenate(
            [run_score_profile_stack(stacks[0], grid), average_score_profile_stack(stacks[0], grid)], axis=-1
        )

    point, low, high = bootstrap_estimate(
        [matrix], statistic, rng, reps=reps, level=level, method=method, resample_tasks=resample_tasks
    )
    bands = {}
    for index, name in enumerate(["run_score", "average_score"]):
        part = slice(index * grid.size, (index + 1) * grid.size)
        bands[name] = IntervalBand(grid, point[part], low[part], high[part], method, level, reps)
    return bands
