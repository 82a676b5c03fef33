"""Reward-conditioned training: components from the envs, relabelled n-step batches, ψ draws, and a
reward-conditioned `harness run` into DuckDB with its curves per ψ, resumed exactly after kill -9."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from harness import catalog, envs, rewards
from harness import manifest as manifest_mod
from harness import report as report_mod
from harness import store as store_mod
from harness.backends.host import EpisodeRewards, relabel_episodes
from harness.conditioning import Conditioning
from harness.envs.vector import VecEnv
from harness.jobs import AgentSpec, EvalPsi, Job, PsiSettings
from harness.replay import Replay
from harness.store import Store
from tests.test_run import ROOT, assert_group_ends, harness, query


def conditioning(*tasks: str, alpha: float = 0.5, distribution: rewards.Distribution = "family") -> Conditioning:
    job = Job("j", AgentSpec("sac", "sac", None), (0,), tasks, 1, 1, 1, 1, "reward_conditioned", "j",
              (), psi=PsiSettings(alpha, distribution, ()))
    made = Conditioning.of(job)
    assert made is not None
    return made


def test_the_envs_components_give_the_reward_back_and_cost_nothing_unasked() -> None:
    task = catalog.resolve("dmc/walker-walk")
    family = rewards.family(task.name)
    vec = VecEnv([envs.make(task, seed, components=True) for seed in (0, 1)], components=len(family.components))
    vec.reset([0, 1])
    rng = np.random.default_rng(0)
    for _ in range(100):
        step = vec.step(rng.uniform(-1, 1, (2, vec.action_size)))
        assert step.components is not None and step.components.shape == (2, 1, 3)  # (envs, repeat, components)
        relabelled = rewards.relabel(np, family, family.nominal[task.name], step.components)  # (envs,)
        np.testing.assert_allclose(relabelled, step.reward, rtol=0, atol=1e-6)
    vec.close()
    plain = VecEnv([envs.make(task, 0)])
    plain.reset([0])
    assert plain.step(np.zeros((1, plain.action_size))).components is None
    plain.close()


@dataclasses.dataclass
class FixedPsi:
    """A relabeller giving every sampled transition the same ψ (the real one draws it)."""

    conditioning: Conditioning
    psi: dict[str, float]

    def draw(self, rng: np.random.Generator, task: np.ndarray) -> tuple[Any, np.ndarray]:
        psis = [{k: np.full(task.shape, v) for k, v in self.psi.items()}]
        return psis, self.conditioning.inputs(psis, task)

    def reward(self, psi: Any, task: np.ndarray, components: np.ndarray) -> np.ndarray:
        return self.conditioning.reward(psi, task, components)


def test_a_hand_made_batch_is_relabelled_step_by_step_before_the_n_step_sum() -> None:
    cheetah = conditioning("dmc/cheetah-run")
    replay = Replay(1, np.zeros(1, np.int32), 3, obs_dim=1, act_dim=1, components=(1, 1))
    for i, velocity in enumerate((-5.0, -10.0, -8.0)):  # the cheetah runs backwards
        replay.add(np.full((1, 1, 1), i), np.zeros((1, 1, 1)), np.full((1, 1), 99.0), np.full((1, 1, 1), i + 1),
                   np.zeros((1, 1), bool), np.zeros((1, 1), bool), np.full((1, 1, 1, 1), velocity))
    backwards = {"run_speed": 10.0, "direction": -1.0}
    batch = replay.sample(np.random.default_rng(0), 1, 64, n_step=2, gamma=0.5,
                          relabel=FixedPsi(cheetah, backwards))
    # Backwards at 10 m/s: r = tolerance(-velocity, 10, inf, margin 10, linear to 0) = 1 - (10 - v)/10 below 10:
    # velocities -5, -10, -8 give 0.5, 1.0, 0.8 (the stored rewards, 99, are not used). Two-step sums with
    # gamma 0.5: from step 0, 0.5 + 0.5 * 1.0 = 1.0; from step 1, 1.0 + 0.5 * 0.8 = 1.4.
    start = batch["obs"][0, 0, :, 0]  # (B,) the stored obs: the step index
    assert set(start) == {0.0, 1.0}
    np.testing.assert_allclose(batch["reward"][0, 0], np.where(start == 0, 1.0, 1.4), rtol=1e-6)
    np.testing.assert_allclose(batch["discount"][0, 0], 0.25)
    # ψ normalised to [-1, 1] by its ranges: run speed 10 in [1, 20] -> 2 * 9 / 19 - 1; direction -1 -> -1.
    expected = [2 * 9 / 19 - 1, -1.0]
    for key in ("obs", "next_obs"):
        assert batch[key].shape == (1, 1, 64, 3)  # (seeds, updates, batch, obs + ψ)
        np.testing.assert_allclose(batch[key][0, 0, :, 1:], np.tile(expected, (64, 1)), rtol=1e-6)
    np.testing.assert_array_equal(batch["next_obs"][0, 0, :, 0], start + 2)


def test_each_transition_of_a_multi_task_batch_is_relabelled_by_its_own_tasks_family() -> None:
    job = conditioning("dmc/walker-walk", "dmc/cheetah-run")
    task = np.array([0, 1])
    # (transitions, repeat, components): walker's three, cheetah's one padded with NaN.
    components = np.array([[[1.3, 1.0, 3.0]], [[5.0, np.nan, np.nan]]])
    nominal = [job.nominal(0), job.nominal(1)]
    # Walker-walk's ψ*: standing in full and upright (stand 1), faster than 1 m/s (move 1): 1.0.
    # Cheetah-run's ψ*: 5 m/s of 10, linear to 0 one margin (10) below: 0.5.
    np.testing.assert_allclose(job.reward(nominal, task, components), [1.0, 0.5])


def test_sub_steps_after_a_termination_count_nothing() -> None:
    cheetah = rewards.FAMILIES["cheetah"]
    # Action repeat 2, each episode ended after the first sub-step: forward at 10 m/s and backward at
    # 10 m/s each give 1 at run speed 10; the missing sub-step (NaN) adds nothing, so each sum is 1.
    components = np.array([[[10.0], [np.nan]], [[-10.0], [np.nan]]])  # (transitions, repeat, components)
    psi = {"run_speed": np.array([10.0, 10.0]), "direction": np.array([1.0, -1.0])}
    np.testing.assert_allclose(rewards.relabel(np, cheetah, psi, components), [1.0, 1.0])


def test_a_reference_agent_trains_on_its_one_psi_without_seeing_it() -> None:
    job = dataclasses.replace(conditioning("dmc/walker-run"), conditioned=False, train_psi="slow")
    job = dataclasses.replace(job, settings=PsiSettings(0.5, "family", (
        EvalPsi("slow", "dmc/walker-run", (("stand_height", 1.2), ("move_speed", 2.0),
                                                          ("direction", 1.0))),)))
    psis, inputs = job.draw(np.random.default_rng(0), np.zeros(5, np.int32))
    assert job.relabels and psis[0]["move_speed"] == 2.0 and inputs.shape == (5, 0)


def test_training_episodes_are_observed_under_the_psi_the_updates_see() -> None:
    # A reference agent trained on cheetah-run backwards at 4 m/s: its episode statistics see r_ψ of
    # the episode's components (velocities), not the nominal reward. One seed, two columns, three
    # steps of action repeat 2; column 1's episode ended after its first sub-step of step 2 (NaN).
    reference = dataclasses.replace(conditioning("dmc/cheetah-run"), conditioned=False, train_psi="back")
    reference = dataclasses.replace(reference, settings=PsiSettings(0.5, "family", (
        EvalPsi("back", "dmc/cheetah-run", (("run_speed", 4.0), ("direction", -1.0))),)))
    episodes = EpisodeRewards(seeds=1, num_envs=2, max_length=3, step=(2, 1))
    episodes.add(np.array([[[[-4.0], [-2.0]], [[8.0], [2.0]]]]))  # (S, N, repeat, components)
    episodes.add(np.array([[[[-6.0], [0.0]], [[-4.0], [np.nan]]]]))
    seen, valid = episodes.finished(np.array([[True, True]]))
    got = relabel_episodes(reference, np.random.default_rng(0), seen, np.zeros(2, np.int32))
    # backwards at 4 m/s, linear to 0 one margin (4 m/s) short: -4 -> 1, -2 -> 0.5, -6 -> 1, 0 -> 0;
    # 8 -> 0, 2 -> 0; -4 -> 1 then nothing. Padding (step 3) is masked out by valid.
    np.testing.assert_allclose(got[..., :2], [[[1.5, 1.0], [0.0, 1.0]]])
    np.testing.assert_array_equal(valid, [[[True, True, False], [True, True, False]]])
    # A conditioned agent's episodes each get one ψ of the training mixture; with alpha 1 that is ψ*
    # (10 m/s forward, linear to 0 at 0 m/s): column 1's first step, 8 -> 0.8 and 2 -> 0.2.
    nominal = conditioning("dmc/cheetah-run", alpha=1.0)
    got = relabel_episodes(nominal, np.random.default_rng(0), seen, np.zeros(2, np.int32))
    assert got[0, 1, 0] == pytest.approx(1.0)


def test_psi_draws_keep_psi_star_alpha_of_the_time_and_pad_a_multi_task_job() -> None:
    job = conditioning("dmc/walker-walk", "dmc/cheetah-run", alpha=0.3)
    task = np.repeat(np.array([0, 1]), 50_000)  # (P,)
    psis, inputs = job.draw(np.random.default_rng(0), task)
    walker, cheetah = psis[0], psis[1]
    kept = walker["move_speed"][task == 0] == 1.0  # ψ* of walker-walk: speed 1 (a draw is 1.0 with probability 0)
    assert abs(kept.mean() - 0.3) < 0.01
    forward = cheetah["direction"][task == 1] == 1.0  # ψ* half the time (0.3 + 0.7 / 2) after a random sign
    assert abs(forward.mean() - 0.65) < 0.01
    assert inputs.shape == (100_000, 3)  # walker's three parameters; cheetah's two, padded with a 0
    assert np.all(inputs[task == 1, 2] == 0) and np.all(np.abs(inputs) <= 1)
    uniform = conditioning("dmc/walker-walk", alpha=0.0, distribution="uniform")
    speeds = uniform.draw(np.random.default_rng(1), np.zeros(100_000, np.int32))[0][0]["move_speed"]
    assert abs(speeds.mean() - 6.0) < 0.05  # uniform over [0, 12]


# ----------------------------------------------------------------------------------------------
# A reward-conditioned run end to end


MANIFEST = {
    "name": "rc-test", "variant": "reward_conditioned", "tasks": ["dmc/cartpole-balance"],
    "agents": {label: {"algo": "sac", "hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 500}
               for label in ("sac", "sac_nominal", "sac_left")},
    "seeds": 1, "budget": 2000, "eval": {"every": 1000, "episodes": 1}, "log_every": 100,
    "psi": {"unconditioned": ["sac_nominal"], "references": {"sac_left": "left"},
            "eval": {"dmc/cartpole-balance": {"left": {"cart_target": -0.5}, "same": {"cart_target": 0.0}}}},
}

Curves = dict[tuple[str, str, int, str], float]  # (label, metric, step, psi) -> value


def curves(results: Path) -> Curves:
    """Every point but the `sys/` timings."""
    rows = query(results / "harness.duckdb", "SELECT r.label, c.metric, c.step, c.psi, c.value FROM curves c "
                                             "JOIN runs r USING (run_id) WHERE c.metric NOT LIKE 'sys/%'")
    return {(label, metric, int(step), psi): float(value) for label, metric, step, psi, value in rows}


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Curves]]:
    tmp = tmp_path_factory.mktemp("rc")
    path = tmp / "m.yaml"
    path.write_text(yaml.safe_dump(MANIFEST))
    done = harness("run", str(path), results=tmp / "results")
    assert done.returncode == 0, done.stdout + done.stderr
    yield tmp / "results", curves(tmp / "results")


def test_a_reward_conditioned_run_stores_curves_for_every_psi(whole: tuple[Path, Curves]) -> None:
    results, points = whole
    db = results / "harness.duckdb"
    assert sorted(query(db, "SELECT label, variant FROM runs")) == [
        ("sac-rc", "reward_conditioned"), ("sac_left", "single"), ("sac_nominal", "single")]
    evals: dict[tuple[str, str], list[int]] = {(label, psi): [] for label, metric, _, psi in points
                                               if metric == "eval/return"}
    for (label, metric, step, psi) in sorted(points):
        if metric == "eval/return":
            evals[label, psi].append(step)
    assert evals == {(label, psi): [1000, 2000] for label in ("sac-rc", "sac_nominal", "sac_left")
                     for psi in ("nominal", "left", "same")}
    # "same" is ψ*: the same policy input and the same episodes, scored from the components as the env scores.
    for label in ("sac-rc", "sac_nominal", "sac_left"):
        for step in (1000, 2000):
            nominal, same = points[label, "eval/return", step, "nominal"], points[label, "eval/return", step, "same"]
            assert abs(nominal - same) < 1e-3, (label, step, nominal, same)
    # Queries of the task's own score see the nominal points only, once per evaluation.
    assert query(db, "SELECT count(*) FROM curves WHERE metric = 'eval/return' AND psi = 'nominal'") == [(6,)]


GROUPED = {
    "name": "rc-grouped", "variant": "reward_conditioned",
    "groups": {"pair": ["dmc/cartpole-balance", "dmc/cheetah-run"]},
    "agents": {label: {"algo": "sac", "hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 500}
               for label in ("sac", "sac_nominal")},
    "seeds": 1, "budget": 1000, "eval": {"every": 1000, "episodes": 1}, "log_every": 100,
    "psi": {"unconditioned": ["sac_nominal"],
            "eval": {"dmc/cartpole-balance": {"left": {"cart_target": -0.5}},
                     "dmc/cheetah-run": {"backwards": {"direction": -1.0}}}},
}


def test_a_grouped_reward_conditioned_run_trains_its_tasks_together_into_duckdb(tmp_path: Path) -> None:
    path, results = tmp_path / "m.yaml", tmp_path / "results"
    path.write_text(yaml.safe_dump(GROUPED))
    planned = harness("run", str(path), "--dry-run", results=results)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    # cartpole: 5 observations, 1 action; cheetah: 17 and 6. The conditioned job also gets the ψ of the
    # widest family (cheetah: run speed, direction).
    printed = " ".join(planned.stdout.split())  # the console wraps long lines
    assert "2 tasks, observations padded to 17 (+ 2 ψ inputs), actions 6" in printed
    assert "2 tasks, observations padded to 17, actions 6" in printed  # the baseline
    assert "the seeds and tasks of a job train together" in printed
    done = harness("run", str(path), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = query(results / "harness.duckdb",
                 "SELECT r.label, r.variant, r.task, c.psi FROM curves c JOIN runs r USING (run_id) "
                 "WHERE c.metric = 'eval/return' AND c.step = 1000 ORDER BY ALL")
    assert rows == [(label, variant, task, psi) for label, variant in (("sac-rc", "reward_conditioned"),
                                                                      ("sac_nominal-mt", "multitask"))
                    for task, psi in (("dmc/cartpole-balance", "left"), ("dmc/cartpole-balance", "nominal"),
                                      ("dmc/cheetah-run", "backwards"), ("dmc/cheetah-run", "nominal"))]


def test_brc_conditioned_and_as_a_reference_runs_into_duckdb(tmp_path: Path) -> None:
    # BRC also learns from whole training episodes (its reward scale), which it sees relabelled.
    small = {"algo": "brc", "critic_width": 32, "actor_width": 16, "batch_size": 16, "warmup_steps": 500}
    data = {**MANIFEST, "name": "rc-brc", "budget": 1000, "eval": {"every": 1000, "episodes": 1},
            "agents": {"brc": small, "brc_left": small},
            "psi": {"references": {"brc_left": "left"},
                    "eval": {"dmc/cartpole-balance": {"left": {"cart_target": -0.5}, "same": {"cart_target": 0.0}}}}}
    path, results = tmp_path / "m.yaml", tmp_path / "results"
    path.write_text(yaml.safe_dump(data))
    done = harness("run", str(path), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = query(results / "harness.duckdb", "SELECT r.label, c.psi FROM curves c JOIN runs r USING (run_id) "
                                              "WHERE c.metric = 'eval/return' AND c.step = 1000 ORDER BY ALL")
    assert rows == [(label, psi) for label in ("brc-rc", "brc_left") for psi in ("left", "nominal", "same")]


def test_kill_9_then_resume_equals_the_uninterrupted_run(tmp_path: Path, whole: tuple[Path, Curves]) -> None:
    path, results = tmp_path / "m.yaml", tmp_path / "results"
    path.write_text(yaml.safe_dump(MANIFEST))
    conditioned = next(j for j in manifest_mod.load(path).jobs if j.variant == "reward_conditioned")
    checkpoint = results / "groups" / conditioned.job_id / "checkpoint.pkl"
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not checkpoint.exists():  # the conditioned job is past its first evaluation
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert_group_ends(proc.pid, "a process outlived the kill")
    done = harness("run", str(path), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    assert curves(results) == whole[1]


# ----------------------------------------------------------------------------------------------
# The report's reward-conditioned section


def test_the_report_compares_conditioned_and_nominal_only_agents_under_each_psi(tmp_path: Path) -> None:
    store = Store(tmp_path / "harness.duckdb")
    # (label, variant, task, psi) -> the returns of seeds 0, 1, 2 at the final step (DMC: score = return / 1000).
    returns = {
        ("sac-rc", "reward_conditioned", "dmc/walker-run", "nominal"): (500, 600, 700),
        ("sac-rc", "reward_conditioned", "dmc/walker-run", "speed4"): (600, 700, 800),
        ("sac-rc", "reward_conditioned", "dmc/cheetah-run", "nominal"): (500, 600, 700),
        ("sac-rc", "reward_conditioned", "dmc/cheetah-run", "backwards"): (300, 400, 500),
        ("sac_nominal", "single", "dmc/walker-run", "nominal"): (400, 500, 600),
        ("sac_nominal", "single", "dmc/walker-run", "speed4"): (100, 200, 300),
        ("sac_nominal", "single", "dmc/cheetah-run", "nominal"): (400, 500, 600),
        ("sac_nominal", "single", "dmc/cheetah-run", "backwards"): (0, 0, 10),
    }
    with store.transaction() as con:
        for (label, variant, task, psi), values in returns.items():
            for seed, value in enumerate(values):
                run_id = f"{label}-{task}-{seed}"
                store_mod.upsert_run(con, {"run_id": run_id, "source": "harness", "label": label, "agent": "sac",
                                           "task": task, "seed": seed, "status": "finished", "variant": variant})
                for step, scale in ((500, 0.5), (1000, 1.0)):  # the final point is the one reported
                    con.execute("INSERT INTO curves (run_id, metric, step, value, psi) VALUES (?, 'eval/return', ?, "
                                "?, ?)", [run_id, step, value * scale, psi])
    report = report_mod.build(store, report_mod.ReportOptions(reps=200))
    # The report's main part reads the nominal points: the baseline's mean is (0.4 + 0.5 + 0.6) / 3 = 0.5.
    by_label = {a.label: a for a in report.agents}
    assert by_label["sac_nominal"].aggregates["mean"].point == pytest.approx(0.5)
    section = report.reward_conditioned
    assert section is not None
    means = {(a.agent, a.psi): (a.tasks, round(a.mean.point, 6)) for a in section.aggregates}
    assert means == {
        ("sac-rc", "nominal"): (("dmc/cheetah-run", "dmc/walker-run"), 0.6),
        ("sac-rc", "speed4"): (("dmc/walker-run",), 0.7),
        ("sac-rc", "backwards"): (("dmc/cheetah-run",), 0.4),
        ("sac_nominal", "nominal"): (("dmc/cheetah-run", "dmc/walker-run"), 0.5),
        ("sac_nominal", "speed4"): (("dmc/walker-run",), 0.2),
        ("sac_nominal", "backwards"): (("dmc/cheetah-run",), round(10 / 3 / 1000, 6)),
    }
    # Under the held-out ψ every conditioned run beats every baseline run: P = 1. At ψ*, run scores
    # {0.5, 0.6, 0.7} against {0.4, 0.5, 0.6} per task: 6 of 9 pairs above, 2 ties (half each) -> 7/9.
    improvement = {z.psi: (z.conditioned, z.baseline, round(z.improvement.point, 6)) for z in section.zero_shot}
    assert improvement == {"backwards": ("sac-rc", "sac_nominal", 1.0), "speed4": ("sac-rc", "sac_nominal", 1.0),
                           "nominal": ("sac-rc", "sac_nominal", round(7 / 9, 6))}
    assert [z.psi for z in section.zero_shot] == ["backwards", "speed4", "nominal"]  # held out first
    files = report_mod.write(report, tmp_path / "report")
    assert "Zero-shot" in files.html.read_text()
    assert (tmp_path / "report" / "zero_shot.csv").read_text().count("\n") == 4  # header and three rows
