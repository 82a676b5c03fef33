"""The results folder's layout, shared by the coordinator and the workers.

```
results/
  harness.duckdb                  the store (the coordinator alone writes it)
  runs/<run_id>/run.json          a run's record (status, error, provenance), rewritten atomically
  runs/<run_id>/curves.jsonl      its curve points, appended as they are measured
  runs/<run_id>/superseded.jsonl  keys a resume cut from curves.jsonl, until the store drops them too
  groups/<job_id>/checkpoint.pkl  the latest checkpoint of a job (the runs trained together)
```
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.jobs import RunSpec
from harness.runfiles import SHARD_RUN, read_record


def run_dir(results: Path, run_id: str) -> Path:
    return results / "runs" / run_id


def group_dir(results: Path, job_id: str) -> Path:
    return results / "groups" / job_id


def now() -> str:
    """The current UTC time as DuckDB reads a TIMESTAMP."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def write_run_record(results: Path, spec: RunSpec, **fields: Any) -> None:
    """Write (atomically) the run's ``run.json``; ``fields`` override the defaults."""
    record: dict[str, Any] = {
        "run_id": spec.run_id, "source": "harness", "submission_id": None, "label": spec.label,
        "agent": spec.agent.algo, "tag": spec.tag, "config_hash": spec.agent.config_hash,
        "config": spec.agent.config_dict, "suite": spec.suite, "task": spec.task, "seed": spec.seed,
        "budget": spec.budget, "status": "pending", "error": None, "host": socket.gethostname(),
        "device": None, "packages": None, "git_commit": None, "started_at": None,
        "finished_at": None, "wall_seconds": None, "variant": spec.variant, "job_id": None,
    }
    path = run_dir(results, spec.run_id) / SHARD_RUN
    if path.exists():
        record.update(read_record(path))
    record.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, sort_keys=True, indent=1))
    tmp.replace(path)


def read_status(results: Path, run_id: str) -> str | None:
    path = run_dir(results, run_id) / SHARD_RUN
    return read_record(path).get("status") if path.exists() else None
