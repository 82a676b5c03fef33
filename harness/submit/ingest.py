"""Planning, storing, listing and removing submissions of external results.

:func:`plan_submission` reads and validates a submitted path without writing anything and returns
a :class:`Plan`: what would be stored and every problem found. :func:`store_submission` writes a
plan without problems as one submission in one transaction: a ``submissions`` row with its
provenance, one ``runs`` row per (task, seed) with ``source = 'submission'``, and the points in
``curves`` under the task's score metric, values as published.

Rules that involve the store (checked while planning and again inside the write transaction):
the same files (same content hash) cannot be submitted twice; an agent label that names runs
trained by the harness cannot also name submitted runs; and an agent label cannot receive a
(task, seed) it already has from another submission (remove that submission first, or use another
label).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

import harness
from harness import catalog
from harness.errors import Finding, InputError
from harness.store import RUN_COLUMNS, Store, insert_points, score_metric
from harness.submit.formats import (
    BRC_GRID,
    BRC_VARIANTS,
    HB_ROBOTS,
    LongColumns,
    ReadOptions,
    SourceFile,
    brc_variant,
    read,
)
from harness.submit.validate import Problem, check

IMPORT_KEY = "harness_import"
"""The key of ``submissions.meta`` under which the harness records how the files were imported."""

_STEP_NOTES = {
    "tdmpc2": "step is the environment step as TD-MPC2 reports it (for DMC its wrapper repeats each "
              "action twice); stored as published, not rescaled",
    "bro": "step of evaluation i is {start} + {every} * i (--step-start, --step-every)",
    "brc": "step of evaluation i is {start} + {every} * i: BRC's train.py defaults (eval_interval=50000, "
           "an evaluation whenever the per-task step count is a multiple of it; naumix/"
           "BiggerRegularizedCategorical commit eec512f) unless --step-start/--step-every are given",
    "dreamerv3": "step is the record's xs value as published (environment steps as DreamerV3's logger "
                 "counts them), not rescaled",
    "humanoidbench": "step is HumanoidBench's million_steps x 1,000,000; task keys without a robot are "
                     "read as the --robot's",
}
NOTHING_LEFT = "no results left to store"
"""The problem of a submission none of whose rows can be stored (every task skipped, say)."""
RunVariant = Literal["single", "multitask", "reward_conditioned"]
"""What kind of runs a submission holds (the store's ``runs.variant``): ``single`` (one agent per task,
the default), ``multitask`` (one agent trained on all its tasks at once) or ``reward_conditioned``."""


@dataclass(frozen=True)
class SubmitOptions:
    """Everything ``harness submit`` is told besides the path."""

    read: ReadOptions
    """The format and how to read it."""
    agent: str
    """The label of the submitted runs in reports and on the leaderboard (stored as given)."""
    suite: str | None = None
    """The suite the results belong to, stored with the submission and its runs."""
    meta: dict[str, str] = field(default_factory=dict)
    """Submitter-supplied provenance: paper, url, commit, notes, or any other key."""
    skip_unknown_tasks: bool = False
    """Leave out (and list) tasks the catalog does not know instead of rejecting the submission."""
    split_duplicate_seeds: bool = False
    """Store each further run under a reused seed label as a new seed instead of rejecting it."""
    merge_aliases: bool = False
    """Store the rows of several published names that mean one catalog task as that one task."""
    variant: RunVariant | None = None
    """The kind of runs; None: what the files' folder says (BRC's ``BRC_multitask``), else ``single``."""


@dataclass(frozen=True)
class Plan:
    """What a submission would store, and every problem that stops it."""

    options: SubmitOptions
    """The options it was planned with."""
    variant: RunVariant
    """The kind of runs, stored in ``runs.variant``: ``SubmitOptions.variant``, else what the files'
    folder says (BRC's ``BRC_multitask``: ``multitask``), else ``single``."""
    files: tuple[SourceFile, ...]
    """The files read, with their SHA-256 and size."""
    content_sha256: str
    """SHA-256 over the sorted (relative name, file SHA-256) pairs: the identity of the files."""
    points: pd.DataFrame
    """``run_id, task, seed, step, value, metric``: one row per point (only the valid rows when
    there are problems)."""
    problems: tuple[Problem, ...]
    """Every problem found; the plan can be stored only when there is none."""
    notes: tuple[str, ...]
    """What was done to the data on the way in, recorded with the submission."""
    skipped: tuple[str, ...]
    """Published task names left out by ``skip_unknown_tasks``."""
    names: tuple[tuple[str, str], ...] = ()
    """Every published task name and the catalog task it was stored as."""
    merged: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Catalog tasks given under several published names, with those names."""

    @property
    def submission_id(self) -> str:
        """The id the submission gets: the first 12 hex digits of its content hash."""
        return self.content_sha256[:12]

    def runs(self) -> pd.DataFrame:
        """One row per run: ``run_id, task, seed, points, first_step, last_step``."""
        return (self.points.groupby(["run_id", "task", "seed"], as_index=False)
                .agg(points=("step", "size"), first_step=("step", "min"), last_step=("step", "max"))
                .sort_values(["task", "seed"], ignore_index=True))

    def summary(self) -> pd.DataFrame:
        """Per task group (the catalog's suite): tasks, runs, seeds per task, points and step range."""
        columns = ["group", "tasks", "runs", "seeds_per_task", "points", "first_step", "last_step"]
        if self.points.empty:
            return pd.DataFrame(columns=columns)
        runs = self.runs()
        runs["group"] = runs["task"].map(lambda name: catalog.resolve(name).suite)
        rows = []
        for group, part in runs.groupby("group"):
            seeds = part.groupby("task")["seed"].nunique()
            low, high = int(seeds.min()), int(seeds.max())
            rows.append((group, part["task"].nunique(), len(part),
                         str(low) if low == high else f"{low}-{high}", int(part["points"].sum()),
                         int(part["first_step"].min()), int(part["last_step"].max())))
        return pd.DataFrame(rows, columns=columns)

    def meta(self) -> dict[str, Any]:
        """What ``submissions.meta`` records: the submitter's keys, and how the harness imported it."""
        read_options = asdict(self.options.read)
        return {
            **self.options.meta,
            IMPORT_KEY: {
                "options": {**read_options, "skip_unknown_tasks": self.options.skip_unknown_tasks,
                            "split_duplicate_seeds": self.options.split_duplicate_seeds,
                            "merge_aliases": self.options.merge_aliases, "variant": self.variant},
                "notes": list(self.notes),
                "skipped_tasks": list(self.skipped),
                "task_names": dict(self.names),
                "merged_names": {task: list(names) for task, names in self.merged},
            },
        }


def content_sha256(files: tuple[SourceFile, ...]) -> str:
    """The identity of a set of files: SHA-256 over their sorted (relative name, SHA-256) pairs."""
    text = "".join(f"{f.name}\t{f.sha256}\n" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(text.encode()).hexdigest()


def run_id(content: str, task: str, seed: int) -> str:
    """The stable id of a submitted run: a hash of (content hash, task, seed)."""
    return hashlib.sha256(f"submission/{content}/{task}/{seed}".encode()).hexdigest()[:16]


def plan_submission(store: Store, path: Path, options: SubmitOptions) -> Plan:
    """Read and validate ``path`` and check it against the store; writes nothing.

    Raises :class:`InputError` for bad options; problems with the files are in ``Plan.problems``.
    """
    _check_options(path, options)
    loaded = read(path, options.read)
    read_options = options.read
    checked = check(loaded.frame, loaded.columns, skip_unknown_tasks=options.skip_unknown_tasks,
                    split_duplicate_seeds=options.split_duplicate_seeds, merge_aliases=options.merge_aliases,
                    auto_metric=read_options.metric == "auto", metric_names=read_options.metric_map)
    content = content_sha256(loaded.files)
    points = checked.points
    seeds = points[["task", "seed"]].drop_duplicates()
    ids = {(t, s): run_id(content, t, int(s)) for t, s in zip(seeds["task"], seeds["seed"], strict=True)}
    metrics = {t: score_metric(catalog.resolve(t)) for t in seeds["task"].unique()}
    points = points.assign(
        run_id=[ids[key] for key in zip(points["task"], points["seed"], strict=True)],
        metric=points["task"].map(metrics),
    )[["run_id", "task", "seed", "step", "value", "metric"]]
    problems = sorted(loaded.problems + checked.problems, key=lambda p: p.file)
    if points.empty and not problems:
        problems.append(Problem("", "", "", NOTHING_LEFT, "at least one task of the catalog"))
    if store.path.exists() and loaded.files:
        with store.connect(read_only=True) as con:
            problems += _store_problems(con, options.agent, content, seeds)
    grid = options.read.grid or (BRC_GRID if options.read.format == "brc" else None)
    notes = checked.notes
    note_key = "bro" if options.read.format == "brc" and options.read.grid else options.read.format
    if note_key in _STEP_NOTES:
        step_note = _STEP_NOTES[note_key].format(start=grid.start if grid else 0,
                                                            every=grid.every if grid else 0)
        notes = (step_note, *notes)
    variant: RunVariant = options.variant or "single"
    if options.read.format == "brc" and options.variant is None:
        found = brc_variant(path)
        variant = found or "single"
        notes = (f"variant {found}: from the folder name" if found else
                 f"variant single: the folder is not one of BRC's ({', '.join(BRC_VARIANTS)}); "
                 "--variant says it", *notes)
    return Plan(options, variant, loaded.files, content, points, tuple(problems), notes, checked.skipped,
                checked.names, checked.merged)


def store_submission(store: Store, plan: Plan) -> str:
    """Write a plan without problems as one submission, in one transaction; returns its id.

    Raises :class:`Finding` when the plan has problems, or when the store changed since planning
    so that it now conflicts (nothing is written then).
    """
    if plan.problems:
        raise Finding(f"submission rejected: {len(plan.problems)} problem(s); nothing was stored")
    options = plan.options
    runs = plan.runs()
    with store.transaction() as con:
        late = _store_problems(con, options.agent, plan.content_sha256, runs[["task", "seed"]])
        if late:
            raise Finding("submission rejected; nothing was stored:\n" + "\n".join(f"  {p}" for p in late))
        files = [asdict(f) for f in plan.files]
        con.execute(
            "INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [plan.submission_id, options.agent, options.read.format, options.suite, json.dumps(files),
             plan.content_sha256, json.dumps(plan.meta(), sort_keys=True),
             datetime.now(UTC).replace(tzinfo=None), harness.__version__],
        ).fetchall()
        rows = runs.assign(source="submission", submission_id=plan.submission_id, label=options.agent,
                           agent=options.agent, suite=options.suite, status="finished", variant=plan.variant)
        names = [c for c in RUN_COLUMNS if c in rows.columns]
        con.register("_submitted_runs", rows[names])
        try:
            listed = ", ".join(names)
            con.execute(f"INSERT INTO runs ({listed}) SELECT {listed} FROM _submitted_runs").fetchall()
        finally:
            con.unregister("_submitted_runs")
        insert_points(con, plan.points)
    return plan.submission_id


def list_submissions(store: Store) -> pd.DataFrame:
    """Every submission, oldest first, with its counts: ``submission_id, agent, format, suite,
    submitted_at, harness_version, tasks, runs, points, files, meta`` (an empty frame without a store)."""
    columns = ["submission_id", "agent", "format", "suite", "submitted_at", "harness_version", "tasks",
               "runs", "points", "files", "meta"]
    if not store.path.exists():
        return pd.DataFrame(columns=columns)
    with store.connect(read_only=True) as con:
        return con.execute(
            "WITH r AS (SELECT submission_id, count(*) AS runs, count(DISTINCT task) AS tasks FROM runs "
            "           WHERE submission_id IS NOT NULL GROUP BY submission_id), "
            "p AS (SELECT r.submission_id, count(*) AS points FROM runs r JOIN curves c USING (run_id) "
            "      WHERE r.submission_id IS NOT NULL GROUP BY r.submission_id) "
            "SELECT s.submission_id, s.agent, s.format, s.suite, s.submitted_at, s.harness_version, "
            "coalesce(r.tasks, 0) AS tasks, coalesce(r.runs, 0) AS runs, coalesce(p.points, 0) AS points, "
            "json_array_length(s.files) AS files, s.meta "
            "FROM submissions s LEFT JOIN r USING (submission_id) LEFT JOIN p USING (submission_id) "
            "ORDER BY s.submitted_at, s.submission_id"
        ).df()[columns]


@dataclass(frozen=True)
class SubmissionDetails:
    """One submission as stored: its row, its provenance and its runs per task."""

    submission_id: str
    agent: str
    format: str
    suite: str | None
    submitted_at: datetime
    harness_version: str
    files: tuple[SourceFile, ...]
    """The files it was read from, with their SHA-256 and size."""
    meta: dict[str, Any]
    """The submitter's keys, and under :data:`IMPORT_KEY` how the harness imported it."""
    tasks: pd.DataFrame
    """``task, runs, seeds, points, first_step, last_step`` per catalog task, by task."""


def submission_details(store: Store, submission_id: str) -> SubmissionDetails:
    """A stored submission with its provenance and per-task runs (:class:`InputError` if absent)."""
    if not store.path.exists():
        raise InputError(f"no submission {submission_id!r}: there is no store at {store.path}")
    with store.connect(read_only=True) as con:
        row = _first(con, "SELECT agent, format, suite, submitted_at, harness_version, files, meta "
                          "FROM submissions WHERE submission_id = ?", [submission_id])
        if row is None:
            raise InputError(f"no submission {submission_id!r} in {store.path}; "
                             "`harness submissions` lists them")
        tasks = con.execute(
            "SELECT r.task, count(DISTINCT r.run_id) AS runs, list(DISTINCT r.seed ORDER BY r.seed) AS seeds, "
            "count(c.step) AS points, min(c.step) AS first_step, max(c.step) AS last_step "
            "FROM runs r LEFT JOIN curves c USING (run_id) WHERE r.submission_id = ? "
            "GROUP BY r.task ORDER BY r.task", [submission_id]).df()
    agent, fmt, suite, submitted_at, version, files, meta = row
    return SubmissionDetails(submission_id, agent, fmt, suite, submitted_at, version,
                             tuple(SourceFile(**f) for f in json.loads(files)), json.loads(meta), tasks)


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_submission` deleted."""

    submission_id: str
    """The removed submission."""
    agent: str
    """Its agent label."""
    runs: int
    """Runs deleted."""
    points: int
    """Curve points deleted."""


def remove_submission(store: Store, submission_id: str) -> Removed:
    """Delete a submission with its runs and their curves, in one transaction."""
    if not store.path.exists():
        raise InputError(f"no submission {submission_id!r}: there is no store at {store.path}")
    with store.transaction() as con:
        row = _first(con, "SELECT agent FROM submissions WHERE submission_id = ?", [submission_id])
        if row is None:
            raise InputError(f"no submission {submission_id!r} in {store.path}; "
                             "`harness submissions` lists them")
        deleted_points = _first(
            con, "DELETE FROM curves WHERE run_id IN (SELECT run_id FROM runs WHERE submission_id = ?)",
            [submission_id])
        deleted_runs = _first(con, "DELETE FROM runs WHERE submission_id = ?", [submission_id])
        con.execute("DELETE FROM submissions WHERE submission_id = ?", [submission_id]).fetchall()
    assert deleted_points is not None and deleted_runs is not None
    return Removed(submission_id, str(row[0]), int(deleted_runs[0]), int(deleted_points[0]))


def _first(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """The first row of a statement's result, reading the result to its end (None if it has none)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def _check_options(path: Path, options: SubmitOptions) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if not options.agent.strip():
        raise InputError("--agent: an empty name; give the label the runs should carry in reports")
    if any(unicodedata.category(c).startswith("C") for c in options.agent):
        raise InputError(f"--agent {options.agent!r}: control characters are not allowed in a label")
    if options.suite is not None and not options.suite.strip():
        raise InputError("--suite: an empty name")
    if IMPORT_KEY in options.meta:
        raise InputError(f"--meta {IMPORT_KEY}=...: that key is reserved for the harness's own record")
    read_options = options.read
    if read_options.format == "bro" and read_options.grid is None:
        raise InputError("--format bro needs the step grid: --step-start and --step-every "
                         "(BRO's own: --step-start 25000 --step-every 25000)")
    if read_options.format not in ("bro", "brc") and read_options.grid is not None:
        raise InputError("--step-start and --step-every apply to --format bro and brc only")
    if read_options.format not in ("dreamerv3", "humanoidbench") and read_options.method is not None:
        raise InputError("--method applies to --format dreamerv3 and humanoidbench only")
    if read_options.format != "humanoidbench" and read_options.robot != ReadOptions.robot:
        raise InputError("--robot applies to --format humanoidbench only")
    if read_options.format == "humanoidbench" and read_options.robot not in HB_ROBOTS:
        raise InputError(f"--robot {read_options.robot}: expected one of {', '.join(HB_ROBOTS)}")
    if read_options.format != "long" and (read_options.metric is not None or read_options.metric_map
                                          or read_options.ignore_columns
                                          or read_options.columns != LongColumns()):
        raise InputError("--column, --metric, --metric-map and --ignore-column apply to --format long only")
    if read_options.metric_map and read_options.metric != "auto":
        raise InputError("--metric-map names metrics for --metric auto; add --metric auto")


def _store_problems(con: duckdb.DuckDBPyConnection, agent: str, content: str,
                    seeds: pd.DataFrame) -> list[Problem]:
    """Conflicts with what the store holds: the same files, or runs the agent label already has."""
    problems: list[Problem] = []
    same = _first(con, "SELECT submission_id, agent, submitted_at FROM submissions WHERE content_sha256 = ?",
                  [content])
    if same is not None:
        return [Problem(
            "", "", "", f"the same files as submission {same[0]} (agent {same[1]!r}, submitted "
            f"{same[2]:%Y-%m-%d %H:%M} UTC)",
            f"files not submitted before; `harness submissions rm {same[0]}` removes the earlier one")]
    ours = _first(con, "SELECT count(*) FROM runs WHERE source = 'harness' AND label = ?", [agent])
    if ours is not None and ours[0] > 0:
        problems.append(Problem(
            "", "", "", f"--agent {agent!r}, a label of {ours[0]} runs trained by the harness",
            f"a label of its own for published results (for example {agent + '-paper'!r})"))
    con.register("_candidate_seeds", seeds[["task", "seed"]])
    try:
        taken = con.execute(
            "SELECT r.submission_id, r.task, list(r.seed ORDER BY r.seed) FROM runs r "
            "JOIN _candidate_seeds n ON r.task = n.task AND r.seed = n.seed "
            "WHERE r.source = 'submission' AND r.label = ? GROUP BY ALL ORDER BY 1, 2", [agent]).fetchall()
    finally:
        con.unregister("_candidate_seeds")
    for other, task, numbers in taken:
        problems.append(Problem(
            "", "", "", f"agent {agent!r} already has {task} seed(s) {', '.join(map(str, numbers))} "
            f"from submission {other}",
            f"(task, seed) pairs new to this agent: `harness submissions rm {other}` first, "
            "or another --agent"))
    return problems
