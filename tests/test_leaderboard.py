"""The static leaderboard: numbers, escaping, rebuild determinism, the CLI, and the pages in headless Chromium.

A small store built here (ours and submitted, one agent named like a script tag) checks numbers
worked out by hand; the published TD-MPC2 and BRO curves in ../shared/data check the real thing
in a browser. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import duckdb
import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from harness import catalog, scores
from harness.commands.leaderboard import register
from harness.errors import HarnessError
from harness.leaderboard import BuildOptions, build
from harness.leaderboard.data import assemble, read, slug, task_pages, task_slug
from harness.store import Store, insert_points, upsert_run
from harness.submit import ReadOptions, StepGrid, SubmitOptions, plan_submission, store_submission

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
HARD = catalog.GROUPS["dmc-hard"].tasks  # dog-stand, dog-walk, dog-trot, dog-run, humanoid-stand, -walk, -run
XSS = "<script>alert(1)</script>"
STAMP = re.compile(r'^<p class="stamp">.*</p>$', re.MULTILINE)


# ----------------------------------------------------------------------------------------------
# A small store with numbers worked out by hand


def small_store(results: Path) -> Store:
    """dmc-hard (7 tasks), final return = 1000 x normalised score, evaluations at steps 1000 and 2000.

    - ``sac`` (ours): task i has final scores 0.10 + 0.1 i and 0.15 + 0.1 i (seeds 0, 1), plus a
      seed 2 on dog-run that stops at step 1000 (excluded from final scores).
    - ``<script>alert(1)</script>`` (submitted): task i has 0.50 + 0.05 i and 0.60 + 0.05 i.
    - ``partial`` (submitted): seed 0 on three dog tasks only, 0.3 each.
    """
    store = Store(results / "harness.duckdb")
    with store.transaction() as con:
        for i, task in enumerate(HARD):
            for seed, final in ((0, 0.10 + 0.1 * i), (1, 0.15 + 0.1 * i)):
                _our_run(con, task, seed, [1000, 2000], [500 * final, 1000 * final])
        _our_run(con, HARD[3], 2, [1000], [100.0])
    rows = [(task, seed, step, step / 2000 * 1000 * final)
            for i, task in enumerate(HARD) for seed, final in ((0, 0.50 + 0.05 * i), (1, 0.60 + 0.05 * i))
            for step in (1000, 2000)]
    meta = {"paper": "javascript:alert(2)", "notes": "<img src=x onerror=alert(3)>",
            "url": 'https://example.org/"><script>alert(4)</script>'}
    _submit(store, results / "xss.csv", rows, XSS, meta)
    rows = [(task, 0, step, step / 2000 * 300.0) for task in HARD[:3] for step in (1000, 2000)]
    _submit(store, results / "partial.csv", rows, "partial", {"url": "https://example.org/paper?a=1&b=2"})
    return store


def _our_run(con: duckdb.DuckDBPyConnection, task: str, seed: int, steps: list[int], values: list[float]) -> None:
    run_id = f"sac-{task_slug(task)}-{seed}"
    upsert_run(con, {"run_id": run_id, "source": "harness", "label": "sac", "agent": "sac", "config_hash": "c0ffee",
                     "config": {"hidden_dims": [256, 256], "actor_lr": 0.0003}, "task": task, "seed": seed,
                     "budget": 2000, "status": "finished", "git_commit": "abc1234"})
    insert_points(con, pd.DataFrame({"run_id": run_id, "metric": "eval/return", "step": steps, "value": values}))


def _submit(store: Store, path: Path, rows: list[tuple[str, int, int, float]], agent: str,
            meta: dict[str, str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "seed", "step", "value"])
        writer.writerows(rows)
    plan = plan_submission(store, path, SubmitOptions(ReadOptions("long"), agent=agent, meta=meta))
    assert not plan.problems, plan.problems
    store_submission(store, plan)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return small_store(tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="module")
def small_site(small: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small-site") / "leaderboard"
    build(small, out, BuildOptions(reps=500))
    return out


def test_suite_table_numbers_by_hand(small: Store) -> None:
    with small.connect(read_only=True) as con:
        source = read(con, str(small.path))
    board = assemble(source, task_pages(source), BuildOptions(reps=500))
    suite = next(s for s in board.suites if s.name == "dmc-hard")
    assert [r.label for r in suite.ranked] == [XSS, "sac"] and [r.rank for r in suite.ranked] == [1, 2]
    xss, sac = suite.ranked
    # sac: 14 scores 0.10, 0.15, ..., 0.75; IQM drops 14 // 4 = 3 at each end: mean(0.25 .. 0.60) = 0.425.
    # Task means 0.125 + 0.1 i (i = 0..6): mean 0.425, median (i = 3) 0.425, optimality gap 1 - 0.425.
    assert sac.point == pytest.approx({"iqm": 0.425, "mean": 0.425, "median": 0.425, "optimality_gap": 0.575})
    # The other agent: 0.50 .. 0.80 and 0.60 .. 0.90 by 0.05; the middle eight sum to 5.6: IQM 0.70.
    assert xss.point["iqm"] == pytest.approx(0.70)
    assert sac.excluded == 1 and sac.seeds == (2, 2) and sac.budget == (2000, 2000) and sac.covered == 7
    for row in (xss, sac):
        assert row.intervals is not None
        assert all(row.intervals[n].low <= row.point[n] <= row.intervals[n].high for n in row.point)
    [partial] = suite.partial
    assert partial.label == "partial" and partial.rank is None and partial.covered == 3 and partial.intervals is None
    assert partial.point["iqm"] == pytest.approx(0.3)
    # Every run of the top agent beats every run of sac on every task (0.50 + 0.05 i > 0.15 + 0.1 i for i < 7).
    assert suite.top == (XSS, "sac")
    assert suite.improvement == {(XSS, "sac"): 1.0, ("sac", XSS): 0.0}
    assert suite.leader[XSS, "sac"].point == 1.0 and list(suite.leader) == [(XSS, "sac")]
    # sac's stopped-early run has only step 1000, so its runs share one step: no sample-efficiency curve.
    assert list(suite.efficiency) == [XSS] and suite.efficiency_missing == ("sac",)
    assert list(suite.efficiency[XSS].x) == [1000.0, 2000.0]
    assert suite.task_means[HARD[3], "sac"] == pytest.approx(0.425)  # (0.40 + 0.45) / 2; seed 2 left out
    dog_run = next(t for t in board.tasks if t.name == HARD[3])
    excluded = [r for r in dog_run.runs if r.excluded]
    assert [(r.label, r.seed) for r in excluded] == [("sac", 2)]
    assert excluded[0].excluded == "stopped early at step 1,000 (others reach 2,000)"
    agents = {a.label: a for a in board.agents}
    assert agents["sac"].source == "ours" and agents[XSS].source == "submitted"
    assert '"hidden_dims"' in agents["sac"].configs[0].text and agents["sac"].configs[0].budgets == (2000,)
    assert agents[XSS].links == () and agents["partial"].links == ("https://example.org/paper?a=1&b=2",)
    assert ("dmc-hard", 3, 7) in agents["partial"].suites


def test_submitted_text_is_escaped(small_site: Path) -> None:
    pages = {p: p.read_text() for p in small_site.rglob("*") if p.suffix in (".html", ".svg")}
    for path, text in pages.items():
        assert "<script>alert" not in text, path
        assert "<img src=x" not in text, path
        assert not re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", text, re.IGNORECASE), path
    index = pages[small_site / "index.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert 'href="https://example.org/paper?a=1&amp;b=2"' in index  # the partial agent's source link
    agent_page = pages[small_site / "agents" / f"{slug(XSS)}.html"]
    assert "&lt;img src=x onerror=alert(3)&gt;" in agent_page and "javascript:alert(2)" in agent_page


def test_rebuild_gives_the_same_files(small: Store, small_site: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build(small, again, BuildOptions(reps=500))
    build(small, again, BuildOptions(reps=500))  # a rebuild into the same folder replaces the previous one
    first, second = _tree(small_site), _tree(again)
    assert sorted(first) == sorted(second)
    for name, content in first.items():
        if name.endswith(".html"):
            assert len(STAMP.findall(content.decode())) == 1, name
            assert STAMP.sub("", content.decode()) == STAMP.sub("", second[name].decode()), name
        else:
            assert content == second[name], name


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args: object) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    if isinstance(result.exception, HarnessError):
        return result.exception.exit_code, result.output + "\n" + str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_cli_build_and_refusals(small: Store, tmp_path: Path) -> None:
    code, output = cli("leaderboard", "build", "--results", small.path.parent, "--out", tmp_path / "site",
                       "--reps", 200, "--seed", 3)
    assert code == 0, output
    assert "Wrote" in output and (tmp_path / "site" / "index.html").is_file()
    # dmc-hard, dmc-all, tdmpc2-dmc, bro-dmc and bro-40 hold dog or humanoid tasks
    assert "5 suite tables" in output and "7 task pages" in output and "3 agent pages" in output
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    code, output = cli("leaderboard", "build", "--results", small.path.parent, "--out", foreign)
    assert code == 2 and "not empty" in output and (foreign / "todo.txt").read_text() == "mine"
    code, output = cli("leaderboard", "build", "--results", tmp_path / "nothing", "--out", tmp_path / "x")
    assert code == 2 and "no store" in output


# ----------------------------------------------------------------------------------------------
# The published TD-MPC2 and BRO curves, in headless Chromium

REAL = [
    ("tdmpc2", DATA / "tdmpc2" / "tdmpc2", ReadOptions("tdmpc2"), {"url": "https://github.com/nicklashansen/tdmpc2"}),
    ("sac", DATA / "tdmpc2" / "sac", ReadOptions("tdmpc2"), {}),
    ("BRO", DATA / "bro" / "BRO", ReadOptions("bro", grid=StepGrid(25_000, 25_000)),
     {"paper": "https://arxiv.org/abs/2405.16158"}),
    ("BRO_fast", DATA / "bro" / "BRO_fast", ReadOptions("bro", grid=StepGrid(25_000, 25_000)), {}),
]
needs_data = pytest.mark.skipif(not all(path.is_dir() for _, path, _, _ in REAL),
                                reason=f"published TD-MPC2/BRO data not found under {DATA} (see shared/data/README.md)")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(tmp_path_factory.mktemp("real") / "harness.duckdb")
    for agent, path, options, meta in REAL:
        plan = plan_submission(store, path, SubmitOptions(options, agent=agent, meta=meta, skip_unknown_tasks=True))
        assert not plan.problems, plan.problems
        store_submission(store, plan)
    return store


@pytest.fixture(scope="module")
def real_site(real: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real-site") / "leaderboard"
    build(real, out, BuildOptions(reps=200))
    return out


@needs_data
def test_final_scores_match_a_per_run_reference(real: Store) -> None:
    # The leaderboard's final scores are scores.at_step's (one implementation since report,
    # leaderboard and gate share it); checked here against a plain per-run loop over the points.
    tasks = catalog.GROUPS["bro-40"].tasks
    with real.connect(read_only=True) as con:
        selection = scores.load(con, tasks=tasks)
    points = selection.points
    for label in ("tdmpc2", "BRO"):
        got = scores.at_step(selection, label, tasks)
        for j, task in enumerate(tasks):
            part = points[(points.label == label) & (points.task == task)]
            target = part.step.max()
            finals, stopped = [], set()
            for run_id, run in part.groupby("run_id", sort=True):
                run = run.sort_values("step")
                if run.step.iloc[-1] < target:
                    stopped.add(str(run_id))
                else:
                    finals.append(float(run.score.iloc[-1]))
            column = got.scores[:, j]
            np.testing.assert_array_equal(column[~np.isnan(column)], finals)
            assert {e.run_id for e in got.exclusions if e.task == task} == stopped
    assert scores.at_step(selection, "tdmpc2", tasks).exclusions  # TD-MPC2 has seeds that stop early


@needs_data
def test_links_resolve(real_site: Path) -> None:
    pages = sorted(real_site.rglob("*.html"))
    assert len(pages) > 100
    ids = {page: _Links.of(page).ids for page in pages}
    checked = 0
    for page in pages:
        for link in _Links.of(page).links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https"):
                continue
            assert not parts.scheme and not parts.netloc, f"{page}: {link}"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), f"{page}: {link} -> {target}"
            if parts.fragment:
                assert parts.fragment in ids[target], f"{page}: {link}"
            checked += 1
    assert checked > 1000


class _Links(HTMLParser):
    """The href/src values and element ids of one page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
            if name == "id" and value is not None:
                self.ids.add(value)

    @classmethod
    def of(cls, page: Path) -> _Links:
        parser = cls()
        parser.feed(page.read_text())
        return parser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install .[dev])")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (see the README's install line)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser: object, path: Path, width: int = 1280) -> tuple[object, list[str]]:
    """A new page at ``path`` (file://) and the list its console errors, page errors and dialogs go to."""
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_dialog(dialog: Any) -> None:  # with a listener, Playwright leaves the dialog to us
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def _shoot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


@needs_data
def test_index_sorts_by_clicking_headers(browser: object, real_site: Path) -> None:
    page, problems = _open(browser, real_site / "index.html")
    _shoot(page, "leaderboard-index")
    table = page.locator("#suite-bro-40 table.sortable").first  # type: ignore[attr-defined]
    header = table.locator("thead th")
    names = [header.nth(i).inner_text().strip(" ↕▲▼") for i in range(header.count())]
    iqm, agent = names.index("IQM [95% CI]") + 1, names.index("Agent") + 1

    def column(index: int) -> list[str]:
        return [c.strip() for c in table.locator(f"tbody tr > :nth-child({index})").all_inner_texts()]

    ranked = column(agent)
    assert sorted(ranked) == ["BRO", "BRO_fast", "sac", "tdmpc2"]
    values = [float(v.split()[0]) for v in column(iqm)]  # "0.945 [0.935, 0.954]"
    assert values == sorted(values, reverse=True)  # ranked by IQM
    table.locator("thead th button", has_text="IQM").first.click()
    assert [float(v.split()[0]) for v in column(iqm)] == sorted(values)
    assert column(agent) == ranked[::-1]
    table.locator("thead th button", has_text="IQM").first.click()
    assert [float(v.split()[0]) for v in column(iqm)] == sorted(values, reverse=True)
    table.locator("thead th button", has_text="Agent").click()
    assert column(agent) == sorted(ranked, key=str.lower)
    assert table.locator("thead th", has_text="Agent").get_attribute("aria-sort") == "ascending"
    assert problems == []
    page.close()  # type: ignore[attr-defined]
    phone, problems = _open(browser, real_site / "index.html", width=390)
    _shoot(phone, "leaderboard-index-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # type: ignore[attr-defined]
    assert problems == []


@needs_data
def test_task_suite_and_agent_pages_load_cleanly(browser: object, real_site: Path) -> None:
    for path, name in ((real_site / "tasks" / f"{task_slug('dmc/dog-run')}.html", "leaderboard-task"),
                       (real_site / "suites" / "bro-40.html", "leaderboard-suite"),
                       (real_site / "agents" / f"{slug('tdmpc2')}.html", "leaderboard-agent"),
                       (real_site / "methodology.html", "leaderboard-methodology")):
        page, problems = _open(browser, path)
        _shoot(page, name)
        images = page.locator("img")  # type: ignore[attr-defined]
        for i in range(images.count()):
            image = images.nth(i)
            assert image.get_attribute("alt"), path
            assert image.evaluate("i => i.complete && i.naturalWidth > 0"), f"{path}: {image.get_attribute('src')}"
        assert page.locator("table th").count() > 0 or name == "leaderboard-methodology"  # type: ignore[attr-defined]
        assert problems == [], path
        page.close()  # type: ignore[attr-defined]
    phone, problems = _open(browser, real_site / "tasks" / f"{task_slug('dmc/dog-run')}.html", width=390)
    _shoot(phone, "leaderboard-task-phone")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # type: ignore[attr-defined]
    assert problems == []


def test_script_named_agent_shows_as_text(browser: object, small_site: Path) -> None:
    for path in (small_site / "index.html", small_site / "agents" / f"{slug(XSS)}.html",
                 small_site / "tasks" / f"{task_slug(HARD[0])}.html"):
        page, problems = _open(browser, path)
        assert XSS in page.locator("main").inner_text(), path  # type: ignore[attr-defined]
        assert problems == [], path  # no dialog fired, no error
        if path.parent.name == "agents":
            assert page.locator("h1").inner_text() == f"Agent {XSS}"  # type: ignore[attr-defined]
            _shoot(page, "leaderboard-xss-agent")
        page.close()  # type: ignore[attr-defined]
