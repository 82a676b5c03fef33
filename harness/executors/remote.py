"""What the Ray and Slurm executors share: the job a worker runs, progress read from the shards, and
retries of failed or lost jobs.

A remote worker shares the results folder with the coordinator (a shared filesystem on a cluster) and
writes only shards, run records and checkpoints there; the coordinator follows a job's progress from
the tail of its first run's shard, and alone ingests into DuckDB.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing as mp
import os
import queue
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.jobs import Job
from harness.layout import run_dir, write_run_record
from harness.runfiles import SHARD_CURVES, SHARD_RUN, read_record

#: Bytes read from the end of a shard to find a job's latest step and evaluation.
TAIL_BYTES = 8192
#: Seconds between two readings of the running jobs' shards.
PROGRESS_EVERY_S = 2.0
#: Longest wait of a job for an earlier attempt of it to stop (see :func:`job_lock`).
LOCK_WAIT_S = 600.0


def remote_job(job: Job, results: str, gpu: bool, jobs_per_gpu: int, step_workers: int | None) -> str | None:
    """The body of a Ray task or Slurm job: set the worker's environment before JAX starts, train
    (or resume) ``job``; returns None or the error text (the runs are recorded as failed)."""
    from harness.worker import setup_environment, train_job

    setup_environment(gpu, jobs_per_gpu)
    try:
        with job_lock(Path(results), job.job_id):
            return train_job(job, Path(results), None, step_workers)
    except TimeoutError as exc:
        return str(exc)


@contextlib.contextmanager
def job_lock(results: Path, job_id: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the job's lock file while it trains: a resubmitted job waits here for an earlier attempt
    whose process is still being stopped (a Ray worker of a lost driver, a cancelled Slurm job in its
    kill wait), so two processes never write one job's shards. The kernel releases the lock of a
    process that dies, however it dies."""
    path = results / "executor" / "locks" / f"{job_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another process still trains job {job_id} after {wait_s:g} s (it holds "
                                       f"{path}); stop it and run the same command again") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remote_group(jobs: Sequence[Job], results: str, gpu: bool, jobs_per_gpu: int,
                 step_workers: int | None) -> list[str | None]:
    """The body of a Slurm job: its jobs (``jobs_per_gpu`` of them share its GPU), each in a process of
    its own started after the environment is set; returns each job's error text or None."""
    if len(jobs) == 1:
        return [remote_job(jobs[0], results, gpu, jobs_per_gpu, step_workers)]
    from harness.worker import setup_environment

    setup_environment(gpu, jobs_per_gpu)
    ctx = mp.get_context("spawn")
    answers = ctx.Queue()
    procs = [ctx.Process(target=_member, args=(answers, i, job, results, gpu, jobs_per_gpu, step_workers))
             for i, job in enumerate(jobs)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    errors: list[str | None] = [f"worker died (exit code {proc.exitcode})" for proc in procs]
    with contextlib.suppress(queue.Empty):
        for _ in procs:
            i, error = answers.get(timeout=1.0)
            errors[i] = error
    return errors


def _member(answers: Any, index: int, job: Job, results: str, gpu: bool, jobs_per_gpu: int,
            step_workers: int | None) -> None:
    answers.put((index, remote_job(job, results, gpu, jobs_per_gpu, step_workers)))


def shard_progress(results: Path, job: Job) -> tuple[int, float, float | None] | None:
    """(latest step, env steps/s, latest evaluation return) from the end of the job's first shard;
    None before its first point."""
    path = run_dir(results, job.first.run_id) / SHARD_CURVES
    try:
        with path.open("rb") as f:
            start = max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES)
            f.seek(start)
            lines = f.read().decode("utf-8", "replace").splitlines()[1 if start else 0:]
    except OSError:
        return None
    step, sps, score = -1, 0.0, None
    for line in lines:
        try:
            point = json.loads(line)
        except ValueError:  # a line being written, or cut by the tail
            continue
        step = max(step, int(point["step"]))
        if point["metric"] == "sys/env_steps_per_s":
            sps = float(point["value"])
        elif point["metric"] == "eval/return":
            score = float(point["value"])
    return None if step < 0 else (step, sps, score)


class Retrying(ABC):
    """A runner's bookkeeping of submitted jobs: attempts, retries and progress events.

    Subclasses submit (:meth:`submit`), find the jobs that ended (:meth:`ended`), and cancel;
    this class turns those into the coordinator's events. A job that failed (its error recorded in
    its run records) is submitted again up to ``max_retries`` times, resuming from its checkpoint.
    """

    def __init__(self, results: Path, jobs: Sequence[Job], max_retries: int, asks_gpu: bool) -> None:
        self.results = results
        self.jobs = {j.job_id: j for j in jobs}
        self.asks_gpu = asks_gpu
        self.max_retries = max_retries
        self.attempts: dict[str, int] = {j.job_id: 0 for j in jobs}
        self.notes: list[tuple[str, str]] = []  # (job_id, text) for the coordinator to print
        self._shown: dict[str, tuple[int, float, float | None]] = {}
        self._progress_at = 0.0

    @abstractmethod
    def submit(self, jobs: Sequence[Job]) -> None:
        """Submit these jobs (a first time, or again after a failure)."""

    @abstractmethod
    def ended(self, timeout: float) -> list[tuple[str, str | None]]:
        """Jobs that ended within ``timeout`` seconds: (job_id, None or the error text)."""

    @abstractmethod
    def running(self) -> list[str]:
        """The jobs submitted and not ended."""

    def events(self, timeout: float) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = [("note", job_id, text) for job_id, text in self.notes]
        self.notes.clear()
        again: list[Job] = []
        for job_id, error in self.ended(timeout):
            if error is None:
                out.append(("done", job_id, None))
                continue
            self.attempts[job_id] += 1
            for spec in self.jobs[job_id].runs:  # unless the worker recorded this error itself, with its traceback
                path = run_dir(self.results, spec.run_id) / SHARD_RUN
                recorded = read_record(path) if path.exists() else {}
                if recorded.get("status") != "failed" or not str(recorded.get("error") or "").startswith(error):
                    write_run_record(self.results, spec, status="failed", error=error)
            if self.attempts[job_id] <= self.max_retries:
                out.append(("note", job_id, f"attempt {self.attempts[job_id]} failed ({error}); submitted again "
                                            f"({self.attempts[job_id]} of {self.max_retries} retries), it "
                                            "resumes from its last checkpoint"))
                again.append(self.jobs[job_id])
            else:
                out.append(("done", job_id, error))
        if again:
            self.submit(again)
        if time.monotonic() >= self._progress_at:
            self._progress_at = time.monotonic() + PROGRESS_EVERY_S
            out += self._progress()
        return out

    def _progress(self) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for job_id in self.running():
            seen = shard_progress(self.results, self.jobs[job_id])
            if seen is not None and seen != self._shown.get(job_id):
                self._shown[job_id] = seen
                out.append(("progress", job_id, *seen))
        return out
