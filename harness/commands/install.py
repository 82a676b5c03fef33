"""``harness install NAME``: simulators that only exist as source in another repository."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from harness.install import INSTALLERS, install

INSTALL_HELP = """Install a simulator package that is not on the package registry into this environment.

Takes upstream's source at the commit the harness pins (or --source: a folder, or a .tar.gz/.zip
archive URL), builds it with `pip install --no-deps` (its own pins cannot share an environment
with ours), applies the recorded compatibility fixes to the installed copy, writes what was done
into `harness_install.json` inside the installed package, and installs the few registry
packages its tasks need. Running it again reinstalls from scratch.

Names: {names}

Examples:
  harness install humanoidbench
  harness install humanoidbench --source ../humanoid-bench
"""


def register(app: typer.Typer) -> None:
    """Add ``install`` to the CLI."""
    names = "; ".join(f"{i.name} ({i.description}, {i.repository} at {i.commit[:7]})" for i in INSTALLERS.values())
    app.command("install", help=INSTALL_HELP.format(names=names))(install_command)


def install_command(
    name: Annotated[str, typer.Argument(help=f"What to install: {', '.join(INSTALLERS)}.")],
    source: Annotated[str | None, typer.Option(
        "--source", help="A folder or an archive URL (.tar.gz, .zip) instead of upstream at the pinned commit.",
        show_default=False)] = None,
) -> None:
    console = Console()
    record = install(name, source, log=lambda line: console.print(Text(line)))
    by_fix: dict[str, list[str]] = {}
    for patch in record.patches:
        by_fix.setdefault(patch.fixes, []).append(patch.path)
    for fixes, paths in by_fix.items():
        shown = paths[0] if len(paths) == 1 else f"{len(paths)} files ({paths[0]}, ...)"
        console.print(Text(f"fixed {shown}: {fixes}"))
    console.print(Text(f"installed {record.package} from {record.source}"
                       + (f" (commit {record.commit})" if record.commit else "")))
