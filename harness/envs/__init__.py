"""Environment adapters: ``make(task, seed)`` gives an :class:`Env` for any runnable catalog task.

``ADAPTERS`` maps a catalog suite to the factory of its adapter. Each factory imports its simulator
only when called, so importing this package loads no simulator; a simulator package that is not
installed gives an :class:`InputError` naming the pip extra that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from harness import rewards
from harness.catalog import Task, resolve
from harness.envs.base import Env
from harness.errors import InputError

__all__ = ["ADAPTERS", "BATCHED_SUITES", "Env", "make"]


def _adapter(module: str, package: str, install: str) -> Callable[[Task, int, bool], Env]:
    """A factory that imports ``harness.envs.<module>`` (and so ``package``) on first use; its third
    argument asks for an env that measures reward components (only for :data:`MEASURED_SUITES`)."""

    def make_env(task: Task, seed: int, components: bool = False) -> Env:
        if importlib.util.find_spec(package) is None:
            raise InputError(f"task {task.name!r} needs the {package!r} package, which is not installed: "
                             f"{install}")
        adapter = importlib.import_module(f"harness.envs.{module}")
        env: Env = adapter.make(task, seed, True) if components else adapter.make(task, seed)
        return env

    return make_env


ADAPTERS: dict[str, Callable[[Task, int, bool], Env]] = {
    "dmc": _adapter("dmc", "dm_control", "pip install dm-control==1.0.50 (a dependency of harness)"),
    "metaworld": _adapter("metaworld", "metaworld", "pip install 'harness[metaworld]'"),
    "myosuite": _adapter("myosuite", "myosuite", "pip install 'harness[myosuite]'"),
    "playground": _adapter("playground", "mujoco_playground", "pip install 'harness[playground]'"),
    "gymnasium": _adapter("gymnasium_mujoco", "gymnasium", "pip install 'harness[gymnasium]'"),
    "humanoidbench": _adapter("humanoidbench", "humanoid_bench", "harness install humanoidbench"),
    "shadowhand": _adapter("shadowhand", "dex_envs", "harness install shadowhand"),
}

BATCHED_SUITES = frozenset({"playground"})
"""Suites whose tasks also have a batched JAX env (``harness.envs.playground_batch``): the device
backend trains their single-task jobs with the whole step on the JAX device."""


MEASURED_SUITES = frozenset({"dmc", "humanoidbench", "metaworld"})
"""Suites whose adapter can measure reward components (:mod:`harness.rewards`): its ``make`` takes
``components``."""


def make(task: Task | str, seed: int, components: bool = False) -> Env:
    """An env of ``task`` (a :class:`Task`, or a name or alias the catalog resolves) seeded with ``seed``;
    with ``components``, one whose steps also give the task's reward components (``components`` of
    the env after each step, :class:`harness.envs.base.EpisodeEnv`), for a task with a reward family.

    Raises :class:`InputError` for an unknown name, a task known only from published results, a
    suite without an adapter, or a missing simulator package.
    """
    if isinstance(task, str):
        task = resolve(task)
    if not task.runnable:
        raise InputError(f"task {task.name!r} cannot be run by the harness: {task.note or 'not runnable'}")
    if task.suite not in ADAPTERS:
        raise InputError(f"task {task.name!r}: no environment adapter for suite {task.suite!r} "
                         f"(adapters: {', '.join(ADAPTERS)})")
    if components:
        rewards.family(task.name)  # InputError for a task without a reward family
        if task.suite not in MEASURED_SUITES:
            raise InputError(f"task {task.name!r}: the {task.suite} adapter does not measure reward components")
    return ADAPTERS[task.suite](task, seed, components)
