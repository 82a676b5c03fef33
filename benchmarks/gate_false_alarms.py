"""How often does the regression gate call a change that changes nothing a regression?

Splits the 10 published seeds of one BRO agent on one task group into two disjoint subsets of 5
(all 126 splits, each compared in both directions: 252 comparisons) and runs the gate's statistics
(:func:`harness.gate.compare`) on every pair. Both subsets come from the same agent, so every
regression verdict is a false alarm. Prints the rate per agent, task group and step, and overall,
for the shipped defaults and, with --before, for the gate without a tie tolerance and without a
minimum drop (its rules before they existed).

The comparisons share seeds across splits, so they are not independent: the overall rate is a
measured figure, not a binomial estimate with the precision of its count.

Usage (BRO's arrays are read from ../shared/data/bro, see shared/data/README.md):

    python benchmarks/gate_false_alarms.py                  # default: step 1,000,000, 20,000 bootstrap reps
    python benchmarks/gate_false_alarms.py --before --steps 500000 1000000 --reps 5000
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time
from collections import Counter
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from harness import catalog, gate
from harness.scores import ScoreMatrix

BRO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bro"
AGENTS = ("BRO", "BRO_fast")
FIRST_STEP = EVERY = 25_000  # BRO's evaluation grid: row i of an array is step 25,000 (i + 1)


def load(agent: str, step: int) -> dict[str, tuple[tuple[str, ...], NDArray[np.float64]]]:
    """Task group -> (task names, (seeds, tasks) normalised scores at ``step``) for one BRO agent."""
    row = (step - FIRST_STEP) // EVERY
    columns: dict[str, list[tuple[str, NDArray[np.float64]]]] = {}
    for path in sorted((BRO / agent).glob("*.npy")):
        task = catalog.resolve(path.stem)
        columns.setdefault(task.suite, []).append((task.name, task.normalise(np.load(path)[row])))  # (seeds,)
    return {suite: (tuple(name for name, _ in cols), np.stack([values for _, values in cols], axis=1))
            for suite, cols in columns.items()}


def splits(seeds: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every ordered pair (A, B) of disjoint halves of range(seeds)."""
    out = []
    for half in itertools.combinations(range(seeds), seeds // 2):
        rest = tuple(s for s in range(seeds) if s not in half)
        if half < rest:  # each unordered split once, then both directions
            out += [(half, rest), (rest, half)]
    return out


def verdicts(names: tuple[str, ...], scores: NDArray[np.float64], config: gate.GateConfig) -> Counter[str]:
    """The gate's verdicts over every ordered split of the seeds; scores: (seeds, tasks)."""
    counts: Counter[str] = Counter()
    for index, (a, b) in enumerate(splits(scores.shape[0])):
        candidate = ScoreMatrix("A", names, scores[list(a)], None, ())  # (5, tasks)
        baseline = ScoreMatrix("B", names, scores[list(b)], None, ())
        counts[gate.compare(candidate, baseline, dataclasses.replace(config, seed=index)).verdict] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1_000_000], help="evaluation steps to compare at")
    parser.add_argument("--reps", type=int, default=gate.GateConfig().reps, help="bootstrap repetitions")
    parser.add_argument("--before", action="store_true",
                        help="also run the gate without tie tolerance and minimum drop (tie_tolerance 0, min_drop 0)")
    args = parser.parse_args()
    if not BRO.is_dir():
        raise SystemExit(f"published BRO data not found at {BRO} (see shared/data/README.md)")
    configs = {"shipped": gate.GateConfig(reps=args.reps)}
    if args.before:
        configs["before"] = gate.GateConfig(reps=args.reps, tie_tolerance=0.0, min_drop=0.0)
    totals = {name: Counter[str]() for name in configs}
    start = time.perf_counter()
    print(f"{'agent':<9} {'group':<10} {'step':>9} {'config':<8} {'pairs':>5} {'regression':>10} "
          f"{'inconclusive':>12}")
    for agent, step in itertools.product(AGENTS, args.steps):
        for suite, (names, scores) in load(agent, step).items():
            for name, config in configs.items():
                counts = verdicts(names, scores, config)
                totals[name] += counts
                n = sum(counts.values())
                print(f"{agent:<9} {suite:<10} {step:>9,} {name:<8} {n:>5} {counts['regression'] / n:>10.1%} "
                      f"{counts['inconclusive'] / n:>12.1%}", flush=True)
    for name, counts in totals.items():
        n = sum(counts.values())
        print(f"overall ({name}): {counts['regression']} regressions in {n} comparisons of seed halves "
              f"= false-alarm rate {counts['regression'] / n:.2%}; inconclusive {counts['inconclusive'] / n:.2%}")
    print(f"({args.reps:,} bootstrap repetitions; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
