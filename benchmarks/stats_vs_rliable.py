"""Time harness.stats against rliable on the same stratified-bootstrap problem.

Random normalised scores for several agents, each (seeds, tasks); for every agent, IQM, mean,
median and optimality gap with 95% stratified-bootstrap percentile intervals, computed by
`harness.stats.bootstrap_intervals` (all four metrics from one set of resamples) and by
`rliable.library.get_interval_estimates` (the four metrics in one aggregate function, as
rliable's examples do). Prints both wall times, the speed ratio, the same for the CPU time of this
process (steadier than wall time on a shared machine; both libraries run single-threaded), our
peak traced memory for one agent, and the largest difference between the two libraries' bounds
(Monte Carlo noise only).

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
    args = parser.parse_args()
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

    start, start_cpu = time.perf_counter(), time.process_time()
    ours = {
        agent: stats.bootstrap_intervals(matrix, stats.AGGREGATES, np.random.default_rng(index), reps=args.reps)
        for index, (agent, matrix) in enumerate(scores.items())
    }
    ours_seconds, ours_cpu = time.perf_counter() - start, time.process_time() - start_cpu

    first_agent = next(iter(scores))
    tracemalloc.start()
    stats.bootstrap_intervals(scores[first_agent], stats.AGGREGATES, np.random.default_rng(0), reps=args.reps)
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
    rliable_seconds = rliable_measured * args.agents / rliable_agents
    rliable_cpu = (time.process_time() - start_cpu) * args.agents / rliable_agents

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
    per_agent = ours_seconds / args.agents
    print(f"harness.stats : {ours_seconds:8.2f} s for {args.agents} agents ({per_agent:.3f} s per agent)")
    per_agent = rliable_measured / rliable_agents
    scaled = "" if rliable_agents == args.agents else f", SCALED from {rliable_measured:.2f} s on {rliable_agents}"
    print(f"rliable       : {rliable_seconds:8.2f} s for {args.agents} agents ({per_agent:.3f} s per agent{scaled})")
    print(f"speed ratio   : {rliable_seconds / ours_seconds:8.1f}x (rliable time / harness.stats time)")
    print(f"CPU time      : {ours_cpu:8.2f} s ours, {rliable_cpu:.2f} s rliable: {rliable_cpu / ours_cpu:.1f}x")
    print(f"peak memory   : {peak_bytes / 2**20:8.1f} MiB traced by tracemalloc during one agent's bootstrap")
    print(f"agreement     : points differ by <= {point_gap:.1e}, interval bounds by <= {bound_gap:.4f}")
    ours_iqm = ours[first_agent]["iqm"]
    theirs = intervals[first_agent][:, 0]
    print(
        f"example       : {first_agent} IQM {ours_iqm.point:.4f}, "
        f"ours [{ours_iqm.low:.4f}, {ours_iqm.high:.4f}], rliable [{theirs[0]:.4f}, {theirs[1]:.4f}]"
    )


if __name__ == "__main__":
    main()
