"""``harness baselines``: the field's published result sets, listed and imported."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.baselines import Added, add_baselines, registry, select
from harness.commands.submit import STORE_FILE, ResultsOption
from harness.store import Store

DOWNLOADS = "downloads"
"""Folder under the results folder that downloaded sets are kept in."""


def register(app: typer.Typer) -> None:
    """Add the ``baselines`` group (list, add) to the CLI."""
    group = typer.Typer(help="The field's published result sets: list them, import them into the store.\n\n"
                             "Examples: harness baselines list; harness baselines add tdmpc2 bro brc-multitask")
    group.command("list")(baselines_list)
    group.command("add")(baselines_add)
    app.add_typer(group, name="baselines")


def baselines_list() -> None:
    """List the published result sets `harness baselines add` imports: agent label, format, files,
    upstream commit, licence.

    Example: harness baselines list
    """
    table = Table("name", "agent", "format", "files", "upstream", "licence")
    for name, baseline in registry().items():
        formats = ", ".join(dict.fromkeys(p.format for p in baseline.parts))
        files = sum(len(p.files) for p in baseline.parts)
        upstream = f"{baseline.repository}@{baseline.commit[:7]}" + (f" ({baseline.archive})" if baseline.archive
                                                                      else "")
        table.add_row(Text(name), Text(baseline.agent), formats, str(files), Text(upstream), Text(baseline.licence))
    console = Console()
    console.print(table)
    for name, baseline in registry().items():
        console.print(Text(f"{name}: {baseline.description}"), soft_wrap=True)


def baselines_add(
    names: Annotated[list[str], typer.Argument(help="Sets to import (`harness baselines list`).")],
    source: Annotated[Path | None, typer.Option(
        "--from", exists=True, file_okay=False,
        help="Take the files from this folder (each part's folder below it, as upstream) instead of "
             "downloading them.")] = None,
    results: ResultsOption = Path("results"),
) -> None:
    """Import published result sets: download their files at the pinned commit (or take them from
    --from DIR), check every file's SHA-256 against the registry, and submit them through the same
    validation as `harness submit`, with their citation, licence and upstream location as provenance.
    A set already in the store is left as it is.

    Examples: harness baselines add tdmpc2 bro; harness baselines add brc-multitask --from ~/BRC/results
    """
    console = Console()

    def report(item: Added) -> None:
        text = {"stored": f"stored as submission {item.submission_id} ({item.runs} runs)",
                "present": f"already in the store (submission {item.submission_id})",
                "no catalog task": "left out: none of its tasks is in the catalog"}[item.outcome]
        skipped = (f"; left out {len(item.skipped)} task(s) not in the catalog: {', '.join(item.skipped)}"
                   if item.skipped and item.outcome == "stored" else "")
        console.print(Text(f"{item.baseline} {item.part}: {text}{skipped}"), soft_wrap=True)

    add_baselines(Store(results / STORE_FILE), select(names), source, results / DOWNLOADS, report)
