"""The task catalog against the simulators' own registries, its groups and its aliases."""

from __future__ import annotations

import dataclasses
import os

import pytest

from harness import catalog
from harness.errors import InputError

os.environ.setdefault("MUJOCO_GL", "disable")


def test_dmc_tasks_are_dm_control_suite_all_tasks() -> None:
    from dm_control import suite

    assert sorted(catalog.DMC_TASKS) == sorted(suite.ALL_TASKS)
    dmc = {t.env_id for t in catalog.all_tasks() if t.suite == "dmc"}
    assert dmc == {f"{domain}-{task}" for domain, task in suite.ALL_TASKS} | set(catalog.TDMPC2_CUSTOM_DMC_IDS.values())


def test_metaworld_tasks_are_mt50_v3() -> None:
    env_dict = pytest.importorskip("metaworld.env_dict")

    assert sorted(f"{t}-v3" for t in catalog.METAWORLD_TASKS) == sorted(env_dict.MT50_V3)
    assert {t.env_id for t in catalog.all_tasks() if t.suite == "metaworld"} == set(env_dict.MT50_V3)


def test_myosuite_hand_ids_are_registered_and_run_for_the_papers_100_steps() -> None:
    pytest.importorskip("myosuite")
    import gymnasium

    hand = [catalog.resolve(name) for name in catalog.GROUPS["myosuite-hand"].tasks]
    assert len(hand) == 10
    for task in hand:
        assert gymnasium.spec(task.env_id).max_episode_steps is not None, task.name
        assert task.episode_length == 100, task.name  # BRO's and TD-MPC2's protocol


def test_playground_tasks_are_playground_registry() -> None:
    registry = pytest.importorskip("mujoco_playground").registry

    assert sorted(catalog.PLAYGROUND_DMC) == sorted(registry.dm_control_suite.ALL_ENVS)
    assert sorted(catalog.PLAYGROUND_DMC + catalog.PLAYGROUND_MENAGERIE) == sorted(registry.ALL_ENVS)


@pytest.mark.parametrize("group", sorted(catalog.GROUPS))
def test_every_group_task_resolves_to_itself(group: str) -> None:
    for name in catalog.GROUPS[group].tasks:
        assert catalog.resolve(name).name == name


@pytest.mark.parametrize(("alias", "canonical"), [
    ("cup-catch", "dmc/ball-in-cup-catch"),
    ("finger-turn-hard", "dmc/finger-turn-hard"),
    ("finger-turn", "dmc/finger-turn-hard"),
    ("mw-assembly", "metaworld/assembly"),
    ("assembly-v2-goal-observable", "metaworld/assembly"),
    ("myo-hand-reach", "myosuite/myo-reach"),
    ("myo-reach", "myosuite/myo-reach"),
    # Underscores for hyphens, any case.
    ("walker_run", "dmc/walker-run"),
    ("ball_in_cup_catch", "dmc/ball-in-cup-catch"),
    ("finger-turn_hard", "dmc/finger-turn-hard"),
    ("humanoid_CMU-run", "dmc/humanoid-cmu-run"),
    ("myo_pen_twirl_hard", "myosuite/myo-pen-twirl-hard"),
    ("myoHandPenTwirlRandom-v0", "myosuite/myo-pen-twirl-hard"),
    # MetaWorld's v2 and v3 names, goal-observable or not.
    ("assembly-v2", "metaworld/assembly"),
    ("basketball-v3-goal-observable", "metaworld/basketball"),
    ("pick_place_wall-v2-goal-observable", "metaworld/pick-place-wall"),
    # A suite prefix on an alias; a bare Playground name.
    ("dmc/cup-catch", "dmc/ball-in-cup-catch"),
    ("dmc/walker_run", "dmc/walker-run"),
    ("CheetahRun", "playground/CheetahRun"),
    ("playground/cheetahrun", "playground/CheetahRun"),
])
def test_alias_resolves_to_canonical_name(alias: str, canonical: str) -> None:
    assert catalog.resolve(alias).name == canonical


def test_an_alias_of_another_suite_needs_that_suites_prefix() -> None:
    with pytest.raises(InputError, match="unknown task 'playground/cup-catch'"):
        catalog.resolve("playground/cup-catch")


def test_unknown_name_suggests_canonical_names() -> None:
    with pytest.raises(InputError, match=r"did you mean dmc/walker-run"):
        catalog.resolve("walker_rn")


def test_one_name_for_two_tasks_is_an_error() -> None:
    run = catalog.resolve("dmc/walker-run")
    stand = catalog.resolve("dmc/walker-stand")
    clash = dataclasses.replace(stand, aliases=("Walker_Run",))  # walker-run, compared as alias_key
    with pytest.raises(catalog.AliasConflict, match="'dmc/walker-run' and 'dmc/walker-stand'"):
        catalog.alias_table([run, clash])
    # The same task under two spellings is no conflict.
    assert catalog.alias_table([dataclasses.replace(run, aliases=("walker_run", "WALKER-RUN"))])["walker-run"] \
        == "dmc/walker-run"


def test_the_alias_table_is_built_and_checked_when_the_catalog_is_imported() -> None:
    assert catalog.alias_table(catalog.all_tasks()) == catalog._ALIASES
    for task in catalog.all_tasks():
        for name in (task.name, *task.aliases):
            assert catalog.resolve(name) is task, name
