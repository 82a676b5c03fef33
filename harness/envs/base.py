"""The environment interface every suite adapter implements, and the episode logic they share.

An :class:`Env` is gymnasium-like but plain: flat float32 observations, actions in [-1, 1], float
rewards, ``dict[str, float]`` infos. Everything crossing the interface is a numpy array or a Python
number, so an env that lives in another process (HumanoidBench will run in its own Python
environment behind a subprocess) can implement it by forwarding these calls.

Every adapter is a :class:`Simulator` (one simulator step at a time, actions already in [-1, 1])
wrapped in :class:`EpisodeEnv`, which owns what is the same for every suite: action checks and
clipping, action repeat, truncation at the catalog's episode length, and episode success.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from harness.catalog import Task

Info = dict[str, float]


class Env(Protocol):
    """One environment of one task, with the harness's conventions.

    - Observations are flat ``float32`` arrays of shape ``(observation_size,)``.
    - Actions are arrays of shape ``(action_size,)`` in [-1, 1]; the adapter rescales them to the
      simulator's bounds. Values outside [-1, 1] are clipped to it; a wrong shape or a non-finite
      value raises ``ValueError``.
    - One ``step`` is ``task.action_repeat`` simulator steps with the same action; the rewards of
      those steps are summed. An episode is truncated after ``task.episode_length //
      task.action_repeat`` steps (the catalog counts simulator steps).
    - ``info["success"]`` (0.0 or 1.0) is present, at reset and at every step, for tasks whose metric
      is ``"success"``: 1.0 once the task has been solved at any step of the current episode, so the
      last step's value is the episode's success.
    - ``reset(seed)`` re-seeds the env: the same seed gives the same initial observation and, for the
      same actions, the same trajectory. ``reset()`` continues the env's own random stream. The first
      ``reset()`` of an env made with seed ``s`` equals ``reset(seed=s)``.
    - ``step`` before the first ``reset`` or after the episode ended raises ``RuntimeError``.
    """

    task: Task
    """The catalog task this env runs (its episode length and action repeat apply)."""
    observation_size: int
    """Length of the flat observation vector."""
    action_size: int
    """Length of the action vector."""

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, Info]:
        """Start an episode: ``(obs (observation_size,) float32, info)``."""
        ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, Info]:
        """Apply ``action (action_size,)``: ``(obs, reward, terminated, truncated, info)``."""
        ...

    def close(self) -> None:
        """Release the simulator."""
        ...


class SimStep(NamedTuple):
    """The outcome of one simulator step."""

    obs: npt.NDArray[np.float32]  # (observation_size,)
    reward: float
    terminated: bool
    """The episode reached an absorbing state (not a time limit)."""
    solved: bool
    """The task's own success signal at this step (False for tasks without one)."""
    components: tuple[float, ...] | None = None
    """The task's reward components after this step, in its family's order (:mod:`harness.rewards`),
    from a simulator asked to measure them; None otherwise."""


class Simulator(Protocol):
    """One simulator instance seen one simulator step at a time; what each suite adapter provides."""

    observation_size: int
    action_size: int

    def reset(self, seed: int | None) -> npt.NDArray[np.float32]:
        """Start an episode (re-seeding first when ``seed`` is given): obs ``(observation_size,)``."""
        ...

    def step(self, action: npt.NDArray[np.float64]) -> SimStep:
        """One simulator step with ``action (action_size,)`` already checked and clipped to [-1, 1]."""
        ...

    def close(self) -> None:
        """Release the simulator."""
        ...


def rescale(action: npt.NDArray[np.float64], low: npt.NDArray[np.float64],
            high: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Map an action in [-1, 1] linearly onto ``[low, high]`` (all three of shape ``(action_size,)``)."""
    return low + (action + 1.0) * 0.5 * (high - low)


class EpisodeEnv:
    """An :class:`Env` made of a :class:`Simulator` and the episode rules of a catalog task."""

    def __init__(self, task: Task, simulator: Simulator) -> None:
        self.task = task
        self.observation_size = simulator.observation_size
        self.action_size = simulator.action_size
        self._simulator = simulator
        self._max_steps = task.episode_length // task.action_repeat
        self._repeat = task.action_repeat
        self._success_metric = task.metric == "success"
        self._steps = 0
        self._solved = False
        self._running = False
        self.components: np.ndarray | None = None
        """(action_repeat, components) of the last step, when the simulator measures them: each
        sub-step's reward components, NaN for the sub-steps after a termination."""

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, Info]:
        """See :class:`Env`."""
        obs = self._simulator.reset(seed)
        self._steps, self._solved, self._running = 0, False, True
        return obs, self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, Info]:
        """See :class:`Env`."""
        if not self._running:
            raise RuntimeError(f"{self.task.name}: step() needs reset() first (and after an episode ends)")
        act = np.asarray(action, dtype=np.float64)
        if act.shape != (self.action_size,):
            raise ValueError(f"{self.task.name}: action shape {act.shape}, expected ({self.action_size},)")
        # Plain Python on a handful of floats is several times faster than numpy's reductions, and
        # this runs at every step. A NaN makes the sum NaN wherever it is (min and max may skip it);
        # only then, or for a value outside [-1, 1], are the exact check and the clip needed.
        values = act.tolist()
        if not (min(values) >= -1.0 and max(values) <= 1.0 and math.isfinite(sum(values))):
            if not np.all(np.isfinite(act)):
                raise ValueError(f"{self.task.name}: action has non-finite values: {act}")
            act = np.clip(act, -1.0, 1.0)
        reward, terminated = 0.0, False
        measured = []
        for _ in range(self._repeat):
            out = self._simulator.step(act)
            obs = out.obs
            reward += out.reward
            if out.components is not None:
                measured.append(out.components)
            self._solved = self._solved or out.solved
            if out.terminated:
                terminated = True
                break
        if measured:
            self.components = np.full((self._repeat, len(measured[0])), np.nan)
            self.components[: len(measured)] = measured
        self._steps += 1
        truncated = not terminated and self._steps >= self._max_steps
        self._running = not (terminated or truncated)
        return obs, reward, terminated, truncated, self._info()

    def close(self) -> None:
        """See :class:`Env`."""
        self._running = False
        self._simulator.close()

    def _info(self) -> Info:
        return {"success": float(self._solved)} if self._success_metric else {}
