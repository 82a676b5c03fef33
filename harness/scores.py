"""From the store's evaluation points to the score arrays the statistics take.

Reports, the leaderboard and the gate all start here: :func:`load` reads normalised scores for a
selection of tasks and agent labels, :func:`at_step` turns them into one ``(runs, tasks)`` matrix
per label at a chosen step, and :func:`on_grid` into ``(runs, tasks, steps)`` curves on a common
step grid. Curves of different runs rarely share a grid, so both align explicitly (the nearest
point within a tolerance, or linear interpolation) and return every point they could not fill,
with the reason: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from harness import catalog
from harness import store as store_mod
from harness.errors import InputError
from harness.stats import align_curves

AlignMethod = Literal["nearest", "interpolate"]


@dataclass(frozen=True)
class Selection:
    """Evaluation points of the selected runs: the store's long frame and what it covers.

    ``points`` has the columns of :func:`harness.store.load_scores` (run_id, label, source,
    submission_id, task, seed, step, raw, score).
    """

    points: pd.DataFrame
    tasks: tuple[str, ...]
    labels: tuple[str, ...]

    def runs(self, label: str) -> pd.DataFrame:
        """One row per run of ``label``: run_id, task, seed, source, submission_id, last step."""
        frame = self.points[self.points.label == label]
        return (frame.groupby(["run_id", "task", "seed", "source"], dropna=False)
                .agg(last_step=("step", "max"), submission_id=("submission_id", "first"))
                .reset_index())

    def source(self, label: str) -> str:
        """'harness', 'submission', or 'mixed' for a label's runs."""
        sources = set(self.points.loc[self.points.label == label, "source"])
        return sources.pop() if len(sources) == 1 else "mixed"

    def coverage(self, label: str) -> tuple[str, ...]:
        """The selected tasks for which ``label`` has at least one run."""
        have = set(self.points.loc[self.points.label == label, "task"])
        return tuple(t for t in self.tasks if t in have)


@dataclass(frozen=True)
class Exclusion:
    """A run (or one of its points) left out of an array, and why."""

    label: str
    task: str
    run_id: str
    seed: int
    reason: str


@dataclass(frozen=True)
class ScoreMatrix:
    """Normalised scores of one label at one step.

    scores: (runs, tasks); ``runs`` is the largest number of runs of any task, and a task with
    fewer runs has NaN in its last rows (``equal_runs`` is then False, and the statistics must be
    told so). ``step`` is the step the scores were taken at (None: each run's final point).
    """

    label: str
    tasks: tuple[str, ...]
    scores: NDArray[np.float64]
    step: int | None
    exclusions: tuple[Exclusion, ...]

    @property
    def runs_per_task(self) -> NDArray[np.int64]:
        """(tasks,) number of runs with a score."""
        return np.sum(~np.isnan(self.scores), axis=0)

    @property
    def equal_runs(self) -> bool:
        return bool(np.all(self.runs_per_task == self.scores.shape[0]))


@dataclass(frozen=True)
class CurveTensor:
    """Normalised scores of one label on a common step grid.

    scores: (runs, tasks, steps) with NaN where a run has no point within reach of a grid step
    (each such point is an exclusion); steps: (steps,).
    """

    label: str
    tasks: tuple[str, ...]
    steps: NDArray[np.float64]
    scores: NDArray[np.float64]
    exclusions: tuple[Exclusion, ...]


def resolve_tasks(names: Sequence[str] | None, group: str | None) -> tuple[str, ...] | None:
    """Canonical task names from a task group and/or explicit names; None selects every task."""
    out: list[str] = []
    if group is not None:
        out += list(catalog.group(group).tasks)
    if names:
        out += [catalog.resolve(n).name for n in names]
    return tuple(dict.fromkeys(out)) if out else None


def load(con: object, *, tasks: Sequence[str] | None = None, labels: Sequence[str] | None = None) -> Selection:
    """Normalised evaluation points of finished runs (ours and submitted) for these tasks and labels."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    points = store_mod.load_scores(con, labels=labels, tasks=tasks, statuses=("finished",))
    if points.empty and labels is None:
        raise InputError("no finished evaluation points in the store on the selected tasks")
    if labels is not None:
        missing = sorted(set(labels) - set(points.label))
        if missing:
            everything = store_mod.load_scores(con, tasks=tasks, statuses=("finished",))
            known = ", ".join(sorted(set(everything.label))) or "none"
            raise InputError(f"no finished runs for agent label(s) {', '.join(missing)}; labels with finished runs "
                             f"on these tasks: {known}")
    found = tuple(sorted(set(points.task)))
    task_order = tuple(t for t in tasks if t in set(found)) if tasks is not None else found
    return Selection(points, task_order, tuple(labels) if labels is not None else tuple(sorted(set(points.label))))


def at_step(selection: Selection, label: str, tasks: Sequence[str], *, step: int | None = None,
            method: AlignMethod = "nearest", tolerance: float = 0.0) -> ScoreMatrix:
    """One label's (runs, tasks) matrix at ``step`` (None: each run's final point).

    With a step, each run contributes its value at that step, aligned by ``method`` (the nearest
    point within ``tolerance`` steps, or linear interpolation between its two neighbours); a run
    without a value there is excluded with the reason. With ``step=None``, each run contributes its
    last point, and a run that stops short of the last step any run of its task reached is
    excluded ("stopped early"), so final scores are never taken at different budgets.
    """
    frame = selection.points[selection.points.label == label]
    columns: list[list[float]] = []
    exclusions: list[Exclusion] = []
    for task in tasks:
        per_task = frame[frame.task == task]
        values: list[float] = []
        if step is None and not per_task.empty:
            target = int(per_task.step.max())
        for run_id, run in per_task.groupby("run_id", sort=True):
            run = run.sort_values("step")
            seed = int(run.seed.iloc[0])
            if step is None:
                last = int(run.step.iloc[-1])
                if last < target:
                    reason = f"stopped early at step {last:,} (others reach {target:,})"
                    exclusions.append(Exclusion(label, task, str(run_id), seed, reason))
                    continue
                values.append(float(run.score.iloc[-1]))
                continue
            aligned = align_curves([[(run.step.to_numpy(float), run.score.to_numpy(float))]], [float(step)],
                                   method=method, tolerance=tolerance)
            if aligned.exclusions:
                exclusions.append(Exclusion(label, task, str(run_id), seed, aligned.exclusions[0].reason))
                continue
            values.append(float(aligned.scores[0, 0, 0]))
        columns.append(values)
    runs = max((len(c) for c in columns), default=0)
    scores = np.full((runs, len(tasks)), np.nan)  # (runs, tasks)
    for j, values in enumerate(columns):
        scores[: len(values), j] = values
    return ScoreMatrix(label, tuple(tasks), scores, step, tuple(exclusions))


def on_grid(selection: Selection, label: str, tasks: Sequence[str], steps: Sequence[float], *,
            method: AlignMethod = "nearest", tolerance: float = 0.0) -> CurveTensor:
    """One label's (runs, tasks, steps) curves on the grid ``steps``; unfilled points are exclusions."""
    frame = selection.points[selection.points.label == label]
    per_task: list[list[tuple[str, int, NDArray[np.float64], NDArray[np.float64]]]] = []
    for task in tasks:
        runs = []
        for run_id, run in frame[frame.task == task].groupby("run_id", sort=True):
            run = run.sort_values("step")
            runs.append((str(run_id), int(run.seed.iloc[0]), run.step.to_numpy(float), run.score.to_numpy(float)))
        per_task.append(runs)
    n_runs = max((len(r) for r in per_task), default=0)
    empty = (np.zeros(0), np.zeros(0))
    curves = [[(r[n][2], r[n][3]) if n < len(r) else empty for r in per_task] for n in range(n_runs)]
    aligned = align_curves(curves, np.asarray(steps, float), method=method, tolerance=tolerance)
    exclusions = []
    for ex in aligned.exclusions:
        runs = per_task[ex.task]
        if ex.run >= len(runs):
            continue  # padding for a task with fewer runs, not a run of its own
        run_id, seed = runs[ex.run][0], runs[ex.run][1]
        exclusions.append(Exclusion(label, tasks[ex.task], run_id, seed, f"step {ex.step:.10g}: {ex.reason}"))
    return CurveTensor(label, tuple(tasks), aligned.steps, aligned.scores, tuple(exclusions))


def common_grid(selection: Selection, labels: Sequence[str], tasks: Sequence[str]) -> NDArray[np.float64]:
    """The evaluation steps that every run of these labels and tasks reports (may be empty)."""
    frame = selection.points[selection.points.label.isin(labels) & selection.points.task.isin(tasks)]
    per_run = frame.groupby("run_id").step.apply(lambda s: frozenset(int(v) for v in s))
    if per_run.empty:
        return np.zeros(0)
    shared = frozenset.intersection(*per_run.tolist())
    return np.asarray(sorted(shared), dtype=float)
