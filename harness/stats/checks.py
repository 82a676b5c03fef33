"""Input checks shared by the statistics functions.

Scores are dense arrays with runs on axis 0 and tasks on axis 1. A task with fewer seeds than the
others is written with NaN in the missing cells; such input is rejected unless the caller passes
`allow_unequal=True`, in which case every task is used with its own available runs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.stats.errors import StatsInputError

_AXES = {2: "(runs, tasks)", 3: "(runs, tasks, steps)"}


def check_scores(
    scores: ArrayLike,
    *,
    n_tasks: int | None = None,
    allow_unequal: bool = False,
    min_runs: int = 1,
    ndim: int = 2,
    name: str = "scores",
) -> NDArray[np.float64]:
    """Validate a score array and return it as float64.

    scores: (runs, tasks) when `ndim` is 2, (runs, tasks, steps) when it is 3.
    n_tasks: the number of tasks the caller expects (e.g. `len(task_names)`). Axis 1 must have
        this length; when axis 0 has it instead, the error says the array looks transposed.
        Without it a transposed matrix cannot be told apart from a valid one.
    allow_unequal: accept NaN as "this run is missing for this task"; otherwise NaN is an error.
    min_runs: the fewest available runs every task (and step) must have; 2 where a confidence
        interval is computed.
    Raises StatsInputError for a wrong number of axes, an empty array, a task-count mismatch,
    an infinite value, NaN without `allow_unequal`, or a task with fewer than `min_runs` runs.
    """
    axes = _AXES[ndim]
    try:
        array = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise StatsInputError(f"{name}: cannot be read as a float array: {error}") from error
    if array.ndim != ndim:
        hint = " (for a single task use scores[:, None])" if ndim == 2 and array.ndim == 1 else ""
        raise StatsInputError(f"{name}: expected a {ndim}-D {axes} array, got shape {array.shape}{hint}")
    if array.size == 0:
        raise StatsInputError(f"{name}: empty selection, shape {array.shape} {axes}")
    runs, tasks = array.shape[:2]
    if n_tasks is not None and tasks != n_tasks:
        if runs == n_tasks:
            raise StatsInputError(
                f"{name}: shape {array.shape} looks transposed: {n_tasks} tasks expected on axis 1 of "
                f"{axes} but axis 0 has that length; swap axes 0 and 1"
            )
        raise StatsInputError(f"{name}: expected {n_tasks} tasks on axis 1 of {axes}, got shape {array.shape}")
    infinite = np.argwhere(np.isinf(array))
    if infinite.size:
        raise StatsInputError(f"{name}: infinite value at index {tuple(infinite[0].tolist())}; scores must be finite")
    missing = np.isnan(array)
    if missing.any() and not allow_unequal:
        other_axes = tuple(axis for axis in range(ndim) if axis != 1)
        bad_tasks = np.flatnonzero(missing.any(axis=other_axes)).tolist()
        raise StatsInputError(
            f"{name}: NaN (missing runs) in task column(s) {bad_tasks[:10]}"
            f"{' ...' if len(bad_tasks) > 10 else ''}; tasks with unequal numbers of runs are rejected "
            "unless allow_unequal=True, which uses each task's own available runs"
        )
    available = np.count_nonzero(~missing, axis=0)  # (tasks,) or (tasks, steps)
    if available.min() < min_runs:
        first = tuple(np.argwhere(available < min_runs)[0].tolist())
        where = f"task {first[0]}" if ndim == 2 else f"task {first[0]} at step index {first[1]}"
        purpose = " for a confidence interval" if min_runs >= 2 else ""
        raise StatsInputError(
            f"{name}: {where} has {int(available[first])} available run(s); at least {min_runs} needed{purpose}"
        )
    return array


def check_same_tasks(first: NDArray[np.float64], second: NDArray[np.float64], names: tuple[str, str]) -> None:
    """Raise StatsInputError unless two (runs, tasks) matrices have the same number of tasks."""
    if first.shape[1] != second.shape[1]:
        raise StatsInputError(
            f"{names[0]} has {first.shape[1]} tasks but {names[1]} has {second.shape[1]}; "
            "both must cover the same tasks in the same column order"
        )


def check_grid(values: ArrayLike, name: str, *, strict: bool) -> NDArray[np.float64]:
    """Return a finite, non-empty, increasing 1-D grid as float64.

    values: (points,). `strict` demands strictly increasing values, otherwise non-decreasing.
    """
    grid = np.asarray(values, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0:
        raise StatsInputError(f"{name}: expected a non-empty 1-D array, got shape {grid.shape}")
    if not np.isfinite(grid).all():
        raise StatsInputError(f"{name}: values must be finite")
    steps = np.diff(grid)
    if (steps <= 0).any() if strict else (steps < 0).any():
        order = "strictly increasing" if strict else "sorted in increasing order"
        raise StatsInputError(f"{name}: values must be {order}")
    return grid
