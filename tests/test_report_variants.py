"""Reports that read right: the title names what was selected, and BRC's published multi-task and
single-task runs compare as two kinds of runs on one task set and one normalisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import catalog
from harness.commands.submit import STORE_FILE
from harness.report import ReportOptions, build, write
from harness.scores import select_tasks
from harness.store import Store
from harness.submit import ReadOptions, SubmitOptions, plan_submission, store_submission
from tests.test_report_synthetic import ALPHA, cli, submit

BRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "brc"
REPS = 500


def test_title_names_the_selected_tasks_not_the_agents(tmp_path: Path) -> None:
    results = tmp_path / "results"
    submit(results, "alpha", ALPHA)
    submit(results, "beta", [(task, seed + 3, step, value / 2) for task, seed, step, value in ALPHA])
    options = ReportOptions(tasks=select_tasks(None, ["cheetah-run", "walker-run"]), reps=REPS)
    report = build(Store(results / STORE_FILE), options)
    # It read "Selected tasks: alpha, beta", as if the agents were the tasks.
    assert report.title == "alpha, beta on dmc/cheetah-run, dmc/walker-run"
    assert build(Store(results / STORE_FILE), ReportOptions(reps=REPS)).title == "alpha, beta on every task with runs"
    grouped = ReportOptions(tasks=select_tasks("dmc", None), group="dmc", reps=REPS)
    assert build(Store(results / STORE_FILE), grouped).title == "alpha, beta on dmc"
    code, out = cli("report", "--results", results, "--tasks", "cheetah-run,walker-run", "--reps", REPS,
                    "--out", tmp_path / "out")
    assert code == 0, out
    assert "alpha, beta on dmc/cheetah-run, dmc/walker-run (2 tasks compared)" in out


@pytest.mark.skipif(not BRC.is_dir(), reason=f"BRC's published arrays not found at {BRC} (see shared/data/README.md)")
def test_brc_multitask_against_singletask_reads_right(tmp_path: Path) -> None:
    store = Store(tmp_path / "results" / STORE_FILE)
    for folder, agent in (("BRC_multitask", "brc-mt"), ("BRC_singletask", "brc-st")):
        plan = plan_submission(store, BRC / "dmc" / folder, SubmitOptions(ReadOptions("brc"), agent=agent))
        assert not plan.problems, plan.problems
        store_submission(store, plan)
    tasks = select_tasks("dmc-hard", None)
    report = build(store, ReportOptions(tasks=tasks, group="dmc-hard", reps=REPS))
    by_label = {agent.label: agent for agent in report.agents}
    assert {label: agent.variant for label, agent in by_label.items()} == {"brc-mt": "multitask", "brc-st": "single"}
    # The same 7 tasks, 5 seeds each, at BRC's final evaluation (1M) for both, one normalisation.
    assert report.compared_tasks == catalog.group("dmc-hard").tasks
    assert all(agent.runs_per_task == (5, 5) for agent in report.agents)
    assert {cell.step for row in report.tasks for cell in row.cells} == {1_000_000}
    assert report.normalisation == "dmc: return / 1000 (7 tasks)"
    assert report.title in ("brc-mt, brc-st on dmc-hard", "brc-st, brc-mt on dmc-hard")
    note = next(n for n in report.notes if n.startswith("The agents are different kinds of runs"))
    assert "brc-mt (multi-task: one agent trained on all its tasks at once)" in note
    assert "brc-st (single-task: one agent per task)" in note
    assert "the same 7 task(s) and the same normalisation" in note
    files = write(report, tmp_path / "report")
    html = files.html.read_text()
    assert '<span class="badge variant" title="kind of runs">multitask</span>' in html
    data = json.loads(files.json.read_text())
    assert {a["label"]: a["variant"] for a in data["agents"]} == {"brc-mt": "multitask", "brc-st": "single"}
