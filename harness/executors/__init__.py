"""Executors: where the jobs of ``harness run`` train.

Every executor runs :func:`harness.worker.train_job` (which calls :func:`harness.backends.train`)
for each job in a worker of its own; workers write shards under the results folder, and the
coordinator (:func:`harness.executor.execute`) alone ingests them into DuckDB. An executor is a
:class:`Runner` that the coordinator polls for events.

``EXECUTORS`` maps a name to a factory ``(settings, results, jobs, step_workers) -> Runner``:

- ``local``: worker processes on this machine (:class:`harness.executor._Pool`);
- ``ray``: Ray tasks on a Ray cluster or a local Ray runtime (:mod:`harness.executors.ray`);
- ``slurm``: Slurm jobs submitted through ``submitit`` (:mod:`harness.executors.slurm`).

Ray and submitit are imported only when their executor is chosen. Adding an executor is one module
with a :class:`Runner` and one entry here (and its settings in :mod:`harness.executors.settings`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from harness.errors import InputError
from harness.executors.settings import ExecutorSettings, LocalSettings, RaySettings, SlurmSettings
from harness.jobs import Job


class Runner(Protocol):
    """Jobs submitted to an executor, as the coordinator follows them.

    ``events`` returns what happened within ``timeout`` seconds: ("progress", job_id, steps, sps,
    last_eval) and ("done", job_id, error text or None), one "done" per job (after its retries, for
    executors that retry). ``terminate`` cancels every job still submitted (they resume from their
    checkpoints on the next run); ``kill`` does so without waiting; ``close`` releases what is left.
    """

    jobs: dict[str, Job]
    asks_gpu: bool
    """Whether the jobs were given a GPU (the coordinator warns of a job whose run record says cpu)."""

    def events(self, timeout: float) -> list[tuple[Any, ...]]: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def close(self) -> None: ...


Factory = Callable[[Any, Path, Sequence[Job], int | None], Runner]


def _local(settings: LocalSettings, results: Path, jobs: Sequence[Job], step_workers: int | None) -> Runner:
    from harness.executor import _Pool, default_workers

    workers = settings.workers or default_workers() * settings.jobs_per_gpu
    return _Pool(results, min(workers, len(jobs)), step_workers, jobs, settings.jobs_per_gpu)


def _ray(settings: RaySettings, results: Path, jobs: Sequence[Job], step_workers: int | None) -> Runner:
    from harness.executors.ray import RayRunner

    return RayRunner(settings, results, jobs, step_workers)


def _slurm(settings: SlurmSettings, results: Path, jobs: Sequence[Job], step_workers: int | None) -> Runner:
    from harness.executors.slurm import SlurmRunner

    return SlurmRunner(settings, results, jobs, step_workers)


EXECUTORS: dict[str, Factory] = {"local": _local, "ray": _ray, "slurm": _slurm}


def factory(name: str) -> Factory:
    """The executor called ``name``; InputError lists the valid names."""
    if name not in EXECUTORS:
        raise InputError(f"--executor {name!r}: no such executor; expected one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name]


def launcher(settings: ExecutorSettings, step_workers: int | None) -> Callable[[Path, Sequence[Job]], Runner]:
    """What :func:`harness.executor.execute` calls to start the unfinished jobs on ``settings``'s executor."""
    start = factory(settings.kind)

    def launch(results: Path, jobs: Sequence[Job]) -> Runner:
        return start(settings, results, jobs, step_workers)

    return launch
