"""Every fix BRC's ShadowHand rotation tasks need to run beside the harness's simulators, in one place.

The tasks come from BRC's repository (github.com/naumix/BiggerRegularizedCategorical, commit
``eec512f``, folder ``dex_envs``: one MJCF model per object and a ``gymnasium-robotics`` ShadowHand
manipulate env per object). BRC pins gymnasium 0.29.1 (its models predate mujoco 3); the harness runs them
with gymnasium-robotics 1.4.2 (:data:`REQUIREMENTS`), gymnasium 1.2 and mujoco 3.17.0, which needs
the fixes below. Nothing here edits files by hand: the import fix acts in the importing process
only; the file fix is applied by :mod:`harness.install` to the installed copy, recorded in its
install record, and undone by reinstalling.

File fix (:data:`FILE_PATCHES`):

1. Every object model (``assets/hand/manipulate_*.xml``) sets ``<option apirate="200">``, an
   attribute of MuJoCo 2.x's remote API that physics never used and that mujoco 3.17 no longer
   accepts ("unrecognized attribute: 'apirate'"): no model loads. The fix deletes the attribute.

Import fix (:func:`prepare_import`, called by the adapter before making an env):

2. gymnasium-robotics 1.4.2's ``mujoco_utils`` joint accessors (``get_joint_qpos``,
   ``get_joint_qvel``, ``set_joint_qpos``, ``set_joint_qvel``) check a joint's type with
   ``model.jnt_type[i] in (mjtJoint.mjJNT_HINGE, mjtJoint.mjJNT_SLIDE)``. Under mujoco 3.17 an
   ``mjtJoint`` no longer compares equal to a numpy integer from the enum's side, so that check fails
   for every hinge joint and no ShadowHand env of gymnasium-robotics (its own
   ``HandManipulateBlockRotateZ-v1`` included) can reset. The fix replaces the four accessors with
   ones that compare the joint type as a Python int and otherwise do the same.

Reset fix (:func:`reset`, called by the adapter):

3. gymnasium-robotics' reset restores the time and the joint positions and velocities but not the
   rest of ``MjData`` (actuator controls, the solver's warm start), then steps the simulation to
   let the object settle on the palm: the first state of an episode depends on the episode before
   it, and the same seed gives another episode (seen on ``mustard_bottle``). :func:`reset` clears
   ``MjData`` (``mj_resetData``) first, which makes every reset equal to a fresh env's first one.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt

from harness.envs.filepatch import FilePatch

UPSTREAM_REPOSITORY = "https://github.com/naumix/BiggerRegularizedCategorical"
UPSTREAM_COMMIT = "eec512f4e060da63f8a114b91898c554a60ed66b"
"""The commit the installer pins and these fixes were written for (2026-04-23)."""

REQUIREMENTS = ("gymnasium-robotics==1.4.2",)
"""gymnasium-robotics 1.4.2 (mujoco>=2.2, gymnasium>=1.2, PettingZoo, Jinja2, imageio) fits our pins."""

FILE_PATCHES: tuple[FilePatch, ...] = (
    FilePatch(
        path="assets/hand/manipulate_*.xml",
        fixes="the object models fail to load under mujoco 3.17, which no longer accepts <option apirate> "
              "(BRC eec512f; written for mujoco 2.x)",
        old=' apirate="200"',
        new="",
    ),
)

_FREE, _BALL = int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_BALL)
_SCALAR = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))


# Values per joint type (free, ball) of each accessor, as gymnasium-robotics 1.4.2 has them (its
# get_joint_qvel reads 4 values of a ball joint's 3 velocities; no ShadowHand model has a ball joint).
_QPOS, _QVEL_GET, _QVEL_SET = (7, 4), (6, 4), (6, 3)


def _joint(model: mujoco.MjModel, name: str, sizes: tuple[int, int]) -> tuple[int, int]:
    """(first index in qpos, or in qvel for velocity sizes, and size) of joint ``name``."""
    joint_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
    assert joint_id != -1, f"Joint with name '{name}' is not part of the model!"
    kind = int(model.jnt_type[joint_id])
    assert kind in (_FREE, _BALL, *_SCALAR), f"joint {name!r} has an unknown type {kind}"
    start = model.jnt_qposadr[joint_id] if sizes == _QPOS else model.jnt_dofadr[joint_id]
    return int(start), {_FREE: sizes[0], _BALL: sizes[1]}.get(kind, 1)


def get_joint_qpos(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> npt.NDArray[np.float64]:
    start, size = _joint(model, name, _QPOS)
    return data.qpos[start:start + size].copy()


def get_joint_qvel(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> npt.NDArray[np.float64]:
    start, size = _joint(model, name, _QVEL_GET)
    return data.qvel[start:start + size].copy()


def set_joint_qpos(model: mujoco.MjModel, data: mujoco.MjData, name: str, value: npt.ArrayLike) -> None:
    start, size = _joint(model, name, _QPOS)
    value = np.array(value)
    if size > 1:
        assert value.shape == (size,), f"Value has incorrect shape {name}: {value}"
    data.qpos[start:start + size] = value


def set_joint_qvel(model: mujoco.MjModel, data: mujoco.MjData, name: str, value: npt.ArrayLike) -> None:
    start, size = _joint(model, name, _QVEL_SET)
    value = np.array(value)
    if size > 1:
        assert value.shape == (size,), f"Value has incorrect shape {name}: {value}"
    data.qvel[start:start + size] = value


def reset(env: Any, seed: int | None) -> dict[str, npt.NDArray[np.float64]]:
    """``env.reset(seed=seed)`` of an unwrapped manipulate env, with fix 3; returns the observation dict."""
    mujoco.mj_resetData(env.model, env.data)
    obs, _ = env.reset(seed=seed)
    return obs


def prepare_import() -> None:
    """Apply import fix 2 (idempotent)."""
    from gymnasium_robotics.utils import mujoco_utils

    mujoco_utils.get_joint_qpos = get_joint_qpos
    mujoco_utils.get_joint_qvel = get_joint_qvel
    mujoco_utils.set_joint_qpos = set_joint_qpos
    mujoco_utils.set_joint_qvel = set_joint_qvel
