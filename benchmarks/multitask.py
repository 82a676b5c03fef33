"""Throughput of an 80-task job against single-task runs of the same tasks, and parallel stepping.

Trains SAC at small widths (CPU) on 80 tasks: MetaWorld's 50 and the first 30 runnable tasks of
TD-MPC2's DMC set (the MT80 set of BRC and TD-MPC2 once its custom DMC tasks run). Prints:

- the 80-task job's environment steps/s (all tasks' envs together) and updates/s in its steady
  window (after warm-up and compilation, before the final evaluation), for each number of
  env-stepping processes from 1 to the machine's cores;
- single-task runs of a sample of the same tasks at the same per-task budget: their steady
  steps/s and updates/s, and the time 80 such runs take (measured per run, summed over the
  sample and scaled to 80 runs: the same total environment steps as the job);
- the ratio of the two.

Usage: python benchmarks/multitask.py [--budget 1500] [--warmup 300] [--sample 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import backends, catalog
from harness.manifest import validate

AGENT = {"algo": "sac", "hidden_dims": [64, 64], "batch_size": 64}


def task_set() -> list[str]:
    dmc = [t for t in catalog.group("tdmpc2-dmc").tasks if catalog.resolve(t).runnable][:30]
    return [*catalog.group("metaworld-mt50").tasks, *dmc]


def train(tasks: list[str], budget: int, warmup: int, step_workers: int | None) -> dict[str, float]:
    """Train one job over ``tasks`` (1 seed) and time it: steady env steps/s (all envs), updates/s
    and the whole wall time."""
    raw: dict[str, Any] = {
        "name": "bench-mt", "variant": "multitask" if len(tasks) > 1 else "single", "tasks": tasks,
        "agents": {"sac": {**AGENT, "warmup_steps": warmup}}, "seeds": 1, "budget": budget,
        "eval": {"every": budget, "episodes": 1}, "log_every": 1000,
    }
    job = validate(raw, Path("benchmarks/multitask.py")).jobs[0]
    marks: list[tuple[float, int]] = []  # (time, env steps of each task) at each progress call

    def progress(job_id: str, steps: int, budget: int, sps: float, last_eval: float | None) -> None:
        marks.append((time.perf_counter(), steps))

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as results:
        backends.train(job, Path(results), progress, step_workers)
    wall = time.perf_counter() - start
    # Steady window: from the first mark 100 steps past warm-up (compilation done) to the last mark
    # before the budget (the final evaluation excluded).
    window = [(t, s) for t, s in marks if warmup + 100 <= s < budget]
    (t0, s0), (t1, s1) = window[0], window[-1]
    per_task = (s1 - s0) / (t1 - t0)
    return {"env_steps_per_s": per_task * len(tasks), "updates_per_s": per_task, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=int, default=1500, help="environment steps of each task")
    parser.add_argument("--warmup", type=int, default=300, help="random-action steps before updates")
    parser.add_argument("--sample", type=int, default=8, help="single-task runs measured (spread over the 80)")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "disable")
    tasks = task_set()
    cores = os.cpu_count() or 1
    print(f"{len(tasks)} tasks ({sum(t.startswith('metaworld/') for t in tasks)} MetaWorld), SAC 64x64, "
          f"batch 64, 1 seed, {args.budget} steps per task (warm-up {args.warmup}); {cores} cores")

    print(f"\n{len(tasks)}-task job (one agent, all envs stepped together; updates/s = steps/s of each task):")
    print(f"{'env processes':>14} {'env steps/s':>12} {'updates/s':>10} {'wall s':>8}")
    job: dict[int, dict[str, float]] = {}
    for workers in range(1, cores + 1):
        job[workers] = train(tasks, args.budget, args.warmup, workers)
        r = job[workers]
        print(f"{workers:>14} {r['env_steps_per_s']:>12.0f} {r['updates_per_s']:>10.1f} {r['wall_s']:>8.1f}")
    best = max(job.values(), key=lambda r: r["env_steps_per_s"])

    sample = tasks[:: max(1, len(tasks) // args.sample)][: args.sample]
    print(f"\nSingle-task runs, {len(sample)} of the {len(tasks)} tasks, same budget each:")
    print(f"{'task':<34} {'env steps/s':>12} {'updates/s':>10} {'wall s':>8}")
    singles = []
    for task in sample:
        r = train([task], args.budget, args.warmup, None)
        singles.append(r)
        print(f"{task:<34} {r['env_steps_per_s']:>12.0f} {r['updates_per_s']:>10.1f} {r['wall_s']:>8.1f}")
    single_sps = sum(r["env_steps_per_s"] for r in singles) / len(singles)
    single_ups = sum(r["updates_per_s"] for r in singles) / len(singles)
    eighty_wall = sum(r["wall_s"] for r in singles) / len(singles) * len(tasks)
    print(f"\nsteady env steps/s: job {best['env_steps_per_s']:.0f} vs single-task runs {single_sps:.0f} "
          f"({best['env_steps_per_s'] / single_sps:.2f}x)")
    print(f"steady updates/s:   job {best['updates_per_s']:.1f} (each over all tasks) vs "
          f"single-task runs {single_ups:.1f} (each for one task)")
    print(f"wall time for {len(tasks)} x {args.budget} env steps: job {best['wall_s']:.0f} s vs {len(tasks)} "
          f"single-task runs {eighty_wall:.0f} s (from the sample) ({eighty_wall / best['wall_s']:.2f}x)")
    if len(job) > 1:
        print("parallel stepping: " + ", ".join(
            f"{w} processes {r['env_steps_per_s'] / job[1]['env_steps_per_s']:.2f}x" for w, r in job.items()))


if __name__ == "__main__":
    main()
