"""Suite manifests: YAML loaded safely, validated with pydantic, expanded into run specs.

A manifest declares what to run::

    name: quickstart
    description: Two easy DMC tasks, SAC against the random agent.
    variant: single                  # or multitask, or reward_conditioned (with a psi: section)
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

With ``variant: reward_conditioned`` (tasks with a reward family, :mod:`harness.rewards`) each agent
is trained conditioned on the reward parameters ψ: every sampled transition gets a ψ drawn from
α·δ(ψ*) + (1 - α)·p_Ψ and its reward recomputed from the stored reward components, while acting
uses the task's own ψ*. Every evaluation scores the policy under ψ* (``nominal``) and under each
named ψ of ``psi.eval``. Agents listed in ``psi.unconditioned`` train on ψ* alone, as in a
single-task (or, with ``groups``, multi-task) run, and are evaluated under the same ψ (the
zero-shot comparison); an agent of ``psi.references`` trains, unconditioned, on one named
evaluation ψ (the upper reference for it), on the tasks that have that ψ::

    variant: reward_conditioned
    tasks: [dmc/walker-run, dmc/cheetah-run]
    agents: {sac: {}, sac_nominal: {algo: sac}, sac_speed4: {algo: sac}}
    psi:
      alpha: 0.5                     # share of ψ* among the drawn ψ (default 0.5)
      distribution: family           # p_Ψ: family (each parameter's own draw) or uniform
      unconditioned: [sac_nominal]
      references: {sac_speed4: speed4}   # label -> the named ψ it trains on (optional)
      eval:                          # task -> name -> parameters (the others are ψ*'s)
        dmc/walker-run: {speed2: {move_speed: 2}, speed4: {move_speed: 4}}
        dmc/cheetah-run: {backwards: {direction: -1}}

Reward-conditioned runs are labelled ``<label>-rc``.

Every mistake is reported with the file, the key path and what was expected, as an
:class:`~harness.errors.InputError` (exit 2).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError, model_validator

import agents
from harness import catalog, rewards, textfile
from harness.errors import InputError
from harness.jobs import (
    AgentSpec,
    EvalPsi,
    Job,
    PsiSettings,
    RunSpec,
    Variant,
    stable_hash,
)
from harness.runfiles import NOMINAL_PSI
from harness.textfile import short_repr

MAX_BUDGET = 10**10
"""Most environment steps a run may take (far past any published run; step counts are 64-bit)."""
MAX_SEEDS = 1000
"""Most seeds a manifest may list or count."""
MAX_SEED = 2**31 - 1
"""Largest seed (the store keeps seeds as 32-bit integers)."""
MAX_EVAL_EPISODES = 10_000
"""Most evaluation episodes per evaluation."""
MAX_RUNS = 100_000
"""Most runs (tasks x agents x seeds) a manifest may expand to."""
MAX_TEXT = 10_000
"""Longest description; names, tags and agent labels are at most ``MAX_NAME`` characters."""
MAX_NAME = 200

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=MAX_NAME)]
# Strict: a bool, a float or a string is not taken for an integer (YAML reads `true` and `1e6` so).
Steps = Annotated[int, Strict(), Field(gt=0, le=MAX_BUDGET)]


class GroupRef(BaseModel):
    """A named task group of the catalog, e.g. ``{group: dmc-hard}``."""

    model_config = ConfigDict(extra="forbid")
    group: str


class EvalSchedule(BaseModel):
    """When and how much to evaluate."""

    model_config = ConfigDict(extra="forbid")
    every: Steps
    """Environment steps between evaluations (an evaluation also ends every run)."""
    episodes: Annotated[int, Strict(), Field(gt=0, le=MAX_EVAL_EPISODES)] = 10
    """Deterministic-policy episodes per evaluation."""


class PsiSection(BaseModel):
    """The ``psi:`` section of a reward-conditioned manifest."""

    model_config = ConfigDict(extra="forbid")
    alpha: Annotated[float, Strict(), Field(ge=0.0, le=1.0)] = 0.5
    """Share of sampled transitions relabelled with ψ* itself."""
    distribution: rewards.Distribution = "family"
    """p_Ψ, the distribution of the other ψ (:data:`harness.rewards.Distribution`)."""
    unconditioned: list[Annotated[str, Field(min_length=1, max_length=MAX_NAME)]] = []
    """Agent labels trained on ψ* only (evaluated under every ψ all the same)."""
    references: dict[str, Name] = {}
    """Agent label -> the named evaluation ψ it is trained on, unconditioned (the upper reference)."""
    eval: dict[str, dict[Name, dict[str, Any]]] = {}
    """Task -> evaluation name -> ψ parameters (missing ones are ψ*'s)."""


class Manifest(BaseModel):
    """A validated suite manifest (see the module docstring for the format)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    description: Annotated[str, Field(max_length=MAX_TEXT)] = ""
    variant: Variant = "single"
    tasks: Annotated[list[str | GroupRef], Field(min_length=1)] | None = None
    groups: Annotated[dict[Name, Annotated[list[str | GroupRef], Field(min_length=1)]], Field(min_length=1)] | None \
        = None
    agents: Annotated[dict[Annotated[str, Field(min_length=1, max_length=MAX_NAME)], dict[str, Any]],
                      Field(min_length=1)]
    seeds: Annotated[int, Strict(), Field(gt=0, le=MAX_SEEDS)] | Annotated[
        list[Annotated[int, Strict(), Field(ge=0, le=MAX_SEED)]], Field(min_length=1, max_length=MAX_SEEDS)]
    budget: Steps
    eval: EvalSchedule
    log_every: Steps = 1000
    tag: Name | None = None
    psi: PsiSection | None = None

    @model_validator(mode="after")
    def _budget_fits(self) -> Manifest:
        if self.groups is not None and self.variant == "single":
            raise ValueError("groups names the jobs of a multi-task manifest; expected variant: multitask "
                             "(or tasks: [...] for single-task runs)")
        if (self.psi is None) != (self.variant != "reward_conditioned"):
            raise ValueError("psi: {...} goes with variant: reward_conditioned, and that variant needs it "
                             "(psi: {} takes the defaults)")
        if (self.tasks is None) == (self.groups is None):
            raise ValueError("expected exactly one of tasks: [...] or groups: {name: [...]} (groups only with "
                             "variant: multitask)")
        if self.eval.every > self.budget:
            raise ValueError(
                f"eval.every ({self.eval.every}) is larger than budget ({self.budget}): no evaluation "
                "would happen before the end; expected eval.every <= budget"
            )
        if isinstance(self.seeds, list) and len(set(self.seeds)) != len(self.seeds):
            twice = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
            raise ValueError(f"seeds lists a seed twice: {short_repr(twice)}")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


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
    data = textfile.load_yaml(textfile.read_text(path, "manifest"), str(path))
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
        value = textfile.load_yaml(text, f"{path}: override {item!r}")
    except InputError:
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
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise InputError(_format_errors(path, exc)) from None
    task_sets = _task_sets(manifest, path)
    tasks = tuple({t.name: t for tasks in task_sets.values() for t in tasks}.values())
    n_runs = sum(len(t) for t in task_sets.values()) * len(manifest.agents) * len(manifest.seed_list)
    if n_runs > MAX_RUNS:
        raise InputError(f"{path}: tasks x agents x seeds is {n_runs:,} runs; expected at most {MAX_RUNS:,} "
                         "(split it into several manifests)")
    specs = tuple(_agent_spec(label, entry, path) for label, entry in manifest.agents.items())
    for spec in specs:
        _check_learns(spec, manifest.budget, path)
    psi = None if manifest.psi is None else _psi_settings(manifest, task_sets, path)
    return Plan(manifest, path, tasks, specs, _expand(manifest, task_sets, specs, psi))


def _psi_settings(manifest: Manifest, task_sets: dict[str, tuple[catalog.Task, ...]], path: Path) -> PsiSettings:
    """The validated ``psi:`` section: every task has a reward family, every evaluation ψ names a task
    of the manifest and parameters of its family within their ranges."""
    section = manifest.psi
    assert section is not None
    for name, tasks in task_sets.items():
        where = "tasks" if manifest.groups is None else f"groups.{name}"
        for task in tasks:
            if task.name not in rewards.BY_TASK:
                raise InputError(f"{path}: {where}: {task.name} has no reward family, which variant: "
                                 f"reward_conditioned needs; tasks with one: {', '.join(sorted(rewards.BY_TASK))}")
    for key, labels in (("unconditioned", section.unconditioned), ("references", list(section.references))):
        for label in labels:
            if label not in manifest.agents:
                raise InputError(f"{path}: psi.{key}: {short_repr(label)} is not an agent of the manifest; "
                                 f"agents: {', '.join(manifest.agents)}")
    both = sorted(set(section.unconditioned) & set(section.references))
    if both:
        raise InputError(f"{path}: psi.references.{both[0]}: the agent is also in psi.unconditioned; "
                         "expected one of them")
    names = {t.name for tasks in task_sets.values() for t in tasks}
    evaluations = []
    for ref, entries in section.eval.items():
        try:
            name = catalog.resolve(ref).name
        except InputError as exc:
            raise InputError(f"{path}: psi.eval.{ref}: {exc}") from None
        if name not in names:
            raise InputError(f"{path}: psi.eval.{ref}: not a task of the manifest; tasks: {', '.join(sorted(names))}")
        for label, values in entries.items():
            where = f"psi.eval.{ref}.{label}"
            if label == NOMINAL_PSI:
                raise InputError(f"{path}: {where}: {NOMINAL_PSI!r} is every task's own ψ*; expected another name")
            try:
                psi = rewards.check_psi(name, values, where)
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from None
            order = [p.name for p in rewards.family(name).params]
            evaluations.append(EvalPsi(label, name, tuple((k, psi[k]) for k in order)))
    for agent, label in section.references.items():
        having = {e.task for e in evaluations if e.label == label}
        if not having:
            raise InputError(f"{path}: psi.references.{agent}: {short_repr(label)} is not a name of psi.eval; names: "
                             f"{', '.join(dict.fromkeys(e.label for e in evaluations)) or '(none)'}")
        for name, tasks in task_sets.items():
            missing = [t.name for t in tasks if t.name not in having]
            if manifest.groups is not None and missing:
                raise InputError(f"{path}: psi.references.{agent}: the tasks of groups.{name} train together and "
                                 f"{', '.join(missing)} has no ψ {label!r} in psi.eval")
    return PsiSettings(float(section.alpha), section.distribution, tuple(evaluations))


MAX_LISTED_PROBLEMS = 10
"""Most validation problems an error lists (the rest are counted)."""


def _format_errors(path: Path, exc: ValidationError) -> str:
    errors = exc.errors()
    lines = [f"{path}: {len(errors)} problem(s) in the manifest:"]
    for err in errors[:MAX_LISTED_PROBLEMS]:
        loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
        # The input of a whole-manifest check is the whole manifest: never echoed.
        got = "" if err["type"] == "missing" or not loc else f" (got {short_repr(err['input'])})"
        lines.append(f"  {loc or '(top level)'}: {err['msg']}{got}")
    if len(errors) > MAX_LISTED_PROBLEMS:
        lines.append(f"  ... and {len(errors) - MAX_LISTED_PROBLEMS} more")
    return "\n".join(lines)


def _is_union_tag(part: object) -> bool:
    # pydantic names union members in the location ('int', 'list[int]', 'constrained-int', 'GroupRef', ...).
    return isinstance(part, str) and (part in {"int", "str", "GroupRef"} or part.startswith(("list[", "constrained-")))


def _resolve_tasks(refs: Sequence[str | GroupRef], path: Path, key: str) -> tuple[catalog.Task, ...]:
    """The runnable tasks of a task list, each once; ``key`` is where the list is in the manifest."""
    out: dict[str, catalog.Task] = {}
    for i, ref in enumerate(refs):
        try:
            names = catalog.group(ref.group).tasks if isinstance(ref, GroupRef) else (ref,)
            resolved = [catalog.resolve(n) for n in names]
        except InputError as exc:
            raise InputError(f"{path}: {key}.{i}: {exc}") from None
        for task in resolved:
            if not task.runnable:
                raise InputError(f"{path}: {key}.{i}: {task.name} cannot be run here ({task.note})")
            out.setdefault(task.name, task)
    return tuple(out.values())


def _task_sets(manifest: Manifest, path: Path) -> dict[str, tuple[catalog.Task, ...]]:
    """The manifest's task lists by name: ``tasks`` (under the manifest's name) or each of ``groups``."""
    if manifest.groups is None:
        assert manifest.tasks is not None
        sets = {manifest.name: _resolve_tasks(manifest.tasks, path, "tasks")}
    else:
        sets = {name: _resolve_tasks(refs, path, f"groups.{name}") for name, refs in manifest.groups.items()}
    for name, tasks in sets.items():
        together = manifest.variant == "multitask" or manifest.groups is not None
        if together and len({t.action_repeat for t in tasks}) > 1:
            where = "tasks" if manifest.groups is None else f"groups.{name}"
            found = ", ".join(f"{t.name} ({t.action_repeat})" for t in tasks)
            raise InputError(f"{path}: {where}: tasks stepped together must share one action repeat; "
                             f"found {found}")
    return sets


#: Integer config keys that may be 0; every other integer key counts something and is at least 1.
NON_NEGATIVE_INTS = frozenset({"updates_per_step", "warmup_steps"})
MAX_CONFIG_INT = 2**31 - 1
"""Largest integer config value (sizes and step counts are 32-bit on the device)."""
#: Float config keys with a range, and the range as it is said in errors.
FLOAT_RANGES: dict[str, tuple[float, float, str]] = {
    **{key: (0.0, 1.0, "a number from 0 to 1") for key in ("gamma", "tau")},
    **{key: (0.0, math.inf, "a number >= 0") for key in (
        "actor_lr", "critic_lr", "temperature_lr", "adjustment_lr", "weight_decay", "policy_noise", "noise_clip",
        "obs_norm_eps", "init_scale", "std_multiplier")},
    **{key: (math.nextafter(0.0, 1.0), math.inf, "a number > 0") for key in ("init_temperature", "huber_kappa")},
}


def _agent_spec(label: str, entry: dict[str, Any], path: Path) -> AgentSpec:
    where = f"{path}: agents.{label}"
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping of config overrides, got {short_repr(entry)}")
    overrides = dict(entry)
    algo = overrides.pop("algo", label)
    if not isinstance(algo, str) or algo not in agents.MODULES:
        raise InputError(f"{where}{'.algo' if 'algo' in entry else ''}: unknown agent {short_repr(algo)}; "
                         f"valid agents: {', '.join(sorted(agents.MODULES))}")
    cls = agents.get(algo).config_cls
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise InputError(f"{where}.{str(key)[:MAX_NAME]}: unknown config key for agent {algo!r}; "
                             f"valid keys: {', '.join(sorted(fields))}")
        try:
            # Strict: `true` is not 1 and '64' is not 64; a YAML list is the tuple a config field holds.
            given = tuple(value) if isinstance(value, list) else value
            values[key] = TypeAdapter(hints[key]).validate_python(given, strict=True)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise InputError(f"{where}.{key}: {msg}; expected {_type_name(hints[key])}, "
                             f"got {short_repr(value)}") from None
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None
    for key in fields:
        _check_config_value(f"{where}.{key}", key, getattr(config, key))
    return AgentSpec(label, algo, config)


def _check_config_value(where: str, key: str, value: Any) -> None:
    """Refuse a config value outside its range: integers count something (at least 1, or 0 for
    ``NON_NEGATIVE_INTS``), floats are finite and within ``FLOAT_RANGES``."""
    expected = None
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            _check_config_value(f"{where}.{i}", key, item)
    elif isinstance(value, int) and not isinstance(value, bool):
        zero_ok = key in NON_NEGATIVE_INTS
        if not (0 if zero_ok else 1) <= value <= MAX_CONFIG_INT:
            expected = f"{'an integer >= 0' if zero_ok else 'a positive integer'} (at most {MAX_CONFIG_INT:,})"
    elif isinstance(value, float):
        low, high, said = FLOAT_RANGES.get(key, (-math.inf, math.inf, "a finite number"))
        if not (math.isfinite(value) and low <= value <= high):
            expected = said
    if expected is not None:
        raise InputError(f"{where}: expected {expected}, got {short_repr(value)}")


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
            specs: Sequence[AgentSpec], psi: PsiSettings | None) -> tuple[Job, ...]:
    """Single-task: a job per (task, agent); multi-task: a job per (task set, agent); reward-conditioned:
    like single-task with ``tasks``, like multi-task with ``groups``."""
    units: list[tuple[str, tuple[catalog.Task, ...]]]
    if manifest.variant == "single" or (manifest.variant == "reward_conditioned" and manifest.groups is None):
        (tasks,) = task_sets.values()
        units = [(task.name, (task,)) for task in tasks]
    else:
        units = list(task_sets.items())
    jobs: list[Job] = []
    references = {} if manifest.psi is None else manifest.psi.references
    for name, tasks in units:
        names = tuple(t.name for t in tasks)
        for spec in specs:
            train_psi = references.get(spec.label)
            if train_psi is not None and psi is not None and \
                    not any(e.label == train_psi and e.task in names for e in psi.evaluations):
                continue  # a reference agent trains only where its ψ is defined
            variant = _run_variant(manifest, spec)
            runs = tuple(
                RunSpec(
                    run_id=run_id(task, spec, seed, manifest, names, variant),
                    suite=manifest.name,
                    task=task,
                    agent=spec,
                    seed=seed,
                    budget=manifest.budget,
                    eval_every=manifest.eval.every,
                    eval_episodes=manifest.eval.episodes,
                    log_every=manifest.log_every,
                    tag=manifest.tag,
                    variant=variant,
                )
                for task in names
                for seed in manifest.seed_list
            )
            jobs.append(Job(
                job_id=stable_hash([r.run_id for r in runs]), agent=spec, seeds=tuple(manifest.seed_list), tasks=names,
                budget=manifest.budget, eval_every=manifest.eval.every, eval_episodes=manifest.eval.episodes,
                log_every=manifest.log_every, variant=variant, name=name, runs=runs, psi=psi, train_psi=train_psi,
            ))
    return tuple(jobs)


def _run_variant(manifest: Manifest, spec: AgentSpec) -> Variant:
    """The variant of an agent's runs: the manifest's, except for the unconditioned baselines and
    references of a reward-conditioned manifest (single-task, or multi-task with ``groups``)."""
    if manifest.psi is None or spec.label not in (*manifest.psi.unconditioned, *manifest.psi.references):
        return manifest.variant
    return "single" if manifest.groups is None else "multitask"


def run_id(task: str, spec: AgentSpec, seed: int, manifest: Manifest, job_tasks: Sequence[str],
           variant: Variant | None = None) -> str:
    """A stable id: the hash of everything that defines the run's outcome (not the suite name); a
    multi-task run's also hashes the tasks it was trained with, and a run of a reward-conditioned
    manifest its ``psi`` section."""
    fields: dict[str, Any] = {
        "task": task,
        "label": spec.label,
        "algo": spec.algo,
        "config": spec.config_dict,
        "seed": seed,
        "budget": manifest.budget,
        "eval": manifest.eval.model_dump(),
        "variant": variant or manifest.variant,
        "tag": manifest.tag,
    }
    if (variant or manifest.variant) == "multitask" or manifest.groups is not None:
        fields["job_tasks"] = list(job_tasks)
    if manifest.psi is not None:
        fields["psi"] = manifest.psi.model_dump()
    return stable_hash(fields)


def shipped_suites(root: Path) -> list[Path]:
    """The manifests in a ``suites/`` folder, sorted by name."""
    return sorted(root.glob("*.yaml"))
