"""MyoSuite (3.0.0) adapter: ``gymnasium.make(Task.env_id)`` after importing myosuite (which registers
its ids).

Catalog tasks use the catalog's episode length; a task named ``myosuite/<any registered id>`` that
the catalog does not list takes the length of the id's registration. Actions in [-1, 1] are
rescaled to the env's action space (already [-1, 1] for the ids registered with ``normalize_act``).

Episodes run to their full length, as in BRO and TD-MPC2 (both ignore MyoSuite's ``done``): the
task's own ``done`` condition (a hand far from its targets, a dropped object or pen) is not a
termination, its penalty stays in the reward. ``terminated`` is True only where MyoSuite's wrapper
ends an episode because the simulation diverged.

Success: ``info["success"]`` becomes 1.0 once MyoSuite's ``info["solved"]`` was True at any step of
the episode, which is what BRO reports for MyoSuite (TD-MPC2 logs the last step's ``solved``).
"""

from __future__ import annotations

import dataclasses

import gymnasium
import myosuite  # noqa: F401  (registers the MyoSuite ids with gymnasium)
import numpy as np
import numpy.typing as npt
from gymnasium.spaces import Box

from harness.catalog import Task, all_tasks
from harness.envs.base import EpisodeEnv, SimStep, rescale
from harness.errors import InputError


class MyoSuiteSimulator:
    """A registered MyoSuite id as a :class:`harness.envs.base.Simulator`."""

    def __init__(self, task: Task, seed: int) -> None:
        self._env = gymnasium.make(task.env_id, max_episode_steps=task.episode_length)
        space, obs_space = self._env.action_space, self._env.observation_space
        assert isinstance(space, Box) and isinstance(obs_space, Box)
        self._low = space.low.astype(np.float64)  # (act,)
        self._high = space.high.astype(np.float64)  # (act,)
        self.action_size = int(space.shape[0])
        self.observation_size = int(np.prod(obs_space.shape))
        self._first_seed: int | None = seed

    def reset(self, seed: int | None) -> npt.NDArray[np.float32]:
        """Start an episode; the first one is seeded with the seed the env was made with."""
        if seed is None:
            seed = self._first_seed
        self._first_seed = None
        obs, _ = self._env.reset(seed=seed)
        return np.asarray(obs, dtype=np.float32).ravel()

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One MyoSuite step."""
        scaled = rescale(action, self._low, self._high).astype(np.float32)
        obs, reward, terminated, _, info = self._env.step(scaled)
        diverged = bool(terminated) and not bool(info["rwd_dict"]["done"])
        return SimStep(np.asarray(obs, dtype=np.float32).ravel(), float(reward), diverged,
                       bool(info["solved"]))

    def close(self) -> None:
        """Release the env."""
        self._env.close()


def make(task: Task, seed: int) -> EpisodeEnv:
    """A MyoSuite env of ``task`` whose first episode is seeded with ``seed``."""
    try:
        spec = gymnasium.spec(task.env_id)
    except gymnasium.error.Error as error:
        raise InputError(f"task {task.name!r}: {task.env_id!r} is not a registered MyoSuite id "
                         f"({error})") from error
    if task.name not in {t.name for t in all_tasks()} and spec.max_episode_steps is not None:
        task = dataclasses.replace(task, episode_length=spec.max_episode_steps)
    return EpisodeEnv(task, MyoSuiteSimulator(task, seed))
