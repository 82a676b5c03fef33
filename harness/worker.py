"""The worker side of every executor: the environment a worker sets before JAX loads, and the
training of one job with its failure recorded.

Workers import this module and not the coordinator's (:mod:`harness.executor`, which loads the
store's DuckDB and pandas): a worker writes shards and run records, never the store.
"""

from __future__ import annotations

import os
import signal
import traceback
from pathlib import Path
from typing import Any

from harness.jobs import Job
from harness.layout import write_run_record
from harness.processes import die_with_parent

#: XLA:CPU with one intra-op thread: multi-threaded Eigen contractions may sum in a different order
#: from run to run, and a 1e-7 difference grows into a different curve. Costs about 30% of update
#: speed on two cores (the other core steps the simulators meanwhile). A user's XLA_FLAGS win.
CPU_DETERMINISTIC_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


PACKED_MEMORY = 0.9
"""The share of a GPU's memory the packed jobs of one GPU use together (the rest is CUDA's own)."""


def packing_env(jobs_per_gpu: int) -> dict[str, str]:
    """The JAX memory settings of a worker whose GPU holds ``jobs_per_gpu`` jobs, set before JAX loads."""
    env = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    if jobs_per_gpu > 1:
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{PACKED_MEMORY / jobs_per_gpu:.3f}"
    return env


def setup_local_worker(gpu: str | None, jobs_per_gpu: int = 1) -> None:
    """Environment of a worker process, before it imports JAX or a simulator."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the coordinator decides
    setup_environment(gpu is not None, jobs_per_gpu)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def setup_environment(gpu: bool, jobs_per_gpu: int = 1) -> None:
    """The variables a worker of any executor sets before JAX loads (a user's own values win):
    deterministic XLA:CPU without a GPU, no renderer, JAX's memory share of a packed GPU."""
    if not gpu:
        os.environ.setdefault("XLA_FLAGS", CPU_DETERMINISTIC_XLA_FLAGS)
    os.environ.setdefault("MUJOCO_GL", "disable")
    for key, value in packing_env(jobs_per_gpu).items():
        os.environ.setdefault(key, value)


def serve(jobs: Any, events: Any, results: Path, gpu: str | None, step_workers: int | None,
          jobs_per_gpu: int = 1) -> None:
    """A worker process: train the jobs it takes from ``jobs`` until it takes None; report on
    ``events``: ("start", job_id, pid), ("progress", job_id, steps, sps, last_eval) and ("done",
    job_id, error or None)."""
    setup_local_worker(gpu, jobs_per_gpu)

    def report(job_id: str, steps: int, budget: int, sps: float, last_eval: float | None) -> None:
        events.put(("progress", job_id, steps, sps, last_eval))

    while (job := jobs.get()) is not None:
        events.put(("start", job.job_id, os.getpid()))
        events.put(("done", job.job_id, train_job(job, results, report, step_workers)))


def train_job(job: Job, results: Path, progress: Any = None, step_workers: int | None = None) -> str | None:
    """Train one job in a worker of any executor; returns None, or the error text (the runs are
    recorded as failed). ``progress``: a :data:`harness.lifecycle.ProgressFn` or None."""
    from harness import backends  # imported in the worker: it loads JAX and simulators

    try:
        backends.train(job, results, progress, step_workers)
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}"
        detail = traceback.format_exc(limit=8)
        try:
            for spec in job.runs:
                write_run_record(results, spec, status="failed", error=f"{text}\n{detail}")
        except OSError as record_exc:  # a full disk: the coordinator still hears why the job failed
            text += f" (its run records could not be written either: {record_exc})"
        return text
    return None
