"""MuJoCo Playground (0.2.0) as a batch of N envs on the default JAX device: pure, jittable functions.

Where :mod:`harness.envs.playground` runs one env on the CPU for the host training loop,
:class:`BatchEnv` ``jax.vmap``s Playground's ``reset`` and ``step`` over N envs so that a training
loop can keep the whole step on an accelerator. It applies the harness's episode rules (those of
:class:`harness.envs.base.EpisodeEnv`): ``task.action_repeat`` Playground steps per agent step with
their rewards summed (an episode that terminates stops there), ``terminated`` is Playground's
``done``, and an episode is truncated after ``task.episode_length // task.action_repeat`` agent
steps. :meth:`BatchEnv.step` resets the envs whose episode ended (``auto_reset=True``).

Each env carries its own key stream: a reset draws ``key, sub = split(key)`` and resets with
``sub``, exactly as the one-env adapter does, so an env whose stream starts at ``PRNGKey(seed)``
sees the same episodes as ``harness.envs.playground.make(task, seed)`` for the same actions.
Observations are Playground's (its ``"state"`` entry for dict observations), flattened to float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from mujoco_playground._src import mjx_env

from harness.catalog import Task
from harness.envs.playground import load
from harness.errors import InputError


class EnvState(NamedTuple):
    """The state of N envs; every leaf has a leading axis of N."""

    sim: mjx_env.State  # Playground's states, (N, ...)
    key: jax.Array  # (N, 2) each env's key stream for its resets
    steps: jax.Array  # (N,) int32 agent steps into the current episode
    returns: jax.Array  # (N,) float32 return of the current episode so far


class Transition(NamedTuple):
    """What one agent step of N envs gives."""

    next_obs: jax.Array  # (N, obs) the true next observation (the final one where an episode ended)
    reward: jax.Array  # (N,) float32, summed over the action repeat
    terminated: jax.Array  # (N,) bool: Playground's done
    truncated: jax.Array  # (N,) bool: the time limit, and not terminated
    episode_return: jax.Array  # (N,) float32: NaN except where an episode ended this step: its return


class BatchEnv:
    """A Playground task's reset and step over a batch of envs (see the module docstring)."""

    def __init__(self, task: Task) -> None:
        if task.suite != "playground":
            raise InputError(f"task {task.name!r} is not a Playground task; the batched env runs "
                             "only playground/* tasks")
        if task.metric == "success":
            raise InputError(f"task {task.name!r}: the batched Playground env reports returns only, "
                             "not success")
        self.task = task
        self._env = load(task)
        size = self._env.observation_size
        self.observation_size = int(np.prod(size["state"] if isinstance(size, Mapping) else size))
        self.action_size = int(self._env.action_size)
        self.max_steps = task.episode_length // task.action_repeat
        """Agent steps after which an episode is truncated."""

    def reset(self, keys: jax.Array) -> EnvState:
        """Start an episode in each env; ``keys (N, 2)`` start the envs' key streams."""
        keys, subs = _split(keys)
        sim = jax.vmap(self._env.reset)(subs)
        n = keys.shape[0]
        return EnvState(sim, keys, jnp.zeros((n,), jnp.int32), jnp.zeros((n,), jnp.float32))

    def obs(self, state: EnvState) -> jax.Array:
        """The observations to act on: (N, obs) float32."""
        return _flat_obs(state.sim)

    def step(self, state: EnvState, action: jax.Array, auto_reset: bool = True) -> tuple[EnvState, Transition]:
        """One agent step of every env with its row of ``action (N, act)`` (in [-1, 1]).

        With ``auto_reset`` the envs whose episode ended start a new one (their observation in the
        returned state is the new episode's); without it they stay where they ended.
        """
        action = jnp.clip(action, -1.0, 1.0)

        def repeat(carry: tuple[mjx_env.State, jax.Array, jax.Array], _: None) -> tuple[Any, None]:
            sim, reward, done = carry
            new = jax.vmap(self._env.step)(sim, action)
            sim = _select(done, sim, new)
            reward = reward + jnp.where(done, 0.0, new.reward)
            return (sim, reward, done | (new.done > 0)), None

        n = action.shape[0]
        start = (state.sim, jnp.zeros((n,), jnp.float32), jnp.zeros((n,), bool))
        (sim, reward, terminated), _ = jax.lax.scan(repeat, start, None, length=self.task.action_repeat)
        steps = state.steps + 1
        truncated = ~terminated & (steps >= self.max_steps)
        ended = terminated | truncated
        returns = state.returns + reward
        transition = Transition(_flat_obs(sim), reward, terminated, truncated,
                                jnp.where(ended, returns, jnp.nan))
        stepped = EnvState(sim, state.key, steps, returns)
        if auto_reset:
            stepped = jax.lax.cond(jnp.any(ended), self._reset_where, lambda s, e: s, stepped, ended)
        return stepped, transition

    def _reset_where(self, state: EnvState, ended: jax.Array) -> EnvState:
        """``state`` with the ``ended (N,)`` envs reset (their key streams advance; the others' do not)."""
        fresh = self.reset(state.key)
        return EnvState(_select(ended, fresh.sim, state.sim), jnp.where(ended[:, None], fresh.key, state.key),
                        jnp.where(ended, 0, state.steps), jnp.where(ended, 0.0, state.returns))


def _split(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per row of ``keys (N, 2)``: (the stream's next key, a key to use now), each (N, 2)."""
    pairs = jax.vmap(jax.random.split)(keys)  # (N, 2, 2)
    return pairs[:, 0], pairs[:, 1]


def _select(where: jax.Array, a: Any, b: Any) -> Any:
    """The pytree ``a`` in the rows where ``where (N,)`` holds, else ``b``."""
    return jax.tree_util.tree_map(
        lambda x, y: jnp.where(where.reshape(where.shape + (1,) * (x.ndim - 1)), x, y), a, b)


def _flat_obs(sim: mjx_env.State) -> jax.Array:
    obs = sim.obs["state"] if isinstance(sim.obs, Mapping) else sim.obs
    return obs.reshape(obs.shape[0], -1).astype(jnp.float32)
