"""TD-MPC2's custom DMC tasks (the harness's definitions) and dm-control without a renderer."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from harness import catalog
from harness.envs import make

os.environ.setdefault("MUJOCO_GL", "disable")
dmc_custom = pytest.importorskip("harness.envs.dmc_custom")


def test_every_custom_catalog_task_has_a_definition() -> None:
    assert sorted(catalog.TDMPC2_CUSTOM_DMC_IDS.values()) == sorted(dmc_custom.TASKS)
    assert {catalog.resolve(n).env_id for n in catalog.TDMPC2_CUSTOM_DMC} == set(dmc_custom.TASKS)


@pytest.mark.parametrize("name", catalog.TDMPC2_CUSTOM_DMC)
def test_custom_task_runs_with_rewards_in_unit_interval(name: str) -> None:
    env = make(f"dmc/{name}", 0)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_size))
        assert obs.shape == (env.observation_size,) and np.isfinite(obs).all()
        assert 0.0 <= reward <= 1.0 and not terminated and not truncated
    env.close()


def test_three_link_reacher_has_three_joints_and_motors() -> None:
    physics = dmc_custom.load("reacher-three_easy", random=0).physics
    assert physics.model.nu == 3 and physics.model.njnt == 3
    # Joint ranges in radians: shoulder0 free, shoulder1 and wrist +-80 degrees.
    limited = physics.named.model.jnt_range[["shoulder1", "wrist"]]
    np.testing.assert_allclose(limited, np.deg2rad([[-80, 80], [-80, 80]]))
    # The target sizes of easy and hard.
    assert physics.named.model.geom_size["target", 0] == pytest.approx(0.05)
    env = dmc_custom.load("reacher-three_hard", random=0)
    env.reset()
    assert env.physics.named.model.geom_size["target", 0] == pytest.approx(0.015)


def test_running_tasks_have_the_longer_ground() -> None:
    cheetah = dmc_custom.load("cheetah-jump", random=0).physics
    assert cheetah.named.model.geom_size["ground", 0] == 200  # dm-control's: 100
    walker = dmc_custom.load("walker-run_backwards", random=0).physics
    assert walker.named.model.geom_size["floor", 0] == 500  # dm-control's: 250


def reward_at(env_id: str, joint: str, velocity: float) -> float:
    env = dmc_custom.load(env_id, random=0)
    env.reset()
    with env.physics.reset_context():
        env.physics.named.data.qvel[joint] = velocity
    return float(env.task.get_reward(env.physics))


@pytest.mark.parametrize(("velocity", "expected"), [
    # Bound -8, linear margin 8, 0 at the margin: 1 from -8 on, 1 - (v + 8) / 8 above.
    (-9.0, 1.0), (-8.0, 1.0), (-4.0, 0.5), (0.0, 0.0), (3.0, 0.0),
])
def test_cheetah_run_backwards_reward(velocity: float, expected: float) -> None:
    assert reward_at("cheetah-run_backwards", "rootx", velocity) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("velocity", "expected"), [
    # |angular velocity| >= 9 gives 1; linear margin 4.5 with 0.5 at the margin: 1 - 0.5 d / 4.5.
    (9.0, 1.0), (-10.0, 1.0), (4.5, 0.5), (6.75, 0.75), (0.0, 0.0),
])
def test_pendulum_spin_reward(velocity: float, expected: float) -> None:
    assert reward_at("pendulum-spin", "hinge", velocity) == pytest.approx(expected, abs=1e-6)


def test_quadruped_escape_resets_without_a_renderer() -> None:
    code = ("import numpy as np; from harness.envs import make; e = make('dmc/quadruped-escape', 0); "
            "o, _ = e.reset(); o, r, *_ = e.step(np.zeros(e.action_size)); print(o.shape[0], np.isfinite(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "MUJOCO_GL": "disable"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["101", "True"]
