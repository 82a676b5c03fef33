"""The static HTML leaderboard: ``harness leaderboard build``.

:func:`build` reads the store once (:mod:`harness.leaderboard.data`: final scores, bootstrap
intervals, the figures' data) and writes a folder of plain files
(:mod:`harness.leaderboard.render`) that works from ``file://``, a static web server or
GitHub Pages without network access.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.leaderboard.data import BuildOptions, assemble, read, task_pages
from harness.leaderboard.render import PARALLEL_FROM, Drawer, prepare, suite_figures, task_figures, write_pages
from harness.store import Store

__all__ = ["BuildOptions", "BuildResult", "build"]


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote."""

    out: Path
    """The folder."""
    files: int
    """Files written (pages, figures, assets)."""
    suites: int
    """Suite tables (task groups with data)."""
    tasks: int
    """Task pages."""
    agents: int
    """Agent pages."""


def build(store: Store, out: Path, options: BuildOptions | None = None) -> BuildResult:
    """Build the leaderboard of every finished run in ``store`` into the folder ``out`` (default options if None).

    Task figures are drawn (in worker processes, for a large store) while the suites' statistics
    are computed. Raises :class:`harness.errors.InputError` when the store is missing or holds no
    finished run, or when ``out`` is a non-empty folder that holds no previous leaderboard.
    """
    with store.connect(read_only=True) as con:
        source = read(con, str(store.path))
    prepare(out)
    tasks = task_pages(source)
    with Drawer(parallel=len(tasks) >= PARALLEL_FROM) as drawer:
        drawer.draw(task_figures(tasks, out, source.external))
        board = assemble(source, tasks, options or BuildOptions())
        drawer.draw(suite_figures(board.suites, out, source.external))
        pages = write_pages(board, out)
    return BuildResult(out, pages + drawer.drawn, len(board.suites), len(board.tasks), len(board.agents))
