"""Validation of a submission: every problem is collected, none stops the checks of the rest.

:func:`check` takes the common long frame of :mod:`harness.submit.formats` and returns the points
that can be stored (canonical task, integer seed, step, value) with every :class:`Problem` found,
each located by file, row and column, with the value found and what was expected.

Seeds. A run is the sequence of rows of one (file, task, seed label), in file order; its steps
must increase. When the steps of a seed label go back to (or below) the label's first step, a
second run starts under the same label (TD-MPC2's ``tdmpc`` folder has this): that is a problem
unless ``split_duplicate_seeds`` is set, which gives every further run a new seed number after the
task's largest one. A row that repeats the row before it exactly (same seed, step and value) adds
nothing and is dropped with a note; the same step with a different value is a problem. Seed labels
that are all integers are stored as those integers; otherwise the distinct labels are numbered
1, 2, ... in order of first appearance, and the mapping is given as a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import catalog
from harness.errors import InputError

INT32_MAX = 2**31 - 1
_MEANING = {"return": "episode return", "success": "success rate"}


@dataclass(frozen=True)
class Problem:
    """One reason a submission cannot be stored, located precisely enough to fix it."""

    file: str
    """File name relative to the submitted path ('' for the submission as a whole)."""
    where: str
    """Row in the file: ``line 12`` (CSV), ``row 3`` (Parquet), ``evaluation 4, seed column 2``
    (.npy); '' for the file as a whole."""
    column: str
    """The file's column (or '' when the problem is not about one column)."""
    value: str
    """What was found."""
    expected: str
    """What was expected instead, and how to proceed where there is a way."""

    def __str__(self) -> str:
        column = f"column {self.column}" if self.column else ""
        place = ", ".join(part for part in (self.file, self.where, column) if part)
        return f"{place}: {self.value}; expected {self.expected}"


Found = list[tuple[str, int, Problem]]
"""Problems as they are found: (file, row index for sorting, problem)."""
ColumnName = Callable[[str, str], str]
"""``(file, field) -> the file's own column name``, for messages."""


@dataclass(frozen=True)
class Checked:
    """The outcome of :func:`check`."""

    points: pd.DataFrame
    """The rows that passed: ``task`` (canonical name), ``seed`` (int64), ``step`` (int64),
    ``value`` (float64, as published)."""
    problems: tuple[Problem, ...]
    """Every problem, sorted by file and row."""
    notes: tuple[str, ...]
    """What was done to the data on the way in (skipped tasks, dropped rows, new seed numbers)."""
    skipped: tuple[str, ...]
    """Published task names left out because they are not in the catalog."""


def shown(value: object, limit: int = 80) -> str:
    """A value as it appears in a message: quoted, and cut short when long."""
    text = repr(str(value))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def metric_kind(name: str) -> catalog.Metric | None:
    """What a published metric name measures: ``success`` rate or episode ``return`` (None: unclear)."""
    lowered = name.lower()
    if "success" in lowered:
        return "success"
    if "return" in lowered or "reward" in lowered:
        return "return"
    return None


def check(frame: pd.DataFrame, columns: dict[str, dict[str, str]], *, skip_unknown_tasks: bool,
          split_duplicate_seeds: bool) -> Checked:
    """Validate the common long frame; ``columns`` names each file's columns in messages."""
    df = frame.reset_index(drop=True)
    found: Found = []
    notes: list[str] = []
    bad = np.zeros(len(df), dtype=bool)  # (rows,) True where a row has a problem of its own

    def column(file: str, field: str) -> str:
        return columns.get(file, {}).get(field, field)

    def flag(mask: pd.Series, field: str, expected: str) -> None:
        rows = df.loc[mask]
        for index, file, where, value in zip(rows.index, rows["file"], rows["where"], rows[field],
                                             strict=True):
            problem = Problem(file, where, column(file, field), shown(value), expected)
            found.append((file, int(index), problem))
        bad[mask.to_numpy()] = True

    tasks, skipped = _resolve_tasks(df, found, notes, column, skip_unknown_tasks)
    df["canonical"] = df["task"].map({name: t.name for name, t in tasks.items() if t is not None})
    known = df["canonical"].notna()
    metric_of = {t.name: t.metric for t in tasks.values() if t is not None}

    step = pd.to_numeric(df["step"], errors="coerce").astype(np.float64)
    step_ok = np.isfinite(step) & (step == np.floor(step)) & (step >= 0)
    flag(known & ~step_ok, "step", "a whole number of environment steps, 0 or more")
    value = pd.to_numeric(df["value"], errors="coerce").astype(np.float64)
    flag(known & ~np.isfinite(value), "value", "a finite number")

    kind_ok = _check_metric_kinds(df, tasks, found, column) & known
    success = df["canonical"].map(metric_of) == "success"
    flag(kind_ok & success & np.isfinite(value) & ((value < 0) | (value > 1)), "value",
         "a success rate in [0, 1]")

    label = df["seed"].astype(str)
    seed_ok = label.str.strip() != ""
    flag(known & ~seed_ok, "seed", "a seed label")
    seed = _seed_numbers(label, known & seed_ok, notes)
    _check_label_collisions(df.assign(seed_int=seed), known & seed_ok, found, column)

    ok = known & step_ok & seed_ok
    seed, repeated = _check_runs(df.assign(stepf=step, valf=value, seed_int=seed), ok, found, notes,
                                 column, bad, split_duplicate_seeds)

    keep = ok & ~pd.Series(bad, index=df.index) & ~repeated
    points = pd.DataFrame({
        "task": df.loc[keep, "canonical"].astype(str),
        "seed": seed[keep].astype(np.int64),
        "step": step[keep].astype(np.int64),
        "value": value[keep],
    }).reset_index(drop=True)
    problems = tuple(p for _, _, p in sorted(found, key=lambda item: (item[0], item[1])))
    return Checked(points, problems, tuple(notes), tuple(skipped))


def _resolve_tasks(df: pd.DataFrame, found: Found, notes: list[str], column: ColumnName,
                   skip_unknown_tasks: bool) -> tuple[dict[str, catalog.Task | None], list[str]]:
    """Map published task names to catalog tasks; report unknown names and tasks given by two files."""
    tasks: dict[str, catalog.Task | None] = {}
    skipped: list[str] = []
    sources = df.drop_duplicates(["file", "task"])
    for index, file, where, name in zip(sources.index, sources["file"], sources["where"], sources["task"],
                                        strict=True):
        try:
            tasks[name] = catalog.resolve(name)
        except InputError as exc:
            tasks[name] = None
            rows = int((df["task"] == name).sum())
            if skip_unknown_tasks:
                skipped.append(name)
                notes.append(f"skipped task {name!r} (not in the catalog): {rows} rows of {file}")
            else:
                found.append((file, int(index), Problem(
                    file, where, column(file, "task"), str(exc),
                    "a task of the catalog or one of its aliases, or --skip-unknown-tasks to leave it out")))
    # One file per task: two files whose names mean the same task would mix their seeds.
    by_task: dict[str, dict[str, tuple[int, str, str]]] = {}
    for index, file, where, name in zip(sources.index, sources["file"], sources["where"], sources["task"],
                                        strict=True):
        task = tasks[name]
        if task is not None:
            by_task.setdefault(task.name, {}).setdefault(file, (int(index), where, name))
    for canonical, files in by_task.items():
        first_file, (_, _, first_name) = next(iter(files.items()))
        for file, (index, where, name) in list(files.items())[1:]:
            found.append((file, index, Problem(
                file, where, column(file, "task"), shown(name),
                f"one file per task: {first_name!r} in {first_file} also means {canonical}")))
    return tasks, sorted(set(skipped))


def _check_metric_kinds(df: pd.DataFrame, tasks: dict[str, catalog.Task | None],
                        found: Found, column: ColumnName) -> pd.Series:
    """Rows whose published metric agrees with the catalog's (rows without a metric name agree)."""
    agree = pd.Series(True, index=df.index)
    named = df[df["metric"].notna()]
    for (file, name, metric), rows in named.groupby(["file", "task", "metric"], sort=False):
        task = tasks.get(str(name))
        if task is None:
            continue
        kind = metric_kind(str(metric))
        index = int(rows.index[0])
        where = str(rows["where"].iloc[0])
        if kind is None:
            found.append((str(file), index, Problem(
                str(file), where, column(str(file), "metric"), shown(metric),
                "a metric name that says what it measures: one containing 'return' or 'reward' "
                "(episode return) or 'success' (success rate)")))
        elif kind != task.metric:
            found.append((str(file), index, Problem(
                str(file), where, column(str(file), "metric"), shown(metric),
                f"a {task.metric} metric: the catalog scores {task.name} by {_MEANING[task.metric]}")))
        if kind != task.metric:
            agree[rows.index] = False
    return agree


def _seed_numbers(label: pd.Series, seed_ok: pd.Series, notes: list[str]) -> pd.Series:
    """Integer seeds: the labels themselves when all are integers, else 1, 2, ... by first appearance."""
    number = pd.to_numeric(label.where(seed_ok), errors="coerce").astype(np.float64)
    integral = np.isfinite(number) & (number == np.floor(number)) & (number.abs() <= INT32_MAX)
    if bool(integral[seed_ok].all()):
        return number.fillna(0).astype(np.int64)
    order = pd.unique(label[seed_ok])
    mapping = {name: i + 1 for i, name in enumerate(order)}
    notes.append("seed labels are not all integers; stored as numbers in order of first appearance: "
                 + ", ".join(f"{name!r} -> {n}" for name, n in mapping.items()))
    return label.map(mapping).fillna(0).astype(np.int64)


def _check_label_collisions(df: pd.DataFrame, ok: pd.Series, found: Found, column: ColumnName) -> None:
    """Two different labels of one task that mean the same seed number (``1`` and ``1.0``)."""
    rows = df[ok].drop_duplicates(["canonical", "seed_int", "seed"])
    for (_, number), group in rows.groupby(["canonical", "seed_int"], sort=False):
        if len(group) > 1:
            file, index, where = str(group["file"].iloc[1]), int(group.index[1]), str(group["where"].iloc[1])
            labels = ", ".join(shown(s) for s in group["seed"])
            found.append((file, index, Problem(file, where, column(file, "seed"), labels,
                                               f"one label per seed: these labels all mean seed {number}")))


def _check_runs(df: pd.DataFrame, ok: pd.Series, found: Found, notes: list[str], column: ColumnName,
                bad: np.ndarray, split_duplicate_seeds: bool) -> tuple[pd.Series, pd.Series]:
    """Check the step sequence of every (file, task, seed label); split or report reused labels.

    Rows out of order and conflicting repeats are marked in ``bad`` (rows,).

    Returns the final seed number of every row and the mask of exact repeats to drop.
    """
    sub = df[ok]
    keys = [sub["file"], sub["canonical"], sub["seed"]]
    groups = sub.groupby(keys, sort=False)
    prev_step = groups["stepf"].shift()
    prev_value = groups["valf"].shift()
    first_step = groups["stepf"].transform("first")
    back = sub["stepf"] < prev_step
    restart = back & (sub["stepf"] <= first_step)  # the label starts over: another run
    repeat = sub["stepf"] == prev_step
    same = repeat & (sub["valf"] == prev_value)

    bad[sub.index[(back & ~restart) | (repeat & ~same)]] = True
    for index in sub.index[back & ~restart]:
        file = str(sub.at[index, "file"])
        found.append((file, int(index), Problem(
            file, str(sub.at[index, "where"]), column(file, "step"), shown(sub.at[index, "step"]),
            f"a step above {int(prev_step[index])}, the step before it for seed {sub.at[index, 'seed']!r} "
            "(the steps of a run must increase)")))
    for index in sub.index[repeat & ~same]:
        file = str(sub.at[index, "file"])
        found.append((file, int(index), Problem(
            file, str(sub.at[index, "where"]), column(file, "step"), shown(sub.at[index, "step"]),
            f"one row per (task, seed, step): seed {sub.at[index, 'seed']!r} has step "
            f"{int(sub.at[index, 'stepf'])} twice, with values {prev_value[index]:g} and "
            f"{sub.at[index, 'valf']:g}")))
    repeated = pd.Series(False, index=df.index)
    repeated[sub.index[same]] = True
    for file, rows in sub[same].groupby("file", sort=False):
        notes.append(f"{file}: dropped {len(rows)} row(s) that repeat the row before them exactly "
                     f"(same seed, step and value): {', '.join(rows['where'])}")

    segment = restart.astype(np.int64).groupby(keys, sort=False).cumsum()  # run number within a label
    label_keys = ["file", "canonical", "seed"]
    spans = (sub.assign(segment=segment, index=sub.index)
             .groupby([*label_keys, "segment"], sort=False)
             .agg(first=("index", "first"), last=("index", "last"), start=("stepf", "first"),
                  end=("stepf", "last"))
             .reset_index())
    spans["runs"] = spans.groupby(label_keys, sort=False)["segment"].transform("max") + 1
    spans["span"] = [f"{df.at[first, 'where']} to {df.at[last, 'where']} (steps {int(a)}-{int(b)})"
                     for first, last, a, b in zip(spans["first"], spans["last"], spans["start"], spans["end"],
                                                  strict=True)]
    reused = spans[spans["runs"] > 1]
    seed = df["seed_int"].copy()
    if not split_duplicate_seeds:
        for (file, _, label), runs in reused.groupby(label_keys, sort=False):
            restart_index = int(runs["first"].iloc[1])
            found.append((str(file), restart_index, Problem(
                str(file), str(df.at[restart_index, "where"]), column(str(file), "seed"),
                f"{shown(label)} starting over at step {int(runs['start'].iloc[1])}",
                f"one run per seed label (this label carries {len(runs)} runs: {'; '.join(runs['span'])}); "
                "pass --split-duplicate-seeds to store each run under its own seed number")))
        return seed, repeated
    # Each further run gets the next seed number after the task's largest, in order of first row.
    next_seed = sub.groupby("canonical")["seed_int"].max().to_dict()
    for r in reused[reused["segment"] > 0].sort_values("first").itertuples():
        next_seed[r.canonical] += 1
        rows = ((sub["file"] == r.file) & (sub["canonical"] == r.canonical) & (sub["seed"] == r.seed)
                & (segment == r.segment))
        seed[sub.index[rows]] = next_seed[r.canonical]
        notes.append(f"{r.file}: seed {r.seed!r} carries {r.runs} runs; the run at {r.span} "
                     f"is stored as seed {next_seed[r.canonical]}")
    return seed, repeated
