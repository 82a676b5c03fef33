"""What a worker trains: a job of S seeds over T tasks, its runs and its agent, as plain frozen
dataclasses. :mod:`harness.manifest` builds them from a validated manifest (with pydantic); this
module needs neither pydantic nor the manifest's parsing, so a worker process that unpickles its
jobs loads only these classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any, Literal

from harness.runfiles import NOMINAL_PSI

if TYPE_CHECKING:
    from harness import rewards

Variant = Literal["single", "multitask", "reward_conditioned"]
MULTITASK_SUFFIX = "-mt"
"""Appended to the label of multi-task runs, so they never mix with single-task runs of the agent."""
CONDITIONED_SUFFIX = "-rc"
"""Appended to the label of reward-conditioned runs."""


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """One agent entry of a manifest: its label, algorithm and full, validated config."""

    label: str
    algo: str
    config: Any  # the agent's frozen config dataclass

    @property
    def config_dict(self) -> dict[str, Any]:
        return jsonable(dataclasses.asdict(self.config))

    @property
    def config_hash(self) -> str:
        return stable_hash({"algo": self.algo, "config": self.config_dict})


@dataclasses.dataclass(frozen=True)
class EvalPsi:
    """One named evaluation ψ of one task."""

    label: str
    task: str
    psi: tuple[tuple[str, float], ...]
    """Every parameter of the task's family, in the family's order."""


@dataclasses.dataclass(frozen=True)
class PsiSettings:
    """How a reward-conditioned manifest trains and evaluates (its validated ``psi:`` section)."""

    alpha: float
    distribution: rewards.Distribution
    evaluations: tuple[EvalPsi, ...]
    """The named evaluation ψ besides ``nominal``, in the manifest's order."""

    @property
    def labels(self) -> tuple[str, ...]:
        """``nominal``, then every other evaluation name once."""
        return (NOMINAL_PSI, *dict.fromkeys(e.label for e in self.evaluations))


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
        """What reports group by: the agent label (``-mt`` appended for multi-task runs, ``-rc`` for
        reward-conditioned ones), with ``@tag`` when the run is tagged."""
        suffix = {"multitask": MULTITASK_SUFFIX, "reward_conditioned": CONDITIONED_SUFFIX}.get(self.variant, "")
        label = self.agent.label + suffix
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
    """``single``, ``multitask`` or ``reward_conditioned`` (an agent conditioned on ψ)."""
    name: str
    """What progress lines call it: the task of a single-task job, the manifest group of a multi-task one."""
    runs: tuple[RunSpec, ...]
    """One run per (task, seed), task-major."""
    context: tuple[tuple[str, float], ...] = ()
    """Named conditioning values the agent is given (empty for single-task and multi-task jobs)."""
    psi: PsiSettings | None = None
    """The ψ settings of a job in a reward-conditioned manifest (its conditioned agents' and its
    unconditioned baselines', which are evaluated under the same ψ); None otherwise."""
    train_psi: str | None = None
    """The named evaluation ψ an unconditioned reference agent is trained on (None: ψ*, or conditioned)."""

    @property
    def first(self) -> RunSpec:
        return self.runs[0]


def stable_hash(obj: Any) -> str:
    """A 16-hex-digit id of a JSON-able value: the same for equal values, in any process."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def jsonable(obj: Any) -> Any:
    """``obj`` with its tuples made lists, recursively (as JSON would give it back)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj
