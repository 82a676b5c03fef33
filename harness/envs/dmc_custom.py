"""The eleven custom DeepMind Control tasks of TD-MPC2 (also used by BRC), defined here on dm-control.

TD-MPC2 (Hansen et al., 2024, ``tdmpc2/envs/tasks/``; BRC's ``dmc_envs/tasks/`` holds the same
definitions) added tasks to dm-control's domains by changing the reward, sometimes the initial
state or the model. These are the harness's own definitions of the eleven that their published
results cover, written from those descriptions on dm-control 1.0.50's domains; each is a
:class:`dm_control.rl.control.Environment`, loaded by :func:`load` the way ``suite.load`` loads
the standard tasks (without touching dm-control's own registry).

Every task keeps its domain's physics, observations, control time step and 1000 control steps,
and rewards in [0, 1] per step (returns 0..1000):

- ``cheetah-run_backwards``: speed of at most -8 (0.8 of dm-control's run speed 10); linear
  margin 8.
- ``cheetah-run_front`` / ``cheetah-run_back``: run at 6 m/s or more (0.6 x 10) balanced on the
  front (``bfoot`` up) or back (``ffoot`` up) foot: the raised foot's and the torso's heights, at
  least 1.2 m (margin 0.6), weighted 3:2, times ``(5 x speed term + 1) / 6``.
- ``cheetah-jump``: the mean of standing on the front and on the back foot: the mean height of torso
  and raised foot at least 1.2 m (margin 0.6) weighted 5:1 against a speed of at most 0.5 m/s
  either way.
- The cheetah tasks use a ground plane twice as long (200 m half-length) so that running backwards
  does not leave it; the walker tasks likewise (500 m).
- ``walker-walk_backwards`` / ``walker-run_backwards``: dm-control's walker reward with the
  velocity term mirrored: horizontal velocity at most -1 (walk) or -8 (run), linear margin half
  the speed, 0.5 at the margin.
- ``hopper-hop_backwards``: standing (height in [0.6, 2]) times hopping backwards at -1 m/s or
  faster (linear margin 0.5, 0.5 at the margin).
- ``pendulum-spin``: the pole's angular speed at least 9 rad/s (linear margin 4.5, 0.5 at the
  margin), from swing-up's initial states.
- ``ball_in_cup-spin``: keep the ball out of the cup and swinging: outside the target, (distance
  from the target at least 0.5 (linear margin 0.25) + 2 x ball speed at least 6 (linear margin 3))
  / 3, with 0.5 at the margins. The ball starts in the cup in 9 of 10 episodes.
- ``reacher-three_easy`` / ``reacher-three_hard``: dm-control's reacher (sparse reward inside the
  target, target 0.05 or 0.015) with a three-link arm: links of 0.09, 0.09 and 0.1 m, the second
  and third joints limited to +-80 degrees, three motors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import numpy as np
from dm_control.rl import control
from dm_control.suite import ball_in_cup, base, cheetah, hopper, pendulum, reacher, walker
from dm_control.utils import rewards

_INF = float("inf")


def _edited(xml: bytes | str, edit: Callable[[ElementTree.Element], None]) -> bytes:
    """A model XML with ``edit`` applied to its root element."""
    root = ElementTree.fromstring(xml)
    edit(root)
    return ElementTree.tostring(root)


def _geom_size(name: str, size: str) -> Callable[[ElementTree.Element], None]:
    def edit(root: ElementTree.Element) -> None:
        geom = root.find(f".//geom[@name='{name}']")
        assert geom is not None, name
        geom.set("size", size)

    return edit


# ----------------------------------------------------------------------------------------------
# Cheetah


class _CheetahTask(cheetah.Cheetah):
    """dm-control's cheetah with one of TD-MPC2's goals."""

    _JUMP_HEIGHT = 1.2

    def __init__(self, goal: str, speed: float, random: Any = None) -> None:
        super().__init__(random=random)
        self._goal = goal
        self._speed = speed

    def _height(self, physics: Any, body: str) -> float:
        return float(physics.named.data.xpos[body, "z"])

    def _up(self, height: float) -> float:
        return float(rewards.tolerance(height, bounds=(self._JUMP_HEIGHT, _INF), margin=self._JUMP_HEIGHT / 2))

    def _on_one_foot(self, physics: Any, raised: str) -> float:
        """Stand on one foot (``raised`` is the other): height 5 : speed within +-speed 1."""
        height = self._up((self._height(physics, "torso") + self._height(physics, raised)) / 2)
        still = rewards.tolerance(physics.speed(), bounds=(-self._speed, self._speed), margin=self._speed,
                                  value_at_margin=0, sigmoid="linear")
        return float((5 * height + still) / 6)

    def _run_on_one_foot(self, physics: Any, raised: str) -> float:
        up = (3 * self._up(self._height(physics, raised)) + 2 * self._up(self._height(physics, "torso"))) / 5
        fast = rewards.tolerance(physics.speed(), bounds=(self._speed, _INF), margin=self._speed,
                                 value_at_margin=0, sigmoid="linear")
        return float(up * (5 * fast + 1) / 6)

    def get_reward(self, physics: Any) -> float:
        if self._goal == "run_backwards":
            return float(rewards.tolerance(physics.speed(), bounds=(-_INF, -self._speed), margin=self._speed,
                                           value_at_margin=0, sigmoid="linear"))
        if self._goal == "run_front":
            return self._run_on_one_foot(physics, "bfoot")
        if self._goal == "run_back":
            return self._run_on_one_foot(physics, "ffoot")
        assert self._goal == "jump", self._goal
        return (self._on_one_foot(physics, "bfoot") + self._on_one_foot(physics, "ffoot")) / 2


def _cheetah(goal: str, speed: float) -> Callable[..., control.Environment]:
    def load(random: Any = None, time_limit: float = _INF) -> control.Environment:
        xml, assets = cheetah.get_model_and_assets()
        physics = cheetah.Physics.from_xml_string(_edited(xml, _geom_size("ground", "200 .8 .5")), assets)
        return control.Environment(physics, _CheetahTask(goal, speed, random=random), time_limit=time_limit)

    return load


# ----------------------------------------------------------------------------------------------
# Walker


class _BackwardsWalker(walker.PlanarWalker):
    """dm-control's walker rewarded for moving backwards at ``move_speed`` or faster."""

    def get_reward(self, physics: Any) -> float:
        standing = rewards.tolerance(physics.torso_height(), bounds=(walker._STAND_HEIGHT, _INF),
                                     margin=walker._STAND_HEIGHT / 2)
        upright = (1 + physics.torso_upright()) / 2
        stand = (3 * standing + upright) / 4
        move = rewards.tolerance(physics.horizontal_velocity(), bounds=(-_INF, -self._move_speed),
                                 margin=self._move_speed / 2, value_at_margin=0.5, sigmoid="linear")
        return float(stand * (5 * move + 1) / 6)


def _walker(speed: float) -> Callable[..., control.Environment]:
    def load(random: Any = None, time_limit: float = _INF) -> control.Environment:
        xml, assets = walker.get_model_and_assets()
        physics = walker.Physics.from_xml_string(_edited(xml, _geom_size("floor", "500 .8 .2")), assets)
        return control.Environment(physics, _BackwardsWalker(speed, random=random), time_limit=time_limit,
                                   control_timestep=walker._CONTROL_TIMESTEP)

    return load


# ----------------------------------------------------------------------------------------------
# Hopper, pendulum, ball in cup


class _HopBackwards(hopper.Hopper):
    def __init__(self, random: Any = None) -> None:
        super().__init__(hopping=True, random=random)

    def get_reward(self, physics: Any) -> float:
        standing = rewards.tolerance(physics.height(), (hopper._STAND_HEIGHT, 2))
        backwards = rewards.tolerance(physics.speed(), bounds=(-_INF, -1.0), margin=0.5, value_at_margin=0.5,
                                      sigmoid="linear")
        return float(standing * backwards)


def _hopper(random: Any = None, time_limit: float = _INF) -> control.Environment:
    physics = hopper.Physics.from_xml_string(*hopper.get_model_and_assets())
    return control.Environment(physics, _HopBackwards(random=random), time_limit=time_limit,
                               control_timestep=hopper._CONTROL_TIMESTEP)


class _Spin(pendulum.SwingUp):
    def get_reward(self, physics: Any) -> float:
        return float(rewards.tolerance(np.linalg.norm(physics.angular_velocity()), bounds=(9.0, _INF),
                                       margin=4.5, value_at_margin=0.5, sigmoid="linear"))


def _pendulum(random: Any = None, time_limit: float = _INF) -> control.Environment:
    physics = pendulum.Physics.from_xml_string(*pendulum.get_model_and_assets())
    return control.Environment(physics, _Spin(random=random), time_limit=time_limit)


class _CupSpin(ball_in_cup.BallInCup):
    """Swing the ball around outside the cup."""

    def initialize_episode(self, physics: Any) -> None:
        outside = self.random.uniform() < 0.1  # else the ball must start in the cup
        while True:
            physics.named.data.qpos["ball_x"] = self.random.uniform(-0.2, 0.2)
            physics.named.data.qpos["ball_z"] = self.random.uniform(0.2, 0.5)
            physics.after_reset()
            if physics.data.ncon == 0 and (outside or physics.in_target()):
                break
        base.Task.initialize_episode(self, physics)

    def get_reward(self, physics: Any) -> float:
        distance = np.linalg.norm(physics.ball_to_target())
        speed = np.linalg.norm(physics.named.data.qvel[["ball_x", "ball_z"]])
        far = rewards.tolerance(distance, bounds=(0.5, _INF), margin=0.25, value_at_margin=0.5, sigmoid="linear")
        fast = rewards.tolerance(speed, bounds=(6.0, _INF), margin=3.0, value_at_margin=0.5, sigmoid="linear")
        return float((1 - physics.in_target()) * (far + 2 * fast) / 3)


def _cup(random: Any = None, time_limit: float = _INF) -> control.Environment:
    physics = ball_in_cup.Physics.from_xml_string(*ball_in_cup.get_model_and_assets())
    return control.Environment(physics, _CupSpin(random=random), time_limit=time_limit,
                               control_timestep=ball_in_cup._CONTROL_TIMESTEP)


# ----------------------------------------------------------------------------------------------
# Reacher with three links


def _three_links(root: ElementTree.Element) -> None:
    """Replace the reacher's two-link arm (0.12 + 0.12 m) by three links (0.09 + 0.09 + 0.09 m to the finger)."""
    world = root.find("worldbody")
    actuators = root.find("actuator")
    assert world is not None and actuators is not None
    arm = world.find("body[@name='arm']")
    assert arm is not None
    index = list(world).index(arm)
    world.remove(arm)
    parent, links = None, (("arm0", "shoulder0", None), ("arm1", "shoulder1", "-80 80"), ("hand", "wrist", "-80 80"))
    for depth, (name, joint, limits) in enumerate(links):
        body = ElementTree.Element("body", name=name, pos="0 0 .01" if depth == 0 else ".09 0 0")
        length = "0.1" if name == "hand" else "0.09"
        ElementTree.SubElement(body, "geom", name=name, type="capsule", fromto=f"0 0 0 {length} 0 0", size=".01",
                               material="self")
        attributes = {"name": joint} | ({"limited": "true", "range": limits} if limits else {})
        ElementTree.SubElement(body, "joint", attributes)
        if parent is None:
            world.insert(index, body)
        else:
            parent.append(body)
        parent = body
    assert parent is not None
    finger = ElementTree.SubElement(parent, "body", name="finger", pos=".09 0 0")
    ElementTree.SubElement(finger, "camera", name="hand", pos="0 0 .2", mode="track")
    ElementTree.SubElement(finger, "geom", name="finger", type="sphere", size=".01", material="effector")
    for motor in list(actuators):
        actuators.remove(motor)
    for _, joint, _ in links:
        ElementTree.SubElement(actuators, "motor", name=joint, joint=joint)


def _reacher(target_size: float) -> Callable[..., control.Environment]:
    def load(random: Any = None, time_limit: float = _INF) -> control.Environment:
        xml, assets = reacher.get_model_and_assets()
        physics = reacher.Physics.from_xml_string(_edited(xml, _three_links), assets)
        return control.Environment(physics, reacher.Reacher(target_size, random=random), time_limit=time_limit)

    return load


# ----------------------------------------------------------------------------------------------

TASKS: dict[str, Callable[..., control.Environment]] = dict(
    [
        ("cheetah-run_backwards", _cheetah("run_backwards", cheetah._RUN_SPEED * 0.8)),
        ("cheetah-run_front", _cheetah("run_front", cheetah._RUN_SPEED * 0.6)),
        ("cheetah-run_back", _cheetah("run_back", cheetah._RUN_SPEED * 0.6)),
        ("cheetah-jump", _cheetah("jump", 0.5)),
        ("walker-walk_backwards", _walker(walker._WALK_SPEED)),
        ("walker-run_backwards", _walker(walker._RUN_SPEED)),
        ("hopper-hop_backwards", _hopper),
        ("pendulum-spin", _pendulum),
        ("ball_in_cup-spin", _cup),
        ("reacher-three_easy", _reacher(0.05)),
        ("reacher-three_hard", _reacher(0.015)),
    ]
)
"""``<domain>-<task>`` -> a loader ``(random=seed, time_limit=seconds) -> control.Environment``."""


def load(env_id: str, random: Any = None, time_limit: float = _INF) -> control.Environment:
    """The custom task ``env_id`` (a key of :data:`TASKS`)."""
    return TASKS[env_id](random=random, time_limit=time_limit)
