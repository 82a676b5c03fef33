"""The ``harness`` command: a thin layer over the library.

Exit codes: 0 success, 1 a finding (failed runs, a rejected submission, a regression) or a
results folder that cannot be read or written (a broken store, a full disk), 2 bad usage or bad
input. ``HARNESS_RESULTS`` sets the results folder (default ``./results``).
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from harness.errors import Finding, HarnessError, InputError

if TYPE_CHECKING:
    from harness import catalog
    from harness import store as store_mod


FEATURES: dict[str, tuple[str, str]] = {
    "submit": ("harness.commands.submit",
               "Validate published per-seed curves and store them as one external submission."),
    "submissions": ("harness.commands.submit", "List external submissions (the default) or remove one."),
    "baselines": ("harness.commands.baselines",
                  "The field's published result sets: list them, import them into the store."),
    "report": ("harness.commands.report",
               "Compare agents on a task group: aggregates with confidence intervals, profiles, curves."),
    "gate": ("harness.commands.gate", "Compare a candidate agent with a baseline and decide: regression (exit 1), "
                                      "pass (exit 0) or inconclusive."),
    "leaderboard": ("harness.commands.leaderboard", "The static HTML leaderboard."),
    "install": ("harness.commands.install",
                "Install a simulator package that is not on the package registry into this environment."),
}
"""Feature commands: name -> (module whose ``register(app)`` adds it, its one line of help). A module is
imported only when its command runs or shows its own help, so `harness --help`, `status` or `tasks`
do not pay for JAX, matplotlib or numba (tests check each line against the command's own help)."""


class FeatureCommand(TyperCommand):
    """A feature command listed by its name and one line of help; its module is imported when it is used."""

    def __init__(self, name: str) -> None:
        self.module, summary = FEATURES[name]
        super().__init__(name, help=summary, short_help=summary)

    def load(self) -> TyperCommand | TyperGroup:
        """The real command, as its module registers it."""
        app = typer.Typer()
        importlib.import_module(self.module).register(app)
        command = typer.main.get_group(app).commands[str(self.name)]
        assert isinstance(command, TyperCommand | TyperGroup)
        return command

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return self.load().make_context(info_name, args, parent=parent, **extra)


class _Group(TyperGroup):
    """The CLI's commands, the feature commands loaded on use; a HarnessError raised by any command
    becomes a message on stderr and its exit code."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *FEATURES]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return FeatureCommand(cmd_name) if cmd_name in FEATURES else super().get_command(ctx, cmd_name)

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer's bundled click)
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            typer.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if exc.errno not in _STORAGE_ERRNOS:
                raise
            typer.echo(f"error: cannot write {exc.filename or 'the results folder'}: {exc.strerror}; free some "
                       "space or make the folder writable, and run the same command again (what was written "
                       "before is kept)", err=True)
            ctx.exit(1)


#: A full disk, a quota, a read-only or forbidden folder: an exit 1 with advice, not a traceback.
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


app = typer.Typer(
    cls=_Group,
    help="Benchmark-and-evaluation harness for continuous-control RL.\n\n"
    "Example: harness run suites/quickstart.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
SUITES_DIR = Path("suites")

ResultsOption = Annotated[
    Path | None,
    typer.Option("--results", help="Results folder (default: $HARNESS_RESULTS or ./results).", show_default=False),
]


def results_dir(results: Path | None) -> Path:
    """The results folder: the option, else $HARNESS_RESULTS, else ./results."""
    return results or Path(os.environ.get("HARNESS_RESULTS", "results"))


def open_store(results: Path | None) -> store_mod.Store:
    from harness import store as store_mod

    return store_mod.Store(results_dir(results) / "harness.duckdb")


# ----------------------------------------------------------------------------------------------
# harness run


@app.command(context_settings={"allow_extra_args": False})
def run(
    manifest: Annotated[Path, typer.Argument(help="Suite manifest (YAML), e.g. suites/quickstart.yaml.")],
    overrides: Annotated[list[str] | None, typer.Argument(
        help="key=value overrides applied on top of the manifest, e.g. seeds=3 agents.sac.batch_size=64.",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the expanded plan; run nothing.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also list every run: task, label, seed, "
                                          "budget, job and state.")] = False,
    results: ResultsOption = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per GPU, else 1).",
                                                 min=1, show_default=False)] = None,
    seeds: Annotated[int | None, typer.Option(help="Override the number of seeds.", min=1,
                                               show_default=False)] = None,
    budget: Annotated[int | None, typer.Option(help="Override the budget (environment steps per run).",
                                                min=1, show_default=False)] = None,
    tag: Annotated[str | None, typer.Option(help="Tag these runs (reports label them AGENT@TAG), e.g. a git ref.",
                                             show_default=False)] = None,
    step_workers: Annotated[int | None, typer.Option(
        help="Processes stepping each job's host simulators (default: one per core for multi-task jobs, "
             "none for single-task ones). Results do not depend on it.", min=1, show_default=False)] = None,
    executor_name: Annotated[str, typer.Option(
        "--executor", help="Where jobs train: local (worker processes here), ray (a Ray cluster or a local Ray "
                           "runtime) or slurm (Slurm jobs through submitit); see docs/scaling.md.")] = "local",
    executor_config: Annotated[Path | None, typer.Option(
        help="Executor settings (YAML: local:/ray:/slurm: sections), instead of the manifest's executor: section.",
        show_default=False)] = None,
) -> None:
    """Run a suite: train every (task, agent, seed) and record the curves in DuckDB.

    Re-running the same command skips finished runs and resumes interrupted ones from their last
    checkpoint (Ctrl-C or even kill -9 lose at most the work since the last evaluation).

    Examples: harness run suites/quickstart.yaml seeds=3 agents.sac.batch_size=64;
    harness run suites/dmc-hard.yaml budget=20000 --dry-run --verbose;
    harness run suites/dmc-hard.yaml --executor slurm --executor-config cluster.yaml
    """
    import dataclasses

    from harness import executor, executors
    from harness.executors import settings as settings_mod

    extra = list(overrides or [])
    extra += [f"seeds={seeds}"] if seeds is not None else []
    extra += [f"budget={budget}"] if budget is not None else []
    extra += [f"tag={tag}"] if tag is not None else []
    plan, settings = settings_mod.load_plan(manifest, extra, executor_name, executor_config)
    out = results_dir(results)
    if isinstance(settings, settings_mod.LocalSettings):
        n_workers = workers or settings.workers or executor.default_workers() * settings.jobs_per_gpu
        settings = dataclasses.replace(settings, workers=n_workers)
        runs_on = f"workers: {n_workers}"
    elif workers is not None:
        raise InputError(f"--workers sets the local executor's worker processes; with --executor {executor_name}, "
                         "set cpus_per_job, gpus_per_job or jobs_per_gpu in its settings (docs/scaling.md)")
    else:
        n_workers, runs_on = 1, f"executor: {executor_name}"
    _print_plan(plan, out, runs_on, extra, verbose)
    if dry_run:
        return
    try:
        outcome = executor.execute(plan, out, n_workers, console, step_workers,
                                   executors.launcher(settings, step_workers))
    except (executor.Interrupted, KeyboardInterrupt) as exc:
        # The process is on its way out: a further Ctrl-C must not turn the exit code into a
        # signal death (Python restores default handlers while it finalises, but keeps SIG_IGN).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        console.print("[yellow]stopped.[/] Run the same command again to resume from the last checkpoints.")
        raise typer.Exit(exc.exit_code if isinstance(exc, executor.Interrupted) else 130) from None
    _print_summary(open_store(out), plan)
    if outcome.skipped:
        console.print(f"{len(outcome.skipped)} job(s) were already finished and were skipped.")
    if outcome.failed:
        for job_id, error in outcome.failed:
            console.print(f"[red]failed[/] job {job_id}: {escape(error)}")
        raise Finding(f"{len(outcome.failed)} of {len(plan.jobs)} run group(s) failed (a job trains a group of runs); "
                      "their errors are recorded in the store (`harness status`)")


def _print_plan(plan: object, out: Path, runs_on: str, overrides: list[str], verbose: bool) -> None:
    from rich.text import Text

    from harness.executor import describe, job_state
    from harness.manifest import Plan

    assert isinstance(plan, Plan)
    m = plan.manifest
    console.print(Text.assemble((m.name, "bold"), f" — {m.description}" if m.description else ""))
    if overrides:
        console.print(Text(f"  overrides: {' '.join(overrides)} (the description is the manifest's; the "
                           "figures below are what runs)"))
    unique = len({t.same_as or t.name for t in plan.tasks})
    if len(plan.tasks) <= 12:
        listed = ", ".join(t.name for t in plan.tasks)
    else:
        suites = dict.fromkeys(t.suite for t in plan.tasks)
        listed = ", ".join(f"{sum(t.suite == s for t in plan.tasks)} {s}" for s in suites)
    console.print(f"  variant {m.variant}; {len(plan.tasks)} task(s), {unique} unique: {listed}", markup=False)
    for spec in plan.agents:
        console.print(Text(f"  agent {spec.label} = {spec.algo} (config {spec.config_hash})"))
    states = [job_state(out, j) for j in plan.jobs]
    console.print(
        f"  seeds {m.seed_list}; budget {m.budget:,} env steps; eval every {m.eval.every:,} steps x "
        f"{m.eval.episodes} episodes{'; tag ' + m.tag if m.tag else ''}"
    )
    grouped = m.variant == "multitask" or (m.variant == "reward_conditioned" and m.groups is not None)
    together = "the seeds and tasks of a job train together" if grouped else "the seeds of a job train together"
    console.print(
        f"  {len(plan.runs)} runs in {len(plan.jobs)} jobs ({together}): "
        f"{states.count('new')} new, {states.count('resumable')} to resume, {states.count('finished')} finished"
    )
    known = None
    if grouped:
        from harness.conditioning import Conditioning
        from harness.envs import sizes

        known = sizes.measured(out, plan.tasks, console)
        for job in plan.jobs:
            obs, act = max(known[t][0] for t in job.tasks), max(known[t][1] for t in job.tasks)
            conditioning = Conditioning.of(job)
            width = 0 if conditioning is None else conditioning.width
            psi = f" (+ {width} ψ inputs)" if width else ""
            console.print(f"  job {describe(job)}: {len(job.tasks)} tasks, observations padded to {obs}{psi}, "
                          f"actions {act}")
    console.print(Text(f"  results: {out}/ (store {out / 'harness.duckdb'}); {runs_on}"))
    _warn_slow_jobs(plan, known)
    if verbose:
        table = Table("task", "label", "seed", "budget", "job", "state", title=f"{len(plan.runs)} runs")
        for job, state in zip(plan.jobs, states, strict=True):
            for r in job.runs:
                table.add_row(Text(r.task), Text(r.label), str(r.seed), f"{job.budget:,}", job.job_id, state)
        console.print(table)


def _warn_slow_jobs(plan: Any, known: dict[str, tuple[int, int]] | None) -> None:
    """On a machine without a GPU, warn of each agent whose jobs' updates would take more than an hour
    (:mod:`harness.cost`: an estimate from the update's operation count, before anything runs)."""
    from rich.text import Text

    from harness.executor import visible_gpus

    first: dict[str, Any] = {}  # agent label -> its first job of an agent that learns
    for job in plan.jobs:
        if job.agent.config.updates_per_step > 0:
            first.setdefault(job.agent.label, job)
    if not first or visible_gpus():
        return
    from harness import cost

    rate = None
    for job in first.values():
        sizes = (max(known[t][0] for t in job.tasks), max(known[t][1] for t in job.tasks)) if known else \
            cost.NOMINAL_SIZES
        if not cost.may_take_long(job, sizes):
            continue
        rate = rate or cost.machine_rate()
        found = cost.estimate(job, sizes, rate)
        if found.seconds > cost.WARN_AFTER_S:
            console.print(Text(f"  warning: {cost.warning(found)}", style="yellow"))


def _print_summary(store: store_mod.Store, plan: object) -> None:
    import numpy as np

    from harness import store as store_mod
    from harness.manifest import Plan

    assert isinstance(plan, Plan)
    run_ids = [r.run_id for r in plan.runs]
    with store.connect(read_only=True) as con:
        scores = store_mod.load_scores(con, statuses=("finished",))
        runs = con.execute("SELECT run_id, status FROM runs WHERE run_id IN (SELECT unnest(?))", [run_ids]).df()
    scores = scores[scores.run_id.isin(run_ids)]
    final = scores.sort_values("step").groupby("run_id").tail(1)
    table = Table(title=f"{plan.manifest.name}: final evaluation (mean ± std over seeds)")
    table.add_column("task")
    labels = list(dict.fromkeys(r.label for r in plan.runs))
    for label in labels:
        table.add_column(Text(label), justify="right")
    for task in plan.tasks:
        cells = []
        for label in labels:
            vals = final[(final.task == task.name) & (final.label == label)].raw.to_numpy()
            cells.append("-" if len(vals) == 0 else f"{np.mean(vals):.3g} ± {np.std(vals):.2g} (n={len(vals)})")
        table.add_row(task.name, *cells)
    console.print(table)
    n_failed = int((runs.status == "failed").sum())
    if n_failed:
        console.print(f"[red]{n_failed} run(s) failed[/]")


# ----------------------------------------------------------------------------------------------
# harness status / suites / tasks / agents


@app.command()
def status(
    results: ResultsOption = None,
    by_task: Annotated[bool, typer.Option("--by-task", help="One row per task, with its last evaluation.")] = False,
) -> None:
    """Show the runs in the store: per agent (or per task), runs by status and how far they got.

    Works while a run is in progress (the store is only held for the moment of each write).

    Example: harness status --by-task
    """
    import pandas as pd

    store = open_store(results)
    keys = "r.source, coalesce(r.suite, '') AS suite, r.label, r.status" + (", r.task" if by_task else "")
    with store.connect(read_only=True) as con:
        frame = con.execute(
            "WITH score AS ("
            "  SELECT c.run_id, c.step, c.value, max(c.step) OVER (PARTITION BY c.run_id) AS last "
            "  FROM curves c JOIN runs r USING (run_id) JOIN tasks t ON t.task = r.task "
            "  WHERE c.metric = 'eval/' || t.metric AND c.psi = 'nominal') "
            f"SELECT {keys}, count(DISTINCT r.task) AS tasks, count(DISTINCT r.run_id) AS runs, "
            "  max(s.last) AS last_step, avg(s.value) FILTER (WHERE s.step = s.last) AS last_eval "
            "FROM runs r LEFT JOIN score s USING (run_id) GROUP BY ALL ORDER BY ALL"
        ).df()
        errors = con.execute("SELECT label, task, seed, error FROM runs WHERE status = 'failed' "
                             "ORDER BY label, task, seed").df()
    if frame.empty:
        console.print(Text(f"no runs in {store.path}"))
        return
    table = Table(title=Text(f"runs in {store.path}"))
    columns = ["source", "suite", "agent", "status"] + (["task", "runs", "last step", "last eval"] if by_task
                                                      else ["tasks", "runs", "last step"])
    for col in columns:
        table.add_column(col, justify="right" if col in ("tasks", "runs", "last step", "last eval") else "left")
    for row in frame.itertuples():
        last_step = "-" if pd.isna(row.last_step) else f"{int(row.last_step):,}"
        cells = [row.source, row.suite, row.label, row.status]
        if by_task:
            last_eval = "-" if pd.isna(row.last_eval) else f"{row.last_eval:.3g}"
            cells += [row.task, str(row.runs), last_step, last_eval]
        else:
            cells += [str(row.tasks), str(row.runs), last_step]
        table.add_row(*(Text(str(cell)) for cell in cells))
    console.print(table)
    for row in errors.itertuples():
        first_line = (row.error or "").splitlines()[0] if row.error else ""
        console.print(f"[red]failed[/] {escape(f'{row.label} {row.task} seed {row.seed}: {first_line}')}")


@app.command()
def suites() -> None:
    """List the shipped suite manifests (suites/*.yaml) with their task count and description.

    Example: harness suites
    """
    from harness import manifest as manifest_mod

    paths = manifest_mod.shipped_suites(SUITES_DIR)
    if not paths:
        raise InputError(f"no manifests in {SUITES_DIR.resolve()}: run from the repository root")
    table = Table(title="suites")
    for col in ("manifest", "tasks", "agents", "seeds", "budget", "description"):
        table.add_column(col)
    for path in paths:
        plan = manifest_mod.load(path)
        m = plan.manifest
        table.add_row(Text(str(path)), str(len(plan.tasks)), Text(", ".join(m.agents)), str(len(m.seed_list)),
                      f"{m.budget:,}", Text(m.description))
    console.print(table)


@app.command()
def tasks(
    group: Annotated[str | None, typer.Argument(help="A task group (e.g. dmc-hard) or a suite (dmc, metaworld, "
                                                "myosuite, playground, gymnasium, humanoidbench, "
                                                "shadowhand); all tasks when omitted.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Make, reset and step every selected task, each in a "
                                        "worker process, and print what ran; exit 1 if any failed.")] = False,
    workers: Annotated[int, typer.Option(help="With --check: worker processes at once.", min=1)] = 2,
    time_limit: Annotated[float, typer.Option("--time-limit", help="With --check: seconds per task (imports and "
                                              "compilation included) before it is cut.", min=1)] = 600.0,
    steps: Annotated[int, typer.Option(help="With --check: random-action steps per task.", min=1)] = 10,
) -> None:
    """List the task catalog (metric, episode length, action repeat, normalisation, aliases) and count
    the unique tasks per suite; with --check, prove that each selected task runs.

    A task that re-implements another suite's task (Playground's DeepMind-Control tasks) is listed
    under its own suite and flagged, and counted once in the total.

    Examples: harness tasks dmc-hard; harness tasks playground --check --time-limit 300
    """
    from harness import catalog
    from harness.taskcheck import suite_counts

    if group is None:
        selected = list(catalog.all_tasks())
    elif group in catalog.SUITES:
        selected = [t for t in catalog.all_tasks() if t.suite == group]
    else:
        selected = [catalog.resolve(n) for n in catalog.group(group).tasks]
    if check:
        _check_tasks(selected, workers, time_limit, steps)
        return
    table = Table(title=f"tasks{' in ' + group if group else ''} ({len(selected)})")
    for col in ("task", "metric", "episode", "repeat", "normalisation", "aliases", "note"):
        table.add_column(col)
    for t in selected:
        table.add_row(t.name, t.metric, str(t.episode_length), str(t.action_repeat), t.normalisation,
                      ", ".join(a for a in t.aliases if "/" not in a), t.note)
    console.print(table)
    counts = suite_counts(selected)
    console.print("unique tasks: " + ", ".join(
        f"{c.suite} {c.unique}" + (f" (+{c.duplicates} re-implementing another suite's)" if c.duplicates else "")
        for c in counts) + f"; in all {sum(c.unique for c in counts)}")
    if group is None:
        console.print("groups: " + ", ".join(f"{g.name} ({len(g.tasks)})" for g in catalog.GROUPS.values()))


def _check_tasks(selected: list[catalog.Task], workers: int, time_limit: float, steps: int) -> None:
    from harness import catalog
    from harness.taskcheck import CheckResult, check_tasks

    runnable = [t.name for t in selected if t.runnable]
    console.print(f"checking {len(runnable)} task(s) with {workers} worker(s), {steps} steps each, "
                  f"{time_limit:g} s limit per task ({len(selected) - len(runnable)} not runnable, left out)")
    results: list[CheckResult] = []
    for result in check_tasks(runnable, workers=workers, time_limit_s=time_limit, steps=steps):
        results.append(result)
        console.print(f"  [{len(results)}/{len(runnable)}] {result.task}: {result.status} ({result.seconds:.0f} s)",
                      highlight=False)
    table = Table(title=f"task check ({len(results)})")
    for col in ("task", "status", "obs", "act", "steps/s", "seconds", "error"):
        table.add_column(col)
    style = {"ok": "green", "failed": "red", "cut": "yellow"}
    for r in sorted(results, key=lambda r: r.task):
        ok = r.status == "ok"
        table.add_row(r.task, f"[{style[r.status]}]{r.status}[/]", str(r.observation_size) if ok else "",
                      str(r.action_size) if ok else "", f"{r.steps_per_s:,.0f}" if ok else "", f"{r.seconds:.0f}",
                      Text(r.error))
    console.print(table)
    by_suite: dict[str, list[CheckResult]] = {}
    for r in results:
        by_suite.setdefault(catalog.resolve(r.task).suite, []).append(r)
    for suite, rows in by_suite.items():
        console.print(f"{suite}: {len(rows)} checked, {sum(r.status == 'ok' for r in rows)} ok, "
                      f"{sum(r.status == 'failed' for r in rows)} failed, {sum(r.status == 'cut' for r in rows)} cut")
    bad = [r.task for r in results if r.status != "ok"]
    if bad:
        raise Finding(f"{len(bad)} of {len(results)} task(s) did not run: {', '.join(sorted(bad))}")


@app.command("agents")
def list_agents() -> None:
    """List the reference agents and their configurable keys (defaults are the published ones).

    Example: harness agents
    """
    import dataclasses

    import agents

    table = Table(title="agents")
    for col in ("agent", "description", "config keys (defaults)"):
        table.add_column(col)
    for agent in agents.every():
        keys = ", ".join(f"{f.name}={f.default!r}" for f in dataclasses.fields(agent.config_cls))
        table.add_row(agent.name, agent.description, keys)
    console.print(table)


# ----------------------------------------------------------------------------------------------
# The entry point


def main() -> None:
    """Console entry point."""
    os.environ.setdefault("MUJOCO_GL", "disable")
    app()
