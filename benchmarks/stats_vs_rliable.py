"""Time harness.stats against rliable on the same stratified-bootstrap problem.

Random normalised scores for several agents, each (seeds, tasks); for every agent, IQM, mean,
median and optimality gap with 95% stratified-bootstrap percentile intervals, computed by
`harness.stats.bootstrap_intervals` (all four metrics from one set of resamples) and by
`rliable.library.get_interval_estimates` (the four metrics in one aggregate function, as
rliable's examples do). harness.stats runs twice: on one thread and on `--workers` threads (default:
the cores this process may use); the two must give bit-identical intervals. rliable runs on one
thread.

Prints, for each run, wall time and CPU time (the CPU time of all of this process's threads, so
it counts the work of every thread; steadier than wall time on a shared machine), and the speed
ratios: wall time against wall time, and CPU time against CPU time. harness.stats takes about a
second, so a passing slowdown of the machine would move its figure a lot: it runs `--repeats`
times before rliable and as many after, and the median of those times counts (rliable's minute
averages over such noise by itself). A first call, outside the timing, compiles the kernels or
loads them from numba's cache. Then our peak traced memory for one agent (with `--workers`
threads) and the largest difference between the two libraries' bounds (Monte Carlo noise only).

    python benchmarks/stats_vs_rliable.py                       # 10 seeds x 300 tasks x 5 agents, 50k reps
    python benchmarks/stats_vs_rliable.py --rliable-agents 1    # time rliable on one agent, scale up
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np

from harness import stats

METRICS = ("iqm", "mean", "median", "optimality_gap")


def _rliable_aggregates(scores: np.ndarray) -> np.ndarray:
    """The four metrics with rliable's own functions: (runs, tasks) -> (4,)."""
    from rliable import metrics

    return np.array(
        [
            metrics.aggregate_iqm(scores),
            metrics.aggregate_mean(scores),
            metrics.aggregate_median(scores),
            metrics.aggregate_optimality_gap(scores),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=50_000, help="bootstrap repetitions (default 50000)")
    parser.add_argument("--seeds", type=int, default=10, help="runs per task (default 10)")
    parser.add_argument("--tasks", type=int, default=300, help="tasks (default 300)")
    parser.add_argument("--agents", type=int, default=5, help="agents (default 5)")
    parser.add_argument(
        "--rliable-agents",
        type=int,
        default=None,
        help="time rliable on only this many agents and scale its time to all agents (default: all)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="threads for harness.stats (default: the cores this process may use)"
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs of harness.stats before rliable and after (default 5)"
    )
    args = parser.parse_args()
    workers = stats.available_cores() if args.workers is None else args.workers
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    rliable_agents = args.agents if args.rliable_agents is None else min(args.rliable_agents, args.agents)

    data_rng = np.random.default_rng(20240601)
    scores = {  # agent -> (seeds, tasks), normalised scores around 0.3 .. 0.9
        f"agent{index}": np.clip(
            data_rng.normal(0.3 + 0.6 * index / max(args.agents - 1, 1), 0.25, size=(args.seeds, args.tasks)),
            0.0,
            1.5,
        )
        for index in range(args.agents)
    }
    size = f"{args.agents} agents x {args.seeds} seeds x {args.tasks} tasks"
    print(f"problem       : {size}, {args.reps} repetitions, 95% stratified percentile intervals")
    print(f"timing        : harness.stats median of {2 * args.repeats} runs (half before rliable, half after), "
          "rliable one run")

    times: dict[int, list[tuple[float, float]]] = {1: [], workers: []}  # threads -> (wall, CPU) per run

    def timed_ours(threads: int) -> dict[str, dict[str, stats.Interval]]:
        for _ in range(args.repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            intervals = {
                agent: stats.bootstrap_intervals(
                    matrix, stats.AGGREGATES, np.random.default_rng(index), reps=args.reps, workers=threads
                )
                for index, (agent, matrix) in enumerate(scores.items())
            }
            times[threads].append((time.perf_counter() - start, time.process_time() - start_cpu))
        return intervals

    for matrix in scores.values():  # warm-up outside the timing: imports, cached codebooks
        stats.bootstrap_intervals(matrix, stats.AGGREGATES, np.random.default_rng(0), reps=100, workers=1)
    single = timed_ours(1)
    ours = timed_ours(workers)
    if ours != single:
        raise SystemExit(f"harness.stats gave different intervals on 1 and {workers} threads")

    first_agent = next(iter(scores))
    tracemalloc.start()
    stats.bootstrap_intervals(
        scores[first_agent], stats.AGGREGATES, np.random.default_rng(0), reps=args.reps, workers=workers
    )
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    from rliable import library

    warnings.filterwarnings("ignore", category=FutureWarning, module="arch")  # arch's random_state notice

    timed = dict(list(scores.items())[:rliable_agents])
    start, start_cpu = time.perf_counter(), time.process_time()
    points, intervals = library.get_interval_estimates(
        timed, _rliable_aggregates, reps=args.reps, random_state=np.random.RandomState(0)
    )
    rliable_measured = time.perf_counter() - start
    rliable_measured_cpu = time.process_time() - start_cpu
    timed_ours(1)  # again after rliable: the medians span the machine's state over the whole run
    timed_ours(workers)
    single_seconds, single_cpu = np.median(times[1], axis=0)
    ours_seconds, ours_cpu = np.median(times[workers], axis=0)
    rliable_seconds = rliable_measured * args.agents / rliable_agents
    rliable_cpu = rliable_measured_cpu * args.agents / rliable_agents

    point_gap = max(
        abs(ours[agent][metric].point - points[agent][index]) for agent in timed for index, metric in enumerate(METRICS)
    )
    bound_gap = max(
        max(
            abs(ours[agent][metric].low - intervals[agent][0, index]),
            abs(ours[agent][metric].high - intervals[agent][1, index]),
        )
        for agent in timed
        for index, metric in enumerate(METRICS)
    )
    agents = args.agents
    scaled = "" if rliable_agents == agents else f", SCALED from {rliable_measured:.2f} s on {rliable_agents} agent(s)"
    many = f"{workers} threads" if workers > 1 else "1 thread"
    print(f"harness.stats : 1 thread   wall {single_seconds:6.2f} s ({single_seconds / agents:.3f} s per agent), "
          f"CPU {single_cpu:6.2f} s ({single_cpu / agents:.3f} s per agent)")
    print(f"harness.stats : {many:10s} wall {ours_seconds:6.2f} s ({ours_seconds / agents:.3f} s per agent), "
          f"CPU {ours_cpu:6.2f} s ({ours_cpu / agents:.3f} s per agent); intervals bit-identical to 1 thread")
    print(f"rliable       : 1 thread   wall {rliable_seconds:6.2f} s ({rliable_seconds / agents:.3f} s per agent), "
          f"CPU {rliable_cpu:6.2f} s{scaled}")
    print(f"wall ratio    : {rliable_seconds / ours_seconds:6.1f}x with {many}, "
          f"{rliable_seconds / single_seconds:.1f}x with 1 thread (rliable wall time / harness.stats wall time)")
    print(f"CPU ratio     : {rliable_cpu / ours_cpu:6.1f}x with {many}, "
          f"{rliable_cpu / single_cpu:.1f}x with 1 thread (rliable CPU time / harness.stats CPU time, all threads)")
    print(f"peak memory   : {peak_bytes / 2**20:6.1f} MiB traced by tracemalloc during one agent's bootstrap ({many})")
    print(f"agreement     : points differ by <= {point_gap:.1e}, interval bounds by <= {bound_gap:.4f}")
    ours_iqm = ours[first_agent]["iqm"]
    theirs = intervals[first_agent][:, 0]
    print(
        f"example       : {first_agent} IQM {ours_iqm.point:.4f}, "
        f"ours [{ours_iqm.low:.4f}, {ours_iqm.high:.4f}], rliable [{theirs[0]:.4f}, {theirs[1]:.4f}]"
    )


if __name__ == "__main__":
    main()
