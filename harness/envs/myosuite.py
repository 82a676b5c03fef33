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

from harness.catalog import Task, all_tasks
from harness.envs.base import EpisodeEnv, SimStep, rescale
from harness.envs.gymnasium_mujoco import GymnasiumSimulator
from harness.errors import InputError


class MyoSuiteSimulator(GymnasiumSimulator):
    """A registered MyoSuite id as a :class:`harness.envs.base.Simulator`: a Gymnasium env whose
    ``terminated`` and success come from MyoSuite's infos."""

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One MyoSuite step."""
        scaled = rescale(action, self._low, self._high).astype(np.float32)
        obs, reward, terminated, _, info = self._env.step(scaled)
        diverged = bool(terminated) and not bool(info["rwd_dict"]["done"])
        return SimStep(np.asarray(obs, dtype=np.float32).ravel(), float(reward), diverged,
                       bool(info["solved"]))


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
