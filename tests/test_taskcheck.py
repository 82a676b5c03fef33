"""`harness tasks --check` and the catalog's task counts."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from harness import catalog
from harness.cli import app
from harness.taskcheck import check_tasks, suite_counts

os.environ.setdefault("MUJOCO_GL", "disable")

# One task per suite: the cheapest of each (Playground's PointMass compiles fastest of its tasks).
ONE_PER_SUITE = {
    "dmc": "dmc/cartpole-balance",
    "metaworld": "metaworld/reach",
    "myosuite": "myosuite/myo-reach",
    "playground": "playground/PointMass",
    "gymnasium": "gymnasium/Hopper",
}
# Suites installed from source (`harness install`): their own test modules install them from
# ../shared/vendor and check one task each (test_humanoidbench.py, test_shadowhand.py), so that no
# other module imports a package while a parallel test worker reinstalls it.
FROM_SOURCE = {"humanoidbench": "humanoidbench/h1-walk", "shadowhand": "shadowhand/apple-rotate"}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_one_task_per_suite_runs() -> None:
    assert set(ONE_PER_SUITE) | set(FROM_SOURCE) == set(catalog.SUITES)
    names = list(ONE_PER_SUITE.values())
    results = {r.task: r for r in check_tasks(names, workers=2, time_limit_s=900, steps=5)}
    assert set(results) == set(names)
    for name, result in results.items():
        assert result.status == "ok", (name, result.error)
        assert result.steps_per_s > 0 and result.seconds > 0
    assert (results["dmc/cartpole-balance"].observation_size, results["dmc/cartpole-balance"].action_size) == (5, 1)
    assert (results["metaworld/reach"].observation_size, results["metaworld/reach"].action_size) == (39, 4)


def test_failures_and_time_limits_are_reported_not_raised() -> None:
    results = list(check_tasks(["dmc/no-such-task"], workers=1, time_limit_s=120))
    assert [r.status for r in results] == ["failed"]
    assert "InputError: unknown task 'dmc/no-such-task'" in results[0].error
    # A million steps within 0.1 s: the task is cut, however fast the machine.
    cut = list(check_tasks(["dmc/cartpole-balance"], workers=1, time_limit_s=0.1, steps=1_000_000))
    assert [(r.status, r.error) for r in cut] == [("cut", "over the 0.1 s limit")]


def test_check_exits_1_and_names_the_tasks_that_did_not_run() -> None:
    # A million steps per task within a second: every task is cut, however fast the machine.
    code, out = invoke("tasks", "dmc-hard", "--check", "--time-limit", "1", "--workers", "2", "--steps", "1000000")
    assert code == 1
    assert "7 of 7 task(s) did not run" in out and "dmc/dog-run" in out
    assert "dmc: 7 checked, 0 ok, 0 failed, 7 cut" in out


def test_counts_unique_tasks_per_suite_with_playground_dmc_counted_once() -> None:
    counts = {c.suite: (c.tasks, c.duplicates, c.unique) for c in suite_counts(catalog.all_tasks())}
    # dm-control's 51 + TD-MPC2's 11; MT50; 10 MyoSuite hand tasks; Playground's 54, of which the 25
    # DeepMind-Control-style ones re-implement a DMC task; Gymnasium's 11.
    assert counts["dmc"] == (62, 0, 62)
    assert counts["metaworld"] == (50, 0, 50)
    assert counts["myosuite"] == (10, 0, 10)
    assert counts["playground"] == (54, 25, 29)
    assert counts["gymnasium"] == (11, 0, 11)
    code, out = invoke("tasks")
    assert code == 0
    flat = " ".join(out.split())  # a console narrower than the line wraps it
    assert "playground 29 (+25 re-implementing another suite's)" in flat
    assert f"in all {sum(c[2] for c in counts.values())}" in flat


@pytest.mark.slow
def test_every_catalog_task_runs() -> None:
    names = [t.name for t in catalog.all_tasks() if t.runnable]
    failed = [r for r in check_tasks(names, workers=2, time_limit_s=1200) if r.status != "ok"]
    assert not failed, "\n".join(f"{r.task}: {r.status} {r.error}" for r in failed)
