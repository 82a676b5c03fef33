"""The regression gate: is a candidate agent significantly worse than a baseline?

``harness gate`` is a thin layer over :func:`run_gate` (store -> :class:`GateResult`),
:func:`write_markdown` and :func:`write_json`. :func:`compare` holds the statistics and works on
two ``(runs, tasks)`` score matrices, so it can be checked on synthetic data.

How the verdict is reached (every threshold is a key of :class:`GateConfig`):

- Candidate and baseline runs are independent seeds, so the stratified bootstrap resamples each
  side's runs independently within each task. One bootstrap gives intervals for the IQM and mean
  of each side, their differences (candidate - baseline) and P(candidate > baseline).
- With few seeds the percentile bootstrap is too narrow: a task mean's bootstrap variance is
  (n - 1) / n of the usual estimate and the normal quantile ignores that the spread is itself
  estimated. The intervals are therefore "expanded" (Hesterberg 2015): the bootstrap quantiles are
  taken at the level whose normal quantile is ``sqrt(n / (n - 1)) * t(1 - alpha / 2, df)``, with
  n the fewest runs of a task on either side and df the pooled degrees of freedom
  (the sum over tasks of n_candidate - 1 + n_baseline - 1). The tables give this level.
- Ties: two scores within ``tie_tolerance`` of each other (normalised) are a tie in every rule.
  P(candidate > baseline) counts such a pair 1/2, and the drops the other rules tolerate
  (``iqm_tolerance``, ``task_tolerance``, ``min_drop`` on the IQM) may not be smaller than it, so
  a candidate that differs from the baseline by floating-point noise is never worse.
- Significance: a rule of ``rules`` fires. ``iqm``: the upper bound of the IQM difference is
  below ``-iqm_tolerance``. ``poi``: the upper bound of P(candidate > baseline) is below
  ``poi_threshold``. Each rule is a one-sided test at (1 - level) / 2, so the false-alarm rate of
  the two together stays below 1 - level.
- Effect size: a significant drop is a regression only when the point estimate of ``effect``
  (the IQM difference, or P(candidate > baseline) - 0.5) is below ``-min_drop``; the verdict
  reports the effect with its interval. A significant but smaller drop passes, with a note.
- Per task: a one-sided Welch t-test of "the candidate's mean is lower than the baseline's by more
  than ``task_tolerance``", with a Holm (default) or Bonferroni correction over tasks at
  (1 - level) / 2. Welch, because a task has few runs and the two sides need not share a
  variance; Holm, because it controls the family-wise error like Bonferroni and is never less
  powerful. Flagged tasks are listed; they decide the verdict only with ``fail_on_task_drop``.
- Inconclusive: a task has fewer than ``min_seeds`` runs on a side, fewer than ``min_tasks``
  tasks can be compared, or the gate is under-powered: the half-width h of the IQM difference's
  interval is larger than h* = z (min_effect - iqm_tolerance) / (z + z_power), the half-width at
  which a true drop of ``min_effect`` is caught with probability ``power`` (z: the interval's
  normal quantile, normal approximation), and the interval does not already rule out a drop of
  ``min_effect``. The seeds needed come from the observed spread: n * (h / h*)^2.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as validated_dataclass
from scipy import stats as scipy_stats
from scipy.special import ndtr, ndtri

from harness import scores, textfile
from harness.errors import InputError
from harness.stats import Interval, bootstrap_estimate, check_scores, iqm_stack, mean_stack
from harness.stats import probability_of_improvement_stack as poi_stack
from harness.store import Store
from harness.textfile import short_repr

Rule = Literal["iqm", "poi"]
EffectMeasure = Literal["iqm", "poi"]
Correction = Literal["holm", "bonferroni"]
Verdict = Literal["regression", "pass", "inconclusive"]


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class GateConfig:
    """Thresholds of the regression gate (ci/gate.yaml); scores are normalised (DMC: return / 1000)."""

    level: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    """Confidence level of the intervals; each regression rule is a one-sided test at (1 - level) / 2."""
    reps: Annotated[int, Field(ge=100)] = 20_000
    """Bootstrap repetitions."""
    seed: Annotated[int, Field(ge=0)] = 0
    """Seed of the bootstrap's random generator: the same data and seed give the same numbers."""
    rules: Annotated[tuple[Rule, ...], Field(min_length=1)] = ("iqm", "poi")
    """Aggregate rules that can declare a regression: 'iqm' (IQM difference), 'poi' (P(candidate > baseline))."""
    iqm_tolerance: Annotated[float, Field(ge=0.0)] = 0.02
    """Drop in IQM that is tolerated: 'iqm' fires when the whole interval of the difference is below -tolerance."""
    poi_threshold: Annotated[float, Field(gt=0.0, le=0.5)] = 0.5
    """'poi' fires when the whole interval of P(candidate > baseline) is below this value."""
    tie_tolerance: Annotated[float, Field(ge=0.0)] = 0.0005
    """Normalised scores within this distance of each other are ties in every rule (half a DMC return point)."""
    effect: EffectMeasure = "iqm"
    """Effect size a regression must exceed: 'iqm' (IQM difference) or 'poi' (P(candidate > baseline) - 0.5)."""
    min_drop: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.02
    """A significant drop is a regression only when the effect's point estimate is below -min_drop."""
    min_effect: Annotated[float, Field(gt=0.0)] = 0.1
    """Smallest IQM drop the gate must be able to catch; below that power the verdict is inconclusive."""
    power: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.8
    """Probability with which a drop of min_effect must be caught."""
    min_seeds: Annotated[int, Field(ge=2)] = 5
    """Fewest runs per task on each side for a verdict (with fewer, the bootstrap cannot hold its level)."""
    min_tasks: Annotated[int, Field(ge=1)] = 1
    """Fewest tasks with enough runs on both sides for a verdict."""
    task_tolerance: Annotated[float, Field(ge=0.0)] = 0.02
    """Drop of a task's mean score that is tolerated before the task is flagged."""
    task_correction: Correction = "holm"
    """Multiple-testing correction of the per-task tests: 'holm' or 'bonferroni'."""
    fail_on_task_drop: bool = False
    """Declare a regression when a single task is flagged, even if the aggregates are not worse."""
    inconclusive_exit_code: Annotated[int, Field(ge=0, le=125)] = 0
    """Exit code of an inconclusive verdict (0: a warning only); 2 is reserved for bad input."""
    align: scores.AlignMethod = "nearest"
    """How a run's score at --step is found: the nearest evaluation within step_tolerance, or interpolation."""
    step_tolerance: Annotated[int, Field(ge=0)] = 0
    """Largest distance in steps to the nearest evaluation point (align: nearest)."""

    def __post_init__(self) -> None:
        if self.min_effect <= self.iqm_tolerance:
            raise ValueError(f"min_effect ({self.min_effect}) must be larger than iqm_tolerance "
                             f"({self.iqm_tolerance}): a drop within the tolerance is never a regression")
        if self.effect == "iqm" and self.min_drop >= self.min_effect:
            raise ValueError(f"min_drop ({self.min_drop}) must be smaller than min_effect ({self.min_effect}) "
                             "with effect: iqm: a drop of min_effect must count as a regression")
        floors = {"iqm_tolerance": self.iqm_tolerance, "task_tolerance": self.task_tolerance}
        if self.effect == "iqm":
            floors["min_drop"] = self.min_drop
        for key, value in floors.items():
            if value < self.tie_tolerance:
                raise ValueError(f"{key} ({value}) must be at least tie_tolerance ({self.tie_tolerance}): "
                                 "a difference within the tie tolerance is a tie")
        if self.inconclusive_exit_code == 2:
            raise ValueError("inconclusive_exit_code: 2 is reserved for bad input; use 0, 1 or another code")
        if len(set(self.rules)) != len(self.rules):
            raise ValueError(f"rules lists a rule twice: {list(self.rules)}")


def load_config(path: Path) -> GateConfig:
    """Read and validate a gate config; InputError names the file, the key and what was expected."""
    if not path.is_file():
        raise InputError(f"{path}: no such gate config (ci/gate.yaml is the documented example)")
    raw = textfile.load_yaml(textfile.read_text(path, "gate config"), str(path))
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping of keys (level, reps, ...), got {type(raw).__name__}")
    return _validate(raw, str(path))


def with_overrides(config: GateConfig, where: str, **overrides: Any) -> GateConfig:
    """``config`` with some keys replaced (e.g. from the command line), validated again.

    InputError names ``where`` (e.g. the option) and the key when the result is not a valid config.
    """
    return _validate({**dataclasses.asdict(config), **overrides}, where)


def _validate(raw: dict[str, Any], source: str) -> GateConfig:
    """A GateConfig from a mapping of keys; InputError names ``source``, the key and what was expected."""
    try:
        return TypeAdapter(GateConfig).validate_python(raw)
    except ValidationError as exc:
        keys = ", ".join(f.name for f in dataclasses.fields(GateConfig))
        lines = [f"{source}: {exc.error_count()} problem(s) in the gate config:"]
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "(top level)"
            if err["type"] == "unexpected_keyword_argument":
                lines.append(f"  {where}: unknown key; valid keys: {keys}")
            else:
                lines.append(f"  {where}: {err['msg'].removeprefix('Value error, ')} (got {short_repr(err['input'])})")
        raise InputError("\n".join(lines)) from None


# ----------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class AggregateComparison:
    """An aggregate of each side and their difference (candidate - baseline), with intervals."""

    name: str
    candidate: Interval
    baseline: Interval
    difference: Interval


@dataclass(frozen=True)
class Effect:
    """How large the change is: ``value`` is the IQM difference (candidate - baseline) or
    P(candidate > baseline) - 0.5, with its interval; ``large``: its point is below -min_drop."""

    measure: EffectMeasure
    value: Interval
    min_drop: float
    large: bool


@dataclass(frozen=True)
class TaskComparison:
    """One task: the runs of each side and the one-sided Welch test of a drop.

    The statistics are None when a side has fewer than 2 runs. ``low``/``high`` are the Welch
    interval of the mean difference at the gate's level; ``p_adjusted`` is corrected over tasks.
    """

    task: str
    candidate_scores: tuple[float, ...]
    baseline_scores: tuple[float, ...]
    mean_candidate: float | None = None
    mean_baseline: float | None = None
    difference: float | None = None
    se: float | None = None
    df: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    flagged: bool = False


@dataclass(frozen=True)
class PowerEstimate:
    """Is the IQM difference's interval narrow enough, and how many seeds would make it so.

    ``seeds``: the fewest runs of a task on either side; ``seeds_needed``: runs per task and side
    for a decision (at least min_seeds); ``extra_seeds`` = seeds_needed - seeds. ``underpowered``:
    the half-width is above the target and the interval does not rule out a drop of min_effect;
    it makes the verdict inconclusive only when the result is not a regression.
    """

    half_width: float | None
    target_half_width: float | None
    underpowered: bool
    seeds: int
    seeds_needed: int
    extra_seeds: int


@dataclass(frozen=True)
class GateResult:
    """Everything the gate computed and decided; :func:`to_dict` gives it as plain JSON data."""

    candidate: str
    baseline: str
    step: int | None
    config: GateConfig
    tasks: tuple[str, ...]
    per_task: tuple[TaskComparison, ...]
    interval_level: float | None
    iqm: AggregateComparison | None
    mean: AggregateComparison | None
    poi: Interval | None
    fired: tuple[str, ...]
    improvement: tuple[str, ...]
    power: PowerEstimate
    verdict: Verdict
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()
    exclusions: tuple[scores.Exclusion, ...] = ()
    effect: Effect | None = None
    """None when no task could be compared."""

    @property
    def exit_code(self) -> int:
        return {"regression": 1, "pass": 0, "inconclusive": self.config.inconclusive_exit_code}[self.verdict]

    @property
    def flagged(self) -> tuple[TaskComparison, ...]:
        return tuple(t for t in self.per_task if t.flagged)


# ----------------------------------------------------------------------------------------------
# Statistics


def compare(candidate: scores.ScoreMatrix, baseline: scores.ScoreMatrix, config: GateConfig) -> GateResult:
    """The gate's statistics and verdict for two score matrices over the same tasks.

    candidate.scores: (runs_c, tasks), baseline.scores: (runs_b, tasks), NaN = missing run. A
    task with fewer than 2 runs on a side is kept out of the statistics (and makes the verdict
    inconclusive through min_seeds).
    """
    if candidate.tasks != baseline.tasks:
        raise InputError(f"candidate tasks {candidate.tasks} and baseline tasks {baseline.tasks} differ")
    if not candidate.tasks:
        raise InputError("no tasks to compare")
    tasks = candidate.tasks
    n_c, n_b = candidate.runs_per_task, baseline.runs_per_task  # (tasks,) each
    usable = (n_c >= 2) & (n_b >= 2)  # (tasks,)
    alpha = 1.0 - config.level
    per_task = _task_tests(candidate.scores, baseline.scores, tasks, usable, config)
    reasons = [f"{task}: {a} candidate and {b} baseline run(s); at least min_seeds = {config.min_seeds} needed"
               for task, a, b in zip(tasks, n_c, n_b, strict=True) if min(a, b) < config.min_seeds]
    if int(usable.sum()) < config.min_tasks:
        reasons.append(f"{int(usable.sum())} task(s) with at least 2 runs on both sides; "
                       f"at least min_tasks = {config.min_tasks} needed")
    seeds = int(min(n_c[usable].min(), n_b[usable].min())) if usable.any() else int(np.minimum(n_c, n_b).min())
    notes: list[str] = []
    if candidate.label == baseline.label:
        notes.append("candidate and baseline are the same label: its runs are compared with themselves")
    if not usable.any():
        power = PowerEstimate(None, None, False, seeds, max(seeds, config.min_seeds),
                              max(seeds, config.min_seeds) - seeds)
        return GateResult(candidate.label, baseline.label, candidate.step, config, tasks, per_task, None, None,
                          None, None, (), (), power, "inconclusive", tuple(reasons), tuple(notes),
                          exclusions=candidate.exclusions + baseline.exclusions)

    c = _drop_empty_rows(candidate.scores[:, usable])  # (runs_c, usable tasks)
    b = _drop_empty_rows(baseline.scores[:, usable])  # (runs_b, usable tasks)
    df = float(np.sum(n_c[usable] - 1) + np.sum(n_b[usable] - 1))
    z = math.sqrt(seeds / (seeds - 1)) * float(scipy_stats.t.ppf(1.0 - alpha / 2.0, df))
    interval_level = float(2.0 * ndtr(z) - 1.0)
    tail_reps = (1.0 - interval_level) / 2.0 * config.reps
    if tail_reps < 20:
        notes.append(f"only {tail_reps:.0f} bootstrap replicates lie beyond each interval bound; "
                     "raise reps for stable bounds")
    iqm_cmp, mean_cmp, poi = _aggregates(c, b, interval_level, config)

    fired: list[str] = []
    improvement: list[str] = []
    if "iqm" in config.rules:
        if iqm_cmp.difference.high < -config.iqm_tolerance:
            fired.append("iqm")
        if iqm_cmp.difference.low > config.iqm_tolerance:
            improvement.append("iqm")
    if "poi" in config.rules:
        if poi.high < config.poi_threshold:
            fired.append("poi")
        if poi.low > 1.0 - config.poi_threshold:
            improvement.append("poi")
    if config.fail_on_task_drop and any(t.flagged for t in per_task):
        fired.append("tasks")
    effect = _effect(iqm_cmp, poi, config)
    # A significant aggregate drop is a regression only when it is large enough; a flagged task
    # (fail_on_task_drop) was already tested against task_tolerance.
    regression = "tasks" in fired or (effect.large and any(rule in fired for rule in ("iqm", "poi")))

    half_width = (iqm_cmp.difference.high - iqm_cmp.difference.low) / 2.0
    target = z * (config.min_effect - config.iqm_tolerance) / (z + float(ndtri(config.power)))
    underpowered = half_width > target and iqm_cmp.difference.low < -config.min_effect
    needed = max(config.min_seeds, math.ceil(seeds * (half_width / target) ** 2) if underpowered else seeds)
    power = PowerEstimate(half_width, target, underpowered, seeds, needed, needed - seeds)

    verdict: Verdict
    if reasons:
        verdict = "inconclusive"
    elif regression:
        verdict = "regression"
    elif underpowered:
        verdict = "inconclusive"
        reasons.append(
            f"the IQM difference's interval is +/-{half_width:.3f} wide; a drop of min_effect = "
            f"{config.min_effect:g} is caught with power {config.power:g} only below +/-{target:.3f}, and the "
            f"interval does not rule such a drop out")
    else:
        verdict = "pass"
    return GateResult(candidate.label, baseline.label, candidate.step, config, tasks, per_task, interval_level,
                      iqm_cmp, mean_cmp, poi, tuple(fired), tuple(improvement), power, verdict, tuple(reasons),
                      tuple(notes), exclusions=candidate.exclusions + baseline.exclusions, effect=effect)


def _effect(iqm_cmp: AggregateComparison, poi: Interval, config: GateConfig) -> Effect:
    """The effect size of ``config.effect`` with its interval, and whether it is a drop larger than min_drop."""
    if config.effect == "iqm":
        value = iqm_cmp.difference
    else:
        value = dataclasses.replace(poi, point=poi.point - 0.5, low=poi.low - 0.5, high=poi.high - 0.5)
    return Effect(config.effect, value, config.min_drop, value.point < -config.min_drop)


def _drop_empty_rows(matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """(runs, tasks) without the rows that are NaN in every task."""
    return matrix[~np.all(np.isnan(matrix), axis=1)]


def _aggregates(c: NDArray[np.float64], b: NDArray[np.float64], level: float,
                config: GateConfig) -> tuple[AggregateComparison, AggregateComparison, Interval]:
    """IQM and mean of each side, their differences and P(c > b), all from one bootstrap.

    c: (runs_c, tasks), b: (runs_b, tasks), at least 2 runs per task each.
    """
    c = check_scores(c, allow_unequal=True, min_runs=2, name="candidate")
    b = check_scores(b, allow_unequal=True, min_runs=2, name="baseline")

    def statistic(stacks: Sequence[NDArray[np.float64]]) -> NDArray[np.float64]:
        x, y = stacks  # (reps, runs_c, tasks), (reps, runs_b, tasks)
        iqm_x, iqm_y, mean_x, mean_y = iqm_stack(x), iqm_stack(y), mean_stack(x), mean_stack(y)  # (reps,) each
        poi = poi_stack(x, y, tie_tolerance=config.tie_tolerance)  # (reps,)
        return np.stack([iqm_x, iqm_y, iqm_x - iqm_y, mean_x, mean_y, mean_x - mean_y, poi], axis=-1)

    rng = np.random.default_rng(config.seed)
    point, low, high = bootstrap_estimate([c, b], statistic, rng, reps=config.reps, level=level)
    intervals = [Interval(float(p), float(lo), float(hi), "percentile", level, config.reps)
                 for p, lo, hi in zip(point, low, high, strict=True)]
    return (AggregateComparison("iqm", *intervals[0:3]), AggregateComparison("mean", *intervals[3:6]),
            intervals[6])


def _task_tests(c: NDArray[np.float64], b: NDArray[np.float64], tasks: Sequence[str], usable: NDArray[np.bool_],
                config: GateConfig) -> tuple[TaskComparison, ...]:
    """One-sided Welch tests of a drop per task, corrected over the usable tasks.

    c: (runs_c, tasks), b: (runs_b, tasks), NaN = missing run; usable: (tasks,).
    """
    alpha = 1.0 - config.level
    columns = [(c[~np.isnan(c[:, j]), j], b[~np.isnan(b[:, j]), j]) for j in range(len(tasks))]  # (runs_c,), (runs_b,)
    tests = [_welch(x, y, config.task_tolerance, alpha) if usable[j] else None for j, (x, y) in enumerate(columns)]
    adjusted = iter(_correct(np.array([t.p_value for t in tests if t is not None]), config.task_correction))
    out = []
    for task, (x, y), test in zip(tasks, columns, tests, strict=True):
        runs = (tuple(map(float, x)), tuple(map(float, y)))
        if test is None:
            out.append(TaskComparison(task, *runs))
            continue
        p_adjusted = float(next(adjusted))
        out.append(TaskComparison(task, *runs, **dataclasses.asdict(test), p_adjusted=p_adjusted,
                                  flagged=p_adjusted < alpha / 2.0))
    return tuple(out)


@dataclass(frozen=True)
class _Welch:
    """One task's Welch test (the statistics of :class:`TaskComparison`)."""

    mean_candidate: float
    mean_baseline: float
    difference: float
    se: float
    df: float | None
    low: float
    high: float
    p_value: float


def _welch(x: NDArray[np.float64], y: NDArray[np.float64], tolerance: float, alpha: float) -> _Welch:
    """Welch's one-sided test of mean(x) < mean(y) - tolerance, and the level 1 - alpha interval of the difference.

    x: (runs_x,), y: (runs_y,), at least 2 values each. With no spread on either side the test
    is decided by the difference alone (p 0 or 1), df is None and the interval is the point.
    """
    var_x, var_y = float(np.var(x, ddof=1)) / x.size, float(np.var(y, ddof=1)) / y.size
    difference = float(x.mean() - y.mean())
    se = math.sqrt(var_x + var_y)
    if se == 0.0:
        return _Welch(float(x.mean()), float(y.mean()), difference, se, None, difference, difference,
                      0.0 if difference < -tolerance else 1.0)
    df = (var_x + var_y) ** 2 / (var_x**2 / (x.size - 1) + var_y**2 / (y.size - 1))
    half = float(scipy_stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return _Welch(float(x.mean()), float(y.mean()), difference, se, df, difference - half, difference + half,
                  float(scipy_stats.t.cdf((difference + tolerance) / se, df)))


def _correct(p_values: NDArray[np.float64], correction: Correction) -> NDArray[np.float64]:
    """Family-wise corrected p-values, (tests,) -> (tests,).

    Bonferroni: min(1, m p). Holm: the i-th smallest p (i = 0, 1, ...) becomes
    max over j <= i of min(1, (m - j) p_(j)), in the original order.
    """
    m = p_values.size
    if correction == "bonferroni":
        return np.minimum(1.0, m * p_values)
    order = np.argsort(p_values, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p_values[order])  # (tests,)
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


# ----------------------------------------------------------------------------------------------
# From the store


def run_gate(store: Store, candidate: str, baseline: str, config: GateConfig, *,
             tasks: Sequence[str] | None = None, step: int | None = None) -> GateResult:
    """Gate ``candidate`` against ``baseline`` (agent labels in the store) on ``tasks`` at ``step``.

    With ``tasks``, every one of them counts (a task a side has no runs on makes the verdict
    inconclusive); without, the tasks both labels have runs on are compared and the others are
    listed as left out. ``step=None`` takes each run's final evaluation, and then both sides must
    end at the same step on every task.
    """
    labels = list(dict.fromkeys([candidate, baseline]))
    with store.connect(read_only=True) as con:
        selection = scores.load(con, tasks=tasks, labels=labels)
    left_out: list[tuple[str, str]] = []
    if tasks is None:
        have_c, have_b = set(selection.coverage(candidate)), set(selection.coverage(baseline))
        compared = tuple(t for t in selection.tasks if t in have_c and t in have_b)
        left_out = [(t, f"no finished runs of {baseline if t in have_c else candidate}")
                    for t in selection.tasks if t not in compared]
        if not compared:
            raise InputError(f"{candidate!r} and {baseline!r} have no task in common in {store.path}; "
                             "pass --suite or --tasks to name the tasks to compare")
    else:
        compared = tuple(tasks)
    if step is None:
        _check_same_final_step(selection, candidate, baseline, compared)
    matrices = [scores.at_step(selection, label, compared, step=step, method=config.align,
                               tolerance=config.step_tolerance) for label in (candidate, baseline)]
    result = compare(matrices[0], matrices[1], config)
    return dataclasses.replace(result, left_out=tuple(left_out))


def _check_same_final_step(selection: scores.Selection, candidate: str, baseline: str, tasks: Sequence[str]) -> None:
    """InputError when a task's runs end at different steps for the two labels (budgets differ)."""
    last = {label: selection.runs(label).groupby("task").last_step.max() for label in (candidate, baseline)}
    for task in tasks:
        ends = [int(last[label][task]) for label in (candidate, baseline) if task in last[label].index]
        if len(ends) == 2 and ends[0] != ends[1]:
            raise InputError(f"{task}: the candidate's runs end at step {ends[0]:,} and the baseline's at "
                             f"{ends[1]:,}; final scores at different budgets do not compare: pass --step")


# ----------------------------------------------------------------------------------------------
# Output


def to_dict(result: GateResult) -> dict[str, Any]:
    """Every number of the result as JSON-ready data (NaN and missing values as null)."""
    data = dataclasses.asdict(result)
    data["exit_code"] = result.exit_code
    return _jsonable(data)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    return obj


def write_json(result: GateResult, path: Path) -> Path:
    """Write :func:`to_dict` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(result), indent=2, allow_nan=False) + "\n")
    return path


VERDICT_LINES = {
    "regression": "REGRESSION: the candidate is significantly worse than the baseline",
    "pass": "PASS: no significant regression",
    "inconclusive": "INCONCLUSIVE: too little data to decide",
}


def markdown(result: GateResult, figure: str | None = None) -> str:
    """The summary for a CI job or a pull-request comment: verdict, table, flagged tasks, figure."""
    cfg = result.config
    verdict = VERDICT_LINES[result.verdict]
    if result.verdict == "pass" and result.improvement:
        verdict += " (and a significant improvement)"
    step = "final evaluation" if result.step is None else f"step {result.step:,}"
    lines = [f"## Regression gate: {verdict}", "",
             f"Candidate `{result.candidate}` against baseline `{result.baseline}` on {len(result.tasks)} task(s) "
             f"at the {step}; runs per task: {_run_counts(result)}.", ""]
    lines += [f"- {reason}" for reason in explanations(result)]
    if result.verdict == "inconclusive" and result.power.extra_seeds > 0:
        lines.append(f"- About {result.power.extra_seeds} more seed(s) per task on each side "
                     f"({result.power.seeds_needed} in all) would be needed, estimated from the observed spread.")
    lines.append("")
    if result.iqm is not None and result.mean is not None and result.poi is not None:
        lines += ["| aggregate | candidate | baseline | candidate - baseline |", "|---|---|---|---|"]
        for agg in (result.iqm, result.mean):
            name = "IQM" if agg.name == "iqm" else agg.name
            lines.append(f"| {name} | {format_interval(agg.candidate)} | {format_interval(agg.baseline)} | "
                         f"{format_interval(agg.difference)} |")
        lines += [f"| P(candidate > baseline) | {format_interval(result.poi)} | | |", "",
                  f"{cfg.level:.0%} stratified-bootstrap intervals over normalised scores ({cfg.reps:,} repetitions, "
                  f"expanded for {result.power.seeds} seeds per task: bootstrap level {result.interval_level:.4f}). "
                  f"Regression rules: {_rules_text(cfg)}.", ""]
    flagged = result.flagged
    lines += [f"### Tasks with a significant drop: {len(flagged)} of {len(result.tasks)}", "",
              f"A task is flagged when its one-sided Welch test of a drop larger than {cfg.task_tolerance:g}, "
              f"{cfg.task_correction}-corrected over the tasks, has p below {(1 - cfg.level) / 2:g}.", ""]
    if flagged:
        lines += _task_table(flagged, cfg)
    lines += ["", f"<details><summary>All {len(result.tasks)} task(s)</summary>", "",
              *_task_table(result.per_task, cfg), "", "</details>", ""]
    if figure is not None:
        lines += [f"![IQM of each side and per-task mean differences with intervals]({figure})", ""]
    extra = [*result.notes, *(f"left out {task}: {why}" for task, why in result.left_out),
             *(f"excluded run {e.run_id} ({e.label}, {e.task}, seed {e.seed}): {e.reason}" for e in result.exclusions)]
    lines += [f"- {line}" for line in extra]
    return "\n".join(lines).rstrip() + "\n"


def _run_counts(result: GateResult) -> str:
    pairs = sorted({(len(t.candidate_scores), len(t.baseline_scores)) for t in result.per_task})
    return ", ".join(f"{a} candidate / {b} baseline" for a, b in pairs)


def explanations(result: GateResult) -> list[str]:
    cfg = result.config
    lines = list(result.reasons)
    # With too little data a rule that fired does not decide; it is reported as a hint.
    hint = " (not decisive with this little data)" if result.verdict == "inconclusive" else ""
    if result.iqm is not None and "iqm" in result.fired:
        lines.append(f"The IQM difference {format_interval(result.iqm.difference)} lies below "
                     f"-{cfg.iqm_tolerance:g}{hint}.")
    if result.poi is not None and "poi" in result.fired:
        lines.append(f"P(candidate > baseline) {format_interval(result.poi)} lies below {cfg.poi_threshold:g}{hint}.")
    if "tasks" in result.fired:
        lines.append(f"{len(result.flagged)} task(s) dropped significantly and fail_on_task_drop is set{hint}.")
    if result.effect is not None:
        lines.append(effect_text(result.effect))
        if not result.effect.large and any(rule in result.fired for rule in ("iqm", "poi")):
            lines.append(f"The drop is significant but not larger than min_drop = {result.effect.min_drop:g}: "
                         "not a regression.")
    if result.verdict == "pass" and result.iqm is not None:
        lines.append(f"The IQM difference is {format_interval(result.iqm.difference)}; a drop of min_effect = "
                     f"{cfg.min_effect:g} would have been caught with power {cfg.power:g} or is ruled out.")
    if result.improvement:
        lines.append(f"Significant improvement by rule(s): {', '.join(result.improvement)}.")
    return lines


EFFECT_NAMES = {"iqm": "IQM difference (candidate - baseline)", "poi": "P(candidate > baseline) - 0.5"}


def effect_text(effect: Effect) -> str:
    """The effect with its interval, and whether it is a drop larger than min_drop."""
    size = "a drop" if effect.large else "not a drop"
    return (f"Effect: {EFFECT_NAMES[effect.measure]} {format_interval(effect.value)}, {size} larger than "
            f"min_drop = {effect.min_drop:g}.")


def _rules_text(cfg: GateConfig) -> str:
    text = {"iqm": f"IQM difference below -{cfg.iqm_tolerance:g}",
            "poi": f"P(candidate > baseline) below {cfg.poi_threshold:g}"}
    out = " or ".join(text[rule] for rule in cfg.rules)
    out += f", with a drop of the {EFFECT_NAMES[cfg.effect]} larger than {cfg.min_drop:g}"
    out += " (or a flagged task)" if cfg.fail_on_task_drop else ""
    return out + f"; scores within {cfg.tie_tolerance:g} of each other are ties"


def _task_table(rows: Sequence[TaskComparison], cfg: GateConfig) -> list[str]:
    lines = [f"| task | runs | candidate mean | baseline mean | difference [{cfg.level:.0%} Welch CI] | "
             f"p ({cfg.task_correction}) | drop |", "|---|---|---|---|---|---|---|"]
    for t in rows:
        runs = f"{len(t.candidate_scores)} / {len(t.baseline_scores)}"
        if t.difference is None:
            lines.append(f"| {t.task} | {runs} | - | - | - | - | too few runs |")
            continue
        lines.append(f"| {t.task} | {runs} | {t.mean_candidate:.3f} | {t.mean_baseline:.3f} | "
                     f"{t.difference:+.3f} [{t.low:+.3f}, {t.high:+.3f}] | {t.p_adjusted:.3g} | "
                     f"{'**yes**' if t.flagged else 'no'} |")
    return lines


def format_interval(interval: Interval) -> str:
    return f"{interval.point:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def write_markdown(result: GateResult, path: Path) -> tuple[Path, Path | None]:
    """Write the Markdown summary and, beside it, its figure (``<stem>.svg``); returns both paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure_path = None
    if result.iqm is not None:
        figure_path = path.with_suffix(".svg")
        figure_path.write_bytes(figure_svg(result))
    path.write_text(markdown(result, figure_path.name if figure_path is not None else None))
    return path, figure_path


def figure_svg(result: GateResult) -> bytes:
    """A small figure as SVG: the IQM of each side and the per-task mean differences, with intervals.

    The same result gives the same bytes (fixed id salt, no date).
    """
    import io

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    assert result.iqm is not None
    rows = [t for t in result.per_task if t.difference is not None]
    figure = Figure(figsize=(7.0, 1.2 + 0.28 * max(len(rows), 2)), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.6))
    for y, (interval, color) in enumerate(((result.iqm.baseline, "#0072B2"), (result.iqm.candidate, "#D55E00"))):
        left.errorbar([interval.point], [y], xerr=[[interval.point - interval.low], [interval.high - interval.point]],
                      fmt="o", color=color, capsize=3)
    left.set_yticks([0, 1], [f"baseline\n{result.baseline}", f"candidate\n{result.candidate}"], fontsize=8)
    left.set_ylim(-0.6, 1.6)
    left.set_xlabel("IQM (normalised)", fontsize=8)
    for y, t in enumerate(rows):
        assert t.difference is not None and t.low is not None and t.high is not None
        color = "#D55E00" if t.flagged else "#555555"
        right.errorbar([t.difference], [y], xerr=[[t.difference - t.low], [t.high - t.difference]], fmt="o",
                       color=color, capsize=2, markersize=4)
    right.axvline(0.0, color="black", linewidth=0.8)
    right.axvline(-result.config.task_tolerance, color="#D55E00", linewidth=0.8, linestyle="--")
    right.set_yticks(range(len(rows)), [t.task for t in rows], fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("mean difference, candidate - baseline", fontsize=8)
    for axis in (left, right):
        axis.tick_params(axis="x", labelsize=7)
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "harness-gate"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
