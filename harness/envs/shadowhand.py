"""ShadowHand adapter: BRC's object-rotation tasks ``shadowhand/<object>-rotate`` (``harness install shadowhand``).

The env is BRC's registered id (``Task.env_id``, e.g. ``apple-rotate-v1``: gymnasium-robotics'
ShadowHand manipulate env with the object's model, z-axis target rotation, sparse reward), made
without gymnasium's wrappers (the catalog's 100-step episodes apply) and without a renderer. The
fixes of :mod:`harness.envs.shadowhand_compat` are applied first.

Observations are what BRC's agents see: the env's ``observation`` (hand joint positions and
velocities, object pose and velocity, 61 values) followed by its ``desired_goal`` (target pose, 7
values). Actions in [-1, 1] are the env's own normalised actuator commands. The env never
terminates an episode. ``reset(seed)`` seeds the env's generator (initial object pose and target).

Success: ``info["success"]`` becomes 1.0 once gymnasium-robotics' ``is_success`` was 1 at any step
of the episode, as BRC's evaluation counts an episode.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import numpy.typing as npt
from gymnasium.spaces import Box, Dict

from harness.catalog import Task
from harness.envs import shadowhand_compat
from harness.envs.base import EpisodeEnv, SimStep
from harness.errors import InputError


def _flat(obs: dict[str, np.ndarray]) -> npt.NDArray[np.float32]:
    return np.concatenate([obs["observation"], obs["desired_goal"]]).astype(np.float32)  # (obs + goal,)


class ShadowHandSimulator:
    """One of BRC's rotation tasks as a :class:`harness.envs.base.Simulator`."""

    def __init__(self, task: Task, seed: int) -> None:
        shadowhand_compat.prepare_import()
        import dex_envs  # noqa: F401  (registers BRC's <object>-rotate-v1 ids with gymnasium)

        try:
            env = gymnasium.make(task.env_id, disable_env_checker=True)
        except gymnasium.error.Error as error:
            raise InputError(f"task {task.name!r}: {task.env_id!r} is not a registered ShadowHand task "
                             f"({error})") from error
        self._env: Any = env.unwrapped
        space, obs_space = self._env.action_space, self._env.observation_space
        assert isinstance(space, Box) and isinstance(obs_space, Dict)
        self.action_size = int(space.shape[0])
        observation, goal = obs_space["observation"], obs_space["desired_goal"]
        assert isinstance(observation, Box) and isinstance(goal, Box)
        self.observation_size = int(observation.shape[0] + goal.shape[0])
        self._first_seed: int | None = seed

    def reset(self, seed: int | None) -> npt.NDArray[np.float32]:
        """Start an episode; the first one is seeded with the seed the env was made with."""
        if seed is None:
            seed = self._first_seed
        self._first_seed = None
        return _flat(shadowhand_compat.reset(self._env, seed))

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One ShadowHand step (gymnasium-robotics' 20 physics steps of 2 ms)."""
        obs, reward, terminated, _, info = self._env.step(action.astype(np.float32))
        return SimStep(_flat(obs), float(reward), bool(terminated), bool(info["is_success"]))

    def close(self) -> None:
        """Release the env."""
        self._env.close()


def make(task: Task, seed: int) -> EpisodeEnv:
    """A ShadowHand env of ``task`` whose first episode is seeded with ``seed``."""
    return EpisodeEnv(task, ShadowHandSimulator(task, seed))
