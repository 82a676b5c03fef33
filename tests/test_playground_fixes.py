"""Playground 0.2.0 under this project's pins: Menagerie from the registry packages, and our fixes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from harness import catalog

os.environ.setdefault("MUJOCO_GL", "disable")
registry = pytest.importorskip("mujoco_playground").registry
playground = pytest.importorskip("harness.envs.playground")


def test_catalog_takes_episode_length_and_action_repeat_from_each_tasks_config() -> None:
    for name in registry.ALL_ENVS:
        task = catalog.resolve(f"playground/{name}")
        config = registry.get_default_config(name)
        assert (task.episode_length, task.action_repeat) == (config.episode_length, config.action_repeat), name


def test_installed_menagerie_packages_are_found_and_linked(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = playground.installed_menagerie()
    if not sources:
        pytest.skip("the Menagerie packages of the playground extra are not installed (pip install -e '.[playground]')")
    monkeypatch.delenv(playground.MENAGERIE_VAR, raising=False)
    task = catalog.resolve("playground/Go1Getup")
    folder = playground.menagerie_folder(task)
    robots = {robot.name for source in sources for robot in source.iterdir()}
    assert {"unitree_go1", "unitree_h1", "leap_hand", "franka_emika_panda"} <= robots
    assert {link.name for link in folder.iterdir()} >= robots
    assert (folder / "unitree_go1").resolve() in {(s / "unitree_go1").resolve() for s in sources}
    assert playground.menagerie_folder(task) == folder  # the same folder again, links kept


def test_harness_menagerie_overrides_the_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(playground.MENAGERIE_VAR, str(tmp_path))
    assert playground.menagerie_folder(catalog.resolve("playground/Go1Getup")) == tmp_path


def test_reacher_model_builds_under_mujoco_3_17_with_the_tasks_target_size() -> None:
    from mujoco_playground._src.dm_control_suite import common, reacher

    model = playground._reacher_model(reacher._XML_PATH, 0.015, common.get_assets())
    assert model.geom("target").size[0] == pytest.approx(0.015)


@pytest.mark.parametrize(("quat", "expected"), [
    ((1.0, 0.0, 0.0, 0.0), 0.0),  # the goal itself
    ((np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)), np.pi / 2),  # 90 degrees about z
    ((0.0, 1.0, 0.0, 0.0), np.pi),  # 180 degrees: |v| = 1, asin(1) = pi / 2
])
def test_orientation_error_is_the_angle_to_the_goal(quat: tuple[float, ...], expected: float) -> None:
    import jax.numpy as jnp

    goal = jnp.array([1.0, 0.0, 0.0, 0.0])
    assert float(playground.orientation_error(jnp.array(quat), goal)) == pytest.approx(expected, abs=1e-5)
