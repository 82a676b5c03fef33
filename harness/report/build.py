"""Every number of a report, computed from the store into one frozen :class:`Report`.

The flow: select finished runs by tasks and agent labels (:func:`harness.scores.load`), take one
``(runs, tasks)`` score matrix per agent at the chosen step (each run's final point by default),
decide which tasks the aggregates compare (the tasks where every agent has at least 2 runs with a
score: an agent is never ranked on a different task set than the others), then bootstrap:

- per agent, the four aggregates and the run-score profile from one set of resamples;
- per pair of agents, the probability of improvement;
- per agent, the IQM at every step of a common grid (sample-efficiency curve).

Each computation draws from its own generator, derived from the report seed and the
computation's name (``"aggregates"`` and the agent label, ...; :func:`harness.scores.rng`), so the
same store, selection and seed give the same numbers. Every run or curve point left out is listed with its reason, and
every deviation from "all agents, all tasks, equal runs" is stated in ``Report.notes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

import harness
from harness import catalog, scores, stats
from harness.errors import InputError
from harness.store import Store

if TYPE_CHECKING:
    from harness.report.conditioned import ConditionedSection

AGGREGATE_NAMES = scores.AGGREGATE_NAMES
"""The aggregates every report shows, in this order."""

CURVE_AGGREGATE = "iqm"
"""The aggregate of the sample-efficiency curves."""

PROFILE_POINTS = 101
"""Thresholds of the performance profile, evenly spaced over [0, 1] widened to the scores' range
(rounded out to 0.1)."""

REPORT_FORMAT = 3
"""Version of the report's JSON layout (2: agents' ``variant``; submissions as :class:`harness.scores.Submission`,
their import notes under ``notes``; 3: ``reward_conditioned``)."""

Source = Literal["harness", "submission", "mixed"]
SOURCES: dict[str, Source] = {"harness": "harness", "submission": "submission", "mixed": "mixed"}


@dataclass(frozen=True)
class ReportOptions:
    """What to report on and how to compute it."""

    tasks: tuple[str, ...] | None = None
    """Canonical task names to select; None selects every task with finished runs."""
    group: str | None = None
    """The task group or suite name the tasks came from (for the title and the output folder)."""
    agents: tuple[str, ...] | None = None
    """Agent labels to compare, in this order; None selects every label on the tasks."""
    step: int | None = None
    """Environment step the scores are taken at; None takes each run's final point."""
    align: scores.AlignMethod = "nearest"
    """How a run's value at a step is found: the nearest point within ``tolerance``, or linear
    interpolation between its two neighbours (no extrapolation)."""
    tolerance: float = 0.0
    """Largest distance in steps between a wanted step and the nearest point (``align='nearest'``)."""
    grid: tuple[float, ...] | None = None
    """Steps of the sample-efficiency curves; None takes the steps every selected run reports."""
    reps: int = 50_000
    """Bootstrap repetitions of every confidence interval."""
    level: float = 0.95
    """Confidence level of every interval."""
    method: stats.Method = "percentile"
    """Confidence interval method: 'percentile' or 'bca'."""
    seed: int = 0
    """Report seed: every bootstrap generator derives from it."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    point: float
    low: float
    high: float


@dataclass(frozen=True)
class Band:
    """Point estimates with pointwise confidence intervals along x (thresholds or steps)."""

    x: tuple[float, ...]
    point: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class Agent:
    """One agent label: where its runs come from and its results on the compared tasks."""

    label: str
    rank: int
    """1 for the highest IQM on the compared tasks."""
    source: Source
    external: bool
    """True when any of its runs were submitted rather than trained by the harness."""
    variant: str
    """What kind of runs (the store's ``runs.variant``): ``single`` (one agent per task), ``multitask``
    (one agent trained on all its tasks at once), ``reward_conditioned``, or ``mixed``."""
    submissions: tuple[scores.Submission, ...]
    """Provenance of its submitted runs."""
    tasks_covered: int
    """Selected tasks with at least one finished run of this agent."""
    runs: int
    """Runs with a score on the compared tasks."""
    runs_per_task: tuple[int, int]
    """Fewest and most runs of a compared task."""
    aggregates: Mapping[str, Estimate]
    profile: Band
    """Run-score performance profile: the fraction of runs x tasks scores above each threshold."""
    curve: Band
    """The IQM at each used step of the curve grid."""
    curve_runs: int
    """Runs with a point on the used curve steps (a run left out at the report's step may have some)."""
    curve_runs_per_task: tuple[int, int]
    """Fewest and most such runs of a compared task."""


@dataclass(frozen=True)
class Improvement:
    """P(x > y) on the compared tasks."""

    x: str
    y: str
    estimate: Estimate


@dataclass(frozen=True)
class Cell:
    """One agent on one task: the scores of its runs at the report's step."""

    agent: str
    step: int | None
    """The step the scores were taken at (None: no run)."""
    scores: tuple[float, ...]
    """Normalised score of each included run."""
    mean: float | None
    low: float | None
    """Lowest run score."""
    high: float | None
    """Highest run score."""


@dataclass(frozen=True)
class TaskRow:
    """One selected task: its normalisation, whether the aggregates compare it, and every agent's cell."""

    task: str
    suite: str
    normalisation: str
    compared: bool
    reason: str
    """Why the task is left out of the comparison ('' when compared)."""
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Excluded:
    """A run, or one of its curve points, left out, and why."""

    stage: Literal["score", "curve"]
    """'score': left out of the score matrix at the report's step; 'curve': one grid point."""
    agent: str
    task: str
    run_id: str
    seed: int
    reason: str


@dataclass(frozen=True)
class Settings:
    """How the report was selected and computed, as recorded in it."""

    results: str
    """The store file."""
    group: str | None
    selected_tasks: tuple[str, ...] | None
    agents: tuple[str, ...]
    step: int | None
    align: scores.AlignMethod
    tolerance: float
    grid_source: Literal["common", "given"]
    """'common': the steps every selected run reports; 'given': ``--grid``."""
    reps: int
    level: float
    method: stats.Method
    seed: int
    harness_version: str


@dataclass(frozen=True)
class Report:
    """Every number a report shows, with the settings and statements that explain them."""

    title: str
    settings: Settings
    agents: tuple[Agent, ...]
    """In rank order."""
    compared_tasks: tuple[str, ...]
    normalisation: str
    """The normalisation of the compared tasks, per suite."""
    alignment: str
    """How a run's value at a step is found (at the report's step and on the curve grid)."""
    intervals: str
    """How the confidence intervals are computed: level, method, repetitions, seed."""
    improvements: tuple[Improvement, ...]
    """P(x > y) for every pair, x ranked above y."""
    curve_steps: tuple[float, ...]
    """The grid steps the curves use."""
    dropped_steps: tuple[tuple[float, str], ...]
    """Grid steps left out of the curves, with the reason."""
    tasks: tuple[TaskRow, ...]
    exclusions: tuple[Excluded, ...]
    notes: tuple[str, ...]
    """Every visible handling: partial coverage, unequal runs, steps that differ, external agents."""
    captions: Mapping[str, str]
    """Figure name (and 'aggregates' for the table) -> caption: runs and tasks, normalisation, CI method and
    repetitions."""
    reward_conditioned: ConditionedSection | None = None
    """Scores under each evaluation ψ of agents with reward-conditioned runs (:mod:`harness.report.conditioned`);
    None when no selected agent has such runs."""


def build(store: Store, options: ReportOptions) -> Report:
    """Select, check and compute everything the report shows. Raises InputError on an unusable selection."""
    _check_options(options)
    with store.connect(read_only=True) as con:
        selection = scores.load(con, tasks=options.tasks, labels=options.agents)
        matrices = _matrices(selection, options)
        unusable = _unusable(matrices) if options.agents is None else []
        if len(unusable) == len(matrices):
            unusable = []  # nothing would be left: the checks below say why
        if unusable:  # the default selection: leave them out and say so
            selection = scores.load(con, tasks=options.tasks, labels=[x for x in matrices if x not in dict(unusable)])
            matrices = _matrices(selection, options)
        labels = selection.labels
        submission_ids = sorted(set(selection.points.submission_id.dropna()))
        submissions = scores.submissions(con, submission_ids)
        from harness.report import conditioned  # it builds on this module's Estimate

        section = conditioned.build(con, selection.labels, selection.tasks, options.step, options.seed, options.reps,
                                    options.level, options.method)
    tasks = selection.tasks
    coverage = {label: set(selection.coverage(label)) for label in labels}
    reasons = _left_out_reasons(tasks, labels, matrices, coverage, options.step)
    compared = tuple(t for t in tasks if t not in reasons)
    if not compared:
        raise InputError(
            "no task has at least 2 runs with a score for every selected agent, so nothing can be compared: "
            + "; ".join(f"{t}: {reasons[t]}" for t in tasks[:10]) + (" ..." if len(tasks) > 10 else "")
            + ". Select fewer agents (--agents) or other tasks (--suite, --tasks), or another --step")
    columns = [tasks.index(t) for t in compared]
    compared_scores = {label: matrices[label].scores[:, columns] for label in labels}  # label -> (runs, tasks)
    taus = _thresholds(compared_scores.values())  # (thresholds,)

    aggregates, profiles = {}, {}
    for label in labels:
        aggregates[label], profiles[label] = _aggregates_and_profile(compared_scores[label], taus, label, options)
    ranked = sorted(labels, key=lambda label: (-aggregates[label]["iqm"].point, labels.index(label)))
    improvements = _improvements([(label, compared_scores[label]) for label in ranked], options)

    grid = _curve_grid(selection, labels, compared, options)
    curve_tensors = {
        label: scores.on_grid(selection, label, compared, grid.tolist(), method=options.align,
                              tolerance=options.tolerance)
        for label in labels
    }
    usable, dropped = _curve_steps(curve_tensors, labels, compared, grid)
    curves = {label: curve_tensors[label].scores[:, :, usable] for label in labels}  # label -> (runs, tasks, steps)
    bands = {label: _curve_band(curves[label], grid[usable], label, options) for label in labels}

    exclusions = [Excluded("score", e.label, e.task, e.run_id, e.seed, e.reason)
                  for label in labels for e in matrices[label].exclusions]
    exclusions += [Excluded("curve", e.label, e.task, e.run_id, e.seed, e.reason)
                   for label in labels for e in curve_tensors[label].exclusions]

    rows = _task_rows(selection, options, labels, matrices, reasons)
    agents = tuple(
        _agent(label, rank, selection, submissions, coverage[label], compared_scores[label],
               aggregates[label], profiles[label], bands[label], curves[label])
        for rank, label in enumerate(ranked, start=1)
    )
    settings = Settings(
        results=str(store.path), group=options.group, selected_tasks=options.tasks, agents=labels,
        step=options.step, align=options.align, tolerance=options.tolerance,
        grid_source="given" if options.grid is not None else "common", reps=options.reps,
        level=options.level, method=options.method, seed=options.seed, harness_version=harness.__version__,
    )
    normalisation = _normalisation(compared)
    alignment = _alignment(options)
    notes = _notes(options, agents, rows, selection, compared, matrices, dropped)
    if unusable:
        notes = ("Left out of the default selection (every agent with runs on the tasks; --agents chooses): "
                 + "; ".join(f"{label} ({why})" for label, why in unusable) + ".", *notes)
    report = Report(
        title=_title(options, ranked),
        settings=settings, agents=agents, compared_tasks=compared, normalisation=normalisation,
        alignment=alignment, intervals=_ci_statement(settings),
        improvements=improvements, curve_steps=_floats(grid[usable]), dropped_steps=dropped,
        tasks=rows, exclusions=tuple(exclusions), notes=notes, captions={}, reward_conditioned=section,
    )
    return _with_captions(report)


def _title(options: ReportOptions, ranked: Sequence[str]) -> str:
    """``tdmpc2, sac on tdmpc2-dmc``: the agents in rank order on the suite, or on the tasks given
    (named when at most 3, else counted), or on every task with runs."""
    if options.group is not None:
        scope = options.group
    elif options.tasks is not None:
        scope = ", ".join(options.tasks) if len(options.tasks) <= 3 else f"{len(options.tasks)} selected tasks"
    else:
        scope = "every task with runs"
    return f"{', '.join(ranked)} on {scope}"


def _check_options(options: ReportOptions) -> None:
    if options.reps < 1:
        raise InputError(f"--reps {options.reps}: expected a positive number of bootstrap repetitions")
    if not 0.0 < options.level < 1.0:
        raise InputError(f"--level {options.level}: expected a confidence level between 0 and 1, e.g. 0.95")
    if options.tolerance < 0:
        raise InputError(f"--tolerance {options.tolerance}: expected a number of steps >= 0")
    if options.seed < 0:
        raise InputError(f"--seed {options.seed}: expected an integer >= 0")
    if options.step is not None and options.step < 0:
        raise InputError(f"--step {options.step}: expected an environment step >= 0")


def _input_error(what: str, error: stats.StatsInputError) -> InputError:
    """The statistics' refusal as a message for the user (the report's checks should leave none)."""
    return InputError(f"{what}: {error}")


def _where(step: int | None) -> str:
    return f"at step {step:,}" if step is not None else "at the final step"


def _matrices(selection: scores.Selection, options: ReportOptions) -> dict[str, scores.ScoreMatrix]:
    """Label -> its scores at the report's step on the selection's tasks."""
    return {label: scores.at_step(selection, label, selection.tasks, step=options.step, method=options.align,
                                  tolerance=options.tolerance)
            for label in selection.labels}


def _unusable(matrices: Mapping[str, scores.ScoreMatrix]) -> list[tuple[str, str]]:
    """(label, why) of the agents that have no task with at least 2 runs with a score: they cannot be
    compared on any task, so a default selection that kept them would compare nothing."""
    out = []
    for label, matrix in matrices.items():
        counts = matrix.runs_per_task  # (tasks,)
        if not (counts >= 2).any():
            out.append((label, f"no task with at least 2 runs with a score {_where(matrix.step)}; "
                               f"{int(counts.sum())} scored run(s) in all"))
    return out


def _left_out_reasons(tasks: Sequence[str], labels: Sequence[str], matrices: Mapping[str, scores.ScoreMatrix],
                      coverage: Mapping[str, set[str]], step: int | None) -> dict[str, str]:
    """Task -> why the aggregates cannot compare it (tasks that can are absent)."""
    reasons = {}
    for j, task in enumerate(tasks):
        problems = []
        for label in labels:
            runs = int(matrices[label].runs_per_task[j])
            if task not in coverage[label]:
                problems.append(f"{label} has no runs")
            elif runs < 2:
                problems.append(f"{label} has {runs} run(s) with a score {_where(step)} (at least 2 needed)")
        if problems:
            reasons[task] = "; ".join(problems)
    return reasons


def _thresholds(matrices: Iterable[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Performance-profile thresholds covering [0, 1] and every score. matrices: each (runs, tasks)."""
    values = [m[~np.isnan(m)] for m in matrices]
    low = min(0.0, np.floor(min(float(v.min()) for v in values) * 10.0) / 10.0)
    high = max(1.0, np.ceil(max(float(v.max()) for v in values) * 10.0) / 10.0)
    return np.linspace(low, high, PROFILE_POINTS)


def _aggregates_and_profile(matrix: NDArray[np.float64], taus: NDArray[np.float64], label: str,
                            options: ReportOptions) -> tuple[dict[str, Estimate], Band]:
    """The four aggregates and the run-score profile of one agent, from one set of resamples.

    matrix: (runs, tasks), NaN where a task has fewer runs; taus: (thresholds,).
    """
    kernels = [stats.AGGREGATES[name] for name in AGGREGATE_NAMES]

    def statistic(stacks: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        # (reps, runs, tasks) -> (reps, aggregates + thresholds)
        values = np.stack([kernel(stacks[0]) for kernel in kernels], axis=-1)
        return np.concatenate([values, stats.run_score_profile_stack(stacks[0], taus)], axis=-1)

    try:
        checked = stats.check_scores(matrix, allow_unequal=True, min_runs=2, name=label)
        point, low, high = stats.bootstrap_estimate([checked], statistic, scores.rng(options.seed, "aggregates", label),
                                                    reps=options.reps, level=options.level, method=options.method)
    except stats.StatsInputError as error:
        raise _input_error(f"aggregates of {label}", error) from error
    n = len(AGGREGATE_NAMES)
    estimates = {name: Estimate(float(point[i]), float(low[i]), float(high[i]))
                 for i, name in enumerate(AGGREGATE_NAMES)}
    profile = Band(_floats(taus), _floats(point[n:]), _floats(low[n:]), _floats(high[n:]))
    return estimates, profile


def _improvements(ranked: Sequence[tuple[str, NDArray[np.float64]]], options: ReportOptions) -> tuple[Improvement, ...]:
    """P(x > y) for every pair, x ranked above y, each pair from its own generator."""
    out = []
    for i, (x, x_scores) in enumerate(ranked):
        for y, y_scores in ranked[i + 1:]:
            try:
                interval = stats.probability_of_improvement_interval(
                    x_scores, y_scores, scores.rng(options.seed, "improvement", x, y), reps=options.reps,
                    level=options.level, method=options.method, allow_unequal=True)
            except stats.StatsInputError as error:
                raise _input_error(f"probability of improvement of {x} over {y}", error) from error
            out.append(Improvement(x, y, Estimate(interval.point, interval.low, interval.high)))
    return tuple(out)


def _curve_grid(selection: scores.Selection, labels: Sequence[str], compared: Sequence[str],
                options: ReportOptions) -> NDArray[np.float64]:
    if options.grid is not None:
        return np.asarray(options.grid, dtype=np.float64)
    grid = scores.common_grid(selection, labels, compared)
    if grid.size == 0:
        raise InputError(
            "the selected runs share no evaluation step on the compared tasks, so the sample-efficiency "
            "curves need a grid: pass --grid START:STOP:EVERY (e.g. --grid 100000:1000000:100000) with "
            "--align nearest --tolerance STEPS or --align interpolate")
    return grid


def _curve_steps(tensors: Mapping[str, scores.CurveTensor], labels: Sequence[str], compared: Sequence[str],
                 grid: NDArray[np.float64]) -> tuple[NDArray[np.bool_], tuple[tuple[float, str], ...]]:
    """Which grid steps the curves can use: those where every agent has at least 2 runs on every task.

    Returns the mask (steps,) and each dropped step with the reason.
    """
    usable = np.ones(grid.size, dtype=bool)  # (steps,)
    dropped = []
    for index, step in enumerate(grid):
        short = []
        for label in labels:
            runs = np.count_nonzero(~np.isnan(tensors[label].scores[:, :, index]), axis=0)  # (tasks,)
            short += [f"{label} on {compared[int(j)]} ({int(runs[j])} run(s))" for j in np.flatnonzero(runs < 2)]
        if short:
            usable[index] = False
            dropped.append((float(step), "fewer than 2 runs with a point here: " + ", ".join(short)))
    if not usable.any():
        raise InputError(
            f"no step of the curve grid has at least 2 runs of every agent on every compared task "
            f"(first: step {dropped[0][0]:.10g}: {dropped[0][1]}); choose a --grid within the runs' steps, "
            "a larger --tolerance, or --align interpolate")
    return usable, tuple(dropped)


def _curve_band(curves: NDArray[np.float64], steps: NDArray[np.float64], label: str, options: ReportOptions) -> Band:
    """The IQM with confidence intervals at every step. curves: (runs, tasks, steps); steps: (steps,)."""
    try:
        result = stats.sample_efficiency_curves(
            curves, steps, {CURVE_AGGREGATE: stats.AGGREGATES[CURVE_AGGREGATE]},
            scores.rng(options.seed, "curve", label), reps=options.reps, level=options.level, method=options.method,
            allow_unequal=True)
    except stats.StatsInputError as error:
        raise _input_error(f"sample-efficiency curve of {label}", error) from error
    band = result[CURVE_AGGREGATE]
    return Band(_floats(band.x), _floats(band.point), _floats(band.low), _floats(band.high))


def _task_rows(selection: scores.Selection, options: ReportOptions, labels: Sequence[str],
               matrices: Mapping[str, scores.ScoreMatrix], reasons: Mapping[str, str]) -> tuple[TaskRow, ...]:
    """A row per selected task with finished runs, in selection order."""
    last_steps = selection.points.groupby(["label", "task"]).step.max()
    rows = []
    for j, task in enumerate(selection.tasks):
        info = catalog.resolve(task)
        cells = []
        for label in labels:
            column = matrices[label].scores[:, j]  # (runs,)
            values = _floats(column[~np.isnan(column)])
            step = options.step if options.step is not None else (
                int(last_steps[label, task]) if (label, task) in last_steps.index else None)
            cells.append(Cell(label, step if values else None, values,
                              float(np.mean(values)) if values else None,
                              min(values) if values else None, max(values) if values else None))
        reason = reasons.get(task, "")
        rows.append(TaskRow(task, info.suite, info.normalisation, not reason, reason, tuple(cells)))
    return tuple(rows)


def _agent(label: str, rank: int, selection: scores.Selection, submissions: Mapping[str, scores.Submission],
           covered: set[str], matrix: NDArray[np.float64], aggregates: Mapping[str, Estimate], profile: Band,
           curve: Band, curves: NDArray[np.float64]) -> Agent:
    """matrix: (runs, tasks) scores at the report's step; curves: (runs, tasks, steps) on the used steps."""
    ids = sorted(set(selection.runs(label).submission_id.dropna()))
    per_task = np.count_nonzero(~np.isnan(matrix), axis=0)  # (tasks,)
    curve_per_task = np.count_nonzero((~np.isnan(curves)).any(axis=2), axis=0)  # (tasks,)
    source = SOURCES[selection.source(label)]
    variants = set(selection.points.loc[selection.points.label == label, "variant"])
    variant = variants.pop() if len(variants) == 1 else "mixed"
    provenance = tuple(submissions[i] for i in ids if i in submissions)
    return Agent(label, rank, source, source != "harness", variant, provenance,
                 len(covered), int(per_task.sum()), (int(per_task.min()), int(per_task.max())),
                 aggregates, profile, curve, int(curve_per_task.sum()),
                 (int(curve_per_task.min()), int(curve_per_task.max())))


def _normalisation(tasks: Sequence[str]) -> str:
    """The normalisation statements of these tasks, per suite: 'dmc: return / 1000 (39 tasks)'."""
    by_suite: dict[str, dict[str, int]] = {}
    for name in tasks:
        task = catalog.resolve(name)
        statements = by_suite.setdefault(task.suite, {})
        statements[task.normalisation] = statements.get(task.normalisation, 0) + 1
    return "; ".join(
        f"{suite}: " + ", ".join(f"{statement} ({count} task{'s' if count != 1 else ''})"
                                 for statement, count in statements.items())
        for suite, statements in by_suite.items()
    )


def _notes(options: ReportOptions, agents: Sequence[Agent], rows: Sequence[TaskRow], selection: scores.Selection,
           compared: Sequence[str], matrices: Mapping[str, scores.ScoreMatrix],
           dropped: Sequence[tuple[float, str]]) -> tuple[str, ...]:
    notes = []
    missing = [task for task in options.tasks or () if task not in selection.tasks]
    if missing:
        notes.append(f"{len(missing)} selected task(s) have no finished runs of the selected agents and are not "
                     "in this report: " + ", ".join(missing) + ".")
    left_out = [row for row in rows if not row.compared]
    if left_out:
        notes.append(
            f"The aggregates, profiles, probabilities of improvement and curves compare {len(compared)} of the "
            f"{len(rows)} tasks with runs: those where every agent has at least 2 runs with a score. Left out: "
            + "; ".join(f"{row.task} ({row.reason})" for row in left_out) + ".")
    for agent in agents:
        low, high = agent.runs_per_task
        if low != high:
            notes.append(
                f"{agent.label} has unequal runs per compared task ({low} to {high}); each task's statistics use "
                "its own runs (the bootstrap resamples within each task), so tasks with fewer runs are not "
                "padded or dropped.")
    if options.step is None:
        differing = []
        for row in rows:
            steps = {cell.step for cell in row.cells if cell.step is not None}
            if row.compared and len(steps) > 1:
                differing.append(f"{row.task} (" + ", ".join(f"{c.agent} {c.step:,}" for c in row.cells
                                                             if c.step is not None) + ")")
        if differing:
            notes.append(
                "Final scores come from different budgets on " + f"{len(differing)} compared task(s): "
                + "; ".join(differing) + ". Pass --step N to compare all agents at the same step.")
    excluded = sum(len(matrices[label].exclusions) for label in selection.labels)
    if excluded:
        notes.append(f"{excluded} run(s) have no score {_where(options.step)} and are left out of the score "
                     "matrices; they are listed under Exclusions.")
    if dropped:
        notes.append(f"{len(dropped)} grid step(s) are left out of the sample-efficiency curves (listed there).")
    variants = {agent.label: agent.variant for agent in agents}
    if len(set(variants.values())) > 1:
        notes.append(
            "The agents are different kinds of runs: " + ", ".join(f"{label} {_VARIANT_WORDS.get(v, v)}"
                                                                  for label, v in variants.items())
            + f". Every agent is compared on the same {len(compared)} task(s) and the same normalisation; a "
            "multi-task agent's score on a task comes from one agent trained on all its tasks at once.")
    external = [agent.label for agent in agents if agent.external]
    if external:
        notes.append("External (submitted, not trained by this harness): " + ", ".join(external)
                     + ". Their curves are as published; their provenance is listed under the aggregate scores.")
    suites = {catalog.resolve(t).suite for t in compared}
    if len(suites) > 1:
        notes.append("The compared tasks span several suites with different normalisations ("
                     + _normalisation(compared) + "); aggregates pool the normalised scores.")
    return tuple(notes)


_VARIANT_WORDS = {"single": "(single-task: one agent per task)",
                  "multitask": "(multi-task: one agent trained on all its tasks at once)",
                  "reward_conditioned": "(reward-conditioned)", "mixed": "(runs of several kinds)"}


def _floats(values: NDArray[np.float64] | Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _runs_statement(report: Report, *, curve: bool = False) -> str:
    """'tdmpc2 117 runs (3 per task); sac 117 runs (3 per task) on 39 tasks' (curve: the curves' runs)."""
    parts = []
    for agent in report.agents:
        total, (low, high) = (agent.curve_runs, agent.curve_runs_per_task) if curve else (
            agent.runs, agent.runs_per_task)
        per_task = f"{low}" if low == high else f"{low} to {high}"
        parts.append(f"{agent.label} {total} runs ({per_task} per task)")
    return "; ".join(parts) + f" on {len(report.compared_tasks)} tasks"


def _alignment(options: ReportOptions) -> str:
    if options.align == "interpolate":
        return "linear interpolation between its two neighbouring evaluation points (no extrapolation)"
    if options.tolerance == 0:
        return "the evaluation point at exactly that step"
    return f"the nearest evaluation point within {options.tolerance:,g} steps"


def _ci_statement(settings: Settings) -> str:
    method = "percentile" if settings.method == "percentile" else "BCa"
    return (f"{settings.level:.0%} {method} intervals from a stratified bootstrap (runs resampled within "
            f"each task), {settings.reps:,} repetitions, report seed {settings.seed}")


def _with_captions(report: Report) -> Report:
    settings = report.settings
    tail = f"Normalisation: {report.normalisation}. {report.intervals}."
    base = f"{_runs_statement(report)}. {tail}"
    at = _where(settings.step)
    grid = "the steps every selected run reports" if settings.grid_source == "common" else "the given --grid"
    captions = {
        "aggregates": f"Point estimates and [low, high] confidence intervals {at}, ranked by IQM; the optimality "
                      f"gap (mean shortfall below 1) is better when lower. {base}",
        "interval_estimates": f"Aggregate scores {at} with confidence intervals (bar: interval, line: point "
                              f"estimate). {base}",
        "performance_profile": f"Run-score performance profile {at}: the fraction of all runs x tasks scores above "
                               f"each threshold τ, with pointwise confidence bands. {base}",
        "probability_of_improvement": f"Probability of improvement P(X > Y) {at}: the chance that a run of X "
                                      f"scores higher than a run of Y on a random task. {base}",
        "sample_efficiency": f"IQM of the normalised score along training at {len(report.curve_steps)} grid steps "
                             f"({grid}); each run's value taken at {report.alignment}. "
                             f"{_runs_statement(report, curve=True)}. {tail}",
    }
    if len(report.agents) < 2:
        del captions["probability_of_improvement"]
    return dataclasses.replace(report, captions=captions)
