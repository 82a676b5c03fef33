"""The DuckDB store: schema, short-lived connections, idempotent ingestion and queries.

One process writes (the coordinator); workers never open the file, they write shards under
``results/runs/<run_id>/`` that :func:`ingest_run_dir` folds in. DuckDB lets one process hold a
database file for writing and, while it does, no other process can open it at all, so every
connection here is opened for one short unit of work and closed again; a connection that finds
the file busy waits and retries instead of failing.

Tables (keys make duplicates impossible):

- ``tasks``       the catalog and its normalisation, refreshed on every write.
- ``submissions`` one row per submitted result set, with provenance.
- ``runs``        one row per (agent label, task, seed) run, ours or submitted.
- ``curves``      ``(run_id, metric, step) -> value``: evaluation returns, training returns,
                  the agent's losses, system throughput, all under their own metric names.
"""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from harness import catalog
from harness.errors import InputError, StorageError
from harness.textfile import short_repr

SCHEMA_VERSION = "2"
RUN_STATUSES = ("pending", "running", "finished", "failed")
RUN_VARIANTS = ("single", "multitask", "reward_conditioned")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    task VARCHAR PRIMARY KEY,
    suite VARCHAR NOT NULL,
    metric VARCHAR NOT NULL CHECK (metric IN ('return', 'success')),
    episode_length INTEGER NOT NULL,
    action_repeat INTEGER NOT NULL,
    norm_low DOUBLE NOT NULL,
    norm_high DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id VARCHAR PRIMARY KEY,
    agent VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    suite VARCHAR,
    files JSON NOT NULL,
    content_sha256 VARCHAR NOT NULL UNIQUE,
    meta JSON NOT NULL,
    submitted_at TIMESTAMP NOT NULL,
    harness_version VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL CHECK (source IN ('harness', 'submission')),
    submission_id VARCHAR,
    label VARCHAR NOT NULL,
    agent VARCHAR NOT NULL,
    tag VARCHAR,
    config_hash VARCHAR,
    config JSON,
    suite VARCHAR,
    task VARCHAR NOT NULL,
    seed INTEGER NOT NULL,
    budget BIGINT,
    status VARCHAR NOT NULL CHECK (status IN ({", ".join(repr(s) for s in RUN_STATUSES)})),
    error VARCHAR,
    host VARCHAR,
    device VARCHAR,
    packages JSON,
    git_commit VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    wall_seconds DOUBLE,
    variant VARCHAR NOT NULL DEFAULT 'single' CHECK (variant IN ({", ".join(repr(v) for v in RUN_VARIANTS)})),
    job_id VARCHAR,
    UNIQUE (source, label, task, seed, submission_id)
);
CREATE TABLE IF NOT EXISTS curves (
    run_id VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    step BIGINT NOT NULL,
    value DOUBLE NOT NULL,
    PRIMARY KEY (run_id, metric, step)
);
"""

#: Columns of the ``runs`` table, in order.
RUN_COLUMNS = (
    "run_id", "source", "submission_id", "label", "agent", "tag", "config_hash", "config", "suite",
    "task", "seed", "budget", "status", "error", "host", "device", "packages", "git_commit",
    "started_at", "finished_at", "wall_seconds", "variant", "job_id",
)

#: Schema changes since version 1, applied in order to an older store when a write opens it.
_MIGRATIONS = {
    "1": [  # 2: multi-task runs record their variant and the job they were trained in
        "ALTER TABLE runs ADD COLUMN variant VARCHAR DEFAULT 'single'",
        "ALTER TABLE runs ADD COLUMN job_id VARCHAR",
    ],
}


def score_metric(task: catalog.Task) -> str:
    """The curve metric that holds a task's evaluation score: ``eval/return`` or ``eval/success``."""
    return f"eval/{task.metric}"


@dataclass(frozen=True)
class Store:
    """A DuckDB file opened only for the moment of each unit of work.

    ``busy_timeout_s`` is how long a connection waits for another process to release the file.
    """

    path: Path
    busy_timeout_s: float = 120.0

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (waiting while another process holds it), yield, and close it. A store of an
        older schema version is migrated first, also when it is opened for reading."""
        if read_only and not self.path.exists():
            raise InputError(f"no store at {self.path}: run `harness run` or `harness submit` first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with self._open(read_only=True) as con:
                version = _schema_version(con)
            if version != SCHEMA_VERSION and (read_only or version is not None):
                self.ensure()
        with self._open(read_only) as con:
            yield con

    @contextmanager
    def _open(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise storage_error(self.path, exc) or exc from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except duckdb.Error as exc:
                raise storage_error(self.path, exc) or exc from None
        try:
            yield con
        except (duckdb.Error, OSError) as exc:
            raise storage_error(self.path, exc) or exc from None
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection inside one transaction: all of it lands, or none of it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._open(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")  # the schema (and a migration) lands on its own
            try:
                _ensure_schema(con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def ensure(self) -> None:
        """Create the file and its schema if they do not exist yet."""
        with self.transaction():
            pass


def storage_error(path: Path, exc: BaseException) -> StorageError | None:
    """What to tell the user when the store at ``path`` is broken, on a full disk or not writable
    (None for any other error)."""
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    shards = path.parent / "runs"
    if "No space left" in text or getattr(exc, "errno", None) == errno.ENOSPC:
        return StorageError(f"the store {path}: no space left on its disk ({first}); free some space and run the "
                            f"same command again: what was trained is kept in {shards}/")
    if any(word in text for word in ("Permission denied", "Read-only file system", "read-only file system")):
        return StorageError(f"the store {path} cannot be written ({first}); make {path.parent} writable and run "
                            "the same command again")
    broken = ("not a valid DuckDB database file", "Corrupt", "checksum", "Could not read enough bytes")
    if any(word in text for word in broken) or isinstance(exc, duckdb.SerializationException):
        return StorageError(f"the store {path} is not a readable DuckDB file ({first}): move it aside (mv {path} "
                            f"{path}.broken) and run `harness run` again; it rebuilds the store from {shards}/ "
                            "(submissions must be submitted again)")
    return None


def _schema_version(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    except duckdb.CatalogException:  # an empty file
        return None
    return rows[0][0] if rows else None


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_SCHEMA)
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    if not rows:
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
    elif rows[0][0] != SCHEMA_VERSION:
        version = rows[0][0]
        if version not in _MIGRATIONS:
            raise InputError(f"store schema version {version} is not the supported {SCHEMA_VERSION}")
        while version in _MIGRATIONS:
            for sql in _MIGRATIONS[version]:
                con.execute(sql)
            version = str(int(version) + 1)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [SCHEMA_VERSION])
    _sync_tasks(con)


def _sync_tasks(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        (t.name, t.suite, t.metric, t.episode_length, t.action_repeat, t.norm_low, t.norm_high)
        for t in catalog.all_tasks()
    ]
    con.execute("DELETE FROM tasks")
    con.executemany("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


# ----------------------------------------------------------------------------------------------
# Writing runs and curves


def upsert_run(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> None:
    """Insert a run row or update every column of an existing one (the run id is the key)."""
    unknown = set(run) - set(RUN_COLUMNS)
    if unknown:
        raise ValueError(f"unknown run columns {sorted(unknown)}")
    run = {"variant": "single", **{k: v for k, v in run.items() if v is not None or k != "variant"}}
    values = [_db_value(run.get(c)) for c in RUN_COLUMNS]
    placeholders = ", ".join("?" for _ in RUN_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS if c != "run_id")
    con.execute(
        f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders}) "
        f"ON CONFLICT (run_id) DO UPDATE SET {updates}",
        values,
    )


def insert_points(con: duckdb.DuckDBPyConnection, points: pd.DataFrame) -> int:
    """Insert curve points ``(run_id, metric, step, value)``; existing keys are left as they are.

    Returns the number of new points. Ingesting the same points twice changes nothing.
    """
    if points.empty:
        return 0
    frame = points[["run_id", "metric", "step", "value"]]
    before = scalar(con, "SELECT count(*) FROM curves")
    con.register("_new_points", frame)
    try:
        con.execute(
            "INSERT INTO curves SELECT run_id, metric, CAST(step AS BIGINT), CAST(value AS DOUBLE) "
            "FROM _new_points ON CONFLICT DO NOTHING"
        )
    finally:
        con.unregister("_new_points")
    return int(scalar(con, "SELECT count(*) FROM curves")) - int(before)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The single value a query returns (the result is fetched whole, as DuckDB 2 requires)."""
    return con.execute(sql, list(params)).fetchall()[0][0]


def _db_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


# ----------------------------------------------------------------------------------------------
# Shards written by workers

SHARD_CURVES = "curves.jsonl"
SHARD_RUN = "run.json"


def read_shard(run_dir: Path) -> tuple[dict[str, Any] | None, pd.DataFrame]:
    """Read one run folder: its run record (None if not written yet) and its complete curve lines.

    A line cut short by a killed writer (no trailing newline) is ignored; the worker rewrites it.
    """
    run_file = run_dir / SHARD_RUN
    run = read_record(run_file) if run_file.exists() else None
    rows: list[tuple[str, str, int, float]] = []
    curve_file = run_dir / SHARD_CURVES
    if curve_file.exists() and run is not None:
        text = curve_file.read_text(errors="replace")
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
        for number, line in enumerate(complete.splitlines(), 1):
            try:
                point = json.loads(line)
                rows.append((run["run_id"], point["metric"], int(point["step"]), float(point["value"])))
            except (ValueError, TypeError, KeyError):
                raise StorageError(
                    f"{curve_file} line {number}: not a curve point {short_repr(line)}; expected "
                    '{"metric": ..., "step": ..., "value": ...}. Delete that line, or move the folder '
                    f"{run_dir} aside to train the run again, and run the same command again") from None
    frame = pd.DataFrame(rows, columns=["run_id", "metric", "step", "value"])
    return run, frame


def read_record(run_file: Path) -> dict[str, Any]:
    """A run's ``run.json``; StorageError names the file when it is not a JSON record."""
    try:
        record = json.loads(run_file.read_text(errors="replace"))
    except ValueError as exc:
        record = exc
    if not isinstance(record, dict) or not isinstance(record.get("run_id"), str):
        raise StorageError(f"{run_file}: not a run record (a JSON object with run_id, status, ...); move the "
                           f"folder {run_file.parent} aside to train the run again, and run the same command again")
    return record


def ingest_run_dirs(store: Store, run_dirs: Sequence[Path]) -> int:
    """Fold the shards of these run folders into the store in one transaction; returns new points.

    Idempotent: run rows are upserted and curve points keyed by (run, metric, step).
    """
    loaded = [read_shard(d) for d in run_dirs]
    loaded = [(run, frame) for run, frame in loaded if run is not None]
    if not loaded:
        return 0
    added = 0
    with store.transaction() as con:
        for run, frame in loaded:
            assert run is not None
            upsert_run(con, run)
            added += insert_points(con, frame)
    return added


# ----------------------------------------------------------------------------------------------
# Queries


def runs_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every run row, newest first."""
    return con.execute("SELECT * FROM runs ORDER BY started_at DESC NULLS LAST, run_id").df()


def load_scores(
    con: duckdb.DuckDBPyConnection,
    *,
    labels: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    statuses: Sequence[str] = ("finished", "running"),
) -> pd.DataFrame:
    """Evaluation scores of the selected runs, normalised with the task catalog.

    Returns a long frame with one row per evaluation point and the columns
    ``run_id, label, source, submission_id, variant, task, seed, step, raw, score`` where ``raw`` is the
    task's metric as recorded (return or success rate) and ``score`` its normalised value
    (see :meth:`harness.catalog.Task.normalise`). Failed runs are left out unless asked for.
    """
    where = ["r.status IN (SELECT unnest(?))", "c.metric = 'eval/' || t.metric"]
    params: list[Any] = [list(statuses)]
    if labels is not None:
        where.append("r.label IN (SELECT unnest(?))")
        params.append(list(labels))
    if tasks is not None:
        where.append("r.task IN (SELECT unnest(?))")
        params.append(list(tasks))
    frame = con.execute(
        "SELECT r.run_id, r.label, r.source, r.submission_id, r.variant, r.task, r.seed, c.step, c.value AS raw, "
        "(c.value - t.norm_low) / (t.norm_high - t.norm_low) AS score "
        "FROM runs r JOIN curves c USING (run_id) JOIN tasks t ON t.task = r.task "
        f"WHERE {' AND '.join(where)} ORDER BY r.label, r.task, r.seed, c.step",
        params,
    ).df()
    return frame


def load_curves(
    con: duckdb.DuckDBPyConnection,
    *,
    run_ids: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Raw curve points ``run_id, metric, step, value`` (any metric), optionally filtered."""
    where = ["TRUE"]
    params: list[Any] = []
    if run_ids is not None:
        where.append("run_id IN (SELECT unnest(?))")
        params.append(list(run_ids))
    if metrics is not None:
        where.append("metric IN (SELECT unnest(?))")
        params.append(list(metrics))
    return con.execute(
        f"SELECT * FROM curves WHERE {' AND '.join(where)} ORDER BY run_id, metric, step", params
    ).df()
