"""harness.figures: every figure draws from plain data and writes identical bytes every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from harness import figures
from harness.stats import Interval, IntervalBand


def interval(point: float) -> Interval:
    return Interval(point, point - 0.05, point + 0.05, "percentile", 0.95, 100)


def band(offset: float) -> IntervalBand:
    x = np.linspace(0.0, 1_000_000.0, 11)  # (points,)
    point = np.linspace(0.0, 0.8, 11) + offset
    return IntervalBand(x, point, point - 0.05, point + 0.05, "percentile", 0.95, 100)


def all_figures() -> dict[str, Figure]:
    aggregates = {"iqm": interval(0.8), "mean": interval(0.7), "median": interval(0.75),
                  "optimality_gap": interval(0.3)}
    steps = np.array([0.0, 500_000.0, 1_000_000.0])
    return {
        "interval_estimates": figures.interval_estimates({"ours": aggregates, "paper": aggregates},
                                                         external={"paper"}),
        "performance_profile": figures.performance_profile({"ours": band(0.0), "paper": band(0.1)}),
        "probability_of_improvement": figures.probability_of_improvement(
            {("ours", "paper"): interval(0.6), ("ours", "other"): interval(0.9)}, external={"paper"}),
        "sample_efficiency": figures.sample_efficiency({"ours": band(0.0)}, colors={"ours": "#123456"}),
        "learning_curves": figures.learning_curves(
            "dmc/cheetah-run",
            {"ours": [(steps, [0.1, 0.5, 0.7]), (steps, [0.2, 0.4, 0.9])],
             "paper": [(steps, [0.0, 0.3, 0.6]), (steps[:2], [0.1, 0.2])]},
            external={"paper"}),
    }


def test_figures_write_identical_bytes_every_time(tmp_path: Path) -> None:
    first, second = all_figures(), all_figures()
    for name, figure in first.items():
        png, svg = figures.save(figure, tmp_path / "a" / name)
        again_png, again_svg = figures.save(second[name], tmp_path / "b" / name)
        assert png.read_bytes() == again_png.read_bytes(), name
        assert svg.read_bytes() == again_svg.read_bytes(), name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.name == f"{name}.png"
        assert b"<dc:date>" not in svg.read_bytes()


def test_external_agents_are_labelled_in_figures() -> None:
    made = all_figures()
    estimates = figures.svg_bytes(made["interval_estimates"]).decode()
    assert "paper (external)" in estimates and "ours (external)" not in estimates
    improvement = figures.svg_bytes(made["probability_of_improvement"]).decode()
    assert "P(ours &gt; paper (external))" in improvement and "P(ours &gt; other)" in improvement
    curves = figures.svg_bytes(made["learning_curves"]).decode()
    assert "paper (external)" in curves and "dmc/cheetah-run" in curves


def test_colours_and_step_labels() -> None:
    assert figures.colors(["a", "b"]) == {"a": figures.PALETTE[0], "b": figures.PALETTE[1]}
    assert figures.colors([str(i) for i in range(9)])["8"] == figures.PALETTE[0]  # cycles after 8
    assert [figures.step_label(s) for s in (0, 500, 25_000, 1_000_000, 2_500_000)] == ["0", "500", "25k", "1M", "2.5M"]


def test_learning_curves_draw_a_mean_only_where_seeds_share_steps() -> None:
    from matplotlib.collections import LineCollection

    made = all_figures()["learning_curves"]
    ax = made.axes[0]
    lines = ax.get_lines()
    # ours: the mean line; paper: an empty legend line (its seeds differ in steps, so no mean)
    assert len(lines) == 2
    np.testing.assert_allclose(np.asarray(lines[0].get_ydata(), dtype=float), [0.15, 0.45, 0.8])
    assert np.asarray(lines[1].get_xdata()).size == 0
    # one collection of 2 seed lines per agent, and a confidence band for ours only
    seeds = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert [len(c.get_segments()) for c in seeds] == [2, 2]
    assert len(ax.collections) - len(seeds) == 1


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError, match="no agents"):
        figures.interval_estimates({})
    with pytest.raises(ValueError, match="no pairs"):
        figures.probability_of_improvement({})
