"""Aggregate scores over a (runs, tasks) matrix of normalised scores.

Each aggregate comes in two forms:

- a point estimate (`iqm`, `mean`, `median`, `optimality_gap`) that checks its input and returns
  a float;
- a stack kernel (`iqm_stack`, ...) that takes any number of leading axes, `(..., runs, tasks)`,
  and returns `(...)`: one value per matrix, e.g. per bootstrap resample. Kernels do not check
  their input; NaN marks a missing run and is left out.

Definitions (the same as rliable's for complete matrices):

- IQM: the 25% trimmed mean of all runs x tasks scores pooled: drop the `n // 4` lowest and the
  `n // 4` highest of the `n` available scores, average the rest.
- mean: the mean over tasks of the per-task mean score.
- median: the median over tasks of the per-task mean score.
- optimality gap: the mean over tasks of the per-task mean of `max(gamma - score, 0)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats.checks import check_scores

StackAggregate = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""A kernel mapping a stack of score matrices (..., runs, tasks) to one value each (...)."""


def task_means(samples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-task mean over the available runs.

    samples: (..., runs, tasks), NaN = missing run. Returns (..., tasks).
    """
    means = samples.mean(axis=-2)  # (..., tasks); NaN exactly where a task has a missing run
    if np.isnan(means).any():
        return np.nanmean(samples, axis=-2)
    return means


def iqm_stack(samples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Interquartile mean of each matrix in a stack, all runs x tasks pooled.

    samples: (..., runs, tasks), NaN = missing run. Returns (...).
    """
    pooled = samples.reshape(*samples.shape[:-2], -1)  # (..., runs * tasks)
    ordered = np.sort(pooled, axis=-1)  # NaN sorts last
    size = pooled.shape[-1]
    if not np.isnan(ordered[..., -1]).any():
        cut = size // 4
        return ordered[..., cut : size - cut].mean(axis=-1)
    # Missing runs: sum the kept window [cut, available - cut) from a running sum; the NaN tail
    # lies after the window and so never enters it.
    available = np.count_nonzero(~np.isnan(ordered), axis=-1)  # (...,)
    cut = available // 4
    running = np.cumsum(ordered, axis=-1)  # (..., runs * tasks)
    upper = np.take_along_axis(running, (available - cut - 1)[..., None], axis=-1)[..., 0]
    lower = np.take_along_axis(running, np.maximum(cut - 1, 0)[..., None], axis=-1)[..., 0]
    lower = np.where(cut > 0, lower, 0.0)
    return (upper - lower) / (available - 2 * cut)


def mean_stack(samples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean over tasks of the per-task mean score.

    samples: (..., runs, tasks), NaN = missing run. Returns (...).
    """
    return task_means(samples).mean(axis=-1)


def median_stack(samples: NDArray[np.float64]) -> NDArray[np.float64]:
    """Median over tasks of the per-task mean score.

    samples: (..., runs, tasks), NaN = missing run. Returns (...).
    """
    ordered = np.sort(task_means(samples), axis=-1)  # (..., tasks); sorting beats np.median here
    tasks = ordered.shape[-1]
    return (ordered[..., (tasks - 1) // 2] + ordered[..., tasks // 2]) / 2.0


def optimality_gap_stack(samples: NDArray[np.float64], gamma: float = 1.0) -> NDArray[np.float64]:
    """Mean shortfall below `gamma`: mean over tasks of the per-task mean of max(gamma - score, 0).

    samples: (..., runs, tasks), NaN = missing run. Returns (...).
    """
    # mean of max(gamma - score, 0) = gamma - mean of min(score, gamma), one array pass fewer
    return gamma - task_means(np.minimum(samples, gamma)).mean(axis=-1)  # NaN stays NaN in the minimum


AGGREGATES: Mapping[str, StackAggregate] = {
    "iqm": iqm_stack,
    "mean": mean_stack,
    "median": median_stack,
    "optimality_gap": optimality_gap_stack,
}
"""The four standard aggregates by name (optimality gap with gamma = 1)."""


def iqm(scores: ArrayLike, *, n_tasks: int | None = None, allow_unequal: bool = False) -> float:
    """Interquartile mean of all runs x tasks scores pooled.

    scores: (runs, tasks). `n_tasks` and `allow_unequal` as in `check_scores`.
    """
    return float(iqm_stack(check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal)))


def mean(scores: ArrayLike, *, n_tasks: int | None = None, allow_unequal: bool = False) -> float:
    """Mean over tasks of the per-task mean score.

    scores: (runs, tasks). `n_tasks` and `allow_unequal` as in `check_scores`.
    """
    return float(mean_stack(check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal)))


def median(scores: ArrayLike, *, n_tasks: int | None = None, allow_unequal: bool = False) -> float:
    """Median over tasks of the per-task mean score.

    scores: (runs, tasks). `n_tasks` and `allow_unequal` as in `check_scores`.
    """
    return float(median_stack(check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal)))


def optimality_gap(
    scores: ArrayLike, gamma: float = 1.0, *, n_tasks: int | None = None, allow_unequal: bool = False
) -> float:
    """Mean over tasks of the per-task mean of max(gamma - score, 0).

    scores: (runs, tasks). `n_tasks` and `allow_unequal` as in `check_scores`.
    """
    matrix = check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal)
    return float(optimality_gap_stack(matrix, gamma))
