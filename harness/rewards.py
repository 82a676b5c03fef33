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

Sigmoid = Literal["gaussian", "linear", "quadratic"]
Arrays = Mapping[str, Any]
INF = math.inf


def tolerance(xp: Any, x: Any, lower: Any, upper: Any, margin: Any = 0.0, sigmoid: Sigmoid = "gaussian",
              value_at_margin: float = 0.1) -> Any:
    """1 where ``lower <= x <= upper``; outside, a sigmoid of the distance to the nearest bound in
    units of ``margin`` that equals ``value_at_margin`` one margin away (dm_control's shapes). A
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
    measure: Callable[[Any], dict[str, float]]
    """physics after a control step -> the components."""
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


def _measure_dog(p: Any) -> dict[str, float]:
    torso, pelvis = p.torso_pelvis_height()
    head_up, torso_up, pelvis_up = p.upright()
    return {"torso_height": float(torso), "pelvis_height": float(pelvis), "upright_head": float(head_up),
            "upright_torso": float(torso_up), "upright_pelvis": float(pelvis_up),
            "touch": float(p.touch_sensors().sum()), "velocity": float(p.com_forward_velocity())}


def _control(physics: Any) -> float:
    return small_control(physics.control())


FAMILIES: dict[str, Family] = {
    "walker": Family(
        "walker", ("torso_height", "torso_upright", "velocity"),
        (Param("stand_height", 0.3, 1.5, "torso height (m) above which standing is rewarded in full"),
         Param("move_speed", 0.0, 12.0, "speed (m/s) above which moving is rewarded in full; 0: stand"),
         Param("direction", -1.0, 1.0, "1: forward, -1: backward", "sign")),
        lambda p: {"torso_height": float(p.torso_height()), "torso_upright": float(p.torso_upright()),
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
        lambda p: {"velocity": float(p.speed())},
        _cheetah,
        {"dmc/cheetah-run": {"run_speed": 10.0, "direction": 1.0},
         "dmc/cheetah-run-backwards": {"run_speed": 8.0, "direction": -1.0}}),
    "hopper": Family(
        "hopper", ("height", "velocity", "small_control"),
        (Param("stand_height", 0.2, 1.2, "torso height over the foot (m) from which standing counts"),
         Param("hop_speed", 0.0, 6.0, "speed (m/s) above which hopping is rewarded in full; 0: stand"),
         Param("direction", -1.0, 1.0, "1: forward, -1: backward", "sign")),
        lambda p: {"height": float(p.height()), "velocity": float(p.speed()), "small_control": _control(p)},
        _hopper,
        {"dmc/hopper-stand": {"stand_height": 0.6, "hop_speed": 0.0, "direction": 1.0},
         "dmc/hopper-hop": {"stand_height": 0.6, "hop_speed": 2.0, "direction": 1.0},
         "dmc/hopper-hop-backwards": {"stand_height": 0.6, "hop_speed": 1.0, "direction": -1.0}}),
    "cartpole": Family(
        "cartpole", ("cart_position", "pole_cosine", "pole_angular_velocity", "small_control"),
        (Param("cart_target", -1.0, 1.0, "rail position (m) the cart is rewarded for staying near", "uniform"),),
        lambda p: {"cart_position": float(p.cart_position()), "pole_cosine": float(p.pole_angle_cosine()[0]),
                   "pole_angular_velocity": float(p.angular_vel()[0]),
                   "small_control": float(tolerance(np, p.control()[0], 0.0, 0.0, 1.0, "quadratic", 0.0))},
        _cartpole,
        {"dmc/cartpole-balance": {"cart_target": 0.0}, "dmc/cartpole-swingup": {"cart_target": 0.0}}),
    "reacher": Family(
        "reacher", ("distance",),
        (Param("radius", 0.011, 0.2, "finger-to-target distance (m) within which the reward is 1"),),
        lambda p: {"distance": float(p.finger_to_target_dist())},
        _reacher,
        {"dmc/reacher-easy": {"radius": 0.05 + 0.01}, "dmc/reacher-hard": {"radius": 0.015 + 0.01}}),
    "humanoid": Family(
        "humanoid", ("head_height", "torso_upright", "com_velocity_x", "com_velocity_y", "small_control"),
        (Param("stand_height", 0.5, 1.6, "head height (m) above which standing is rewarded in full"),
         Param("move_speed", 0.0, 15.0, "speed (m/s) above which moving is rewarded in full; 0: stand still")),
        lambda p: {"head_height": float(p.head_height()), "torso_upright": float(p.torso_upright()),
                   "com_velocity_x": float(p.center_of_mass_velocity()[0]),
                   "com_velocity_y": float(p.center_of_mass_velocity()[1]), "small_control": _control(p)},
        _humanoid,
        {"dmc/humanoid-stand": {"stand_height": 1.4, "move_speed": 0.0},
         "dmc/humanoid-walk": {"stand_height": 1.4, "move_speed": 1.0},
         "dmc/humanoid-run": {"stand_height": 1.4, "move_speed": 10.0}}),
    "quadruped": Family(
        "quadruped", ("torso_upright", "velocity"),
        (Param("move_speed", 0.1, 8.0, "forward speed (m/s, torso frame) above which moving is rewarded in full"),),
        lambda p: {"torso_upright": float(p.torso_upright()), "velocity": float(p.torso_velocity()[0])},
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
}
"""Domain -> its reward family. The dog's stand heights are 0.9 of its default pose's (dm_control
measures them at every episode start; they are constants of the model)."""

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
