"""Validation of a submission: every problem is collected, none stops the checks of the rest.

:func:`check` takes the common long frame of :mod:`harness.submit.formats` and returns the points
that can be stored (canonical task, integer seed, step, value) with every :class:`Problem` found,
each located by file, row and column, with the value found and what was expected.

Task names go through :func:`harness.catalog.resolve` (the catalog's one alias table). Two
different published names that mean one catalog task (BRO's ``finger-turn`` and
``finger-turn-hard``) are a problem unless ``merge_aliases`` is set; every published name and its
catalog task is recorded either way.

Metrics. When a file holds several metrics (or ``auto_metric`` is set), each task keeps the rows
whose metric name means the task's catalog metric (:data:`METRIC_NAMES`, extended by the caller);
the other rows are dropped and counted in a note.

Seeds. A run is the sequence of rows of one (file, published task name, seed label), in file
order; its steps must increase. When the steps of a seed label go back to (or below) the label's
first step, a second run starts under the same label (TD-MPC2's ``tdmpc`` folder has this); merged
names give a label one run per name. More than one run per (task, seed label) is a problem unless
``split_duplicate_seeds`` is set, which gives every further run a new seed number after the task's
largest one. A row that repeats an earlier row of its run exactly (same step and value) adds
nothing and is dropped with a note naming both lines; the same step with a different value is a
problem. Seed labels that are all integers are stored as those integers; otherwise the distinct
labels are numbered 1, 2, ... in order of first appearance, and the mapping is given as a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from harness import catalog
from harness.errors import InputError

INT32_MAX = 2**31 - 1
_MEANING = {"return": "episode return", "success": "success rate"}
METRIC_NAMES: dict[str, catalog.Metric] = {
    "avg_return": "return", "episode_return": "return", "return": "return", "eval/return": "return",
    "avg_success": "success", "success": "success", "success_rate": "success", "eval/success": "success",
}
"""Common published metric names and what they measure, for per-task metric selection
(``--metric auto``); ``--metric-map NAME=return|success`` adds names. Matched case-insensitively."""


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
        place = ", ".join(part for part in (self.file, self.where, column) if part) or "the submission"
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
    names: tuple[tuple[str, str], ...]
    """Every published task name and the catalog task it means, sorted by published name."""
    merged: tuple[tuple[str, tuple[str, ...]], ...]
    """Catalog tasks given under several published names: (task, names), merged or not."""


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
          split_duplicate_seeds: bool, merge_aliases: bool = False, auto_metric: bool = False,
          metric_names: dict[str, catalog.Metric] | None = None) -> Checked:
    """Validate the common long frame; ``columns`` names each file's columns in messages.

    ``metric_names`` adds to (or overrides) :data:`METRIC_NAMES` for per-task metric selection.
    """
    df = frame.reset_index(drop=True)
    found: Found = []
    notes: list[str] = []

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
    # The published name as a source: written with or without the suite prefix, in any case, it is one name.
    df["source"] = [name if pd.isna(task) else str(name).lower().removeprefix(str(task).split("/", 1)[0] + "/")
                    for name, task in zip(df["task"], df["canonical"], strict=True)]
    metric_of = {t.name: t.metric for t in tasks.values() if t is not None}
    names = {**METRIC_NAMES, **{k.lower(): v for k, v in (metric_names or {}).items()}}
    kept = _select_metrics(df, metric_of, names, auto_metric, found, notes, column)  # (rows,)
    if not kept.all():
        # Renumber the rows kept, and the rows of the problems found so far with them (for their order).
        position = np.maximum(np.cumsum(kept) - 1, 0)  # (rows,) new index of each row, or of the one kept before it
        found[:] = [(file, int(position[index]), problem) for file, index, problem in found]
        df = df[kept].reset_index(drop=True)
    merged = _check_aliases(df, found, notes, column, merge_aliases)
    known = df["canonical"].notna()
    bad = np.zeros(len(df), dtype=bool)  # (rows,) True where a row has a problem of its own

    step = pd.to_numeric(df["step"], errors="coerce").astype(np.float64)
    step_ok = np.isfinite(step) & (step == np.floor(step)) & (step >= 0)
    flag(known & ~step_ok, "step", "a whole number of environment steps, 0 or more")
    value = pd.to_numeric(df["value"], errors="coerce").astype(np.float64)
    flag(known & ~np.isfinite(value), "value", "a finite number")

    kind_ok = _check_metric_kinds(df, tasks, names, found, column) & known
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
                                 column, bad, split_duplicate_seeds, merge_aliases)

    keep = ok & ~pd.Series(bad, index=df.index) & ~repeated
    points = pd.DataFrame({
        "task": df.loc[keep, "canonical"].astype(str),
        "seed": seed[keep].astype(np.int64),
        "step": step[keep].astype(np.int64),
        "value": value[keep],
    }).reset_index(drop=True)
    problems = tuple(p for _, _, p in sorted(found, key=lambda item: (item[0], item[1])))
    mapping = tuple(sorted((str(name), t.name) for name, t in tasks.items() if t is not None))
    return Checked(points, problems, tuple(notes), tuple(skipped), mapping, merged)


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
    return tasks, sorted(set(skipped))


def _span(rows: pd.DataFrame) -> str:
    """Where some rows of one file are: ``line 2 to line 9`` (or one place), and how many."""
    first, last = str(rows["where"].iloc[0]), str(rows["where"].iloc[-1])
    place = first if len(rows) == 1 else f"{first} to {last}"
    return f"{place}, {len(rows)} row{'s' if len(rows) > 1 else ''}"


def _select_metrics(df: pd.DataFrame, metric_of: dict[str, catalog.Metric], names: dict[str, catalog.Metric],
                    auto_metric: bool, found: Found, notes: list[str], column: ColumnName) -> NDArray[np.bool_]:
    """Per task, keep the rows of the task's catalog metric, in files with several metrics or under
    ``auto_metric``; the other rows are dropped (counted in a note). Returns the mask (rows,) of rows kept."""
    several = df.groupby("file")["metric"].transform("nunique") > 1
    chosen = df["canonical"].notna() & df["metric"].notna() & (several | auto_metric)
    if not chosen.any():
        return np.ones(len(df), dtype=bool)
    kind = df["metric"].map(lambda m: names.get(str(m).lower()))
    keep = kind == df["canonical"].map(metric_of)
    drop = chosen & ~keep
    for file, rows in df[chosen].groupby("file", sort=False):
        kept = rows[keep[rows.index]]
        counts = ", ".join(f"{m} {n}" for m, n in kept["metric"].value_counts(sort=False).items())
        dropped = rows[drop[rows.index]]["metric"].value_counts(sort=False)
        text = f"{file}: kept each task's catalog metric ({counts or 'no rows'})"
        if len(dropped):
            text += "; dropped the rows of other metrics (" + ", ".join(f"{m} {n}" for m, n in dropped.items()) + ")"
        notes.append(text)
        for (name, canonical), task_rows in rows.groupby(["task", "canonical"], sort=False):
            if keep[task_rows.index].any():
                continue
            metric = metric_of[str(canonical)]
            known = sorted(n for n, k in names.items() if k == metric)
            index = int(task_rows.index[0])
            found.append((str(file), index, Problem(
                str(file), str(task_rows["where"].iloc[0]), column(str(file), "metric"),
                f"no row of a {metric} metric for {shown(name)} (metrics: "
                f"{', '.join(sorted(task_rows['metric'].astype(str).unique()))})",
                f"rows of {_MEANING[metric]} for {canonical}, under a known name ({', '.join(known)}) "
                f"or one added with --metric-map NAME={metric}")))
    return (~drop).to_numpy()


def _check_aliases(df: pd.DataFrame, found: Found, notes: list[str], column: ColumnName,
                   merge_aliases: bool) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Catalog tasks given under several published names (in one file or across files).

    Without ``merge_aliases`` each further name is a problem naming both names, where they are
    and the task; with it, the merge is noted. Returns (task, names) for every such task.
    """
    merged: list[tuple[str, tuple[str, ...]]] = []
    known = df[df["canonical"].notna()]
    for canonical, rows in known.groupby("canonical", sort=False):
        sources = rows.drop_duplicates(["file", "source"])
        if len(sources) == 1:
            continue
        spans = []
        for file, source, name in zip(sources["file"], sources["source"], sources["task"], strict=True):
            part = rows[(rows["file"] == file) & (rows["source"] == source)]
            spans.append((str(file), str(name), int(part.index[0]), str(part["where"].iloc[0]), _span(part)))
        merged.append((str(canonical), tuple(dict.fromkeys(name for _, name, _, _, _ in spans))))
        described = [f"{shown(name)} ({file}, {span})" for file, name, _, _, span in spans]
        if merge_aliases:
            notes.append(f"merged {' and '.join(described)} into {canonical} (--merge-aliases)")
            continue
        first_file, first_name, _, _, first_span = spans[0]
        for file, name, index, where, span in spans[1:]:
            found.append((file, index, Problem(
                file, where, column(file, "task"), f"{shown(name)} ({span})",
                f"one published name per task: {shown(first_name)} ({first_file}, {first_span}) also means "
                f"{canonical}; pass --merge-aliases to store both names' rows as {canonical}")))
    return tuple(merged)


def _check_metric_kinds(df: pd.DataFrame, tasks: dict[str, catalog.Task | None],
                        names: dict[str, catalog.Metric], found: Found, column: ColumnName) -> pd.Series:
    """Rows whose published metric agrees with the catalog's (rows without a metric name agree)."""
    agree = pd.Series(True, index=df.index)
    named = df[df["metric"].notna()]
    for (file, name, metric), rows in named.groupby(["file", "task", "metric"], sort=False):
        task = tasks.get(str(name))
        if task is None:
            continue
        kind = names.get(str(metric).lower()) or metric_kind(str(metric))
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
                bad: np.ndarray, split_duplicate_seeds: bool, merge_aliases: bool) -> tuple[pd.Series, pd.Series]:
    """Check the step sequence of every (file, published task name, seed label); split or report
    labels that carry several runs.

    Rows out of order and conflicting repeats are marked in ``bad`` (rows,). A label is the
    (task, seed label) pair; with ``merge_aliases`` one label can hold runs of several published
    names and files, otherwise it is also keyed by file and name (their clash is reported apart).

    Returns the final seed number of every row and the mask of exact repeats to drop.
    """
    sub = df[ok]
    stream = ["file", "source", "canonical", "seed"]
    groups = sub.groupby(stream, sort=False)
    prev_step = groups["stepf"].shift()
    prev_value = groups["valf"].shift()
    prev_where = groups["where"].shift()
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
        pairs = ", ".join(f"{where} (= {prev_where[i]})" for i, where in zip(rows.index, rows["where"], strict=True))
        notes.append(f"{file}: dropped {len(rows)} row(s) that repeat an earlier row of their task and seed "
                     f"exactly (same step and value): {pairs}")

    segment = restart.astype(np.int64).groupby([sub[k] for k in stream], sort=False).cumsum()  # run within a stream
    spans = (sub.assign(segment=segment, index=sub.index)
             .groupby([*stream, "segment"], sort=False)
             .agg(first=("index", "first"), last=("index", "last"), start=("stepf", "first"),
                  end=("stepf", "last"))
             .reset_index()
             .sort_values("first", ignore_index=True))
    label = ["canonical", "seed"] if merge_aliases else stream
    spans["runs"] = spans.groupby(label, sort=False)["segment"].transform("size")
    spans["order"] = spans.groupby(label, sort=False).cumcount()  # 0 for a label's first run
    spans["span"] = [f"{df.at[first, 'where']} to {df.at[last, 'where']} (steps {int(a)}-{int(b)})"
                     for first, last, a, b in zip(spans["first"], spans["last"], spans["start"], spans["end"],
                                                  strict=True)]
    reused = spans[spans["runs"] > 1]
    seed = df["seed_int"].copy()
    if not split_duplicate_seeds:
        for _, runs in reused.groupby(label, sort=False):
            one_source = runs[["file", "source"]].drop_duplicates().shape[0] == 1
            described = [r.span if one_source else f"{r.source!r} in {r.file}, {r.span}" for r in runs.itertuples()]
            second = runs.iloc[1]
            file, index = str(second["file"]), int(second["first"])
            got = (f"{shown(second['seed'])} starting over at step {int(second['start'])}" if one_source
                   else f"{shown(second['seed'])} of {shown(second['source'])}, a seed label that "
                   f"{runs['source'].iloc[0]!r} also uses")
            found.append((file, index, Problem(
                file, str(df.at[index, "where"]), column(file, "seed"), got,
                f"one run per seed label (this label carries {len(runs)} runs: {'; '.join(described)}); "
                "pass --split-duplicate-seeds to store each run under its own seed number")))
        return seed, repeated
    # Each further run gets the next seed number after the task's largest, in order of first row.
    next_seed = sub.groupby("canonical")["seed_int"].max().to_dict()
    for r in reused[reused["order"] > 0].itertuples():
        next_seed[r.canonical] += 1
        rows = np.logical_and.reduce([(sub[k] == getattr(r, k)).to_numpy() for k in stream]
                                     + [(segment == r.segment).to_numpy()])
        seed[sub.index[rows]] = next_seed[r.canonical]
        notes.append(f"{r.file}: {r.canonical} seed {r.seed!r} carries {r.runs} runs; the run at {r.span} "
                     f"is stored as seed {next_seed[r.canonical]} (published name {r.source!r})")
    return seed, repeated
