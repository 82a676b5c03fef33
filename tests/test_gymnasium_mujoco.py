"""Gymnasium MuJoCo tasks: the catalog against Gymnasium's registry, the adapter, the normalisation."""

from __future__ import annotations

import os

import numpy as np
import pytest

from harness import catalog
from harness.envs import make

os.environ.setdefault("MUJOCO_GL", "disable")
gymnasium = pytest.importorskip("gymnasium")


def test_every_task_is_a_registered_v5_id_with_v4_alias() -> None:
    tasks = [catalog.resolve(name) for name in catalog.GROUPS["gymnasium-mujoco"].tasks]
    assert len(tasks) == 11
    for task in tasks:
        spec = gymnasium.spec(task.env_id)
        assert task.env_id.endswith("-v5")
        assert task.episode_length == spec.max_episode_steps  # 1000; Reacher 50, Pusher 100
        assert catalog.resolve(task.env_id.replace("-v5", "_v4")) is task


@pytest.mark.parametrize(("alias", "canonical"), [
    ("Hopper-v4", "gymnasium/Hopper"), ("Hopper_v4", "gymnasium/Hopper"), ("hopper", "gymnasium/Hopper"),
    ("HalfCheetah-v5", "gymnasium/HalfCheetah"), ("walker2d_v4", "gymnasium/Walker2d"),
])
def test_gym_style_names_resolve(alias: str, canonical: str) -> None:
    assert catalog.resolve(alias).name == canonical


def test_simbav2_tasks_are_td3_normalised() -> None:
    hopper = catalog.resolve("gymnasium/Hopper")
    # SimbaV2's random score 18.791 maps to 0, its TD3 score 3226 to 1, halfway (1622.3955) to 0.5.
    np.testing.assert_allclose(hopper.normalise([18.791, 3226.0, 1622.3955]), [0.0, 1.0, 0.5])
    assert "SimbaV2" in hopper.note
    assert catalog.resolve("gymnasium/Swimmer").normalisation == "return as is"


def test_hopper_terminates_when_unhealthy_reacher_truncates_at_50() -> None:
    rng = np.random.default_rng(0)
    hopper = make("Hopper-v4", 0)
    hopper.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        obs, _, terminated, truncated, _ = hopper.step(rng.uniform(-1, 1, hopper.action_size))
        steps += 1
    assert terminated and steps < 1000 and obs.shape == (11,)
    reacher = make("gymnasium/Reacher", 0)
    first, _ = reacher.reset()
    np.testing.assert_array_equal(first, reacher.reset(seed=0)[0])  # the first episode is seeded by make
    for step in range(50):
        _, _, terminated, truncated, _ = reacher.step(rng.uniform(-1, 1, reacher.action_size))
        assert not terminated and truncated == (step == 49)


def test_actions_are_rescaled_to_the_action_space() -> None:
    env = make("gymnasium/InvertedPendulum", 0)  # action space [-3, 3]
    env.reset(seed=0)
    data = env._simulator._env.unwrapped.data  # type: ignore[attr-defined]
    for action, ctrl in ((1.0, 3.0), (-0.5, -1.5), (0.0, 0.0)):
        env.step(np.array([action]))
        np.testing.assert_allclose(data.ctrl, [ctrl])
