"""MetaWorld (3.0.0) adapter: single-task, goal-observable v3 environments.

The env is MetaWorld's goal-observable class for ``Task.env_id`` (``assembly-v3`` ->
``ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE["assembly-v3-goal-observable"]``), with a new random goal (and
object placement) at every reset, as TD-MPC2 and BRO train and evaluate: TD-MPC2 unfreezes the goal
of one env, BRO builds a new env with a fresh seed for every episode. The goals are drawn from the
env's own seeded generator (``seeded_rand_vec``), never from numpy's global one, so that
``reset(seed)`` is reproducible. Observations are MetaWorld's 39 values; actions are already in
MetaWorld's [-1, 1]. MetaWorld never terminates an episode.

Success: ``info["success"]`` becomes 1.0 once MetaWorld's ``info["success"]`` was 1.0 at any step of
the episode. This is what BRO reports (an episode counts as solved if it was solved at any step) and
what MetaWorld's own evaluation measures (it ends an evaluation episode at its first success).
TD-MPC2 instead logs the last step's success; a policy that solves the task and keeps it solved
scores the same under both.

MuJoCo 3.17 compatibility: MetaWorld 3.0.0's ``SawyerMocapBase.reset_mocap_welds`` writes 11
values into each weld row of ``model.eq_data``, which has 12 columns under MuJoCo 3.17, and fails
with a broadcast error when an env is built. :func:`patch_mocap_welds` replaces that method
with one that writes the same 11 values into the first 11 columns (leaving the rest at the model's
values); it is applied (idempotently) every time this adapter builds an env, and is the only global
change this adapter makes.
"""

from __future__ import annotations

from collections.abc import Callable

import mujoco
import numpy as np
import numpy.typing as npt
from gymnasium.spaces import Box
from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
from metaworld.sawyer_xyz_env import SawyerMocapBase, SawyerXYZEnv

from harness import rewards
from harness.catalog import Task
from harness.envs.base import EpisodeEnv, SimStep

# MetaWorld's weld parameters for its mocap welds: anchor (3), relative position (3), relative
# orientation quaternion (4), torque scale (1).
_WELD_DATA = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 5.0])


def _reset_mocap_welds(self: SawyerMocapBase) -> None:
    """Set every weld constraint's first 11 ``eq_data`` values to MetaWorld's weld parameters."""
    if self.model.nmocap > 0:
        welds = self.model.eq_type == mujoco.mjtEq.mjEQ_WELD  # (neq,)
        self.model.eq_data[welds, : _WELD_DATA.size] = _WELD_DATA


def patch_mocap_welds() -> None:
    """Make MetaWorld 3.0.0 build its envs under MuJoCo versions whose weld rows exceed 11 values."""
    SawyerMocapBase.reset_mocap_welds = _reset_mocap_welds  # type: ignore[method-assign]


class MetaWorldSimulator:
    """A goal-observable MetaWorld v3 task as a :class:`harness.envs.base.Simulator`; with
    ``components``, each step also measures the task's reward components (:mod:`harness.rewards`)."""

    def __init__(self, task: Task, seed: int, components: bool = False) -> None:
        self._family = rewards.family(task.name) if components else None
        patch_mocap_welds()
        goal_observable: Callable[..., SawyerXYZEnv] = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[
            f"{task.env_id}-goal-observable"]
        env = goal_observable(seed=seed)
        env._freeze_rand_vec = False  # a new goal at every reset
        env.seeded_rand_vec = True  # drawn from env.np_random (seeded), not numpy's global generator
        env.max_path_length = task.episode_length  # MetaWorld refuses to step past its own limit
        self._env = env
        assert isinstance(env.observation_space, Box) and isinstance(env.action_space, Box)
        self.observation_size = int(env.observation_space.shape[0])
        self.action_size = int(env.action_space.shape[0])

    def reset(self, seed: int | None) -> npt.NDArray[np.float32]:
        """Start an episode with a new goal; a seed re-seeds the env's generator first."""
        if seed is not None:
            self._env.seed(seed)
        obs, _ = self._env.reset()
        return np.asarray(obs, dtype=np.float32)

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One MetaWorld step (MetaWorld's frame skip of 5 physics steps)."""
        obs, reward, _, _, info = self._env.step(action.astype(np.float32))
        measured = None if self._family is None else rewards.measured(self._family, self._env, info)
        return SimStep(np.asarray(obs, dtype=np.float32), float(reward), False, bool(info["success"]), measured)

    def close(self) -> None:
        """Release the env."""
        self._env.close()


def make(task: Task, seed: int, components: bool = False) -> EpisodeEnv:
    """A MetaWorld env of ``task`` whose first episode is seeded with ``seed``; with ``components``
    its steps also give the task's reward components (``EpisodeEnv.components``)."""
    return EpisodeEnv(task, MetaWorldSimulator(task, seed, components))
