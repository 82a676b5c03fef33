"""The local executor: run jobs in worker processes, the coordinator alone writes DuckDB.

Workers (spawned processes, one GPU each when there are GPUs) train jobs through
:func:`harness.backends.train` and write shards; the coordinator shows progress, ingests shards as
evaluations land and when jobs end, and records a failed job's runs as failed with its error while
the others go on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import shutil
import subprocess
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.managers import SyncManager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness import store as store_mod
from harness.layout import read_status, run_dir, write_run_record
from harness.manifest import Job, Plan
from harness.processes import die_with_parent


@dataclass(frozen=True)
class Outcome:
    """What a batch did: jobs finished now, skipped (already finished), and failed with errors."""

    finished: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]


def visible_gpus() -> list[str]:
    """GPU ids from CUDA_VISIBLE_DEVICES, else from ``nvidia-smi -L``; empty on a CPU machine."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


def default_workers() -> int:
    return max(1, len(visible_gpus()))


def job_state(results: Path, job: Job) -> str:
    """'finished', 'resumable' (a checkpoint or partial shards exist) or 'new'."""
    statuses = {read_status(results, r.run_id) for r in job.runs}
    if statuses == {"finished"}:
        return "finished"
    return "new" if statuses == {None} else "resumable"


# ----------------------------------------------------------------------------------------------
# Worker side


#: XLA:CPU with one intra-op thread: multi-threaded Eigen contractions may sum in a different order
#: from run to run, and a 1e-7 difference grows into a different curve. Costs about 30% of update
#: speed on two cores (the other core steps the simulators meanwhile). A user's XLA_FLAGS win.
CPU_DETERMINISTIC_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _init_worker(gpu_queue: Any) -> None:
    die_with_parent()
    try:
        gpu = gpu_queue.get_nowait()
    except queue.Empty:
        gpu = None
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    else:
        os.environ.setdefault("XLA_FLAGS", CPU_DETERMINISTIC_XLA_FLAGS)
    os.environ.setdefault("MUJOCO_GL", "disable")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _work(job: Job, results: Path, messages: Any, step_workers: int | None) -> str | None:
    """Train one job; returns None, or the error text (the runs are recorded as failed)."""

    def report(job_id: str, steps: int, budget: int, sps: float, last_eval: float | None) -> None:
        messages.put((job_id, steps, budget, sps, last_eval))

    from harness import backends

    try:
        backends.train(job, results, report, step_workers)
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        detail = traceback.format_exc(limit=8)
        for spec in job.runs:
            write_run_record(results, spec, status="failed", error=f"{text}\n{detail}")
        return text
    return None


# ----------------------------------------------------------------------------------------------
# Coordinator side


def execute(plan: Plan, results: Path, workers: int, console: Console, step_workers: int | None = None) -> Outcome:
    """Run every unfinished job of the plan; ingest shards into ``results/harness.duckdb``.
    ``step_workers``: processes stepping each job's simulators (None: the backend's default)."""
    store = store_mod.Store(results / "harness.duckdb")
    store.ensure()
    todo = [j for j in plan.jobs if job_state(results, j) != "finished"]
    skipped = tuple(j.job_id for j in plan.jobs if j not in todo)
    _ingest(store, results, [j for j in plan.jobs if j not in todo])
    if not todo:
        return Outcome((), skipped, ())

    ctx = mp.get_context("spawn")
    manager = SyncManager(ctx=ctx)
    manager.start(die_with_parent)
    messages = manager.Queue()
    gpus = manager.Queue()
    for gpu in visible_gpus():
        gpus.put(gpu)
    finished: list[str] = []
    failed: list[tuple[str, str]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[sps]} steps/s  eval {task.fields[score]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress, \
            ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(gpus,)) as pool:
        bars = {j.job_id: progress.add_task(describe(j), total=j.budget, sps="-", score="-") for j in todo}
        by_id = {j.job_id: j for j in todo}
        futures: dict[Future[str | None], Job] = {
            pool.submit(_work, j, results, messages, step_workers): j for j in todo}
        last_ingest = 0.0
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            touched = _drain(messages, progress, bars)
            if touched and time.monotonic() - last_ingest > 2.0:
                _ingest(store, results, [by_id[t] for t in touched])
                last_ingest = time.monotonic()
            for future in done:
                job = futures[future]
                error = _result(future, job, results)
                _ingest(store, results, [job])
                if error is None:
                    finished.append(job.job_id)
                    progress.update(bars[job.job_id], completed=job.budget)
                else:
                    failed.append((job.job_id, error))
                    progress.update(bars[job.job_id], description=f"[red]FAILED[/] {describe(job)}")
        _drain(messages, progress, bars)
    manager.shutdown()
    return Outcome(tuple(finished), skipped, tuple(failed))


def describe(job: Job) -> str:
    """A job in a progress line: task (or task set) · label · seeds."""
    what = job.tasks[0] if len(job.tasks) == 1 else f"{job.name} ({len(job.tasks)} tasks)"
    return f"{what} · {job.first.label} · {len(job.seeds)} seeds"


def _result(future: Future[str | None], job: Job, results: Path) -> str | None:
    try:
        return future.result()
    except Exception as exc:  # the worker process itself died (a crash in a simulator, OOM kill)
        text = f"worker died: {type(exc).__name__}: {exc}"
        for spec in job.runs:
            write_run_record(results, spec, status="failed", error=text)
        return text


def _drain(messages: Any, progress: Progress, bars: dict[str, Any]) -> set[str]:
    touched: set[str] = set()
    while True:
        try:
            job_id, steps, _budget, sps, last_eval = messages.get_nowait()
        except queue.Empty:
            return touched
        score = "-" if last_eval is None else f"{last_eval:.1f}"
        progress.update(bars[job_id], completed=steps, sps=f"{sps:,.0f}", score=score)
        touched.add(job_id)


def _ingest(store: store_mod.Store, results: Path, jobs: Sequence[Job]) -> None:
    dirs = [run_dir(results, r.run_id) for j in jobs for r in j.runs]
    dirs = [d for d in dirs if d.exists()]
    if dirs:
        store_mod.ingest_run_dirs(store, dirs)
