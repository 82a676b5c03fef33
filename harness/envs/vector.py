"""Several envs stepped together, with auto-reset and episode bookkeeping, and policy evaluation.

:class:`VecEnv` steps its envs one after another in this process. Envs of different tasks may be
stepped together when the vector is given padded sizes: observations are zero-padded to the
largest observation size, and each env takes the first ``action_size`` entries of its action row
(a multi-task policy acts in the largest action space). :class:`ParallelVecEnv` spreads the envs
over worker processes, each running a :class:`VecEnv` of a contiguous slice, so that the host
simulators of a many-task job use every core; it steps the same envs to the same results.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from harness.envs.base import Env
from harness.errors import InputError
from harness.processes import die_with_parent, without_main

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
    ended: bool
    """Whether any env's episode ended this step (terminated or truncated)."""
    components: np.ndarray | None = None
    """(n, repeat, components) float64: each env's reward components of this step's sub-steps, from a
    vector made with ``components``; NaN where an env measured none (not stepped, sub-steps after a
    termination, columns past its family's). None from a vector made without."""


class Vector(Protocol):
    """n envs stepped together: :class:`VecEnv` or :class:`ParallelVecEnv`."""

    num_envs: int
    observation_size: int
    action_size: int

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray: ...

    def step(self, actions: np.ndarray, active: np.ndarray | None = None, auto_reset: bool = True) -> StepResult: ...

    def state(self) -> list[tuple[int | None, int, list[np.ndarray]]]: ...

    def restore(self, saved: Sequence[tuple[int | None, int, list[np.ndarray]]]) -> np.ndarray: ...

    def close(self) -> None: ...


class VecEnv:
    """A list of :class:`Env` stepped in lockstep; an env whose episode ends is reset at once.

    Episodes are seeded: env i reset with seed ``s`` starts its k-th next episode (auto-reset) with
    the seed :func:`episode_seed` ``(s, k)``. The vector remembers each env's seed, episode count and
    the actions of its current episode, so :meth:`state` and :meth:`restore` bring every env back to
    where it was (the episode is replayed from its seed: simulators are deterministic for the same
    seed and actions). An env reset with seed None continues its own random stream.
    Without ``sizes`` all envs must share their observation and action sizes; with ``sizes``
    (observation, action), each at least every env's own, observations are zero-padded and action
    rows cut to each env's size. With ``components`` (a width), every step also returns the envs'
    reward components (envs made with ``components=True``), padded with NaN to that width.
    """

    def __init__(self, envs: Sequence[Env], sizes: tuple[int, int] | None = None, components: int = 0) -> None:
        self.envs = list(envs)
        self.num_envs = len(self.envs)
        self.observation_size, self.action_size = _common_sizes(self.envs) if sizes is None else sizes
        too_big = [e.task.name for e in self.envs
                   if e.observation_size > self.observation_size or e.action_size > self.action_size]
        if too_big:
            raise ValueError(f"sizes {sizes} are smaller than the envs of {too_big}")
        self._obs_sizes = [e.observation_size for e in self.envs]
        self._act_sizes = [e.action_size for e in self.envs]
        self._success = [e.task.metric == "success" for e in self.envs]
        self._returns = [0.0] * self.num_envs  # return of each env's episode so far
        self._nans = np.full(self.num_envs, np.nan)  # (n,) the episode figures of a step where none ended
        self._nans.flags.writeable = False
        self._obs = np.zeros((self.num_envs, self.observation_size), np.float32)  # (n, obs)
        self._seeds: list[int | None] = [None] * self.num_envs  # the seed of each env's last reset()
        self._episodes = [0] * self.num_envs  # episodes each env started since then
        self._actions: list[list[np.ndarray]] = [[] for _ in self.envs]  # each env's current episode
        self._components = components
        self._repeat = max(e.task.action_repeat for e in self.envs) if self.envs else 1

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        """Start an episode in every env, env i seeded with ``seeds[i]`` (None: its own stream):
        obs ``(n, obs)``."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
        for i, (env, seed) in enumerate(zip(self.envs, seeds, strict=True)):
            self._seeds[i], self._episodes[i], self._actions[i] = None if seed is None else int(seed), 0, []
            self._obs[i, : self._obs_sizes[i]] = env.reset(seed=self._seeds[i])[0]
        self._returns = [0.0] * self.num_envs
        return self._obs.copy()

    def step(self, actions: np.ndarray, active: np.ndarray | None = None, auto_reset: bool = True) -> StepResult:
        """Step every env (or the ``active (n,)`` ones) with its row of ``actions (n, act)``; reset the
        envs whose episode ended, unless ``auto_reset`` is False (then they wait, with their final
        observation, until :meth:`reset`). The result's arrays are the caller's, but read-only when
        shared: ``next_obs`` is ``obs`` itself and the episode figures are one array of NaN at a step
        where no episode ended."""
        # A private float64 copy (float32 converts exactly): every env takes a row of it, and the
        # rows are kept as the episode's actions. Per-env values are written into the outputs one by
        # one: numpy's per-call cost dominates with a few envs, and this runs every step.
        actions = np.array(actions, dtype=np.float64)
        if actions.shape != (self.num_envs, self.action_size):
            raise ValueError(f"actions shape {actions.shape}, expected ({self.num_envs}, {self.action_size})")
        n = self.num_envs
        reward = np.zeros(n)  # (n,)
        terminated = np.zeros(n, bool)  # (n,)
        truncated = np.zeros(n, bool)  # (n,)
        finals: list[tuple[int, np.ndarray, float, float]] = []  # (env, final obs, return, success) of ended episodes
        measured = np.full((n, self._repeat, self._components), np.nan) if self._components else None
        for i, env in enumerate(self.envs):
            if active is not None and not active[i]:
                continue
            action = actions[i, : self._act_sizes[i]]
            obs, r, term, trunc, info = env.step(action)
            if measured is not None:
                values = env.components  # type: ignore[attr-defined]
                measured[i, : values.shape[0], : values.shape[1]] = values
            self._actions[i].append(action)
            reward[i] = r
            self._returns[i] += r
            if term or trunc:
                terminated[i], truncated[i] = term, trunc
                finals.append((i, obs, self._returns[i], info["success"] if self._success[i] else np.nan))
                self._returns[i] = 0.0
                if auto_reset:
                    self._episodes[i] += 1
                    self._actions[i] = []
                    obs = env.reset(seed=self._episode_seed(i))[0]
            self._obs[i, : self._obs_sizes[i]] = obs
        out = self._obs.copy()
        if not finals:
            return StepResult(out, out, reward, terminated, truncated, self._nans, self._nans, False, measured)
        next_obs, episode_return, episode_success = out.copy(), np.full(n, np.nan), np.full(n, np.nan)
        for i, final, total, success in finals:
            next_obs[i, : self._obs_sizes[i]] = final
            episode_return[i], episode_success[i] = total, success
        return StepResult(out, next_obs, reward, terminated, truncated, episode_return, episode_success, True, measured)

    def state(self) -> list[tuple[int | None, int, list[np.ndarray]]]:
        """Each env's (seed, episodes since, actions of the current episode), for a checkpoint."""
        return [(seed, count, list(actions))
                for seed, count, actions in zip(self._seeds, self._episodes, self._actions, strict=True)]

    def restore(self, saved: Sequence[tuple[int | None, int, list[np.ndarray]]]) -> np.ndarray:
        """Bring every env back to a :meth:`state` (replaying its current episode): obs ``(n, obs)``."""
        for i, (env, (seed, count, actions)) in enumerate(zip(self.envs, saved, strict=True)):
            if seed is None:
                raise ValueError(f"{env.task.name}: an env reset without a seed cannot be restored")
            self._seeds[i], self._episodes[i], self._actions[i] = seed, count, list(actions)
            obs = env.reset(seed=self._episode_seed(i))[0]
            self._returns[i] = 0.0
            for action in actions:
                obs, reward, _, _, _ = env.step(action)
                self._returns[i] += reward
            self._obs[i, : self._obs_sizes[i]] = obs
        return self._obs.copy()

    def close(self) -> None:
        """Close every env."""
        for env in self.envs:
            env.close()

    def _episode_seed(self, i: int) -> int | None:
        seed = self._seeds[i]
        return None if seed is None else episode_seed(seed, self._episodes[i])


def episode_seed(seed: int, episode: int) -> int:
    """The seed of an env's ``episode``-th episode after a reset with ``seed`` (the 0th: ``seed``)."""
    if episode == 0:
        return seed
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0] >> 1)


class ParallelVecEnv:
    """The envs ``(task name, seed)`` spread over ``workers`` processes in contiguous slices, each a
    :class:`VecEnv` padded to ``sizes``; the same results as one :class:`VecEnv` of them all.

    Workers are spawned (the parent has JAX loaded, which must not be forked) and die with this
    process. An error in a worker is raised here as a RuntimeError with its traceback. ``components``
    as for :class:`VecEnv`.
    """

    def __init__(self, specs: Sequence[tuple[str, int]], sizes: tuple[int, int], workers: int,
                 components: int = 0) -> None:
        self.num_envs = len(specs)
        self.observation_size, self.action_size = sizes
        cuts = np.linspace(0, len(specs), min(workers, len(specs)) + 1).round().astype(int)
        self._slices = [(int(a), int(b)) for a, b in itertools.pairwise(cuts)]
        ctx = mp.get_context("spawn")
        self._conns: list[Any] = []
        self._procs: list[Any] = []
        for a, b in self._slices:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, list(specs[a:b]), sizes, components), daemon=True)
            with without_main():
                proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        for conn in self._conns:
            self._receive(conn)

    def reset(self, seeds: Sequence[int | None]) -> np.ndarray:
        """See :meth:`VecEnv.reset`."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
        for conn, (a, b) in zip(self._conns, self._slices, strict=True):
            conn.send(("reset", (list(seeds[a:b]),)))
        return np.concatenate([self._receive(conn) for conn in self._conns])

    def step(self, actions: np.ndarray, active: np.ndarray | None = None, auto_reset: bool = True) -> StepResult:
        """See :meth:`VecEnv.step`."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, self.action_size):
            raise ValueError(f"actions shape {actions.shape}, expected ({self.num_envs}, {self.action_size})")
        for conn, (a, b) in zip(self._conns, self._slices, strict=True):
            conn.send(("step", (actions[a:b], None if active is None else active[a:b], auto_reset)))
        parts: list[StepResult] = [self._receive(conn) for conn in self._conns]

        def joined(name: str) -> np.ndarray:
            return np.concatenate([getattr(part, name) for part in parts])

        return StepResult(joined("obs"), joined("next_obs"), joined("reward"), joined("terminated"),
                          joined("truncated"), joined("episode_return"), joined("episode_success"),
                          any(part.ended for part in parts),
                          None if parts[0].components is None else joined("components"))

    def state(self) -> list[tuple[int | None, int, list[np.ndarray]]]:
        """See :meth:`VecEnv.state`."""
        for conn in self._conns:
            conn.send(("state", ()))
        return [item for conn in self._conns for item in self._receive(conn)]

    def restore(self, saved: Sequence[tuple[int | None, int, list[np.ndarray]]]) -> np.ndarray:
        """See :meth:`VecEnv.restore`."""
        for conn, (a, b) in zip(self._conns, self._slices, strict=True):
            conn.send(("restore", (list(saved[a:b]),)))
        return np.concatenate([self._receive(conn) for conn in self._conns])

    def close(self) -> None:
        """Close every env and stop the workers."""
        for conn in self._conns:
            try:
                conn.send(("close", ()))
                self._receive(conn)
            except (OSError, EOFError, RuntimeError):
                pass
            conn.close()
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()

    @staticmethod
    def _receive(conn: Any) -> Any:
        status, value = conn.recv()
        if status == "error":
            raise RuntimeError(f"env worker failed:\n{value}")
        return value


def _serve(conn: Any, specs: list[tuple[str, int]], sizes: tuple[int, int], components: int) -> None:
    """A worker of :class:`ParallelVecEnv`: make the envs, then answer reset/step/close calls."""
    from harness import envs  # imported here: the spawned worker starts bare

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the coordinator decides
    os.environ.setdefault("MUJOCO_GL", "disable")
    try:
        vec = VecEnv([envs.make(task, seed, components > 0) for task, seed in specs], sizes, components)
        conn.send(("ok", None))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        command, args = conn.recv()
        try:
            if command == "close":
                vec.close()
                conn.send(("ok", None))
                return
            conn.send(("ok", getattr(vec, command)(*args)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


Score = Callable[[np.ndarray], np.ndarray]
"""``score(components (n, repeat, components)) -> rewards (n, P)``: one step's rewards under P reward
parameterisations, computed from its reward components (:func:`harness.rewards.relabel`)."""


def evaluate(envs: Sequence[Env] | Vector, policy: Policy, episodes: int,
             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run ``episodes`` full episodes in every env: ``(returns, successes)``, each ``(n, episodes)``.

    ``envs`` is a list of envs or a vector of them. Env i starts with ``reset(seed=s_i)``, the s_i
    drawn from ``numpy.random.SeedSequence(seed)``, and continues its own stream for later episodes,
    so the same seed evaluates on the same initial states. The policy sees all n observations at
    every step; envs whose episode already ended wait for the others (their rows of the policy's
    output are ignored). Successes are the episodes' ``info["success"]`` (0/1), NaN for
    return-metric tasks. A deterministic policy gives the same numbers for the same seed.
    """
    returns, successes, _ = evaluate_scored(envs, policy, episodes, seed, None)
    return returns, successes


def evaluate_scored(envs: Sequence[Env] | Vector, policy: Policy, episodes: int, seed: int,
                    score: Score | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`evaluate`, and with ``score`` (envs that measure reward components) the episodes'
    returns under its P reward parameterisations: ``(n, episodes, P)`` (else None)."""
    vec: Vector = VecEnv(envs) if isinstance(envs, Sequence) else envs
    n = vec.num_envs
    returns = np.zeros((n, episodes))  # (n, episodes)
    successes = np.full((n, episodes), np.nan)  # (n, episodes)
    scored: list[np.ndarray] = []  # (n, P) per episode
    seeds = np.random.SeedSequence(seed).generate_state(n)  # (n,) uint32
    for episode in range(episodes):
        obs = vec.reset([int(s) for s in seeds] if episode == 0 else [None] * n)  # (n, obs)
        running = np.ones(n, bool)
        total = None  # (n, P) returns so far under the scored parameterisations
        while running.any():
            out = vec.step(np.asarray(policy(obs)), active=running, auto_reset=False)
            if score is not None:
                assert out.components is not None, "score needs a vector that measures reward components"
                rewards = np.where(running[:, None], score(out.components), 0.0)  # (n, P)
                total = rewards if total is None else total + rewards
            obs = out.next_obs
            ended = running & (out.terminated | out.truncated)
            returns[ended, episode] = out.episode_return[ended]
            successes[ended, episode] = out.episode_success[ended]
            running &= ~ended
        if total is not None:
            scored.append(total)
    return returns, successes, np.stack(scored, axis=1) if scored else None


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


def padded_sizes(envs: Sequence[Env]) -> tuple[int, int]:
    """The largest observation and action sizes of ``envs`` (what a multi-task job pads to)."""
    return max(e.observation_size for e in envs), max(e.action_size for e in envs)
