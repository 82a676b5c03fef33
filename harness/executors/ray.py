"""The Ray executor: one Ray task per job, on a Ray cluster or a local Ray runtime.

Each task runs in a fresh Ray worker process (``max_calls=1``), so the worker's JAX memory settings
apply and its GPU memory is freed when the job ends. Ray's own task retries are off: a failed or
lost task (a worker killed, a node lost) is recorded with its error and submitted again by the
coordinator (:class:`harness.executors.remote.Retrying`), resuming from its checkpoint. Tasks
belong to the coordinator's Ray driver: when it stops, Ctrl-C or ``kill -9``, Ray ends them, and the
same command run again submits the unfinished jobs, which resume from their checkpoints.

Ray hides GPUs from a task that asks for none (JAX then runs on CPU); the coordinator warns when a
job that asked for a GPU records a CPU device.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.executors.remote import Retrying, remote_job
from harness.executors.settings import RaySettings
from harness.jobs import Job


class RayRunner(Retrying):
    def __init__(self, settings: RaySettings, results: Path, jobs: Sequence[Job], step_workers: int | None) -> None:
        import ray

        super().__init__(results.resolve(), jobs, settings.max_retries, settings.gpus_per_job > 0)
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            extra: dict[str, Any] = {"include_dashboard": False} if settings.address is None else {}
            with warnings.catch_warnings():  # JAX's warning on fork: Ray's fork is followed by an exec at once
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                ray.init(address=settings.address, runtime_env=settings.runtime_env or None, log_to_driver=False,
                         **extra)
        gpus = settings.gpus_per_job / settings.jobs_per_gpu
        options: dict[str, Any] = {} if self._started or not settings.runtime_env else \
            {"runtime_env": settings.runtime_env}
        self._task = ray.remote(num_cpus=settings.cpus_per_job, num_gpus=gpus, max_retries=0, max_calls=1,
                                **options)(remote_job)
        self._args = (str(self.results), gpus > 0, settings.jobs_per_gpu, step_workers)
        self._refs: dict[Any, str] = {}  # ObjectRef -> job_id
        self.submit(jobs)

    def submit(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self._refs[self._task.remote(job, *self._args)] = job.job_id

    def running(self) -> list[str]:
        return list(self._refs.values())

    def ended(self, timeout: float) -> list[tuple[str, str | None]]:
        # Waiting in Python, not in ray.wait: a signal handler's exception (Ctrl-C) raised inside
        # Ray's compiled wait comes out as a SystemError.
        time.sleep(timeout)
        if not self._refs:
            return []
        ready, _ = self._ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        out: list[tuple[str, str | None]] = []
        for ref in ready:
            job_id = self._refs.pop(ref)
            try:
                out.append((job_id, self._ray.get(ref)))
            except self._ray.exceptions.RayError as exc:  # a lost worker or node, a cancelled task
                out.append((job_id, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"))
        return out

    def terminate(self) -> None:
        """Cancel every submitted task (force: their workers are killed; checkpoints resume them)."""
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()

    def kill(self) -> None:
        self.terminate()

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
