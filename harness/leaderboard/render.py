"""Write the leaderboard as a folder of static files: pages, figures, a stylesheet and a script.

Pages are jinja2 templates (``harness/templates/leaderboard``, autoescaped: every string from a
submission shows as text); figures come from :mod:`harness.figures` as SVG, drawn by a
:class:`Drawer` (in worker processes for a large store); the stylesheet and the sortable-table
script are copied next to the pages. Every link is relative, so the folder works from ``file://``,
any static web server and GitHub Pages, with no network access. Apart from the one build-stamp
line per page, the same store gives the same bytes.

Layout::

    index.html  methodology.html
    suites/<group>.html  tasks/<task>.html  agents/<label slug>.html
    figures/suites/<group>-<figure>.svg  figures/tasks/<task>.svg
    assets/style.css  assets/sortable.js
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import numpy as np
from matplotlib.figure import Figure

from harness import figures
from harness.errors import InputError
from harness.leaderboard.data import GRID_POINTS, LEVEL, TOP, Board, Suite, TaskPage, slug, task_slug

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "leaderboard"
ASSETS = ("style.css", "sortable.js")
GENERATOR = "harness leaderboard"
"""The ``<meta name="generator">`` of every page: marks a folder as one a build may rewrite."""
OWNED = ("index.html", "methodology.html", "assets", "suites", "tasks", "agents", "figures")
"""What a build writes in its folder; a rebuild removes these first and leaves anything else."""
PARALLEL_FROM = 24
"""Figures are drawn in worker processes (one per CPU) when there are at least this many task pages."""
METRIC_LABELS = {"return": "episode return", "success": "success rate"}

FigureJob = tuple[Callable[..., Figure], tuple[Any, ...], dict[str, Any], Path]
"""A figure to draw: a function of :mod:`harness.figures`, its arguments, and the SVG file to write."""


def prepare(out: Path) -> None:
    """Make ``out`` ready: create it, or empty a previous leaderboard's files from it.

    Raises :class:`InputError` when ``out`` is a file, or a non-empty folder whose ``index.html``
    was not written by a build (anything else in a previous leaderboard's folder is kept).
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; expected a folder for the leaderboard")
    if out.is_dir() and any(out.iterdir()):
        index = out / "index.html"
        marker = f'<meta name="generator" content="{GENERATOR}">'
        if not index.is_file() or marker not in index.read_text(encoding="utf-8", errors="replace"):
            raise InputError(f"--out {out}: the folder is not empty and holds no leaderboard built by the harness; "
                             "choose an empty or new folder")
        for name in OWNED:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)


class Drawer:
    """Draws figure jobs: in worker processes (one per CPU) when ``parallel``, else at once, in this process.

    Use it as a context manager: leaving it waits for every figure and raises the first error.
    """

    def __init__(self, parallel: bool) -> None:
        workers = os.cpu_count() or 1
        # "spawn", not the platform's fork: forking a process that has loaded JAX (a library caller,
        # the test suite) can deadlock in the child.
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=context) if parallel and workers > 1 else None
        self._pending: list[Future[None]] = []
        self.drawn = 0
        """Figures drawn or queued."""

    def draw(self, jobs: Sequence[FigureJob]) -> None:
        for folder in sorted({job[3].parent for job in jobs}):
            folder.mkdir(parents=True, exist_ok=True)
        self.drawn += len(jobs)
        if self._pool is None:
            for job in jobs:
                _draw(*job)
        else:
            self._pending += [self._pool.submit(_draw, *job) for job in jobs]

    def __enter__(self) -> Drawer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._pool is None:
            return
        try:
            if kind is None:
                for future in self._pending:
                    future.result()
        finally:
            self._pool.shutdown(cancel_futures=True)


def _draw(function: Callable[..., Figure], args: tuple[Any, ...], kwargs: dict[str, Any], path: Path) -> None:
    path.write_bytes(figures.svg_bytes(function(*args, **kwargs)))


def task_figures(tasks: Iterable[TaskPage], out: Path, external: frozenset[str]) -> list[FigureJob]:
    """Each task's learning curves: raw values (return or success rate) of every run, per agent."""
    jobs: list[FigureJob] = []
    for task in tasks:
        curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # label -> (steps, raw values) per run
        for run in task.runs:
            curves.setdefault(run.label, []).append((run.steps, run.raw))
        jobs.append((figures.learning_curves, (task.name, curves),
                     {"external": external, "ylabel": METRIC_LABELS.get(task.metric, task.metric)},
                     out / "figures" / "tasks" / f"{task_slug(task.name)}.svg"))
    return jobs


def suite_figures(suites: Iterable[Suite], out: Path, external: frozenset[str]) -> list[FigureJob]:
    """Each suite's interval estimates, performance profile, sample efficiency and probability of
    improvement (those it has data for)."""
    jobs: list[FigureJob] = []
    folder = out / "figures" / "suites"
    for suite in suites:
        common = {"colors": figures.colors(list(suite.top)), "external": external}
        with_intervals = {row.label: row.intervals for row in suite.ranked if row.intervals is not None}
        if with_intervals:
            jobs.append((figures.interval_estimates, (with_intervals,), {"external": external},
                         folder / f"{suite.name}-intervals.svg"))
        if suite.profiles:
            jobs.append((figures.performance_profile, (suite.profiles,), common, folder / f"{suite.name}-profile.svg"))
        if suite.efficiency:
            jobs.append((figures.sample_efficiency, (suite.efficiency,), common,
                         folder / f"{suite.name}-efficiency.svg"))
        if suite.leader:
            jobs.append((figures.probability_of_improvement, (suite.leader,), common,
                         folder / f"{suite.name}-improvement.svg"))
    return jobs


def write_pages(board: Board, out: Path) -> int:
    """Write every page and the assets into ``out``; returns the number of files."""
    env = _environment()
    common = {"board": board, "stamp": board.stamp, "agents": {a.label: a for a in board.agents},
              "task_pages": frozenset(t.name for t in board.tasks)}
    (out / "assets").mkdir(parents=True, exist_ok=True)
    for name in ASSETS:
        shutil.copyfile(TEMPLATES / name, out / "assets" / name)
    pages: list[tuple[str, str, dict[str, Any]]] = [
        ("index.html", "index.html", {"root": ""}),
        ("methodology.html", "methodology.html", {"root": ""}),
    ]
    pages += [(f"suites/{s.name}.html", "suite.html", {"root": "../", "suite": s}) for s in board.suites]
    pages += [(f"tasks/{task_slug(t.name)}.html", "task.html", {"root": "../", "task": t}) for t in board.tasks]
    pages += [(f"agents/{slug(a.label)}.html", "agent.html", {"root": "../", "agent": a}) for a in board.agents]
    for path, template, context in pages:
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(template).render(**common, **context), encoding="utf-8")
    return len(ASSETS) + len(pages)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=_num, span=_span, step_span=_step_span, sortkey=_sortkey)
    env.globals.update(slug=slug, task_slug=task_slug, metric_labels=METRIC_LABELS, generator=GENERATOR,
                       poi_class=_poi_class, level=LEVEL, top=TOP, grid_points=GRID_POINTS)
    return env


def _num(value: float | None, digits: int = 3) -> str:
    """A score for a table cell: fixed decimals, an en dash for a missing value."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _sortkey(value: float | None) -> str:
    """A cell's ``data-sort`` value: the number at full precision, empty when missing."""
    return "" if value is None or not math.isfinite(value) else f"{value:.10g}"


def _steps(value: float) -> str:
    """Environment steps, short: 25k, 1M, 1.5M, 14M."""
    value = float(value)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.4g}{unit}"
    return f"{value:.0f}"


def _span(pair: Sequence[float], formatter: Callable[[float], str] = str) -> str:
    """``low–high``, or one value when both ends agree."""
    low, high = pair
    return formatter(low) if low == high else f"{formatter(low)}–{formatter(high)}"


def _step_span(pair: Sequence[float]) -> str:
    """A range of environment steps, short: 1M, 4M–14M."""
    return _span(pair, _steps)


def _poi_class(value: float) -> str:
    """A CSS class shading a probability-of-improvement cell by tenths: poi-0 .. poi-9."""
    return f"poi-{min(int(value * 10), 9)}"
