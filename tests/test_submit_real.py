"""Importing the published TD-MPC2 and BRO curves in ../shared/data; counts checked against the files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from harness.commands.submit import register
from harness.errors import HarnessError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TDMPC2 = DATA / "tdmpc2"
BRO = DATA / "bro"
MANISKILL = {"lift-cube", "pick-cube", "pick-ycb", "stack-cube", "turn-faucet"}  # not in our catalog
ALGORITHMS = ("tdmpc2", "tdmpc", "sac", "dreamerv3")

pytestmark = pytest.mark.skipif(not (TDMPC2.is_dir() and BRO.is_dir()),
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


def tdmpc2_counts(folder: Path) -> tuple[int, int, int]:
    """(tasks, runs, points) the files hold, counted with the csv module, ManiSkill left out.

    A seed label whose step goes back down starts another run; a row that repeats the previous row
    of its label exactly is not a point.
    """
    tasks = runs = points = 0
    for file in sorted(folder.glob("*.csv")):
        if file.stem in MANISKILL:
            continue
        tasks += 1
        last: dict[str, tuple[float, str]] = {}  # label -> (step, value) of its previous row
        with file.open(newline="") as handle:
            for step_text, value, label in csv.reader(handle):
                if step_text == "step":
                    continue
                step = float(step_text)
                if label not in last or step < last[label][0]:
                    runs += 1
                if last.get(label) != (step, value):
                    points += 1
                last[label] = (step, value)
    return tasks, runs, points


def per_submission(db: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """agent -> (tasks, runs, points, first step, last step) in the store."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT r.agent, count(DISTINCT r.task), count(DISTINCT r.run_id), count(*), min(c.step), "
            "max(c.step) FROM runs r JOIN curves c USING (run_id) WHERE r.source = 'submission' "
            "GROUP BY r.agent").fetchall()
    finally:
        con.close()
    return {agent: tuple(counts) for agent, *counts in rows}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store holding all four TD-MPC2 algorithms and both BRO variants."""
    results = tmp_path_factory.mktemp("results")
    for algorithm in ALGORITHMS:
        extra = ("--split-duplicate-seeds",) if algorithm == "tdmpc" else ()
        code, out = cli("submit", TDMPC2 / algorithm, "--format", "tdmpc2", "--agent", f"{algorithm}-paper",
                        "--skip-unknown-tasks", "--results", results, "--meta", "paper=arXiv:2310.16828",
                        *extra)
        assert code == 0, out
        assert f"Skipped tasks (5): {', '.join(sorted(MANISKILL))}" in out
    for variant in ("BRO", "BRO_fast"):
        code, out = cli("submit", BRO / variant, "--format", "bro", "--agent", variant, "--results", results,
                        "--step-start", 25000, "--step-every", 25000)
        assert code == 0, out
    return results / "harness.duckdb"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tdmpc2_folders_import_with_counts_from_the_files(imported, algorithm):
    tasks, runs, points = tdmpc2_counts(TDMPC2 / algorithm)
    # By hand from the files: 104 tasks - 5 ManiSkill = 99, 3 seeds each = 297 runs; tdmpc has
    # 23 labels carrying a second run (320 runs) and 28 exactly repeated MyoSuite rows.
    expected_runs = {"tdmpc2": 297, "tdmpc": 320, "sac": 297, "dreamerv3": 297}[algorithm]
    assert (tasks, runs) == (99, expected_runs)
    got = per_submission(imported)[f"{algorithm}-paper"]
    assert got[:3] == (tasks, runs, points)
    assert got[3] == 0 and got[4] in (13_900_000, 14_000_000)  # dog/humanoid go to 14M (dreamerv3 13.9M)


@pytest.mark.parametrize("variant", ["BRO", "BRO_fast"])
def test_bro_folders_import_with_counts_from_the_files(imported, variant):
    arrays = [np.load(f) for f in sorted((BRO / variant).glob("*.npy"))]
    points = sum(a.size for a in arrays)
    runs = sum(a.shape[1] for a in arrays)
    evaluations = {a.shape[0] for a in arrays}
    assert (len(arrays), runs, points, evaluations) == (40, 400, 16_000, {40})  # 40 tasks x (40 x 10)
    # Step of evaluation i is 25,000 + 25,000 i: 25,000 to 25,000 + 39 x 25,000 = 1,000,000.
    assert per_submission(imported)[variant] == (40, runs, points, 25_000, 1_000_000)


def test_published_names_map_to_catalog_tasks(imported):
    con = duckdb.connect(str(imported), read_only=True)
    try:
        tasks = set(con.execute("SELECT DISTINCT agent, task FROM runs").fetchall())
        metrics = dict(con.execute("SELECT r.task, any_value(c.metric) FROM runs r JOIN curves c "
                                   "USING (run_id) GROUP BY r.task").fetchall())
        [(bro_value,)] = con.execute(
            "SELECT c.value FROM runs r JOIN curves c USING (run_id) WHERE r.agent = 'BRO' "
            "AND r.task = 'dmc/dog-run' AND r.seed = 1 AND c.step = 50000").fetchall()
    finally:
        con.close()
    # TD-MPC2's cup-catch, finger-turn-hard, mw-assembly, myo-hand-reach; BRO's finger-turn,
    # assembly-v2-goal-observable, myo-reach.
    for name in ("dmc/ball-in-cup-catch", "dmc/finger-turn-hard", "metaworld/assembly", "myosuite/myo-reach"):
        assert ("tdmpc2-paper", name) in tasks
    for name in ("dmc/finger-turn-hard", "metaworld/assembly", "myosuite/myo-reach"):
        assert ("BRO", name) in tasks
    assert metrics["dmc/dog-run"] == "eval/return" and metrics["metaworld/assembly"] == "eval/success"
    # Raw values as published: evaluation 1 (step 50,000), seed column 1 of BRO's dog-run array.
    assert bro_value == pytest.approx(float(np.load(BRO / "BRO" / "dog-run.npy")[1, 1]))


def test_tdmpc_duplicate_seed_labels_are_reported_without_the_option(tmp_path):
    code, out = cli("submit", TDMPC2 / "tdmpc", "--format", "tdmpc2", "--agent", "tdmpc-paper",
                    "--skip-unknown-tasks", "--results", tmp_path, "--dry-run")
    assert code == 1
    assert "Problems (23)" in out
    assert ("dog-run.csv, line 466, column seed: '1' starting over at step 0; expected one run per seed "
            "label (this label carries 2 runs: line 284 to line 424 (steps 0-14000000); line 466 to line 506 "
            "(steps 0-4000000))") in out
    assert "pendulum-swingup.csv, line 33, column seed: '3' starting over at step 0" in out
    assert not (tmp_path / "harness.duckdb").exists()


def test_submission_records_the_tdmpc2_step_meaning(imported):
    con = duckdb.connect(str(imported), read_only=True)
    try:
        [(meta,)] = con.execute("SELECT meta FROM submissions WHERE agent = 'tdmpc-paper'").fetchall()
    finally:
        con.close()
    record = json.loads(meta)
    assert record["paper"] == "arXiv:2310.16828"
    assert any("repeats each action twice" in note for note in record["harness_import"]["notes"])
    assert record["harness_import"]["skipped_tasks"] == sorted(MANISKILL)
    assert sum("is stored as seed" in note for note in record["harness_import"]["notes"]) == 23
