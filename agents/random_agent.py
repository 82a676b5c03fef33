"""The random agent: uniform actions in [-1, 1], no learning. The floor every agent must beat.

A host runner draws its actions with numpy (``uniform_actions``); ``act`` (traced by the batched
device backend) imports JAX when called, so reading a manifest of the random agent loads no JAX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from agents.base import Agent, AgentConfig, Batch, Metrics

if TYPE_CHECKING:
    import jax


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
    action_template: np.ndarray  # (act_dim,) zeros: carries the action shape as a pytree leaf


def init(cfg: RandomConfig, key: jax.Array, obs_dim: int, act_dim: int, num_tasks: int) -> RandomState:
    del cfg, key, obs_dim, num_tasks
    return RandomState(action_template=np.zeros((act_dim,), np.float32))


def act(
    cfg: RandomConfig, state: RandomState, obs: jax.Array, task_id: jax.Array, key: jax.Array,
    episode_key: jax.Array, deterministic: bool,
) -> jax.Array:
    """A uniform action in [-1, 1]; deterministic evaluation is random too (there is no policy)."""
    import jax

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
