"""The random agent: uniform actions in [-1, 1], no learning. The floor every agent must beat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from agents.base import Agent, AgentConfig, Batch, Metrics


@dataclass(frozen=True)
class RandomConfig(AgentConfig):
    """The random agent never updates, keeps no replay and takes no warm-up."""

    updates_per_step: int = 0
    """Gradient updates per environment step: none."""
    warmup_steps: int = 0
    """Every action is random already."""
    replay_capacity: int = 1
    """No transitions are needed."""


class RandomState(NamedTuple):
    action_template: jax.Array  # (act_dim,) zeros: carries the action shape as a pytree leaf


def init(cfg: RandomConfig, key: jax.Array, obs_dim: int, act_dim: int, num_tasks: int) -> RandomState:
    del cfg, key, obs_dim, num_tasks
    return RandomState(action_template=jnp.zeros((act_dim,), jnp.float32))


def act(
    cfg: RandomConfig, state: RandomState, obs: jax.Array, task_id: jax.Array, key: jax.Array,
    episode_key: jax.Array, deterministic: bool,
) -> jax.Array:
    """A uniform action in [-1, 1]; deterministic evaluation is random too (there is no policy)."""
    del cfg, obs, task_id, episode_key, deterministic
    return jax.random.uniform(key, state.action_template.shape, minval=-1.0, maxval=1.0)


def update(cfg: RandomConfig, state: RandomState, batch: Batch, key: jax.Array) -> tuple[RandomState, Metrics]:
    del cfg, batch, key
    return state, {}


AGENT = Agent(
    name="random",
    description="Uniform random actions in [-1, 1]; no learning (the floor of every comparison).",
    config_cls=RandomConfig,
    init=init,
    act=act,
    update=update,
    uniform_actions=True,
)
