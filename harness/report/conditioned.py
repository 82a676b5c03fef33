"""The reward-conditioned section of a report: scores under each evaluation ψ.

Runs of a reward-conditioned manifest (:mod:`harness.conditioning`) have evaluation points under ψ*
(``nominal``, what the rest of the report reads) and under named held-out ψ (the store's
``curves.psi``). For the selected agents with such runs, the section gives:

- per agent and ψ, the IQM and mean normalised score with confidence intervals, over the tasks
  that have that ψ (each run's final point under it, or its point at the report's step);
- the zero-shot table: each conditioned agent (``variant: reward_conditioned``) beside each
  unconditioned one (trained on ψ* alone) under every held-out ψ, with P(conditioned > baseline);
- P(conditioned > baseline) at the nominal ψ*.

Scores are normalised with each task's catalog normalisation (r_ψ keeps a DMC task's per-step range
[0, 1], so returns stay in [0, 1000]). Each interval draws from its own generator
(:func:`harness.scores.rng` with ``"psi"`` and the names), like the rest of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness import scores, stats
from harness import store as store_mod
from harness.report.build import Estimate
from harness.runfiles import NOMINAL_PSI

NOMINAL = NOMINAL_PSI
MIN_RUNS = 2
"""Runs an agent needs on every task of a ψ for its intervals."""


@dataclass(frozen=True)
class PsiAggregate:
    """One agent under one ψ, over the tasks that have it."""

    agent: str
    psi: str
    tasks: tuple[str, ...]
    runs: int
    iqm: Estimate
    mean: Estimate


@dataclass(frozen=True)
class ZeroShot:
    """A conditioned agent against an unconditioned baseline under one ψ, on the tasks both have it for."""

    psi: str
    conditioned: str
    baseline: str
    tasks: tuple[str, ...]
    conditioned_iqm: Estimate
    baseline_iqm: Estimate
    improvement: Estimate
    """P(conditioned > baseline)."""


@dataclass(frozen=True)
class ConditionedSection:
    aggregates: tuple[PsiAggregate, ...]
    zero_shot: tuple[ZeroShot, ...]
    """Under every held-out ψ, then at ``nominal`` (the probability of improvement at ψ*)."""
    notes: tuple[str, ...]
    """Agents or ψ left out, and why."""


def build(con: Any, labels: Sequence[str], tasks: Sequence[str], step: int | None, seed: int, reps: int,
          level: float, method: stats.Method) -> ConditionedSection | None:
    """The section for agents ``labels`` on ``tasks``; None when none of them has runs evaluated
    under a named ψ."""
    points = store_mod.load_scores(con, labels=labels, tasks=tasks, statuses=("finished",), psi=None)
    conditioned_runs = set(points.run_id[points.psi != NOMINAL])
    points = points[points.run_id.isin(conditioned_runs)]
    if points.empty:
        return None
    points = points[points.step == step] if step is not None else \
        points[points.step == points.groupby(["run_id", "psi"]).step.transform("max")]
    variants = points.groupby("label").variant.first()
    ordered = [label for label in labels if label in variants.index]
    psis = [NOMINAL, *sorted(set(points.psi) - {NOMINAL})]
    notes: list[str] = []

    def matrix(label: str, psi: str, on: Sequence[str]) -> NDArray[np.float64] | None:
        """(runs, tasks) scores, NaN-padded; None with a note when a task has fewer than MIN_RUNS."""
        rows = points[(points.label == label) & (points.psi == psi)]
        columns = [rows.score[rows.task == t].to_numpy(np.float64) for t in on]
        short = [t for t, c in zip(on, columns, strict=True) if len(c) < MIN_RUNS]
        if short or not columns:
            notes.append(f"{label} under {psi}: fewer than {MIN_RUNS} runs on {', '.join(short) or 'any task'}")
            return None
        out = np.full((max(len(c) for c in columns), len(on)), np.nan)
        for j, c in enumerate(columns):
            out[: len(c), j] = c
        return out

    def tasks_of(label: str, psi: str) -> tuple[str, ...]:
        rows = points[(points.label == label) & (points.psi == psi)]
        return tuple(t for t in tasks if t in set(rows.task))

    def aggregates(m: NDArray[np.float64], *names: str) -> tuple[Estimate, Estimate]:
        kernels = [stats.AGGREGATES["iqm"], stats.AGGREGATES["mean"]]
        point, low, high = stats.bootstrap_estimate(
            [stats.check_scores(m, allow_unequal=True, min_runs=MIN_RUNS)],
            lambda s: np.stack([k(s[0]) for k in kernels], axis=-1),
            scores.rng(seed, "psi", *names), reps=reps, level=level, method=method)
        return Estimate(float(point[0]), float(low[0]), float(high[0])), \
            Estimate(float(point[1]), float(low[1]), float(high[1]))

    table = []
    for label in ordered:
        for psi in psis:
            on = tasks_of(label, psi)
            if on and (m := matrix(label, psi, on)) is not None:
                iqm, mean = aggregates(m, label, psi)
                table.append(PsiAggregate(label, psi, on, int(np.sum(~np.isnan(m))), iqm, mean))
    zero_shot = []
    pairs = [(c, b) for c in ordered if variants[c] == "reward_conditioned"
             for b in ordered if variants[b] != "reward_conditioned"]
    for psi in [*psis[1:], NOMINAL]:
        for c, b in pairs:
            on = tuple(t for t in tasks_of(c, psi) if t in tasks_of(b, psi))
            mc, mb = (matrix(x, psi, on) if on else None for x in (c, b))
            if mc is None or mb is None:
                continue
            interval = stats.probability_of_improvement_interval(
                mc, mb, scores.rng(seed, "psi", "improvement", psi, c, b), reps=reps, level=level, method=method,
                allow_unequal=True)
            zero_shot.append(ZeroShot(psi, c, b, on, aggregates(mc, c, psi, *on)[0], aggregates(mb, b, psi, *on)[0],
                                      Estimate(interval.point, interval.low, interval.high)))
    if not pairs:
        notes.append("no pair of a conditioned and an unconditioned agent: no zero-shot table")
    return ConditionedSection(tuple(table), tuple(zero_shot), tuple(dict.fromkeys(notes)))

