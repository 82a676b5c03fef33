"""``harness gate``: fail a change that makes an agent significantly worse (see harness/gate.py, ci/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness import gate as gate_mod
from harness import scores
from harness.errors import Finding, InputError
from harness.store import Store

STORE_FILE = "harness.duckdb"

GATE_HELP = """Compare a candidate agent with a baseline and decide: regression (exit 1), pass (exit 0) or inconclusive.

CANDIDATE and BASELINE are agent labels in the store: our runs (sac), tagged runs (sac@candidate,
from `harness run ... --tag candidate`) or a submission's label. The gate compares their normalised
scores at --step (default: each run's final evaluation) with stratified-bootstrap intervals of the IQM
difference and of P(candidate > baseline), tests every task for a drop (Welch, Holm-corrected), and
says whether more seeds are needed. A significant drop is a regression only when its effect (the IQM
difference, or P(candidate > baseline) - 0.5) is a drop larger than min_drop; the verdict prints the
effect and its interval. Scores within the tie tolerance of each other are ties in every rule.
Thresholds come from --config (ci/gate.yaml documents every key; without it the defaults apply).
Writes a Markdown summary (with an SVG figure beside it) and a JSON file with every number. An
inconclusive verdict exits with the config's inconclusive_exit_code (default 0, with a warning).

Examples:

  harness gate --candidate sac@candidate --baseline sac@main --suite suites/ci-gate.yaml --config ci/gate.yaml

  harness gate --candidate BRO_fast --baseline BRO --suite bro-dmc --step 1000000 --json gate.json

  harness gate --candidate sac@candidate --baseline sac@main --config ci/gate.yaml --tie-tolerance 0.001
"""

ResultsOption = Annotated[Path, typer.Option(
    "--results", envvar="HARNESS_RESULTS",
    help="Results folder; the store is RESULTS/harness.duckdb (default: $HARNESS_RESULTS or ./results).")]


def register(app: typer.Typer) -> None:
    """Add ``gate`` to the CLI."""
    app.command("gate", help=GATE_HELP)(gate)


def gate(
    candidate: Annotated[str, typer.Option("--candidate", help="Agent label of the change, e.g. sac@candidate.")],
    baseline: Annotated[str, typer.Option("--baseline", help="Agent label to compare with, e.g. sac@main.")],
    suite: Annotated[str | None, typer.Option(
        "--suite", help="Tasks to compare: a manifest (suites/ci-gate.yaml), a task group (bro-dmc) or a "
                        "simulator suite (dmc). Default: every task both labels have runs on.",
        show_default=False)] = None,
    tasks: Annotated[str | None, typer.Option(
        "--tasks", help="Comma-separated task names or aliases, added to --suite.", show_default=False)] = None,
    step: Annotated[int | None, typer.Option(
        "--step", min=0, help="Environment step to compare at (default: each run's final evaluation).",
        show_default=False)] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Gate config (YAML), e.g. ci/gate.yaml (default: the built-in defaults).",
        show_default=False)] = None,
    tie_tolerance: Annotated[float | None, typer.Option(
        "--tie-tolerance", min=0.0, help="Normalised scores within this distance of each other are ties "
                                          "(overrides the config's tie_tolerance; default 0.0005).",
        show_default=False)] = None,
    results: ResultsOption = Path("results"),
    markdown: Annotated[Path, typer.Option(
        "--markdown", help="Markdown summary to write; its figure goes beside it as <name>.svg.")]
        = Path("reports/gate/gate.md"),
    json_path: Annotated[Path, typer.Option("--json", help="JSON file with every number.")]
        = Path("reports/gate/gate.json"),
) -> None:
    cfg = gate_mod.load_config(config) if config is not None else gate_mod.GateConfig()
    if tie_tolerance is not None:
        cfg = gate_mod.with_overrides(cfg, "--tie-tolerance", tie_tolerance=tie_tolerance)
    names = [name.strip() for name in tasks.split(",") if name.strip()] if tasks is not None else None
    if tasks is not None and not names:
        raise InputError(f"--tasks {tasks!r}: expected comma-separated task names")
    store = Store(results / STORE_FILE)
    selected = scores.select_tasks(suite, names, store)
    result = gate_mod.run_gate(store, candidate, baseline, cfg, tasks=selected, step=step)
    md_path, figure = gate_mod.write_markdown(result, markdown)
    json_file = gate_mod.write_json(result, json_path)
    console = Console()
    print_result(console, result)
    console.print(Text(f"Wrote {md_path}{f' and {figure}' if figure else ''} and {json_file}."))
    if result.verdict == "regression":
        effect = result.effect
        assert effect is not None  # a regression needs compared tasks
        raise Finding(f"regression: {result.candidate} is significantly worse than {result.baseline} "
                      f"(rule(s): {', '.join(result.fired)}; {gate_mod.EFFECT_NAMES[effect.measure]} "
                      f"{gate_mod.format_interval(effect.value)}, min_drop {effect.min_drop:g})")
    if result.verdict == "inconclusive":
        typer.echo(f"warning: inconclusive: {'; '.join(result.reasons)}", err=True)
        raise typer.Exit(result.exit_code)


def print_result(console: Console, result: gate_mod.GateResult) -> None:
    """The verdict, the aggregate table and the flagged tasks on the terminal."""
    style = {"regression": "bold red", "pass": "bold green", "inconclusive": "bold yellow"}[result.verdict]
    console.print(Text(gate_mod.VERDICT_LINES[result.verdict], style=style))
    if result.iqm is not None and result.mean is not None and result.poi is not None:
        table = Table("aggregate", "candidate", "baseline", "candidate - baseline",
                      title=f"{result.candidate} vs {result.baseline} ({len(result.tasks)} task(s), "
                            f"{result.config.level:.0%} intervals)")
        for agg in (result.iqm, result.mean):
            table.add_row(agg.name, gate_mod.format_interval(agg.candidate), gate_mod.format_interval(agg.baseline),
                          gate_mod.format_interval(agg.difference))
        table.add_row("P(candidate > baseline)", gate_mod.format_interval(result.poi), "", "")
        console.print(table)
    for reason in gate_mod.explanations(result):
        console.print(Text(f"- {reason}"), soft_wrap=True)
    for task in result.flagged:
        console.print(Text(f"- dropped: {task.task} {task.difference:+.3f} [{task.low:+.3f}, {task.high:+.3f}], "
                           f"p ({result.config.task_correction}) {task.p_adjusted:.3g}"), soft_wrap=True)
    if result.verdict == "inconclusive" and result.power.extra_seeds > 0:
        console.print(Text(f"- about {result.power.extra_seeds} more seed(s) per task on each side would be needed"))
