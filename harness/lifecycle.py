"""What every training backend does the same way for a job: run records, curve shards,
checkpoints and resume, and the evaluation and logging cadence.

A job (:class:`harness.jobs.Job`) trains S seeds over T tasks; it has one run per (task, seed),
``job.runs`` in task-major order, and each run has its own curve shard
``results/runs/<run_id>/curves.jsonl``, so every point lands on the run of its task and seed.

Resuming: a checkpoint is written right after each evaluation, together with the byte length of
every curve shard at that moment. A restarted job truncates its shards back to those lengths and
continues from the checkpoint, so no curve point is lost or written twice, even after ``kill -9``.
Before it cuts a shard, it records the keys of the points it cuts (the killed attempt's, superseded
by the resumed one) next to it, so that the store drops them too (:mod:`harness.runfiles`).
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from harness import catalog
from harness.jobs import Job
from harness.layout import group_dir, now, read_status, run_dir, write_run_record
from harness.runfiles import SHARD_CURVES, record_superseded

#: Progress callback: (job_id, env_steps, budget, env_steps_per_s, last eval return or None).
ProgressFn = Callable[[str, int, int, float, float | None], None]

PACKAGES = ("harness", "jax", "jaxlib", "flax", "optax", "numpy", "mujoco", "dm-control", "metaworld",
            "myosuite", "playground", "humanoid_bench", "brc-dex-envs", "gymnasium", "gymnasium-robotics",
            "duckdb")


@dataclass
class Counters:
    """Where a job stands; saved in every checkpoint. ``env_steps`` counts each task's env steps
    (all tasks of a job step together)."""

    next_eval: int
    env_steps: int = 0
    updates: int = 0
    wall_s: float = 0.0
    last_eval: float | None = None


@dataclass
class Shards:
    """The curve files of a job's runs (``job.runs`` order), appended as points arrive."""

    dirs: list[Path]
    files: list[Any] = field(default_factory=list)

    def open(self, offsets: list[int] | None) -> None:
        """Open every shard for appending, cut back to ``offsets`` (a checkpoint's; None: emptied),
        the cut points recorded as superseded first."""
        for i, d in enumerate(self.dirs):
            d.mkdir(parents=True, exist_ok=True)
            path = d / SHARD_CURVES
            path.touch()
            kept = offsets[i] if offsets else 0
            record_superseded(d, kept)
            with path.open("r+b") as f:
                f.truncate(kept)
            self.files.append(path.open("a"))

    def write(self, run_index: int, metric: str, step: int, value: float, psi: str | None = None) -> None:
        """Append a point; ``psi`` names the evaluation ψ of a reward-conditioned manifest's point
        (left out for the nominal ψ* and for every other run)."""
        if np.isfinite(value):
            point = {"metric": metric, "step": step, "value": float(value), **({"psi": psi} if psi else {})}
            self.files[run_index].write(json.dumps(point) + "\n")

    def flush(self) -> list[int]:
        """Flush to disk; returns each file's length (the offsets a checkpoint records)."""
        out = []
        for f in self.files:
            f.flush()
            os.fsync(f.fileno())
            out.append(f.tell())
        return out

    def close(self) -> None:
        for f in self.files:
            f.close()


def environment_facts(device: str) -> dict[str, Any]:
    """Host, device, package versions and git commit, recorded with every run."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=False).stdout.strip() or None
    except OSError:
        commit = None
    return {"host": socket.gethostname(), "device": device,
            "packages": {"python": platform.python_version(), **versions}, "git_commit": commit}


class JobFiles:
    """A job's run records, shards and checkpoint under the results folder."""

    def __init__(self, job: Job, results: Path) -> None:
        self.job = job
        self.results = results
        self.checkpoint_path = group_dir(results, job.job_id) / "checkpoint.pkl"
        self.shards = Shards([run_dir(results, r.run_id) for r in job.runs])

    def finished(self) -> bool:
        return all(read_status(self.results, r.run_id) == "finished" for r in self.job.runs)

    def start(self, device: str) -> None:
        """Mark every run running, with the environment it runs in."""
        facts, started = environment_facts(device), now()
        for spec in self.job.runs:
            write_run_record(self.results, spec, status="running", started_at=started, job_id=self.job.job_id,
                             **facts)

    def load(self) -> dict[str, Any] | None:
        """The saved checkpoint (None for a fresh job); opens the shards, cut back to its offsets."""
        path = self.checkpoint_path
        saved = pickle.loads(path.read_bytes()) if path.exists() else None
        self.shards.open(saved["offsets"] if saved is not None else None)
        return saved

    def save(self, payload: dict[str, Any]) -> None:
        """Flush the shards and write a checkpoint of ``payload`` with their offsets, atomically."""
        offsets = self.shards.flush()
        path = self.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump({**payload, "offsets": offsets}, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)

    def finish(self, counters: Counters) -> None:
        """Close the shards, mark every run finished and drop the checkpoint."""
        self.shards.close()
        finished = now()
        for spec in self.job.runs:
            write_run_record(self.results, spec, status="finished", finished_at=finished,
                             wall_seconds=counters.wall_s)
        self.checkpoint_path.unlink(missing_ok=True)


def eval_due(job: Job, counters: Counters) -> bool:
    """Whether an evaluation is due now (one is every ``eval_every`` steps and at the end)."""
    return counters.env_steps >= counters.next_eval or counters.env_steps >= job.budget


def record_evaluation(job: Job, shards: Shards, counters: Counters, returns: np.ndarray,
                      successes: np.ndarray | None, sps: float, ups: float) -> None:
    """Write each run's evaluation at ``counters.env_steps`` (the mean over its episodes; returns and
    successes (S, T, episodes)) with the system figures, and move ``counters`` on to the next one."""
    step = counters.env_steps
    tasks = [catalog.resolve(name) for name in job.tasks]
    n_seeds = len(job.seeds)
    for t, task in enumerate(tasks):
        for s in range(n_seeds):
            r = t * n_seeds + s
            shards.write(r, "eval/return", step, float(np.mean(returns[s, t])))
            if task.metric == "success" and successes is not None:
                shards.write(r, "eval/success", step, float(np.mean(successes[s, t])))
            shards.write(r, "sys/env_steps_per_s", step, sps)
            shards.write(r, "sys/updates_per_s", step, ups)
            shards.write(r, "sys/wall_s", step, counters.wall_s)
    counters.last_eval = float(np.mean(returns))
    while counters.next_eval <= step:
        counters.next_eval += job.eval_every


def record_psi_evaluation(job: Job, shards: Shards, step: int, psi: str, returns: np.ndarray,
                          has: np.ndarray) -> None:
    """Write each run's evaluation return under the named evaluation ψ ``psi`` (the mean over its
    episodes; returns (S, T, episodes) scored with r_ψ), for the tasks that have that ψ (``has (T,)``)."""
    n_seeds = len(job.seeds)
    for t in range(len(job.tasks)):
        if has[t]:
            for s in range(n_seeds):
                shards.write(t * n_seeds + s, "eval/return", step, float(np.mean(returns[s, t])), psi)


def log_metrics(job: Job, shards: Shards, pending: list[dict[str, Any]], env_steps: int) -> None:
    """The mean of each agent metric over the updates since the last log, one point per run (the
    metrics of a seed are shared by its runs: one agent learns all of a job's tasks)."""
    n_seeds = len(job.seeds)
    for name in pending[0]:
        values = np.concatenate([np.asarray(m[name]) for m in pending], axis=1)  # (S, updates)
        for r in range(len(job.runs)):
            shards.write(r, f"agent/{name}", env_steps, float(values[r % n_seeds].mean()))


def log_episodes(job: Job, shards: Shards, returns: np.ndarray, successes: np.ndarray | None, env_steps: int) -> None:
    """Training episodes that ended this step: returns (and successes) (S, T, E), NaN where none
    ended, averaged over a run's envs."""
    if np.all(np.isnan(returns)):
        return
    n_seeds = len(job.seeds)
    for t in range(len(job.tasks)):
        for s in range(n_seeds):
            if not np.all(np.isnan(returns[s, t])):
                r = t * n_seeds + s
                shards.write(r, "train/episode_return", env_steps, float(np.nanmean(returns[s, t])))
                if successes is not None and not np.all(np.isnan(successes[s, t])):
                    shards.write(r, "train/episode_success", env_steps, float(np.nanmean(successes[s, t])))


def episode_keys(seeds: list[int], ended: np.ndarray, env_steps: int, keys: np.ndarray) -> np.ndarray:
    """``keys`` (S, N, 2) uint32 with a fresh key for each (seed, env column) whose episode starts now.

    A new episode's key depends only on the run seed, the column and the step it starts at, so it
    needs no state of its own (and a resumed job draws the same keys as an uninterrupted one would
    for episodes starting at the same step).
    """
    keys = keys.copy()
    for s, e in zip(*np.nonzero(ended), strict=True):
        keys[s, e] = np.random.SeedSequence([seeds[s], int(e) + 1, env_steps, 1]).generate_state(2)
    return keys


def env_seed(seed: int, column: int, env_steps: int) -> int:
    """A 31-bit environment seed for (run seed, training env column, step)."""
    return int(np.random.SeedSequence([seed, column + 1, env_steps]).generate_state(1)[0] >> 1)


def eval_env_seed(seed: int, task_index: int) -> int:
    """A 31-bit seed of the evaluation env of (run seed, task index), apart from every training env's."""
    entropy = [seed, 0, 0] + ([task_index] if task_index else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)
