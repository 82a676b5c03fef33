"""Time `harness leaderboard build` on a generated store of 300 tasks x 20 agents x 10 seeds x 40 evaluations.

The store is written directly with DuckDB (one bulk insert per table from a DataFrame), then the
leaderboard is built from it and the build time printed (the generation time is printed apart).

Tasks: the catalog's tasks in their stable order (176 of them), then as many synthetic MyoSuite
ids as needed, ``myosuite/myoSynthetic000-v0``, ``myosuite/myoSynthetic001-v0``, ... (success
rate, normalised as is); the synthetic tasks get rows in the store's ``tasks`` table so that the
store normalises them like any other, and they belong to no task group (they get task pages, no
suite table). Agents: ``agent00`` .. ``agent19``; the even ones are ours (``source = harness``,
with a config), the odd ones submitted (one submission each, with metadata). Curves: a noisy
saturating learning curve per run, evaluations every 25,000 steps from 25,000.

    python benchmarks/leaderboard_build.py                      # the full size, into a temp folder
    python benchmarks/leaderboard_build.py --tasks 30 --agents 4 --keep /tmp/lb   # smaller; keep files
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import harness
from harness import catalog
from harness.leaderboard import BuildOptions, build
from harness.store import RUN_COLUMNS, Store


def synthetic_tasks(count: int) -> list[tuple[str, str, float]]:
    """(name, metric, norm_high) of ``count`` tasks: the catalog's first, then synthetic MyoSuite ids."""
    tasks = [(t.name, str(t.metric), t.norm_high) for t in catalog.all_tasks()][:count]
    tasks += [(f"myosuite/myoSynthetic{i:03d}-v0", "success", 1.0) for i in range(count - len(tasks))]
    return tasks


def generate(path: Path, *, tasks: int, agents: int, seeds: int, points: int, seed: int = 0) -> int:
    """Write a store at ``path`` with tasks x agents x seeds runs of ``points`` evaluations; returns runs."""
    rng = np.random.default_rng(seed)
    store = Store(path)
    store.ensure()
    task_list = synthetic_tasks(tasks)
    labels = [f"agent{a:02d}" for a in range(agents)]
    steps = 25_000 * np.arange(1, points + 1)  # (points,)
    n_runs = tasks * agents * seeds
    task_index = np.repeat(np.arange(tasks), agents * seeds)  # (runs,)
    agent_index = np.tile(np.repeat(np.arange(agents), seeds), tasks)  # (runs,)
    seed_index = np.tile(np.arange(seeds), tasks * agents)  # (runs,)
    # A saturating curve: level depends on agent and task, speed on the agent, plus seed noise.
    level = np.clip(0.2 + 0.6 * agent_index / max(agents - 1, 1) + rng.normal(0, 0.15, n_runs), 0.0, 1.0)
    speed = 3.0 + agent_index[:, None] * 0.2  # (runs, 1)
    progress = 1.0 - np.exp(-speed * steps[None, :] / steps[-1])  # (runs, points)
    scores = np.clip(level[:, None] * progress + rng.normal(0, 0.03, (n_runs, points)), 0.0, 1.0)
    highs = np.array([task_list[t][2] for t in task_index])  # (runs,)
    run_ids = [f"bench{r:07d}" for r in range(n_runs)]
    submitted = agent_index % 2 == 1
    submission_ids = [f"sub{a:02d}" if a % 2 else None for a in agent_index]
    runs = pd.DataFrame({
        "run_id": run_ids,
        "source": np.where(submitted, "submission", "harness"),
        "submission_id": submission_ids,
        "label": [labels[a] for a in agent_index],
        "agent": [labels[a] for a in agent_index],
        "config_hash": [None if a % 2 else f"cfg{a:02d}" for a in agent_index],
        "config": [None if a % 2 else json.dumps({"hidden_dims": [256, 256], "lr": 3e-4 * (1 + a)})
                   for a in agent_index],
        "task": [task_list[t][0] for t in task_index],
        "seed": seed_index,
        "budget": [None if a % 2 else int(steps[-1]) for a in agent_index],
        "status": "finished",
        "variant": "single",
    })
    for column in RUN_COLUMNS:
        if column not in runs:
            runs[column] = None
    curves = pd.DataFrame({
        "run_id": np.repeat(run_ids, points),
        "metric": np.repeat([f"eval/{task_list[t][1]}" for t in task_index], points),
        "step": np.tile(steps, n_runs),
        "value": (scores * highs[:, None]).ravel(),
    })
    submissions = pd.DataFrame({
        "submission_id": [f"sub{a:02d}" for a in range(1, agents, 2)],
        "agent": [labels[a] for a in range(1, agents, 2)],
        "format": "long",
        "suite": None,
        "files": json.dumps([{"name": "curves.csv", "sha256": "0" * 64, "size": 1}]),
        "content_sha256": [f"{a:064d}" for a in range(1, agents, 2)],
        "meta": json.dumps({"paper": "https://example.org/paper", "notes": "generated"}),
        "submitted_at": pd.Timestamp("2024-01-01"),
        "harness_version": harness.__version__,
    })
    known = {t.name for t in catalog.all_tasks()}
    extra_tasks = pd.DataFrame(
        [(name, "myosuite", metric, 100, 1, 0.0, high) for name, metric, high in task_list if name not in known],
        columns=["task", "suite", "metric", "episode_length", "action_repeat", "norm_low", "norm_high"])
    with store.connect() as con:
        for table, frame in (("tasks", extra_tasks), ("submissions", submissions), ("runs", runs[list(RUN_COLUMNS)]),
                             ("curves", curves)):
            con.register("_frame", frame)
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _frame")  # columns it lacks take their defaults
            con.unregister("_frame")
    return n_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=300, help="tasks (default 300)")
    parser.add_argument("--agents", type=int, default=20, help="agent labels (default 20)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per agent and task (default 10)")
    parser.add_argument("--points", type=int, default=40, help="evaluations per run (default 40)")
    parser.add_argument("--reps", type=int, default=BuildOptions().reps, help="bootstrap repetitions")
    parser.add_argument("--keep", type=Path, default=None, help="write store and site here and keep them")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="leaderboard-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    store_path = folder / "harness.duckdb"
    store_path.unlink(missing_ok=True)
    start = time.perf_counter()
    n_runs = generate(store_path, tasks=args.tasks, agents=args.agents, seeds=args.seeds, points=args.points)
    generated = time.perf_counter() - start
    print(f"generated {n_runs:,} runs x {args.points} evaluations "
          f"({args.tasks} tasks x {args.agents} agents x {args.seeds} seeds) in {generated:.1f} s")
    start = time.perf_counter()
    result = build(Store(store_path), folder / "leaderboard", BuildOptions(reps=args.reps))
    elapsed = time.perf_counter() - start
    print(f"built {result.files} files ({result.suites} suites, {result.tasks} task pages, "
          f"{result.agents} agent pages) in {elapsed:.1f} s with {args.reps:,} bootstrap repetitions "
          f"({os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the end)")
    if args.keep is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
