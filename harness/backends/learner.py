"""The agent side of a host job: the agent's states stacked over seeds, their keys, and the agent's
functions vmapped over the seeds and jitted (:mod:`harness.vmapped`).

The host backend imports this module only for an agent that acts through JAX: an agent with
``uniform_actions`` (the random agent) has no state to keep, draws its actions with numpy, and its
host job never loads JAX.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import agents
from agents.base import AgentConfig
from harness.vmapped import make_learner, make_observer, make_policy


def device() -> str:
    """The JAX device a host job's agent runs on, as its run record names it (``cpu``, ``gpu:NVIDIA H200``)."""
    first = jax.devices()[0]
    return f"{first.platform}:{getattr(first, 'device_kind', '')}".rstrip(":")


class Learner:
    """The states of one agent over a job's S seeds; N env columns, T tasks.

    ``saved`` is what :meth:`checkpoint` gave (the job resumes from it); without it every seed's
    state is initialised from its own key.
    """

    def __init__(self, agent: agents.Agent[Any, Any], cfg: AgentConfig, seeds: list[int], obs_dim: int,
                 act_dim: int, column_task: np.ndarray, n_tasks: int, saved: dict[str, Any] | None) -> None:
        self.observes = agent.observe_episode is not None
        self._explore = make_policy(agent, cfg, deterministic=False)
        self._greedy = make_policy(agent, cfg, deterministic=True)
        self._learn = make_learner(agent, cfg)
        self._observe = make_observer(agent, cfg) if self.observes else None
        self._task_ids = jnp.asarray(column_task)  # (N,)
        self._eval_task_ids = jnp.arange(n_tasks, dtype=jnp.int32)  # (T,)
        self.pending: list[dict[str, Any]] = []  # metrics (S, U) of the updates since the last log, on the device
        if saved is not None:
            self.state = jax.tree_util.tree_map(jnp.asarray, saved["state"])
            self.keys = jnp.asarray(saved["keys"])
            self.pending = saved["pending"]
            return
        init = jax.jit(jax.vmap(partial(agent.init, cfg), in_axes=(0, None, None, None)), static_argnums=(1, 2, 3))
        keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))  # (S, 2)
        pairs = jax.vmap(jax.random.split)(keys)  # (S, 2, 2)
        self.keys, init_keys = pairs[:, 0], pairs[:, 1]
        self.state = init(init_keys, obs_dim, act_dim, n_tasks)

    def act(self, obs: np.ndarray, ep_keys: np.ndarray) -> np.ndarray:
        """Exploration actions (S, N, act) for observations (S, N, obs) and episode keys (S, N, 2)."""
        actions, self.keys = self._explore(self.state, obs, self.keys, ep_keys, self._task_ids)
        return np.asarray(actions)

    def learn(self, batch: dict[str, np.ndarray]) -> None:
        """One call of the update on a batch (S, U, B, ...); its metrics wait in :attr:`pending`."""
        self.state, metrics, self.keys = self._learn(self.state, batch, self.keys)
        self.pending.append(metrics)

    def observe(self, rewards: np.ndarray, valid: np.ndarray, truncated: np.ndarray, ended: np.ndarray) -> None:
        """The agent's ``observe_episode`` for the columns whose episode ``ended`` (S, N): rewards and
        valid (S, N, T), truncated (S, N)."""
        assert self._observe is not None
        self.state = self._observe(self.state, rewards, valid, truncated, ended, self._task_ids)

    def take_metrics(self) -> list[dict[str, np.ndarray]]:
        """The pending metrics, on the host, and none pending after."""
        taken = _on_host(self.pending)
        self.pending = []
        return taken

    def policy(self, ep_keys: np.ndarray) -> Any:
        """The deterministic policy for evaluation: obs (S * T, obs) seed-major -> actions (S * T, act),
        with each seed's episode keys (S, T, 2) (unused when greedy); the keys do not advance."""
        return partial(_greedy_numpy, self._greedy, self.state, self.keys, ep_keys, self._eval_task_ids)

    def checkpoint(self) -> dict[str, Any]:
        """The states, keys and pending metrics, on the host, for a checkpoint."""
        return {"state": jax.device_get(self.state), "keys": np.asarray(self.keys),
                "pending": _on_host(self.pending)}


def _on_host(metrics: list[dict[str, jax.Array]]) -> list[dict[str, np.ndarray]]:
    """Metrics of updates (dicts of (S, U) arrays) as numpy arrays. One ``np.asarray`` per array:
    ``jax.device_get`` of the list takes four times as long (120 ms for 1,000 updates of 6 metrics)."""
    return [{name: np.asarray(value) for name, value in update.items()} for update in metrics]


def _greedy_numpy(greedy: Any, state: Any, keys: jax.Array, ep_keys: np.ndarray, task_ids: jax.Array,
                  obs: np.ndarray) -> np.ndarray:
    """Evaluation actions (S * T, act) for one observation per seed and task (S * T, obs), seed-major;
    ep_keys (S, T, 2), task_ids (T,)."""
    n_seeds = ep_keys.shape[0]
    actions, _ = greedy(state, obs.reshape(n_seeds, -1, obs.shape[-1]), keys, ep_keys, task_ids)
    return np.asarray(actions).reshape(obs.shape[0], -1)
