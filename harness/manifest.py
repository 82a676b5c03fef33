"""Suite manifests: YAML loaded safely, validated with pydantic, expanded into run specs.

A manifest declares what to run::

    name: quickstart
    description: Two easy DMC tasks, SAC against the random agent.
    variant: single                  # or multitask; 'reward_conditioned' is reserved
    tasks: [dmc/cartpole-balance, {group: dmc-hard}]
    agents:
      sac: {hidden_dims: [64, 64]}   # label -> config overrides of the agent's dataclass
      sac_lr0: {algo: sac, actor_lr: 0.0, critic_lr: 0.0}   # 'algo' picks the agent (default: label)
      random: {}
    seeds: 2                         # or an explicit list [0, 1, 7]
    budget: 5000                     # environment steps per run
    eval: {every: 2500, episodes: 2}
    log_every: 250                   # agent updates between logged agent metrics

With ``variant: single`` every (task, agent) pair is a job: its seeds train together on that task.
With ``variant: multitask`` each agent trains one job over all the manifest's ``tasks`` (stepped
together, observations zero-padded to the largest size, actions cut to each task's size), or one job
per named group when the manifest has ``groups`` instead of ``tasks``::

    variant: multitask
    groups:
      dmc: [{group: dmc-hard}]
      metaworld: [metaworld/assembly, metaworld/reach]

Budgets count each task's environment steps. Multi-task runs are labelled ``<label>-mt``.

Every mistake is reported with the file, the key path and what was expected, as an
:class:`~harness.errors.InputError` (exit 2).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

import agents
from harness import catalog
from harness.errors import InputError

VARIANTS_PLANNED = ("reward_conditioned",)
Variant = Literal["single", "multitask"]
MULTITASK_SUFFIX = "-mt"
"""Appended to the label of multi-task runs, so they never mix with single-task runs of the agent."""


class GroupRef(BaseModel):
    """A named task group of the catalog, e.g. ``{group: dmc-hard}``."""

    model_config = ConfigDict(extra="forbid")
    group: str


class EvalSchedule(BaseModel):
    """When and how much to evaluate."""

    model_config = ConfigDict(extra="forbid")
    every: Annotated[int, Field(gt=0)]
    """Environment steps between evaluations (an evaluation also ends every run)."""
    episodes: Annotated[int, Field(gt=0)] = 10
    """Deterministic-policy episodes per evaluation."""


class Manifest(BaseModel):
    """A validated suite manifest (see the module docstring for the format)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    description: str = ""
    variant: Variant = "single"
    tasks: Annotated[list[str | GroupRef], Field(min_length=1)] | None = None
    groups: Annotated[dict[
        Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")],
        Annotated[list[str | GroupRef], Field(min_length=1)],
    ], Field(min_length=1)] | None = None
    agents: Annotated[dict[str, dict[str, Any]], Field(min_length=1)]
    seeds: Annotated[int, Field(gt=0)] | Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    budget: Annotated[int, Field(gt=0)]
    eval: EvalSchedule
    log_every: Annotated[int, Field(gt=0)] = 1000
    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = None

    @model_validator(mode="after")
    def _budget_fits(self) -> Manifest:
        if self.groups is not None and self.variant != "multitask":
            raise ValueError("groups names the jobs of a multi-task manifest; expected variant: multitask "
                             "(or tasks: [...] for single-task runs)")
        if (self.tasks is None) == (self.groups is None):
            raise ValueError("expected exactly one of tasks: [...] or groups: {name: [...]} (groups only with "
                             "variant: multitask)")
        if self.eval.every > self.budget:
            raise ValueError(
                f"eval.every ({self.eval.every}) is larger than budget ({self.budget}): no evaluation "
                "would happen before the end; expected eval.every <= budget"
            )
        if isinstance(self.seeds, list) and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds lists a seed twice: {self.seeds}")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """One agent entry of a manifest: its label, algorithm and full, validated config."""

    label: str
    algo: str
    config: Any  # the agent's frozen config dataclass

    @property
    def config_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self.config))

    @property
    def config_hash(self) -> str:
        return _hash({"algo": self.algo, "config": self.config_dict})


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One seed of one (task, agent) pair, alone or in a multi-task job: its record and a stable id."""

    run_id: str
    suite: str
    task: str
    agent: AgentSpec
    seed: int
    budget: int
    eval_every: int
    eval_episodes: int
    log_every: int
    tag: str | None
    variant: Variant = "single"

    @property
    def label(self) -> str:
        """What reports group by: the agent label (``-mt`` appended for multi-task runs), with
        ``@tag`` when the run is tagged."""
        label = self.agent.label + (MULTITASK_SUFFIX if self.variant == "multitask" else "")
        return f"{label}@{self.tag}" if self.tag else label


@dataclasses.dataclass(frozen=True)
class Job:
    """What one worker trains: one agent, its seeds trained together (states stacked and vmapped),
    over one task (single-task) or several stepped together (multi-task).

    A job has one run per (task, seed), ``runs`` in task-major order: the run of task ``t`` and seed
    index ``s`` is ``runs[t * len(seeds) + s]``.
    """

    job_id: str
    """Stable id: the hash of the run ids (also names the job's checkpoint folder)."""
    agent: AgentSpec
    """The agent, its label and full config."""
    seeds: tuple[int, ...]
    """The seeds trained together."""
    tasks: tuple[str, ...]
    """Canonical task names; one for a single-task job."""
    budget: int
    """Environment steps of each task."""
    eval_every: int
    """Environment steps between evaluations (an evaluation also ends every job)."""
    eval_episodes: int
    """Deterministic-policy episodes per task and seed at each evaluation."""
    log_every: int
    """Agent updates between logged agent metrics."""
    variant: Variant
    """``single`` or ``multitask``."""
    name: str
    """What progress lines call it: the task of a single-task job, the manifest group of a multi-task one."""
    runs: tuple[RunSpec, ...]
    """One run per (task, seed), task-major."""
    context: tuple[tuple[str, float], ...] = ()
    """Named conditioning values the agent is given (empty for single-task and multi-task jobs)."""

    @property
    def first(self) -> RunSpec:
        return self.runs[0]


@dataclasses.dataclass(frozen=True)
class Plan:
    """A validated manifest and its expansion."""

    manifest: Manifest
    source: Path
    tasks: tuple[catalog.Task, ...]
    """Every task of the plan, once."""
    agents: tuple[AgentSpec, ...]
    jobs: tuple[Job, ...]

    @property
    def runs(self) -> tuple[RunSpec, ...]:
        return tuple(r for j in self.jobs for r in j.runs)


# ----------------------------------------------------------------------------------------------
# Loading


def load(path: Path, overrides: Sequence[str] = ()) -> Plan:
    """Read, override, validate and expand a manifest; InputError names the file and key."""
    raw = read_yaml(path)
    for item in overrides:
        apply_override(raw, item, path)
    return validate(raw, path)


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise InputError(f"{path}: no such manifest (`harness suites` lists the shipped ones)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of keys (name, tasks, agents, ...), got "
                         f"{type(data).__name__}")
    return data


def apply_override(raw: dict[str, Any], item: str, path: Path) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to the raw manifest."""
    key, sep, text = item.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise InputError(f"override {item!r}: expected key=value, e.g. seeds=3 or agents.sac.batch_size=64")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise InputError(f"{path}: override {item!r}: {where} is not a mapping, cannot set {key}")
        node = child
    node[parts[-1]] = value


def validate(raw: dict[str, Any], path: Path) -> Plan:
    """Validate a raw manifest mapping and expand it (see :func:`load`)."""
    variant = raw.get("variant")
    if variant in VARIANTS_PLANNED:
        raise InputError(f"{path}: variant: {variant!r} is planned but not supported yet; "
                         "expected 'single' or 'multitask'")
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise InputError(_format_errors(path, exc)) from None
    task_sets = _task_sets(manifest, path)
    tasks = tuple({t.name: t for tasks in task_sets.values() for t in tasks}.values())
    specs = tuple(_agent_spec(label, entry, path) for label, entry in manifest.agents.items())
    for spec in specs:
        _check_learns(spec, manifest.budget, path)
    return Plan(manifest, path, tasks, specs, _expand(manifest, task_sets, specs))


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s) in the manifest:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p)) or "(top level)"
        got = "" if err["type"] == "missing" else f" (got {err['input']!r})"
        lines.append(f"  {loc}: {err['msg']}{got}")
    return "\n".join(lines)


def _is_union_tag(part: object) -> bool:
    # pydantic names union members in the location ('int', 'list[int]', 'str', 'GroupRef', ...).
    return isinstance(part, str) and (part in {"int", "str", "GroupRef"} or part.startswith("list["))


def _resolve_tasks(refs: Sequence[str | GroupRef], path: Path, key: str) -> tuple[catalog.Task, ...]:
    """The runnable tasks of a task list, each once; ``key`` is where the list is in the manifest."""
    out: list[catalog.Task] = []
    for i, ref in enumerate(refs):
        try:
            names = catalog.group(ref.group).tasks if isinstance(ref, GroupRef) else (ref,)
            resolved = [catalog.resolve(n) for n in names]
        except InputError as exc:
            raise InputError(f"{path}: {key}.{i}: {exc}") from None
        for task in resolved:
            if not task.runnable:
                raise InputError(f"{path}: {key}.{i}: {task.name} cannot be run here ({task.note})")
            if task.name not in {t.name for t in out}:
                out.append(task)
    return tuple(out)


def _task_sets(manifest: Manifest, path: Path) -> dict[str, tuple[catalog.Task, ...]]:
    """The manifest's task lists by name: ``tasks`` (under the manifest's name) or each of ``groups``."""
    if manifest.groups is None:
        assert manifest.tasks is not None
        sets = {manifest.name: _resolve_tasks(manifest.tasks, path, "tasks")}
    else:
        sets = {name: _resolve_tasks(refs, path, f"groups.{name}") for name, refs in manifest.groups.items()}
    for name, tasks in sets.items():
        if manifest.variant == "multitask" and len({t.action_repeat for t in tasks}) > 1:
            where = "tasks" if manifest.groups is None else f"groups.{name}"
            found = ", ".join(f"{t.name} ({t.action_repeat})" for t in tasks)
            raise InputError(f"{path}: {where}: tasks stepped together must share one action repeat; "
                             f"found {found}")
    return sets


def _agent_spec(label: str, entry: dict[str, Any], path: Path) -> AgentSpec:
    where = f"{path}: agents.{label}"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping of config overrides, got {entry!r}")
    overrides = dict(entry)
    algo = overrides.pop("algo", label)
    if algo not in agents.AGENTS:
        raise InputError(f"{where}{'.algo' if 'algo' in entry else ''}: unknown agent {algo!r}; "
                         f"valid agents: {', '.join(sorted(agents.AGENTS))}")
    cls = agents.AGENTS[algo].config_cls
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise InputError(f"{where}.{key}: unknown config key for agent {algo!r}; valid keys: "
                             f"{', '.join(sorted(fields))}")
        try:
            values[key] = TypeAdapter(hints[key]).validate_python(value, strict=False)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise InputError(f"{where}.{key}: {msg}; expected {_type_name(hints[key])}, "
                             f"got {value!r}") from None
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None
    for key in ("batch_size", "num_envs", "n_step", "replay_capacity"):
        if getattr(config, key) < 1:
            raise InputError(f"{where}.{key}: expected a positive integer, got {getattr(config, key)}")
    if config.updates_per_step < 0 or config.warmup_steps < 0:
        raise InputError(f"{where}: updates_per_step and warmup_steps must be >= 0")
    return AgentSpec(label, algo, config)


def _check_learns(spec: AgentSpec, budget: int, path: Path) -> None:
    """An agent that learns must get past its warm-up: the first update follows ``warmup_steps``
    environment steps of each run (an agent with ``updates_per_step: 0`` never updates, by design)."""
    warmup = spec.config.warmup_steps
    if spec.config.updates_per_step > 0 and budget <= warmup:
        raise InputError(f"{path}: budget {budget:,} is not above agent {spec.label}'s warm-up of {warmup:,} "
                         f"environment steps: it would never update; expected budget > {warmup:,}, or "
                         f"agents.{spec.label}.warmup_steps below {budget:,}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _expand(manifest: Manifest, task_sets: dict[str, tuple[catalog.Task, ...]],
            specs: Sequence[AgentSpec]) -> tuple[Job, ...]:
    """Single-task: a job per (task, agent); multi-task: a job per (task set, agent)."""
    units: list[tuple[str, tuple[catalog.Task, ...]]]
    if manifest.variant == "single":
        (tasks,) = task_sets.values()
        units = [(task.name, (task,)) for task in tasks]
    else:
        units = list(task_sets.items())
    jobs: list[Job] = []
    for name, tasks in units:
        names = tuple(t.name for t in tasks)
        for spec in specs:
            runs = tuple(
                RunSpec(
                    run_id=run_id(task, spec, seed, manifest, names),
                    suite=manifest.name,
                    task=task,
                    agent=spec,
                    seed=seed,
                    budget=manifest.budget,
                    eval_every=manifest.eval.every,
                    eval_episodes=manifest.eval.episodes,
                    log_every=manifest.log_every,
                    tag=manifest.tag,
                    variant=manifest.variant,
                )
                for task in names
                for seed in manifest.seed_list
            )
            jobs.append(Job(
                job_id=_hash([r.run_id for r in runs]), agent=spec, seeds=tuple(manifest.seed_list), tasks=names,
                budget=manifest.budget, eval_every=manifest.eval.every, eval_episodes=manifest.eval.episodes,
                log_every=manifest.log_every, variant=manifest.variant, name=name, runs=runs,
            ))
    return tuple(jobs)


def run_id(task: str, spec: AgentSpec, seed: int, manifest: Manifest, job_tasks: Sequence[str]) -> str:
    """A stable id: the hash of everything that defines the run's outcome (not the suite name); a
    multi-task run's also hashes the tasks it was trained with."""
    fields: dict[str, Any] = {
        "task": task,
        "label": spec.label,
        "algo": spec.algo,
        "config": spec.config_dict,
        "seed": seed,
        "budget": manifest.budget,
        "eval": manifest.eval.model_dump(),
        "variant": manifest.variant,
        "tag": manifest.tag,
    }
    if manifest.variant == "multitask":
        fields["job_tasks"] = list(job_tasks)
    return _hash(fields)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def shipped_suites(root: Path) -> list[Path]:
    """The manifests in a ``suites/`` folder, sorted by name."""
    return sorted(root.glob("*.yaml"))
