"""Readers of published result files: each format becomes one common long frame.

The frame has one row per published evaluation point and the columns of :data:`RAW_COLUMNS`,
all as published (strings from CSV files, numbers from arrays): ``file`` (name relative to the
submitted path), ``where`` (the row inside that file, as a person would look it up), ``task`` (the
published task name), ``seed`` (the published seed label, as a string), ``step``, ``value`` and
``metric`` (the published metric name, or None when the format does not name one). Rows stay in
file order. Nothing here judges the values: :mod:`harness.submit.validate` does, and collects
every problem. A reader reports what makes a file unreadable as a :class:`Problem` and goes on with
the next file.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from harness.catalog import Metric
from harness.submit.validate import Problem, shown

Format = Literal["long", "tdmpc2", "bro"]
FORMATS: tuple[Format, ...] = ("long", "tdmpc2", "bro")
RAW_COLUMNS = ("file", "where", "task", "seed", "step", "value", "metric")
LONG_FIELDS = ("task", "seed", "step", "value", "metric")
PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class LongColumns:
    """The column names of a ``long`` file (``--column FIELD=NAME`` changes one)."""

    task: str = "task"
    """Column of task names (canonical names or aliases)."""
    seed: str = "seed"
    """Column of seed labels."""
    step: str = "step"
    """Column of environment steps."""
    value: str = "value"
    """Column of evaluation scores (episode return or success rate)."""
    metric: str | None = None
    """Column of metric names; None means: use a column named ``metric`` if there is one."""


@dataclass(frozen=True)
class StepGrid:
    """The environment step of row ``i`` of a ``bro`` array is ``start + i * every``."""

    start: int
    """Step of the first evaluation (BRO: 25,000)."""
    every: int
    """Steps between evaluations (BRO: 25,000)."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read the submitted path."""

    format: Format
    """``long`` (one CSV or Parquet file), ``tdmpc2`` (CSVs, one per task), ``bro`` (.npy arrays)."""
    columns: LongColumns = field(default_factory=LongColumns)
    """``long`` only: the column names."""
    metric: str | None = None
    """``long`` only: keep the rows of this metric; ``auto``: per task, the rows of its catalog metric
    (needed when the file holds several metrics)."""
    metric_map: dict[str, Metric] = field(default_factory=dict)
    """``long`` only: published metric names added to the common ones for ``--metric auto``."""
    ignore_columns: tuple[str, ...] = ()
    """``long`` only: columns to leave out (a pandas index column has the empty name '')."""
    grid: StepGrid | None = None
    """``bro`` only (and required there): the step grid of the arrays' rows."""


@dataclass(frozen=True)
class SourceFile:
    """One submitted file, as recorded in the submission's provenance."""

    name: str
    """Path relative to the submitted folder (the file's own name when a file was submitted)."""
    sha256: str
    """SHA-256 of the file's bytes."""
    size: int
    """Size in bytes."""


@dataclass(frozen=True)
class Loaded:
    """What the readers made of a submitted path."""

    frame: pd.DataFrame
    """The common long frame (:data:`RAW_COLUMNS`), in file order."""
    files: tuple[SourceFile, ...]
    """Every file that was read, sorted by name."""
    problems: tuple[Problem, ...]
    """Files that could not be read as the format says, and why."""
    columns: dict[str, dict[str, str]]
    """Per file, the file's own name for each field of the frame, for messages."""


def read(path: Path, options: ReadOptions) -> Loaded:
    """Read a file or folder in the given format into the common long frame."""
    suffix = {"long": None, "tdmpc2": ".csv", "bro": ".npy"}[options.format]
    entries, problems = _entries(path, suffix)
    frames: list[pd.DataFrame] = []
    files: list[SourceFile] = []
    columns: dict[str, dict[str, str]] = {}
    for name, file in entries:
        data = file.read_bytes()
        files.append(SourceFile(name, hashlib.sha256(data).hexdigest(), len(data)))
        if not data:
            problems.append(Problem(name, "", "", "an empty file (0 bytes)", "a file with results"))
            continue
        if options.format == "long":
            frame, found, columns[name] = _read_long(name, file, data, options)
        elif options.format == "tdmpc2":
            frame, found, columns[name] = _read_tdmpc2(name, data)
        else:
            assert options.grid is not None, "the bro format needs a step grid"
            frame, found, columns[name] = _read_bro(name, data, options.grid)
        problems.extend(found)
        if frame is not None:
            frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RAW_COLUMNS))
    return Loaded(frame, tuple(sorted(files, key=lambda f: f.name)), tuple(problems), columns)


def _entries(path: Path, suffix: str | None) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """The files to read: ``path`` itself, or the files directly inside the folder ``path``.

    ``suffix`` None means the format reads one file, not a folder. Hidden entries (``.name``) are
    ignored; links that lead out of the folder are reported and not followed.
    """
    if path.is_file():
        if suffix is not None and path.suffix.lower() != suffix:
            return [], [Problem(path.name, "", "", "a file without the " + suffix + " suffix",
                                f"a {suffix} file or a folder of them")]
        return [(path.name, path)], []
    if suffix is None:
        return [], [Problem(path.name, "", "", "a folder", "one CSV or Parquet file")]
    root = path.resolve()
    entries: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() and not entry.resolve().is_relative_to(root):
            problems.append(Problem(entry.name, "", "", f"a link to {shown(entry.resolve())}",
                                    "a file inside the submitted folder (links out of it are not followed)"))
        elif entry.is_dir():
            problems.append(Problem(entry.name, "", "", "a folder",
                                    f"{suffix} files directly inside the submitted folder"))
        elif not entry.is_file():
            problems.append(Problem(entry.name, "", "", "not a regular file", f"a {suffix} file"))
        elif entry.suffix.lower() != suffix:
            problems.append(Problem(entry.name, "", "", f"a file without the {suffix} suffix",
                                    f"only {suffix} files in the folder"))
        else:
            entries.append((entry.name, entry))
    if not entries and not problems:
        problems.append(Problem(path.name, "", "", "an empty folder", f"{suffix} files"))
    return entries, problems


# ----------------------------------------------------------------------------------------------
# CSV (long and tdmpc2)


def _csv_table(name: str, data: bytes) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Parse CSV bytes into a frame of strings with a ``where`` column (``line N``).

    Every line whose number of fields differs from the header's is a problem (all of them, not
    the first); the other lines are kept.
    """
    if b"\0" in data:
        return None, [Problem(name, "", "", "binary content", "a text CSV file")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [Problem(name, "", "", f"bytes that are not UTF-8 ({exc.reason} at byte {exc.start})",
                              "a UTF-8 text CSV file")]
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        records = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        return None, [Problem(name, f"line {reader.line_num}", "", str(exc), "a well-formed CSV file")]
    if not records or not records[0][1]:
        return None, [Problem(name, "line 1", "", "no header", "a header line naming the columns")]
    header = records[0][1]
    problems = [
        Problem(name, "line 1", column, "a column name used twice", "distinct column names")
        for column in sorted({c for c in header if header.count(c) > 1})
    ]
    if problems:
        return None, problems
    good: list[list[str]] = []
    lines: list[int] = []
    for line, row in records[1:]:
        if len(row) == len(header):
            good.append(row)
            lines.append(line)
        else:
            got = "an empty line" if not row else f"{len(row)} fields"
            problems.append(Problem(name, f"line {line}", "", got, f"{len(header)} fields, like the header"))
    if not good and not problems:
        problems.append(Problem(name, "", "", "a header and no data rows", "at least one row of results"))
    table = pd.DataFrame(good, columns=header, dtype=object)
    table["where"] = [f"line {n}" for n in lines]
    return table, problems


def _columns_problems(name: str, head: str, found: list[str], required: list[str], allowed: set[str],
                      expected: str, hint: str = "") -> list[Problem]:
    """Missing columns, one problem each, and every extra column in one problem that names them all
    (an unnamed column, such as a pandas index, shows as ''); ``head`` locates the header
    (``line 1``, or '' for Parquet)."""
    problems = [Problem(name, head, c, "missing", expected) for c in required if c not in found]
    extra = [c for c in found if c not in allowed]
    if extra:
        listed = ", ".join(shown(c) + (" (unnamed)" if not c.strip() else "") for c in extra)
        problems.append(Problem(name, head, "", f"{len(extra)} extra column(s): {listed}", expected + hint))
    return problems


def _read_tdmpc2(name: str, data: bytes) -> tuple[pd.DataFrame | None, list[Problem], dict[str, str]]:
    table, problems = _csv_table(name, data)
    expected = "the columns step, reward, seed (DMC) or step, success, seed"
    if table is None:
        return None, problems, {}
    header = [c for c in table.columns if c != "where"]
    scores = [c for c in header if c in ("reward", "success")]
    if len(scores) == 2:
        problems.append(Problem(name, "line 1", "reward, success", "both", expected))
    required = ["step", "seed"] + ([] if scores else ["reward or success"])
    problems += _columns_problems(name, "line 1", header, required, {"step", "seed", "reward", "success"},
                                  expected)
    if problems:
        return None, problems, {}
    score = scores[0]
    frame = pd.DataFrame({
        "file": name, "where": table["where"], "task": Path(name).stem, "seed": table["seed"],
        "step": table["step"], "value": table[score], "metric": score,
    })
    return frame, problems, {"task": "(file name)", "seed": "seed", "step": "step", "value": score,
                             "metric": score}


# ----------------------------------------------------------------------------------------------
# long: CSV or Parquet


def _read_long(name: str, file: Path, data: bytes,
               options: ReadOptions) -> tuple[pd.DataFrame | None, list[Problem], dict[str, str]]:
    """A long CSV or Parquet file. Extra columns and an unchosen metric are problems, but the rows
    are still read so that every other problem is found too; missing columns stop the file."""
    names = options.columns
    head = "line 1"
    if data.startswith(PARQUET_MAGIC):
        table, problems = _parquet_table(name, file)
        head = ""
    elif file.suffix.lower() in (".parquet", ".pq"):
        return None, [Problem(name, "", "", "no Parquet magic bytes", "a Parquet file")], {}
    else:
        table, problems = _csv_table(name, data)
    if table is None:
        return None, problems, {}
    header = [c for c in table.columns if c != "where"]
    problems += [Problem(name, head, c, "no such column to ignore", "--ignore-column names of the file's "
                         f"columns ({', '.join(map(shown, header))})")
                 for c in options.ignore_columns if c not in header]
    header = [c for c in header if c not in options.ignore_columns]
    metric_column = names.metric or "metric"
    has_metric = metric_column in header
    required = [names.task, names.seed, names.step, names.value] + ([names.metric] if names.metric else [])
    expected = "the columns " + ", ".join(required) + ("" if names.metric else " and optionally metric")
    column_problems = _columns_problems(name, head, header, required, set(required) | {metric_column}, expected,
                                        "; leave columns out with --ignore-column NAME (repeatable)")
    problems += column_problems
    if any(p.value == "missing" for p in column_problems):
        return None, problems, {}
    table, metric_problems = _select_metric(name, head, table, metric_column if has_metric else None,
                                            options.metric)
    problems += metric_problems
    if table is None:
        return None, problems, {}
    frame = pd.DataFrame({
        "file": name, "where": table["where"], "task": table[names.task].astype(str),
        "seed": table[names.seed], "step": table[names.step], "value": table[names.value],
        "metric": table[metric_column] if has_metric else None,
    })
    frame["seed"] = frame["seed"].map(lambda s: "" if pd.isna(s) else str(s))
    shown_names = {"task": names.task, "seed": names.seed, "step": names.step, "value": names.value,
                   "metric": metric_column}
    return frame.reset_index(drop=True), problems, shown_names


def _parquet_table(name: str, file: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    with duckdb.connect() as con:
        try:
            table = con.execute("SELECT * FROM read_parquet(?)", [str(file)]).df()
        except duckdb.Error as exc:
            return None, [Problem(name, "", "", shown(str(exc).splitlines()[0]), "a readable Parquet file")]
    if table.empty:
        return None, [Problem(name, "", "", "no rows", "at least one row of results")]
    table["where"] = [f"row {i + 1}" for i in range(len(table))]
    return table, []


def _select_metric(name: str, head: str, table: pd.DataFrame, column: str | None,
                   wanted: str | None) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Keep the rows of one metric: the one asked for, or the only one in the file.

    Under ``auto`` (and when the file holds several metrics and none was chosen, which is a
    problem) every row is kept: validation then takes each task's catalog metric.
    """
    if column is None:
        if wanted is not None:
            return table, [Problem(name, head, "metric", "no metric column",
                                   "a metric column when --metric is given")]
        return table, []
    metrics = sorted(table[column].astype(str).unique())
    if wanted == "auto":
        return table, []
    if wanted is None:
        if len(metrics) > 1:
            return table, [Problem(name, "", column, f"several metrics ({', '.join(metrics)})",
                                   "one metric; choose it with --metric NAME, or --metric auto to take each "
                                   "task's catalog metric (return or success)")]
        return table, []
    if wanted not in metrics:
        return None, [Problem(name, "", column, f"no row with metric {shown(wanted)}",
                              f"one of the file's metrics: {', '.join(metrics)}, or auto")]
    return table[table[column].astype(str) == wanted], []


# ----------------------------------------------------------------------------------------------
# bro: .npy arrays (evaluations, seeds)


def _read_bro(name: str, data: bytes,
              grid: StepGrid) -> tuple[pd.DataFrame | None, list[Problem], dict[str, str]]:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        return None, [Problem(name, "", "", shown(str(exc)), "a NumPy .npy array")], {}
    if not isinstance(array, np.ndarray):
        return None, [Problem(name, "", "", "an .npz archive", "a NumPy .npy array")], {}
    if array.ndim != 2 or array.size == 0:
        return None, [Problem(name, "", "", f"an array of shape {array.shape}",
                              "a non-empty 2-D array (evaluations, seeds)")], {}
    if array.dtype.kind not in "iuf":
        return None, [Problem(name, "", "", f"an array of dtype {array.dtype}", "a numeric array")], {}
    seeds = array.shape[1]  # array: (evaluations, seeds)
    row, col = np.divmod(np.arange(array.size), seeds)  # (evaluations * seeds,) each, in ravel() order
    frame = pd.DataFrame({
        "file": name,
        "where": [f"evaluation {r}, seed column {c}" for r, c in zip(row, col, strict=True)],
        "task": Path(name).stem,
        "seed": col.astype(str),
        "step": grid.start + row * grid.every,
        "value": array.ravel().astype(np.float64),
        "metric": None,
    })
    names = {"task": "(file name)", "seed": "(array column)", "step": "(step grid)", "value": "value"}
    return frame, [], names
