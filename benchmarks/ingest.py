"""Ingest: its cost against the length of a shard, and its effect on training workers' speed.

Part 1 times the ingest of one run folder into a real DuckDB store, for shards of several lengths:
the first ingest (a store rebuilt from the shards reads the whole shard), an ingest after 300 more
lines (about what two seconds of SAC training log), and, for comparison, what every ingest cost
before the store tracked how much of each shard it holds (re-reading the whole shard and inserting
every point with ``ON CONFLICT DO NOTHING``).

Part 2 trains a small SAC job in each of two worker processes (as `harness run --workers 2` does),
while this process ingests a growing shard in one of these ways, and prints the workers' env
steps/s (the mean of their ``sys/env_steps_per_s`` after the first evaluation) for each:
- ``none``: no ingest;
- ``back-to-back``: one ingest after another, at the coordinator's priority (the worst case);
- ``back-to-back, nice +10``: the same in a thread of lower priority, as the coordinator runs them;
- ``coordinator``: at its pace and priority (``INGEST_EVERY_S`` apart at least, and ``INGEST_SHARE``
  times the last ingest's time; the figures below were taken at 2 s and 9x, before they became 5 s
  and 49x).

Measured on 2 cores shared with other work (load average 6 to 12, so within ~15%): an ingest of
300 new lines took 0.15-0.23 s whatever the shard's length (10,000 to 500,000 lines), against
0.27 s, 1.2 s and 6.3 s for the previous whole-shard ingest; workers trained at 226 env steps/s
with no ingest, 150 with back-to-back ingests, 157 with back-to-back ingests at nice +10, and 239
with the coordinator's pace and priority (6 ingests in the run).

Example:
    python benchmarks/ingest.py --lines 10000,100000,500000 --budget 6000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import yaml

from harness import executor, manifest, runfiles, worker
from harness import store as store_mod

METRICS = ("agent/critic_loss", "agent/actor_loss", "agent/temperature", "agent/q_mean", "agent/critic_grad_norm",
           "train/episode_return")


def write_run(run_dir: Path, run_id: str) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"run_id": run_id, "source": "harness", "label": "sac", "agent": "sac", "task": "dmc/cartpole-balance",
              "seed": 0, "status": "running"}
    (run_dir / runfiles.SHARD_RUN).write_text(json.dumps(record))


def append_lines(run_dir: Path, first: int, n: int) -> int:
    """Append ``n`` curve lines (six metrics a step, 20 steps apart) from line ``first``; returns the next."""
    with (run_dir / runfiles.SHARD_CURVES).open("a") as f:
        for i in range(first, first + n):
            step = 20 * (i // len(METRICS))
            f.write(json.dumps({"metric": METRICS[i % len(METRICS)], "step": step, "value": 0.001 * i}) + "\n")
    return first + n


def previous_ingest(store: store_mod.Store, run_dir: Path) -> None:
    """What an ingest did before: the whole shard read and inserted, existing keys left alone."""
    run = runfiles.read_run(run_dir)
    assert run is not None
    points, _ = store_mod.read_points(run_dir)
    with store.transaction() as con:
        store_mod.upsert_run(con, run)
        store_mod.insert_points(con, points.assign(run_id=run["run_id"]))


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def part1(lines: list[int], tmp: Path) -> None:
    print("shard lines   shard MB   first ingest s   +300 lines s   before: +300 lines s")
    for n in lines:
        folder = tmp / f"p1-{n}"
        run = folder / "runs" / "r"
        write_run(run, "r")
        nxt = append_lines(run, 0, n)
        store = store_mod.Store(folder / "harness.duckdb")
        store.ensure()
        first = timed(store_mod.ingest_run_dirs, store, [run])
        increments, before = [], []
        for _ in range(5):
            nxt = append_lines(run, nxt, 300)
            increments.append(timed(store_mod.ingest_run_dirs, store, [run]))
        old = store_mod.Store(folder / "previous.duckdb")
        old.ensure()
        previous_ingest(old, run)
        for _ in range(3):
            nxt = append_lines(run, nxt, 300)
            before.append(timed(previous_ingest, old, run))
        size = (run / runfiles.SHARD_CURVES).stat().st_size / 1e6
        print(f"{n:>11,}   {size:8.1f}   {first:14.3f}   {statistics.median(increments):12.3f}   "
              f"{statistics.median(before):20.3f}")


def train(manifest_path: Path, index: int, results: Path) -> None:
    """A worker: train job ``index`` of the manifest (the executor's worker set-up, then the backend)."""
    worker.setup_local_worker(None)
    from harness import backends

    plan = manifest.load(manifest_path, [])
    backends.train(plan.jobs[index], results)


def workers_sps(results: Path) -> float:
    """Mean env steps/s of every run after its first evaluation (compilation left out)."""
    values = []
    for shard in (results / "runs").glob(f"*/{runfiles.SHARD_CURVES}"):
        points = [json.loads(line) for line in shard.read_text().splitlines()]
        values += [p["value"] for p in points if p["metric"] == "sys/env_steps_per_s"][1:]
    return statistics.mean(values)


def part2(mode: str, budget: int, tmp: Path) -> None:
    folder = tmp / f"p2-{mode.replace(' ', '').replace(',', '-').replace('+', '')}"
    folder.mkdir()
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ingest-bench", "tasks": ["dmc/cartpole-balance"], "seeds": 2, "budget": budget,
        "agents": {"sac": {"hidden_dims": [64, 64], "batch_size": 64, "warmup_steps": 500},
                   "sac-b": {"algo": "sac", "hidden_dims": [64, 64], "batch_size": 64, "warmup_steps": 500}},
        "eval": {"every": 1000, "episodes": 1}, "log_every": 20,
    }))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=train, args=(path, i, folder / "results")) for i in range(2)]
    for proc in procs:
        proc.start()
    run = folder / "ingested" / "r"
    write_run(run, "r")
    nxt = append_lines(run, 0, 100_000)
    store = store_mod.Store(folder / "harness.duckdb")
    store_mod.ingest_run_dirs(store, [run])
    took: list[float] = []

    def ingest() -> None:
        nonlocal nxt
        nxt = append_lines(run, nxt, 300)
        took.append(timed(store_mod.ingest_run_dirs, store, [run]))

    def lowered() -> None:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + executor.INGEST_NICE)
        ingest()

    next_at = 0.0
    while any(p.is_alive() for p in procs):
        if mode == "none":
            time.sleep(0.5)
        elif mode == "back-to-back":
            ingest()
        elif time.monotonic() >= next_at:
            thread = threading.Thread(target=lowered)
            thread.start()
            thread.join()
            if mode == "coordinator":
                next_at = time.monotonic() + max(executor.INGEST_EVERY_S - took[-1], executor.INGEST_SHARE * took[-1])
        else:
            time.sleep(0.05)
    for proc in procs:
        proc.join()
    ingests = f"{len(took)} ingests, median {statistics.median(took) * 1000:.0f} ms" if took else "no ingest"
    print(f"{mode:<24} workers {workers_sps(folder / 'results'):7.0f} env steps/s   ({ingests})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", default="10000,100000,500000", help="Shard lengths of part 1 (comma-separated).")
    parser.add_argument("--budget", type=int, default=6000, help="Env steps of each worker's job in part 2.")
    parser.add_argument("--skip-part2", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        part1([int(n) for n in args.lines.split(",")], Path(tmp))
        if not args.skip_part2:
            for mode in ("none", "back-to-back", "back-to-back, nice +10", "coordinator"):
                part2(mode, args.budget, Path(tmp))


if __name__ == "__main__":
    main()
