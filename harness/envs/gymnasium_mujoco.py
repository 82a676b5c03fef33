"""Gymnasium MuJoCo (v5) adapter: ``gymnasium.make(Task.env_id)`` (``Hopper-v5``, ...).

Gymnasium's MuJoCo environments run under this project's mujoco 3.17 (``Pusher-v4`` would not:
Gymnasium refuses it on mujoco >= 3, which is one reason v4 names resolve to the v5 tasks).
Observations are Gymnasium's, as float32; actions in [-1, 1] are rescaled to the env's action space
(Humanoid's [-0.4, 0.4], Pusher's [-2, 2], InvertedPendulum's [-3, 3]). ``terminated`` is
Gymnasium's (an unhealthy hopper, walker, ant or humanoid ends its episode, as in SimbaV2, TD3 and
SAC); :class:`harness.envs.base.EpisodeEnv` truncates at the catalog's episode length. The first
episode is seeded with the seed the env was made with; ``reset(seed)`` re-seeds.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import numpy.typing as npt
from gymnasium.spaces import Box

from harness.catalog import Task
from harness.envs.base import EpisodeEnv, SimStep, rescale


class GymnasiumSimulator:
    """A Gymnasium MuJoCo task as a :class:`harness.envs.base.Simulator`."""

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
        """One Gymnasium step (its own frame skip)."""
        obs, reward, terminated, _, _ = self._env.step(rescale(action, self._low, self._high))
        return SimStep(np.asarray(obs, dtype=np.float32).ravel(), float(reward), bool(terminated), False)

    def close(self) -> None:
        """Release the env."""
        self._env.close()


def make(task: Task, seed: int) -> EpisodeEnv:
    """A Gymnasium MuJoCo env of ``task`` whose first episode is seeded with ``seed``."""
    return EpisodeEnv(task, GymnasiumSimulator(task, seed))
