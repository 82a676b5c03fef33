"""Reward families: a task's reward as a function r_ψ of named per-step reward components.

A family belongs to a simulator domain. It names the physical terms the domain's rewards are built
from (``components``, measured from the simulator after every control step), a few interpretable
parameters ψ with their ranges (a target speed, a height, a direction), and r_ψ(components). Each
supported task has a nominal ψ*, for which r_ψ* reproduces the task's own reward exactly (tests
check it to 1e-6 on random rollouts), so rewards for other ψ can be recomputed from stored
components, off-policy.

The reward functions take the array module ``xp`` (numpy, or jax.numpy inside a jitted update) and
broadcast over leading dimensions: components ``{name: (...,)}`` and ψ ``{name: (...,) or float}``.

The terms follow dm_control's suite (``suite/<domain>.py``, ``utils/rewards.py``): the tolerance
shapes and constants are the suite's; where the suite fixes a constant that a family varies, its
margin scales with it as the suite's own margins do (e.g. walker's stand margin is half the height).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from harness.errors import InputError

Sigmoid = Literal["gaussian", "linear", "quadratic", "long_tail"]
Arrays = Mapping[str, Any]
INF = math.inf


def tolerance(xp: Any, x: Any, lower: Any, upper: Any, margin: Any = 0.0, sigmoid: Sigmoid = "gaussian",
              value_at_margin: float = 0.1) -> Any:
    """1 where ``lower <= x <= upper``; outside, a sigmoid of the distance to the nearest bound in
    units of ``margin`` that equals ``value_at_margin`` one margin away (dm_control's shapes, and
    MetaWorld's ``long_tail``). A
    ``margin`` of the Python number 0 gives 0 outside the bounds; an array margin must be positive."""
    inside = (lower <= x) & (x <= upper)
    if isinstance(margin, (int, float)) and margin == 0:
        return xp.where(inside, 1.0, 0.0)
    d = xp.where(x < lower, lower - x, x - upper) / margin
    if sigmoid == "gaussian":
        outside = xp.exp(-0.5 * (d * math.sqrt(-2 * math.log(value_at_margin))) ** 2)
    elif sigmoid == "linear":
        scaled = d * (1 - value_at_margin)
        outside = xp.where(xp.abs(scaled) < 1, 1 - scaled, 0.0)
    elif sigmoid == "long_tail":
        outside = 1 / ((d * math.sqrt(1 / value_at_margin - 1)) ** 2 + 1)
    else:
        scaled = d * math.sqrt(1 - value_at_margin)
        outside = xp.where(xp.abs(scaled) < 1, 1 - scaled**2, 0.0)
    return xp.where(inside, 1.0, outside)


def small_control(control: np.ndarray) -> float:
    """The mean over actuators of the suite's quadratic control tolerance (1 at rest, 0 at |u| = 1)."""
    return float(np.mean(tolerance(np, np.asarray(control), 0.0, 0.0, 1.0, "quadratic", 0.0)))


@dataclass(frozen=True)
class Param:
    """One parameter of a family's ψ."""

    name: str
    low: float
    high: float
    doc: str
    draw: Literal["scale", "uniform", "sign"] = "scale"
    """How p_Ψ draws it: ψ* times a log-uniform factor in :data:`SCALE_RANGE` (clipped to the range),
    uniformly over the range, or ψ* with a random sign."""


@dataclass(frozen=True)
class Family:
    """The reward family of one simulator domain."""

    name: str
    components: tuple[str, ...]
    """Names of the per-step components, in the order they are stored."""
    params: tuple[Param, ...]
    measure: Callable[[Any, Mapping[str, Any]], dict[str, float]]
    """(simulator, the info of its step) after a control step -> the components. The simulator is
    what the suite's adapter steps: dm_control's ``Physics`` (whose steps have no info: ``{}``),
    HumanoidBench's unwrapped ``HumanoidEnv``, MetaWorld's ``SawyerXYZEnv``."""
    reward: Callable[[Any, Arrays, Arrays], Any]
    """(xp, ψ, components) -> r_ψ."""
    nominal: Mapping[str, Mapping[str, float]]
    """Catalog task name -> its ψ*."""


# ------------------------------------------------------------------------------------------------
# DeepMind Control


def _walker(xp: Any, psi: Arrays, c: Arrays) -> Any:
    height, speed = psi["stand_height"], psi["move_speed"]
    standing = tolerance(xp, c["torso_height"], height, INF, height / 2)
    stand = (3 * standing + (1 + c["torso_upright"]) / 2) / 4
    velocity = psi["direction"] * c["velocity"]
    move = tolerance(xp, velocity, speed, INF, xp.maximum(speed, 1e-9) / 2, "linear", 0.5)
    return xp.where(speed == 0, stand, stand * (5 * move + 1) / 6)


def _cheetah(xp: Any, psi: Arrays, c: Arrays) -> Any:
    speed = psi["run_speed"]
    return tolerance(xp, psi["direction"] * c["velocity"], speed, INF, speed, "linear", 0.0)


def _hopper(xp: Any, psi: Arrays, c: Arrays) -> Any:
    speed = psi["hop_speed"]
    standing = tolerance(xp, c["height"], psi["stand_height"], 2.0)
    hopping = tolerance(xp, psi["direction"] * c["velocity"], speed, INF, xp.maximum(speed, 1e-9) / 2, "linear",
                        0.5)
    return standing * xp.where(speed == 0, (c["small_control"] + 4) / 5, hopping)


def _cartpole(xp: Any, psi: Arrays, c: Arrays) -> Any:
    offset = c["cart_position"] - psi["cart_target"]
    centered = (1 + tolerance(xp, offset, 0.0, 0.0, 2.0)) / 2
    small_velocity = (1 + tolerance(xp, c["pole_angular_velocity"], 0.0, 0.0, 5.0)) / 2
    control = (4 + c["small_control"]) / 5
    return (c["pole_cosine"] + 1) / 2 * control * small_velocity * centered


def _reacher(xp: Any, psi: Arrays, c: Arrays) -> Any:
    return tolerance(xp, c["distance"], 0.0, psi["radius"])


def _humanoid(xp: Any, psi: Arrays, c: Arrays) -> Any:
    height, speed = psi["stand_height"], psi["move_speed"]
    standing = tolerance(xp, c["head_height"], height, INF, height / 4)
    upright = tolerance(xp, c["torso_upright"], 0.9, INF, 1.9, "linear", 0.0)
    control = (4 + c["small_control"]) / 5
    vx, vy = c["com_velocity_x"], c["com_velocity_y"]
    dont_move = (tolerance(xp, vx, 0.0, 0.0, 2.0) + tolerance(xp, vy, 0.0, 0.0, 2.0)) / 2
    move = tolerance(xp, xp.sqrt(vx**2 + vy**2), speed, INF, xp.maximum(speed, 1e-9), "linear", 0.0)
    return control * standing * upright * xp.where(speed == 0, dont_move, (5 * move + 1) / 6)


def _quadruped(xp: Any, psi: Arrays, c: Arrays) -> Any:
    speed = psi["move_speed"]
    upright = tolerance(xp, c["torso_upright"], 1.0, INF, 2.0, "linear", 0.0)
    return upright * tolerance(xp, c["velocity"], speed, INF, speed, "linear", 0.5)


DOG_UPRIGHT_COSINE = math.cos(math.radians(30))
"""The dog's head, torso and pelvis count as upright within 30 degrees of vertical."""
DOG_BODY_WEIGHT = 100.46366448928629
"""The dog's weight (N): gravity times the torso's subtree mass, which foot touches are rewarded up to."""


def _dog(xp: Any, psi: Arrays, c: Arrays) -> Any:
    torso, pelvis, speed = psi["torso_height"], psi["pelvis_height"], psi["move_speed"]
    stand = tolerance(xp, c["torso_height"], torso, INF, torso) * tolerance(xp, c["pelvis_height"], pelvis, INF, pelvis)
    for part in ("head", "torso", "pelvis"):
        stand = stand * tolerance(xp, c[f"upright_{part}"], DOG_UPRIGHT_COSINE, INF, DOG_UPRIGHT_COSINE + 1,
                                  "linear", 0.0)
    stand = stand * tolerance(xp, c["touch"], DOG_BODY_WEIGHT, INF, DOG_BODY_WEIGHT, "linear", 0.9)
    forward = tolerance(xp, c["velocity"], speed, 2 * speed, xp.maximum(speed, 1.0), "linear", 0.0)
    return xp.where(speed == 0, stand, stand * (4 * forward + 1) / 5)


def _measure_dog(p: Any, _: Mapping[str, Any]) -> dict[str, float]:
    torso, pelvis = p.torso_pelvis_height()
    head_up, torso_up, pelvis_up = p.upright()
    return {"torso_height": float(torso), "pelvis_height": float(pelvis), "upright_head": float(head_up),
            "upright_torso": float(torso_up), "upright_pelvis": float(pelvis_up),
            "touch": float(p.touch_sensors().sum()), "velocity": float(p.com_forward_velocity())}


def _control(physics: Any) -> float:
    return small_control(physics.control())


# ------------------------------------------------------------------------------------------------
# HumanoidBench (locomotion; ``humanoid_bench/envs/basic_locomotion_envs.py`` and ``pole.py`` at
# the pinned commit). The tasks' terms are dm_control's tolerances of the robot's head height,
# torso uprightness, centre-of-mass velocity and actuator forces; the h1 and h1hand robots share
# them. Where the suite's constant is a ψ here, its margin scales with it as the suite's does.

HB_STAND_MARGIN = 1 / 4
"""Standing margin as a fraction of the stand height (HumanoidBench: 1.65 / 4)."""
HB_CLIMB_MARGIN = 0.45 / 1.2
"""Stair and slide: margin of the head-over-foot height as a fraction of it (0.45 at 1.2 m)."""
HB_FORCE_MARGIN = 10.0
"""Actuator force (N) at which a motor's small-control term reaches 0."""


def _hb_control(xp: Any, psi: Arrays, c: Arrays) -> Any:
    """HumanoidBench's ``(4 + small_control) / 5`` with the weight 1/5 a ψ: 1 - w (1 - small_control)."""
    return 1 - psi["control_cost"] * (1 - c["small_control"])


def _hb_move(xp: Any, psi: Arrays, c: Arrays) -> Any:
    """``(5 move + 1) / 6``: forward (or, direction -1, backward) centre-of-mass speed above ψ's."""
    speed = psi["move_speed"]
    move = tolerance(xp, psi["direction"] * c["com_velocity_x"], speed, INF, xp.maximum(speed, 1e-9), "linear", 0.0)
    return (5 * move + 1) / 6


def _hb_dont_move(xp: Any, c: Arrays) -> Any:
    return (tolerance(xp, c["com_velocity_x"], 0.0, 0.0, 2.0) + tolerance(xp, c["com_velocity_y"], 0.0, 0.0, 2.0)) / 2


def _hb_stand(xp: Any, psi: Arrays, c: Arrays, upright_from: float) -> Any:
    height = psi["stand_height"]
    standing = tolerance(xp, c["head_height"], height, INF, height * HB_STAND_MARGIN)
    return standing * tolerance(xp, c["torso_upright"], upright_from, INF, 1.9, "linear", 0.0)


def _hb_walk(xp: Any, psi: Arrays, c: Arrays) -> Any:
    stand = _hb_control(xp, psi, c) * _hb_stand(xp, psi, c, 0.9)
    return stand * xp.where(psi["move_speed"] == 0, _hb_dont_move(xp, c), _hb_move(xp, psi, c))


def _hb_hurdle(xp: Any, psi: Arrays, c: Arrays) -> Any:
    reward = _hb_control(xp, psi, c) * _hb_stand(xp, psi, c, 0.8) * _hb_move(xp, psi, c)
    return reward * xp.where(c["wall_contact"] > 0, psi["contact_discount"], 1.0)


def _hb_climb(xp: Any, psi: Arrays, c: Arrays) -> Any:
    height = psi["stand_height"]
    standing = (tolerance(xp, c["head_over_left_foot"], height, INF, height * HB_CLIMB_MARGIN)
                * tolerance(xp, c["head_over_right_foot"], height, INF, height * HB_CLIMB_MARGIN))
    upright = tolerance(xp, c["torso_upright"], 0.5, INF, 1.9, "linear", 0.0)
    return standing * upright * _hb_control(xp, psi, c) * _hb_move(xp, psi, c)


def _hb_pole(xp: Any, psi: Arrays, c: Arrays) -> Any:
    reward = 0.5 * (_hb_control(xp, psi, c) * _hb_stand(xp, psi, c, 0.9)) + 0.5 * _hb_move(xp, psi, c)
    return reward * xp.where(c["pole_contact"] > 0, psi["contact_discount"], 1.0)


def _hb_crawl(xp: Any, psi: Arrays, c: Arrays) -> Any:
    height = psi["crawl_height"]
    head = tolerance(xp, c["head_height"], height - 0.2, height + 0.2, 1.0)
    body = tolerance(xp, c["imu_height"], height - 0.2, height + 0.2, 1.0)
    pose = tolerance(xp, c["pelvis_quat_distance"], 0.0, 0.0, 1.0)
    in_tunnel = tolerance(xp, c["imu_y"], -1.0, 1.0)
    return (0.1 * _hb_control(xp, psi, c) + 0.25 * xp.minimum(body, head) + 0.4 * _hb_move(xp, psi, c)
            + 0.25 * pose) * in_tunnel


def _hb_sit(xp: Any, psi: Arrays, c: Arrays) -> Any:
    height = psi["sit_height"]
    sitting = tolerance(xp, c["pelvis_height"], height - 0.02, height + 0.02, 0.2)
    on_chair = (tolerance(xp, c["chair_offset_x"], -0.19, 0.19, 0.2)
                * tolerance(xp, c["chair_offset_y"], 0.0, 0.0, 0.1))
    posture = tolerance(xp, c["head_over_imu"], 0.35, 0.45, 0.3)
    upright = tolerance(xp, c["torso_upright"], 0.95, INF, 0.9, "linear", 0.0)
    sit = (0.5 * sitting + 0.5 * on_chair) * upright * posture
    return _hb_control(xp, psi, c) * sit * _hb_dont_move(xp, c)


def _hb_body(env: Any) -> dict[str, float]:
    """The terms every HumanoidBench locomotion reward reads, from the unwrapped env after its step."""
    velocity = env.named.data.sensordata["pelvis_subtreelinvel"]  # (3,) centre-of-mass velocity
    forces = np.asarray(env.data.actuator_force)  # (actuators,)
    return {"head_height": float(env.named.data.site_xpos["head", "z"]),
            "torso_upright": float(env.named.data.xmat["torso_link", "zz"]),
            "com_velocity_x": float(velocity[0]), "com_velocity_y": float(velocity[1]),
            "small_control": float(np.mean(tolerance(np, forces, 0.0, 0.0, HB_FORCE_MARGIN, "quadratic", 0.0)))}


def _hb_touches(env: Any, hit: Callable[[int], bool], ground_too: bool = True) -> float:
    """1.0 when a contact of this step involves a geom ``hit`` selects (not counting contacts with
    geom 0, the floor, unless ``ground_too``), else 0.0."""
    for pair in env.data.contact.geom:  # (contacts, 2) geom ids
        if (ground_too or 0 not in pair) and (hit(int(pair[0])) or hit(int(pair[1]))):
            return 1.0
    return 0.0


def _measure_hb_hurdle(env: Any, _: Mapping[str, Any]) -> dict[str, float]:
    names = env.named.data.geom_xpos.axes.row.names
    walls = {names.index(f"{side}_barrier_collision") for side in ("left", "right", "behind")}
    return {**_hb_body(env), "wall_contact": _hb_touches(env, walls.__contains__)}


def _measure_hb_pole(env: Any, _: Mapping[str, Any]) -> dict[str, float]:
    names = env.named.data.geom_xpos.axes.row.names
    return {**_hb_body(env), "pole_contact": _hb_touches(env, lambda g: "pole_r" in names[g], ground_too=False)}


def _measure_hb_climb(env: Any, _: Mapping[str, Any]) -> dict[str, float]:
    body, sites = _hb_body(env), env.named.data.site_xpos
    return {**body, "head_over_left_foot": body["head_height"] - float(sites["left_foot", "z"]),
            "head_over_right_foot": body["head_height"] - float(sites["right_foot", "z"])}


HB_CRAWL_POSE = np.array([0.75, 0.0, 0.65, 0.0])
"""The pelvis orientation (quaternion) HumanoidBench's crawl rewards."""


def _measure_hb_crawl(env: Any, _: Mapping[str, Any]) -> dict[str, float]:
    imu = env.named.data.site_xpos["imu"]  # (3,)
    return {**_hb_body(env), "imu_height": float(imu[2]), "imu_y": float(imu[1]),
            "pelvis_quat_distance": float(np.linalg.norm(env.data.body("pelvis").xquat - HB_CRAWL_POSE))}


def _measure_hb_sit(env: Any, _: Mapping[str, Any]) -> dict[str, float]:
    body, qpos, chair = _hb_body(env), env.data.qpos, env.named.data.xpos["chair"]
    return {**body, "pelvis_height": float(qpos[2]), "chair_offset_x": float(qpos[0] - chair[0]),
            "chair_offset_y": float(qpos[1] - chair[1]),
            "head_over_imu": body["head_height"] - float(env.named.data.site_xpos["imu", "z"])}


HB_BODY = ("head_height", "torso_upright", "com_velocity_x", "com_velocity_y", "small_control")
HB_STAND_HEIGHT = Param("stand_height", 0.4, 2.0, "head height (m) above which standing is rewarded in full")
HB_SPEED = Param("move_speed", 0.0, 10.0, "forward centre-of-mass speed (m/s) above which moving is rewarded "
                                          "in full; 0: stand still")
HB_CONTROL = Param("control_cost", 0.0, 1.0, "weight of the small-actuator-force term: the reward is scaled by "
                                             "1 - w (1 - small_control)")
HB_DIRECTION = Param("direction", -1.0, 1.0, "1: forward, -1: backward", "sign")
HB_CONTACT = Param("contact_discount", 0.0, 1.0, "factor of the reward at a step that touches the obstacle")


def _hb_tasks(words: tuple[str, ...], **psi: float) -> dict[str, dict[str, float]]:
    """ψ* of the h1 and h1hand tasks of the HumanoidBench task ``words``."""
    return {f"humanoidbench/{robot}-{word.replace('_', '-')}": dict(psi)
            for word in words for robot in ("h1", "h1hand")}


HB_RUN_SPEED = Param("move_speed", 0.1, 10.0, "forward centre-of-mass speed (m/s) above which moving is rewarded "
                                              "in full")


# ------------------------------------------------------------------------------------------------
# MetaWorld (3.0.0, ``metaworld/envs/sawyer_<task>_v3.py``, ``compute_reward`` of the default "v2"
# reward). Distances are the env's own, after its step: the gripper's centre (``tcp_center``), the
# object (observation 4:7), the target; ``grasp`` is MetaWorld's gripper-caging term as its step
# reports it (``info["grasp_reward"]``), a function of the pads, the object and the action.

MW_SUCCESS_REWARD = 10.0
"""MetaWorld's reward once the object (or the hand, for reach) is within the target radius."""
MW_NEAR_OBJECT = 0.02
"""Gripper-to-object distance (m) under which an open gripper counts as holding the object."""


def _mw_in_place(xp: Any, psi: Arrays, distance: Any, start: Any) -> Any:
    """1 within the target radius; outside, MetaWorld's long tail over the start-to-target distance."""
    return tolerance(xp, distance, 0.0, psi["target_radius"], start, "long_tail", 0.1)


def _mw_reach(xp: Any, psi: Arrays, c: Arrays) -> Any:
    return MW_SUCCESS_REWARD * _mw_in_place(xp, psi, c["hand_to_target"], c["hand_start_to_target"])


def _mw_holding(c: Arrays) -> Any:
    return (c["hand_to_object"] < MW_NEAR_OBJECT) & (c["gripper_opening"] > 0)


def _mw_push(xp: Any, psi: Arrays, c: Arrays) -> Any:
    in_place = _mw_in_place(xp, psi, c["object_to_target"], c["object_start_to_target"])
    grasped = psi["grasp_weight"] * c["grasp"]
    reward = xp.where(_mw_holding(c), 1 + 2 * grasped + psi["place_weight"] * in_place, grasped)
    return xp.where(c["object_to_target"] < psi["target_radius"], MW_SUCCESS_REWARD, reward)


def _mw_pick_place(xp: Any, psi: Arrays, c: Arrays) -> Any:
    in_place = _mw_in_place(xp, psi, c["object_to_target"], c["object_start_to_target"])
    grasp = c["grasp"]
    both = grasp + in_place - grasp * in_place  # the Hamacher product of the two
    reward = xp.where(both > 0, grasp * in_place / xp.where(both > 0, both, 1.0), 0.0)
    lifted = _mw_holding(c) & (c["object_lift"] > psi["lift_height"])
    reward = xp.where(lifted, reward + 1 + psi["place_weight"] * in_place, reward)
    return xp.where(c["object_to_target"] < psi["target_radius"], MW_SUCCESS_REWARD, reward)


def _measure_mw_reach(env: Any, _: Mapping[str, Any]) -> dict[str, float]:
    target = env._target_pos  # (3,)
    return {"hand_to_target": float(np.linalg.norm(env.tcp_center - target)),
            "hand_start_to_target": float(np.linalg.norm(env.hand_init_pos - target))}


def _measure_mw_object(env: Any, info: Mapping[str, Any]) -> dict[str, float]:
    obs, target = env._last_stable_obs, env._target_pos  # (39,), (3,)
    obj = obs[4:7]
    return {"hand_to_object": float(np.linalg.norm(obj - env.tcp_center)), "gripper_opening": float(obs[3]),
            "object_to_target": float(np.linalg.norm(obj - target)),
            "object_start_to_target": float(np.linalg.norm(env.obj_init_pos - target)),
            "grasp": float(info["grasp_reward"]), "object_lift": float(obj[2] - env.obj_init_pos[2])}


MW_OBJECT = ("hand_to_object", "gripper_opening", "object_to_target", "object_start_to_target", "grasp",
             "object_lift")
MW_RADIUS = Param("target_radius", 0.01, 0.2, "distance (m) to the target within which the reward is the "
                                              "success reward (10) and placing is rewarded in full")
MW_PLACE = Param("place_weight", 0.0, 20.0, "weight of the in-place term while the object is held")


FAMILIES: dict[str, Family] = {
    "walker": Family(
        "walker", ("torso_height", "torso_upright", "velocity"),
        (Param("stand_height", 0.3, 1.5, "torso height (m) above which standing is rewarded in full"),
         Param("move_speed", 0.0, 12.0, "speed (m/s) above which moving is rewarded in full; 0: stand"),
         Param("direction", -1.0, 1.0, "1: forward, -1: backward", "sign")),
        lambda p, _: {"torso_height": float(p.torso_height()), "torso_upright": float(p.torso_upright()),
                   "velocity": float(p.horizontal_velocity())},
        _walker,
        {"dmc/walker-stand": {"stand_height": 1.2, "move_speed": 0.0, "direction": 1.0},
         "dmc/walker-walk": {"stand_height": 1.2, "move_speed": 1.0, "direction": 1.0},
         "dmc/walker-run": {"stand_height": 1.2, "move_speed": 8.0, "direction": 1.0},
         "dmc/walker-walk-backwards": {"stand_height": 1.2, "move_speed": 1.0, "direction": -1.0},
         "dmc/walker-run-backwards": {"stand_height": 1.2, "move_speed": 8.0, "direction": -1.0}}),
    "cheetah": Family(
        "cheetah", ("velocity",),
        (Param("run_speed", 1.0, 20.0, "speed (m/s) above which running is rewarded in full"),
         Param("direction", -1.0, 1.0, "1: forward, -1: backward", "sign")),
        lambda p, _: {"velocity": float(p.speed())},
        _cheetah,
        {"dmc/cheetah-run": {"run_speed": 10.0, "direction": 1.0},
         "dmc/cheetah-run-backwards": {"run_speed": 8.0, "direction": -1.0}}),
    "hopper": Family(
        "hopper", ("height", "velocity", "small_control"),
        (Param("stand_height", 0.2, 1.2, "torso height over the foot (m) from which standing counts"),
         Param("hop_speed", 0.0, 6.0, "speed (m/s) above which hopping is rewarded in full; 0: stand"),
         Param("direction", -1.0, 1.0, "1: forward, -1: backward", "sign")),
        lambda p, _: {"height": float(p.height()), "velocity": float(p.speed()), "small_control": _control(p)},
        _hopper,
        {"dmc/hopper-stand": {"stand_height": 0.6, "hop_speed": 0.0, "direction": 1.0},
         "dmc/hopper-hop": {"stand_height": 0.6, "hop_speed": 2.0, "direction": 1.0},
         "dmc/hopper-hop-backwards": {"stand_height": 0.6, "hop_speed": 1.0, "direction": -1.0}}),
    "cartpole": Family(
        "cartpole", ("cart_position", "pole_cosine", "pole_angular_velocity", "small_control"),
        (Param("cart_target", -1.0, 1.0, "rail position (m) the cart is rewarded for staying near", "uniform"),),
        lambda p, _: {"cart_position": float(p.cart_position()), "pole_cosine": float(p.pole_angle_cosine()[0]),
                   "pole_angular_velocity": float(p.angular_vel()[0]),
                   "small_control": float(tolerance(np, p.control()[0], 0.0, 0.0, 1.0, "quadratic", 0.0))},
        _cartpole,
        {"dmc/cartpole-balance": {"cart_target": 0.0}, "dmc/cartpole-swingup": {"cart_target": 0.0}}),
    "reacher": Family(
        "reacher", ("distance",),
        (Param("radius", 0.011, 0.2, "finger-to-target distance (m) within which the reward is 1"),),
        lambda p, _: {"distance": float(p.finger_to_target_dist())},
        _reacher,
        {"dmc/reacher-easy": {"radius": 0.05 + 0.01}, "dmc/reacher-hard": {"radius": 0.015 + 0.01}}),
    "humanoid": Family(
        "humanoid", ("head_height", "torso_upright", "com_velocity_x", "com_velocity_y", "small_control"),
        (Param("stand_height", 0.5, 1.6, "head height (m) above which standing is rewarded in full"),
         Param("move_speed", 0.0, 15.0, "speed (m/s) above which moving is rewarded in full; 0: stand still")),
        lambda p, _: {"head_height": float(p.head_height()), "torso_upright": float(p.torso_upright()),
                   "com_velocity_x": float(p.center_of_mass_velocity()[0]),
                   "com_velocity_y": float(p.center_of_mass_velocity()[1]), "small_control": _control(p)},
        _humanoid,
        {"dmc/humanoid-stand": {"stand_height": 1.4, "move_speed": 0.0},
         "dmc/humanoid-walk": {"stand_height": 1.4, "move_speed": 1.0},
         "dmc/humanoid-run": {"stand_height": 1.4, "move_speed": 10.0}}),
    "quadruped": Family(
        "quadruped", ("torso_upright", "velocity"),
        (Param("move_speed", 0.1, 8.0, "forward speed (m/s, torso frame) above which moving is rewarded in full"),),
        lambda p, _: {"torso_upright": float(p.torso_upright()), "velocity": float(p.torso_velocity()[0])},
        _quadruped,
        {"dmc/quadruped-walk": {"move_speed": 0.5}, "dmc/quadruped-run": {"move_speed": 5.0}}),
    "dog": Family(
        "dog", ("torso_height", "pelvis_height", "upright_head", "upright_torso", "upright_pelvis", "touch",
                "velocity"),
        (Param("torso_height", 0.1, 0.6, "torso height (m) above which standing is rewarded in full"),
         Param("pelvis_height", 0.1, 0.6, "pelvis height (m) above which standing is rewarded in full"),
         Param("move_speed", 0.0, 12.0, "forward speed (m/s) rewarded in full up to twice it; 0: stand")),
        _measure_dog,
        _dog,
        {f"dmc/dog-{task}": {"torso_height": 0.373698, "pelvis_height": 0.42854840999999994, "move_speed": speed}
         for task, speed in (("stand", 0.0), ("walk", 1.0), ("trot", 3.0), ("run", 9.0))}),
    # HumanoidBench: walk, stand and run differ only in their speed; stair and slide share a reward.
    "humanoidbench-walk": Family(
        "humanoidbench-walk", HB_BODY, (HB_STAND_HEIGHT, HB_SPEED, HB_CONTROL, HB_DIRECTION),
        lambda env, _: _hb_body(env), _hb_walk,
        {**_hb_tasks(("stand",), stand_height=1.65, move_speed=0.0, control_cost=0.2, direction=1.0),
         **_hb_tasks(("walk",), stand_height=1.65, move_speed=1.0, control_cost=0.2, direction=1.0),
         **_hb_tasks(("run",), stand_height=1.65, move_speed=5.0, control_cost=0.2, direction=1.0)}),
    "humanoidbench-hurdle": Family(
        "humanoidbench-hurdle", (*HB_BODY, "wall_contact"),
        (HB_STAND_HEIGHT, HB_RUN_SPEED, HB_CONTROL, HB_DIRECTION, HB_CONTACT), _measure_hb_hurdle, _hb_hurdle,
        _hb_tasks(("hurdle",), stand_height=1.65, move_speed=5.0, control_cost=0.2, direction=1.0,
                  contact_discount=0.1)),
    "humanoidbench-climb": Family(
        "humanoidbench-climb", (*HB_BODY, "head_over_left_foot", "head_over_right_foot"),
        (Param("stand_height", 0.4, 2.0, "head height (m) over each foot above which standing is rewarded in full"),
         HB_RUN_SPEED, HB_CONTROL, HB_DIRECTION), _measure_hb_climb, _hb_climb,
        _hb_tasks(("stair", "slide"), stand_height=1.2, move_speed=1.0, control_cost=0.2, direction=1.0)),
    "humanoidbench-pole": Family(
        "humanoidbench-pole", (*HB_BODY, "pole_contact"),
        (HB_STAND_HEIGHT, HB_RUN_SPEED, HB_CONTROL, HB_DIRECTION, HB_CONTACT), _measure_hb_pole, _hb_pole,
        _hb_tasks(("pole",), stand_height=1.65, move_speed=0.5, control_cost=0.2, direction=1.0,
                  contact_discount=0.1)),
    "humanoidbench-crawl": Family(
        "humanoidbench-crawl", (*HB_BODY, "imu_height", "imu_y", "pelvis_quat_distance"),
        (Param("crawl_height", 0.3, 1.5, "centre (m) of the 0.4 m band of head and body heights rewarded in full"),
         HB_RUN_SPEED, HB_CONTROL, HB_DIRECTION), _measure_hb_crawl, _hb_crawl,
        _hb_tasks(("crawl",), crawl_height=0.8, move_speed=1.0, control_cost=0.2, direction=1.0)),
    "humanoidbench-sit": Family(
        "humanoidbench-sit", (*HB_BODY, "pelvis_height", "chair_offset_x", "chair_offset_y", "head_over_imu"),
        (Param("sit_height", 0.3, 1.2, "centre (m) of the 4 cm band of pelvis heights rewarded in full"),
         HB_CONTROL), _measure_hb_sit, _hb_sit,
        _hb_tasks(("sit_simple", "sit_hard"), sit_height=0.7, control_cost=0.2)),
    # MetaWorld
    "metaworld-reach": Family(
        "metaworld-reach", ("hand_to_target", "hand_start_to_target"), (MW_RADIUS,), _measure_mw_reach, _mw_reach,
        {"metaworld/reach": {"target_radius": 0.05}}),
    "metaworld-push": Family(
        "metaworld-push", MW_OBJECT[:-1],
        (MW_RADIUS, Param("grasp_weight", 0.0, 10.0, "weight of the gripper-caging term"), MW_PLACE),
        _measure_mw_object, _mw_push,
        {"metaworld/push": {"target_radius": 0.05, "grasp_weight": 2.0, "place_weight": 5.0}}),
    "metaworld-pick-place": Family(
        "metaworld-pick-place", MW_OBJECT,
        (MW_RADIUS, MW_PLACE, Param("lift_height", 0.0, 0.2, "height (m) over its start the held object must be "
                                                             "lifted for placing to be rewarded")),
        _measure_mw_object, _mw_pick_place,
        {"metaworld/pick-place": {"target_radius": 0.05, "place_weight": 5.0, "lift_height": 0.01}}),
}
"""Family name (a DMC domain; a HumanoidBench or MetaWorld reward) -> its reward family. The dog's
stand heights are 0.9 of its default pose's (dm_control measures them at every episode start; they
are constants of the model)."""

BY_TASK: dict[str, Family] = {task: family for family in FAMILIES.values() for task in family.nominal}
"""Catalog task name -> the family of its reward."""


SCALE_RANGE = (0.25, 4.0)
"""The factors a "scale" parameter's ψ* is multiplied by under p_Ψ (log-uniform)."""


Distribution = Literal["family", "uniform"]
"""p_Ψ: each parameter drawn as its :attr:`Param.draw` says (``family``), or every parameter uniformly
over its range (``uniform``; a sign parameter still takes ±|ψ*|)."""


def draw_psi(xp: Any, fam: Family, nominal: Mapping[str, float], alpha: float, u: Any,
             distribution: Distribution = "family") -> dict[str, Any]:
    """ψ drawn from α·δ(ψ*) + (1 - α)·p_Ψ for each row of ``u``: uniforms in [0, 1) of shape
    (..., 1 + parameters), the first choosing ψ* (below α), the others drawing each parameter."""
    keep = u[..., 0] < alpha  # (...,)
    low, high = math.log(SCALE_RANGE[0]), math.log(SCALE_RANGE[1])
    out = {}
    for i, p in enumerate(fam.params, start=1):
        star, v = nominal[p.name], u[..., i]
        how = "uniform" if distribution == "uniform" and p.draw != "sign" else p.draw
        if how == "scale":
            drawn = xp.clip(star * xp.exp(low + (high - low) * v), p.low, p.high)
        elif how == "uniform":
            drawn = p.low + (p.high - p.low) * v
        else:
            drawn = xp.where(v < 0.5, -abs(star), abs(star))
        out[p.name] = xp.where(keep, star, drawn)
    return out


def normalise(xp: Any, fam: Family, psi: Arrays) -> Any:
    """ψ mapped to [-1, 1] per parameter by its range, stacked last: (..., parameters), what a
    conditioned agent is given."""
    return xp.stack([2 * (xp.asarray(psi[p.name]) - p.low) / (p.high - p.low) - 1 for p in fam.params], axis=-1)


def relabel(xp: Any, fam: Family, psi: Arrays, components: Any) -> Any:
    """r_ψ of stored transitions, summed over their action-repeat sub-steps. components: (..., repeat,
    components) in the family's order, NaN for sub-steps that did not happen (after a termination),
    which count 0; psi: {parameter: (...,) or a number} -> (...,)."""
    named = {name: components[..., k] for k, name in enumerate(fam.components)}  # (..., repeat) each
    per_step = fam.reward(xp, {k: xp.asarray(v)[..., None] for k, v in psi.items()}, named)
    happened = ~xp.isnan(components[..., 0])  # (..., repeat)
    return xp.sum(xp.where(happened, per_step, 0.0), axis=-1)


def markdown() -> str:
    """Every family as Markdown: its components, its parameters with their ranges and draws, and
    its tasks with ψ* (the reference table of ``docs/rewards.md``, which a test keeps equal)."""
    low, high = SCALE_RANGE
    draws = {"scale": f"ψ* × log-uniform [{low:g}, {high:g}], clipped", "uniform": "uniform over the range",
             "sign": "ψ* with a random sign"}
    lines = []
    for fam in FAMILIES.values():
        lines += [f"### {fam.name}", "", f"Components: {', '.join(f'`{c}`' for c in fam.components)}.", "",
                  "| ψ | range | p_Ψ draw | meaning |", "| --- | --- | --- | --- |"]
        lines += [f"| `{p.name}` | [{p.low:g}, {p.high:g}] | {draws[p.draw]} | {p.doc} |" for p in fam.params]
        lines += ["", "| task | ψ* |", "| --- | --- |"]
        lines += [f"| `{task}` | {', '.join(f'{k} {v:g}' for k, v in psi.items())} |"
                  for task, psi in fam.nominal.items()]
        lines.append("")
    return "\n".join(lines)


def measured(fam: Family, simulator: Any, info: Mapping[str, Any]) -> tuple[float, ...]:
    """The components of ``fam`` after a step of ``simulator`` whose info was ``info``, in the family's
    order (what :class:`harness.envs.base.SimStep` carries)."""
    values = fam.measure(simulator, info)
    return tuple(values[name] for name in fam.components)


def family(task: str) -> Family:
    """The reward family of a catalog task; InputError lists the tasks that have one."""
    if task not in BY_TASK:
        raise InputError(f"task {task!r} has no reward family; tasks with one: {', '.join(sorted(BY_TASK))}")
    return BY_TASK[task]


def check_psi(task: str, psi: Mapping[str, float], where: str) -> dict[str, float]:
    """ψ for ``task`` with every parameter of its family, missing ones taken from ψ*; InputError
    names ``where`` and the parameter for an unknown name or a value out of its range."""
    fam = family(task)
    params = {p.name: p for p in fam.params}
    for name, value in psi.items():
        if name not in params:
            raise InputError(f"{where}.{name}: not a parameter of the {fam.name} reward family; parameters: "
                             f"{', '.join(params)}")
        p = params[name]
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and p.low <= value <= p.high):
            raise InputError(f"{where}.{name}: expected a number in [{p.low:g}, {p.high:g}] ({p.doc}), got {value!r}")
    return {**fam.nominal[task], **{k: float(v) for k, v in psi.items()}}
