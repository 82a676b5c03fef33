"""What every agent provides: a frozen config and pure, jittable ``init``/``act``/``update``.

The runner owns replay, environment stepping, evaluation, checkpointing and logging; an agent owns
only learning. The runner stacks the states of several seeds and ``jax.vmap``s ``act`` and
``update`` over them, so the functions below see a single seed's state and arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:  # annotations only: importing the interface loads no JAX
    import jax


@dataclass(frozen=True)
class AgentConfig:
    """Settings the shared training driver reads from every agent's config."""

    batch_size: int = 256
    """Transitions per gradient update."""
    updates_per_step: int = 1
    """Gradient updates per environment step (the replay ratio); 0 means the agent never learns."""
    warmup_steps: int = 5000
    """Environment steps of uniformly random actions before the first update."""
    replay_capacity: int = 1_000_000
    """Transitions kept in the replay buffer of each seed."""
    gamma: float = 0.99
    """Discount factor."""
    n_step: int = 1
    """Steps of the return target; the runner sums n rewards and discounts with gamma**n."""
    num_envs: int = 1
    """Environments stepped in parallel for each seed (budgets count their steps together)."""


class Batch(NamedTuple):
    """A sampled minibatch of one seed. Shapes: B = batch size."""

    obs: jax.Array  # (B, obs_dim)
    action: jax.Array  # (B, act_dim), in [-1, 1]
    reward: jax.Array  # (B,), the n-step discounted sum of rewards
    discount: jax.Array  # (B,), gamma**n, or 0 where the episode terminated within the n steps
    next_obs: jax.Array  # (B, obs_dim), the observation n steps later
    task_id: jax.Array  # (B,), int32 task index (0 in single-task runs)


C = TypeVar("C", bound=AgentConfig)
S = TypeVar("S")
Metrics = dict[str, "jax.Array"]


@dataclass(frozen=True)
class Agent(Generic[C, S]):
    """An agent: its config class and three pure functions over a state pytree.

    - ``init(cfg, key, obs_dim, act_dim, num_tasks) -> state``
    - ``act(cfg, state, obs (obs_dim,), task_id (), key, episode_key, deterministic) -> action
      (act_dim,)``; ``key`` is new at every step, ``episode_key`` is drawn once per environment and
      episode (for exploration settings kept over an episode; most agents ignore it).
    - ``update(cfg, state, batch, key) -> (state, metrics)``; metrics are scalars.
    - optionally ``observe_episode(cfg, state, rewards (T,), valid (T,), truncated (), task_id ())
      -> state``, called by the runner for every finished training episode: its rewards padded to
      the task's episode length T, ``valid`` marking the real steps, and whether a time limit (not
      a terminal state) ended it.
    """

    name: str
    description: str
    config_cls: type[C]
    init: Callable[[C, jax.Array, int, int, int], S]
    act: Callable[[C, S, jax.Array, jax.Array, jax.Array, jax.Array, bool], jax.Array]
    update: Callable[[C, S, Batch, jax.Array], tuple[S, Metrics]]
    observe_episode: Callable[[C, S, jax.Array, jax.Array, jax.Array, jax.Array], S] | None = None
    uniform_actions: bool = False
    """Every action, in training and evaluation, is uniform in [-1, 1] whatever the state (the random
    agent): a host runner may then draw them with numpy instead of calling ``act``."""

    def config(self, **overrides: Any) -> C:
        """The agent's published defaults with these overrides applied."""
        return self.config_cls(**overrides)
