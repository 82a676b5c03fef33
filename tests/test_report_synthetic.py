"""`harness report` on small stores built here: hand-checked numbers, exclusions, coverage, errors, escaping."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from markupsafe import escape
from typer.testing import CliRunner

from harness.commands.report import parse_grid
from harness.commands.report import register as register_report
from harness.commands.submit import register as register_submit
from harness.errors import HarnessError, InputError
from harness.store import Store, insert_points, upsert_run

REPS = 2_000


def cli(*args: object) -> tuple[int, str]:
    """Run the commands on a local app; a HarnessError gives its exit code, as the real main does."""
    app = typer.Typer()
    register_submit(app)
    register_report(app)
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    if isinstance(result.exception, HarnessError):
        return result.exception.exit_code, result.output + "\n" + str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def submit(results: Path, agent: str, rows: list[tuple[str, int, int, float]], *meta: str) -> None:
    """Store (task, seed, step, return) rows as one long-format submission of ``agent``."""
    path = results.parent / f"{len(list(results.parent.glob('*.csv')))}.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "seed", "step", "value"])
        writer.writerows(rows)
    extra = [arg for item in meta for arg in ("--meta", item)]
    code, out = cli("submit", path, "--format", "long", "--agent", agent, "--results", results, *extra)
    assert code == 0, out


def curve(task: str, seed: int, finals: dict[int, float]) -> list[tuple[str, int, int, float]]:
    return [(task, seed, step, value) for step, value in finals.items()]


# Alpha: cheetah-run seeds 1-3 reach step 200 with returns 100, 200, 300; walker-run seeds 1-2 reach
# step 200 with 500, 700 and seed 3 stops at step 100.
ALPHA = [
    *curve("cheetah-run", 1, {0: 0.0, 100: 50.0, 200: 100.0}),
    *curve("cheetah-run", 2, {0: 0.0, 100: 150.0, 200: 200.0}),
    *curve("cheetah-run", 3, {0: 0.0, 100: 250.0, 200: 300.0}),
    *curve("walker-run", 1, {0: 0.0, 100: 400.0, 200: 500.0}),
    *curve("walker-run", 2, {0: 0.0, 100: 600.0, 200: 700.0}),
    *curve("walker-run", 3, {0: 0.0, 100: 800.0}),
]


@pytest.fixture()
def alpha(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    submit(results, "alpha", ALPHA, "paper=https://example.org/alpha", "notes=javascript:alert(1)")
    return results


def report(results: Path, out: Path, *args: object) -> dict:
    code, output = cli("report", "--results", results, "--out", out, "--reps", REPS, *args)
    assert code == 0, output
    return json.loads((out / "report.json").read_text())


def aggregates(data: dict, agent: str) -> dict[str, float]:
    [entry] = [a for a in data["agents"] if a["label"] == agent]
    return {name: value["point"] for name, value in entry["aggregates"].items()}


def test_final_scores_exclude_a_run_that_stopped_early(alpha: Path, tmp_path: Path) -> None:
    data = report(alpha, tmp_path / "out")
    # Final scores / 1000: cheetah-run [0.1, 0.2, 0.3], walker-run [0.5, 0.7] (seed 3 stopped early).
    # mean = median = mean(0.2, 0.6) = 0.4; optimality gap = 1 - 0.4 = 0.6;
    # IQM: 5 pooled scores, 5 // 4 = 1 trimmed at each end -> mean(0.2, 0.3, 0.5) = 1/3.
    assert aggregates(data, "alpha") == pytest.approx(
        {"iqm": 1 / 3, "mean": 0.4, "median": 0.4, "optimality_gap": 0.6}, abs=1e-12)
    [excluded] = data["exclusions"]
    assert (excluded["stage"], excluded["task"], excluded["seed"]) == ("score", "dmc/walker-run", 3)
    assert excluded["reason"] == "stopped early at step 100 (others reach 200)"
    html = (tmp_path / "out" / "index.html").read_text()
    assert "stopped early at step 100 (others reach 200)" in html
    assert any("unequal runs per compared task (2 to 3)" in note for note in data["notes"])
    # The curves use the steps every run reports (0 and 100), where walker-run has all 3 runs.
    assert data["curve_steps"] == [0.0, 100.0]
    [agent] = data["agents"]
    assert (agent["runs"], agent["curve_runs"]) == (5, 6)
    assert "alpha 5 runs (2 to 3 per task) on 2 tasks" in data["captions"]["interval_estimates"]
    assert "alpha 6 runs (3 per task) on 2 tasks" in data["captions"]["sample_efficiency"]
    for interval in agent["aggregates"].values():
        assert interval["low"] <= interval["point"] <= interval["high"]


def test_every_caption_states_runs_tasks_normalisation_and_intervals(alpha: Path, tmp_path: Path) -> None:
    data = report(alpha, tmp_path / "out", "--level", 0.9, "--seed", 7, "--method", "bca")
    assert set(data["captions"]) == {"aggregates", "interval_estimates", "performance_profile", "sample_efficiency"}
    for caption in data["captions"].values():
        assert "on 2 tasks" in caption
        assert "Normalisation: dmc: return / 1000 (2 tasks)" in caption
        assert "90% BCa intervals from a stratified bootstrap" in caption
        assert f"{REPS:,} repetitions, report seed 7" in caption
    html = (tmp_path / "out" / "index.html").read_text()
    for name in ("interval_estimates", "performance_profile", "sample_efficiency"):
        assert escape(data["captions"][name]) in html
    assert data["settings"]["seed"] == 7


def test_step_with_tolerance_and_interpolation_are_stated(alpha: Path, tmp_path: Path) -> None:
    nearest = report(alpha, tmp_path / "a", "--step", 150, "--tolerance", 50)
    # Nearest within 50 steps of 150 is 100 (the earlier point on a tie): returns 50, 150, 250 and
    # 400, 600, 800 -> mean of task means = (0.15 + 0.6) / 2 = 0.375.
    assert aggregates(nearest, "alpha")["mean"] == pytest.approx(0.375, abs=1e-12)
    assert nearest["alignment"] == "the nearest evaluation point within 50 steps"
    interpolated = report(alpha, tmp_path / "b", "--step", 150, "--align", "interpolate")
    # Halfway between steps 100 and 200: cheetah (75, 175, 275), walker (450, 650; seed 3 ends at 100).
    assert aggregates(interpolated, "alpha")["mean"] == pytest.approx((0.175 + 0.55) / 2, abs=1e-12)
    [excluded] = interpolated["exclusions"]
    assert excluded["reason"] == "after the last step 100: no extrapolation"
    assert "linear interpolation" in interpolated["captions"]["sample_efficiency"]


def test_agents_are_compared_only_on_tasks_they_all_cover(alpha: Path, tmp_path: Path) -> None:
    # Beta covers cheetah-run (2 seeds) and hopper-hop only; it shares cheetah-run with alpha.
    submit(alpha, "beta", [*curve("cheetah-run", 1, {0: 0.0, 100: 10.0, 200: 20.0}),
                           *curve("cheetah-run", 2, {0: 0.0, 100: 30.0, 200: 40.0}),
                           *curve("hopper-hop", 1, {0: 0.0, 200: 900.0}),
                           *curve("hopper-hop", 2, {0: 0.0, 200: 800.0})])
    data = report(alpha, tmp_path / "out", "--tasks", "cheetah-run,walker-run,hopper-hop")
    assert data["compared_tasks"] == ["dmc/cheetah-run"]
    reasons = {row["task"]: row["reason"] for row in data["tasks"]}
    assert reasons == {"dmc/cheetah-run": "", "dmc/walker-run": "beta has no runs",
                       "dmc/hopper-hop": "alpha has no runs"}
    # On cheetah-run alone: alpha mean 0.2, beta mean 0.03; alpha ranks first.
    assert [a["label"] for a in data["agents"]] == ["alpha", "beta"]
    assert aggregates(data, "alpha")["mean"] == pytest.approx(0.2, abs=1e-12)
    assert aggregates(data, "beta")["mean"] == pytest.approx(0.03, abs=1e-12)
    [improvement] = data["improvements"]
    # Every alpha run (0.1, 0.2, 0.3) beats every beta run (0.02, 0.04): P(alpha > beta) = 1.
    assert (improvement["x"], improvement["y"], improvement["estimate"]["point"]) == ("alpha", "beta", 1.0)
    assert any("compare 1 of the 3 tasks with runs" in note for note in data["notes"])
    html = (tmp_path / "out" / "index.html").read_text()
    assert html.count(">not compared</span>") == 2


def test_a_task_with_one_run_is_left_out_with_the_reason(alpha: Path, tmp_path: Path) -> None:
    submit(alpha, "gamma", [*curve("cheetah-run", 1, {0: 0.0, 100: 10.0, 200: 20.0}),
                            *curve("walker-run", 1, {0: 0.0, 100: 30.0, 200: 40.0}),
                            *curve("walker-run", 2, {0: 0.0, 100: 50.0, 200: 60.0})])
    data = report(alpha, tmp_path / "out")
    assert data["compared_tasks"] == ["dmc/walker-run"]
    [left_out] = [row for row in data["tasks"] if not row["compared"]]
    assert left_out["reason"] == "gamma has 1 run(s) with a score at the final step (at least 2 needed)"


def test_harness_runs_are_not_external_and_submitted_ones_are(alpha: Path, tmp_path: Path) -> None:
    store = Store(alpha / "harness.duckdb")
    with store.transaction() as con:
        for seed, final in ((0, 400.0), (1, 600.0)):
            run_id = f"ours-{seed}"
            upsert_run(con, {"run_id": run_id, "source": "harness", "label": "ours", "agent": "sac",
                             "task": "dmc/cheetah-run", "seed": seed, "status": "finished"})
            insert_points(con, pd.DataFrame({"run_id": run_id, "metric": "eval/return", "step": [0, 100, 200],
                                             "value": [0.0, final / 2, final]}))
    data = report(alpha, tmp_path / "out", "--tasks", "cheetah-run")
    external = {a["label"]: (a["source"], a["external"]) for a in data["agents"]}
    assert external == {"ours": ("harness", False), "alpha": ("submission", True)}
    [alpha_agent] = [a for a in data["agents"] if a["label"] == "alpha"]
    [submission] = alpha_agent["submissions"]
    assert dict(submission["meta"]) == {"paper": "https://example.org/alpha", "notes": "javascript:alert(1)"}
    html = (tmp_path / "out" / "index.html").read_text()
    assert html.count('<span class="badge external"') == 3  # aggregate table, provenance, per-task header
    assert '<a href="https://example.org/alpha" rel="noopener noreferrer">' in html
    assert "notes: javascript:alert(1)" in html and 'href="javascript' not in html
    svg = (tmp_path / "out" / "figures" / "interval_estimates.svg").read_text()
    assert "alpha (external)" in svg and "ours (external)" not in svg


def test_store_strings_are_escaped_in_html(tmp_path: Path) -> None:
    results = tmp_path / "results"
    label = '<img src=x onerror="alert(1)">'
    submit(results, label, ALPHA, "paper=<script>alert(2)</script>")
    report(results, tmp_path / "out")
    html = (tmp_path / "out" / "index.html").read_text()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


def test_user_errors_exit_2_with_a_message(alpha: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cases = [
        (("--agents", "nobody"), "no finished runs for agent label(s) nobody; labels with finished runs on these "
                                 "tasks: alpha"),
        (("--agents", "alpha,nobody"), "no finished runs for agent label(s) nobody; labels with finished runs"),
        (("--suite", "metaworld-mt50"), "no finished evaluation points in the store"),
        (("--suite", "no-such-group"), "unknown task group 'no-such-group'"),
        (("--tasks", "cheetah-rnu"), "unknown task 'cheetah-rnu'"),
        (("--step", 150), "no task has at least 2 runs with a score for every selected agent"),
        (("--grid", "0:100"), "--grid '0:100': expected START:STOP:EVERY"),
        (("--grid", "300:400:100"), "no step of the curve grid has at least 2 runs"),
        (("--level", 1.5), "--level 1.5: expected a confidence level between 0 and 1"),
        (("--agents", "alpha,alpha"), "alpha given twice"),
    ]
    for args, message in cases:
        code, output = cli("report", "--results", alpha, "--out", out, "--reps", REPS, *args)
        assert (code, message in output) == (2, True), (args, output)
    code, output = cli("report", "--results", tmp_path / "nowhere", "--out", out)
    assert code == 2 and "no store at" in output


def test_no_shared_steps_needs_a_grid(alpha: Path, tmp_path: Path) -> None:
    # Delta evaluates at steps 50 and 150 only: no step is shared with alpha.
    submit(alpha, "delta", [row for task in ("cheetah-run", "walker-run") for seed in (1, 2)
                            for row in curve(task, seed, {50: 100.0 * seed, 200: 110.0 * seed})])
    code, output = cli("report", "--results", alpha, "--out", tmp_path / "out", "--reps", REPS, "--agents",
                       "alpha,delta", "--tasks", "cheetah-run")
    assert code == 0, output  # both report step 200 on cheetah-run
    code, output = cli("report", "--results", alpha, "--out", tmp_path / "out", "--reps", REPS, "--agents",
                       "alpha,delta", "--step", 200)
    assert code == 2 and "pass --grid START:STOP:EVERY" in output
    data = report(alpha, tmp_path / "out", "--agents", "alpha,delta", "--step", 200, "--grid", "0:200:100",
                  "--tolerance", 50)
    # Grid 0, 100, 200 with tolerance 50: delta's nearest to 0 is 50 (ok), to 100 is 50 (ok), to 200 is 200;
    # alpha's walker seed 3 has no point within 50 of step 200 (its last is 100, 100 away).
    assert data["curve_steps"] == [0.0, 100.0, 200.0]
    curve_exclusions = [e for e in data["exclusions"] if e["stage"] == "curve"]
    assert [(e["agent"], e["task"], e["seed"]) for e in curve_exclusions] == [("alpha", "dmc/walker-run", 3)]
    assert curve_exclusions[0]["reason"] == "step 200: nearest step 100 is 100 away (tolerance 50)"


def test_parse_grid() -> None:
    assert parse_grid("0:1000:250") == (0.0, 250.0, 500.0, 750.0, 1000.0)
    assert parse_grid("100:100:5") == (100.0,)
    for bad in ("1:0:1", "0:10:0", "a:b:c", "0:1:2:3", "nan:1:1"):
        with pytest.raises(InputError, match="expected START:STOP:EVERY"):
            parse_grid(bad)
    with pytest.raises(InputError, match="at most 1000"):
        parse_grid("0:1000000:1")
