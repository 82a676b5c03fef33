"""The regression gate's statistics on synthetic score matrices: calibration, power, per-task tests, config."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness import gate
from harness.errors import InputError
from harness.scores import ScoreMatrix

LEVEL = 0.95
ALPHA = 1.0 - LEVEL
REPETITIONS = 200
# Monte Carlo slack: three standard errors of a rate p estimated from 200 repetitions,
# 3 * sqrt(p (1 - p) / 200); for p = alpha / 2 = 0.025 that is 3 * 0.01104 = 0.0331, for p = alpha =
# 0.05 it is 3 * 0.01541 = 0.0462.
SLACK_HALF = 3 * math.sqrt(ALPHA / 2 * (1 - ALPHA / 2) / REPETITIONS)
SLACK_FULL = 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPETITIONS)
# Calibration runs at the worst case for false alarms: no tolerance, no tie tolerance, no minimum drop.
STRICT = gate.GateConfig(level=LEVEL, reps=1000, iqm_tolerance=0.0, task_tolerance=0.0, tie_tolerance=0.0,
                         min_drop=0.0)


def matrices(rng: np.random.Generator, runs: int, tasks: int, drop: float = 0.0,
             spread: float = 0.1) -> tuple[ScoreMatrix, ScoreMatrix]:
    """Candidate and baseline (runs, tasks) matrices: task levels in [0.2, 0.8], Gaussian seed noise."""
    level = rng.uniform(0.2, 0.8, tasks)  # (tasks,)
    names = tuple(f"dmc/task-{j}" for j in range(tasks))
    candidate = level - drop + spread * rng.standard_normal((runs, tasks))  # (runs, tasks)
    baseline = level + spread * rng.standard_normal((runs, tasks))
    return ScoreMatrix("candidate", names, candidate, None, ()), ScoreMatrix("baseline", names, baseline, None, ())


def rates(drop: float) -> dict[str, float]:
    """How often each rule fires, a task is flagged and the verdict is a regression, over 200 repetitions."""
    rng = np.random.default_rng(20240607)
    counts = {"iqm": 0, "poi": 0, "task": 0, "regression": 0}
    for repetition in range(REPETITIONS):
        result = gate.compare(*matrices(rng, runs=5, tasks=4, drop=drop), dataclasses.replace(STRICT, seed=repetition))
        counts["iqm"] += "iqm" in result.fired
        counts["poi"] += "poi" in result.fired
        counts["task"] += bool(result.flagged)
        counts["regression"] += result.verdict == "regression"
    return {key: value / REPETITIONS for key, value in counts.items()}


def test_false_alarm_rate_on_identical_distributions_is_within_the_level() -> None:
    # Candidate and baseline from the same distribution, 5 seeds x 4 tasks each. Each rule and the
    # per-task family are one-sided tests at alpha / 2 = 0.025; the verdict (either rule) at most alpha.
    got = rates(drop=0.0)
    assert got["iqm"] <= ALPHA / 2 + SLACK_HALF, got
    assert got["poi"] <= ALPHA / 2 + SLACK_HALF, got
    assert got["task"] <= ALPHA / 2 + SLACK_HALF, got
    assert got["regression"] <= ALPHA + SLACK_FULL, got


def test_a_clear_drop_is_caught_nearly_always() -> None:
    # A drop of 0.3 in every task, three times the seed noise: every rule should fire.
    got = rates(drop=0.3)
    assert got["regression"] >= 0.99 and got["iqm"] >= 0.99 and got["poi"] >= 0.99, got
    assert got["task"] >= 0.95, got


def test_the_seeds_estimate_brings_the_interval_to_the_target() -> None:
    # Noisy tasks (seed spread 0.15) and no drop: with 5 seeds the IQM difference's interval is too
    # wide to catch a drop of 0.1, so the verdict is inconclusive with a number of seeds. Taking that
    # many seeds of the same runs must shrink the half-width to about the target (the estimate
    # assumes the observed spread; 25% leeway for the spread of the other seeds).
    rng = np.random.default_rng(0)
    big_c, big_b = matrices(rng, runs=40, tasks=3, spread=0.15)
    config = gate.GateConfig(reps=4000)

    def first(n: int) -> gate.GateResult:
        return gate.compare(dataclasses.replace(big_c, scores=big_c.scores[:n]),
                            dataclasses.replace(big_b, scores=big_b.scores[:n]), config)

    few = first(5)
    assert few.verdict == "inconclusive" and few.power.underpowered and few.power.extra_seeds > 0
    assert few.power.seeds_needed == 5 + few.power.extra_seeds <= 40
    assert any("min_effect" in reason for reason in few.reasons)
    enough = first(few.power.seeds_needed)
    assert enough.power.half_width is not None and enough.power.target_half_width is not None
    assert enough.power.half_width <= 1.25 * enough.power.target_half_width
    assert enough.verdict in ("pass", "inconclusive")


def test_too_few_seeds_is_inconclusive_with_the_missing_seeds() -> None:
    rng = np.random.default_rng(3)
    candidate, baseline = matrices(rng, runs=5, tasks=2, drop=0.5)
    candidate = dataclasses.replace(candidate, scores=candidate.scores[:3])  # 3 candidate runs per task
    result = gate.compare(candidate, baseline, gate.GateConfig(reps=1000))
    # Even a large drop is not called a regression with 3 seeds: min_seeds is 5, so 2 more are needed.
    assert result.verdict == "inconclusive" and result.exit_code == 0
    assert result.power.seeds == 3 and result.power.extra_seeds >= 2
    assert "dmc/task-0: 3 candidate and 5 baseline run(s)" in result.reasons[0]
    strict = gate.compare(candidate, baseline, gate.GateConfig(reps=1000, inconclusive_exit_code=3))
    assert strict.exit_code == 3


def test_a_task_with_one_run_is_kept_out_of_the_statistics() -> None:
    rng = np.random.default_rng(4)
    candidate, baseline = matrices(rng, runs=6, tasks=3)
    scores_c = candidate.scores.copy()
    scores_c[1:, 2] = np.nan  # task 2 has a single candidate run
    result = gate.compare(dataclasses.replace(candidate, scores=scores_c), baseline,
                          gate.GateConfig(reps=1000, min_tasks=2))
    assert result.verdict == "inconclusive"
    assert result.per_task[2].difference is None and result.per_task[2].p_adjusted is None
    assert len(result.per_task[2].candidate_scores) == 1
    assert result.per_task[0].difference is not None and result.iqm is not None


def test_welch_test_and_interval_match_the_hand_computation() -> None:
    x = np.array([1.0, 2.0, 3.0])  # mean 2, variance 1
    y = np.array([4.0, 5.0, 6.0, 7.0, 8.0])  # mean 6, variance 2.5
    got = dataclasses.asdict(gate._welch(x, y, tolerance=0.0, alpha=0.05))
    # se = sqrt(1/3 + 2.5/5) = sqrt(0.8333) = 0.91287; df = 0.8333^2 / ((1/3)^2 / 2 + 0.5^2 / 4)
    # = 0.69444 / 0.11806 = 5.882.
    assert got["difference"] == pytest.approx(-4.0)
    assert got["se"] == pytest.approx(0.91287, abs=1e-5)
    assert got["df"] == pytest.approx(5.882, abs=1e-3)
    reference = scipy_stats.ttest_ind(x, y, equal_var=False, alternative="less")
    assert got["p_value"] == pytest.approx(reference.pvalue)
    half = scipy_stats.t.ppf(0.975, got["df"]) * got["se"]
    assert (got["low"], got["high"]) == pytest.approx((-4.0 - half, -4.0 + half))
    # A tolerance of 0.5 tests mean(x) - mean(y) < -0.5: t = (-4 + 0.5) / se.
    tolerant = gate._welch(x, y, tolerance=0.5, alpha=0.05)
    assert tolerant.p_value == pytest.approx(scipy_stats.t.cdf(-3.5 / 0.91287, got["df"]), rel=1e-4)
    # No spread on either side: decided by the difference alone.
    flat = gate._welch(np.array([0.5, 0.5]), np.array([0.9, 0.9]), tolerance=0.02, alpha=0.05)
    assert flat.p_value == 0.0 and flat.df is None and flat.low == flat.high == pytest.approx(-0.4)


def test_holm_and_bonferroni_corrections_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.2])
    # Bonferroni: 4 p, capped at 1.
    assert gate._correct(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.8])
    # Holm: sorted 0.01, 0.03, 0.04, 0.2 times 4, 3, 2, 1 = 0.04, 0.09, 0.08, 0.2; running maximum
    # 0.04, 0.09, 0.09, 0.2; back in the original order: 0.04, 0.09 (0.04), 0.09 (0.03), 0.2.
    assert gate._correct(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])


def test_a_single_task_drop_is_flagged_and_fails_only_when_configured() -> None:
    rng = np.random.default_rng(11)
    candidate, baseline = matrices(rng, runs=8, tasks=6, spread=0.03)
    scores_c = candidate.scores.copy()
    scores_c[:, 4] -= 0.3  # one task of six collapses; IQM over 48 pooled runs barely moves
    candidate = dataclasses.replace(candidate, scores=scores_c)
    lenient = gate.compare(candidate, baseline, gate.GateConfig(reps=2000, rules=("iqm",), iqm_tolerance=0.08,
                                                                min_effect=0.2))
    assert [t.task for t in lenient.flagged] == ["dmc/task-4"]
    assert lenient.verdict == "pass" and lenient.fired == ()
    strict = gate.compare(candidate, baseline, gate.GateConfig(reps=2000, rules=("iqm",), iqm_tolerance=0.08,
                                                               min_effect=0.2, fail_on_task_drop=True))
    assert strict.verdict == "regression" and strict.fired == ("tasks",) and strict.exit_code == 1


def test_an_improvement_is_reported_with_a_pass() -> None:
    rng = np.random.default_rng(5)
    result = gate.compare(*matrices(rng, runs=6, tasks=3, drop=-0.2, spread=0.05), gate.GateConfig(reps=2000))
    assert result.verdict == "pass" and result.improvement == ("iqm", "poi")
    assert "significant improvement" in gate.markdown(result)


def test_a_copy_that_differs_by_rounding_noise_is_a_tie() -> None:
    rng = np.random.default_rng(6)
    _, baseline = matrices(rng, runs=5, tasks=4)
    copy = dataclasses.replace(baseline, label="copy", scores=baseline.scores * (1 - 1e-12))
    result = gate.compare(copy, baseline, gate.GateConfig(reps=1000))
    # Every same-seed pair is a tie, every other pair is the baseline against itself: P = 1/2 exactly.
    assert result.poi is not None and result.poi.point == 0.5 and result.verdict == "pass"
    # Without a tie tolerance the 5 same-seed pairs of 25 per task are losses: P = (25 - 5) / 2 / 25 = 0.4.
    exact = gate.compare(copy, baseline, gate.GateConfig(reps=1000, tie_tolerance=0.0))
    assert exact.poi is not None and exact.poi.point == pytest.approx(0.4)


def saturated(rng: np.random.Generator, drop: float) -> tuple[ScoreMatrix, ScoreMatrix]:
    """8 seeds x 6 tasks near the maximum (0.99 + noise 0.001); the candidate lower by ``drop``."""
    names = tuple(f"dmc/task-{j}" for j in range(6))
    baseline = 0.99 + 0.001 * rng.standard_normal((8, 6))  # (runs, tasks)
    candidate = 0.99 - drop + 0.001 * rng.standard_normal((8, 6))
    return ScoreMatrix("candidate", names, candidate, None, ()), ScoreMatrix("baseline", names, baseline, None, ())


def test_a_significant_drop_smaller_than_min_drop_passes_with_the_effect() -> None:
    # Saturated tasks, the candidate consistently 0.005 lower (5 DMC return points): P(candidate >
    # baseline) is near 0 and 'poi' fires, but the IQM drops by about 0.005, less than min_drop = 0.02.
    candidate, baseline = saturated(np.random.default_rng(7), drop=0.005)
    result = gate.compare(candidate, baseline, gate.GateConfig(reps=2000))
    assert "poi" in result.fired and result.verdict == "pass" and result.exit_code == 0
    assert result.effect is not None and result.effect.measure == "iqm" and not result.effect.large
    assert result.iqm is not None and result.effect.value == result.iqm.difference
    assert result.effect.value.point == pytest.approx(-0.005, abs=0.001)
    text = gate.markdown(result)
    assert "Effect: IQM difference (candidate - baseline) -0.005 [" in text
    assert "significant but not larger than min_drop = 0.02: not a regression" in text
    # The same data with min_drop 0.002 is a regression.
    strict = gate.compare(candidate, baseline, gate.GateConfig(reps=2000, min_drop=0.002, iqm_tolerance=0.002,
                                                               task_tolerance=0.002))
    assert strict.verdict == "regression" and strict.effect is not None and strict.effect.large


def test_the_effect_can_be_the_probability_of_improvement() -> None:
    # effect: poi measures P(candidate > baseline) - 0.5. The same saturated drop of 0.005 puts P near
    # 0 (the noise, 0.001, is much smaller than the drop), an effect near -0.5: beyond min_drop = 0.25.
    candidate, baseline = saturated(np.random.default_rng(7), drop=0.005)
    result = gate.compare(candidate, baseline, gate.GateConfig(reps=2000, effect="poi", min_drop=0.25))
    assert result.verdict == "regression" and result.effect is not None and result.effect.large
    assert result.poi is not None and result.effect.value.point == pytest.approx(result.poi.point - 0.5)
    assert result.effect.value.low == pytest.approx(result.poi.low - 0.5)
    assert result.effect.value.point < -0.45
    assert "Effect: P(candidate > baseline) - 0.5 " in gate.markdown(result)


def test_same_data_and_seed_give_identical_numbers() -> None:
    rng = np.random.default_rng(9)
    candidate, baseline = matrices(rng, runs=5, tasks=3)
    first = gate.to_dict(gate.compare(candidate, baseline, gate.GateConfig(reps=1000, seed=1)))
    second = gate.to_dict(gate.compare(candidate, baseline, gate.GateConfig(reps=1000, seed=1)))
    assert first == second


def test_expanded_level_by_hand() -> None:
    rng = np.random.default_rng(2)
    result = gate.compare(*matrices(rng, runs=5, tasks=1), gate.GateConfig(reps=1000))
    # n = 5, df = 4 + 4 = 8: z = sqrt(5/4) * t(0.975, 8) = 1.11803 * 2.30600 = 2.57818; level
    # 2 Phi(z) - 1 = 0.99007.
    assert result.interval_level == pytest.approx(0.99007, abs=1e-5)
    assert result.iqm is not None and result.iqm.difference.level == result.interval_level


# ----------------------------------------------------------------------------------------------
# Config


def test_the_shipped_config_is_the_defaults_with_the_ci_suites_min_effect() -> None:
    shipped = Path(__file__).resolve().parents[1] / "ci" / "gate.yaml"
    assert gate.load_config(shipped) == dataclasses.replace(gate.GateConfig(), min_effect=0.25)


def test_empty_config_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("# nothing set\n")
    assert gate.load_config(path) == gate.GateConfig()


@pytest.mark.parametrize(("text", "expected"), [
    ("levle: 0.9\n", "levle: unknown key; valid keys: level, reps"),
    ("level: 1.5\n", "level: Input should be less than 1 (got 1.5)"),
    ("rules: [iqm, median]\n", "rules.1: Input should be 'iqm' or 'poi'"),
    ("min_effect: 0.01\n", "min_effect (0.01) must be larger than iqm_tolerance (0.02)"),
    ("min_drop: 0.1\n", "min_drop (0.1) must be smaller than min_effect (0.1)"),
    ("tie_tolerance: 0.03\n", "iqm_tolerance (0.02) must be at least tie_tolerance (0.03)"),
    ("min_drop: 0.0001\n", "min_drop (0.0001) must be at least tie_tolerance (0.0005)"),
    ("effect: median\n", "effect: Input should be 'iqm' or 'poi'"),
    ("inconclusive_exit_code: 2\n", "2 is reserved for bad input"),
    ("task_correction: sidak\n", "task_correction: Input should be 'holm' or 'bonferroni'"),
    ("- level\n", "expected a mapping of keys"),
    ("level: [\n", "not valid YAML"),
])
def test_config_errors_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as error:
        gate.load_config(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_missing_config_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such gate config"):
        gate.load_config(tmp_path / "absent.yaml")
