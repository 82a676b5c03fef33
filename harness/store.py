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
- ``curves``      ``(run_id, metric, step, psi) -> value``: evaluation returns, training returns,
                  the agent's losses, system throughput, all under their own metric names.
                  ``psi`` names the reward parameterisation an evaluation was scored with:
                  ``nominal`` (the task's own reward) for every point but the named evaluation ψ
                  of a reward-conditioned manifest (:mod:`harness.conditioning`).
- ``shards``      ``run_id -> ingested_bytes``: how much of each of our runs' curve shards the
                  store holds (see :func:`ingest_run_dirs`).
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
from harness.errors import InputError, StorageError, StoreBusy
from harness.runfiles import NOMINAL_PSI, SHARD_CURVES, SHARD_SUPERSEDED, point_rows, read_run, read_superseded

SCHEMA_VERSION = "3"
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
    psi VARCHAR NOT NULL DEFAULT 'nominal',
    PRIMARY KEY (run_id, metric, step, psi)
);
CREATE TABLE IF NOT EXISTS shards (
    run_id VARCHAR PRIMARY KEY,
    ingested_bytes BIGINT NOT NULL
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
    "2": [  # 3: curve points record the reward parameterisation ψ they were scored with (a key column)
        "CREATE TABLE curves_v3 (run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, step BIGINT NOT NULL, "
        "value DOUBLE NOT NULL, psi VARCHAR NOT NULL DEFAULT 'nominal', PRIMARY KEY (run_id, metric, step, psi))",
        "INSERT INTO curves_v3 SELECT run_id, metric, step, value, 'nominal' FROM curves",
        "DROP TABLE curves",
        "ALTER TABLE curves_v3 RENAME TO curves",
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
                if "lock" not in str(exc).lower():
                    raise storage_error(self.path, exc) or exc from None
                if time.monotonic() > deadline:
                    raise StoreBusy(f"the store {self.path} is held by another process (waited "
                                    f"{self.busy_timeout_s:g} s): {exc}") from None
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
    """Make the ``tasks`` table the catalog's (rewritten only when they differ: most writes are ingests)."""
    rows = [
        (t.name, t.suite, t.metric, t.episode_length, t.action_repeat, t.norm_low, t.norm_high)
        for t in catalog.all_tasks()
    ]
    if sorted(rows) == con.execute("SELECT * FROM tasks ORDER BY ALL").fetchall():
        return
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
    """Insert curve points ``(run_id, metric, step, value)`` (ψ nominal); existing keys are left as they are.

    Returns the number of new points. Ingesting the same points twice changes nothing.
    """
    if points.empty:
        return 0
    frame = points[["run_id", "metric", "step", "value"]]
    before = scalar(con, "SELECT count(*) FROM curves")
    con.register("_new_points", frame)
    try:
        con.execute(
            "INSERT INTO curves (run_id, metric, step, value) SELECT run_id, metric, CAST(step AS BIGINT), "
            "CAST(value AS DOUBLE) FROM _new_points ON CONFLICT DO NOTHING"
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


def read_points(run_dir: Path, start: int = 0) -> tuple[pd.DataFrame, int]:
    """The points ``metric, step, value, psi`` of a run's curve shard from byte ``start`` on (a frame
    of :func:`harness.runfiles.point_rows`), and the byte offset after the last of them."""
    rows, end = point_rows(run_dir, start)
    frame = pd.DataFrame(rows, columns=["metric", "step", "value", "psi"]).astype({"step": "int64", "value": "float64"})
    return frame, end


def ingest_run_dirs(store: Store, run_dirs: Sequence[Path]) -> int:
    """Make the store hold exactly what these run folders hold, in one transaction; returns the
    number of curve points written (new or replacing a value).

    The shards are the truth. A run's curve shard only grows, except when its job resumes from a
    checkpoint: the lifecycle then cuts the shard back to the length the checkpoint recorded (the
    killed attempt's points after it are superseded), and first appends the keys it cuts to the
    run's ``superseded.jsonl`` (:func:`harness.runfiles.record_superseded`). The ``shards`` table records how many
    bytes of each shard the store holds, so an ingest reads and writes only what changed:

    - the points from ``min(ingested bytes, every recorded cut's kept length)`` to the shard's last
      complete line replace the store's points of the same keys;
    - the recorded cut keys are deleted (those the resumed attempt wrote again are among the points
      above, with their new values);
    - a run without a ``shards`` row (a store rebuilt from the shards, or written before the table
      existed), or whose shard is shorter than that start, is replaced whole from its shard.

    The run records are upserted. Everything lands in one transaction, after which the applied
    superseded records are removed: an ingest killed in between applies them again next time, which
    gives the same store. An ingest every few seconds during training thus costs what was written
    since the last one, however long the run; only a rebuilt store reads whole shards.
    """
    loaded = [(d, run) for d in run_dirs if (run := read_run(d)) is not None]
    written = 0
    applied: list[tuple[Path, int]] = []  # superseded files and the bytes of them applied
    with store.transaction() as con:
        ingested = dict(con.execute("SELECT run_id, ingested_bytes FROM shards WHERE run_id IN (SELECT unnest(?))",
                                    [[run["run_id"] for _, run in loaded]]).fetchall())
        for d, run in loaded:
            run_id = run["run_id"]
            upsert_run(con, run)
            kept, cut_keys, marker_bytes = read_superseded(d)
            cut = pd.DataFrame(cut_keys, columns=["metric", "step", "psi"])
            start = min([ingested.get(run_id, 0), *kept])
            size = (d / SHARD_CURVES).stat().st_size if (d / SHARD_CURVES).exists() else 0
            whole = run_id not in ingested or size < start
            points, end = read_points(d, 0 if whole else start)
            points = points.drop_duplicates(["metric", "step", "psi"], keep="last").assign(run_id=run_id)
            if whole:
                con.execute("DELETE FROM curves WHERE run_id = ?", [run_id])
            else:
                _delete_keys(con, pd.concat([cut.assign(run_id=run_id), points[["run_id", "metric", "step", "psi"]]]))
            if not points.empty:  # their keys are free now
                con.register("_points", points[["run_id", "metric", "step", "value", "psi"]])
                con.execute("INSERT INTO curves (run_id, metric, step, value, psi) SELECT * FROM _points")
                con.unregister("_points")
            written += len(points)
            con.execute("INSERT INTO shards VALUES (?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                        "ingested_bytes = excluded.ingested_bytes", [run_id, end])
            if marker_bytes:
                applied.append((d / SHARD_SUPERSEDED, marker_bytes))
    for path, applied_bytes in applied:
        if path.stat().st_size == applied_bytes:  # else a cut was recorded since: applied next time
            path.unlink()
    return written


def _delete_keys(con: duckdb.DuckDBPyConnection, keys: pd.DataFrame) -> None:
    """Delete the curve points of ``keys`` (``run_id, metric, step, psi``)."""
    if keys.empty:
        return
    con.register("_keys", keys[["run_id", "metric", "step", "psi"]])
    try:
        con.execute("DELETE FROM curves USING _keys k WHERE curves.run_id = k.run_id AND curves.metric = k.metric "
                    "AND curves.step = k.step AND curves.psi = k.psi")
    finally:
        con.unregister("_keys")


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
    psi: Sequence[str] | None = (NOMINAL_PSI,),
) -> pd.DataFrame:
    """Evaluation scores of the selected runs, normalised with the task catalog.

    Returns a long frame with one row per evaluation point and the columns
    ``run_id, label, source, submission_id, variant, task, seed, step, raw, score, psi`` where ``raw`` is
    the task's metric as recorded (return or success rate) and ``score`` its normalised value
    (see :meth:`harness.catalog.Task.normalise`), under the reward parameterisations ``psi`` (the
    task's own, ``nominal``, unless asked; None: every one). Failed runs are left out unless asked for.
    """
    where = ["r.status IN (SELECT unnest(?))", "c.metric = 'eval/' || t.metric"]
    params: list[Any] = [list(statuses)]
    if psi is not None:
        where.append("c.psi IN (SELECT unnest(?))")
        params.append(list(psi))
    if labels is not None:
        where.append("r.label IN (SELECT unnest(?))")
        params.append(list(labels))
    if tasks is not None:
        where.append("r.task IN (SELECT unnest(?))")
        params.append(list(tasks))
    # One ψ asked for (the usual nominal one): its name is set here, not read row by row (turning
    # millions of strings into Python objects takes about as long as the rest of the query).
    one = psi[0] if psi is not None and len(psi) == 1 else None
    frame = con.execute(
        "SELECT r.run_id, r.label, r.source, r.submission_id, r.variant, r.task, r.seed, c.step, c.value AS raw, "
        "(c.value - t.norm_low) / (t.norm_high - t.norm_low) AS score" + ("" if one else ", c.psi") + " "
        "FROM runs r JOIN curves c USING (run_id) JOIN tasks t ON t.task = r.task "
        f"WHERE {' AND '.join(where)} ORDER BY r.label, r.task, r.seed, " + ("" if one else "c.psi, ") + "c.step",
        params,
    ).df()
    if one is not None:
        frame["psi"] = one
    return frame


def load_curves(
    con: duckdb.DuckDBPyConnection,
    *,
    run_ids: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Raw curve points ``run_id, metric, step, value, psi`` (any metric), optionally filtered."""
    where = ["TRUE"]
    params: list[Any] = []
    if run_ids is not None:
        where.append("run_id IN (SELECT unnest(?))")
        params.append(list(run_ids))
    if metrics is not None:
        where.append("metric IN (SELECT unnest(?))")
        params.append(list(metrics))
    return con.execute(
        f"SELECT * FROM curves WHERE {' AND '.join(where)} ORDER BY run_id, metric, psi, step", params
    ).df()
