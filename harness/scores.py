"""From the store's evaluation points to the score arrays the statistics take: the one
score-selection layer of reports, the leaderboard and the gate.

:func:`select_tasks` turns ``--suite``/``--tasks`` into canonical task names; :func:`load` reads
the normalised scores of finished runs for a selection of tasks and agent labels (normalisation
from the store's ``tasks`` table); :attr:`Selection.curves` splits them into one
:class:`RunCurve` per run, with its final-score exclusion; :func:`at_step` turns them into one
``(runs, tasks)`` matrix per label at a chosen step or at each run's final point, and
:func:`on_grid` into ``(runs, tasks, steps)`` curves on a common step grid
(:func:`common_grid`). Curves of different runs rarely share a grid, so both align explicitly
(the nearest point within a tolerance, or linear interpolation) and return every point they could
not fill, with the reason: nothing is dropped silently. :func:`rng` derives every bootstrap
generator from a seed and the computation's name. Rows of a matrix are a task's runs in run-id
order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from harness import catalog
from harness import store as store_mod
from harness.errors import InputError
from harness.stats import align_curves
from harness.submit.ingest import IMPORT_KEY

AlignMethod = Literal["nearest", "interpolate"]

AGGREGATE_NAMES = ("iqm", "mean", "median", "optimality_gap")
"""The aggregates reports and leaderboard tables show, in this order (see :data:`harness.stats.AGGREGATES`;
optimality gap with gamma = 1)."""


def rng(seed: int, *names: str) -> np.random.Generator:
    """The generator of one named computation (``"aggregates"``, a suite, a label, ...), derived from a
    seed: the same seed and names give the same draws, whatever else is computed."""
    digest = hashlib.sha256("\0".join(names).encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def select_tasks(suite: str | None, names: Sequence[str] | None,
                 store: store_mod.Store | None = None) -> tuple[str, ...] | None:
    """Canonical task names from ``--suite`` and ``--tasks``, in that order; None selects every task.

    suite: a manifest file (``suites/ci-gate.yaml``: its tasks), a simulator suite (``dmc``,
    ``metaworld``, ``myosuite``, ``playground``), a task group (``bro-dmc``) or, given the store, a
    suite its runs recorded (``quickstart``: the tasks of the runs of that suite, ours or submitted);
    names: task names or aliases (the catalog's one alias table), added after the suite's.
    """
    from harness import manifest

    chosen: list[str] = []
    if suite is not None and (suite.endswith((".yaml", ".yml")) or Path(suite).is_file()):
        chosen += [task.name for task in manifest.load(Path(suite)).tasks]
    elif suite in catalog.SUITES:
        chosen += [task.name for task in catalog.all_tasks() if task.suite == suite]
    elif suite in catalog.GROUPS or (suite is not None and store is None):
        chosen += list(catalog.group(suite).tasks)
    elif suite is not None and store is not None:
        chosen += list(_stored_suite(store, suite))
    chosen += list(resolve_tasks(names, None) or ())
    return tuple(dict.fromkeys(chosen)) if chosen else None


def _stored_suite(store: store_mod.Store, suite: str) -> tuple[str, ...]:
    """The tasks of the store's runs recorded under ``suite``, in catalog order; InputError lists
    the task groups and the store's suites when there are none."""
    stored: dict[str, list[str]] = {}
    if store.path.exists():
        with store.connect(read_only=True) as con:
            rows = con.execute("SELECT DISTINCT suite, task FROM runs WHERE suite IS NOT NULL").fetchall()
        for name, task in rows:
            stored.setdefault(name, []).append(task)
    if suite not in stored:
        in_store = f"; suites of the store's runs: {', '.join(sorted(stored))}" if stored else ""
        raise InputError(f"unknown task group {suite!r} (nor a suite of the store's runs); valid groups: "
                         f"{', '.join(sorted(catalog.GROUPS))}{in_store}")
    order = {task.name: i for i, task in enumerate(catalog.all_tasks())}
    return tuple(sorted(stored[suite], key=lambda t: (order.get(t, len(order)), t)))


@dataclass(frozen=True, eq=False)
class RunCurve:
    """One finished run's evaluation curve.

    steps, raw, score: (points,), steps increasing; ``raw`` as recorded, ``score`` normalised.
    """

    run_id: str
    label: str
    task: str
    seed: int
    steps: NDArray[np.float64]
    raw: NDArray[np.float64]
    score: NDArray[np.float64]
    excluded: str
    """Why the run is left out of final scores ("" when it is not): it stops before the last step
    that a run of the same label and task reaches."""


@dataclass(frozen=True)
class Selection:
    """Evaluation points of the selected runs: the store's long frame and what it covers.

    ``points`` has the columns of :func:`harness.store.load_scores` (run_id, label, source,
    submission_id, task, seed, step, raw, score).
    """

    points: pd.DataFrame
    tasks: tuple[str, ...]
    labels: tuple[str, ...]

    @cached_property
    def curves(self) -> tuple[RunCurve, ...]:
        """One :class:`RunCurve` per run, sorted by label, task and run id (computed once, for all runs)."""
        return split_runs(self.points)

    @cached_property
    def by_pair(self) -> Mapping[tuple[str, str], tuple[RunCurve, ...]]:
        """(task, label) -> that label's runs on that task, by run id."""
        pairs: dict[tuple[str, str], list[RunCurve]] = {}
        for run in self.curves:
            pairs.setdefault((run.task, run.label), []).append(run)
        return {pair: tuple(runs) for pair, runs in pairs.items()}

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


def split_runs(points: pd.DataFrame) -> tuple[RunCurve, ...]:
    """One :class:`RunCurve` per run of the long frame of :func:`load`, with final-score exclusions,
    sorted by label, task and run id; vectorised over all runs at once (a store of 60,000 runs)."""
    if points.empty:
        return ()
    codes, _ = pd.factorize(points.run_id)  # (points,) integer id of each point's run
    order = np.lexsort((points.step.to_numpy(), codes))  # (points,): by run, then step
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])  # (runs,) first point of each run
    ends = np.r_[starts[1:], len(order)]
    steps = points.step.to_numpy(np.float64)[order]
    raw = points.raw.to_numpy(np.float64)[order]
    score = points.score.to_numpy(np.float64)[order]
    first = order[starts]  # (runs,) row of each run's first point in ``points``
    run_ids = points.run_id.to_numpy()[first]
    labels = points.label.to_numpy()[first]
    tasks = points.task.to_numpy()[first]
    seeds = points.seed.to_numpy()[first]
    last = steps[ends - 1]  # (runs,)
    target = pd.Series(last).groupby([labels, tasks]).transform("max").to_numpy()  # (runs,)
    runs = [
        RunCurve(str(run_ids[i]), str(labels[i]), str(tasks[i]), int(seeds[i]), steps[s:e], raw[s:e], score[s:e],
                 "" if last[i] >= target[i] else f"stopped early at step {int(last[i]):,} (others reach "
                 f"{int(target[i]):,})")
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]
    return tuple(sorted(runs, key=lambda r: (r.label, r.task, r.run_id)))


@dataclass(frozen=True)
class Submission:
    """One submission's provenance, from the ``submissions`` table (the runs of a selection name theirs)."""

    submission_id: str
    format: str
    suite: str
    submitted_at: str
    """``YYYY-MM-DD HH:MM:SS UTC``."""
    harness_version: str
    content_sha256: str
    files: tuple[tuple[str, str, int], ...]
    """(name, SHA-256, size) of every submitted file."""
    meta: tuple[tuple[str, str], ...]
    """The submitter's metadata, sorted by key."""
    link: str
    """The first http(s) address among ``url`` and ``paper`` ("" when none)."""
    options: tuple[tuple[str, str], ...]
    """How the harness read the files."""
    notes: tuple[str, ...]
    """What the harness did to the data on the way in."""
    skipped: tuple[str, ...]
    """Published task names left out (not in the catalog)."""



def submissions(con: object, ids: Sequence[str] | None = None) -> dict[str, Submission]:
    """The provenance of these submissions (None: all), by id in id order."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    rows = con.execute(
        "SELECT submission_id, format, coalesce(suite, '') AS suite, CAST(files AS VARCHAR) AS files, "
        "content_sha256, CAST(meta AS VARCHAR) AS meta, submitted_at, harness_version FROM submissions "
        "WHERE ? OR submission_id IN (SELECT unnest(?)) ORDER BY submission_id",
        [ids is None, list(ids or [])]).fetchall()
    out = {}
    for submission_id, fmt, suite, files, content, meta_text, submitted_at, version in rows:
        meta = json.loads(meta_text)
        imported = meta.pop(IMPORT_KEY, {})
        given = tuple(sorted((str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                             for k, v in meta.items()))
        link = next((value for key, value in given if key in ("url", "paper") and is_web_link(value)), "")
        options = tuple(sorted((str(k), v if isinstance(v, str) else json.dumps(v, sort_keys=True))
                               for k, v in imported.get("options", {}).items() if v not in (None, False)))
        listed = tuple((str(f["name"]), str(f["sha256"]), int(f["size"])) for f in json.loads(files))
        out[str(submission_id)] = Submission(
            str(submission_id), str(fmt), str(suite), pd.Timestamp(submitted_at).strftime("%Y-%m-%d %H:%M:%S UTC"),
            str(version), str(content), listed, given, link, options,
            tuple(str(n) for n in imported.get("notes", [])), tuple(str(t) for t in imported.get("skipped_tasks", [])))
    return out


def is_web_link(value: str) -> bool:
    """True for an http(s) address without spaces or quotes: the only kind pages turn into links."""
    return re.fullmatch(r"https?://[^\s\"'<>]+", value) is not None


def at_step(selection: Selection, label: str, tasks: Sequence[str], *, step: int | None = None,
            method: AlignMethod = "nearest", tolerance: float = 0.0) -> ScoreMatrix:
    """One label's (runs, tasks) matrix at ``step`` (None: each run's final point).

    With a step, each run contributes its value at that step, aligned by ``method`` (the nearest
    point within ``tolerance`` steps, or linear interpolation between its two neighbours); a run
    without a value there is excluded with the reason. With ``step=None``, each run contributes its
    last point, and a run that stops short of the last step any run of its task reached is
    excluded ("stopped early"), so final scores are never taken at different budgets.
    """
    columns: list[list[float]] = []
    exclusions: list[Exclusion] = []
    for task in tasks:
        values: list[float] = []
        for run in selection.by_pair.get((task, label), ()):
            if step is None:
                if run.excluded:
                    exclusions.append(Exclusion(label, task, run.run_id, run.seed, run.excluded))
                else:
                    values.append(float(run.score[-1]))
                continue
            aligned = align_curves([[(run.steps, run.score)]], [float(step)], method=method, tolerance=tolerance)
            if aligned.exclusions:
                exclusions.append(Exclusion(label, task, run.run_id, run.seed, aligned.exclusions[0].reason))
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
    per_task = [selection.by_pair.get((task, label), ()) for task in tasks]
    n_runs = max((len(r) for r in per_task), default=0)
    empty = (np.zeros(0), np.zeros(0))
    curves = [[(r[n].steps, r[n].score) if n < len(r) else empty for r in per_task] for n in range(n_runs)]
    aligned = align_curves(curves, np.asarray(steps, float), method=method, tolerance=tolerance)
    exclusions = []
    for ex in aligned.exclusions:
        runs = per_task[ex.task]
        if ex.run >= len(runs):
            continue  # padding for a task with fewer runs, not a run of its own
        run = runs[ex.run]
        exclusions.append(Exclusion(label, tasks[ex.task], run.run_id, run.seed, f"step {ex.step:.10g}: {ex.reason}"))
    return CurveTensor(label, tuple(tasks), aligned.steps, aligned.scores, tuple(exclusions))


def common_grid(selection: Selection, labels: Sequence[str], tasks: Sequence[str]) -> NDArray[np.float64]:
    """The evaluation steps that every run of these labels and tasks reports (may be empty)."""
    shared: NDArray[np.float64] | None = None
    for task in tasks:
        for label in labels:
            for run in selection.by_pair.get((task, label), ()):
                shared = run.steps if shared is None else np.intersect1d(shared, run.steps, assume_unique=True)
    return np.zeros(0) if shared is None else np.asarray(shared, dtype=float)
