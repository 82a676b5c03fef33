"""Statistics engine: aggregates, stratified bootstrap intervals, probability of improvement,
performance profiles and sample-efficiency curves over normalised (runs, tasks) score matrices.

Every function that draws random numbers takes an explicit `numpy.random.Generator`.
"""

from harness.stats.aggregates import (
    AGGREGATES,
    StackAggregate,
    iqm,
    iqm_stack,
    mean,
    mean_stack,
    median,
    median_stack,
    optimality_gap,
    optimality_gap_stack,
    task_means,
)
from harness.stats.bootstrap import (
    CHUNK_BYTES,
    Interval,
    IntervalBand,
    Method,
    Statistic,
    available_cores,
    bootstrap_estimate,
    bootstrap_intervals,
)
from harness.stats.checks import check_scores
from harness.stats.curves import AlignedCurves, AlignMethod, Exclusion, align_curves, sample_efficiency_curves
from harness.stats.errors import StatsInputError
from harness.stats.improvement import (
    pairwise_probability_of_improvement,
    probability_of_improvement,
    probability_of_improvement_interval,
    probability_of_improvement_stack,
)
from harness.stats.profiles import (
    average_score_profile,
    average_score_profile_stack,
    performance_profiles,
    run_score_profile,
    run_score_profile_stack,
)

__all__ = [
    "AGGREGATES",
    "CHUNK_BYTES",
    "AlignMethod",
    "AlignedCurves",
    "Exclusion",
    "Interval",
    "IntervalBand",
    "Method",
    "StackAggregate",
    "Statistic",
    "StatsInputError",
    "align_curves",
    "available_cores",
    "average_score_profile",
    "average_score_profile_stack",
    "bootstrap_estimate",
    "bootstrap_intervals",
    "check_scores",
    "iqm",
    "iqm_stack",
    "mean",
    "mean_stack",
    "median",
    "median_stack",
    "optimality_gap",
    "optimality_gap_stack",
    "pairwise_probability_of_improvement",
    "performance_profiles",
    "probability_of_improvement",
    "probability_of_improvement_interval",
    "probability_of_improvement_stack",
    "run_score_profile",
    "run_score_profile_stack",
    "sample_efficiency_curves",
    "task_means",
]
