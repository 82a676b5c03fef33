"""What the leaderboard shows, computed from the store: suite tables, task pages and agent pages.

Everything here is plain data (frozen dataclasses of numbers, strings and arrays); rendering is in
:mod:`harness.leaderboard.render`. Scores, final-score matrices, curves on a step grid and the
bootstrap generators all come from the one score-selection layer, :mod:`harness.scores`: the
store's normalised evaluation scores of finished runs, ours and submitted alike.

"Final" score: each run's last evaluation (:func:`harness.scores.at_step` with ``step=None``). A
run that stops before the last step that any run of the same agent and task reaches is left out of
the final scores ("stopped early").

A suite is a catalog task group. An agent that has final scores on every task of a suite is
ranked by the IQM of its normalised final scores; an agent that covers only part of a suite is
listed apart, unranked, with aggregates over the tasks it covers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

import harness
from harness import catalog, stats
from harness import scores as scores_mod
from harness.scores import RunCurve, ScoreMatrix, Selection, Submission

LEVEL = 0.95
"""Confidence level of every interval."""

TOP = 8
"""Most agents in a suite's line figures and probability-of-improvement matrix: the best ranked."""

GRID_POINTS = 12
"""Most evaluation steps of a sample-efficiency curve (evenly picked from the steps all runs share)."""

AGGREGATE_NAMES = scores_mod.AGGREGATE_NAMES
"""The aggregates of a suite table, in column order."""


@dataclass(frozen=True)
class BuildOptions:
    """How the leaderboard's statistics are computed."""

    reps: int = 2_000
    """Bootstrap repetitions of every confidence interval."""
    seed: int = 0
    """Seed of the bootstrap: the same store and seed give the same intervals."""


@dataclass(frozen=True)
class Stamp:
    """When and from what the leaderboard was built (the one line that changes between rebuilds)."""

    built_at: str
    """UTC time of the build, ``YYYY-MM-DD HH:MM UTC``."""
    store: str
    """The store's path as given."""
    runs: int
    """Rows of the store's ``runs`` table (every status)."""
    finished: int
    """Of which finished."""
    version: str
    """The harness version that built it."""


@dataclass(frozen=True)
class Row:
    """One agent in one suite table."""

    label: str
    rank: int | None
    """Position by IQM among the agents that cover every task (None: partial coverage)."""
    point: Mapping[str, float]
    """Aggregate name -> point estimate, over the tasks covered."""
    intervals: Mapping[str, stats.Interval] | None
    """Aggregate name -> bootstrap interval; None when a covered task has fewer than 2 final scores."""
    covered: int
    """Tasks of the suite with final scores."""
    seeds: tuple[int, int]
    """Fewest and most final scores (runs) per covered task."""
    budget: tuple[int, int]
    """Lowest and highest final step over the covered tasks."""
    excluded: int
    """Runs on the suite's tasks left out of final scores (stopped early)."""


@dataclass(frozen=True, eq=False)
class Suite:
    """A catalog task group with data: its table, figures' data and per-task means."""

    name: str
    description: str
    tasks: tuple[str, ...]
    """Every task of the group."""
    normalisation: tuple[str, ...]
    """The distinct normalisations of its tasks."""
    ranked: tuple[Row, ...]
    """Agents covering every task, best IQM first."""
    partial: tuple[Row, ...]
    """Agents covering some tasks, most tasks first."""
    task_means: Mapping[tuple[str, str], float]
    """(task, label) -> mean normalised final score."""
    top: tuple[str, ...]
    """The best ranked agents (at most :data:`TOP`): the line figures and the matrix show these."""
    profiles: Mapping[str, stats.IntervalBand]
    """label -> run-score performance profile (top agents)."""
    efficiency: Mapping[str, stats.IntervalBand]
    """label -> IQM along training steps (top agents with at least 2 shared steps)."""
    efficiency_missing: tuple[str, ...]
    """Top agents without a sample-efficiency curve (their runs share fewer than 2 steps)."""
    improvement: Mapping[tuple[str, str], float]
    """(a, b) -> P(a > b) for every ordered pair of top agents (point estimates)."""
    leader: Mapping[tuple[str, str], stats.Interval]
    """(best, b) -> P(best > b) with its interval, for the best ranked agent against each other top agent."""


@dataclass(frozen=True)
class TaskAgent:
    """One agent on one task."""

    label: str
    runs: int
    """Runs with a curve."""
    kept: int
    """Runs with a final score (the others stopped early)."""
    final_step: int
    """The step final scores are taken at: the last step any of its runs reaches."""
    mean_raw: float
    """Mean final value as recorded (return or success rate), over kept runs."""
    mean_score: float
    """Mean normalised final score, over kept runs."""


@dataclass(frozen=True)
class TaskPage:
    """A task with data."""

    name: str
    metric: str
    """'return' or 'success'."""
    normalisation: str
    suites: tuple[str, ...]
    """Suites (task groups) it belongs to."""
    agents: tuple[TaskAgent, ...]
    runs: tuple[RunCurve, ...]
    """Sorted by label, seed, run id."""


@dataclass(frozen=True)
class Config:
    """One configuration our runs of an agent label used."""

    algo: str
    config_hash: str
    tag: str
    text: str
    """The configuration as indented JSON with sorted keys."""
    runs: int
    budgets: tuple[int, ...]
    commits: tuple[str, ...]


@dataclass(frozen=True)
class Agent:
    """An agent label with its provenance and coverage."""

    label: str
    source: str
    """'ours', 'submitted', or 'ours and submitted'."""
    configs: tuple[Config, ...]
    submissions: tuple[Submission, ...]
    tasks: tuple[tuple[str, TaskAgent], ...]
    """(task, its summary on that task), by task name."""
    suites: tuple[tuple[str, int, int], ...]
    """(suite, tasks covered, tasks in the suite) for every suite with data."""

    @property
    def links(self) -> tuple[str, ...]:
        """The source links of its submissions."""
        return tuple(dict.fromkeys(s.link for s in self.submissions if s.link))


@dataclass(frozen=True, eq=False)
class Board:
    """Everything the leaderboard shows."""

    stamp: Stamp
    options: BuildOptions
    suites: tuple[Suite, ...]
    tasks: tuple[TaskPage, ...]
    agents: tuple[Agent, ...]


def slug(text: str) -> str:
    """A file name for any label: its lower-case letters and digits, then 8 hex digits of its hash."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{words}-{digest}" if words else digest


def task_slug(name: str) -> str:
    """A file name for a catalog task name (``dmc/dog-run`` -> ``dmc_dog-run``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


@dataclass(frozen=True, eq=False)
class Source:
    """The store, read once: every finished run's curve, grouped, and the tables the pages show."""

    stamp: Stamp
    selection: Selection
    """Every finished run's scores, through the score-selection layer."""
    summaries: Mapping[tuple[str, str], TaskAgent]
    """(task, label) -> that label's summary on that task."""
    metrics: Mapping[str, str]
    """task -> 'return' or 'success' (the store's ``tasks`` table)."""
    norms: Mapping[str, str]
    """task -> its normalisation, as text."""
    run_rows: pd.DataFrame
    """The ``runs`` table (provenance columns)."""
    submissions: Mapping[str, Submission]
    """Every submission's provenance, by id."""

    @property
    def by_pair(self) -> Mapping[tuple[str, str], Sequence[RunCurve]]:
        """(task, label) -> that label's runs on that task, by run id."""
        return self.selection.by_pair

    @property
    def labels(self) -> tuple[str, ...]:
        """Agent labels with finished runs, sorted."""
        return tuple(sorted({label for _, label in self.by_pair}))

    @property
    def external(self) -> frozenset[str]:
        """Labels all of whose finished runs were submitted (figures mark them "(external)")."""
        finished = self.run_rows[self.run_rows.status == "finished"]
        ours = set(finished.label[finished.source == "harness"])
        return frozenset(label for label in self.labels if label not in ours)


def read(con: Any, store_path: str) -> Source:
    """Read the store through ``con`` (a DuckDB connection); ``store_path`` is shown in the build stamp."""
    selection = scores_mod.load(con)
    run_rows = con.execute(
        "SELECT run_id, source, submission_id, label, agent, tag, config_hash, CAST(config AS VARCHAR) AS config, "
        "budget, git_commit, status FROM runs ORDER BY run_id").df()
    submissions = scores_mod.submissions(con)
    task_rows = con.execute("SELECT task, metric, norm_low, norm_high FROM tasks ORDER BY task").df()
    stamp = Stamp(datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), store_path, len(run_rows),
                  int((run_rows.status == "finished").sum()), harness.__version__)
    summaries = {pair: _task_agent(pair[1], pair_runs) for pair, pair_runs in selection.by_pair.items()}
    norms = {row.task: _normalisation(row.metric, row.norm_low, row.norm_high) for row in task_rows.itertuples()}
    metrics = dict(zip(task_rows.task, task_rows.metric, strict=True))
    return Source(stamp, selection, summaries, metrics, norms, run_rows, submissions)


def task_pages(source: Source) -> tuple[TaskPage, ...]:
    """One page per task with finished runs, by task name."""
    labels_of: dict[str, list[str]] = {}
    for task, label in sorted(source.by_pair):
        labels_of.setdefault(task, []).append(label)
    pages = []
    for task, labels in labels_of.items():
        runs = [run for label in labels
                for run in sorted(source.by_pair[task, label], key=lambda r: (r.seed, r.run_id))]
        groups = tuple(g.name for g in catalog.GROUPS.values() if task in g.tasks)
        pages.append(TaskPage(task, source.metrics[task], source.norms[task], groups,
                              tuple(source.summaries[task, label] for label in labels), tuple(runs)))
    return tuple(pages)


def assemble(source: Source, tasks: tuple[TaskPage, ...], options: BuildOptions) -> Board:
    """Compute the suite tables (with their statistics) and the agent pages; ``tasks`` from :func:`task_pages`."""
    have = {task for task, _ in source.by_pair}
    suites = tuple(_suite(group, source.selection, source.summaries, source.norms, options)
                   for group in catalog.GROUPS.values() if have.intersection(group.tasks))
    agents = tuple(_agent(label, source.run_rows, source.submissions, source.summaries, suites)
                   for label in source.labels)
    return Board(source.stamp, options, suites, tasks, agents)


def _normalisation(metric: str, low: float, high: float) -> str:
    if low == 0.0 and high == 1.0:
        return f"{metric} as is"
    if low == 0.0:
        return f"{metric} / {high:g}"
    return f"({metric} - {low:g}) / ({high:g} - {low:g})"


def _task_agent(label: str, runs: Sequence[RunCurve]) -> TaskAgent:
    kept = [r for r in runs if not r.excluded]
    return TaskAgent(label, len(runs), len(kept), int(max(r.steps[-1] for r in runs)),
                     float(np.mean([r.raw[-1] for r in kept])), float(np.mean([r.score[-1] for r in kept])))


def _suite(group: catalog.TaskGroup, selection: Selection, summaries: Mapping[tuple[str, str], TaskAgent],
           norms: Mapping[str, str], options: BuildOptions) -> Suite:
    tasks = group.tasks
    labels = sorted({label for task, label in summaries if task in tasks})
    rows = []
    matrices = {}
    for label in labels:
        covered = tuple(t for t in tasks if (t, label) in summaries)
        matrix = scores_mod.at_step(selection, label, covered)
        matrices[label] = matrix
        rows.append(_row(group.name, matrix, [summaries[t, label] for t in covered], options))
    complete = [r for r in rows if r.covered == len(tasks)]
    complete.sort(key=lambda r: (-r.point["iqm"], r.label))
    ranked = tuple(replace(r, rank=i + 1) for i, r in enumerate(complete))
    partial = tuple(sorted((r for r in rows if r.covered < len(tasks)), key=lambda r: (-r.covered, r.label)))
    top = tuple(r.label for r in ranked if r.intervals is not None)[:TOP]
    profiles, efficiency, missing = {}, {}, []
    for label in top:
        scores = matrices[label].scores
        taus = np.linspace(0.0, max(1.0, float(np.nanmax(scores))), 51)
        profiles[label] = stats.performance_profiles(
            scores, taus, scores_mod.rng(options.seed, group.name, label, "profile"), reps=options.reps, level=LEVEL,
            allow_unequal=True)["run_score"]
        band = _efficiency(label, tasks, selection, scores_mod.rng(options.seed, group.name, label, "efficiency"),
                           options)
        if band is None:
            missing.append(label)
        else:
            efficiency[label] = band
    improvement = {(a, b): stats.probability_of_improvement(matrices[a].scores, matrices[b].scores, allow_unequal=True)
                   for a in top for b in top if a != b}
    leader = {(top[0], b): stats.probability_of_improvement_interval(
        matrices[top[0]].scores, matrices[b].scores, scores_mod.rng(options.seed, group.name, top[0], b, "improvement"),
        reps=options.reps, level=LEVEL, allow_unequal=True) for b in top[1:]}
    task_means = {(t, label): summaries[t, label].mean_score for t in tasks for label in labels
                  if (t, label) in summaries}
    normalisation = tuple(sorted({norms[t] for t in tasks if t in norms}))
    return Suite(group.name, group.description, tasks, normalisation, ranked, partial, task_means, top,
                 profiles, efficiency, tuple(missing), improvement, leader)


def _row(suite: str, matrix: ScoreMatrix, summaries: Sequence[TaskAgent], options: BuildOptions) -> Row:
    scores = matrix.scores  # (runs, tasks)
    counts = matrix.runs_per_task  # (tasks,)
    point = {name: float(stats.AGGREGATES[name](scores)) for name in AGGREGATE_NAMES}
    intervals = None
    if counts.min() >= 2:
        intervals = stats.bootstrap_intervals(
            scores, {name: stats.AGGREGATES[name] for name in AGGREGATE_NAMES},
            scores_mod.rng(options.seed, suite, matrix.label, "aggregates"), reps=options.reps, level=LEVEL,
            allow_unequal=True)
    steps = [s.final_step for s in summaries]
    return Row(matrix.label, None, point, intervals, len(matrix.tasks), (int(counts.min()), int(counts.max())),
               (min(steps), max(steps)), len(matrix.exclusions))


def _efficiency(label: str, tasks: Sequence[str], selection: Selection, rng: np.random.Generator,
                options: BuildOptions) -> stats.IntervalBand | None:
    """IQM with a pointwise interval along the steps that every run of ``label`` on ``tasks`` reports.

    At most :data:`GRID_POINTS` steps, evenly picked and always with the last; None when fewer than
    2 steps are shared or a task has fewer than 2 runs.
    """
    if min(len(selection.by_pair.get((t, label), ())) for t in tasks) < 2:
        return None
    shared = scores_mod.common_grid(selection, [label], tasks)
    if shared.size < 2:
        return None
    grid = shared[np.unique(np.round(np.linspace(0, shared.size - 1, min(shared.size, GRID_POINTS))).astype(int))]
    curves = scores_mod.on_grid(selection, label, tasks, grid.tolist()).scores  # (runs, tasks, steps)
    return stats.sample_efficiency_curves(curves, grid, {"iqm": stats.iqm_stack}, rng, reps=options.reps,
                                          level=LEVEL, allow_unequal=True)["iqm"]


def _agent(label: str, run_rows: pd.DataFrame, submissions: Mapping[str, Submission],
           summaries: Mapping[tuple[str, str], TaskAgent], suites: Sequence[Suite]) -> Agent:
    mine = run_rows[(run_rows.label == label) & (run_rows.status == "finished")]
    sources = set(mine.source)
    source = {frozenset({"harness"}): "ours", frozenset({"submission"}): "submitted"}.get(
        frozenset(sources), "ours and submitted")
    configs = []
    ours = mine[mine.source == "harness"]
    for config_hash, part in ours.groupby(ours.config_hash.fillna(""), sort=True):
        text = part.config.iloc[0]
        configs.append(Config(
            str(part.agent.iloc[0]), str(config_hash), str(part.tag.fillna("").iloc[0]),
            json.dumps(json.loads(text), indent=2, sort_keys=True) if isinstance(text, str) else "",
            len(part), tuple(sorted({int(b) for b in part.budget.dropna()})),
            tuple(sorted({str(c) for c in part.git_commit.dropna()}))))
    ids = set(mine.submission_id.dropna())
    subs = tuple(submissions[i] for i in sorted(ids) if i in submissions)
    tasks = tuple(sorted((task, s) for (task, lab), s in summaries.items() if lab == label))
    covered = {task for task, _ in tasks}
    coverage = tuple((s.name, sum(t in covered for t in s.tasks), len(s.tasks)) for s in suites
                     if any(t in covered for t in s.tasks))
    return Agent(label, source, tuple(configs), subs, tasks, coverage)
