"""HumanoidBench's tasks for the catalog: names, episode lengths and normalisation references.

Plain data, imported by :mod:`harness.catalog`; loads no simulator.

Every task id of HumanoidBench (commit 791405f, the one ``harness install humanoidbench`` pins)
that ships a model for the ``h1`` and ``h1hand`` robots is here, plus ``h1strong-highbar_hard``
(the high-bar task needs the stronger hands): 20 + 30 + 1 = 51 tasks. Episode lengths are the
``max_episode_steps`` of each task's class (1000 steps; 500 for push, basketball, cube, kitchen
and the two insert tasks). HumanoidBench applies its frame skip (10 physics steps) inside the
env, so the catalog's action repeat is 1.

Normalisation follows SimbaV2 and BRC: ``score = (return - random) / (success_bar - random)``.
``success_bar`` is HumanoidBench's own threshold per task (``env.unwrapped.task.success_bar``;
BRC's and SimbaV2's tables copy the same values). ``random`` is the mean return of uniform random
actions over 10 seeds x 10 episodes, from BRC's published table (``score_normalization.py``,
identical to SimbaV2's ``HB_RANDOM_SCORE``) where it lists the task, from SimbaV2's table for
``h1strong-highbar_hard``, and otherwise measured here with the harness's ``random`` agent by
``benchmarks/humanoidbench_random.py`` (10 seeds x 10 episodes, mujoco 3.17.0, dm-control 1.0.50,
gymnasium 1.x, HumanoidBench at the pinned commit with :mod:`harness.envs.humanoidbench_compat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Robot = Literal["h1", "h1hand", "h1strong"]
RandomSource = Literal["brc", "simbav2", "measured"]

# Tasks whose episodes are 500 steps (their classes set max_episode_steps = 500).
SHORT_EPISODES = frozenset({"push", "basketball", "cube", "kitchen", "insert_normal", "insert_small"})

# HumanoidBench's success_bar per task word (the class attribute; crawl's is 700 for h1 and
# h1hand alike: BRC's table lists 800 for h1hand-crawl, a value the code does not have).
SUCCESS_BAR: dict[str, float] = {
    "walk": 700.0, "stand": 800.0, "run": 700.0, "reach": 12000.0, "hurdle": 700.0, "crawl": 700.0,
    "maze": 1200.0, "sit_simple": 750.0, "sit_hard": 750.0, "balance_simple": 800.0,
    "balance_hard": 800.0, "stair": 700.0, "slide": 700.0, "pole": 700.0, "push": 700.0,
    "cabinet": 2500.0, "highbar_simple": 750.0, "highbar_hard": 750.0, "door": 600.0, "truck": 3000.0,
    "cube": 370.0, "bookshelf_simple": 2000.0, "bookshelf_hard": 2000.0, "basketball": 1200.0,
    "window": 650.0, "spoon": 650.0, "kitchen": 4.0, "package": 1500.0, "powerlift": 800.0,
    "room": 400.0, "insert_small": 350.0, "insert_normal": 350.0,
}

LOCOMOTION = ("walk", "stand", "run", "reach", "hurdle", "crawl", "maze", "sit_simple", "sit_hard",
              "balance_simple", "balance_hard", "stair", "slide", "pole")
# BRC's HumanoidBench h1 set (its results/humanoidbench folder).
BRC_H1 = ("walk", "stand", "run", "hurdle", "crawl", "maze", "pole", "slide", "stair")
# Tasks with a model for the plain h1 robot beyond the 14 locomotion ones.
H1_EXTRA = ("basketball", "door", "highbar_simple", "package", "push", "truck")
H1HAND_MANIPULATION = ("push", "cabinet", "door", "truck", "cube", "bookshelf_simple", "bookshelf_hard",
                       "basketball", "window", "spoon", "kitchen", "package", "powerlift", "room",
                       "insert_small", "insert_normal")
ROBOT_TASKS: dict[Robot, tuple[str, ...]] = {
    "h1": (*LOCOMOTION, *H1_EXTRA),
    "h1hand": (*LOCOMOTION, *H1HAND_MANIPULATION),
    "h1strong": ("highbar_hard",),
}


@dataclass(frozen=True)
class RandomReturn:
    """The mean episode return of uniform random actions on one task, and where it comes from."""

    value: float
    source: RandomSource


# BRC's score_normalization.py (HB_RANDOM_SCORE; SimbaV2 publishes the same numbers), SimbaV2's
# value for h1strong-highbar_hard, and our measurements (benchmarks/humanoidbench_random.py).
RANDOM_RETURN: dict[str, RandomReturn] = {
    **{env_id: RandomReturn(value, "brc") for env_id, value in {
        "h1-walk-v0": 2.377, "h1-stand-v0": 10.545, "h1-run-v0": 2.02, "h1-reach-v0": 260.302,
        "h1-hurdle-v0": 2.214, "h1-crawl-v0": 272.658, "h1-maze-v0": 106.441, "h1-sit_simple-v0": 9.393,
        "h1-sit_hard-v0": 2.448, "h1-balance_simple-v0": 9.391, "h1-balance_hard-v0": 9.044,
        "h1-stair-v0": 3.112, "h1-slide-v0": 3.191, "h1-pole-v0": 20.09,
        "h1hand-walk-v0": 2.505, "h1hand-stand-v0": 11.973, "h1hand-run-v0": 1.927,
        "h1hand-reach-v0": -50.024, "h1hand-hurdle-v0": 2.371, "h1hand-crawl-v0": 278.868,
        "h1hand-maze-v0": 106.233, "h1hand-sit_simple-v0": 10.768, "h1hand-sit_hard-v0": 2.477,
        "h1hand-balance_simple-v0": 10.17, "h1hand-balance_hard-v0": 10.032, "h1hand-stair-v0": 3.161,
        "h1hand-slide-v0": 3.142, "h1hand-pole-v0": 19.721,
        "h1hand-push-v0": -526.8, "h1hand-cabinet-v0": 37.733, "h1hand-door-v0": 2.771,
        "h1hand-truck-v0": 562.419, "h1hand-cube-v0": 4.787, "h1hand-bookshelf_simple-v0": 16.777,
        "h1hand-bookshelf_hard-v0": 14.848, "h1hand-basketball-v0": 8.979, "h1hand-window-v0": 2.713,
        "h1hand-spoon-v0": 4.661, "h1hand-kitchen-v0": 0.0, "h1hand-package-v0": -10040.932,
        "h1hand-powerlift-v0": 17.638, "h1hand-room-v0": 3.018, "h1hand-insert_small-v0": 1.653,
        "h1hand-insert_normal-v0": 1.673,
    }.items()},
    "h1strong-highbar_hard-v0": RandomReturn(0.178, "simbav2"),
    # benchmarks/humanoidbench_random.py, 2026-12-03: mean over 10 seeds x 10 episodes (standard error
    # over the 10 seed means): basketball 9.282 (0.203), door 3.458 (0.115), highbar_simple 8.802
    # (0.398), package -7702.833 (453.183), push -230.642 (26.578), truck 548.411 (2.214). The same
    # script gives 4.058 (0.238) on h1-walk and 16.007 (0.415) on h1-stand, where BRC publishes
    # 2.377 and 10.545: our random returns run higher than theirs on those two tasks.
    **{env_id: RandomReturn(value, "measured") for env_id, value in {
        "h1-basketball-v0": 9.282, "h1-door-v0": 3.458, "h1-highbar_simple-v0": 8.802,
        "h1-package-v0": -7702.833, "h1-push-v0": -230.642, "h1-truck-v0": 548.411,
    }.items()},
}


@dataclass(frozen=True)
class HumanoidBenchTask:
    """One HumanoidBench task as the catalog lists it."""

    robot: Robot
    word: str
    """HumanoidBench's task word: ``walk``, ``bookshelf_simple``, ..."""

    @property
    def env_id(self) -> str:
        """HumanoidBench's gymnasium id: ``h1hand-bookshelf_simple-v0``."""
        return f"{self.robot}-{self.word}-v0"

    @property
    def short(self) -> str:
        """The catalog's task part, hyphens only: ``h1hand-bookshelf-simple``."""
        return f"{self.robot}-{self.word.replace('_', '-')}"

    @property
    def episode_length(self) -> int:
        return 500 if self.word in SHORT_EPISODES else 1000

    @property
    def aliases(self) -> tuple[str, ...]:
        """Names published results use: the gymnasium id with and without ``-v0``, hyphenated,
        and FastTD3's ``h1hand_walk``."""
        plain = f"{self.robot}-{self.word}"
        return tuple(sorted({self.env_id, plain, f"{self.short}-v0", self.short,
                             f"{self.robot}_{self.word}"}))


def humanoidbench_tasks() -> tuple[HumanoidBenchTask, ...]:
    """Every HumanoidBench task of the catalog, robot by robot."""
    return tuple(HumanoidBenchTask(robot, word) for robot, words in ROBOT_TASKS.items() for word in words)
