"""Executor settings: the ``executor:`` section of a manifest, or a file given with ``--executor-config``.

Both hold a mapping from executor names to their settings; ``--executor`` chooses which one runs
(every section given is checked, so a typo in another is caught too)::

    executor:
      ray:   {address: "ray://head:10001", gpus_per_job: 1, jobs_per_gpu: 4}
      slurm: {partition: gpu, account: rl, time_min: 240, gpus_per_job: 1, log_folder: /shared/logs}

Settings are frozen dataclasses, checked when they load: an unknown key, a negative count or a log
folder that does not exist is an :class:`~harness.errors.InputError` naming the file and the key.

Packing: ``jobs_per_gpu: k`` (k > 1, with one GPU per job) puts k jobs on each GPU; each worker gets
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` and ``XLA_PYTHON_CLIENT_MEM_FRACTION`` = 0.9 / k before JAX loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, Strict, ValidationError
from pydantic.dataclasses import dataclass

from harness import manifest as manifest_mod
from harness import textfile
from harness.errors import InputError
from harness.manifest import Plan

Count = Annotated[int, Strict(), Field(ge=0, le=10_000)]
Positive = Annotated[int, Strict(), Field(ge=1, le=10_000)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
_FORBID = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_FORBID)
class LocalSettings:
    """Worker processes on this machine, one per visible GPU (``jobs_per_gpu`` per GPU), else one."""

    kind: ClassVar[str] = "local"
    workers: Positive | None = None
    """Worker processes (default: one per GPU times jobs_per_gpu, else 1); ``--workers`` overrides it."""
    jobs_per_gpu: Positive = 1
    """Jobs that share one GPU (packing)."""


@dataclass(frozen=True, config=_FORBID)
class RaySettings:
    """Ray tasks: one per job, each in a fresh Ray worker process."""

    kind: ClassVar[str] = "ray"
    address: Text | None = None
    """The cluster to join (``auto``, ``ray://head:10001``, ``host:6379``); None starts a local Ray runtime."""
    cpus_per_job: Positive = 1
    gpus_per_job: Count = 0
    """Whole GPUs per job; with ``jobs_per_gpu: k`` (and 1 here), a job asks Ray for 1/k of a GPU."""
    jobs_per_gpu: Positive = 1
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    """Ray's runtime_env for the tasks (``env_vars``, ``working_dir``, ``pip``, ...)."""
    max_retries: Count = 2
    """Times a failed or lost job is submitted again (it resumes from its checkpoint)."""


@dataclass(frozen=True, config=_FORBID)
class SlurmSettings:
    """Slurm jobs through submitit: one array of jobs, each training one harness job."""

    kind: ClassVar[str] = "slurm"
    cluster: Literal["slurm", "local"] = "slurm"
    """``local`` runs the jobs as processes of this machine through submitit's LocalExecutor (for testing)."""
    partition: Text | None = None
    account: Text | None = None
    qos: Text | None = None
    time_min: Positive = 60
    """Time limit of each Slurm job, in minutes (a job cut by it resumes from its checkpoint when resubmitted)."""
    gpus_per_job: Count = 0
    cpus_per_job: Positive = 1
    jobs_per_gpu: Positive = 1
    array_parallelism: Positive = 256
    """Most jobs of the array running at once."""
    sbatch_flags: dict[str, str | int] = Field(default_factory=dict)
    """Extra ``#SBATCH`` flags, e.g. ``{constraint: a100, mem: 32G}``."""
    log_folder: Path | None = None
    """An existing folder on a filesystem the nodes share (default: results/executor/slurm-logs)."""
    max_retries: Count = 2
    """Times a failed, cancelled or pre-empted job is submitted again (it resumes from its checkpoint)."""


ExecutorSettings = LocalSettings | RaySettings | SlurmSettings
KINDS: dict[str, type[LocalSettings] | type[RaySettings] | type[SlurmSettings]] = {
    "local": LocalSettings, "ray": RaySettings, "slurm": SlurmSettings}


def load_plan(manifest: Path, overrides: Sequence[str], kind: str,
              config: Path | None) -> tuple[Plan, ExecutorSettings]:
    """The manifest's plan (as :func:`harness.manifest.load` reads it) and the settings of executor
    ``kind``: from the ``config`` file if given, else from the manifest's ``executor:`` section (which
    overrides can set too, e.g. ``executor.ray.cpus_per_job=2``)."""
    raw = manifest_mod.read_yaml(manifest)
    for item in overrides:
        manifest_mod.apply_override(raw, item, manifest)
    section = raw.pop("executor", None)
    plan = manifest_mod.validate(raw, manifest)
    if config is not None:
        return plan, parse(kind, read_file(config), str(config))
    return plan, parse(kind, section, f"{manifest}: executor")


def read_file(path: Path) -> dict[str, Any]:
    """The executor section held by an ``--executor-config`` file."""
    if not path.exists():
        raise InputError(f"{path}: no such executor config file")
    data = textfile.load_yaml(textfile.read_text(path, "executor config"), str(path))
    return _mapping(data, str(path))


def parse(kind: str, section: Any, where: str) -> ExecutorSettings:
    """The settings of executor ``kind`` from an executor section (None: every default); ``where``
    names the file (and the key the section sits under) in errors."""
    if kind not in KINDS:
        raise InputError(f"--executor {kind!r}: no such executor; expected one of {', '.join(KINDS)}")
    parsed = {name: _settings(name, entry, where) for name, entry in _mapping(section, where).items()}
    return parsed.get(kind) or _settings(kind, {}, where)


def _mapping(data: Any, where: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping of executor names ({', '.join(KINDS)}) to their settings, "
                         f"got {type(data).__name__}")
    unknown = [k for k in data if k not in KINDS]
    if unknown:
        raise InputError(f"{where}: {textfile.short_repr(unknown[0])}: no such executor; expected one of "
                         f"{', '.join(KINDS)}")
    return data


def _settings(kind: str, entry: Any, where: str) -> ExecutorSettings:
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        raise InputError(f"{where}: {kind}: expected a mapping of settings, got {type(entry).__name__}")
    try:
        settings = KINDS[kind](**entry)
    except ValidationError as exc:
        fields = ", ".join(f.name for f in dataclasses.fields(KINDS[kind]))
        problems = [f"{kind}.{'.'.join(str(p) for p in e['loc'])}: "
                    + (f"unknown key; expected one of {fields}" if e["type"] == "unexpected_keyword_argument"
                       else e["msg"] + ("" if e["type"] == "missing" else f" (got {textfile.short_repr(e['input'])})"))
                    for e in exc.errors()]
        raise InputError(f"{where}: {len(problems)} problem(s) in the executor settings:\n  "
                         + "\n  ".join(problems)) from None
    except TypeError as exc:  # a key that is not a field name (pydantic dataclasses raise it for **kwargs)
        raise InputError(f"{where}: {kind}: {exc}") from None
    if settings.jobs_per_gpu > 1 and not isinstance(settings, LocalSettings) and settings.gpus_per_job != 1:
        raise InputError(f"{where}: {kind}.jobs_per_gpu: packs jobs on one GPU; expected {kind}.gpus_per_job: 1 "
                         f"with it (got {settings.gpus_per_job})")
    if isinstance(settings, SlurmSettings) and settings.log_folder is not None and not settings.log_folder.is_dir():
        raise InputError(f"{where}: slurm.log_folder: {settings.log_folder} is not an existing folder; expected "
                         "one on a filesystem that the compute nodes share with this machine (the nodes write "
                         "their logs there, and the results folder must be shared the same way)")
    return settings
