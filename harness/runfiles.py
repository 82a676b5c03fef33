"""The files of a run folder (``results/runs/<run_id>/``), read and written with the standard
library alone: the workers that write them load neither DuckDB nor pandas.

- ``run.json``          the run's record (status, error, provenance), rewritten atomically;
- ``curves.jsonl``      its curve points ``{"metric", "step", "value"}``, one per line, appended
                        (with ``"psi"``, the evaluation ψ it was scored with, unless ``nominal``);
- ``superseded.jsonl``  the keys a resume cut from ``curves.jsonl``, until the store drops them too
                        (:func:`harness.store.ingest_run_dirs`).

A line without its newline was cut short by a killed writer: readers leave it out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.errors import StorageError
from harness.textfile import short_repr

SHARD_CURVES = "curves.jsonl"
SHARD_RUN = "run.json"
SHARD_SUPERSEDED = "superseded.jsonl"

NOMINAL_PSI = "nominal"
"""The ψ of every curve point scored with the task's own reward (:mod:`harness.conditioning`)."""

Point = tuple[str, int, float, str]
"""A curve point: metric, step, value, ψ."""


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


def read_run(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's run record (None if not written yet)."""
    run_file = run_dir / SHARD_RUN
    return read_record(run_file) if run_file.exists() else None


def point_rows(run_dir: Path, start: int = 0) -> tuple[list[Point], int]:
    """The points of a run's curve shard from byte ``start`` on, and the byte offset after the last
    of them. StorageError names the file and line of a line that is not a curve point."""
    path = run_dir / SHARD_CURVES
    data = b""
    if path.exists():
        with path.open("rb") as f:
            f.seek(start)
            data = complete_lines(f.read())
    rows = []
    for index, line in enumerate(data.splitlines()):
        try:
            point = json.loads(line)
            psi = str(point.get("psi", NOMINAL_PSI))
            rows.append((str(point["metric"]), int(point["step"]), float(point["value"]), psi))
        except (ValueError, TypeError, KeyError):
            with path.open("rb") as f:
                number = f.read(start).count(b"\n") + index + 1
            raise StorageError(
                f"{path} line {number}: not a curve point {short_repr(line.decode(errors='replace'))}; expected "
                '{"metric": ..., "step": ..., "value": ...}. Delete that line, or move the folder '
                f"{run_dir} aside to train the run again, and run the same command again") from None
    return rows, start + len(data)


def record_superseded(run_dir: Path, kept: int) -> None:
    """Before a run's curve shard is cut back to ``kept`` bytes (a job resuming from its checkpoint),
    append the keys of the points it loses to ``superseded.jsonl``, so that the next ingest removes
    them from the store. Nothing is recorded when nothing is cut."""
    cut, _ = point_rows(run_dir, kept)
    if not cut:
        return
    path = run_dir / SHARD_SUPERSEDED
    path.touch()
    with path.open("r+b") as f:
        f.truncate(len(complete_lines(f.read())))  # a record cut short by a kill is dropped
        f.seek(0, os.SEEK_END)
        keys = [[metric, step] + ([psi] if psi != NOMINAL_PSI else []) for metric, step, _, psi in cut]
        f.write((json.dumps({"kept": kept, "cut": keys}) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())


def read_superseded(run_dir: Path) -> tuple[list[int], list[tuple[str, int, str]], int]:
    """The superseded records of a run folder: each cut's kept length, the cut keys (metric, step, ψ)
    and the bytes read (a key ``[metric, step]`` is nominal, ``[metric, step, psi]`` another ψ's)."""
    path = run_dir / SHARD_SUPERSEDED
    data = complete_lines(path.read_bytes()) if path.exists() else b""
    records = [json.loads(line) for line in data.splitlines()]
    keys = [(str(key[0]), int(key[1]), str(key[2]) if len(key) > 2 else NOMINAL_PSI)
            for r in records for key in r["cut"]]
    return [int(r["kept"]) for r in records], keys, len(data)


def complete_lines(data: bytes) -> bytes:
    """``data`` up to and with its last newline."""
    return data[: data.rfind(b"\n") + 1]
