"""Stratified bootstrap confidence intervals, vectorised over repetitions.

A bootstrap repetition resamples, independently for every task, as many runs as that task has,
with replacement, from that task's own runs (the strata are tasks); with `resample_tasks=True` it
first draws the tasks themselves with replacement. Several score matrices (e.g. two agents) are
resampled independently within each task, sharing the task draw. Repetitions are drawn in chunks
(about `CACHE_BYTES` of resampled scores, never more than `CHUNK_BYTES`) and every chunk is
handled by whole-array numpy operations; there is no Python loop per repetition.

`bootstrap_intervals` with only the built-in aggregates (the kernels in `AGGREGATES`) and
without task resampling takes a faster route to the same resampling scheme: it draws how often
each run is drawn instead of the resampled scores (`harness.stats.counts`, compiled loops in
`harness.stats.kernels`), in chunks of about `counts.CHUNK_BYTES` of random words each,
evaluated on several threads at once (one generator per chunk, spawned from the one passed in,
so the intervals do not depend on the number of threads).

Randomness comes only from the `numpy.random.Generator` passed in: the same seed, data and
settings give bit-identical intervals.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from harness.stats import counts
from harness.stats.aggregates import StackAggregate, iqm_stack, mean_stack, median_stack, optimality_gap_stack
from harness.stats.checks import check_scores
from harness.stats.counts import Kind, count_replicates, pays_off
from harness.stats.errors import StatsInputError

Method = Literal["percentile", "bca"]
Statistic = Callable[[Sequence[NDArray[np.float64]]], NDArray[np.float64]]
"""Maps one stack per input matrix, each (reps, runs_i, tasks), to a (reps, values) array."""

CHUNK_BYTES = 32 * 2**20
"""Upper bound, in bytes, on the resampled scores held at once (one chunk of repetitions)."""

CACHE_BYTES = 2**20
"""Preferred size of a chunk: chunks that stay in the CPU cache run about twice as fast."""

MIN_CHUNK_REPS = 64
"""Fewest repetitions per chunk (unless that would exceed CHUNK_BYTES)."""

_BUILT_IN: tuple[tuple[StackAggregate, Kind], ...] = (
    (iqm_stack, "iqm"),
    (mean_stack, "mean"),
    (median_stack, "median"),
    (optimality_gap_stack, "optimality_gap"),
)
"""The kernels `bootstrap_intervals` evaluates from run counts (matched by identity)."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval [low, high]."""

    point: float
    low: float
    high: float
    method: Method
    level: float
    reps: int


@dataclass(frozen=True, eq=False)
class IntervalBand:
    """Point estimates with bootstrap confidence intervals along a grid (thresholds or steps).

    x, point, low, high: (points,). Compared by identity (the fields are arrays).
    """

    x: NDArray[np.float64]
    point: NDArray[np.float64]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    method: Method
    level: float
    reps: int


def bootstrap_intervals(
    scores: ArrayLike,
    aggregates: Mapping[str, StackAggregate],
    rng: np.random.Generator,
    *,
    reps: int = 50_000,
    level: float = 0.95,
    method: Method = "percentile",
    resample_tasks: bool = False,
    n_tasks: int | None = None,
    allow_unequal: bool = False,
    workers: int | None = None,
) -> dict[str, Interval]:
    """Confidence intervals for several aggregates, all computed from the same resamples.

    scores: (runs, tasks). aggregates: name -> stack kernel ((reps, runs, tasks) -> (reps,)),
    e.g. `AGGREGATES`; for 'bca' a kernel must treat NaN as a missing run, as the built-in ones
    do. `n_tasks` and `allow_unequal` as in `check_scores`; every task needs at least 2 runs.
    workers: threads that evaluate chunks of repetitions when the counting route is taken (None:
    the CPU cores this process may use; working memory is about workers x (counts.CHUNK_BYTES +
    counts.BLOCK_BYTES)); the intervals do not depend on it, bit for bit.
    Returns name -> Interval, in the order of `aggregates`.
    """
    matrix = check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal, min_runs=2)
    threads = available_cores() if workers is None else workers
    if not isinstance(threads, int | np.integer) or isinstance(threads, bool) or threads < 1:
        raise StatsInputError(f"workers: expected a positive number of threads, got {workers!r}")
    names = list(aggregates)
    if not names:
        raise StatsInputError("aggregates: no aggregate given")

    def statistic(stacks: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        return np.stack([aggregates[name](stacks[0]) for name in names], axis=-1)  # (reps, names)

    kinds = [kind for name in names for kernel, kind in _BUILT_IN if aggregates[name] is kernel]
    if resample_tasks or len(kinds) < len(names) or not pays_off(matrix):
        point, low, high = bootstrap_estimate(
            [matrix], statistic, rng, reps=reps, level=level, method=method, resample_tasks=resample_tasks
        )
    else:
        _check_settings(rng, reps, level, method, resample_tasks)
        point = statistic([matrix[None]])[0]  # (names,)
        replicates = count_replicates(matrix, kinds, rng, reps, counts.CHUNK_BYTES, int(threads))  # (reps, names)
        low, high = _bounds(point, replicates, [matrix], statistic, level, method)
    return {
        name: Interval(float(point[i]), float(low[i]), float(high[i]), method, level, reps)
        for i, name in enumerate(names)
    }


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def bootstrap_estimate(
    matrices: Sequence[NDArray[np.float64]],
    statistic: Statistic,
    rng: np.random.Generator,
    *,
    reps: int = 50_000,
    level: float = 0.95,
    method: Method = "percentile",
    resample_tasks: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Point estimate and confidence bounds of a vector statistic of one or more matrices.

    matrices: each (runs_i, tasks), already checked (NaN = missing run, at least 2 runs per
    task), all with the same tasks. statistic: one stack per matrix, (reps, runs_i, tasks) ->
    (reps, values); for 'bca' it must treat NaN as a missing run. Returns (point, low, high),
    each (values,).
    """
    _check_settings(rng, reps, level, method, resample_tasks)
    point = statistic([matrix[None] for matrix in matrices])[0]  # (values,)
    replicates = _replicates(matrices, statistic, rng, reps, resample_tasks)  # (reps, values)
    return point, *_bounds(point, replicates, matrices, statistic, level, method)


def _check_settings(rng: np.random.Generator, reps: int, level: float, method: Method, resample_tasks: bool) -> None:
    """Raise StatsInputError for an unusable generator, repetition count, level or method."""
    if not isinstance(rng, np.random.Generator):
        raise StatsInputError(f"rng: expected a numpy.random.Generator (default_rng(seed)), got {type(rng).__name__}")
    if not isinstance(reps, int | np.integer) or reps < 1:
        raise StatsInputError(f"reps: expected a positive integer, got {reps!r}")
    if not 0.0 < level < 1.0:
        raise StatsInputError(f"level: expected a confidence level in (0, 1), got {level!r}")
    if method not in ("percentile", "bca"):
        raise StatsInputError(f"method: expected 'percentile' or 'bca', got {method!r}")
    if method == "bca" and resample_tasks:
        raise StatsInputError("method: 'bca' is not supported with resample_tasks=True; use 'percentile'")


def _bounds(
    point: NDArray[np.float64],
    replicates: NDArray[np.float64],
    matrices: Sequence[NDArray[np.float64]],
    statistic: Statistic,
    level: float,
    method: Method,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lower and upper confidence bounds, each (values,), from replicates (reps, values)."""
    tail = (1.0 - level) / 2.0
    if method == "percentile":
        low_q = np.full(point.shape, tail)
        high_q = np.full(point.shape, 1.0 - tail)
    else:
        low_q, high_q = _bca_levels(point, replicates, _acceleration(matrices, statistic), tail)
    ordered = np.sort(replicates, axis=0)
    return _quantiles(ordered, low_q), _quantiles(ordered, high_q)


def _chunk_reps(cells_per_rep: int) -> int:
    """Repetitions per chunk: about CACHE_BYTES of float64 scores, at least MIN_CHUNK_REPS
    repetitions, never more than CHUNK_BYTES."""
    per_rep = 8 * cells_per_rep
    preferred = max(CACHE_BYTES // per_rep, MIN_CHUNK_REPS)
    return max(1, min(preferred, CHUNK_BYTES // per_rep))


def _replicates(
    matrices: Sequence[NDArray[np.float64]],
    statistic: Statistic,
    rng: np.random.Generator,
    reps: int,
    resample_tasks: bool,
) -> NDArray[np.float64]:
    """Bootstrap replicates of the statistic, (reps, values)."""
    tasks = matrices[0].shape[1]
    compacted = [_compact(matrix) for matrix in matrices]
    chunk = _chunk_reps(sum(matrix.size for matrix in matrices))
    parts = []
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        drawn = rng.integers(0, tasks, size=(size, tasks)) if resample_tasks else None  # (size, tasks)
        stacks = [_resample(padded, counts, rng, size, drawn) for padded, counts in compacted]
        parts.append(statistic(stacks))  # (size, values)
    return np.concatenate(parts, axis=0)


def _compact(matrix: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Move each task's available runs to the top rows and append a row of NaN.

    matrix: (runs, tasks). Returns padded (runs + 1, tasks) and available runs per task (tasks,).
    """
    runs, tasks = matrix.shape
    order = np.argsort(np.isnan(matrix), axis=0, kind="stable")  # (runs, tasks): available first
    padded = np.full((runs + 1, tasks), np.nan)
    padded[:runs] = np.take_along_axis(matrix, order, axis=0)
    counts = np.count_nonzero(~np.isnan(matrix), axis=0)  # (tasks,)
    return padded, counts


def _resample(
    padded: NDArray[np.float64],
    counts: NDArray[np.intp],
    rng: np.random.Generator,
    size: int,
    drawn: NDArray[np.int64] | None,
) -> NDArray[np.float64]:
    """One chunk of stratified resamples, (size, runs, tasks).

    padded: (runs + 1, tasks) from `_compact`; counts: (tasks,) available runs per task; drawn:
    (size, tasks) resampled task columns, or None to keep every task. Task t of a resample gets
    counts[t] runs drawn with replacement from its available runs; its remaining rows are NaN.
    """
    runs = padded.shape[0] - 1
    tasks = padded.shape[1]
    columns = np.arange(tasks) if drawn is None else drawn[:, None, :]  # (tasks,) or (size, 1, tasks)
    if np.all(counts == runs):
        rows = rng.integers(0, runs, size=(size, runs, tasks))  # (size, runs, tasks)
    else:
        available = counts if drawn is None else counts[drawn][:, None, :]  # broadcasts to rows
        rows = rng.integers(0, available, size=(size, runs, tasks))
        # Rows past a task's available count point at the NaN row.
        rows = np.where(np.arange(runs)[:, None] < available, rows, runs)
    rows *= tasks
    rows += columns  # flat index into padded
    return np.take(padded.ravel(), rows)


def _acceleration(matrices: Sequence[NDArray[np.float64]], statistic: Statistic) -> NDArray[np.float64]:
    """BCa acceleration from a stratified jackknife, (values,).

    Every available cell (one run of one task of one matrix) is left out in turn (set to NaN).
    Each (matrix, task) is a stratum with n runs; with d = (stratum mean of its leave-one-out
    values) - (leave-one-out value) and w = (n - 1) / n, the acceleration is
    sum(w^3 d^3) / (6 * sum(w^2 d^2) ** 1.5) (Davison & Hinkley 1997, eq. 3.15 with the jackknife
    influence values (n - 1) * d); with equal runs per task this is Efron's formula.
    """
    chunk = _chunk_reps(sum(matrix.size for matrix in matrices))
    numerator: NDArray[np.float64] | float = 0.0
    denominator: NDArray[np.float64] | float = 0.0
    for which, matrix in enumerate(matrices):
        rows, cols = np.nonzero(~np.isnan(matrix))  # (cells,) each
        parts = []
        for start in range(0, rows.size, chunk):
            row, col = rows[start : start + chunk], cols[start : start + chunk]
            left_out = np.repeat(matrix[None], row.size, axis=0)  # (cells in chunk, runs, tasks)
            left_out[np.arange(row.size), row, col] = np.nan
            stacks = [
                left_out if index == which else np.broadcast_to(other, (row.size, *other.shape))
                for index, other in enumerate(matrices)
            ]
            parts.append(statistic(stacks))
        values = np.concatenate(parts, axis=0)  # (cells, values)
        counts = np.bincount(cols, minlength=matrix.shape[1])  # (tasks,)
        sums = np.zeros((matrix.shape[1], values.shape[1]))  # (tasks, values)
        np.add.at(sums, cols, values)
        deviation = (sums / counts[:, None])[cols] - values  # (cells, values)
        weight = ((counts - 1) / counts)[cols][:, None]  # (cells, 1)
        numerator = numerator + np.sum((weight * deviation) ** 3, axis=0)
        denominator = denominator + np.sum((weight * deviation) ** 2, axis=0)
    spread = np.asarray(denominator, dtype=np.float64)
    safe = np.where(spread > 0, spread, 1.0)
    return np.where(spread > 0, numerator / (6.0 * safe**1.5), 0.0)


def _bca_levels(
    point: NDArray[np.float64],
    replicates: NDArray[np.float64],
    acceleration: NDArray[np.float64],
    tail: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BCa-adjusted lower and upper quantile levels, each (values,).

    point, acceleration: (values,); replicates: (reps, values). The bias correction z0 comes from
    the share of replicates below the point estimate, ties counted half, kept within
    [0.5 / reps, 1 - 0.5 / reps] so that it stays finite.
    """
    reps = replicates.shape[0]
    below = np.mean(replicates < point, axis=0) + 0.5 * np.mean(replicates == point, axis=0)
    z0 = ndtri(np.clip(below, 0.5 / reps, 1.0 - 0.5 / reps))  # (values,)

    def adjusted(z: float) -> NDArray[np.float64]:
        shifted = z0 + z
        return np.asarray(ndtr(z0 + shifted / (1.0 - acceleration * shifted)), dtype=np.float64)

    return adjusted(float(ndtri(tail))), adjusted(float(ndtri(1.0 - tail)))


def _quantiles(ordered: NDArray[np.float64], levels: NDArray[np.float64]) -> NDArray[np.float64]:
    """Linearly interpolated quantile of each column at its own level.

    ordered: (reps, values), sorted along axis 0; levels: (values,) in [0, 1]. Returns (values,).
    """
    reps = ordered.shape[0]
    position = levels * (reps - 1)  # (values,)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, reps - 1)
    weight = position - below
    columns = np.arange(ordered.shape[1])
    return ordered[below, columns] * (1.0 - weight) + ordered[above, columns] * weight
