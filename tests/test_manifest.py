"""Manifests: validation errors name the file and key, expansion and run ids are stable."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from harness import manifest
from harness.cli import app
from harness.errors import InputError

ROOT = Path(__file__).resolve().parents[1]

GOOD = {
    "name": "t",
    "description": "test",
    "tasks": ["dmc/cartpole-balance", "pendulum-swingup"],
    "agents": {"sac": {"hidden_dims": [32, 32], "warmup_steps": 1000}, "random": {}},
    "seeds": 2,
    "budget": 4000,
    "eval": {"every": 2000, "episodes": 1},
}


def write(tmp_path: Path, data: object, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def with_(**changes: object) -> dict[str, object]:
    out = dict(GOOD)
    out.update(changes)
    return out


def RC(**psi: object) -> dict[str, object]:
    """A reward-conditioned manifest on walker-run with this ``psi:`` section."""
    return with_(variant="reward_conditioned", tasks=["dmc/walker-run"], psi=psi)


# Each bad manifest, and the words its error must contain: the key path and what was expected.
BAD = [
    ("unknown top-level key", with_(budgett=5), ["budgett", "Extra inputs are not permitted"]),
    ("missing required key", {k: v for k, v in GOOD.items() if k != "budget"}, ["budget", "Field required"]),
    ("wrong type for budget", with_(budget="lots"), ["budget", "valid integer", "'lots'"]),
    ("negative seeds", with_(seeds=-1), ["seeds", "greater than 0"]),
    ("unknown task", with_(tasks=["dmc/cheeta-run"]), ["tasks.0", "unknown task", "dmc/cheetah-run"]),
    ("unknown task group", with_(tasks=[{"group": "dmc-hardest"}]), ["tasks.0", "dmc-hard"]),
    ("unknown agent", with_(agents={"sacc": {}}), ["agents.sacc", "unknown agent", "sac"]),
    ("unknown agent config key", with_(agents={"sac": {"batchsize": 64}}),
     ["agents.sac.batchsize", "unknown config key", "batch_size"]),
    ("wrong agent config type", with_(agents={"sac": {"batch_size": "big"}}),
     ["agents.sac.batch_size", "expected int", "'big'"]),
    ("eval every beyond budget", with_(eval={"every": 10_000, "episodes": 1}), ["eval.every", "budget"]),
    ("zero eval episodes", with_(eval={"every": 1000, "episodes": 0}), ["eval.episodes", "greater than 0"]),
    ("unknown eval key", with_(eval={"every": 1000, "episode": 3}), ["eval.episode", "Extra inputs"]),
    ("reward-conditioned without psi", with_(variant="reward_conditioned"), ["psi", "reward_conditioned"]),
    ("psi without reward-conditioned", with_(psi={}), ["psi", "reward_conditioned"]),
    ("task without a reward family", with_(variant="reward_conditioned", psi={}),
     ["tasks", "dmc/pendulum-swingup has no reward family", "dmc/walker-run"]),
    ("unknown psi parameter", RC(eval={"walker-run": {"fast": {"speed": 4}}}),
     ["psi.eval.walker-run.fast.speed", "not a parameter", "move_speed"]),
    ("psi out of range", RC(eval={"dmc/walker-run": {"fast": {"move_speed": 40}}}),
     ["psi.eval.dmc/walker-run.fast.move_speed", "expected a number in [0, 12]"]),
    ("psi of a task not in the manifest", RC(eval={"dmc/cheetah-run": {"back": {"direction": -1}}}),
     ["psi.eval.dmc/cheetah-run", "not a task of the manifest"]),
    ("psi named nominal", RC(eval={"dmc/walker-run": {"nominal": {"move_speed": 4}}}),
     ["psi.eval.dmc/walker-run.nominal"]),
    ("alpha out of range", RC(alpha=1.5), ["psi.alpha", "less than or equal to 1"]),
    ("unknown p_psi", RC(distribution="normal"), ["psi.distribution", "'family' or 'uniform'"]),
    ("unknown reference psi", RC(eval={"dmc/walker-run": {"fast": {"move_speed": 4}}}, references={"sac": "slow"}),
     ["psi.references.sac", "'slow' is not a name of psi.eval", "fast"]),
    ("reference agent also unconditioned", RC(eval={"dmc/walker-run": {"fast": {"move_speed": 4}}},
                                              references={"sac": "fast"}, unconditioned=["sac"]),
     ["psi.references.sac", "also in psi.unconditioned"]),
    ("unknown unconditioned agent", RC(unconditioned=["sacc"]), ["psi.unconditioned", "'sacc'", "agents: random, sac"]),
    ("unknown variant", with_(variant="meta"), ["variant", "'single'"]),
    ("empty task list", with_(tasks=[]), ["tasks", "at least 1"]),
    ("non-positive batch size", with_(agents={"sac": {"batch_size": 0}}), ["agents.sac.batch_size", "positive"]),
]


@pytest.mark.parametrize(("case", "data", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_manifest_names_file_and_key(tmp_path: Path, case: str, data: dict[str, object],
                                         words: list[str]) -> None:
    path = write(tmp_path, data)
    with pytest.raises(InputError) as err:
        manifest.load(path)
    message = str(err.value)
    assert str(path) in message, case
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def test_task_known_only_from_published_results_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import catalog

    published_only = dataclasses.replace(catalog.resolve("dmc/cup-spin"), runnable=False, note="results only")
    monkeypatch.setitem(catalog._TASKS, "dmc/cup-spin", published_only)
    path = write(tmp_path, with_(tasks=["dmc/cup-spin"]))
    with pytest.raises(InputError, match=r"tasks\.0: dmc/cup-spin cannot be run here \(results only\)") as err:
        manifest.load(path)
    assert str(path) in str(err.value)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not valid YAML"):
        manifest.load(write(tmp_path, "name: [unclosed"))
    with pytest.raises(InputError, match="expected a mapping"):
        manifest.load(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(InputError, match="no such manifest"):
        manifest.load(tmp_path / "missing.yaml")


def test_cli_reports_bad_manifest_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, with_(agents={"sac": {"batchsize": 64}}))
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2
    assert "agents.sac.batchsize" in result.output
    assert "Traceback" not in result.output


def test_overrides_apply_and_are_validated(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    plan = manifest.load(path, ["seeds=3", "budget=6000", "agents.sac.batch_size=64", "eval.episodes=2"])
    assert plan.manifest.seed_list == [0, 1, 2]
    assert plan.manifest.budget == 6000
    sac = next(a for a in plan.agents if a.label == "sac")
    assert sac.config.batch_size == 64
    assert sac.config.hidden_dims == (32, 32)
    with pytest.raises(InputError, match=r"agents\.sac\.batch_size"):
        manifest.load(path, ["agents.sac.batch_size=many"])
    with pytest.raises(InputError, match="expected key=value"):
        manifest.load(path, ["seeds"])
    with pytest.raises(InputError, match="budget is not a mapping"):
        manifest.load(path, ["budget.x=1"])


def test_expansion_counts_and_labels(tmp_path: Path) -> None:
    plan = manifest.load(write(tmp_path, with_(tasks=[{"group": "dmc-hard"}, "dmc/dog-run"])))
    # 7 dmc-hard tasks (dog-run listed twice counts once) x 2 agents = 14 groups x 2 seeds = 28 runs.
    assert len(plan.tasks) == 7
    assert len(plan.jobs) == 14
    assert len(plan.runs) == 28
    assert len({r.run_id for r in plan.runs}) == 28
    assert {r.label for r in plan.runs} == {"sac", "random"}


def test_run_ids_are_stable_and_sensitive_to_what_matters(tmp_path: Path) -> None:
    a = manifest.load(write(tmp_path, GOOD, "a.yaml"))
    b = manifest.load(write(tmp_path, with_(name="other-name", description="x"), "b.yaml"))
    assert [r.run_id for r in a.runs] == [r.run_id for r in b.runs]  # the suite's name is not the run
    c = manifest.load(write(tmp_path, GOOD, "c.yaml"), ["agents.sac.batch_size=128"])
    changed = {r.run_id for r in c.runs} - {r.run_id for r in a.runs}
    assert len(changed) == 4  # the sac runs: 2 tasks x 2 seeds
    d = manifest.load(write(tmp_path, GOOD, "d.yaml"), ["tag=candidate"])
    assert not {r.run_id for r in d.runs} & {r.run_id for r in a.runs}
    assert {r.label for r in d.runs} == {"sac@candidate", "random@candidate"}


def test_algo_key_gives_a_second_label_of_the_same_agent(tmp_path: Path) -> None:
    agents = {"sac": {"warmup_steps": 1000}, "sac_lr0": {"algo": "sac", "actor_lr": 0.0, "warmup_steps": 1000}}
    plan = manifest.load(write(tmp_path, with_(agents=agents)))
    specs = {a.label: a for a in plan.agents}
    assert specs["sac_lr0"].algo == "sac"
    assert specs["sac_lr0"].config.actor_lr == 0.0
    assert specs["sac"].config_hash != specs["sac_lr0"].config_hash


@pytest.mark.parametrize("path", sorted((ROOT / "suites").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_manifests_validate(path: Path) -> None:
    plan = manifest.load(path)
    assert plan.runs


def test_dmc_hard_dry_run_prints_the_plan() -> None:
    result = CliRunner().invoke(app, ["run", str(ROOT / "suites" / "dmc-hard.yaml"), "--dry-run",
                                      "--results", "/nonexistent-results"])
    assert result.exit_code == 0, result.output
    for task in ("dog-stand", "dog-walk", "dog-trot", "dog-run", "humanoid-stand", "humanoid-walk",
                 "humanoid-run"):
        assert f"dmc/{task}" in result.output
    assert "1,000,000 env steps" in result.output
    assert "runs in" in result.output and "/nonexistent-results" in result.output



def test_dry_run_shows_what_runs_after_overrides_and_lists_every_run_with_verbose() -> None:
    args = ["run", str(ROOT / "suites" / "dmc-hard.yaml"), "budget=20000", "eval.every=10000", "--seeds", "2",
            "--dry-run", "--verbose", "--results", "/nonexistent-results"]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "overrides: budget=20000 eval.every=10000 seeds=2" in result.output
    assert "seeds [0, 1]; budget 20,000 env steps" in result.output
    rows = [line for line in result.output.splitlines() if "│ dmc/" in line]
    assert len(rows) == 7 * 4 * 2  # tasks x agents x seeds, one row per run
    assert all("20,000" in row and "new" in row for row in rows)

def test_single_task_run_ids_are_those_of_the_previous_release(tmp_path: Path) -> None:
    """Run ids computed by release 0.1.0 (commit 641b214) for this manifest: a re-run skips those runs."""
    raw = {"name": "cmp", "tasks": ["dmc/cartpole-balance"], "seeds": 2, "budget": 1500,
           "eval": {"every": 750, "episodes": 1}, "log_every": 100,
           "agents": {"sac": {"hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 500},
                      "brc": {"critic_width": 32, "actor_width": 16, "batch_size": 16, "warmup_steps": 500}}}
    plan = manifest.validate(raw, tmp_path / "cmp.yaml")
    assert {r.run_id for r in plan.runs} == {"6ac92585cca5f620", "9284e0c62b8c913b", "be130e564b09ad8d",
                                             "ffd8564fd8b4ff53"}


@pytest.mark.parametrize(("agents", "budget", "expected"), [
    ({"sac": {}}, 2000, "budget 2,000 is not above agent sac's warm-up of 5,000"),
    ({"bro_fast": {"algo": "bro"}}, 2500, "agent bro_fast's warm-up of 2,500"),  # equal: still no update
])
def test_a_budget_inside_the_warm_up_is_refused(tmp_path: Path, agents: dict[str, object], budget: int,
                                                  expected: str) -> None:
    raw = with_(agents=agents, budget=budget, eval={"every": 1000, "episodes": 1})
    with pytest.raises(InputError, match=re.escape(expected)):
        manifest.load(write(tmp_path, raw))


def test_agents_that_never_update_need_no_warm_up(tmp_path: Path) -> None:
    raw = with_(agents={"random": {}, "frozen": {"algo": "sac", "updates_per_step": 0}}, budget=2000,
                eval={"every": 1000, "episodes": 1})
    assert len(manifest.load(write(tmp_path, raw)).agents) == 2


def test_a_reward_conditioned_manifest_expands_like_single_task_or_with_groups_like_multitask(
        tmp_path: Path) -> None:
    psi = {"unconditioned": ["base"], "eval": {"walker-run": {"speed4": {"move_speed": 4}}}}
    data = with_(variant="reward_conditioned", tasks=["dmc/walker-run", "dmc/cheetah-run"],
                 agents={"sac": {"warmup_steps": 1000}, "base": {"algo": "sac", "warmup_steps": 1000}}, psi=psi)
    plan = manifest.load(write(tmp_path, data))
    # A job per (task, agent); the conditioned agent's runs are reward_conditioned and labelled -rc,
    # the baseline's are single-task runs evaluated under the same ψ.
    assert [(j.tasks, j.variant, j.first.label) for j in plan.jobs] == [  # the agents as YAML sorts them
        (("dmc/walker-run",), "single", "base"), (("dmc/walker-run",), "reward_conditioned", "sac-rc"),
        (("dmc/cheetah-run",), "single", "base"), (("dmc/cheetah-run",), "reward_conditioned", "sac-rc")]
    settings = plan.jobs[0].psi
    assert settings is not None and settings.alpha == 0.5 and settings.labels == ("nominal", "speed4")
    assert settings.evaluations[0].psi == (("stand_height", 1.2), ("move_speed", 4.0), ("direction", 1.0))
    plain = manifest.load(write(tmp_path, with_(tasks=["dmc/walker-run"], agents=data["agents"]),
                                "plain.yaml"))
    assert plain.runs[0].run_id not in {r.run_id for r in plan.runs}  # the psi section is part of the id
    grouped = {k: v for k, v in data.items() if k != "tasks"} | {"groups": {"loco": ["walker-run", "cheetah-run"]}}
    jobs = manifest.load(write(tmp_path, grouped, "groups.yaml")).jobs
    assert [(len(j.tasks), j.variant, j.first.label) for j in jobs] == [(2, "multitask", "base-mt"),
                                                                        (2, "reward_conditioned", "sac-rc")]


def test_a_reference_agent_trains_on_the_tasks_that_have_its_psi(tmp_path: Path) -> None:
    psi = {"references": {"ref": "speed4"}, "eval": {"walker-run": {"speed4": {"move_speed": 4}}}}
    data = with_(variant="reward_conditioned", tasks=["dmc/walker-run", "dmc/cheetah-run"],
                 agents={"sac": {"warmup_steps": 1000}, "ref": {"algo": "sac", "warmup_steps": 1000}}, psi=psi)
    jobs = manifest.load(write(tmp_path, data)).jobs
    assert [(j.tasks, j.variant, j.first.label, j.train_psi) for j in jobs] == [
        (("dmc/walker-run",), "single", "ref", "speed4"), (("dmc/walker-run",), "reward_conditioned", "sac-rc", None),
        (("dmc/cheetah-run",), "reward_conditioned", "sac-rc", None)]
    grouped = {k: v for k, v in data.items() if k != "tasks"} | {"groups": {"loco": ["walker-run", "cheetah-run"]}}
    with pytest.raises(InputError, match=r"psi.references.ref: .*dmc/cheetah-run has no ψ 'speed4'"):
        manifest.load(write(tmp_path, grouped, "groups.yaml"))
