"""`harness baselines`: the registry of published result sets, checked against the shared copies,
and `add --from DIR` through the submission path (tests never download)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.baselines import registry
from harness.commands.baselines import register
from harness.errors import HarnessError, InputError
from harness.leaderboard import BuildOptions
from harness.leaderboard.data import assemble, read, task_pages
from harness.store import Store
from harness.submit.formats import FORMATS
from tests.test_submit import query

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Where each upstream's files are in the shared copies (the --from folder of its sets).
SHARED = {"nicklashansen/tdmpc2": DATA / "tdmpc2", "naumix/BiggerRegularizedOptimistic": DATA / "bro",
          "naumix/BiggerRegularizedCategorical": DATA / "brc"}
needs_data = pytest.mark.skipif(not all(p.is_dir() for p in SHARED.values()),
                                reason=f"published data not found at {DATA} (see shared/data/README.md)")


def cli(*args: object) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    if isinstance(result.exception, HarnessError):
        return result.exception.exit_code, result.output + "\n" + str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_registry_entries_are_pinned_and_complete():
    sets = registry()
    assert {"tdmpc2", "tdmpc", "sac-tdmpc2", "dreamerv3-tdmpc2", "bro", "bro-fast", "brc-multitask",
            "brc-singletask"} <= set(sets)
    for baseline in sets.values():
        assert re.fullmatch(r"[0-9a-f]{40}", baseline.commit), baseline.name
        assert baseline.licence and baseline.citation and baseline.paper.startswith("https://")
        for part in baseline.parts:
            assert part.format in FORMATS and part.files
            assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in part.files.values()), baseline.name
    assert len({b.agent for b in sets.values()}) == len(sets)  # one label per set


@needs_data
def test_registry_hashes_match_the_shared_copies():
    for baseline in registry().values():
        root = SHARED.get(baseline.repository)
        if root is None:  # no shared copy (DreamerV3's score files)
            continue
        for part in baseline.parts:
            for name, expected in part.files.items():
                assert hashlib.sha256((root / part.local / name).read_bytes()).hexdigest() == expected, name


def test_list_names_every_set():
    code, out = cli("baselines", "list")
    assert code == 0, out
    for name, baseline in registry().items():
        assert name in out and baseline.agent in out


@needs_data
def test_add_from_a_folder_stores_with_provenance_once(tmp_path):
    results = tmp_path / "r"
    code, out = cli("baselines", "add", "bro-fast", "--from", DATA / "bro", "--results", results)
    assert code == 0, out
    assert re.search(r"bro-fast BRO_fast: stored as submission [0-9a-f]{12} \(400 runs\)", out), out
    db = results / "harness.duckdb"
    assert query(db, "SELECT label, count(*), count(DISTINCT task) FROM runs GROUP BY label") == [
        ("bro-fast-paper", 400, 40)]
    (meta,) = query(db, "SELECT meta FROM submissions")
    record = json.loads(meta[0])
    assert record["baseline"] == "bro-fast" and record["licence"] == "MIT"
    assert record["url"] == "https://github.com/naumix/BiggerRegularizedOptimistic/tree/" \
                            "5870a13d4bf4f66eeddfc291a59df6d2009de600"
    assert "Bigger, Regularized, Optimistic" in record["citation"]
    code, out = cli("baselines", "add", "bro-fast", "--from", DATA / "bro", "--results", results)
    assert code == 0 and "bro-fast BRO_fast: already in the store" in out
    assert query(db, "SELECT count(*) FROM submissions") == [(1,)]
    # The leaderboard ranks it in BRO's suites, and its agent page carries the citation and licence.
    store = Store(db)
    with store.connect(read_only=True) as con:
        source = read(con, str(db))
    board = assemble(source, task_pages(source), BuildOptions(reps=200))
    suite = next(s for s in board.suites if s.name == "bro-dmc")
    assert [row.label for row in suite.ranked] == ["bro-fast-paper"]
    (agent,) = board.agents
    given = dict(agent.submissions[0].meta)
    assert given["citation"] == registry()["bro-fast"].citation and given["licence"] == "MIT"


@needs_data
def test_brc_multitask_recorded_as_multitask(tmp_path):
    results = tmp_path / "r"
    code, out = cli("baselines", "add", "brc-multitask", "--from", DATA / "brc", "--results", results)
    assert code == 0, out
    assert "brc-multitask dmc/BRC_multitask: stored" in out
    assert "brc-multitask metaworld/BRC_multitask: stored" in out
    assert "brc-multitask shadowhand/BRC_multitask: stored" in out
    assert query(results / "harness.duckdb", "SELECT DISTINCT variant FROM runs") == [("multitask",)]
    assert query(results / "harness.duckdb", "SELECT count(DISTINCT task) FROM runs WHERE task LIKE 'shadowhand/%'") \
        == [(85,)]


@needs_data
def test_a_file_that_differs_stops_everything(tmp_path):
    folder = tmp_path / "from"
    shutil.copytree(DATA / "bro" / "BRO_fast", folder / "BRO_fast")
    changed = folder / "BRO_fast" / "dog-run.npy"
    changed.write_bytes(changed.read_bytes()[:-8] + b"\0" * 8)
    (folder / "BRO_fast" / "walker-run.npy").unlink()
    code, out = cli("baselines", "add", "bro-fast", "--from", folder, "--results", tmp_path / "r")
    assert code == 1
    assert "2 file(s) differ from the registry; nothing was stored" in out
    assert "dog-run.npy: SHA-256" in out and "walker-run.npy: missing" in out
    assert not (tmp_path / "r" / "harness.duckdb").exists()


def test_unknown_name_and_bad_registry(tmp_path):
    code, out = cli("baselines", "add", "nope", "--from", tmp_path, "--results", tmp_path / "r")
    assert code == 2 and "unknown baseline(s) 'nope'; valid: tdmpc2" in out
    bad = tmp_path / "baselines.toml"
    bad.write_text('[x]\nagent = "a"\n')
    with pytest.raises(InputError, match=r"baselines.toml, \[x\]: unknown keys \[\], missing keys"):
        registry(bad)
