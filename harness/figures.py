"""Figures of reports and the leaderboard: plain numbers in, a matplotlib ``Figure`` out.

Every function takes plain arrays or the statistics' dataclasses (:class:`harness.stats.Interval`,
:class:`harness.stats.IntervalBand`) keyed by agent label, and returns a new ``Figure`` drawn with
the Agg canvas; nothing touches pyplot's global figure registry. :func:`save`, :func:`svg_bytes` and
:func:`png_bytes` write the same figure to the same bytes every time (fixed SVG hash salt, no
date in the metadata), so re-running a report gives identical files.

Agents named in ``external`` (submitted, not trained by the harness) are labelled
"<label> (external)" in every figure.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from numpy.typing import ArrayLike
from scipy.stats import t as student_t

from harness.stats import Interval, IntervalBand

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
"""Okabe-Ito colours (distinguishable with colour-vision deficiencies), assigned in label order."""

AGGREGATE_TITLES = {"iqm": "IQM", "mean": "Mean", "median": "Median", "optimality_gap": "Optimality gap"}
"""Display names of the standard aggregates; other names are shown as given."""

SVG_SALT = "harness"
"""Fixed salt for the ids matplotlib writes into SVG files (their default is random)."""

PNG_DPI = 150


def colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour per label, in order, cycling through :data:`PALETTE`."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def display_name(label: str, external: Collection[str] = ()) -> str:
    """The label as figures show it: "<label> (external)" for a submitted agent."""
    return f"{label} (external)" if label in external else label


def step_label(step: float, _position: object = None) -> str:
    """A step count for an axis: 0, 500k, 1M, 2.5M."""
    if abs(step) >= 1e6:
        return f"{step / 1e6:g}M"
    if abs(step) >= 1e3:
        return f"{step / 1e3:g}k"
    return f"{step:g}"


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _color_map(labels: Sequence[str], given: Mapping[str, str] | None) -> Mapping[str, str]:
    return given if given is not None else colors(labels)


def interval_estimates(
    intervals: Mapping[str, Mapping[str, Interval]],
    *,
    colors: Mapping[str, str] | None = None,
    external: Collection[str] = (),
    xlabel: str = "normalised score",
) -> Figure:
    """Point estimates with confidence intervals: one panel per aggregate, one row per agent.

    intervals: agent -> aggregate name -> Interval; agents are drawn top to bottom in mapping
    order, panels left to right in the first agent's aggregate order.
    """
    labels = list(intervals)
    if not labels:
        raise ValueError("interval_estimates: no agents given")
    names = list(intervals[labels[0]])
    palette = _color_map(labels, colors)
    figure = _new_figure(2.6 * len(names) + 1.4, 0.9 + 0.42 * len(labels))
    axes = figure.subplots(1, len(names), sharey=True, squeeze=False)[0]
    rows = np.arange(len(labels))[::-1]  # (agents,): the first agent on top
    for ax, name in zip(axes, names, strict=True):
        for row, label in zip(rows, labels, strict=True):
            interval = intervals[label][name]
            ax.barh(row, interval.high - interval.low, left=interval.low, height=0.6,
                    color=palette[label], alpha=0.75)
            ax.vlines(interval.point, row - 0.3, row + 0.3, color="black", linewidth=1.5)
        ax.set_title(AGGREGATE_TITLES.get(name, name))
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
        ax.spines[["top", "right", "left"]].set_visible(False)
        ax.tick_params(axis="y", length=0)
    axes[0].set_yticks(rows, [display_name(label, external) for label in labels])
    return figure


def performance_profile(
    profiles: Mapping[str, IntervalBand],
    *,
    colors: Mapping[str, str] | None = None,
    external: Collection[str] = (),
    xlabel: str = "normalised score τ",
    ylabel: str = "fraction of runs with score > τ",
) -> Figure:
    """Score distributions: the fraction above each threshold, with a pointwise confidence band.

    profiles: agent -> IntervalBand over x = thresholds (τ).
    """
    figure = _new_figure(6.4, 4.2)
    ax = figure.subplots()
    palette = _color_map(list(profiles), colors)
    for label, band in profiles.items():
        ax.plot(band.x, band.point, color=palette[label], linewidth=2, label=display_name(label, external))
        ax.fill_between(band.x, band.low, band.high, color=palette[label], alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False)
    return figure


def probability_of_improvement(
    pairs: Mapping[tuple[str, str], Interval],
    *,
    colors: Mapping[str, str] | None = None,
    external: Collection[str] = (),
) -> Figure:
    """P(X > Y) with confidence intervals, one row per ordered pair (X, Y), top to bottom.

    pairs: (x label, y label) -> Interval of P(x > y). Bars take X's colour.
    """
    keys = list(pairs)
    if not keys:
        raise ValueError("probability_of_improvement: no pairs given")
    labels = list(dict.fromkeys(label for pair in keys for label in pair))
    palette = _color_map(labels, colors)
    figure = _new_figure(7.0, 0.9 + 0.42 * len(keys))
    ax = figure.subplots()
    rows = np.arange(len(keys))[::-1]  # (pairs,): the first pair on top
    for row, (x, y) in zip(rows, keys, strict=True):
        interval = pairs[x, y]
        ax.barh(row, interval.high - interval.low, left=interval.low, height=0.6, color=palette[x], alpha=0.75)
        ax.vlines(interval.point, row - 0.3, row + 0.3, color="black", linewidth=1.5)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(rows, [f"P({display_name(x, external)} > {display_name(y, external)})" for x, y in keys])
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("probability of improvement")
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.tick_params(axis="y", length=0)
    return figure


def sample_efficiency(
    curves: Mapping[str, IntervalBand],
    *,
    colors: Mapping[str, str] | None = None,
    external: Collection[str] = (),
    xlabel: str = "environment steps",
    ylabel: str = "IQM normalised score",
) -> Figure:
    """An aggregate along training steps with a pointwise confidence band, one line per agent.

    curves: agent -> IntervalBand over x = steps.
    """
    figure = _new_figure(6.4, 4.2)
    ax = figure.subplots()
    palette = _color_map(list(curves), colors)
    for label, band in curves.items():
        ax.plot(band.x, band.point, color=palette[label], linewidth=2, marker="o", markersize=3,
                label=display_name(label, external))
        ax.fill_between(band.x, band.low, band.high, color=palette[label], alpha=0.2, linewidth=0)
    ax.xaxis.set_major_formatter(FuncFormatter(step_label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False)
    return figure


def learning_curves(
    task: str,
    curves: Mapping[str, Sequence[tuple[ArrayLike, ArrayLike]]],
    *,
    colors: Mapping[str, str] | None = None,
    external: Collection[str] = (),
    xlabel: str = "environment steps",
    ylabel: str = "normalised score",
) -> Figure:
    """One task's curves: a thin line per seed and, where an agent's seeds share their steps, their mean
    with a 95% confidence band (Student-t interval of the mean over seeds at each step; needs 2 seeds).

    curves: agent -> one (steps, scores) pair per seed, both (points,).
    """
    figure = _new_figure(6.4, 4.2)
    ax = figure.subplots()
    palette = _color_map(list(curves), colors)
    for label, seeds in curves.items():
        arrays = [(np.asarray(steps, dtype=np.float64), np.asarray(scores, dtype=np.float64))
                  for steps, scores in seeds]
        ax.add_collection(LineCollection([np.column_stack(pair) for pair in arrays], colors=palette[label],
                                         linewidths=0.8, alpha=0.35))
        shared = bool(arrays) and all(np.array_equal(steps, arrays[0][0]) for steps, _ in arrays)
        if shared:
            stacked = np.stack([scores for _, scores in arrays])  # (seeds, points)
            mean = stacked.mean(axis=0)  # (points,)
            if len(arrays) >= 2:
                half = student_t.ppf(0.975, len(arrays) - 1) * stacked.std(axis=0, ddof=1) / np.sqrt(len(arrays))
                ax.fill_between(arrays[0][0], mean - half, mean + half, color=palette[label], alpha=0.2, linewidth=0)
            ax.plot(arrays[0][0], mean, color=palette[label], linewidth=2, label=display_name(label, external))
        else:
            ax.plot([], [], color=palette[label], linewidth=2, label=display_name(label, external))
    ax.autoscale_view()
    ax.set_title(task)
    ax.xaxis.set_major_formatter(FuncFormatter(step_label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, loc="upper left", fontsize="small")
    return figure


def svg_bytes(figure: Figure) -> bytes:
    """The figure as SVG, identical bytes on every call (fixed id salt, no date)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_SALT, "svg.fonttype": "none"}):  # text as text: smaller, faster
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG at :data:`PNG_DPI`, identical bytes on every call."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return buffer.getvalue()


def save(figure: Figure, stem: Path) -> tuple[Path, Path]:
    """Write ``stem.png`` and ``stem.svg``; returns their paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.parent / f"{stem.name}.png", stem.parent / f"{stem.name}.svg"
    png.write_bytes(png_bytes(figure))
    svg.write_bytes(svg_bytes(figure))
    return png, svg
