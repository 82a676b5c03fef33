"""HumanoidBench: the installer, every h1/h1hand task through the adapter, a SAC run, normalisation,
the locomotion tasks' reward families.

The installer runs once per test session from the HumanoidBench snapshot in
``../shared/vendor/humanoid-bench`` (what a user gets from upstream at the pinned commit), into
the environment the tests run in: the adapter and ``harness run`` need HumanoidBench in the same
environment as the harness, exactly as a user installs it, and a fresh environment would first
need every simulator (minutes). Reinstalling is what ``harness install`` does anyway
(``--force-reinstall``). Skipped with a reason when the snapshot is absent.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from harness import catalog, catalog_humanoidbench, rewards
from harness.envs import make
from harness.envs.base import EpisodeEnv
from harness.install import installed_record
from harness.taskcheck import check_tasks

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT.parent / "shared" / "vendor" / "humanoid-bench"
HB_TASKS = sorted(t.name for t in catalog.all_tasks() if t.suite == "humanoidbench")
os.environ.setdefault("MUJOCO_GL", "disable")


@pytest.fixture(scope="module")
def installed() -> Iterator[dict[str, object]]:
    """``harness install humanoidbench --source ../shared/vendor/humanoid-bench``; its install record."""
    if not (VENDOR / "humanoid_bench").is_dir():
        pytest.skip(f"HumanoidBench snapshot not found at {VENDOR} (see shared/vendor/humanoid-bench/SOURCE.md)")
    done = subprocess.run([sys.executable, "-m", "harness", "install", "humanoidbench", "--source", str(VENDOR)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fixed assets/kitchen/adept_models/kitchen/assets/kettle_asset.xml" in done.stdout
    record = installed_record("humanoidbench")
    assert record is not None
    yield dataclasses.asdict(record)


def harness_run(manifest: Path, results: Path) -> Path:
    """`harness run MANIFEST` into ``results`` (headless); the results folder, after checking it exited 0."""
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    done = subprocess.run([sys.executable, "-m", "harness", "run", str(manifest)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return results


def test_catalog_lists_every_task_with_a_model() -> None:
    assert len(HB_TASKS) == 51  # h1: 20, h1hand: 30, h1strong-highbar-hard
    models = {p.stem.replace("_pos_", "-") for p in (VENDOR / "humanoid_bench/assets/envs").glob("*_pos_*.xml")}
    if models:
        expected = {m for m in models if m.split("-")[0] in ("h1", "h1hand") or m == "h1strong-highbar_hard"}
        assert {catalog.resolve(n).env_id.removesuffix("-v0") for n in HB_TASKS} == expected
    for name in HB_TASKS:
        task = catalog.resolve(name)
        assert np.isfinite(task.norm_low) and task.norm_high > task.norm_low, name


@pytest.mark.parametrize(("alias", "canonical"), [
    ("h1-walk-v0", "humanoidbench/h1-walk"),
    ("h1hand-bookshelf_simple-v0", "humanoidbench/h1hand-bookshelf-simple"),
    ("h1hand-bookshelf-simple", "humanoidbench/h1hand-bookshelf-simple"),
    ("h1hand_sit_simple", "humanoidbench/h1hand-sit-simple"),
    ("h1strong-highbar_hard-v0", "humanoidbench/h1strong-highbar-hard"),
])
def test_published_names_resolve(alias: str, canonical: str) -> None:
    assert catalog.resolve(alias).name == canonical


def test_normalisation_of_a_known_return() -> None:
    # h1-walk: random 2.377 (BRC's table), success_bar 700. A return of 351.1885 is halfway:
    # (351.1885 - 2.377) / (700 - 2.377) = 348.8115 / 697.623 = 0.5.
    walk = catalog.resolve("h1-walk-v0")
    assert walk.normalise([2.377, 351.1885, 700.0]).tolist() == pytest.approx([0.0, 0.5, 1.0])
    # h1hand-package: random -10040.932 (BRC), success_bar 1500: a return of 0 scores
    # 10040.932 / 11540.932 = 0.870027...
    package = catalog.resolve("humanoidbench/h1hand-package")
    assert float(package.normalise(0.0)) == pytest.approx(10040.932 / 11540.932)
    assert catalog_humanoidbench.RANDOM_RETURN["h1strong-highbar_hard-v0"].source == "simbav2"


def test_install_record_lists_the_fixes(installed: dict[str, object]) -> None:
    assert installed["package"] == "humanoidbench" and installed["source"] == str(VENDOR)
    patches = installed["patches"]
    assert isinstance(patches, list) and {p["path"] for p in patches} == {
        "assets/kitchen/adept_models/kitchen/assets/kettle_asset.xml"}
    # the source folder itself is never changed
    assert '<default>\n    <default class="kettle">' not in (
        VENDOR / "humanoid_bench/assets/kitchen/adept_models/kitchen/assets/kettle_asset.xml").read_text()


def rollout(name: str, make_seed: int, reset_seed: int | None) -> tuple[np.ndarray, list[float]]:
    """Make, reset and take up to 20 fixed random steps: (observations (T+1, obs), rewards).

    Also checks that the catalog normalises by HumanoidBench's own success bar for the task."""
    env = make(name, make_seed)
    assert env._simulator._env.task.success_bar == env.task.norm_high  # type: ignore[attr-defined]
    actions = np.random.default_rng(0).uniform(-1, 1, (20, env.action_size))  # (20, act)
    obs, _ = env.reset(seed=reset_seed)
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        assert obs.shape == (env.observation_size,) and obs.dtype == np.float32
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    env.close()
    return np.array(observations), rewards


def check_task(name: str) -> None:
    first, rewards = rollout(name, make_seed=5, reset_seed=None)
    again, rewards_again = rollout(name, make_seed=9, reset_seed=5)
    np.testing.assert_array_equal(first, again)
    assert rewards == rewards_again and np.all(np.isfinite(first))
    other, _ = rollout(name, make_seed=6, reset_seed=None)
    assert other.shape[1] == first.shape[1]


# A few tasks in the default run (a locomotion task, one with numpy-global-generator goals, the
# patched kitchen, one fixed by the reset fixes); all 51 in the slow run (about 15 s in all).
@pytest.mark.parametrize("name", ["humanoidbench/h1-walk", "humanoidbench/h1hand-push", "humanoidbench/h1hand-kitchen",
                                  "humanoidbench/h1hand-spoon", "humanoidbench/h1-package"])
def test_task_makes_resets_steps_and_repeats(installed: dict[str, object], name: str) -> None:
    check_task(name)


def test_task_check_runs_a_task_in_its_own_process(installed: dict[str, object]) -> None:
    # `harness tasks --check` for this suite (tests/test_taskcheck.py checks the registry suites).
    [result] = check_tasks(["humanoidbench/h1-walk"], workers=1, time_limit_s=600, steps=5)
    assert result.status == "ok", result.error
    assert result.steps_per_s > 0 and result.observation_size > 0 and result.action_size > 0


@pytest.mark.slow
def test_every_task_makes_resets_steps_and_repeats(installed: dict[str, object]) -> None:
    failed = {}
    for name in HB_TASKS:
        try:
            check_task(name)
        except Exception as exc:  # collect every failing task, not just the first
            failed[name] = f"{type(exc).__name__}: {exc}"
    assert not failed, failed


def test_envs_of_different_seeds_do_not_share_numpy_global_draws(installed: dict[str, object]) -> None:
    # h1hand-push draws its goal from numpy's global generator at reset; interleaving two envs, or
    # drawing from the global generator in between, must not change either env's episodes.
    alone, _ = rollout("humanoidbench/h1hand-push", make_seed=1, reset_seed=None)
    a, b = make("humanoidbench/h1hand-push", 1), make("humanoidbench/h1hand-push", 2)
    b.reset()
    np.random.seed(123)
    np.random.uniform(size=7)
    first, _ = a.reset()
    np.testing.assert_array_equal(first, alone[0])
    assert not np.array_equal(b.reset(seed=2)[0], first)
    a.close()
    b.close()


def test_success_flag_where_the_task_reports_one(installed: dict[str, object]) -> None:
    env = make("humanoidbench/h1hand-cabinet", 0)
    _, info = env.reset()
    assert info == {"success": 0.0}
    env.close()
    env = make("humanoidbench/h1-walk", 0)
    assert env.reset()[1] == {}
    env.close()


def test_short_sac_run_on_h1_walk_into_duckdb(installed: dict[str, object], tmp_path: Path) -> None:
    manifest = tmp_path / "hb.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "hb-smoke", "tasks": ["h1-walk-v0"],
        "agents": {"sac": {"hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 200}},
        "seeds": 1, "budget": 600, "eval": {"every": 300, "episodes": 1}, "log_every": 100,
    }))
    results = harness_run(manifest, tmp_path / "results")
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        runs = con.execute("SELECT task, status FROM runs").fetchall()
        evals = con.execute("SELECT step, value FROM curves WHERE metric = 'eval/return' ORDER BY step").fetchall()
        norm = con.execute("SELECT norm_low, norm_high FROM tasks WHERE task = 'humanoidbench/h1-walk'").fetchall()
    assert runs == [("humanoidbench/h1-walk", "finished")]
    assert [step for step, _ in evals] == [300, 600] and all(np.isfinite(v) for _, v in evals)
    assert norm == [(2.377, 700.0)]


def measured_rollout(name: str, steps: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``steps`` random-action steps of an env that measures reward components, resetting after each
    episode's end: the components {name: (steps,)} and the env's rewards (steps,)."""
    env = make(name, 0, components=True)
    assert isinstance(env, EpisodeEnv)
    family = rewards.family(name)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, env.action_size))  # (steps, act)
    env.reset()
    measured, got = [], []
    for action in actions:
        _, reward, terminated, truncated, _ = env.step(action)
        assert env.components is not None and env.components.shape == (1, len(family.components))  # action repeat 1
        measured.append(env.components[0])
        got.append(reward)
        if terminated or truncated:
            env.reset()
    env.close()
    table = np.array(measured)  # (steps, components)
    return {c: table[:, k] for k, c in enumerate(family.components)}, np.array(got)


@pytest.mark.parametrize("name", sorted(t for t in rewards.BY_TASK if t.startswith("humanoidbench/")))
def test_the_nominal_parameters_reproduce_the_tasks_reward(installed: dict[str, object], name: str) -> None:
    components, expected = measured_rollout(name, 100)
    family = rewards.family(name)
    got = family.reward(np, family.nominal[name], components)  # (steps,)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    for key in ("head_height", "torso_upright", "com_velocity_x", "small_control"):  # the rollout moved
        assert np.ptp(components[key]) > 0, key


def test_other_parameters_of_a_humanoidbench_family_mean_what_they_say() -> None:
    walk = rewards.FAMILIES["humanoidbench-walk"]
    # Head at 1.7 m (above 1.65), upright, no actuator force, 2 m/s forward.
    c = {"head_height": np.array([1.7]), "torso_upright": np.array([1.0]), "com_velocity_x": np.array([2.0]),
         "com_velocity_y": np.array([0.0]), "small_control": np.array([1.0])}
    psi = dict(walk.nominal["humanoidbench/h1-walk"])
    assert walk.reward(np, psi, c)[0] == pytest.approx(1.0)  # faster than walking (1 m/s): everything in full
    # run (5 m/s, margin 5, linear to 0): move = 1 - 3/5 = 0.4, (5 * 0.4 + 1) / 6 = 0.5
    assert walk.reward(np, {**psi, "move_speed": 5.0}, c)[0] == pytest.approx(0.5)
    # backwards: -2 m/s is 3 m/s short of 1 m/s, beyond the margin: move 0 -> 1/6
    assert walk.reward(np, {**psi, "direction": -1.0}, c)[0] == pytest.approx(1 / 6)
    # a head height of 2 m is 0.3 m short, 0.6 of the margin 0.5: gaussian exp(-0.5 (0.6 * sqrt(-2 ln 0.1))^2)
    assert walk.reward(np, {**psi, "stand_height": 2.0}, c)[0] == pytest.approx(0.1 ** (0.6**2))
    # no actuator force is rewarded: with small_control 0 the control factor is 1 - w
    assert walk.reward(np, {**psi, "control_cost": 0.5}, {**c, "small_control": np.array([0.0])})[0] == 0.5


def test_the_shipped_reward_conditioned_manifest_runs_small_on_h1_walk(installed: dict[str, object],
                                                                        tmp_path: Path) -> None:
    # suites/rcrl-humanoidbench.yaml with its h1-walk task, its conditioned SAC and its nominal-only
    # baseline, at toy sizes: every evaluation ψ of h1-walk gets its curve points.
    shipped = yaml.safe_load((ROOT / "suites" / "rcrl-humanoidbench.yaml").read_text())
    tiny = {"hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 200}
    small = {**shipped, "tasks": ["humanoidbench/h1-walk"], "seeds": 1, "budget": 400,
             "eval": {"every": 400, "episodes": 1}, "log_every": 100,
             "agents": {"sac": tiny, "sac_nominal": {"algo": "sac", **tiny}},
             "psi": {**shipped["psi"], "references": {},
                     "eval": {"humanoidbench/h1-walk": shipped["psi"]["eval"]["humanoidbench/h1-walk"]}}}
    manifest = tmp_path / "rc.yaml"
    manifest.write_text(yaml.safe_dump(small))
    results = harness_run(manifest, tmp_path / "results")
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        points = con.execute("SELECT r.label, c.psi, c.value FROM curves c JOIN runs r USING (run_id) "
                             "WHERE c.metric = 'eval/return' AND c.step = 400").fetchall()
    labels = {"nominal", *shipped["psi"]["eval"]["humanoidbench/h1-walk"]}
    assert sorted((label, psi) for label, psi, _ in points) == sorted(
        (label, psi) for label in ("sac-rc", "sac_nominal") for psi in labels)
    assert all(np.isfinite(value) for _, _, value in points)
