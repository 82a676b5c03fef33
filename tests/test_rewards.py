"""Reward families: with ψ* the family's reward is the task's own, at every step of a rollout (DMC,
MetaWorld; HumanoidBench's in test_humanoidbench.py, which installs it);
other ψ change it as their meaning says; the same function runs on numpy and inside jax.jit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dm_control import suite
from metaworld.policies import SawyerPickPlaceV3Policy, SawyerPushV3Policy, SawyerReachV3Policy

from harness import rewards
from harness.envs import dmc_custom, make
from harness.envs.base import EpisodeEnv
from harness.errors import InputError

STEPS = 300


def rollout(task: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Components (steps,) each and the environment's rewards (steps,) of a random-action rollout."""
    domain, name = task.removeprefix("dmc/").split("-", 1)
    custom = f"{domain}-{name.replace('-', '_')}"
    env = dmc_custom.load(custom, random=0) if custom in dmc_custom.TASKS else \
        suite.load(domain, name.replace("-", "_"), task_kwargs={"random": 0})
    family = rewards.family(task)
    rng = np.random.default_rng(0)
    spec = env.action_spec()
    env.reset()
    measured: dict[str, list[float]] = {c: [] for c in family.components}
    got = []
    for _ in range(STEPS // 3 if domain == "dog" else STEPS):  # the dog steps slowly
        step = env.step(rng.uniform(spec.minimum, spec.maximum))
        for key, value in family.measure(env.physics, {}).items():
            measured[key].append(value)
        got.append(step.reward)
    return {k: np.asarray(v) for k, v in measured.items()}, np.asarray(got, dtype=np.float64)


@pytest.mark.parametrize("task", sorted(t for t in rewards.BY_TASK if t.startswith("dmc/")))
def test_the_nominal_parameters_reproduce_the_tasks_reward(task: str) -> None:
    components, expected = rollout(task)
    family = rewards.family(task)
    assert set(components) == set(family.components)
    got = family.reward(np, family.nominal[task], components)  # (steps,)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert all(np.ptp(v) > 0 for k, v in components.items() if k != "small_control")  # the rollout moved


def test_the_tolerance_shapes_at_their_margin() -> None:
    # One margin outside the bounds each shape gives value_at_margin; inside, 1.
    x = np.array([1.0, 3.0, 2.0])  # below by one margin, above by one margin, inside
    for sigmoid in ("gaussian", "linear", "quadratic"):
        got = rewards.tolerance(np, x, 1.5, 2.5, 0.5, sigmoid, 0.25)
        np.testing.assert_allclose(got, [0.25, 0.25, 1.0], atol=1e-12)


def test_other_parameters_mean_what_they_say() -> None:
    walker = rewards.FAMILIES["walker"]
    c = {"torso_height": np.array([1.3]), "torso_upright": np.array([1.0]), "velocity": np.array([3.0])}
    # Standing in full, upright: stand = 1; at speed 3, walking (1 m/s) is rewarded in full, running
    # (8 m/s, margin 4, linear to 0.5 at the margin) gets move = 1 - 5/4 * 0.5 = 0.375: (5 * 0.375 + 1) / 6.
    walk, run = walker.nominal["dmc/walker-walk"], walker.nominal["dmc/walker-run"]
    assert walker.reward(np, walk, c)[0] == pytest.approx(1.0)
    assert walker.reward(np, run, c)[0] == pytest.approx((5 * 0.375 + 1) / 6)
    assert walker.reward(np, {**walk, "direction": -1.0}, c)[0] == pytest.approx(1 / 6)  # moving the wrong way
    cheetah = rewards.FAMILIES["cheetah"]
    back = {"velocity": np.array([-10.0, 10.0])}
    np.testing.assert_allclose(cheetah.reward(np, {"run_speed": 10.0, "direction": -1.0}, back), [1.0, 0.0])
    reacher = rewards.FAMILIES["reacher"]  # sparse: 1 within the radius, else 0
    near = {"distance": np.array([0.05, 0.1])}
    np.testing.assert_array_equal(reacher.reward(np, {"radius": 0.06}, near), [1.0, 0.0])


def test_relabelling_runs_inside_jit_with_a_psi_per_transition() -> None:
    family = rewards.FAMILIES["humanoid"]
    rng = np.random.default_rng(1)
    c = {"head_height": rng.uniform(0.5, 1.6, 64), "torso_upright": rng.uniform(-1, 1, 64),
         "com_velocity_x": rng.normal(0, 3, 64), "com_velocity_y": rng.normal(0, 3, 64),
         "small_control": rng.uniform(0, 1, 64)}
    psi = {"stand_height": rng.uniform(0.5, 1.6, 64), "move_speed": np.where(rng.random(64) < 0.3, 0.0, 5.0)}
    expected = family.reward(np, psi, c)
    got = jax.jit(lambda p, x: family.reward(jnp, p, x))(psi, c)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)  # float32 on the device


def test_bad_psi_names_the_key() -> None:
    assert rewards.check_psi("dmc/walker-run", {"move_speed": 4}, "psi.eval.fast") == {
        "stand_height": 1.2, "move_speed": 4.0, "direction": 1.0}
    with pytest.raises(InputError, match=r"psi.eval.fast.speed: not a parameter .* stand_height, move_speed"):
        rewards.check_psi("dmc/walker-run", {"speed": 4}, "psi.eval.fast")
    with pytest.raises(InputError, match=r"psi.x.move_speed: expected a number in \[0, 12\]"):
        rewards.check_psi("dmc/walker-run", {"move_speed": 40}, "psi.x")
    with pytest.raises(InputError, match="has no reward family"):
        rewards.family("dmc/finger-spin")


def test_relabelling_sums_the_sub_steps_of_each_transition() -> None:
    cheetah = rewards.FAMILIES["cheetah"]
    # Two transitions of two sub-steps (action repeat 2); the only component is the velocity.
    components = np.array([[[5.0], [10.0]], [[-4.0], [2.0]]])  # (transitions, repeat, components)
    psi = {"run_speed": np.array([10.0, 4.0]), "direction": np.array([1.0, -1.0])}
    # Run speed 10, forward: 5/10 + 10/10 = 0.5 + 1. Speed 4 backward: -(-4) = 4 -> 1; -2 -> 0 (linear to 0
    # one margin below the bound): 1 + 0.
    np.testing.assert_allclose(rewards.relabel(np, cheetah, psi, components), [1.5, 1.0])


def test_psi_draws_follow_the_mixture() -> None:
    walker = rewards.FAMILIES["walker"]
    nominal = walker.nominal["dmc/walker-walk"]  # stand height 1.2, speed 1, forward
    u = np.random.default_rng(0).random((100_000, 4))
    psi = rewards.draw_psi(np, walker, nominal, 0.5, u)
    kept = psi["move_speed"] == 1.0
    assert abs(kept.mean() - 0.5) < 0.01  # alpha of the draws keep ψ* (others hit 1.0 with probability 0)
    factors = np.log(psi["move_speed"][~kept])  # speed 1 x a log-uniform factor in [1/4, 4], none clipped
    assert abs(factors.mean()) < 0.02 and factors.min() >= np.log(0.25) and factors.max() <= np.log(4)
    heights = psi["stand_height"][~kept]  # 1.2 x [1/4, 4], clipped to the range [0.3, 1.5]
    assert heights.min() >= 0.3 and heights.max() == 1.5
    cheetah = rewards.FAMILIES["cheetah"]
    signs = rewards.draw_psi(np, cheetah, cheetah.nominal["dmc/cheetah-run"], 0.0, u)["direction"]
    assert set(np.unique(signs)) == {-1.0, 1.0} and abs((signs < 0).mean() - 0.5) < 0.01
    normalised = rewards.normalise(np, walker, psi)  # (draws, parameters) in [-1, 1]
    assert normalised.shape == (100_000, 3) and normalised.min() >= -1 and normalised.max() <= 1


# MetaWorld's scripted experts, with noise, so that the rollouts grasp, place and succeed: a random
# policy never reaches the branches of push's and pick-place's rewards beyond the first.
MW_EXPERTS: dict[str, Callable[[], Any]] = {
    "metaworld/reach": SawyerReachV3Policy, "metaworld/push": SawyerPushV3Policy,
    "metaworld/pick-place": SawyerPickPlaceV3Policy}


# MetaWorld's scripted experts warn that their gains may exceed the action range (the env clips).
@pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high:UserWarning")
@pytest.mark.parametrize("task", sorted(t for t in rewards.BY_TASK if t.startswith("metaworld/")))
def test_the_nominal_parameters_reproduce_metaworlds_reward(task: str) -> None:
    env = make(task, 0, components=True)
    assert isinstance(env, EpisodeEnv)
    family, expert, rng = rewards.family(task), MW_EXPERTS[task](), np.random.default_rng(0)
    obs, _ = env.reset()
    measured, expected = [], []
    for _ in range(200):  # one episode
        action = np.clip(expert.get_action(obs) + rng.normal(0, 0.3, env.action_size), -1, 1)
        obs, reward, _, _, _ = env.step(action)
        assert env.components is not None
        measured.append(env.components[0])
        expected.append(reward)
    env.close()
    table = np.array(measured)  # (200, components)
    components = {c: table[:, k] for k, c in enumerate(family.components)}
    got = family.reward(np, family.nominal[task], components)
    # MetaWorld computes the grasp term, and so push's and pick-place's rewards, in float32 (its
    # action is float32): the largest difference measured is 7.1e-7 (push; 0 for reach).
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.sum(np.asarray(expected) == rewards.MW_SUCCESS_REWARD) > 10  # the rollout reached the target
    if "grasp" in components:
        assert np.sum(rewards._mw_holding(components)) > 10  # and held the object


def test_metaworld_parameters_mean_what_they_say() -> None:
    push = rewards.FAMILIES["metaworld-push"]
    # Held open near the object (1 cm), grasp term 0.5, object 10 cm from the target, which it started
    # 10 cm from: in_place = long tail one margin out = 0.1; reward 1 + 2 * (2 * 0.5) + 5 * 0.1 = 3.5.
    c = {"hand_to_object": np.array([0.01]), "gripper_opening": np.array([1.0]), "object_to_target": np.array([0.15]),
         "object_start_to_target": np.array([0.1]), "grasp": np.array([0.5])}
    psi = dict(push.nominal["metaworld/push"])
    assert push.reward(np, psi, c)[0] == pytest.approx(3.5)
    assert push.reward(np, {**psi, "place_weight": 0.0}, c)[0] == pytest.approx(3.0)
    assert push.reward(np, {**psi, "target_radius": 0.16}, c)[0] == 10.0  # within a wider radius: success
    reach = rewards.FAMILIES["metaworld-reach"]
    near = {"hand_to_target": np.array([0.04, 0.3]), "hand_start_to_target": np.array([0.2, 0.2])}
    # 0.3 m is 0.25 m beyond the 5 cm radius, 1.25 margins: 10 / ((1.25 * 3) ** 2 + 1)
    np.testing.assert_allclose(reach.reward(np, {"target_radius": 0.05}, near), [10.0, 10 / (1.25**2 * 9 + 1)])


def test_the_documented_families_are_those_of_the_code() -> None:
    documented = (Path(__file__).resolve().parents[1] / "docs" / "rewards.md").read_text()
    assert documented.endswith(rewards.markdown())  # regenerate: see the command in docs/rewards.md
    for fam in rewards.FAMILIES.values():
        assert f"### {fam.name}\n" in documented


@pytest.mark.parametrize("name", sorted(rewards.FAMILIES))
def test_every_family_relabels_inside_jit_as_in_numpy(name: str) -> None:
    family, rng = rewards.FAMILIES[name], np.random.default_rng(0)
    c = {k: rng.uniform(0, 1, 16) for k in family.components}  # (16,) each
    psi = rewards.draw_psi(np, family, next(iter(family.nominal.values())), 0.5,
                           rng.random((16, 1 + len(family.params))))
    got = jax.jit(lambda p, x: family.reward(jnp, p, x))(psi, c)
    np.testing.assert_allclose(np.asarray(got), family.reward(np, psi, c), rtol=1e-5, atol=1e-6)  # float32
