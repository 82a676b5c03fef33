"""HumanoidBench adapter: ``humanoidbench/<robot>-<task>`` (installed by ``harness install humanoidbench``).

The env is HumanoidBench's registered gymnasium id (``Task.env_id``, e.g. ``h1hand-walk-v0``), made
without gymnasium's wrappers (the catalog's episode length applies) and with ``render_mode=None``,
so no OpenGL context is created (``MUJOCO_GL=disable`` works). The compatibility fixes of
:mod:`harness.envs.humanoidbench_compat` are applied before HumanoidBench is imported.

Actions in [-1, 1] are HumanoidBench's own action space (it rescales them to the actuators). One
step is HumanoidBench's step (10 physics steps). ``terminated`` is HumanoidBench's own (the robot
fell, for most tasks). Observations are HumanoidBench's flat state vector.

Seeding: ``reset(seed)`` seeds the env's generator (the initial-state noise). 15 tasks also draw from
numpy's global generator at reset (goals, object placements); each env keeps its own global-generator
state, seeded with the env's seed, and swaps it in around every reset and step, so envs of
different seeds in one process stay reproducible whatever their order, and other code's use of
the global generator neither disturbs nor is disturbed by them.

Success: for tasks whose HumanoidBench step reports ``success`` (basketball, bookshelf, cabinet,
kitchen, package), ``info["success"]`` is 1.0 once it was reported at any step of the episode.
The catalog scores every HumanoidBench task by return.

Reward components: made with ``components``, an env of a task with a reward family
(:mod:`harness.rewards`: the locomotion tasks) measures them from the unwrapped env after each step.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import numpy.typing as npt
from gymnasium.spaces import Box

from harness import rewards
from harness.catalog import Task
from harness.envs import humanoidbench_compat
from harness.envs.base import EpisodeEnv, Info, SimStep
from harness.errors import InputError

# Task words whose HumanoidBench step puts a "success" flag in its info.
REPORTS_SUCCESS = frozenset({"basketball", "bookshelf_simple", "bookshelf_hard", "cabinet", "kitchen", "package"})


def _import() -> None:
    humanoidbench_compat.prepare_import()
    import humanoid_bench  # noqa: F401  (registers the HumanoidBench ids with gymnasium)


class HumanoidBenchSimulator:
    """A HumanoidBench task as a :class:`harness.envs.base.Simulator`; with ``components``, each step
    also measures the task's reward components."""

    def __init__(self, task: Task, seed: int, components: bool = False) -> None:
        self._family = rewards.family(task.name) if components else None
        _import()
        try:
            env = gymnasium.make(task.env_id, render_mode=None, disable_env_checker=True)
        except gymnasium.error.Error as error:
            raise InputError(f"task {task.name!r}: {task.env_id!r} is not a registered HumanoidBench id "
                             f"({error})") from error
        self._env: Any = env.unwrapped
        humanoidbench_compat.after_make(self._env)
        space, obs_space = self._env.action_space, self._env.observation_space
        assert isinstance(space, Box) and isinstance(obs_space, Box)
        self.action_size = int(space.shape[0])
        self.observation_size = int(np.prod(obs_space.shape))
        self.reports_success = task.env_id.split("-")[1] in REPORTS_SUCCESS
        self._global_state = np.random.RandomState(seed).get_state()
        self._first_seed: int | None = seed

    def _swapped(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``call`` with this env's numpy global-generator state, and keep what it leaves."""
        outside = np.random.get_state()
        np.random.set_state(self._global_state)
        try:
            return call(*args, **kwargs)
        finally:
            self._global_state = np.random.get_state()
            np.random.set_state(outside)

    def reset(self, seed: int | None) -> npt.NDArray[np.float32]:
        """Start an episode; the first one is seeded with the seed the env was made with."""
        if seed is None:
            seed = self._first_seed
        self._first_seed = None
        if seed is not None:
            self._global_state = np.random.RandomState(seed).get_state()
        obs = self._swapped(humanoidbench_compat.reset, self._env, seed)
        return np.asarray(obs, dtype=np.float32).ravel()

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One HumanoidBench step."""
        obs, reward, terminated, _, info = self._swapped(self._env.step, action.astype(np.float32))
        solved = self.reports_success and bool(info.get("success", False))
        measured = None if self._family is None else rewards.measured(self._family, self._env, info)
        return SimStep(np.asarray(obs, dtype=np.float32).ravel(), float(reward), bool(terminated), solved, measured)

    def close(self) -> None:
        """Release the env."""
        self._env.close()


class HumanoidBenchEnv(EpisodeEnv):
    """An :class:`EpisodeEnv` that also reports HumanoidBench's success flag where the task has one."""

    def __init__(self, task: Task, simulator: HumanoidBenchSimulator) -> None:
        super().__init__(task, simulator)
        self._reports_success = simulator.reports_success

    def _info(self) -> Info:
        info = super()._info()
        if self._reports_success:
            info["success"] = float(self._solved)
        return info


def make(task: Task, seed: int, components: bool = False) -> HumanoidBenchEnv:
    """A HumanoidBench env of ``task`` whose first episode is seeded with ``seed``; with ``components``
    its steps also give the task's reward components (``EpisodeEnv.components``)."""
    return HumanoidBenchEnv(task, HumanoidBenchSimulator(task, seed, components))
