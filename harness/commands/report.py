"""``harness report``: aggregate statistics of selected runs as an HTML page with figures, JSON and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.errors import InputError
from harness.report import ReportOptions, build, write
from harness.scores import AlignMethod, select_tasks
from harness.stats import Method
from harness.store import Store

STORE_FILE = "harness.duckdb"

REPORT_HELP = """Compare agents on a task group: aggregates with confidence intervals, profiles, curves.

Selects finished runs (trained here or submitted) by task group (--suite) or tasks (--tasks) and
agent labels (--agents), takes each run's score at --step (default: its final evaluation) and
writes OUT/index.html (self-contained; open it in a browser), OUT/report.json and CSV tables with
every number it shows, and the figures as PNG and SVG under OUT/figures.

The aggregates (IQM, mean, median, optimality gap), performance profile and probability of
improvement compare only the tasks where every selected agent has at least 2 runs with a score;
tasks left out, runs left out and unequal runs per task are listed in the report. The same store,
selection and --seed give identical files.

Examples:

  harness report --suite tdmpc2-dmc --agents tdmpc2,sac --step 1000000

  harness report --suite dmc-hard --align nearest --tolerance 25000 --reps 2000 --out reports/quick
"""

ResultsOption = Annotated[Path, typer.Option(
    "--results", envvar="HARNESS_RESULTS",
    help="Results folder; the store is RESULTS/harness.duckdb (default: $HARNESS_RESULTS or ./results).")]


def register(app: typer.Typer) -> None:
    """Add ``report`` to the CLI."""
    app.command("report", help=REPORT_HELP)(report)


def report(
    results: ResultsOption = Path("results"),
    suite: Annotated[str | None, typer.Option(
        "--suite", help="Task group (e.g. tdmpc2-dmc, bro-dmc, dmc-hard; `harness tasks` lists them), suite "
                        "(dmc, metaworld, myosuite, playground) or a manifest (suites/dmc-hard.yaml).",
        show_default=False)] = None,
    tasks: Annotated[str | None, typer.Option(
        "--tasks", help="Comma-separated task names or aliases, e.g. dmc/dog-run,cup-catch (added to --suite).",
        show_default=False)] = None,
    agents: Annotated[str | None, typer.Option(
        "--agents", help="Comma-separated agent labels (default: every label with runs on the tasks).",
        show_default=False)] = None,
    step: Annotated[int | None, typer.Option(
        "--step", min=0, help="Environment step to compare at (default: each run's final evaluation).",
        show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output folder (default: reports/<suite or 'all'>).", show_default=False)] = None,
    align: Annotated[AlignMethod, typer.Option(
        "--align", help="How a run's value at a step is found: the nearest evaluation point within --tolerance, "
                        "or linear interpolation.")] = "nearest",
    tolerance: Annotated[float, typer.Option(
        "--tolerance", min=0.0, help="Largest distance in steps to the nearest evaluation point (--align "
                                     "nearest).")] = 0.0,
    grid: Annotated[str | None, typer.Option(
        "--grid", help="Steps of the sample-efficiency curves as START:STOP:EVERY, e.g. 100000:1000000:100000 "
                       "(default: the steps every selected run reports).", show_default=False)] = None,
    reps: Annotated[int, typer.Option("--reps", min=1, help="Bootstrap repetitions.")] = 50_000,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    method: Annotated[Method, typer.Option("--method", help="Confidence interval method.")] = "percentile",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Report seed (recorded in the report).")] = 0,
) -> None:
    store = Store(results / STORE_FILE)
    options = ReportOptions(
        tasks=select_tasks(suite, _names(tasks), store), group=suite, agents=_labels(agents), step=step, align=align,
        tolerance=tolerance, grid=parse_grid(grid) if grid is not None else None, reps=reps, level=level,
        method=method, seed=seed,
    )
    built = build(store, options)
    files = write(built, out or Path("reports") / (Path(suite).stem if suite else "all"))
    console = Console()
    table = Table("rank", "agent", "IQM", "mean", "median", "optimality gap", "runs",
                  title=f"{built.title} ({len(built.compared_tasks)} tasks compared)")
    for agent in built.agents:
        cells = [f"{e.point:.3f} [{e.low:.3f}, {e.high:.3f}]" for e in agent.aggregates.values()]
        kinds = [k for k, shown in (("external", agent.external), (agent.variant, agent.variant != "single")) if shown]
        label = agent.label + (f" ({', '.join(kinds)})" if kinds else "")
        table.add_row(str(agent.rank), Text(label), *cells, str(agent.runs))
    console.print(table)
    for note in built.notes:
        console.print(Text(f"- {note}"), soft_wrap=True)
    console.print(Text(f"Wrote {files.html} (data: {files.json}, {len(files.tables)} CSV tables, "
                       f"{len(files.figures)} figure files)."))


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise InputError(f"--tasks {text!r}: expected comma-separated task names")
    return names


def _labels(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    labels = [label.strip() for label in text.split(",") if label.strip()]
    if not labels:
        raise InputError(f"--agents {text!r}: expected comma-separated agent labels")
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise InputError(f"--agents {text!r}: {', '.join(duplicates)} given twice")
    return tuple(labels)


MAX_GRID_STEPS = 1000
"""Most steps --grid may give (each step is one bootstrap per agent)."""


def parse_grid(text: str) -> tuple[float, ...]:
    """START:STOP:EVERY -> the steps START, START + EVERY, ... up to STOP inclusive."""
    expected = f"--grid {text!r}: expected START:STOP:EVERY in steps with 0 <= START <= STOP and EVERY > 0, " \
               "e.g. 100000:1000000:100000"
    try:
        start, stop, every = (float(part) for part in text.split(":"))
    except ValueError:
        raise InputError(expected) from None
    if not (np.isfinite([start, stop, every]).all() and 0 <= start <= stop and every > 0):
        raise InputError(expected)
    count = int(np.floor((stop - start) / every + 1e-9)) + 1
    if count > MAX_GRID_STEPS:
        raise InputError(f"--grid {text!r}: {count:,} steps; at most {MAX_GRID_STEPS} (choose a larger EVERY)")
    return tuple(start + every * i for i in range(count))
