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
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd

from harness.catalog import Metric
from harness.submit.validate import Problem, shown

Format = Literal["long", "tdmpc2", "bro", "brc", "dreamerv3", "humanoidbench", "fasttd3"]
FORMATS: tuple[Format, ...] = ("long", "tdmpc2", "bro", "brc", "dreamerv3", "humanoidbench", "fasttd3")
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


BRC_GRID = StepGrid(50_000, 50_000)
"""BRC's evaluation grid: its ``train.py`` (naumix/BiggerRegularizedCategorical, commit eec512f)
defaults to ``eval_interval=50000`` and evaluates when the step count (per task, also in
multi-task runs) is a multiple of it, so evaluation ``i`` is at step 50,000 * (i + 1): 20
evaluations = its default ``max_steps`` of 1M (DMC, MetaWorld), 40 = 2M (HumanoidBench h1), 80 = 4M
(h1hand)."""
BRC_VARIANTS: dict[str, Literal["single", "multitask"]] = {"BRC_multitask": "multitask", "BRC_singletask": "single"}
"""BRC's ``results/<benchmark>/<folder>`` names and the run variant each holds."""


@dataclass(frozen=True)
class FormatInfo:
    """What ``harness submit --list-formats`` says of a format."""

    reads: str
    """The files it reads and their layout."""
    example: str
    """A command line that submits such files."""


FORMAT_INFO: dict[Format, FormatInfo] = {
    "long": FormatInfo(
        "one CSV or Parquet file, one row per point: task, seed, step, value and optionally metric "
        "(--column, --ignore-column, --metric NAME|auto, --metric-map)",
        "harness submit my-agent.csv --format long --agent my-agent --meta paper=https://arxiv.org/abs/..."),
    "tdmpc2": FormatInfo(
        "TD-MPC2's results/<method> folder: one CSV per task (step,reward,seed or step,success,seed)",
        "harness submit tdmpc2/results/tdmpc2 --format tdmpc2 --agent tdmpc2-paper --skip-unknown-tasks"),
    "bro": FormatInfo(
        "BRO's trainingdata/<variant> folder: one .npy per task, shape (evaluations, seeds); give the grid",
        "harness submit trainingdata/BRO --format bro --agent bro-paper --step-start 25000 --step-every 25000"),
    "brc": FormatInfo(
        "BRC's results/<benchmark>/BRC_multitask or BRC_singletask folder: one .npy per task, shape "
        "(seeds, evaluations); grid 50,000 * (i + 1) from BRC's train.py defaults; the folder name sets "
        "the variant (multitask or single)",
        "harness submit results/dmc/BRC_multitask --format brc --agent brc-paper"),
    "dreamerv3": FormatInfo(
        "DreamerV3-style score files (scores/*.json.gz or .json): a list of records with task, method, "
        "seed, xs (steps), ys (scores); seed counts and grids may differ; --method picks one method",
        "harness submit scores/dmc_proprio-dreamerv3.json.gz --format dreamerv3 --agent dreamerv3-paper "
        "--method dreamerv3 --skip-unknown-tasks"),
    "humanoidbench": FormatInfo(
        "HumanoidBench's published JSON {task: {method: {\"seed_N\": {million_steps, return}}}}; --method picks "
        "one method, --robot names the robot of task keys without one (default h1hand)",
        "harness submit hand_ablation.json --format humanoidbench --method \"Blocked DreamerV3\" "
        "--agent dreamerv3-blocked"),
    "fasttd3": FormatInfo(
        "FastTD3's JSON {task: {env_step, return}} with one return list per seed (a file of means and "
        "min/max only is rejected, task by task, for that reason)",
        "harness submit humanoidbench_result.json --format fasttd3 --agent fasttd3-paper"),
}


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
    """``bro`` (required there) and ``brc`` (default :data:`BRC_GRID`): the step grid of the arrays."""
    method: str | None = None
    """``dreamerv3`` and ``humanoidbench``: the method of the file to read (needed when it holds several)."""
    robot: str = "h1hand"
    """``humanoidbench`` only: the robot of task names that do not name one (``push`` -> ``h1hand-push``)."""


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
    suffix = {"long": None, "tdmpc2": (".csv",), "bro": (".npy",), "brc": (".npy",),
              "dreamerv3": (".json.gz", ".json"), "humanoidbench": (".json",), "fasttd3": (".json",)}[options.format]
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
        elif options.format == "humanoidbench":
            frame, found, columns[name] = _read_humanoidbench(name, data, options)
        elif options.format == "fasttd3":
            frame, found, columns[name] = _read_fasttd3(name, data)
        elif options.format == "bro":
            assert options.grid is not None, "the bro format needs a step grid"
            frame, found, columns[name] = _read_bro(name, data, options.grid)
        elif options.format == "brc" and Path(name).name == BRC_AGGREGATE:
            continue  # BRC's summary over the folder's tasks, not a task
        elif options.format == "brc":
            frame, found, columns[name] = _read_brc(name, data, options.grid or BRC_GRID, brc_task_name(path))
        else:
            frame, found, columns[name] = _read_dreamerv3(name, data, options.method)
        problems.extend(found)
        if frame is not None:
            frames.append(frame)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(RAW_COLUMNS))
    return Loaded(frame, tuple(sorted(files, key=lambda f: f.name)), tuple(problems), columns)


def _entries(path: Path, ends: tuple[str, ...] | None) -> tuple[list[tuple[str, Path]], list[Problem]]:
    """The files to read: ``path`` itself, or the files directly inside the folder ``path``.

    ``ends`` are the name endings of the format's files; None means the format reads one file, not
    a folder. Hidden entries (``.name``) are ignored; links that lead out of the folder are reported
    and not followed.
    """
    if path.is_file():
        if ends is not None and not path.name.lower().endswith(ends):
            suffix = " or ".join(ends)
            return [], [Problem(path.name, "", "", f"a file without the {suffix} suffix",
                                f"a {suffix} file or a folder of them")]
        return [(path.name, path)], []
    if ends is None:
        return [], [Problem(path.name, "", "", "a folder", "one CSV or Parquet file")]
    suffix = " or ".join(ends)
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
        elif not entry.name.lower().endswith(ends):
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
    array, problems = _load_array(name, data, "(evaluations, seeds)")
    if array is None:
        return None, problems, {}
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


# ----------------------------------------------------------------------------------------------
# brc: .npy arrays (seeds, evaluations)


def brc_variant(path: Path) -> Literal["single", "multitask"] | None:
    """The run variant BRC's folder name gives (``multitask`` or ``single``), None for another folder."""
    for part in (path.resolve(), *path.resolve().parents):
        if part.name in BRC_VARIANTS:
            return BRC_VARIANTS[part.name]
    return None


BRC_AGGREGATE = "aggregate.npy"
"""A (seeds, evaluations, tasks) summary BRC keeps beside some folders' task files; not read."""

BRC_TASK_NAMES = {"shadowhand": "{}-rotate"}
"""BRC's ``results/<benchmark>`` folders whose file names are not task names: how a file name (BRC's
object name) becomes one. A bare object name can be another suite's task (``hammer``)."""


def brc_task_name(path: Path) -> str:
    """The task-name pattern of the files of BRC's results under ``path`` (``"{}"``: the file name)."""
    for part in (path.resolve(), *path.resolve().parents):
        if part.name in BRC_VARIANTS:
            return BRC_TASK_NAMES.get(part.parent.name, "{}")
    return "{}"


def _read_brc(name: str, data: bytes, grid: StepGrid,
              task_name: str) -> tuple[pd.DataFrame | None, list[Problem], dict[str, str]]:
    array, problems = _load_array(name, data, "(seeds, evaluations)")
    if array is None:
        return None, problems, {}
    evaluations = array.shape[1]  # array: (seeds, evaluations)
    seed, evaluation = np.divmod(np.arange(array.size), evaluations)  # (seeds * evaluations,) each
    frame = pd.DataFrame({
        "file": name,
        "where": [f"seed row {s}, evaluation {e}" for s, e in zip(seed, evaluation, strict=True)],
        "task": task_name.format(Path(name).stem),
        "seed": seed.astype(str),
        "step": grid.start + evaluation * grid.every,
        "value": array.ravel().astype(np.float64),
        "metric": None,
    })
    names = {"task": "(file name)", "seed": "(array row)", "step": "(step grid)", "value": "value"}
    return frame, [], names


def _load_array(name: str, data: bytes, layout: str) -> tuple[np.ndarray | None, list[Problem]]:
    """A non-empty numeric 2-D array from .npy bytes, or the problem with them."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        return None, [Problem(name, "", "", shown(str(exc)), "a NumPy .npy array")]
    if not isinstance(array, np.ndarray):
        return None, [Problem(name, "", "", "an .npz archive", "a NumPy .npy array")]
    if array.ndim != 2 or array.size == 0:
        return None, [Problem(name, "", "", f"an array of shape {array.shape}", f"a non-empty 2-D array {layout}")]
    if array.dtype.kind not in "iuf":
        return None, [Problem(name, "", "", f"an array of dtype {array.dtype}", "a numeric array")]
    return array, []


# ----------------------------------------------------------------------------------------------
# dreamerv3: score files, a JSON list of {task, method, seed, xs, ys} (gzip-compressed or not)

DREAMER_KEYS = ("task", "method", "seed", "xs", "ys")


def _read_dreamerv3(name: str, data: bytes,
                    method: str | None) -> tuple[pd.DataFrame | None, list[Problem], dict[str, str]]:
    expected = "a JSON list of records with task, method, seed, xs and ys (DreamerV3's scores/*.json.gz)"
    try:
        text = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        records = json.loads(text)
    except (OSError, EOFError, ValueError) as exc:
        return None, [Problem(name, "", "", shown(str(exc)), expected)], {}
    if not isinstance(records, list) or not records:
        return None, [Problem(name, "", "", f"a JSON {type(records).__name__}" if records else "an empty list",
                              expected)], {}
    problems: list[Problem] = []
    usable: list[tuple[int, dict[str, object]]] = []
    for i, record in enumerate(records):
        where = f"record {i}"
        if not isinstance(record, dict):
            problems.append(Problem(name, where, "", f"a JSON {type(record).__name__}", expected))
            continue
        missing = [k for k in DREAMER_KEYS if k not in record]
        if missing:
            problems.append(Problem(name, where, ", ".join(missing), "missing", expected))
            continue
        xs, ys = record["xs"], record["ys"]
        if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
            got = (f"xs of {len(xs)} and ys of {len(ys)} values" if isinstance(xs, list) and isinstance(ys, list)
                   else "xs or ys that is not a list")
            problems.append(Problem(name, where, "xs, ys", got, "lists of the same length"))
            continue
        usable.append((i, record))
    methods = sorted({str(r["method"]) for _, r in usable})
    if method is None and len(methods) > 1:
        problems.append(Problem(name, "", "method", f"several methods ({', '.join(methods)})",
                                "one method; choose it with --method NAME"))
        return None, problems, {}
    if method is not None:
        if method not in methods:
            problems.append(Problem(name, "", "method", f"no record of method {shown(method)}",
                                    f"one of the file's methods: {', '.join(methods)}"))
            return None, problems, {}
        usable = [(i, r) for i, r in usable if str(r["method"]) == method]
    parts = []
    for i, record in usable:
        xs = record["xs"]
        assert isinstance(xs, list)
        parts.append(pd.DataFrame({
            "file": name,
            "where": [f"record {i} ({record['task']}, seed {record['seed']}), point {j}" for j in range(len(xs))],
            "task": str(record["task"]), "seed": str(record["seed"]), "step": xs, "value": record["ys"],
            "metric": None,
        }))
    frame = pd.concat(parts, ignore_index=True) if parts else None
    names = {"task": "task", "seed": "seed", "step": "xs", "value": "ys"}
    return frame, problems, names

# humanoidbench and fasttd3: JSON files of HumanoidBench curves

HB_ROBOTS = ("h1", "h1hand", "h1strong", "h1simplehand", "h1touch", "g1")
_HB_SEED_PREFIX = "seed_"


def _json_object(name: str, data: bytes, expected: str) -> tuple[dict[str, object] | None, list[Problem]]:
    try:
        value = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [Problem(name, "", "", shown(str(exc)), f"a JSON file: {expected}")]
    if not isinstance(value, dict) or not value:
        return None, [Problem(name, "", "", f"a JSON {type(value).__name__}", expected)]
    return value, []


def _hb_task(task: str, robot: str) -> str:
    """HumanoidBench's task key with its robot: ``push`` -> ``h1hand-push``; names with a robot stay.

    The paper ran the high bar with the stronger hands: ``highbar_hard`` of h1hand is h1strong's."""
    if task.split("-", 1)[0] in HB_ROBOTS:
        return task
    if task == "highbar_hard" and robot == "h1hand":
        return "h1strong-highbar_hard"
    return f"{robot}-{task}"


def _numbers(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def _read_humanoidbench(name: str, data: bytes,
                        options: ReadOptions) -> tuple[pd.DataFrame | None, list[Problem], dict[str, str]]:
    """HumanoidBench's published curves: ``{task: {method: {"seed_N": {"million_steps": [...], "return": [...]}}}}``.

    One method is read (``--method``, or the only one); ``step = round(million_steps * 1e6)``.
    """
    expected = 'an object {task: {method: {"seed_N": {"million_steps": [...], "return": [...]}}}}'
    top, problems = _json_object(name, data, expected)
    if top is None:
        return None, problems, {}
    methods = sorted({m for runs in top.values() if isinstance(runs, dict) for m in runs})
    method = options.method
    if method is None and len(methods) != 1:
        return None, [Problem(name, "", "method", f"{len(methods)} methods ({', '.join(methods)})",
                              "one method; choose it with --method NAME")], {}
    method = method if method is not None else methods[0]
    rows: list[tuple[str, str, str, float, float]] = []
    for task, runs in top.items():
        if not isinstance(runs, dict) or method not in runs:
            has = ", ".join(sorted(runs)) if isinstance(runs, dict) else type(runs).__name__
            problems.append(Problem(name, task, "method", f"no {shown(method)} (has: {has})",
                                    f"results of {method} for every task (or --method NAME)"))
            continue
        seeds = runs[method]
        if not isinstance(seeds, dict) or not seeds:
            problems.append(Problem(name, f"{task} / {method}", "", shown(seeds), 'an object {"seed_N": {...}}'))
            continue
        for label, curve in seeds.items():
            where = f"{task} / {method} / {label}"
            steps = curve.get("million_steps") if isinstance(curve, dict) else None
            values = curve.get("return") if isinstance(curve, dict) else None
            if not (_numbers(steps) and _numbers(values)) or len(steps) != len(values):  # type: ignore[arg-type]
                problems.append(Problem(name, where, "million_steps, return", shown(curve),
                                        "two lists of numbers of the same length"))
                continue
            seed = label.removeprefix(_HB_SEED_PREFIX)
            rows += [(f"{where} / point {i + 1}", _hb_task(task, options.robot), seed, round(m * 1e6, 3), r)
                     for i, (m, r) in enumerate(zip(steps, values, strict=True))]  # type: ignore[arg-type]
    frame = pd.DataFrame(rows, columns=["where", "task", "seed", "step", "value"])
    frame.insert(0, "file", name)
    frame["metric"] = None
    return frame, problems, {"task": "(task key)", "seed": "(seed key)", "step": "million_steps",
                             "value": "return"}


def _read_fasttd3(name: str, data: bytes) -> tuple[pd.DataFrame | None, list[Problem], dict[str, str]]:
    """FastTD3's ``{task: {"env_step": [...], "return": [[seed 0 ...], [seed 1 ...]]}}``.

    FastTD3's published ``humanoidbench_result.json`` holds, per task, the mean ``return`` over
    seeds with ``return_min`` and ``return_max``: no per-seed curve, so no run can be stored from
    it without inventing seeds; such a file is rejected, task by task, with that reason. A file in
    the same shape whose ``return`` holds one list per seed is read, seed labels 0, 1, ...
    """
    expected = 'an object {task: {"env_step": [...], "return": [[...], ...]}}, one return list per seed'
    top, problems = _json_object(name, data, expected)
    if top is None:
        return None, problems, {}
    rows: list[tuple[str, str, str, float, float]] = []
    for task, curve in top.items():
        steps = curve.get("env_step") if isinstance(curve, dict) else None
        values = curve.get("return") if isinstance(curve, dict) else None
        if not _numbers(steps):
            problems.append(Problem(name, task, "env_step", shown(steps), "a list of environment steps"))
            continue
        if _numbers(values):
            ranges = [k for k in ("return_min", "return_max") if isinstance(curve, dict) and k in curve]
            problems.append(Problem(
                name, task, "return", "one curve: the mean over seeds" + (f" (with {', '.join(ranges)})"
                                                                          if ranges else ""),
                "one return curve per seed; a mean and its range cannot be stored as runs without inventing seeds"))
            continue
        if not (isinstance(values, list) and values and all(_numbers(v) and len(v) == len(steps)  # type: ignore[arg-type]
                                                            for v in values)):
            problems.append(Problem(name, task, "return", shown(values),
                                    f"a list of per-seed lists of {len(steps)} numbers (one per env_step)"))  # type: ignore[arg-type]
            continue
        for seed, seed_values in enumerate(values):
            rows += [(f"{task} / seed {seed} / point {i + 1}", task, str(seed), s, v)
                     for i, (s, v) in enumerate(zip(steps, seed_values, strict=True))]  # type: ignore[arg-type]
    frame = pd.DataFrame(rows, columns=["where", "task", "seed", "step", "value"])
    frame.insert(0, "file", name)
    frame["metric"] = None
    return frame, problems, {"task": "(task key)", "seed": "(position in return)", "step": "env_step",
                             "value": "return"}
