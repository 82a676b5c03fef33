"""Fidelity: does our BRO reproduce BRO's published curves?

Trains an agent (default ``bro_fast``) through the real runner on DMC tasks for which BRO's own
per-seed curves are in ``../shared/data/bro`` and prints, per task and evaluation step and
aggregated over tasks, our score distribution against the published one at the same steps: means,
the probability that our run beats a published run with its 95% CI, and whether the 95% CIs of the
two means overlap.

BRO evaluated every 25,000 environment steps over 5 episodes; so do we here. On a CPU the budget
that fits is small (the default 50k steps, 3 seeds vmapped, takes hours on two cores at published
widths); pass ``--budget`` and ``--seeds`` to match what the machine affords.

Example:
    python benchmarks/fidelity.py --tasks pendulum-swingup cheetah-run walker-run --budget 50000 --seeds 3
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb
import numpy as np
from rich.console import Console
from rich.table import Table

from harness import catalog, executor, manifest, scores, stats

ROOT = Path(__file__).resolve().parents[1]
BRO_EVERY = 25_000  # BRO's eval_interval: evaluation i (0-based) is at step 25,000 * (i + 1)


def published(data: Path, folder: str, task: str, steps: list[int]) -> np.ndarray:
    """BRO's normalised scores at ``steps``: (seeds, steps). The .npy files are (evaluations, seeds)."""
    curves = np.load(data / "bro" / folder / f"{task}.npy")  # (40, 10)
    rows = [s // BRO_EVERY - 1 for s in steps]
    return catalog.resolve(task).normalise(curves[rows].T)


def mean_interval(x: np.ndarray, rng: np.random.Generator, reps: int) -> stats.Interval:
    """95% percentile bootstrap CI of the mean of a (runs, 1) column."""
    return stats.bootstrap_intervals(x, {"mean": stats.mean_stack}, rng, reps=reps)["mean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="bro_fast", help="our agent (default bro_fast)")
    parser.add_argument("--published", default="BRO_fast", choices=("BRO", "BRO_fast"),
                        help="the published folder to compare with")
    parser.add_argument("--tasks", nargs="+", default=["pendulum-swingup", "cheetah-run", "walker-run"])
    parser.add_argument("--budget", type=int, default=50_000, help="environment steps per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (at least 2: a confidence interval needs 2 runs)")
    parser.add_argument("--results", type=Path, default=Path("results-fidelity"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--reps", type=int, default=20_000, help="bootstrap repetitions")
    parser.add_argument("--override", nargs="*", default=[], help="agent config overrides, key=value")
    args = parser.parse_args()
    if not (args.data / "bro" / args.published).is_dir():
        raise SystemExit(f"no published BRO curves at {args.data / 'bro' / args.published}")
    if args.seeds < 2:
        parser.error(f"--seeds {args.seeds}: a confidence interval of our mean needs at least 2 runs per task")
    if args.budget < BRO_EVERY:
        raise SystemExit(f"--budget must reach the first published evaluation ({BRO_EVERY} steps)")

    console = Console()
    tasks = [catalog.resolve(t).name for t in args.tasks]
    raw = {
        "name": f"fidelity-{args.agent}",
        "description": f"{args.agent} against BRO's published {args.published} curves",
        "tasks": tasks,
        "agents": {args.agent: {}},
        "seeds": args.seeds,
        "budget": args.budget,
        "eval": {"every": BRO_EVERY, "episodes": 5},
    }
    source = Path("benchmarks/fidelity.py")
    for item in args.override:
        manifest.apply_override(raw, f"agents.{args.agent}.{item}", source)
    plan = manifest.validate(raw, source)
    started = time.perf_counter()
    outcome = executor.execute(plan, args.results, workers=1, console=console)
    if outcome.failed:
        raise SystemExit(f"training failed: {outcome.failed}")
    console.print(f"trained in {time.perf_counter() - started:,.0f} s")

    steps = list(range(BRO_EVERY, args.budget + 1, BRO_EVERY))
    with duckdb.connect(str(args.results / "harness.duckdb"), read_only=True) as con:
        selection = scores.load(con, tasks=tasks, labels=[args.agent])
    rng = np.random.default_rng(0)
    table = Table(title=f"{args.agent} (ours, {args.seeds} seeds) vs published {args.published} (10 seeds), "
                        "normalised scores (DMC return / 1000)")
    for col in ("task", "step", "ours mean [95% CI]", "published mean [95% CI]", "P(ours > published) [95% CI]",
                "CIs overlap"):
        table.add_column(col)
    ours_all, theirs_all = [], []
    for step in steps:
        ours = scores.at_step(selection, args.agent, tasks, step=step).scores  # (seeds, tasks)
        theirs = np.stack([published(args.data, args.published, t.split("/", 1)[1], [step])[:, 0] for t in tasks],
                          axis=1)  # (10, tasks)
        ours_all.append(ours)
        theirs_all.append(theirs)
        for j, task in enumerate(tasks):
            a, b = mean_interval(ours[:, [j]], rng, args.reps), mean_interval(theirs[:, [j]], rng, args.reps)
            poi = stats.probability_of_improvement_interval(ours[:, [j]], theirs[:, [j]], rng, reps=args.reps)
            overlap = a.low <= b.high and b.low <= a.high
            table.add_row(task, f"{step:,}", _fmt(a), _fmt(b), _fmt(poi), "yes" if overlap else "NO")
    for k, step in enumerate(steps):
        iqm_a = stats.bootstrap_intervals(ours_all[k], {"iqm": stats.iqm_stack}, rng, reps=args.reps)["iqm"]
        iqm_b = stats.bootstrap_intervals(theirs_all[k], {"iqm": stats.iqm_stack}, rng, reps=args.reps)["iqm"]
        poi = stats.probability_of_improvement_interval(ours_all[k], theirs_all[k], rng, reps=args.reps)
        overlap = iqm_a.low <= iqm_b.high and iqm_b.low <= iqm_a.high
        table.add_row("[bold]all tasks (IQM)[/]", f"{step:,}", _fmt(iqm_a), _fmt(iqm_b), _fmt(poi),
                      "yes" if overlap else "NO")
    console.print(table)


def _fmt(interval: stats.Interval) -> str:
    return f"{interval.point:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


if __name__ == "__main__":
    main()
