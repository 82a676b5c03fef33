"""``harness leaderboard build``: the static HTML leaderboard, built from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from harness.leaderboard import BuildOptions, build
from harness.store import Store

STORE_FILE = "harness.duckdb"

BUILD_HELP = """Build the static HTML leaderboard from every finished run in the store, ours and submitted.

Writes a folder of plain files (index, one page per suite, task and agent, a methodology page,
SVG figures) that works from file://, `python -m http.server` or GitHub Pages, with no network
access. Rebuilding from the same store gives the same files, except the one "Built ..." line per
page. A previous leaderboard in the --out folder is replaced; a non-empty folder that holds
anything else is refused.

Example: harness leaderboard build --results results --out leaderboard
"""

ResultsOption = Annotated[Path, typer.Option(
    "--results", envvar="HARNESS_RESULTS",
    help="Results folder; the store is RESULTS/harness.duckdb (default: $HARNESS_RESULTS or ./results).")]


def register(app: typer.Typer) -> None:
    """Add the ``leaderboard`` group (``build``) to the CLI."""
    leaderboard = typer.Typer(
        help="The static HTML leaderboard.\n\nExample: harness leaderboard build --out leaderboard",
        no_args_is_help=True)
    leaderboard.command("build", help=BUILD_HELP)(build_command)
    app.add_typer(leaderboard, name="leaderboard")


def build_command(
    results: ResultsOption = Path("results"),
    out: Annotated[Path, typer.Option("--out", help="Folder to write the leaderboard into.")] = Path("leaderboard"),
    reps: Annotated[int, typer.Option("--reps", min=1, help="Bootstrap repetitions of every interval.")] = (
        BuildOptions().reps),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = BuildOptions().seed,
) -> None:
    result = build(Store(results / STORE_FILE), out, BuildOptions(reps=reps, seed=seed))
    Console().print(Text(
        f"Wrote {result.files} files to {result.out}/: {result.suites} suite tables, {result.tasks} task pages, "
        f"{result.agents} agent pages. Open {result.out / 'index.html'}."))
