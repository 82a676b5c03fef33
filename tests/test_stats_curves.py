"""Sample-efficiency curves and step-grid alignment."""

from __future__ import annotations

import numpy as np
import pytest

from harness import stats
from harness.stats import StatsInputError


def test_curves_have_the_per_step_point_estimates() -> None:
    rng = np.random.default_rng(0)
    steps = np.array([1e5, 2e5, 3e5])
    scores = rng.random((4, 6, 3)) + np.array([0.0, 1.0, 2.0])  # (runs, tasks, steps); rises with step
    bands = stats.sample_efficiency_curves(
        scores,
        steps,
        {"iqm": stats.iqm_stack, "mean": stats.mean_stack},
        np.random.default_rng(0),
        reps=1_000,
    )
    for name, function in [("iqm", stats.iqm), ("mean", stats.mean)]:
        band = bands[name]
        np.testing.assert_array_equal(band.x, steps)
        np.testing.assert_allclose(band.point, [function(scores[:, :, k]) for k in range(3)], atol=1e-12)
        assert (band.low <= band.point).all() and (band.point <= band.high).all()
        assert (np.diff(band.point) > 0).all()
    again = stats.sample_efficiency_curves(
        scores,
        steps,
        {"iqm": stats.iqm_stack, "mean": stats.mean_stack},
        np.random.default_rng(0),
        reps=1_000,
    )
    np.testing.assert_array_equal(again["iqm"].high, bands["iqm"].high)


def test_curves_check_their_input() -> None:
    aggregates = {"mean": stats.mean_stack}
    with pytest.raises(StatsInputError, match="3-D"):
        stats.sample_efficiency_curves(np.ones((3, 4)), [1.0], aggregates, np.random.default_rng(0), reps=10)
    with pytest.raises(StatsInputError, match="2 steps given"):
        stats.sample_efficiency_curves(np.ones((3, 4, 3)), [1.0, 2.0], aggregates, np.random.default_rng(0))
    scores = np.ones((3, 4, 2))
    scores[1:, 0, 1] = np.nan  # task 0 has a single run at the second step
    with pytest.raises(StatsInputError, match="task 0 at step index 1 has 1 available"):
        stats.sample_efficiency_curves(
            scores, [1.0, 2.0], aggregates, np.random.default_rng(0), reps=10, allow_unequal=True
        )


def test_align_nearest_within_tolerance() -> None:
    # run 0 logs at 0, 100, 210; grid 0, 100, 200, 300 with tolerance 10:
    # 0 -> 0 (exact), 100 -> 100 (exact), 200 -> 210 (10 away: kept), 300 -> 210 (90 away: excluded)
    # run 1 logs at 50 and 150: grid 100 is 50 from both -> the earlier (50), but 50 > tolerance
    curves = [
        [(np.array([0.0, 100.0, 210.0]), np.array([1.0, 2.0, 3.0]))],
        [(np.array([50.0, 150.0]), np.array([4.0, 5.0]))],
    ]
    aligned = stats.align_curves(curves, [0.0, 100.0, 200.0, 300.0], method="nearest", tolerance=10.0)
    np.testing.assert_array_equal(aligned.scores[0, 0], [1.0, 2.0, 3.0, np.nan])
    assert np.isnan(aligned.scores[1, 0]).all()
    assert aligned.exclusions[0] == stats.Exclusion(0, 0, 300.0, "nearest step 210 is 90 away (tolerance 10)")
    assert aligned.exclusions[2] == stats.Exclusion(1, 0, 100.0, "nearest step 50 is 50 away (tolerance 10)")
    wide = stats.align_curves(curves, [100.0], method="nearest", tolerance=50.0)
    assert wide.scores[1, 0, 0] == 4.0  # tie between 50 and 150 -> the earlier step


def test_align_interpolate_without_extrapolation() -> None:
    # steps 100, 200 with values 1, 3: grid 150 -> 2 (halfway), 200 -> 3 (exact);
    # 50 is before the first step and 250 after the last: both excluded
    curves = [[(np.array([100.0, 200.0]), np.array([1.0, 3.0])), (np.array([]), np.array([]))]]
    aligned = stats.align_curves(curves, [50.0, 150.0, 200.0, 250.0], method="interpolate")
    np.testing.assert_array_equal(aligned.scores[0, 0], [np.nan, 2.0, 3.0, np.nan])
    assert aligned.exclusions[:2] == (
        stats.Exclusion(0, 0, 50.0, "before the first step 100: no extrapolation"),
        stats.Exclusion(0, 0, 250.0, "after the last step 200: no extrapolation"),
    )
    # the empty second task: every grid point excluded, none silently
    assert [e.reason for e in aligned.exclusions[2:]] == ["no data for this run"] * 4


def test_every_empty_cell_has_an_exclusion() -> None:
    rng = np.random.default_rng(2)
    curves = [
        [(np.sort(rng.choice(1000, size=8, replace=False)).astype(float), rng.random(8)) for _task in range(3)]
        for _run in range(4)
    ]
    for method in ("nearest", "interpolate"):
        aligned = stats.align_curves(curves, np.arange(0.0, 1001.0, 100.0), method=method, tolerance=40.0)
        excluded = {(e.run, e.task, e.step) for e in aligned.exclusions}
        empty = {(r, t, aligned.steps[k]) for r, t, k in zip(*np.nonzero(np.isnan(aligned.scores)), strict=True)}
        assert excluded == empty
        assert len(aligned.exclusions) == len(excluded)


@pytest.mark.parametrize(
    ("curves", "message"),
    [
        ([[(np.array([0.0, 0.0]), np.array([1.0, 2.0]))]], "strictly increasing"),
        ([[(np.array([0.0, 1.0]), np.array([1.0]))]], "equal length"),
        ([[(np.array([0.0, 1.0]), np.array([1.0, np.nan]))]], "finite"),
        ([[(np.array([0.0]), np.array([1.0]))], []], "same, non-zero number of tasks"),
        ([], "no runs"),
    ],
)
def test_alignment_rejects_bad_curves(curves: list, message: str) -> None:
    with pytest.raises(StatsInputError, match=message):
        stats.align_curves(curves, [0.0, 1.0], method="nearest")


def test_alignment_rejects_bad_settings() -> None:
    curves = [[(np.array([0.0]), np.array([1.0]))]]
    with pytest.raises(StatsInputError, match="grid"):
        stats.align_curves(curves, [1.0, 0.0], method="nearest")
    with pytest.raises(StatsInputError, match="tolerance"):
        stats.align_curves(curves, [0.0], method="nearest", tolerance=-1.0)
    with pytest.raises(StatsInputError, match="method"):
        stats.align_curves(curves, [0.0], method="cubic")  # type: ignore[arg-type]
