"""Several envs stepped together, with auto-reset and episode bookkeeping, and policy evaluation.

The envs are stepped one after another in this process: dm-control, MetaWorld and MyoSuite are
CPU-bound Python simulators (a Playground env runs a jitted step on the CPU), and the runner puts
parallelism across processes or machines instead, one group of seeds per worker. All envs of a
:class:`VecEnv` must share observation and action sizes; they may run different tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from harness.envs.base import Env
from harness.errors import InputError

Policy = Callable[[np.ndarray], np.ndarray]
"""``policy(obs (n, obs) float32) -> actions (n, act)`` in [-1, 1]."""


class StepResult(NamedTuple):
    """What one :meth:`VecEnv.step` returns; n = number of envs."""

    obs: np.ndarray  # (n, obs) float32: the observation to act on next (a reset's where an episode ended)
    next_obs: np.ndarray  # (n, obs) float32: the true next observation (the final one where an episode ended)
    reward: np.ndarray  # (n,) float64
    terminated: np.ndarray  # (n,) bool
    truncated: np.ndarray  # (n,) bool
    episode_return: np.ndarray  # (n,) float64: NaN except where an episode ended this step: its return
    episode_success: np.ndarray  # (n,) float64: likewise its success (0/1); NaN for return-metric tasks


class VecEnv:
    """A list of :class:`Env` stepped in lockstep; an env whose episode ends is reset at once.

    Auto-resets call ``reset()`` without a seed, so every env continues its own random stream.
    """

    def __init__(self, envs: Sequence[Env]) -> None:
        self.envs = list(envs)
        self.num_envs = len(self.envs)
        self.observation_size, self.action_size = _common_sizes(self.envs)
        self._returns = np.zeros(self.num_envs)  # (n,) return of each env's episode so far
        self._obs = np.zeros((self.num_envs, self.observation_size), np.float32)  # (n, obs)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        """Start an episode in every env, env i seeded with ``seeds[i]``: obs ``(n, obs)``."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
        for i, (env, seed) in enumerate(zip(self.envs, seeds, strict=True)):
            self._obs[i] = env.reset(seed=int(seed))[0]
        self._returns[:] = 0.0
        return self._obs.copy()

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every env with its row of ``actions (n, act)``; auto-reset the envs whose episode ended."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, self.action_size):
            raise ValueError(f"actions shape {actions.shape}, expected ({self.num_envs}, {self.action_size})")
        n = self.num_envs
        next_obs = np.zeros((n, self.observation_size), np.float32)
        reward = np.zeros(n)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        episode_return = np.full(n, np.nan)
        episode_success = np.full(n, np.nan)
        for i, env in enumerate(self.envs):
            obs, reward[i], terminated[i], truncated[i], info = env.step(actions[i])
            next_obs[i] = obs
            self._returns[i] += reward[i]
            if terminated[i] or truncated[i]:
                episode_return[i] = self._returns[i]
                if env.task.metric == "success":
                    episode_success[i] = info["success"]
                self._returns[i] = 0.0
                obs = env.reset()[0]
            self._obs[i] = obs
        return StepResult(self._obs.copy(), next_obs, reward, terminated, truncated, episode_return,
                          episode_success)

    def close(self) -> None:
        """Close every env."""
        for env in self.envs:
            env.close()


def evaluate(envs: Sequence[Env], policy: Policy, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ``episodes`` full episodes in every env: ``(returns, successes)``, each ``(n, episodes)``.

    Env i starts with ``reset(seed=s_i)``, the s_i drawn from ``numpy.random.SeedSequence(seed)``,
    and continues its own stream for later episodes, so the same seed evaluates on the same initial
    states. The policy sees all n observations at every step; envs whose episode already ended wait
    for the others (their rows of the policy's output are ignored). Successes are the episodes'
    ``info["success"]`` (0/1), NaN for return-metric tasks. A deterministic policy gives the same
    numbers for the same seed.
    """
    n = len(envs)
    _common_sizes(envs)
    returns = np.zeros((n, episodes))  # (n, episodes)
    successes = np.full((n, episodes), np.nan)  # (n, episodes)
    seeds = np.random.SeedSequence(seed).generate_state(n)  # (n,) uint32
    for episode in range(episodes):
        obs = np.stack([env.reset(seed=int(s) if episode == 0 else None)[0]
                        for env, s in zip(envs, seeds, strict=True)])  # (n, obs)
        running = np.ones(n, bool)
        while running.any():
            actions = np.asarray(policy(obs))  # (n, act)
            for i in np.flatnonzero(running).tolist():
                obs[i], reward, terminated, truncated, info = envs[i].step(actions[i])
                returns[i, episode] += reward
                if terminated or truncated:
                    running[i] = False
                    if envs[i].task.metric == "success":
                        successes[i, episode] = info["success"]
    return returns, successes


def _common_sizes(envs: Sequence[Env]) -> tuple[int, int]:
    """The (observation, action) sizes all ``envs`` share; InputError naming the tasks if they differ."""
    if not envs:
        raise InputError("no envs to step")
    sizes = {(env.observation_size, env.action_size) for env in envs}
    if len(sizes) != 1:
        found = ", ".join(f"{e.task.name} (obs {e.observation_size}, act {e.action_size})" for e in envs)
        raise InputError(f"envs stepped together must share observation and action sizes: {found}")
    (obs_size, act_size), = sizes
    return obs_size, act_size
