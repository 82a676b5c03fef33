"""Training backends: how a job's environments step and where its agent learns.

``BACKENDS`` maps a name to a :class:`Backend`, in order of preference: a job goes to the first
backend that accepts all its tasks (decided by the tasks' env adapters). Each backend module is
imported only when a job runs on it, so choosing one loads no simulator and no JAX.

- ``device``: tasks with a batched JAX env (MuJoCo Playground), the whole step on the JAX device;
  single-task jobs.
- ``host``: simulators stepped on the host (every runnable task), the agent on the JAX device;
  single-task and multi-task jobs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness import catalog, envs, jaxcache
from harness.jobs import Job
from harness.lifecycle import ProgressFn


class BackendModule(Protocol):
    def train(self, job: Job, results: Path, progress: ProgressFn | None = None,
              step_workers: int | None = None) -> None: ...


@dataclass(frozen=True)
class Backend:
    """A training backend: which jobs it accepts (by their tasks' adapters) and the module whose
    ``train(job, results, progress, step_workers)`` trains them."""

    name: str
    accepts: Callable[[list[catalog.Task]], bool]
    module: str

    def load(self) -> BackendModule:
        module: BackendModule = importlib.import_module(self.module)
        return module


def _batched(tasks: list[catalog.Task]) -> bool:
    """One task, of a suite with a batched JAX env."""
    return len(tasks) == 1 and tasks[0].suite in envs.BATCHED_SUITES


def _hosted(tasks: list[catalog.Task]) -> bool:
    """Every task with a one-env adapter (every runnable suite has one)."""
    return all(t.suite in envs.ADAPTERS for t in tasks)


BACKENDS: dict[str, Backend] = {
    "device": Backend("device", _batched, "harness.backends.device"),
    "host": Backend("host", _hosted, "harness.backends.host"),
}


def choose(job: Job) -> Backend:
    """The first backend of ``BACKENDS`` that accepts every task of ``job``."""
    tasks = [catalog.resolve(name) for name in job.tasks]
    for backend in BACKENDS.values():
        if backend.accepts(tasks):
            return backend
    raise ValueError(f"no backend trains {', '.join(job.tasks)}; backends: {', '.join(BACKENDS)}")


def train(job: Job, results: Path, progress: ProgressFn | None = None, step_workers: int | None = None) -> None:
    """Train (or resume, or skip if finished) ``job`` on its backend; raises if training fails.
    Compiled programs are cached under the results folder (:mod:`harness.jaxcache`)."""
    backend = choose(job)
    jaxcache.enable(results)
    backend.load().train(job, results, progress, step_workers)
