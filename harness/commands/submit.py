"""``harness submit`` and ``harness submissions``: external results into the store, listed, removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.catalog import Metric
from harness.errors import Finding, InputError
from harness.store import Store
from harness.submit import (
    IMPORT_KEY,
    Format,
    LongColumns,
    Plan,
    ReadOptions,
    RunVariant,
    StepGrid,
    SubmitOptions,
    list_submissions,
    plan_submission,
    remove_submission,
    store_submission,
    submission_details,
)
from harness.submit.formats import FORMAT_INFO, LONG_FIELDS

STORE_FILE = "harness.duckdb"

SUBMIT_HELP = """Validate published per-seed curves and store them as one external submission.

Prints what would be stored (agent, tasks, seeds, runs, points, step range per task group) and every
problem found, each with its file, row, column, value and what was expected. Nothing is stored when
there is a problem (exit 1) or with --dry-run. Task names go through the catalog's aliases.

Formats, each with an example:

long: one CSV or Parquet file with the columns task, seed, step, value and optionally metric
  harness submit my-agent.csv --format long --agent my-agent --meta paper=https://arxiv.org/abs/...
  harness submit runs.parquet --format long --agent sac-paper --column task=env --metric eval/return
  harness submit paper.csv --format long --agent x-paper --ignore-column '' --ignore-column exp_name \
      --metric auto --metric-map avg_return=return --merge-aliases

tdmpc2: a folder of TD-MPC2-style CSVs, one per task (step,reward,seed or step,success,seed)
  harness submit tdmpc2/results/tdmpc2 --format tdmpc2 --agent tdmpc2-paper --skip-unknown-tasks

bro: a folder of BRO-style .npy arrays (evaluations, seeds), one per task, and their step grid
  harness submit trainingdata/BRO --format bro --agent bro-paper --step-start 25000 --step-every 25000

brc: BRC's results/<benchmark>/BRC_multitask or BRC_singletask: .npy arrays (seeds, evaluations)
  harness submit results/dmc/BRC_multitask --format brc --agent brc-paper

dreamerv3: DreamerV3-style score files (records of task, method, seed, xs, ys)
  harness submit scores/dmc_proprio-ddpg.json.gz --format dreamerv3 --agent ddpg-paper --method ddpg


humanoidbench: HumanoidBench's published JSON {task: {method: {"seed_N": {million_steps, return}}}}
  harness submit hand_ablation.json --format humanoidbench --method "Blocked DreamerV3" --agent dreamerv3-blocked

fasttd3: FastTD3's {task: {env_step, return}} JSON with one return list per seed (its published
  humanoidbench_result.json holds means and min/max only and is rejected, task by task, for that reason)
  harness submit humanoidbench_result.json --format fasttd3 --agent fasttd3-paper

`harness submit --list-formats` lists the formats with what each reads.

A seed label that carries two runs (TD-MPC2's tdmpc folder) is a problem until you pass
--split-duplicate-seeds; two published names of one catalog task until you pass --merge-aliases.
The long format and every rule are in docs/submitting.md.
"""

ResultsOption = Annotated[Path, typer.Option(
    "--results", envvar="HARNESS_RESULTS",
    help="Results folder; the store is RESULTS/harness.duckdb (default: $HARNESS_RESULTS or ./results).")]


def register(app: typer.Typer) -> None:
    """Add ``submit`` and the ``submissions`` group (list, rm) to the CLI."""
    app.command("submit", help=SUBMIT_HELP)(submit)
    submissions = typer.Typer(help="List external submissions (the default) or remove one.\n\n"
                                   "Examples: harness submissions; harness submissions rm 3f9c2a1b7d04")
    submissions.callback(invoke_without_command=True)(submissions_default)
    submissions.command("list")(submissions_list)
    submissions.command("show")(submissions_show)
    submissions.command("rm")(submissions_rm)
    app.add_typer(submissions, name="submissions")


def _list_formats(value: bool) -> None:
    """``--list-formats``: print each format, what it reads and an example, then stop."""
    if not value:
        return
    console = Console()
    for name, info in FORMAT_INFO.items():
        console.print(Text(name, style="bold"))
        console.print(Text(f"  reads: {info.reads}"), soft_wrap=True)
        console.print(Text(f"  example: {info.example}"), soft_wrap=True)
    raise typer.Exit()


def submit(
    path: Annotated[Path, typer.Argument(exists=True, help="The file or folder to submit.")],
    fmt: Annotated[Format, typer.Option("--format", help="long, tdmpc2, bro, brc, dreamerv3, humanoidbench or "
                                                         "fasttd3 (--list-formats says what each reads).")],
    agent: Annotated[str, typer.Option("--agent", help="Label of the runs in reports (stored as given).")],
    suite: Annotated[str | None, typer.Option("--suite", help="Suite the results belong to.")] = None,
    meta: Annotated[list[str] | None, typer.Option(
        "--meta", help="key=value provenance, repeatable: paper, url, commit, notes, any key.")] = None,
    column: Annotated[list[str] | None, typer.Option(
        "--column", help="long: FIELD=NAME, the file's column for task, seed, step, value, metric.")] = None,
    metric: Annotated[str | None, typer.Option(
        "--metric", help="long: keep the rows of this metric, or auto: per task the rows of its catalog "
                         "metric (needed when the file has several).")] = None,
    metric_map: Annotated[list[str] | None, typer.Option(
        "--metric-map", help="long, with --metric auto: NAME=return|success, a metric name of the file "
                             "and what it measures, repeatable (avg_return, success_rate, ... are known).")] = None,
    ignore_column: Annotated[list[str] | None, typer.Option(
        "--ignore-column", help="long: leave this column out, repeatable ('' for an unnamed index column).")] = None,
    step_start: Annotated[int | None, typer.Option("--step-start", min=0,
                                                   help="bro, brc: step of the first evaluation.")] = None,
    step_every: Annotated[int | None, typer.Option("--step-every", min=1,
                                                   help="bro, brc: steps between evaluations.")] = None,
    robot: Annotated[str, typer.Option(
        "--robot", help="humanoidbench: the robot of task keys without one (push -> h1hand-push).")] = "h1hand",
    skip_unknown_tasks: Annotated[bool, typer.Option(
        "--skip-unknown-tasks", help="Leave out (and list) tasks the catalog does not know.")] = False,
    split_duplicate_seeds: Annotated[bool, typer.Option(
        "--split-duplicate-seeds",
        help="Store each further run under a reused seed label as a new seed (listed).")] = False,
    merge_aliases: Annotated[bool, typer.Option(
        "--merge-aliases",
        help="Store the rows of several published names of one catalog task as that task (listed).")] = False,
    variant: Annotated[RunVariant | None, typer.Option(
        "--variant", help="Kind of runs: single (one agent per task), multitask (one agent on all its tasks) "
                          "or reward_conditioned (default: brc reads it from BRC's folder name, else single).",
        show_default=False)] = None,
    method: Annotated[str | None, typer.Option(
        "--method", help="dreamerv3, humanoidbench: the method of the file to read (needed when it holds "
                         "several).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print; store nothing.")] = False,
    results: ResultsOption = Path("results"),
    list_formats: Annotated[bool, typer.Option(
        "--list-formats", is_eager=True, callback=_list_formats,
        help="List the formats, what each reads and an example; then stop.")] = False,
) -> None:
    options = SubmitOptions(
        read=ReadOptions(fmt, columns=_columns(column or []), metric=metric,
                         metric_map=_metric_map(metric_map or []), ignore_columns=tuple(ignore_column or []),
                         grid=_grid(step_start, step_every), method=method, robot=robot),
        agent=agent, suite=suite, meta=_pairs("--meta", meta or []),
        skip_unknown_tasks=skip_unknown_tasks, split_duplicate_seeds=split_duplicate_seeds,
        merge_aliases=merge_aliases, variant=variant,
    )
    store = Store(results / STORE_FILE)
    plan = plan_submission(store, path, options)
    console = Console()
    print_plan(console, plan)
    if plan.problems:
        raise Finding(f"submission rejected: {len(plan.problems)} problem(s), listed above; "
                      "nothing was stored")
    if dry_run:
        console.print("Dry run: nothing was stored.")
        return
    submission_id = store_submission(store, plan)
    console.print(Text(f"Stored submission {submission_id} in {store.path}."))


def submissions_default(
    ctx: typer.Context,
    results: ResultsOption = Path("results"),
) -> None:
    """List external submissions; `harness submissions rm ID` removes one."""
    if ctx.invoked_subcommand is None:
        submissions_list(results)


def submissions_list(results: ResultsOption = Path("results")) -> None:
    """List external submissions with their counts and metadata.

    Example: harness submissions --results results
    """
    frame = list_submissions(Store(results / STORE_FILE))
    console = Console()
    if frame.empty:
        console.print(Text(f"No submissions in {results / STORE_FILE}."))
        return
    table = Table("id", "agent", "format", "suite", "submitted (UTC)", "tasks", "runs", "points", "files",
                  "meta")
    for row in frame.itertuples():
        given = {k: v for k, v in json.loads(row.meta).items() if k != IMPORT_KEY}
        table.add_row(*(Text(str(cell)) for cell in (
            row.submission_id, row.agent, row.format, row.suite or "", f"{row.submitted_at:%Y-%m-%d %H:%M}",
            row.tasks, row.runs, row.points, row.files, ", ".join(f"{k}={v}" for k, v in given.items()))))
    console.print(table)


def submissions_show(
    submission_id: Annotated[str, typer.Argument(help="The id `harness submissions` shows.")],
    results: ResultsOption = Path("results"),
) -> None:
    """Show one submission: its files, how it was imported, every published task name and the
    catalog task it was stored as (merged names marked), the notes, and its runs per task.

    Example: harness submissions show 3f9c2a1b7d04
    """
    details = submission_details(Store(results / STORE_FILE), submission_id)
    console = Console()
    imported = details.meta.get(IMPORT_KEY, {})
    head = Table.grid(padding=(0, 2))
    for key, value in (
        ("submission", details.submission_id), ("agent", details.agent), ("format", details.format),
        ("suite", details.suite or "-"), ("submitted (UTC)", f"{details.submitted_at:%Y-%m-%d %H:%M}"),
        ("harness", details.harness_version),
        *((k, str(v)) for k, v in details.meta.items() if k != IMPORT_KEY),
        ("options", ", ".join(f"{k}={v}" for k, v in imported.get("options", {}).items()
                              if v not in (None, False, {}, []))),
    ):
        head.add_row(Text(key, style="bold"), Text(value))
    console.print(head)
    files = Table("file", "sha256", "bytes", title=f"files ({len(details.files)})")
    for f in details.files:
        files.add_row(Text(f.name), f.sha256, f"{f.size:,}")
    console.print(files)
    merged = imported.get("merged_names", {})
    names = Table("published name", "catalog task", "", title="task names")
    for name, task in imported.get("task_names", {}).items():
        names.add_row(Text(name), Text(task), "merged" if task in merged else "")
    console.print(names)
    tasks = Table("task", "runs", "seeds", "points", "steps", title="runs per task")
    for row in details.tasks.itertuples():
        tasks.add_row(Text(row.task), str(row.runs), _seed_range(list(row.seeds)), str(row.points),
                      f"{int(row.first_step):,} to {int(row.last_step):,}")
    console.print(tasks)
    for title, lines in (("Skipped tasks", imported.get("skipped_tasks", [])), ("Notes", imported.get("notes", []))):
        if lines:
            console.print(Text(f"{title} ({len(lines)}):", style="bold"))
            for line in lines:
                console.print(Text(f"  - {line}"), soft_wrap=True)


def submissions_rm(
    submission_id: Annotated[str, typer.Argument(help="The id `harness submissions` shows.")],
    results: ResultsOption = Path("results"),
) -> None:
    """Remove a submission with its runs and curves, in one transaction.

    Example: harness submissions rm 3f9c2a1b7d04
    """
    removed = remove_submission(Store(results / STORE_FILE), submission_id)
    Console().print(Text(f"Removed submission {removed.submission_id} (agent {removed.agent!r}): "
                         f"{removed.runs} runs, {removed.points} points."))


def print_plan(console: Console, plan: Plan) -> None:
    """What a submission would store, what was done to the data, and every problem."""
    options = plan.options
    runs = plan.runs()
    head = Table.grid(padding=(0, 2))
    for key, value in (
        ("agent", options.agent), ("format", options.read.format), ("suite", options.suite or "-"),
        ("submission", plan.submission_id),
        ("files", f"{len(plan.files)} ({sum(f.size for f in plan.files):,} bytes)"),
        ("tasks", str(runs["task"].nunique())), ("runs", str(len(runs))),
        ("seeds", _seed_range(runs["seed"].tolist())), ("points", str(len(plan.points))),
        ("variant", plan.variant), *((k, v) for k, v in options.meta.items()),
    ):
        head.add_row(Text(key, style="bold"), Text(value))
    console.print(head)
    summary = plan.summary()
    if not summary.empty:
        table = Table("group", "tasks", "runs", "seeds per task", "points", "steps")
        for row in summary.itertuples():
            table.add_row(Text(str(row.group)), str(row.tasks), str(row.runs), row.seeds_per_task,
                          str(row.points), f"{row.first_step:,} to {row.last_step:,}")
        console.print(table)
    if plan.skipped:
        skipped = f"Skipped tasks ({len(plan.skipped)}): {', '.join(plan.skipped)}"
        console.print(Text(skipped), soft_wrap=True)
    for title, lines in (("Notes", plan.notes), ("Problems", tuple(map(str, plan.problems)))):
        if lines:
            console.print(Text(f"{title} ({len(lines)}):", style="bold"))
            for line in lines:
                console.print(Text(f"  - {line}"), soft_wrap=True)


def _seed_range(seeds: list[int]) -> str:
    if not seeds:
        return "-"
    return f"{min(seeds)}-{max(seeds)}" if min(seeds) != max(seeds) else str(seeds[0])


def _pairs(option: str, items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{option} {item!r}: expected KEY=VALUE")
        if key in pairs:
            raise InputError(f"{option} {key}: given twice")
        pairs[key] = value
    return pairs


def _columns(items: list[str]) -> LongColumns:
    mapping = _pairs("--column", items)
    unknown = sorted(set(mapping) - set(LONG_FIELDS))
    if unknown:
        raise InputError(f"--column {unknown[0]}=...: expected one of {', '.join(LONG_FIELDS)}")
    return LongColumns(**mapping)


def _metric_map(items: list[str]) -> dict[str, Metric]:
    mapping = _pairs("--metric-map", items)
    for name, kind in mapping.items():
        if kind not in ("return", "success"):
            raise InputError(f"--metric-map {name}={kind}: expected {name}=return or {name}=success")
    return {name: cast(Metric, kind) for name, kind in mapping.items()}


def _grid(start: int | None, every: int | None) -> StepGrid | None:
    if start is None and every is None:
        return None
    if start is None or every is None:
        raise InputError("--step-start and --step-every go together")
    return StepGrid(start, every)
