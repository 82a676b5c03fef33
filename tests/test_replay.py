"""The n-step rule of the replay (harness.replay.nstep), worked out by hand on a five-step buffer."""

from __future__ import annotations

import numpy as np

from harness.replay import nstep

# Positions 0..4 of one column: rewards 1..5; the episode terminates at position 2 (an absorbing
# state: ended and terminated), the next one starts at 3. next_obs at position p is (10 + p,).
REWARD = np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)
TERMINATED = np.array([False, False, True, False, False])
ENDED = TERMINATED.copy()
NEXT_OBS = (10.0 + np.arange(5, dtype=np.float32))[:, None]  # (5, 1)
OBS = np.arange(5, dtype=np.float32)[:, None]  # (5, 1)
ACTION = -np.arange(5, dtype=np.float32)[:, None]  # (5, 1)
FIELDS = {"reward": REWARD, "terminated": TERMINATED, "ended": ENDED, "next_obs": NEXT_OBS, "obs": OBS,
          "action": ACTION}


def take(name: str, pos: np.ndarray) -> np.ndarray:
    return FIELDS[name][pos]


def test_one_step_targets() -> None:
    out = nstep(np, take, np.array([0, 2, 3]), 5, 1, 0.5)
    # position 0: r = 1, discount 0.5, next obs 10; position 2 terminates: discount 0; position 3: 4, 0.5, 13.
    np.testing.assert_array_equal(out["reward"], [1.0, 3.0, 4.0])
    np.testing.assert_array_equal(out["discount"], [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(out["next_obs"][:, 0], [10.0, 12.0, 13.0])
    np.testing.assert_array_equal(out["obs"][:, 0], [0.0, 2.0, 3.0])
    np.testing.assert_array_equal(out["action"][:, 0], [-0.0, -2.0, -3.0])
    assert {k: v.dtype for k, v in out.items()} == {k: np.dtype(np.float32) for k in out}


def test_three_step_targets_stop_at_the_episode_end() -> None:
    out = nstep(np, take, np.array([0, 1, 2]), 5, 3, 0.5)
    # from 0: 1 + 0.5 * 2 + 0.25 * 3 = 2.75, terminated at 2 -> discount 0, next obs 12;
    # from 1: 2 + 0.5 * 3 = 3.5, stops at 2 (terminated) -> 0, next obs 12;
    # from 2: 3, terminated at once -> 0, next obs 12.
    np.testing.assert_array_equal(out["reward"], [2.75, 3.5, 3.0])
    np.testing.assert_array_equal(out["discount"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(out["next_obs"][:, 0], [12.0, 12.0, 12.0])


def test_two_step_targets_within_an_episode_bootstrap() -> None:
    out = nstep(np, take, np.array([3]), 5, 2, 0.5)
    # from 3: 4 + 0.5 * 5 = 6.5, no end within the two steps -> discount 0.5 ** 2, next obs 14.
    np.testing.assert_array_equal(out["reward"], [6.5])
    np.testing.assert_array_equal(out["discount"], [0.25])
    np.testing.assert_array_equal(out["next_obs"][:, 0], [14.0])


def test_one_step_rule_is_the_general_rule_for_one_step() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 5, 64)
    one = nstep(np, take, base, 5, 1, 0.99)
    # The general loop for one step, written out: the reward, gamma or 0 where terminated, the next obs.
    np.testing.assert_array_equal(one["reward"], REWARD[base])
    np.testing.assert_array_equal(one["discount"], np.where(TERMINATED[base], 0.0, 0.99).astype(np.float32))
    np.testing.assert_array_equal(one["next_obs"], NEXT_OBS[base])
