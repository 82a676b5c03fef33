"""Sample-efficiency curves and step-grid alignment.

`sample_efficiency_curves` computes aggregates with confidence intervals at every evaluation
step of a (runs, tasks, steps) array. Curves logged on different step grids are first put on a
common grid with `align_curves`, which reports every grid point it could not fill.

Point estimates alone need no helper: the stack kernels take the steps as a leading axis, e.g.
`iqm_stack(np.moveaxis(scores, 2, 0))` gives the IQM at every step, (steps,).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats.aggregates import StackAggregate
from harness.stats.bootstrap import IntervalBand, Method, bootstrap_intervals
from harness.stats.checks import check_grid, check_scores
from harness.stats.errors import StatsInputError

AlignMethod = Literal["nearest", "interpolate"]


@dataclass(frozen=True)
class Exclusion:
    """A grid point left empty (NaN) for one run of one task, and why."""

    run: int
    task: int
    step: float
    reason: str


@dataclass(frozen=True, eq=False)
class AlignedCurves:
    """Curves on a common step grid.

    scores: (runs, tasks, steps), NaN exactly where `exclusions` lists a point; steps: (steps,).
    Compared by identity (the fields are arrays).
    """

    scores: NDArray[np.float64]
    steps: NDArray[np.float64]
    exclusions: tuple[Exclusion, ...]


def sample_efficiency_curves(
    scores: ArrayLike,
    steps: ArrayLike,
    aggregates: Mapping[str, StackAggregate],
    rng: np.random.Generator,
    *,
    reps: int = 50_000,
    level: float = 0.95,
    method: Method = "percentile",
    resample_tasks: bool = False,
    n_tasks: int | None = None,
    allow_unequal: bool = False,
) -> dict[str, IntervalBand]:
    """Aggregates with pointwise confidence intervals at every evaluation step.

    scores: (runs, tasks, steps); steps: (steps,), strictly increasing. Each step is a
    (runs, tasks) matrix bootstrapped on its own (see `bootstrap_intervals`), one step after the
    other from `rng`; with `allow_unequal`, NaN marks a run missing at a step and every
    (task, step) needs at least 2 runs. Returns name -> band over x = steps.
    """
    array = check_scores(scores, n_tasks=n_tasks, allow_unequal=allow_unequal, min_runs=2, ndim=3)
    grid = check_grid(steps, "steps", strict=True)
    if grid.size != array.shape[2]:
        raise StatsInputError(f"steps: {grid.size} steps given for scores with {array.shape[2]} on axis 2")
    per_step = [
        bootstrap_intervals(
            array[:, :, step],
            aggregates,
            rng,
            reps=reps,
            level=level,
            method=method,
            resample_tasks=resample_tasks,
            allow_unequal=allow_unequal,
        )
        for step in range(grid.size)
    ]
    bands = {}
    for name in aggregates:
        intervals = [estimates[name] for estimates in per_step]
        bands[name] = IntervalBand(
            grid,
            np.array([interval.point for interval in intervals]),
            np.array([interval.low for interval in intervals]),
            np.array([interval.high for interval in intervals]),
            method,
            level,
            reps,
        )
    return bands


def align_curves(
    curves: Sequence[Sequence[tuple[ArrayLike, ArrayLike]]],
    grid: ArrayLike,
    *,
    method: AlignMethod,
    tolerance: float = 0.0,
) -> AlignedCurves:
    """Put per-run curves on a common step grid.

    curves: curves[run][task] = (steps, values), both (points,), steps strictly increasing;
    every run lists the same number of tasks (pass empty arrays for a missing run). grid:
    (grid points,), strictly increasing.
    method 'nearest': the value at the run's closest step (the earlier one on a tie) if it is
    at most `tolerance` away. method 'interpolate': linear interpolation between the run's two
    surrounding steps; grid points before its first or after its last step are not filled.
    Returns the (runs, tasks, grid points) array with NaN at every point not filled, and one
    Exclusion per such point.
    """
    target = check_grid(grid, "grid", strict=True)
    if method not in ("nearest", "interpolate"):
        raise StatsInputError(f"method: expected 'nearest' or 'interpolate', got {method!r}")
    if not tolerance >= 0.0:
        raise StatsInputError(f"tolerance: expected a number >= 0, got {tolerance!r}")
    if len(curves) == 0:
        raise StatsInputError("curves: no runs given")
    tasks = len(curves[0])
    if tasks == 0 or any(len(run) != tasks for run in curves):
        raise StatsInputError(f"curves: every run must list the same, non-zero number of tasks (run 0 has {tasks})")
    aligned = np.full((len(curves), tasks, target.size), np.nan)  # (runs, tasks, grid points)
    exclusions = []
    for run, per_task in enumerate(curves):
        for task, (steps, values) in enumerate(per_task):
            x, y = _check_curve(steps, values, run, task)
            filled, reasons = _align_one(x, y, target, method, tolerance)
            aligned[run, task] = filled
            exclusions += [Exclusion(run, task, float(target[point]), reason) for point, reason in reasons]
    return AlignedCurves(aligned, target, tuple(exclusions))


def _check_curve(
    steps: ArrayLike, values: ArrayLike, run: int, task: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return one run's (steps, values) as float64 arrays, both (points,), or raise StatsInputError."""
    x = np.asarray(steps, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    where = f"curves[{run}][{task}]"
    if x.ndim != 1 or x.shape != y.shape:
        raise StatsInputError(f"{where}: steps and values must be 1-D of equal length, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise StatsInputError(f"{where}: steps and values must be finite")
    if (np.diff(x) <= 0).any():
        raise StatsInputError(f"{where}: steps must be strictly increasing (duplicate or unsorted steps)")
    return x, y


def _align_one(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    grid: NDArray[np.float64],
    method: AlignMethod,
    tolerance: float,
) -> tuple[NDArray[np.float64], list[tuple[int, str]]]:
    """One curve on the grid: values (grid points,) with NaN where not filled, and (index, reason) pairs."""
    filled = np.full(grid.size, np.nan)
    if x.size == 0:
        return filled, [(point, "no data for this run") for point in range(grid.size)]
    reasons = []
    if method == "nearest":
        after = np.clip(np.searchsorted(x, grid), 0, x.size - 1)  # first step >= grid point, clipped
        before = np.clip(after - 1, 0, x.size - 1)
        nearest = np.where(np.abs(x[before] - grid) <= np.abs(x[after] - grid), before, after)
        distance = np.abs(x[nearest] - grid)
        within = distance <= tolerance
        filled[within] = y[nearest[within]]
        for point in np.flatnonzero(~within):
            reasons.append(
                (
                    int(point),
                    f"nearest step {x[nearest[point]]:.10g} is {distance[point]:.10g} away "
                    f"(tolerance {tolerance:.10g})",
                )
            )
    else:
        inside = (grid >= x[0]) & (grid <= x[-1])
        filled[inside] = np.interp(grid[inside], x, y)
        for point in np.flatnonzero(~inside):
            edge = f"before the first step {x[0]:.10g}" if grid[point] < x[0] else f"after the last step {x[-1]:.10g}"
            reasons.append((int(point), f"{edge}: no extrapolation"))
    return filled, reasons
