"""DeepMind Control (dm-control) adapter.

``Task.env_id`` is ``<domain>-<task>`` with dm-control's own names (``ball_in_cup-catch``,
``finger-turn_hard``): split on the first ``-``. The observation dict is flattened into float32 in
the order of the task's ``observation_spec()`` (dm-control's own stable order, which is also what
dmc2gym-style wrappers, TD-MPC2 and BRO feed their agents).

The task is loaded without dm-control's own time limit; :class:`EpisodeEnv` truncates at the
catalog's episode length instead (1000 steps, dm-control's default for every task but LQR, which has
none). ``terminated`` is dm-control's end of episode, which then only comes from a task's
termination condition (LQR's). Actions in [-1, 1] are rescaled to the action spec's bounds, except
dimensions bounded beyond +-1e6 (LQR declares +-1e10 for an unbounded control), which pass through.

TD-MPC2's custom tasks (``cheetah-run_backwards``, ...) come from :mod:`harness.envs.dmc_custom`.

A step is dm-control's ``Environment.step`` without its wrappers: the task's ``before_step``, the
physics advanced exactly as ``Physics.step`` advances it (dm-control's "legacy" step: ``mj_step2``,
the remaining sub-steps, ``mj_step1``; ``mj_step`` then ``mj_step1`` for RK4), a ``PhysicsError``
when MuJoCo counted a new warning (a diverged simulation), then ``after_step``, the reward, the
observation and the termination. The outcome is bit for bit dm-control's own (a test compares every
suite domain), in about two thirds of the time on a cheap task (cheetah-run: 20 µs instead of 29).

Without an OpenGL backend (``MUJOCO_GL=disable``, which the CLI sets) a physics has no rendering
contexts: asking for them, as quadruped-escape's reset does to re-upload its new terrain to a
renderer, would fail. The adapter then gives the physics a ``contexts`` of None, which dm-control's
own code reads as "nothing to re-upload".
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt
from dm_control import _render, suite
from dm_control._render import constants
from dm_control.mujoco import engine
from dm_control.rl import control

from harness import rewards
from harness.catalog import Task
from harness.envs import dmc_custom
from harness.envs.base import EpisodeEnv, SimStep, rescale

_UNBOUNDED = 1e6


class DMCSimulator:
    """A dm-control suite task as a :class:`harness.envs.base.Simulator`; with ``components``, each
    step also measures the task's reward components (:mod:`harness.rewards`)."""

    def __init__(self, task: Task, seed: int, components: bool = False) -> None:
        self._family = rewards.family(task.name) if components else None
        if task.env_id in dmc_custom.TASKS:
            self._env = dmc_custom.load(task.env_id, random=seed)
        else:
            domain, name = task.env_id.split("-", 1)
            self._env = suite.load(domain, name, task_kwargs={"random": seed, "time_limit": float("inf")})
        if not can_render():
            _without_rendering(self._env.physics)
        self._physics, self._task = self._env.physics, self._env.task
        self._sub_steps = control.compute_n_steps(self._env.control_timestep(), self._physics.timestep())
        self._bind()
        spec = self._env.action_spec()
        wide = (np.abs(spec.minimum) >= _UNBOUNDED) | (np.abs(spec.maximum) >= _UNBOUNDED)
        self._low = np.where(wide, -1.0, spec.minimum).astype(np.float64)  # (act,)
        self._high = np.where(wide, 1.0, spec.maximum).astype(np.float64)  # (act,)
        self._rescaled = bool(np.any(self._low != -1.0) or np.any(self._high != 1.0))  # else [-1, 1] already
        self.action_size = int(spec.shape[0])
        self.observation_size = sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())

    def reset(self, seed: int | None) -> npt.NDArray[np.float32]:
        """Start an episode; a seed re-seeds the task's random state (initial-state randomisation)."""
        if seed is not None:
            self._task.random.seed(seed)
        obs = _flatten(self._env.reset().observation)
        self._bind()  # a task may rebuild its physics' data when an episode starts
        return obs

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One control step (see the module's docstring)."""
        physics, task = self._physics, self._task
        task.before_step(rescale(action, self._low, self._high) if self._rescaled else action, physics)
        if self._direct:
            seen = self._warnings.tobytes()  # MuJoCo's warning counts only grow within an episode
            if self._rk4:
                mujoco.mj_step(self._model, self._data, self._sub_steps)
            else:
                mujoco.mj_step2(self._model, self._data)
                if self._sub_steps > 1:
                    mujoco.mj_step(self._model, self._data, self._sub_steps - 1)
            mujoco.mj_step1(self._model, self._data)
            if self._warnings.tobytes() != seen:
                self._diverged(np.frombuffer(seen, self._warnings.dtype))
        else:
            physics.step(self._sub_steps)
        task.after_step(physics)
        reward = float(task.get_reward(physics))
        obs = _flatten(task.get_observation(physics))
        terminated = task.get_termination(physics) is not None
        measured = None if self._family is None else rewards.measured(self._family, physics, {})
        return SimStep(obs, reward, terminated, False, measured)

    def close(self) -> None:
        """Release the physics."""
        self._env.close()

    def _bind(self) -> None:
        """Take the physics' MuJoCo structures, and whether it steps as dm-control's own ``Physics.step``
        (a physics class that overrides it, or a non-legacy step, is stepped through it instead)."""
        physics = self._physics
        self._model, self._data = physics.model.ptr, physics.data.ptr
        self._warnings = physics.data.warning.number  # (warnings,) int32, a view of MuJoCo's counts
        self._direct = type(physics).step is engine.Physics.step and physics.legacy_step
        self._rk4 = physics.model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4

    def _diverged(self, before: npt.NDArray[np.int32]) -> None:
        """dm-control's error for a step that raised MuJoCo warnings (``Physics.check_invalid_state``)."""
        kinds = list(mujoco.mjtWarning.__members__)  # in MuJoCo's order, as the counts are
        names = [kinds[i] for i in np.flatnonzero(self._warnings > before)]
        raise control.PhysicsError(f"Physics state is invalid. Warning(s) raised: {', '.join(names)}")


def can_render() -> bool:
    """Whether dm-control has an OpenGL backend (``MUJOCO_GL`` not ``disable``, and one was found)."""
    return _render.BACKEND is not None and _render.BACKEND not in constants.NO_RENDERER


def _without_rendering(physics: Any) -> None:
    """Make ``physics.contexts`` None instead of an error (a subclass of the physics' own class)."""
    cls = type(physics)
    physics.__class__ = type(f"Unrendered{cls.__name__}", (cls,), {"contexts": property(lambda self: None)})


def _flatten(observation: dict[str, np.ndarray]) -> npt.NDArray[np.float32]:
    """Concatenate an observation dict, in its own key order, into ``(observation_size,)`` float32."""
    return np.concatenate(list(observation.values()), axis=None, dtype=np.float32)


def make(task: Task, seed: int, components: bool = False) -> EpisodeEnv:
    """A dm-control env of ``task`` whose first episode is seeded with ``seed``; with ``components``
    its steps also give the task's reward components (``EpisodeEnv.components``)."""
    return EpisodeEnv(task, DMCSimulator(task, seed, components))
