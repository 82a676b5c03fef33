"""The reference agents through `harness run` on a real DMC task into DuckDB, and the runner's hooks
for them: per-episode keys (FastTD3's exploration scale) and finished episodes (BRC's returns)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from agents import brc, fasttd3
from harness.backends.host import UNIFORM_AHEAD, EpisodeRewards, uniform_ahead
from harness.lifecycle import episode_keys as _episode_keys
from harness.vmapped import make_observer
from tests.test_run import harness, query


def test_bro_brc_fasttd3_train_through_harness_run_into_duckdb(tmp_path: Path) -> None:
    """Small widths, 2 seeds, 1,200 steps: cartpole's first episode ends at step 1,000, so BRC's
    reward scale must have left 1.0 by the last log window."""
    manifest = tmp_path / "agents.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "agents-run",
        "tasks": ["dmc/cartpole-balance"],
        "agents": {
            "bro_fast": {"critic_width": 32, "actor_width": 16, "batch_size": 16, "warmup_steps": 200},
            "brc": {"critic_width": 32, "actor_width": 16, "batch_size": 16, "warmup_steps": 200},
            "fasttd3": {"critic_hidden_dim": 32, "actor_hidden_dim": 16, "num_envs": 4, "batch_size": 32,
                        "warmup_steps": 200, "replay_capacity": 4800},
        },
        "seeds": 2,
        "budget": 1200,
        "eval": {"every": 600, "episodes": 1},
        "log_every": 100,
    }))
    results = tmp_path / "results"
    done = harness("run", str(manifest), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    db = results / "harness.duckdb"
    assert query(db, "SELECT label, count(*) FILTER (status = 'finished') FROM runs GROUP BY label ORDER BY label") == [
        ("brc", 2), ("bro_fast", 2), ("fasttd3", 2)]
    evals = query(db, "SELECT r.label, list(c.step ORDER BY c.step) FROM runs r JOIN curves c USING (run_id) "
                      "WHERE c.metric = 'eval/return' AND r.seed = 0 GROUP BY r.label ORDER BY r.label")
    assert evals == [("brc", [600, 1200]), ("bro_fast", [600, 1200]), ("fasttd3", [600, 1200])]
    metrics = {(label, m) for label, m in query(db, "SELECT DISTINCT r.label, c.metric FROM runs r JOIN curves c "
                                                   "USING (run_id) WHERE c.metric LIKE 'agent/%'")}
    assert {("bro_fast", "agent/optimism"), ("bro_fast", "agent/kl_weight"), ("bro_fast", "agent/critic_loss"),
            ("brc", "agent/reward_scale"), ("brc", "agent/critic_loss"), ("fasttd3", "agent/critic_loss")} <= metrics
    scale = query(db, "SELECT c.step, c.value FROM runs r JOIN curves c USING (run_id) WHERE r.label = 'brc' "
                      "AND r.seed = 0 AND c.metric = 'agent/reward_scale' ORDER BY c.step")
    assert scale[0][0] < 1000 and scale[0][1] == 1.0  # no episode has finished yet: rewards as they are
    assert scale[-1][0] == 1200 and scale[-1][1] > 1.0  # scaled by the first episode's returns


def test_episode_keys_change_only_where_an_episode_starts() -> None:
    keys = np.zeros((2, 3, 2), np.uint32)
    ended = np.array([[True, False, False], [False, False, True]])
    fresh = _episode_keys([7, 8], ended, 100, keys)
    assert (fresh[~ended] == 0).all() and (fresh[ended] != 0).all()
    assert not np.array_equal(fresh[0, 0], fresh[1, 2])
    np.testing.assert_array_equal(fresh, _episode_keys([7, 8], ended, 100, keys))  # no hidden state
    assert not np.array_equal(fresh[0, 0], _episode_keys([7, 8], ended, 101, keys)[0, 0])


def test_fasttd3_noise_scale_is_the_episode_keys() -> None:
    """With one episode key and many step keys, the spread of the exploration noise is that key's
    scale, U(0.1, 0.4); a different episode key gives a different spread."""
    cfg = fasttd3.FastTD3Config(critic_hidden_dim=8, actor_hidden_dim=8, num_envs=1)
    state = fasttd3.init(cfg, jax.random.PRNGKey(0), 3, 2, 1)
    obs, task = jnp.ones(3), jnp.zeros((), jnp.int32)
    step_keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    greedy = fasttd3.act(cfg, state, obs, task, step_keys[0], step_keys[0], True)  # (2,)
    for episode_key in (jax.random.PRNGKey(5), jax.random.PRNGKey(6)):
        actions = jax.vmap(lambda k, e=episode_key: fasttd3.act(cfg, state, obs, task, k, e, False))(step_keys)
        spread = float(jnp.std(actions - greedy))
        # 8,000 draws: the standard deviation's relative standard error is about 1 / sqrt(2 * 8000) < 1%.
        expected = float(fasttd3.exploration_scale(cfg, episode_key))
        assert abs(spread - expected) < 0.04 * expected, (spread, expected)


def test_episode_rewards_pad_and_mask_finished_episodes() -> None:
    episodes = EpisodeRewards(seeds=1, num_envs=2, max_length=2)
    episodes.add(np.array([[1.0, 10.0]]))
    episodes.add(np.array([[2.0, 20.0]]))
    rewards, valid = episodes.finished(np.array([[True, False]]))
    np.testing.assert_array_equal(rewards, [[[1.0, 2.0], [10.0, 20.0]]])
    np.testing.assert_array_equal(valid, [[[True, True], [True, True]]])
    episodes.add(np.array([[3.0, 30.0]]))  # env 0 starts over; env 1 outgrows the catalog's length
    rewards, valid = episodes.finished(np.array([[True, True]]))
    np.testing.assert_array_equal(valid, [[[True, False, False, False], [True, True, True, False]]])
    np.testing.assert_array_equal(rewards[0, 0], [3.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(rewards[0, 1, :3], [10.0, 20.0, 30.0])


def test_observer_folds_only_the_episodes_that_ended() -> None:
    """Seed 0's env ended with rewards (1, 2), gamma 0.5, terminated: returns-to-go 2 and
    1 + 0.5 * 2 = 2, so min = max = 2. Seed 1's env did not end: its range stays (+inf, -inf)."""
    cfg = brc.BRCConfig(critic_width=8, actor_width=8, gamma=0.5)
    state = jax.vmap(lambda k: brc.init(cfg, k, 3, 1, 1))(jax.random.split(jax.random.PRNGKey(0), 2))
    observe = make_observer(brc.AGENT, cfg)
    rewards = np.array([[[1.0, 2.0, 0.0]], [[5.0, 5.0, 5.0]]], np.float32)  # (S=2, E=1, T=3)
    valid = np.array([[[True, True, False]], [[True, True, True]]])
    state = observe(state, rewards, valid, np.zeros((2, 1), bool), np.array([[True], [False]]), np.zeros(1, np.int32))
    np.testing.assert_allclose(np.asarray(state.return_min)[:, 0], [2.0, np.inf])
    np.testing.assert_allclose(np.asarray(state.return_max)[:, 0], [2.0, -np.inf])


def test_uniform_actions_drawn_ahead_are_the_step_by_step_draws() -> None:
    ahead, by_step = np.random.default_rng(7), np.random.default_rng(7)
    block = uniform_ahead(ahead, 5, (2, 3))  # (5, 2, 3): 30 numbers, under the cap
    assert block.shape == (5, 2, 3) and block.dtype == np.float32
    for row in block:
        np.testing.assert_array_equal(row, by_step.uniform(-1.0, 1.0, (2, 3)).astype(np.float32))
    assert ahead.bit_generator.state == by_step.bit_generator.state  # a checkpoint here resumes the same
    assert uniform_ahead(ahead, 10**9, (4, 8)).shape == (UNIFORM_AHEAD // 32, 4, 8)
