"""`harness report` on the published TD-MPC2, SAC and BRO curves in ../shared/data.

The store is built by importing the published files with `harness submit`; the expected aggregates
are the rliable values in /work/shared/FACTS.md (TD-MPC2's 39 DMC tasks, 3 seeds, step 1,000,000).
The browser test opens the page in headless Chromium (/usr/bin/chromium) with Playwright.
"""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from harness import catalog
from harness.commands.report import register as register_report
from harness.commands.submit import register as register_submit
from harness.errors import HarnessError
from harness.store import Store, insert_points, upsert_run

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TDMPC2 = DATA / "tdmpc2"
BRO = DATA / "bro" / "BRO"
CHROMIUM = Path("/usr/bin/chromium")
REPS = 2_000

pytestmark = pytest.mark.skipif(not (TDMPC2.is_dir() and BRO.is_dir()),
                                reason=f"published data not found at {DATA} (see shared/data/README.md)")


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


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with TD-MPC2 and SAC (TD-MPC2's results) and BRO, all as external submissions."""
    folder = tmp_path_factory.mktemp("results")
    for agent in ("tdmpc2", "sac"):
        code, out = cli("submit", TDMPC2 / agent, "--format", "tdmpc2", "--agent", agent, "--skip-unknown-tasks",
                        "--results", folder, "--meta", "paper=https://arxiv.org/abs/2310.16828")
        assert code == 0, out
    code, out = cli("submit", BRO, "--format", "bro", "--agent", "bro", "--step-start", 25000, "--step-every",
                    25000, "--results", folder, "--meta", "url=https://github.com/naumix/BiggerRegularizedOptimistic")
    assert code == 0, out
    return folder


def make_report(results: Path, out: Path, *args: object) -> dict:
    code, output = cli("report", "--results", results, "--out", out, "--reps", REPS, *args)
    assert code == 0, output
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def at_1m(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "tdmpc2-dmc"
    make_report(results, out, "--suite", "tdmpc2-dmc", "--agents", "tdmpc2,sac", "--step", 1_000_000)
    return out


@pytest.fixture(scope="module")
def three_agents(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TD-MPC2, SAC and BRO at their final evaluations: partial coverage, early stops, unequal runs."""
    out = tmp_path_factory.mktemp("report") / "final"
    make_report(results, out, "--suite", "tdmpc2-dmc")
    return out


def test_published_aggregates_at_1m(at_1m: Path) -> None:
    data = json.loads((at_1m / "report.json").read_text())
    expected = {  # IQM, mean, median, optimality gap (rliable on the same matrices; FACTS.md)
        "tdmpc2": {"iqm": 0.859, "mean": 0.793, "median": 0.846, "optimality_gap": 0.207},
        "sac": {"iqm": 0.555, "mean": 0.517, "median": 0.522, "optimality_gap": 0.483},
    }
    got = {a["label"]: {name: e["point"] for name, e in a["aggregates"].items()} for a in data["agents"]}
    assert got.keys() == expected.keys()
    for agent, values in expected.items():
        assert got[agent] == pytest.approx(values, abs=1e-3)
    assert [a["label"] for a in data["agents"]] == ["tdmpc2", "sac"]
    assert len(data["compared_tasks"]) == 39 and data["exclusions"] == []
    assert [(a["runs"], a["runs_per_task"]) for a in data["agents"]] == [(117, [3, 3]), (117, [3, 3])]
    # rliable's 95% IQM intervals (50,000 repetitions): tdmpc2 [0.848, 0.869], sac [0.520, 0.592];
    # with 2,000 repetitions they agree to Monte Carlo error.
    iqm = {a["label"]: a["aggregates"]["iqm"] for a in data["agents"]}
    assert (iqm["tdmpc2"]["low"], iqm["tdmpc2"]["high"]) == pytest.approx((0.848, 0.869), abs=0.01)
    assert (iqm["sac"]["low"], iqm["sac"]["high"]) == pytest.approx((0.520, 0.592), abs=0.01)
    [improvement] = data["improvements"]
    assert (improvement["x"], improvement["y"]) == ("tdmpc2", "sac") and improvement["estimate"]["low"] > 0.5
    assert data["normalisation"] == "dmc: return / 1000 (39 tasks)"


class _Cells(HTMLParser):
    """Text pieces inside <td> and <dd> elements, and every src/href attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.pieces: list[str] = []
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.depth += tag in ("td", "dd")
        self.urls += [(tag, name, value or "") for name, value in attrs if name in ("src", "href")]

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag in ("td", "dd")

    def handle_data(self, data: str) -> None:
        if self.depth and data.strip():
            self.pieces.append(data.strip())


def _json_values(node: object, numbers: set[str], strings: set[str]) -> None:
    """Collect every number (as shown: 3 decimals, and whole numbers), list length and string of the JSON."""
    if isinstance(node, dict):
        for value in node.values():
            _json_values(value, numbers, strings)
    elif isinstance(node, list):
        numbers.add(str(len(node)))  # counts the page shows: tasks, runs of a task, curve steps
        for value in node:
            _json_values(value, numbers, strings)
    elif isinstance(node, bool) or node is None:
        return
    elif isinstance(node, int | float):
        numbers.add(f"{node:.3f}")
        if float(node).is_integer():
            numbers.add(str(int(node)))
    elif isinstance(node, str):
        strings.add(node)


@pytest.mark.parametrize("which", ["at_1m", "three_agents"])
def test_every_number_shown_is_in_the_json(which: str, request: pytest.FixtureRequest) -> None:
    out: Path = request.getfixturevalue(which)
    numbers: set[str] = set()
    strings: set[str] = set()
    _json_values(json.loads((out / "report.json").read_text()), numbers, strings)
    parser = _Cells()
    parser.feed((out / "index.html").read_text())
    checked = 0
    for piece in parser.pieces:
        if piece in strings:
            continue  # a label, task, run id, reason or setting shown as stored in the JSON
        for token in re.findall(r"\d[\d,]*(?:\.\d+)?", piece):
            shown = token.replace(",", "")
            assert shown in numbers, f"{token!r} (in {piece!r}) is shown but is not in report.json"
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("which", ["at_1m", "three_agents"])
def test_the_page_loads_nothing_from_the_network(which: str, request: pytest.FixtureRequest) -> None:
    out: Path = request.getfixturevalue(which)
    html = (out / "index.html").read_text()
    parser = _Cells()
    parser.feed(html)
    for tag, attribute, value in parser.urls:
        if attribute == "src":
            assert value.startswith("data:image/svg+xml;base64,"), (tag, value[:60])
        elif re.match(r"https?://", value):
            # Only plain links to the addresses a submitter gave (paper, url), never something loaded.
            assert tag == "a" and value in ("https://arxiv.org/abs/2310.16828",
                                            "https://github.com/naumix/BiggerRegularizedOptimistic"), value
        else:
            assert tag == "a" and (value.startswith("#") or (out / value).is_file()), value
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html


def test_rerun_with_the_same_seed_gives_identical_files(results: Path, at_1m: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    make_report(results, again, "--suite", "tdmpc2-dmc", "--agents", "tdmpc2,sac", "--step", 1_000_000)
    first = sorted(p.relative_to(at_1m) for p in at_1m.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second and len(first) == 16  # html, json, 6 CSV, 4 figures x (PNG, SVG)
    for name in first:
        assert (at_1m / name).read_bytes() == (again / name).read_bytes(), name
    other = make_report(results, tmp_path / "seed1", "--suite", "tdmpc2-dmc", "--agents", "tdmpc2,sac", "--step",
                        1_000_000, "--seed", 1)
    data = json.loads((at_1m / "report.json").read_text())
    assert other["agents"][0]["aggregates"]["iqm"]["point"] == data["agents"][0]["aggregates"]["iqm"]["point"]
    assert other["agents"][0]["aggregates"]["iqm"]["low"] != data["agents"][0]["aggregates"]["iqm"]["low"]
    assert other["settings"]["seed"] == 1


def test_partial_coverage_early_stops_and_external_agents_are_visible(three_agents: Path) -> None:
    data = json.loads((three_agents / "report.json").read_text())
    html = (three_agents / "index.html").read_text()
    # BRO has BRO's 15 DMC tasks only; at the final step SAC keeps 1 run on dog-stand (the others
    # stopped early), so dog-stand is left out as well.
    assert set(data["compared_tasks"]) == set(catalog.group("bro-dmc").tasks) - {"dmc/dog-stand"}
    reasons = {row["task"]: row["reason"] for row in data["tasks"] if not row["compared"]}
    assert len(data["tasks"]) == 39 and len(reasons) == 25
    assert reasons["dmc/walker-walk"] == "bro has no runs"
    assert reasons["dmc/dog-stand"] == "sac has 1 run(s) with a score at the final step (at least 2 needed)"
    stopped = [e for e in data["exclusions"] if e["stage"] == "score"]
    assert stopped and all(e["reason"].startswith("stopped early at step") for e in stopped)
    for item in stopped:
        assert f"<td>{item['run_id']}</td>" in html
    assert any(note.startswith("Final scores come from different budgets") for note in data["notes"])
    assert all(a["external"] for a in data["agents"])
    assert html.count('<span class="badge external"') == 3 * 3  # aggregate table, provenance, per-task header
    for figure in ("interval_estimates", "performance_profile", "probability_of_improvement", "sample_efficiency"):
        svg = (three_agents / "figures" / f"{figure}.svg").read_text()
        assert all(f"{label} (external)" in svg for label in ("tdmpc2", "sac", "bro")), figure
        assert (three_agents / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
def test_page_renders_in_headless_chromium(three_agents: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: errors.append(f"request {request.url}")
                    if not request.url.startswith(("file:", "data:")) else None)
            page.goto((three_agents / "index.html").resolve().as_uri(), wait_until="load")
            images = page.eval_on_selector_all(
                "figure img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
            rows = page.eval_on_selector_all(
                "table", "tables => tables.map(t => [t.className, t.tBodies[0].rows.length])")
            shown = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.getBoundingClientRect().width)")
            artifacts = ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert len(images) == 4 and all(complete and width > 0 and height > 0 for complete, width, height in images)
    assert all(width > 300 for width in shown)
    tables = dict(rows)
    assert tables["aggregates"] == 3 and tables["improvement"] == 3 and tables["per-task"] == 39
    assert tables["exclusions"] > 0


def with_quick_start_runs(results: Path, tmp_path: Path) -> Path:
    """A copy of the store that also holds a quick start's runs of `random`: 2 seeds on two tasks, last
    evaluated at step 6,000, recorded under the suite 'quickstart'."""
    copy = tmp_path / "results"
    copy.mkdir()
    shutil.copy(results / "harness.duckdb", copy / "harness.duckdb")
    store = Store(copy / "harness.duckdb")
    with store.transaction() as con:
        for task in ("dmc/cartpole-balance", "dmc/pendulum-swingup"):
            for seed in (0, 1):
                run_id = f"quickstart-{task}-{seed}"
                upsert_run(con, {"run_id": run_id, "source": "harness", "label": "random", "agent": "random",
                                 "task": task, "seed": seed, "suite": "quickstart", "budget": 6000,
                                 "status": "finished"})
                insert_points(con, pd.DataFrame({"run_id": run_id, "metric": "eval/return", "step": [3000, 6000],
                                                 "value": [20.0 + seed, 30.0 + seed]}))
    return copy


def test_the_default_selection_leaves_out_agents_it_cannot_compare(results: Path, tmp_path: Path) -> None:
    """The README's example on a store that also holds other runs: at step 1,000,000 the quick start's
    runs have no score, so `random` is left out with the reason instead of sinking the report."""
    store = with_quick_start_runs(results, tmp_path)
    data = make_report(store, tmp_path / "out", "--suite", "tdmpc2-dmc", "--step", 1_000_000)
    assert [a["label"] for a in data["agents"]] == ["bro", "tdmpc2", "sac"]
    left_out = [n for n in data["notes"] if n.startswith("Left out of the default selection")]
    assert len(left_out) == 1 and "random (no task with at least 2 runs with a score at step 1,000,000" in left_out[0]
    # Named explicitly, an agent that cannot be compared is still an error.
    code, output = cli("report", "--results", store, "--out", tmp_path / "named", "--reps", REPS,
                       "--suite", "tdmpc2-dmc", "--agents", "tdmpc2,random", "--step", 1_000_000)
    assert code == 2 and "random has 0 run(s) with a score" in output


def test_a_suite_of_the_stores_runs_selects_their_tasks(results: Path, tmp_path: Path) -> None:
    store = with_quick_start_runs(results, tmp_path)
    data = make_report(store, tmp_path / "out", "--suite", "quickstart", "--agents", "random")
    assert data["compared_tasks"] == ["dmc/cartpole-balance", "dmc/pendulum-swingup"]
    code, output = cli("report", "--results", store, "--suite", "quickstrat")
    assert code == 2 and "suites of the store's runs: quickstart" in output, output
