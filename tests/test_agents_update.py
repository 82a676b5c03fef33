"""BRO, BRC and FastTD3 train vmapped over seeds as the runner runs them: tiny networks, a fixed batch.

Each agent is initialised for the seeds (0, 1, 0), so lanes 0 and 2 hold the same seed, and then
updated ``STEPS`` times in one jitted scan on the same batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import brc, bro, fasttd3
from agents.base import Agent, Batch

OBS_DIM, ACT_DIM, BATCH, STEPS = 5, 2, 16, 40
SEEDS = jnp.array([0, 1, 0])

@dataclass(frozen=True)
class Run:
    initial: Any  # states after init, stacked over the 3 seeds
    final: Any  # states after STEPS updates
    metrics: dict[str, jax.Array]  # each (STEPS, 3)
    explore: jax.Array  # (3, act) exploration actions
    greedy: jax.Array  # (3, act) evaluation actions
    again: Any  # final states of a second, identical call


def fixed_batch(num_tasks: int) -> Batch:
    rng = np.random.default_rng(7)
    return Batch(
        obs=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
        action=jnp.asarray(rng.uniform(-1, 1, size=(BATCH, ACT_DIM)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=BATCH), jnp.float32),
        discount=jnp.full((BATCH,), 0.99, jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(BATCH, OBS_DIM)), jnp.float32),
        task_id=jnp.asarray(np.arange(BATCH) % num_tasks, jnp.int32),
    )


def train(agent: Agent[Any, Any], cfg: Any, num_tasks: int = 1) -> Run:
    """Init as the runner does (jit of vmap), then STEPS vmapped updates and one act in one jit."""
    batch = fixed_batch(num_tasks)
    stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(SEEDS), *x.shape)), batch)
    init_keys, update_keys, act_keys = jnp.moveaxis(
        jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s), 3))(SEEDS), 1, 0
    )
    initial = jax.block_until_ready(
        jax.jit(jax.vmap(lambda k: agent.init(cfg, k, OBS_DIM, ACT_DIM, num_tasks)))(init_keys)
    )

    @jax.jit
    def run(state: Any) -> tuple[Any, dict[str, jax.Array], jax.Array, jax.Array]:
        def step(state: Any, t: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
            keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(update_keys)
            return jax.vmap(lambda s, b, k: agent.update(cfg, s, b, k))(state, stacked, keys)

        final, metrics = jax.lax.scan(step, state, jnp.arange(STEPS))
        obs = jnp.broadcast_to(batch.obs[0], (len(SEEDS), OBS_DIM))  # the same observation for every seed
        task = jnp.zeros(len(SEEDS), jnp.int32)
        explore = jax.vmap(lambda s, o, t, k: agent.act(cfg, s, o, t, k, k, False))(final, obs, task, act_keys)
        greedy = jax.vmap(lambda s, o, t, k: agent.act(cfg, s, o, t, k, k, True))(final, obs, task, act_keys)
        return final, metrics, explore, greedy

    final, metrics, explore, greedy = jax.block_until_ready(run(initial))
    return Run(initial, final, metrics, explore, greedy, jax.block_until_ready(run(initial)[0]))


SMALL: dict[str, tuple[Agent[Any, Any], Any]] = {
    "bro": (bro.AGENT, bro.BROConfig(
        critic_width=32, actor_width=16, num_quantiles=8, batch_size=BATCH, warmup_steps=0, reset_steps=(30,),
        updates_per_step=1,
    )),
    "brc": (brc.AGENT, brc.BRCConfig(critic_width=32, actor_width=16, num_bins=11, batch_size=BATCH)),
    "fasttd3": (fasttd3.AGENT, fasttd3.FastTD3Config(
        critic_hidden_dim=32, actor_hidden_dim=16, num_atoms=11, v_min=-10.0, v_max=10.0, batch_size=BATCH,
        critic_lr=1e-3,
    )),
}


@functools.cache
def trained(name: str) -> Run:
    """The run of one agent of SMALL, computed once per test session."""
    agent, cfg = SMALL[name]
    return train(agent, cfg)


@pytest.fixture(params=sorted(SMALL))
def run(request: pytest.FixtureRequest) -> tuple[str, Run]:
    return request.param, trained(request.param)


def lane(tree: Any, i: int) -> list[np.ndarray]:
    return [np.asarray(x[i]) for x in jax.tree.leaves(tree)]


def test_critic_loss_decreases_on_a_fixed_batch(run: tuple[str, Run]) -> None:
    name, r = run
    loss = np.asarray(r.metrics["critic_loss"])  # (STEPS, 3)
    assert np.all(np.isfinite(loss))
    # BRO resets at update 30 (see SMALL), so compare within the first 30 updates.
    first, last = loss[:3].mean(axis=0), loss[27:30].mean(axis=0)
    assert np.all(last < first), f"{name}: critic loss {first} -> {last}"


def test_seeds_differ_and_the_same_seed_repeats_exactly(run: tuple[str, Run]) -> None:
    _, r = run
    for state in (r.initial, r.final):
        seed0, seed1, seed0_again = lane(state, 0), lane(state, 1), lane(state, 2)
        assert any(not np.array_equal(a, b) for a, b in zip(seed0, seed1, strict=True))
        assert all(np.array_equal(a, b) for a, b in zip(seed0, seed0_again, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(r.final), jax.tree.leaves(r.again), strict=True))
    np.testing.assert_array_equal(r.greedy[0], r.greedy[2])


def test_actions_are_in_range_and_exploration_differs_from_evaluation(run: tuple[str, Run]) -> None:
    _, r = run
    for actions in (r.explore, r.greedy):
        assert actions.shape == (len(SEEDS), ACT_DIM)
        assert bool(jnp.all(jnp.abs(actions) <= 1.0))
    assert not np.allclose(r.explore, r.greedy)


def test_state_survives_a_checkpoint_round_trip(run: tuple[str, Run]) -> None:
    _, r = run
    restored = flax.serialization.from_bytes(r.initial, flax.serialization.to_bytes(r.final))
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(r.final), strict=True))


def test_bro_resets_every_parameter_on_schedule() -> None:
    r = trained("bro")
    flags = np.asarray(r.metrics["reset"])  # (STEPS, 3)
    assert flags[30].tolist() == [1.0] * 3 and flags.sum() == 3.0
    # After the reset at update 30 the optimisers restarted: updates 30..39 are their only 10 steps.
    assert np.asarray(r.final.learner.critic_opt[0].count).tolist() == [10] * 3
    assert np.asarray(r.final.updates).tolist() == [STEPS] * 3


def test_fasttd3_delays_the_actor_and_tracks_observations() -> None:
    r = trained("fasttd3")
    assert np.asarray(r.metrics["actor_updated"])[:, 0].tolist() == [0.0, 1.0] * (STEPS // 2)
    assert np.asarray(r.final.actor_opt[0].count).tolist() == [STEPS // 2] * 3
    np.testing.assert_allclose(r.final.obs_stats.total, [STEPS * BATCH] * 3)
    np.testing.assert_allclose(r.final.obs_stats.mean[0], np.asarray(fixed_batch(1).obs).mean(axis=0), atol=1e-5)


def test_brc_task_embeddings_condition_actor_and_critic() -> None:
    cfg = brc.BRCConfig(critic_width=16, actor_width=8, num_bins=11, batch_size=BATCH)
    state = brc.init(cfg, jax.random.PRNGKey(0), OBS_DIM, ACT_DIM, 2)
    table = state.critic["params"]["embedding"]["embedding"]
    assert table.shape == (2, cfg.embedding_dim)
    # An episode of task 1 (rewards 1, 2, 3, terminated) sets task 1's scale; task 0 keeps 1.
    state = brc.observe_episode(
        cfg, state, jnp.array([1.0, 2.0, 3.0, 0.0]), jnp.array([True, True, True, False]), jnp.asarray(False),
        jnp.asarray(1),
    )
    state, metrics = jax.jit(lambda s, b, k: brc.update(cfg, s, b, k))(state, fixed_batch(2), jax.random.PRNGKey(1))
    assert 1.0 < float(metrics["reward_scale"]) < float(state.return_max[1])
    obs = jnp.ones(OBS_DIM)
    key = jax.random.PRNGKey(2)
    a0, a1 = (brc.act(cfg, state, obs, jnp.asarray(t), key, key, True) for t in (0, 1))
    assert not np.allclose(a0, a1)
    assert not np.array_equal(state.critic["params"]["embedding"]["embedding"], table)


def test_published_defaults() -> None:
    assert (bro.AGENT.config().updates_per_step, bro.AGENT_FAST.config().updates_per_step) == (10, 2)
    assert bro.AGENT.config().batch_size == 128 and bro.AGENT.config().warmup_steps == 2500
    assert bro.AGENT_FAST.config().reset_steps == (15_000,)
    c = brc.AGENT.config()
    assert (c.critic_width, c.num_bins, c.v_max, c.embedding_dim, c.batch_size) == (4096, 101, 10.0, 32, 256)
    f = fasttd3.AGENT.config()
    assert (f.num_envs, f.batch_size, f.num_atoms, f.gamma, f.n_step) == (1024, 32_768, 101, 0.97, 3)
    for preset in fasttd3.PRESETS.values():
        fasttd3.FastTD3Config(**preset)
