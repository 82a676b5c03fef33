"""BRC's ShadowHand rotation tasks: the installer, the catalog split, tasks through the adapter.

The installer runs once per module from BRC's task folder in ``../shared/vendor/brc-dex-envs``
(what a user gets from upstream at the pinned commit) into the environment the tests run in, for
the same reason as HumanoidBench's (see tests/test_humanoidbench.py). That snapshot lacks two
meshes (banana, stanford_bunny; see its SOURCE.md), so exactly those two tasks cannot load here.
Skipped with a reason when the snapshot is absent.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness import catalog, catalog_shadowhand
from harness.envs import make
from harness.install import installed_record
from harness.taskcheck import check_tasks

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT.parent / "shared" / "vendor" / "brc-dex-envs"
SH_TASKS = sorted(t.name for t in catalog.all_tasks() if t.suite == "shadowhand")
MISSING_MESHES = {"shadowhand/banana-rotate", "shadowhand/stanford-bunny-rotate"}
os.environ.setdefault("MUJOCO_GL", "disable")


@pytest.fixture(scope="module")
def installed() -> Iterator[dict[str, object]]:
    """``harness install shadowhand --source ../shared/vendor/brc-dex-envs``; its install record."""
    if not (VENDOR / "dex_envs").is_dir():
        pytest.skip(f"BRC's ShadowHand tasks not found at {VENDOR} (see shared/vendor/brc-dex-envs/SOURCE.md)")
    done = subprocess.run([sys.executable, "-m", "harness", "install", "shadowhand", "--source", str(VENDOR)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    record = installed_record("shadowhand")
    assert record is not None
    yield dataclasses.asdict(record)


def test_catalog_has_brcs_split_as_two_groups() -> None:
    train, test = catalog.group("shadowhand-train").tasks, catalog.group("shadowhand-test").tasks
    assert len(train) == 85 and len(test) == 29 and not set(train) & set(test)
    assert sorted(train + test) == SH_TASKS
    apple = catalog.resolve("apple_rotate")
    assert (apple.name, apple.env_id, apple.metric, apple.episode_length) == (
        "shadowhand/apple-rotate", "apple-rotate-v1", "success", 100)
    assert catalog.resolve("stanford_bunny-rotate-v1").name in test
    # A bare object name is no alias: some are other tasks' names (BRC's `hammer` vs MetaWorld's).
    assert catalog.resolve("hammer").name == "metaworld/hammer"
    if (VENDOR / "env_names.py").is_file():  # the split as BRC's own task lists give it
        text = (VENDOR / "env_names.py").read_text()
        for name in (*catalog_shadowhand.TRAIN, *catalog_shadowhand.TEST):
            assert f"'{name}'" in text


def test_every_object_model_is_in_the_catalog() -> None:
    models = {p.stem.removeprefix("manipulate_") for p in (VENDOR / "dex_envs/assets/hand").glob("manipulate_*.xml")}
    if not models:
        pytest.skip(f"BRC's ShadowHand tasks not found at {VENDOR}")
    assert {catalog.resolve(n).env_id.removesuffix("-rotate-v1") for n in SH_TASKS} == models


def test_install_record_lists_the_model_fix(installed: dict[str, object]) -> None:
    patches = installed["patches"]
    assert isinstance(patches, list) and len(patches) == len(SH_TASKS)  # one per object model
    assert {p["path"].split("/")[-1] for p in patches} == {
        f"manipulate_{catalog.resolve(n).env_id.removesuffix('-rotate-v1')}.xml" for n in SH_TASKS}
    assert 'apirate="200"' in (VENDOR / "dex_envs/assets/hand/manipulate_apple.xml").read_text()  # source untouched


def rollout(name: str, make_seed: int, reset_seed: int | None) -> tuple[np.ndarray, list[float], float]:
    """Make, reset, 20 fixed random steps: (observations (21, 68), rewards, success at the end)."""
    env = make(name, make_seed)
    actions = np.random.default_rng(0).uniform(-1, 1, (20, env.action_size))  # (20, 20)
    obs, info = env.reset(seed=reset_seed)
    assert info == {"success": 0.0}
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert not terminated and not truncated and reward in (-1.0, 0.0)
        observations.append(obs)
        rewards.append(reward)
    env.close()
    return np.array(observations), rewards, info["success"]


def check_task(name: str) -> None:
    first = rollout(name, make_seed=5, reset_seed=None)
    assert first[0].shape == (21, 68) and first[0].dtype == np.float32
    again = rollout(name, make_seed=8, reset_seed=5)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1:] == again[1:]


@pytest.mark.parametrize("name", ["shadowhand/apple-rotate", "shadowhand/mustard-bottle-rotate",
                                  "shadowhand/rubiks-cube-rotate"])
def test_task_makes_resets_steps_and_repeats(installed: dict[str, object], name: str) -> None:
    check_task(name)


def test_task_check_runs_a_task_in_its_own_process(installed: dict[str, object]) -> None:
    # `harness tasks --check` for this suite (tests/test_taskcheck.py checks the registry suites).
    [result] = check_tasks(["shadowhand/apple-rotate"], workers=1, time_limit_s=600, steps=5)
    assert result.status == "ok", result.error
    assert result.steps_per_s > 0 and result.observation_size > 0 and result.action_size > 0


def test_later_episodes_repeat_too(installed: dict[str, object]) -> None:
    # Without the reset fix, mustard_bottle's second episode of the same seed differs from its first.
    env = make("shadowhand/mustard-bottle-rotate", 0)
    actions = np.random.default_rng(1).uniform(-1, 1, (10, env.action_size))  # (10, 20)
    episodes = []
    for _ in range(3):
        env.reset(seed=4)
        episodes.append(np.array([env.step(a)[0] for a in actions]))
    env.close()
    np.testing.assert_array_equal(episodes[0], episodes[1])
    np.testing.assert_array_equal(episodes[0], episodes[2])


def test_missing_mesh_is_reported(installed: dict[str, object]) -> None:
    if (VENDOR / "dex_envs/assets/stls/hand/contactdb_objects/banana.stl").exists():
        pytest.skip("this snapshot has the banana mesh")
    with pytest.raises(ValueError, match=r"banana\.stl"):
        make("shadowhand/banana-rotate", 0)


@pytest.mark.slow
def test_every_task_makes_resets_steps_and_repeats(installed: dict[str, object]) -> None:
    failed = {}
    for name in SH_TASKS:
        try:
            check_task(name)
        except Exception as exc:  # collect every failing task, not just the first
            failed[name] = f"{type(exc).__name__}: {exc}"
    meshes = VENDOR / "dex_envs/assets/stls/hand/contactdb_objects"
    missing = {n for n in MISSING_MESHES
               if not (meshes / f"{catalog.resolve(n).env_id.removesuffix('-rotate-v1')}.stl").exists()}
    assert set(failed) == missing, failed
