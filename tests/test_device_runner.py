"""The on-device loop for Playground tasks: the batched env against the one-env adapter, and real
FastTD3 and SAC runs into DuckDB, resume and reproducibility.

Playground's CartpoleBalance compiles for tens of seconds on a CPU; the FastTD3 tests share one
run (a module fixture) and the compiled loop (the jitted parts are cached by their settings).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

pytest.importorskip("mujoco_playground")
os.environ.setdefault("MUJOCO_GL", "disable")

from harness import catalog, store
from harness.backends.device import train as train_on_device
from harness.envs.base import EpisodeEnv
from harness.envs.playground import PlaygroundSimulator
from harness.envs.playground_batch import BatchEnv
from harness.layout import read_status
from harness.manifest import Plan, validate
from tests.test_run import harness

FASTTD3 = {"critic_hidden_dim": 32, "actor_hidden_dim": 16, "num_envs": 8, "batch_size": 64,
           "warmup_steps": 800, "replay_capacity": 16_000}


def plan(agents: dict[str, Any], budget: int, every: int, tmp_path: Path) -> Plan:
    raw = {"name": "device-test", "tasks": ["playground/CartpoleBalance"], "agents": agents, "seeds": 2,
           "budget": budget, "eval": {"every": every, "episodes": 1}, "log_every": 100}
    return validate(raw, tmp_path / "manifest.yaml")


def ingest(results: Path) -> store.Store:
    db = store.Store(results / "harness.duckdb")
    store.ingest_run_dirs(db, sorted((results / "runs").iterdir()))
    return db


def query(db: store.Store, sql: str) -> list[tuple[Any, ...]]:
    with db.connect(read_only=True) as con:
        return con.execute(sql).fetchall()


def shard_points(results: Path) -> dict[str, list[tuple[str, int, float]]]:
    """Every run's curve points in file order: run_id -> [(metric, step, value)]."""
    out = {}
    for d in sorted((results / "runs").iterdir()):
        lines = [json.loads(line) for line in (d / "curves.jsonl").read_text().splitlines()]
        out[d.name] = [(p["metric"], p["step"], p["value"]) for p in lines]
    return out


def test_batch_env_matches_the_one_env_adapter() -> None:
    """Three envs, 30 agent steps of the same random actions, batched and one by one.

    The task is CartpoleBalance cut to 24 simulator steps with action repeat 2: an episode is
    24 // 2 = 12 agent steps, so the envs are truncated (and auto-reset) after steps 12 and 24.
    """
    task = dataclasses.replace(catalog.resolve("playground/CartpoleBalance"), episode_length=24, action_repeat=2)
    seeds = [0, 1, 2]
    hosts = [EpisodeEnv(task, PlaygroundSimulator(task, seed)) for seed in seeds]
    batch = BatchEnv(task)
    assert batch.max_steps == 12
    actions = np.random.default_rng(0).uniform(-1.0, 1.0, (30, 3, batch.action_size)).astype(np.float32)

    state = jax.jit(batch.reset)(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds)))
    step = jax.jit(batch.step)
    host_obs = np.stack([env.reset()[0] for env in hosts])
    np.testing.assert_allclose(np.asarray(batch.obs(state)), host_obs, atol=1e-5)
    host_returns = np.zeros(3)
    ends = []
    for t in range(30):
        state, out = step(state, jnp.asarray(actions[t]))
        for i, env in enumerate(hosts):
            next_obs, reward, terminated, truncated, _ = env.step(actions[t, i])
            host_returns[i] += reward
            np.testing.assert_allclose(float(out.reward[i]), reward, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(np.asarray(out.next_obs[i]), next_obs, atol=1e-4)
            assert (bool(out.terminated[i]), bool(out.truncated[i])) == (terminated, truncated)
            if truncated:
                np.testing.assert_allclose(float(out.episode_return[i]), host_returns[i], rtol=1e-5)
                host_returns[i] = 0.0
                next_obs = env.reset()[0]  # the host continues its key stream, as the batch does
            else:
                assert np.isnan(float(out.episode_return[i]))
            np.testing.assert_allclose(np.asarray(batch.obs(state)[i]), next_obs, atol=1e-4)
        if bool(out.truncated.any()):
            ends.append(t + 1)
    assert ends == [12, 24]
    assert np.asarray(state.steps).tolist() == [6, 6, 6]  # 30 - 24
    # The reward of one agent step is the sum of two simulator steps (each in [0, 1] here).
    assert 1.0 < float(out.reward.max()) <= 2.0


@pytest.fixture(scope="module")
def fasttd3_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Plan, Path]]:
    """A finished FastTD3 group: 2 seeds x 8 envs, 16000 steps (two 1000-step episodes per env)."""
    tmp = tmp_path_factory.mktemp("fasttd3")
    group_plan = plan({"fasttd3": FASTTD3}, 16_000, 8_000, tmp)
    results = tmp / "results"
    train_on_device(group_plan.jobs[0], results)
    yield group_plan, results


def test_fasttd3_run_lands_every_curve_in_duckdb(fasttd3_run: tuple[Plan, Path]) -> None:
    group_plan, results = fasttd3_run
    assert all(read_status(results, r.run_id) == "finished" for r in group_plan.runs)
    assert not list((results / "groups").glob("*/checkpoint.pkl"))
    db = ingest(results)
    runs = query(db, "SELECT agent, task, seed, status, device, packages FROM runs ORDER BY seed")
    assert [r[:4] for r in runs] == [("fasttd3", "playground/CartpoleBalance", s, "finished") for s in (0, 1)]
    assert all(str(r[4]).startswith("cpu") and "jax" in json.loads(str(r[5])) for r in runs)

    def steps(metric: str) -> list[list[int]]:
        rows = query(db, f"SELECT run_id, list(step ORDER BY step) FROM curves WHERE metric = '{metric}' "
                         "GROUP BY run_id ORDER BY run_id")
        return [list(s) for _, s in rows]

    assert steps("eval/return") == [[8000, 16000]] * 2
    for metric in ("sys/env_steps_per_s", "sys/updates_per_s", "sys/wall_s"):
        assert steps(metric) == [[8000, 16000]] * 2
    # Every env's 1000-step episode ends after 1000 vectorised steps of 8 envs: at 8000 and 16000.
    assert steps("train/episode_return") == [[8000, 16000]] * 2
    # Warm-up ends after 800 steps (100 vectorised steps); the step taken at 800 is the first to
    # update (2 updates), so 100 updates have been made at 808 + 49 * 8 = 1200, then every 50
    # vectorised steps (400 env steps) after that.
    assert steps("agent/critic_loss") == [list(range(1200, 16_001, 400))] * 2
    assert steps("agent/actor_loss") == steps("agent/critic_loss")
    returns = query(db, "SELECT value FROM curves WHERE metric = 'eval/return'")
    assert all(0.0 < v <= 1000.0 for (v,) in returns)
    # Seeds differ.
    losses = query(db, "SELECT run_id, list(value ORDER BY step) FROM curves WHERE metric = 'agent/critic_loss' "
                       "GROUP BY run_id")
    assert losses[0][1] != losses[1][1]


class Interrupted(Exception):
    pass


def test_resume_gives_every_point_once_and_the_same_curve(fasttd3_run: tuple[Plan, Path],
                                                          tmp_path: Path) -> None:
    """The same group, stopped at 12000 steps (after the checkpoint at 8000 and 500 vectorised
    steps of points it must forget), then resumed: the same points as the uninterrupted run, each
    once. This is also the same seed run twice, so the curves must match bit for bit."""
    group_plan, uninterrupted = fasttd3_run
    results = tmp_path / "results"

    def stop_at_12000(group_id: str, env_steps: int, budget: int, sps: float, last_eval: float | None) -> None:
        if env_steps == 12_000:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_on_device(group_plan.jobs[0], results, stop_at_12000)
    assert list((results / "groups").glob("*/checkpoint.pkl"))
    assert all(read_status(results, r.run_id) == "running" for r in group_plan.runs)
    assert any(p[:2] == ("eval/return", 8000) for p in next(iter(shard_points(results).values())))

    train_on_device(group_plan.jobs[0], results)
    resumed, full = shard_points(results), shard_points(uninterrupted)
    assert resumed.keys() == full.keys()
    for run_id, points in resumed.items():
        keys = [(m, s) for m, s, _ in points]
        assert len(keys) == len(set(keys))
        assert [s for m, s, _ in points if m == "eval/return"] == [8000, 16000]
        assert [p for p in points if not p[0].startswith("sys/")] == \
            [p for p in full[run_id] if not p[0].startswith("sys/")]


def test_harness_run_trains_sac_on_the_device(tmp_path: Path) -> None:
    """`harness run` on a Playground task goes through the on-device loop. SAC, one env per seed:
    2000 steps, an episode (1000 steps) ends at 1000 and 2000."""
    manifest = tmp_path / "device.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "device-run", "tasks": ["playground/CartpoleBalance"], "seeds": 2, "budget": 2000,
        "agents": {"sac": {"hidden_dims": [32, 32], "batch_size": 64, "warmup_steps": 500}},
        "eval": {"every": 1000, "episodes": 1}, "log_every": 100,
    }))
    results = tmp_path / "results"
    done = harness("run", str(manifest), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    db = store.Store(results / "harness.duckdb")
    assert query(db, "SELECT count(*) FROM runs WHERE status = 'finished'") == [(2,)]
    rows = query(db, "SELECT metric, list(step ORDER BY step) FROM curves GROUP BY run_id, metric")
    by_metric: dict[str, list[list[int]]] = {}
    for metric, steps in rows:
        by_metric.setdefault(metric, []).append(list(steps))
    assert by_metric["eval/return"] == [[1000, 2000]] * 2
    assert by_metric["train/episode_return"] == [[1000, 2000]] * 2
    # Learning starts with the step taken at 500; one update per step, a log every 100 updates:
    # at 501 + 99 = 600, 700, ..., 2000.
    assert by_metric["agent/temperature"] == [list(range(600, 2001, 100))] * 2
    assert {"agent/critic_loss", "agent/actor_loss", "sys/wall_s"} <= by_metric.keys()


def test_finished_episodes_reach_observe_episode() -> None:
    """BRC keeps the range of discounted returns of the episodes it observed. Two envs of a
    20-step CartpoleBalance, 50 vectorised steps: each env finishes episodes at steps 20 and 40
    (truncated), and the range must be that of those four episodes, recomputed from the replay."""
    from agents import brc
    from harness.backends.device import Loop, _advance, _start

    task = dataclasses.replace(catalog.resolve("playground/CartpoleBalance"), episode_length=20)
    cfg = brc.AGENT.config(critic_width=16, critic_blocks=1, actor_width=16, num_envs=2, updates_per_step=0,
                           warmup_steps=0, replay_capacity=200)
    loop = Loop(task, brc.AGENT, cfg, seeds=1, num_envs=2, capacity=100, eval_episodes=1, chunk=50)
    carry, out = _advance(loop, _start(loop, jnp.asarray([0], jnp.int32)), jnp.int32(0), jnp.int32(50))
    rewards = np.asarray(carry.replay.reward[0])  # (E, C): positions 0-19 and 20-39 are whole episodes
    episodes = [rewards[e, start:start + 20] for e in range(2) for start in (0, 20)]
    ranges = [brc.episode_return_range(jnp.asarray(r), jnp.ones(20, bool), jnp.asarray(True), cfg.gamma)
              for r in episodes]
    np.testing.assert_allclose(float(carry.agent.return_min[0, 0]), min(float(lo) for lo, _ in ranges), rtol=1e-5)
    np.testing.assert_allclose(float(carry.agent.return_max[0, 0]), max(float(hi) for _, hi in ranges), rtol=1e-5)
    ended = np.flatnonzero(~np.isnan(np.asarray(out.episode_return[:, 0])))
    assert ended.tolist() == [19, 39]  # the 20th and 40th steps
