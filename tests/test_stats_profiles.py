"""Performance profiles: hand-computed values, rliable cross-check, bands."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats
from harness.stats import StatsInputError

# (runs=2, tasks=2)
SCORES = np.array([[0.1, 0.5], [0.3, 0.9]])
TAUS = np.array([0.0, 0.3, 0.5, 1.0])


def test_profiles_by_hand() -> None:
    # run scores 0.1 0.3 0.5 0.9: > 0 -> 4/4, > 0.3 -> {0.5, 0.9} 2/4, > 0.5 -> {0.9} 1/4, > 1 -> 0
    np.testing.assert_allclose(stats.run_score_profile(SCORES, TAUS), [1.0, 0.5, 0.25, 0.0])
    # task means 0.2 and 0.7: > 0 -> 2/2, > 0.3 -> 1/2, > 0.5 -> 1/2, > 1 -> 0
    np.testing.assert_allclose(stats.average_score_profile(SCORES, TAUS), [1.0, 0.5, 0.5, 0.0])


def test_missing_runs_are_left_out_of_the_fraction() -> None:
    scores = np.array([[0.1, 0.5], [np.nan, 0.9]])
    # available 0.1 0.5 0.9: > 0.3 -> 2/3; task means 0.1 and 0.7: > 0.3 -> 1/2
    np.testing.assert_allclose(stats.run_score_profile(scores, [0.3], allow_unequal=True), [2 / 3])
    np.testing.assert_allclose(stats.average_score_profile(scores, [0.3], allow_unequal=True), [0.5])


def test_matches_rliable() -> None:
    library = pytest.importorskip("rliable.library")
    rng = np.random.default_rng(0)
    scores = np.round(rng.random((5, 20)), 2)  # rounded: some scores equal a tau exactly
    taus = np.linspace(0.0, 1.0, 21)
    np.testing.assert_allclose(stats.run_score_profile(scores, taus), library.score_distributions(scores, taus))
    np.testing.assert_allclose(
        stats.average_score_profile(scores, taus), library.average_score_distributions(scores, taus)
    )


def test_bands() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((5, 30))
    taus = np.linspace(0.0, 1.0, 11)
    bands = stats.performance_profiles(scores, taus, np.random.default_rng(0), reps=2_000)
    assert list(bands) == ["run_score", "average_score"]
    np.testing.assert_array_equal(bands["run_score"].point, stats.run_score_profile(scores, taus))
    np.testing.assert_array_equal(bands["average_score"].point, stats.average_score_profile(scores, taus))
    for band in bands.values():
        np.testing.assert_array_equal(band.x, taus)
        assert (band.low <= band.point).all() and (band.point <= band.high).all()
        assert (np.diff(band.point) <= 0).all()  # a profile never increases with tau
    again = stats.performance_profiles(scores, taus, np.random.default_rng(0), reps=2_000)
    np.testing.assert_array_equal(again["run_score"].low, bands["run_score"].low)


def test_taus_must_be_sorted() -> None:
    with pytest.raises(StatsInputError, match="taus"):
        stats.run_score_profile(SCORES, [0.5, 0.1])
