"""The statistics engine on real published results: TD-MPC2 and SAC on 39 DMC tasks at 1M steps.

Data: nicklashansen/tdmpc2 `results/` (MIT), read from ../shared/data/tdmpc2 next to the repository;
the tests skip when that folder is absent. Expected values were computed with rliable 1.2.0 on the same
matrices (point estimates exact; intervals from 50,000 repetitions).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from harness import stats

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tdmpc2"
MANISKILL = {"lift-cube", "pick-cube", "pick-ycb", "stack-cube", "turn-faucet"}
SEEDS = (1, 2, 3)
STEP = 1_000_000


def _dmc_scores_at_1m(algorithm: str) -> np.ndarray:
    """(runs=3, tasks=39): episode return at step 1,000,000 / 1000, tasks in file-name order."""
    folder = DATA / algorithm
    if not folder.is_dir():
        pytest.skip(f"published TD-MPC2 results not found at {folder}")
    columns = []
    for path in sorted(folder.glob("*.csv")):
        task = path.stem
        if task.startswith(("mw-", "myo-")) or task in MANISKILL:
            continue
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and "reward" in rows[0], f"{path}: DMC files have a reward column"
        at_step = [(int(row["seed"]), float(row["reward"])) for row in rows if int(float(row["step"])) == STEP]
        seeds = sorted(seed for seed, _ in at_step)
        assert seeds == list(SEEDS), f"{path}: expected one row per seed at step {STEP}, got seeds {seeds}"
        by_seed = dict(at_step)
        columns.append([by_seed[seed] / 1000.0 for seed in SEEDS])
    scores = np.array(columns).T
    assert scores.shape == (3, 39)
    return scores


# algorithm -> (iqm, mean, median, optimality gap); rliable gives the same to 1e-12
EXPECTED_POINTS = {
    "tdmpc2": (0.8590338983050847, 0.7928051282051283, 0.8463333333333334, 0.2071948717948718),
    "sac": (0.5550237288135592, 0.5173, 0.5216666666666667, 0.4827),
}
# rliable's 95% percentile interval of the IQM (50,000 repetitions)
RLIABLE_IQM_INTERVAL = {"tdmpc2": (0.8481, 0.8692), "sac": (0.5196, 0.5915)}


@pytest.mark.parametrize("algorithm", ["tdmpc2", "sac"])
def test_point_estimates_on_published_results(algorithm: str) -> None:
    scores = _dmc_scores_at_1m(algorithm)
    points = (stats.iqm(scores), stats.mean(scores), stats.median(scores), stats.optimality_gap(scores))
    rounded = {"tdmpc2": (0.859, 0.793, 0.846, 0.207), "sac": (0.555, 0.517, 0.522, 0.483)}[algorithm]
    np.testing.assert_allclose(points, rounded, atol=1e-3)  # the published-style figures
    np.testing.assert_allclose(points, EXPECTED_POINTS[algorithm], atol=1e-12)


@pytest.mark.parametrize("algorithm", ["tdmpc2", "sac"])
def test_iqm_interval_agrees_with_rliable(algorithm: str) -> None:
    scores = _dmc_scores_at_1m(algorithm)
    intervals = stats.bootstrap_intervals(scores, stats.AGGREGATES, np.random.default_rng(0), reps=5_000, n_tasks=39)
    interval = intervals["iqm"]
    low, high = RLIABLE_IQM_INTERVAL[algorithm]
    assert interval.low == pytest.approx(low, abs=0.01)
    assert interval.high == pytest.approx(high, abs=0.01)


def test_tdmpc2_improves_on_sac() -> None:
    tdmpc2, sac = _dmc_scores_at_1m("tdmpc2"), _dmc_scores_at_1m("sac")
    interval = stats.probability_of_improvement_interval(tdmpc2, sac, np.random.default_rng(0), reps=2_000)
    assert 0.5 < interval.low <= interval.point <= interval.high
    with pytest.raises(stats.StatsInputError, match="looks transposed"):
        stats.iqm(tdmpc2.T, n_tasks=39)
