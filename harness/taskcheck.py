"""Proof that catalog tasks run: make, reset and step each one in its own worker process.

:func:`check_tasks` runs :func:`check_task` for every task in a separate process (at most
``workers`` at once) so that a crash, a hang or a simulator's global state stays with its task, and
stops a task that exceeds ``time_limit_s`` (Playground tasks compile for seconds to minutes on a
CPU): that task is reported as ``cut``. A task passes when it makes, resets (seed 0) and takes
``steps`` random actions (uniform in [-1, 1], seeded) with finite observations of its declared size
and finite rewards; an episode that ends early is reset and continued.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Literal

import numpy as np

from harness import catalog
from harness.errors import InputError

Status = Literal["ok", "failed", "cut"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one task."""

    task: str
    """Canonical task name."""
    status: Status
    """``ok``; ``failed`` (an error, or the worker died); ``cut`` (stopped at the time limit)."""
    observation_size: int = 0
    action_size: int = 0
    steps_per_s: float = 0.0
    """Random-action steps per second, timed after the first step (which may compile)."""
    seconds: float = 0.0
    """Wall time of the whole check, imports and compilation included."""
    error: str = ""
    """The error's last line for ``failed``, the limit for ``cut``."""


def check_task(name: str, steps: int = 10, seed: int = 0) -> CheckResult:
    """Make ``name``, reset it and take ``steps`` random steps, in this process."""
    from harness.envs import make

    start = time.perf_counter()
    task = catalog.resolve(name)
    env = make(task, seed)
    try:
        obs, _ = env.reset(seed=seed)
        _check_obs(obs, env.observation_size)
        rng = np.random.default_rng(seed)
        timed_start = 0.0
        for step in range(steps + 1):
            if step == 1:
                timed_start = time.perf_counter()
            obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, env.action_size))
            _check_obs(obs, env.observation_size)
            if not np.isfinite(reward):
                raise ValueError(f"reward {reward} at step {step}")
            if terminated or truncated:
                env.reset()
        timed = time.perf_counter() - timed_start
        return CheckResult(task.name, "ok", env.observation_size, env.action_size,
                           steps / timed if timed > 0 else float("inf"), time.perf_counter() - start)
    finally:
        env.close()


def _check_obs(obs: np.ndarray, size: int) -> None:
    if obs.shape != (size,) or obs.dtype != np.float32:
        raise ValueError(f"observation of shape {obs.shape} and dtype {obs.dtype}, expected ({size},) float32")
    if not np.all(np.isfinite(obs)):
        raise ValueError("observation has non-finite values")


def _worker(name: str, steps: int, conn: Connection) -> None:
    os.environ.setdefault("MUJOCO_GL", "disable")
    start = time.perf_counter()
    try:
        result = check_task(name, steps)
    except Exception as exc:  # the check reports any error of any simulator as a failure
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        result = CheckResult(name, "failed", seconds=time.perf_counter() - start, error=last)
    conn.send(result)
    conn.close()


def check_tasks(names: Sequence[str], workers: int = 2, time_limit_s: float = 600.0,
                steps: int = 10) -> Iterator[CheckResult]:
    """Check every task of ``names`` (canonical names), each in its own process; results as they finish."""
    if workers < 1 or time_limit_s <= 0 or steps < 1:
        raise InputError(f"task check: workers ({workers}) and steps ({steps}) must be >= 1 and the time limit "
                         f"({time_limit_s} s) positive")
    context = multiprocessing.get_context("spawn")
    pending = list(names)
    running: dict[Connection, tuple[str, multiprocessing.process.BaseProcess, float]] = {}
    while pending or running:
        while pending and len(running) < workers:
            name = pending.pop(0)
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=_worker, args=(name, steps, send), daemon=True)
            process.start()
            send.close()
            running[receive] = (name, process, time.perf_counter())
        for ready in wait(list(running), timeout=0.5):
            conn = next(c for c in running if c is ready)
            yield _collect(conn, *running.pop(conn))
        now = time.perf_counter()
        for conn, (name, started_process, started) in list(running.items()):
            if now - started > time_limit_s:
                started_process.kill()
                started_process.join()
                conn.close()
                del running[conn]
                yield CheckResult(name, "cut", seconds=now - started, error=f"over the {time_limit_s:g} s limit")


def _collect(conn: Connection, name: str, process: multiprocessing.process.BaseProcess,
             started: float) -> CheckResult:
    try:
        result: CheckResult = conn.recv()
    except EOFError:  # the worker died without a result (a crash in a simulator's C code, killed)
        process.join()
        result = CheckResult(name, "failed", seconds=time.perf_counter() - started,
                             error=f"the worker process died (exit code {process.exitcode})")
    conn.close()
    process.join()
    return result


@dataclass(frozen=True)
class SuiteCount:
    """How many tasks a suite holds, and how many of them are new to the catalog."""

    suite: str
    tasks: int
    duplicates: int
    """Tasks that re-implement another suite's task (``Task.same_as``)."""

    @property
    def unique(self) -> int:
        return self.tasks - self.duplicates


def suite_counts(tasks: Iterable[catalog.Task]) -> list[SuiteCount]:
    """Tasks per suite, in catalog suite order; a re-implementation counts under its suite as a duplicate."""
    selected = list(tasks)
    return [SuiteCount(suite, sum(t.suite == suite for t in selected),
                       sum(t.suite == suite and bool(t.same_as) for t in selected))
            for suite in catalog.SUITES if any(t.suite == suite for t in selected)]
