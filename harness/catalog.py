"""The task catalog: canonical task names, their metric, episode length and normalisation.

A canonical name is ``<suite>/<task>``: ``dmc/dog-run``, ``metaworld/assembly``,
``myosuite/myo-reach``, ``playground/CheetahRun``. Names used by published results map to them
through aliases (TD-MPC2's ``cup-catch`` and ``mw-assembly``, BRO's ``finger-turn`` and
``assembly-v2-goal-observable``, ...), all in one alias table (:func:`alias_table`) that compares
names in any case and with underscores for hyphens (``walker_run``, ``Hopper_v4``); a name that
would stand for two tasks stops the import of this module. Task groups name the task sets that
suites and reports use.

The catalog is plain data: importing it loads no simulator. Tests check it against the simulators'
own registries so that it cannot drift from them silently.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from harness import catalog_humanoidbench, catalog_shadowhand
from harness.errors import InputError

Suite = Literal["dmc", "metaworld", "myosuite", "playground", "gymnasium", "humanoidbench", "shadowhand"]
Metric = Literal["return", "success"]
SUITES: tuple[Suite, ...] = ("dmc", "metaworld", "myosuite", "playground", "gymnasium", "humanoidbench",
                             "shadowhand")


@dataclass(frozen=True)
class Task:
    """One task of the catalog."""

    name: str
    """Canonical name, ``<suite>/<task>``."""
    suite: Suite
    """Which simulator family (and env adapter) runs it."""
    env_id: str
    """The simulator's own id: ``cheetah-run`` (domain-task), ``assembly-v3``, ``myoHandReachFixed-v0``."""
    metric: Metric
    """What an evaluation reports: episode ``return``, or ``success`` rate in [0, 1]."""
    episode_length: int
    """Environment steps per episode (simulator steps, before action repeat)."""
    norm_low: float
    """Score mapped to 0 by normalisation (random-level reference)."""
    norm_high: float
    """Score mapped to 1 by normalisation (the suite's maximum or expert reference)."""
    action_repeat: int = 1
    """Simulator steps per agent action."""
    aliases: tuple[str, ...] = ()
    """Other names for this task used by published results (case and ``_``/``-`` do not matter)."""
    runnable: bool = True
    """False for tasks known only from published results (custom tasks of another codebase)."""
    note: str = ""
    """Why a task is not runnable, or what is special about it."""
    same_as: str = ""
    """The canonical name of the task of another suite that this one re-implements (Playground's
    DeepMind-Control tasks: ``dmc/cheetah-run`` for ``playground/CheetahRun``); counted once."""

    def normalise(self, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Map raw metric values to normalised scores: ``(v - norm_low) / (norm_high - norm_low)``."""
        return (np.asarray(values, dtype=np.float64) - self.norm_low) / (self.norm_high - self.norm_low)

    @property
    def normalisation(self) -> str:
        """A human-readable statement of the normalisation, for reports."""
        if self.norm_low == 0.0 and self.norm_high == 1.0:
            return f"{self.metric} as is"
        if self.norm_low == 0.0:
            return f"{self.metric} / {self.norm_high:g}"
        return f"({self.metric} - {self.norm_low:g}) / ({self.norm_high:g} - {self.norm_low:g})"


@dataclass(frozen=True)
class TaskGroup:
    """A named set of tasks (what a suite manifest or a leaderboard table covers)."""

    name: str
    description: str
    tasks: tuple[str, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------------------------
# DeepMind Control: dm-control's suite.ALL_TASKS (51 tasks), plus TD-MPC2's custom tasks.

DMC_TASKS: tuple[tuple[str, str], ...] = (
    ("acrobot", "swingup"), ("acrobot", "swingup_sparse"), ("ball_in_cup", "catch"),
    ("cartpole", "balance"), ("cartpole", "balance_sparse"), ("cartpole", "swingup"),
    ("cartpole", "swingup_sparse"), ("cartpole", "three_poles"), ("cartpole", "two_poles"),
    ("cheetah", "run"), ("dog", "fetch"), ("dog", "run"), ("dog", "stand"), ("dog", "trot"),
    ("dog", "walk"), ("finger", "spin"), ("finger", "turn_easy"), ("finger", "turn_hard"),
    ("fish", "swim"), ("fish", "upright"), ("hopper", "hop"), ("hopper", "stand"),
    ("humanoid", "run"), ("humanoid", "run_pure_state"), ("humanoid", "stand"), ("humanoid", "walk"),
    ("humanoid_CMU", "run"), ("humanoid_CMU", "stand"), ("humanoid_CMU", "walk"), ("lqr", "lqr_2_1"),
    ("lqr", "lqr_6_2"), ("manipulator", "bring_ball"), ("manipulator", "bring_peg"),
    ("manipulator", "insert_ball"), ("manipulator", "insert_peg"), ("pendulum", "swingup"),
    ("point_mass", "easy"), ("point_mass", "hard"), ("quadruped", "escape"), ("quadruped", "fetch"),
    ("quadruped", "run"), ("quadruped", "walk"), ("reacher", "easy"), ("reacher", "hard"),
    ("stacker", "stack_2"), ("stacker", "stack_4"), ("swimmer", "swimmer15"), ("swimmer", "swimmer6"),
    ("walker", "run"), ("walker", "stand"), ("walker", "walk"),
)

# TD-MPC2 evaluated on DMC tasks of its own (new rewards, some model changes), which BRC reused: TD-MPC2's
# name -> ``<domain>-<task>`` of the harness's own definitions in harness/envs/dmc_custom.py.
TDMPC2_CUSTOM_DMC_IDS = {
    "cheetah-jump": "cheetah-jump", "cheetah-run-back": "cheetah-run_back",
    "cheetah-run-backwards": "cheetah-run_backwards", "cheetah-run-front": "cheetah-run_front",
    "cup-spin": "ball_in_cup-spin", "hopper-hop-backwards": "hopper-hop_backwards",
    "pendulum-spin": "pendulum-spin", "reacher-three-easy": "reacher-three_easy",
    "reacher-three-hard": "reacher-three_hard", "walker-run-backwards": "walker-run_backwards",
    "walker-walk-backwards": "walker-walk_backwards",
}
TDMPC2_CUSTOM_DMC = tuple(TDMPC2_CUSTOM_DMC_IDS)

METAWORLD_TASKS = (
    "assembly", "basketball", "bin-picking", "box-close", "button-press", "button-press-topdown",
    "button-press-topdown-wall", "button-press-wall", "coffee-button", "coffee-pull", "coffee-push",
    "dial-turn", "disassemble", "door-close", "door-lock", "door-open", "door-unlock", "drawer-close",
    "drawer-open", "faucet-close", "faucet-open", "hammer", "hand-insert", "handle-press",
    "handle-press-side", "handle-pull", "handle-pull-side", "lever-pull", "peg-insert-side",
    "peg-unplug-side", "pick-out-of-hole", "pick-place", "pick-place-wall", "plate-slide",
    "plate-slide-back", "plate-slide-back-side", "plate-slide-side", "push", "push-back", "push-wall",
    "reach", "reach-wall", "shelf-place", "soccer", "stick-pull", "stick-push", "sweep", "sweep-into",
    "window-close", "window-open",
)

# The ten MyoSuite hand tasks of BRO and TD-MPC2: (short name, task word). "-hard" is the Random
# variant (randomised targets), the plain name the Fixed one. Both papers ran every one of them for
# 100 steps (the registrations say 75 to 200); we follow the papers so results compare.
MYOSUITE_HAND = (
    ("reach", "Reach"), ("pose", "Pose"), ("obj-hold", "ObjHold"), ("key-turn", "KeyTurn"),
    ("pen-twirl", "PenTwirl"),
)
MYOSUITE_EPISODE = 100
# MetaWorld's own limit is 500 steps; BRO (200 steps) and TD-MPC2 (100 x action repeat 2) both
# evaluated 200-step episodes, and so do we.
METAWORLD_EPISODE = 200

PLAYGROUND_DMC = (
    "AcrobotSwingup", "AcrobotSwingupSparse", "BallInCup", "CartpoleBalance", "CartpoleBalanceSparse",
    "CartpoleSwingup", "CartpoleSwingupSparse", "CheetahRun", "FingerSpin", "FingerTurnEasy",
    "FingerTurnHard", "FishSwim", "HopperHop", "HopperStand", "HumanoidRun", "HumanoidStand",
    "HumanoidWalk", "PendulumSwingup", "PointMass", "ReacherEasy", "ReacherHard", "SwimmerSwimmer6",
    "WalkerRun", "WalkerStand", "WalkerWalk",
)
# The dm-control task each of them re-implements: the hyphenated name (CheetahRun -> cheetah-run), but for these.
_PLAYGROUND_DMC_SAME = {"BallInCup": "ball-in-cup-catch", "PointMass": "point-mass-easy"}
# Playground's locomotion and manipulation tasks need MuJoCo Menagerie's robots (the playground extra
# installs them; see the README).
PLAYGROUND_MENAGERIE = (
    "ApolloJoystickFlatTerrain", "BarkourJoystick", "BerkeleyHumanoidJoystickFlatTerrain",
    "BerkeleyHumanoidJoystickRoughTerrain", "G1JoystickFlatTerrain", "G1JoystickRoughTerrain",
    "Go1JoystickFlatTerrain", "Go1JoystickRoughTerrain", "Go1Getup", "Go1Handstand", "Go1Footstand",
    "H1InplaceGaitTracking", "H1JoystickGaitTracking", "Op3Joystick", "SpotFlatTerrainJoystick",
    "SpotGetup", "SpotJoystickGaitTracking", "T1JoystickFlatTerrain", "T1JoystickRoughTerrain",
    "AlohaHandOver", "AlohaSinglePegInsertion", "PandaPickCube", "PandaPickCubeOrientation",
    "PandaPickCubeCartesian", "PandaOpenCabinet", "PandaRobotiqPushCube", "LeapCubeReorient",
    "LeapCubeRotateZAxis", "AeroCubeRotateZAxis",
)
# Episode length (simulator steps) and action repeat of the Playground tasks whose own default_config()
# (mujoco_playground 0.2.0, registry.get_default_config) differs from 1000 and 1; the brax PPO settings
# that Playground trains them with (mujoco_playground.config) agree. Every other task: 1000 and 1.
PLAYGROUND_EPISODES: dict[str, tuple[int, int]] = {
    "Go1Getup": (300, 1), "Go1Handstand": (500, 1), "Go1Footstand": (500, 1), "SpotGetup": (300, 1),
    "AlohaHandOver": (250, 1), "AlohaSinglePegInsertion": (1000, 2), "PandaPickCube": (150, 1),
    "PandaPickCubeOrientation": (150, 1), "PandaPickCubeCartesian": (200, 1), "PandaOpenCabinet": (150, 1),
    "PandaRobotiqPushCube": (3000, 4), "LeapCubeRotateZAxis": (500, 1), "AeroCubeRotateZAxis": (500, 1),
}


def _dmc_name(domain: str, task: str) -> str:
    return f"{domain}-{task}".replace("_", "-").lower()


def _build() -> dict[str, Task]:
    tasks: dict[str, Task] = {}

    def add(task: Task) -> None:
        tasks[task.name] = task

    for domain, task in DMC_TASKS:
        names = ["cup-catch"] if domain == "ball_in_cup" else []  # TD-MPC2's name
        names += ["finger-turn"] if (domain, task) == ("finger", "turn_hard") else []  # BRO's name
        add(Task(f"dmc/{_dmc_name(domain, task)}", "dmc", f"{domain}-{task}", "return", 1000, 0.0, 1000.0,
                 aliases=tuple(names)))
    for short, env_id in TDMPC2_CUSTOM_DMC_IDS.items():
        add(Task(f"dmc/{short}", "dmc", env_id, "return", 1000, 0.0, 1000.0, aliases=(env_id,),
                 note="TD-MPC2's custom task (the harness's definition, from TD-MPC2's description)"))
    for short in METAWORLD_TASKS:
        aliases = (f"mw-{short}", f"{short}-v2", f"{short}-v3", f"{short}-v2-goal-observable",
                   f"{short}-v3-goal-observable")
        add(Task(f"metaworld/{short}", "metaworld", f"{short}-v3", "success", METAWORLD_EPISODE, 0.0, 1.0,
                 aliases=aliases))
    for short, word in MYOSUITE_HAND:
        for hard, variant in ((False, "Fixed"), (True, "Random")):
            name = f"myo-{short}" + ("-hard" if hard else "")
            env_id = f"myoHand{word}{variant}-v0"
            tdmpc2 = f"myo-hand-{short}" + ("-hard" if hard else "")
            add(Task(f"myosuite/{name}", "myosuite", env_id, "success", MYOSUITE_EPISODE, 0.0, 1.0,
                     aliases=(name, tdmpc2, env_id)))
    for name in PLAYGROUND_DMC:
        dmc = _PLAYGROUND_DMC_SAME.get(name) or re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()
        add(Task(f"playground/{name}", "playground", name, "return", 1000, 0.0, 1000.0, same_as=f"dmc/{dmc}",
                 note=f"Playground's re-implementation of dmc/{dmc}"))
    for name in PLAYGROUND_MENAGERIE:
        length, repeat = PLAYGROUND_EPISODES.get(name, (1000, 1))
        add(Task(f"playground/{name}", "playground", name, "return", length, 0.0, 1.0, action_repeat=repeat,
                 note="needs MuJoCo Menagerie's robots (the playground extra); return not normalised, "
                      "episode length and action repeat from the task's Playground config"))
    tasks.update(_gymnasium_tasks())
    for hb_task in _humanoidbench_tasks():
        add(hb_task)
    for sh_task in _shadowhand_tasks():
        add(sh_task)
    return tasks


# ----------------------------------------------------------------------------------------------
# Gymnasium MuJoCo (v5; v4 names are aliases)

# (name, normalisation (low, high), its source). The five SimbaV2 reports are TD3-normalised as SimbaV2
# does it ((return - random) / (TD3 - random), dojeon-ai/SimbaV2 scale_rl/envs/mujoco.py, scores of v4);
# no published normalisation exists for the others: their return is not normalised.
_SIMBAV2_TD3 = "TD3-normalised as SimbaV2 (random and TD3 scores of its scale_rl/envs/mujoco.py)"
_NO_NORM = "return not normalised (no published normalisation)"
GYMNASIUM_MUJOCO: tuple[tuple[str, float, float, str], ...] = (
    ("HalfCheetah", -289.415, 10574.0, _SIMBAV2_TD3),
    ("Hopper", 18.791, 3226.0, _SIMBAV2_TD3),
    ("Walker2d", 2.791, 3946.0, _SIMBAV2_TD3),
    ("Ant", -70.288, 3942.0, _SIMBAV2_TD3),
    ("Humanoid", 120.423, 5165.0, _SIMBAV2_TD3),
    ("HumanoidStandup", 0.0, 1.0, _NO_NORM),
    ("Swimmer", 0.0, 1.0, _NO_NORM),
    ("Reacher", 0.0, 1.0, _NO_NORM),
    ("Pusher", 0.0, 1.0, _NO_NORM),
    ("InvertedPendulum", 0.0, 1.0, _NO_NORM),
    ("InvertedDoublePendulum", 0.0, 1.0, _NO_NORM),
)
# Episodes of 1000 steps (Gymnasium's limit, and SimbaV2's max_episode_steps), but for the two
# manipulators whose Gymnasium limits (50 and 100 steps) every published result uses.
GYMNASIUM_EPISODES = {"Reacher": 50, "Pusher": 100}


def _gymnasium_tasks() -> dict[str, Task]:
    out = {}
    for name, low, high, source in GYMNASIUM_MUJOCO:
        note = source + ("; v4 names run v5, whose observations differ for this task"
                         if name in ("Ant", "Humanoid", "HumanoidStandup", "Reacher", "InvertedDoublePendulum") else "")
        out[f"gymnasium/{name}"] = Task(f"gymnasium/{name}", "gymnasium", f"{name}-v5", "return",
                                        GYMNASIUM_EPISODES.get(name, 1000), low, high,
                                        aliases=(f"{name}-v5", f"{name}-v4"), note=note)
    return out


# ----------------------------------------------------------------------------------------------
# HumanoidBench (harness install humanoidbench): see harness/catalog_humanoidbench.py


def _humanoidbench_tasks() -> list[Task]:
    """HumanoidBench's h1, h1hand and h1strong tasks, normalised by (return - random) / (success_bar - random)."""
    tasks = []
    for hb in catalog_humanoidbench.humanoidbench_tasks():
        random = catalog_humanoidbench.RANDOM_RETURN[hb.env_id]
        note = f"random return: {random.source}"
        tasks.append(Task(f"humanoidbench/{hb.short}", "humanoidbench", hb.env_id, "return", hb.episode_length,
                          random.value, catalog_humanoidbench.SUCCESS_BAR[hb.word], aliases=hb.aliases,
                          note=note))
    return tasks


# ----------------------------------------------------------------------------------------------
# BRC's ShadowHand rotation tasks (harness install shadowhand): see harness/catalog_shadowhand.py


def _shadowhand_tasks() -> list[Task]:
    """One z-rotation task per object of BRC's split, scored by success rate."""
    return [Task(f"shadowhand/{obj.replace('_', '-')}-rotate", "shadowhand", f"{obj}-rotate-v1", "success",
                 catalog_shadowhand.EPISODE_LENGTH, 0.0, 1.0,
                 aliases=(f"{obj}-rotate-v1",),
                 note="BRC's training objects" if obj in catalog_shadowhand.TRAIN else "BRC's held-out objects")
            for obj in (*catalog_shadowhand.TRAIN, *catalog_shadowhand.TEST)]


def _shadowhand_groups() -> list[TaskGroup]:
    return [
        _group("shadowhand-train", "BRC's 85 ShadowHand rotation training objects", "shadowhand",
               (f"{o.replace('_', '-')}-rotate" for o in catalog_shadowhand.TRAIN)),
        _group("shadowhand-test", "BRC's 29 held-out ShadowHand rotation objects", "shadowhand",
               (f"{o.replace('_', '-')}-rotate" for o in catalog_shadowhand.TEST)),
    ]


def _humanoidbench_groups() -> list[TaskGroup]:
    hb = catalog_humanoidbench
    return [
        _group("humanoidbench-h1", "HumanoidBench's 14 h1 locomotion tasks (SimbaV2's set; BRC's 9 are among them)",
               "humanoidbench", (f"h1-{w.replace('_', '-')}" for w in hb.LOCOMOTION)),
        _group("humanoidbench-brc-h1", "BRC's 9 HumanoidBench h1 tasks", "humanoidbench",
               (f"h1-{w}" for w in hb.BRC_H1)),
        _group("humanoidbench-h1hand", "All 30 HumanoidBench h1hand tasks with a model and h1strong-highbar-hard",
               "humanoidbench", (*(f"h1hand-{w.replace('_', '-')}" for w in hb.ROBOT_TASKS["h1hand"]),
                                 "h1strong-highbar-hard")),
        _group("humanoidbench-all", "Every HumanoidBench task with a model for h1, h1hand and h1strong",
               "humanoidbench", (t.short for t in hb.humanoidbench_tasks())),
    ]


_TASKS: dict[str, Task] = _build()


# ----------------------------------------------------------------------------------------------
# The alias table: every name a task answers to, in one table.


class AliasConflict(ValueError):
    """Two different tasks claim the same name (a catalog bug, raised when the catalog is imported)."""


def alias_key(name: str) -> str:
    """The form in which names are compared: lower case, underscores as hyphens.

    So ``walker_run``, ``Walker-Run`` and ``walker-run`` are one name, ``Hopper_v4`` is ``hopper-v4``
    and ``myo_pen_twirl_hard`` is ``myo-pen-twirl-hard``.
    """
    return name.strip().lower().replace("_", "-")


def alias_table(tasks: Iterable[Task]) -> dict[str, str]:
    """``alias_key(name) -> canonical name`` for every name of every task.

    A task answers to its canonical name, its bare name (without ``<suite>/``) and its aliases, each
    also with its suite's prefix (``dmc/cup-catch``). Raises :class:`AliasConflict` when one name
    would stand for two different tasks.
    """
    table: dict[str, str] = {}
    for task in tasks:
        for name in (task.name, task.name.split("/", 1)[1], *task.aliases):
            bare = alias_key(name).split("/", 1)[-1]
            for key in (bare, f"{task.suite}/{bare}"):
                other = table.setdefault(key, task.name)
                if other != task.name:
                    raise AliasConflict(f"the name {name!r} (compared as {key!r}) would stand for both "
                                        f"{other!r} and {task.name!r}")
    return table


_ALIASES: dict[str, str] = alias_table(_TASKS.values())


def all_tasks() -> tuple[Task, ...]:
    """Every task of the catalog, in a stable order."""
    return tuple(_TASKS[name] for name in sorted(_TASKS))


_MYO_ID = re.compile(r"^myo[A-Za-z0-9]+-v\d+$")


def resolve(name: str) -> Task:
    """The task a canonical name or an alias refers to.

    Any other registered MyoSuite id can be named as ``myosuite/<id>`` (for example
    ``myosuite/myoElbowPose1D6MRandom-v0``); its registration is checked when the env is built.
    Raises :class:`InputError` listing the closest valid names.
    """
    if name in _TASKS:
        return _TASKS[name]
    if alias_key(name) in _ALIASES:
        return _TASKS[_ALIASES[alias_key(name)]]
    if name.startswith("myosuite/") and _MYO_ID.match(name.split("/", 1)[1]):
        env_id = name.split("/", 1)[1]
        return Task(name, "myosuite", env_id, "success", 100, 0.0, 1.0,
                    note="any registered MyoSuite id; episode length from its registration")
    close = difflib.get_close_matches(alias_key(name), list(_ALIASES), n=8, cutoff=0.6)
    suggestions = list(dict.fromkeys(_ALIASES[key] for key in close))[:5]
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise InputError(f"unknown task {name!r}{hint} (`harness tasks` lists them all)")


def maybe_resolve(name: str) -> Task | None:
    """Like :func:`resolve`, but None for an unknown name."""
    try:
        return resolve(name)
    except InputError:
        return None


# ----------------------------------------------------------------------------------------------
# Task groups

_SIMBA_DMC_EM = (
    "acrobot-swingup", "ball-in-cup-catch", "cartpole-balance", "cartpole-balance-sparse",
    "cartpole-swingup", "cartpole-swingup-sparse", "cheetah-run", "finger-spin", "finger-turn-easy",
    "finger-turn-hard", "fish-swim", "hopper-hop", "hopper-stand", "pendulum-swingup",
    "quadruped-run", "quadruped-walk", "reacher-easy", "reacher-hard", "walker-run", "walker-stand",
    "walker-walk",
)
_DMC_HARD = ("dog-stand", "dog-walk", "dog-trot", "dog-run", "humanoid-stand", "humanoid-walk",
             "humanoid-run")
_BRO_DMC = ("acrobot-swingup", "cheetah-run", "dog-run", "dog-stand", "dog-trot", "dog-walk",
            "finger-turn-hard", "fish-swim", "hopper-hop", "humanoid-run", "humanoid-stand",
            "humanoid-walk", "pendulum-swingup", "quadruped-run", "walker-run")
_BRO_METAWORLD = ("assembly", "basketball", "button-press", "coffee-pull", "coffee-push",
                  "disassemble", "hammer", "hand-insert", "lever-pull", "pick-place-wall", "push",
                  "push-back", "reach", "stick-pull", "sweep")
_MYO_HAND = tuple(f"myo-{s}{h}" for s, _ in MYOSUITE_HAND for h in ("", "-hard"))
_TDMPC2_DMC = tuple(sorted((
    "acrobot-swingup", "cartpole-balance", "cartpole-balance-sparse", "cartpole-swingup",
    "cartpole-swingup-sparse", "cheetah-run", "ball-in-cup-catch", "dog-run", "dog-stand", "dog-trot",
    "dog-walk", "finger-spin", "finger-turn-easy", "finger-turn-hard", "fish-swim", "hopper-hop",
    "hopper-stand", "humanoid-run", "humanoid-stand", "humanoid-walk", "pendulum-swingup",
    "quadruped-run", "quadruped-walk", "reacher-easy", "reacher-hard", "walker-run", "walker-stand",
    "walker-walk", *TDMPC2_CUSTOM_DMC,
)))


def _group(name: str, description: str, suite: str, tasks: Iterable[str]) -> TaskGroup:
    return TaskGroup(name, description, tuple(f"{suite}/{t}" for t in tasks))


GROUPS: dict[str, TaskGroup] = {
    g.name: g
    for g in (
        _group("dmc-hard", "DMC dog and humanoid tasks (BRO, TD-MPC2, SimbaV2's DMC-Hard)", "dmc",
               _DMC_HARD),
        _group("dmc-easy", "The 21 DMC easy and medium tasks of SimbaV2 (DMC-EM)", "dmc",
               _SIMBA_DMC_EM),
        _group("dmc-all", "Every task of dm-control's suite", "dmc",
               (_dmc_name(d, t) for d, t in DMC_TASKS)),
        _group("tdmpc2-dmc", "TD-MPC2's 39 DMC tasks (28 standard, 11 custom)", "dmc", _TDMPC2_DMC),
        _group("bro-dmc", "BRO's 15 DMC tasks", "dmc", _BRO_DMC),
        _group("metaworld-mt50", "All 50 MetaWorld tasks (v3, goal-observable), single-task runs",
               "metaworld", METAWORLD_TASKS),
        _group("bro-metaworld", "BRO's 15 MetaWorld tasks", "metaworld", _BRO_METAWORLD),
        _group("myosuite-hand", "The 10 MyoSuite hand tasks of BRO and TD-MPC2", "myosuite", _MYO_HAND),
        _group("playground-dmc", "MuJoCo Playground's 25 DeepMind-Control-style tasks", "playground",
               PLAYGROUND_DMC),
    )
}
GROUPS["gymnasium-mujoco"] = TaskGroup(
    "gymnasium-mujoco", "Gymnasium's 11 MuJoCo tasks (v5)", tuple(f"gymnasium/{t[0]}" for t in GYMNASIUM_MUJOCO))
GROUPS["simbav2-mujoco"] = TaskGroup(
    "simbav2-mujoco", "SimbaV2's 5 Gymnasium MuJoCo tasks (TD3-normalised)",
    tuple(f"gymnasium/{t[0]}" for t in GYMNASIUM_MUJOCO if t[3] == _SIMBAV2_TD3))
GROUPS.update({g.name: g for g in _humanoidbench_groups()})
GROUPS.update({g.name: g for g in _shadowhand_groups()})
GROUPS["bro-40"] = TaskGroup(
    "bro-40", "BRO's 40 tasks: 15 DMC, 15 MetaWorld, 10 MyoSuite",
    (*GROUPS["bro-dmc"].tasks, *GROUPS["bro-metaworld"].tasks, *GROUPS["myosuite-hand"].tasks),
)


def group(name: str) -> TaskGroup:
    """A task group by name; :class:`InputError` lists the valid names."""
    if name not in GROUPS:
        raise InputError(f"unknown task group {name!r}; valid groups: {', '.join(sorted(GROUPS))}")
    return GROUPS[name]
