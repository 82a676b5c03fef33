"""An agent's pure functions, vmapped over the seeds of a job (and over its env columns), jitted.

Both training backends call the agent only through these: the task of every env column and of
every sampled transition reaches the agent as its ``task_id`` (``agents/base.py``), the one route by
which an agent sees the task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import agents
from agents.base import AgentConfig, Batch


def make_policy(agent: agents.Agent[Any, Any], cfg: AgentConfig, deterministic: bool) -> Callable[..., Any]:
    """jit(vmap over seeds (vmap over env columns)): (state, obs (S, N, obs), keys (S, 2),
    episode_keys (S, N, 2), task_ids (N,)) -> (actions (S, N, act), keys)."""

    def per_seed(state: Any, obs: jax.Array, key: jax.Array, episode_keys: jax.Array,
                 task_ids: jax.Array) -> tuple[jax.Array, jax.Array]:
        key, sub = jax.random.split(key)
        env_keys = jax.random.split(sub, obs.shape[0])  # (N, 2)
        per_env = jax.vmap(lambda o, t, k, ek: agent.act(cfg, state, o, t, k, ek, deterministic))
        return per_env(obs, task_ids, env_keys, episode_keys), key

    return jax.jit(jax.vmap(per_seed, in_axes=(0, 0, 0, 0, None)))


def make_observer(agent: agents.Agent[Any, Any], cfg: AgentConfig) -> Callable[..., Any]:
    """jit(vmap over seeds (scan over env columns)) of the agent's ``observe_episode``:
    (state, rewards (S, N, T), valid (S, N, T), truncated (S, N), ended (S, N), task_ids (N,)) ->
    state; columns whose episode did not end leave the state as it is."""
    observe_episode = agent.observe_episode
    assert observe_episode is not None

    def per_seed(state: Any, rewards: jax.Array, valid: jax.Array, truncated: jax.Array,
                 ended: jax.Array, task_ids: jax.Array) -> Any:
        def one(carry: Any, xs: tuple[jax.Array, ...]) -> tuple[Any, None]:
            reward, mask, trunc, end, task = xs
            seen = observe_episode(cfg, carry, reward, mask, trunc, task)
            return jax.tree_util.tree_map(lambda new, old: jnp.where(end, new, old), seen, carry), None

        state, _ = jax.lax.scan(one, state, (rewards, valid, truncated, ended, task_ids))
        return state

    return jax.jit(jax.vmap(per_seed, in_axes=(0, 0, 0, 0, 0, None)))


def make_learner(agent: agents.Agent[Any, Any], cfg: AgentConfig) -> Callable[..., Any]:
    """jit(vmap over seeds (scan over U minibatches)): (state, batches (S, U, B, ...) with ``task_id``,
    keys (S, 2)) -> (state, metrics (S, U) each, keys)."""

    def per_seed(state: Any, batches: dict[str, jax.Array], key: jax.Array) -> tuple[Any, dict[str, jax.Array],
                                                                                   jax.Array]:
        def one(carry: Any, xs: tuple[dict[str, jax.Array], jax.Array]) -> tuple[Any, dict[str, jax.Array]]:
            b, k = xs
            batch = Batch(b["obs"], b["action"], b["reward"], b["discount"], b["next_obs"], b["task_id"])
            return agent.update(cfg, carry, batch, k)

        key, sub = jax.random.split(key)
        state, metrics = jax.lax.scan(one, state, (batches, jax.random.split(sub, batches["reward"].shape[0])))
        return state, metrics, key

    return jax.jit(jax.vmap(per_seed))
