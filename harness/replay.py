"""The replay: ring buffers of S seeds x N env columns, and the one n-step sampling rule.

Every env column of a job writes one transition per step at the same position, so one write
pointer serves them all. A column belongs to one task (``columns`` of a multi-task job are the
tasks' envs side by side), so a replay "per task" is the set of columns of that task, and drawing
a column and a position uniformly samples uniformly over every stored transition of every task.

:func:`positions` and :func:`nstep` are the sampling logic, written once over an array module: the
host backend runs them on numpy arrays (:class:`Replay`), the device backend on JAX arrays inside
its jitted loop (``harness.backends.device``). n-step targets stop at episode ends: rewards after
an episode ended are not summed, the bootstrap observation is the last one of the episode, and the
discount is 0 where the episode terminated (not where a time limit truncated it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

ARRAYS = ("obs", "action", "reward", "next_obs", "terminated", "ended")
"""The stored fields, in the order :meth:`Replay.add` takes them."""

Take = Callable[[str, Any], Any]
"""``take(field, positions)``: the stored values of ``field`` at ``positions`` (any shape P) of the
columns being sampled: ``(*P)`` for scalar fields, ``(*P, dim)`` for vector ones."""


def positions(ptr: Any, size: Any, offsets: Any, capacity: int) -> Any:
    """Ring positions of the draws ``offsets`` in ``[0, size - n_step + 1)`` counted from the oldest
    stored transition (``ptr - size``), for buffers of ``capacity`` positions."""
    return (ptr - size + offsets) % capacity


def usable(size: Any, n_step: int) -> Any:
    """How many stored positions have their n-step future stored: the newest n-1 do not."""
    return size - (n_step - 1)


def nstep(xp: Any, take: Take, base: Any, capacity: int, n_step: int, gamma: float) -> dict[str, Any]:
    """The n-step transitions starting at ring positions ``base`` (shape P), with ``xp`` numpy or
    jax.numpy: ``obs (*P, obs)``, ``action (*P, act)``, ``reward (*P)`` (the discounted sum up to
    the episode's end), ``discount (*P)`` (gamma**k, k the steps summed, or 0 where the episode
    terminated) and ``next_obs (*P, obs)``."""
    if n_step == 1:  # what the loop below gives for one step, in fewer array passes (most agents' case)
        return {"obs": take("obs", base), "action": take("action", base),
                "reward": take("reward", base).astype(xp.float32),
                "discount": (gamma * ~take("terminated", base)).astype(xp.float32), "next_obs": take("next_obs", base)}
    shape = base.shape
    reward = xp.zeros(shape, xp.float32)
    discount = xp.zeros(shape, xp.float32)
    first_next = take("next_obs", base)
    next_obs = xp.zeros(first_next.shape, xp.float32)
    alive = xp.ones(shape, bool)
    for k in range(n_step):
        pos = base if k == 0 else (base + k) % capacity
        ended = take("ended", pos)
        reward = reward + xp.where(alive, gamma**k * take("reward", pos), 0.0)
        next_obs = xp.where(alive[..., None], first_next if k == 0 else take("next_obs", pos), next_obs)
        stop = alive & (ended | (k == n_step - 1))
        discount = xp.where(stop, gamma ** (k + 1) * ~take("terminated", pos), discount)
        alive = alive & ~ended
    return {"obs": take("obs", base), "action": take("action", base), "reward": reward.astype(xp.float32),
            "discount": discount.astype(xp.float32), "next_obs": next_obs}


def positions_needed(replay_capacity: int, num_envs: int, budget: int, steps_per_iteration: int) -> int:
    """Ring positions per env column: the config's capacity (transitions per seed and task) shared by
    a task's ``num_envs`` envs, but no more than the job writes (``budget`` env steps, taken
    ``steps_per_iteration`` at a time), so that a short job does not hold a full-size buffer. The
    ring never wraps in either case, so sampling is the same."""
    return max(1, min(replay_capacity // num_envs, -(-budget // steps_per_iteration)))


def nbytes(seeds: int, columns: int, capacity: int, obs_dim: int, act_dim: int, components: int = 0) -> int:
    """Bytes of a :class:`Replay` of these sizes (``components``: reward components stored per
    transition, sub-steps times components)."""
    return seeds * columns * capacity * (4 * (2 * obs_dim + act_dim + 1 + components) + 2)


class Relabeller(Protocol):
    """What a reward-conditioned job's sampling needs (:class:`harness.conditioning.Conditioning`)."""

    def draw(self, rng: np.random.Generator, task: np.ndarray) -> tuple[Any, np.ndarray]:
        """ψ for sampled transitions of tasks ``task (*P)``: (ψ, the agent's input for it (*P, width))."""
        ...

    def reward(self, psi: Any, task: np.ndarray, components: np.ndarray) -> np.ndarray:
        """r_ψ (*P) of one step of the transitions from its reward components (*P, repeat, components)."""
        ...


class Replay:
    """Host ring buffers of S seeds x N env columns, arrays (S, N, C, ...), C positions per column.

    ``column_task (N,)`` gives each column's task index (all 0 in a single-task job); sampled
    batches carry it as ``task_id``. With ``components`` (sub-steps, components), every transition
    also keeps its reward components, from which a :class:`Relabeller` recomputes rewards.
    """

    def __init__(self, seeds: int, column_task: np.ndarray, capacity: int, obs_dim: int, act_dim: int,
                 components: tuple[int, int] | None = None) -> None:
        columns = len(column_task)
        cap = max(1, capacity)
        self.column_task = np.asarray(column_task, np.int32)  # (N,)
        self.obs = np.zeros((seeds, columns, cap, obs_dim), np.float32)
        self.action = np.zeros((seeds, columns, cap, act_dim), np.float32)
        self.reward = np.zeros((seeds, columns, cap), np.float32)
        self.next_obs = np.zeros((seeds, columns, cap, obs_dim), np.float32)
        self.terminated = np.zeros((seeds, columns, cap), bool)
        self.ended = np.zeros((seeds, columns, cap), bool)
        self.fields: tuple[str, ...] = ARRAYS
        if components is not None:  # (S, N, C, repeat, components)
            self.components = np.zeros((seeds, columns, cap, *components), np.float32)
            self.fields = (*ARRAYS, "components")
        self.ptr = 0
        self.size = 0

    @property
    def capacity(self) -> int:
        return self.obs.shape[2]

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, ended: np.ndarray, components: np.ndarray | None = None) -> None:
        """Add one transition per (seed, column): obs (S, N, obs), reward (S, N), ..., components
        (S, N, repeat, components) for a replay that keeps them."""
        p = self.ptr
        if components is not None:
            self.components[:, :, p] = components
        self.obs[:, :, p], self.action[:, :, p], self.reward[:, :, p] = obs, action, reward
        self.next_obs[:, :, p], self.terminated[:, :, p], self.ended[:, :, p] = next_obs, terminated, ended
        self.ptr = (p + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, count: int, batch: int, n_step: int, gamma: float,
               relabel: Relabeller | None = None) -> dict[str, np.ndarray]:
        """``count`` minibatches of ``batch`` n-step transitions per seed: arrays (S, count, batch, ...).

        With ``relabel`` every transition gets a ψ drawn for it: each of its n steps' rewards is r_ψ
        of the stored components (before the discounted sum), and ψ's input is appended to ``obs``
        and ``next_obs`` (obs grows by its width)."""
        seeds, columns, cap = self.reward.shape
        if usable(self.size, n_step) < 1:
            raise RuntimeError("replay holds too few transitions to sample")
        shape = (seeds, count, batch)
        s = np.arange(seeds)[:, None, None]  # (S, 1, 1)
        e = rng.integers(0, columns, shape)  # (S, count, B)
        base = positions(self.ptr, self.size, rng.integers(0, usable(self.size, n_step), shape), cap)

        task = self.column_task[e]  # (S, count, B)
        if relabel is None:
            def take(name: str, pos: np.ndarray) -> np.ndarray:
                return getattr(self, name)[s, e, pos]

            return {**nstep(np, take, base, cap, n_step, gamma), "task_id": task}
        psi, psi_input = relabel.draw(rng, task)  # psi_input (S, count, B, width)

        def take_relabelled(name: str, pos: np.ndarray) -> np.ndarray:
            if name == "reward":
                return relabel.reward(psi, task, self.components[s, e, pos])
            return getattr(self, name)[s, e, pos]

        out = nstep(np, take_relabelled, base, cap, n_step, gamma)
        for key in ("obs", "next_obs"):
            out[key] = np.concatenate([out[key], psi_input.astype(np.float32)], axis=-1)
        return {**out, "task_id": task}

    def state(self) -> dict[str, Any]:
        """The filled part of the buffers, for a checkpoint."""
        return {"arrays": {k: getattr(self, k)[:, :, : self.size] for k in self.fields},
                "ptr": self.ptr, "size": self.size}

    def restore(self, saved: dict[str, Any]) -> None:
        for k in self.fields:
            getattr(self, k)[:, :, : saved["size"]] = saved["arrays"][k]
        self.ptr, self.size = saved["ptr"], saved["size"]
