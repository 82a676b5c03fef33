"""`harness submit` / `harness submissions`: validation with small bad files, provenance, store rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import harness
from harness.commands.submit import register
from harness.errors import HarnessError
from harness.store import Store, upsert_run
from harness.submit import (
    LongColumns,
    ReadOptions,
    SubmitOptions,
    list_submissions,
    plan_submission,
    store_submission,
)
from harness.submit.ingest import content_sha256, run_id

TABLES = ("meta", "tasks", "submissions", "runs", "curves")


def cli(*args: object) -> tuple[int, str]:
    """Run the commands on a local app; a HarnessError gives its exit code, as the real main does."""
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    if isinstance(result.exception, HarnessError):
        return result.exception.exit_code, result.output + "\n" + str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def submit(path: Path, results: Path, *options: object) -> tuple[int, str]:
    return cli("submit", path, "--results", results, *options)


def long_csv(folder: Path, rows: str, name: str = "results.csv",
             header: str = "task,seed,step,value") -> Path:
    return write(folder, name, header + "\n" + rows)


def digest(db: Path) -> dict[str, tuple[int, str]]:
    """Row count and an MD5 over the sorted rows of every table."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            table: con.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, '|' ORDER BY t::VARCHAR), '')) "
                f"FROM {table} t").fetchall()[0]
            for table in TABLES
        }
    finally:
        con.close()


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


GOOD = "cheetah-run,1,0,10\ncheetah-run,1,1000,20\ncheetah-run,2,0,11\ncheetah-run,2,1000,21\n"


# ----------------------------------------------------------------------------------------------
# Validation: each case a small bad file; nothing is stored, exit 1, the problem is located.


def rejected(path: Path, tmp_path: Path, *options: object, fmt: str = "long") -> str:
    code, out = submit(path, tmp_path / "results", "--format", fmt, "--agent", "a", *options)
    assert code == 1, out
    assert "nothing was stored" in out
    assert not (tmp_path / "results" / "harness.duckdb").exists()
    return out


def test_missing_and_extra_columns_are_both_listed(tmp_path):
    path = long_csv(tmp_path / "in", "cheetah-run,1,0,5\n", header="task,seed,step,wall_time")
    out = rejected(path, tmp_path)
    assert "results.csv, line 1, column value: missing" in out
    # Every extra column is named in one problem (the issue asked for that; it was one per column).
    assert "results.csv, line 1: 1 extra column(s): 'wall_time'; expected the columns task" in out


def test_tdmpc2_columns_checked(tmp_path):
    write(tmp_path / "in", "cheetah-run.csv", "step,reward,run\n0,1.0,1\n")
    out = rejected(tmp_path / "in", tmp_path, fmt="tdmpc2")
    assert "cheetah-run.csv, line 1, column seed: missing" in out
    assert "cheetah-run.csv, line 1: 1 extra column(s): 'run'; expected the columns step, reward" in out


def test_non_numeric_nan_and_inf_values_each_reported(tmp_path):
    rows = "cheetah-run,1,0,abc\ncheetah-run,1,1000,nan\ncheetah-run,1,2000,inf\ncheetah-run,1,3000,\n"
    out = rejected(long_csv(tmp_path / "in", rows), tmp_path)
    for line, value in ((2, "'abc'"), (3, "'nan'"), (4, "'inf'"), (5, "''")):
        assert f"results.csv, line {line}, column value: {value}; expected a finite number" in out
    assert "Problems (4)" in out


def test_negative_non_integer_and_non_monotonic_steps(tmp_path):
    rows = ("cheetah-run,1,-5,1\ncheetah-run,1,0,1\ncheetah-run,1,200,1\ncheetah-run,1,100,1\n"
            "cheetah-run,1,2.5e3,1\ncheetah-run,1,2999.5,1\n")
    out = rejected(long_csv(tmp_path / "in", rows), tmp_path)
    assert "line 2, column step: '-5'; expected a whole number of environment steps, 0 or more" in out
    # 100 comes after 200 but is above the seed's first step: out of order, not a second run.
    assert "line 5, column step: '100'; expected a step above 200" in out
    assert "line 7, column step: '2999.5'; expected a whole number" in out
    assert "Problems (3)" in out  # 2.5e3 = 2500 is a whole number after 200: fine


def test_duplicate_step_with_different_values_is_a_problem(tmp_path):
    rows = "cheetah-run,1,0,1\ncheetah-run,1,1000,5\ncheetah-run,1,1000,6\n"
    out = rejected(long_csv(tmp_path / "in", rows), tmp_path)
    assert "line 4, column step: '1000'; expected one row per (task, seed, step)" in out
    assert "values 5 and 6" in out


def test_exact_repeated_row_is_dropped_with_a_note(tmp_path):
    rows = "cheetah-run,1,0,1\ncheetah-run,1,1000,5\ncheetah-run,1,1000,5\n"
    code, out = submit(long_csv(tmp_path / "in", rows), tmp_path / "r", "--format", "long", "--agent", "a")
    assert code == 0, out
    # The note names the dropped line and the line it repeats (it said "the row before them" also
    # for repeats that were not adjacent).
    assert "dropped 1 row(s) that repeat an earlier row of their task and seed exactly" in out
    assert "line 4 (= line 3)" in out
    assert query(tmp_path / "r" / "harness.duckdb", "SELECT count(*) FROM curves") == [(2,)]


def test_seed_label_carrying_two_runs(tmp_path):
    # Seed 1 runs 0..2000, then the label starts over at 0 (a second run); seed 2 is fine.
    rows = ("cheetah-run,1,0,1\ncheetah-run,1,1000,2\ncheetah-run,1,2000,3\ncheetah-run,2,0,4\n"
            "cheetah-run,2,1000,5\ncheetah-run,1,0,6\ncheetah-run,1,1000,7\n")
    path = long_csv(tmp_path / "in", rows)
    out = rejected(path, tmp_path)
    assert ("results.csv, line 7, column seed: '1' starting over at step 0; expected one run per seed label "
            "(this label carries 2 runs: line 2 to line 4 (steps 0-2000); line 7 to line 8 (steps 0-1000))"
            ) in out
    assert "--split-duplicate-seeds" in out

    results = tmp_path / "r"
    code, out = submit(path, results, "--format", "long", "--agent", "a", "--split-duplicate-seeds")
    assert code == 0, out
    # The second run of label 1 gets the next number after the task's largest seed (2): seed 3.
    assert "the run at line 7 to line 8 (steps 0-1000) is stored as seed 3" in out
    rows_by_seed = query(results / "harness.duckdb",
                         "SELECT r.seed, list(c.value ORDER BY c.step) FROM runs r "
                         "JOIN curves c USING (run_id) GROUP BY r.seed ORDER BY r.seed")
    assert rows_by_seed == [(1, [1.0, 2.0, 3.0]), (2, [4.0, 5.0]), (3, [6.0, 7.0])]


def test_success_outside_unit_interval(tmp_path):
    rows = "mw-assembly,1,0,0.5\nmw-assembly,1,1000,1.5\nmw-assembly,1,2000,-0.1\n"
    out = rejected(long_csv(tmp_path / "in", rows), tmp_path)
    assert "line 3, column value: '1.5'; expected a success rate in [0, 1]" in out
    assert "line 4, column value: '-0.1'; expected a success rate in [0, 1]" in out


def test_metric_kind_disagreeing_with_catalog(tmp_path):
    write(tmp_path / "in", "mw-assembly.csv", "step,reward,seed\n0,150.0,1\n")
    out = rejected(tmp_path / "in", tmp_path, fmt="tdmpc2")
    assert ("mw-assembly.csv, line 2, column reward: 'reward'; expected a success metric: the catalog scores "
            "metaworld/assembly by success rate") in out
    rows = "cheetah-run,1,0,0.5,success\n"
    out = rejected(long_csv(tmp_path / "l", rows, header="task,seed,step,value,metric"), tmp_path)
    assert "expected a return metric: the catalog scores dmc/cheetah-run by episode return" in out
    rows = "cheetah-run,1,0,0.5,score\n"
    out = rejected(long_csv(tmp_path / "m", rows, header="task,seed,step,value,metric"), tmp_path)
    assert "column metric: 'score'; expected a metric name that says what it measures" in out


def test_empty_file_and_header_only(tmp_path):
    write(tmp_path / "in", "cheetah-run.csv", "")
    write(tmp_path / "in", "walker-run.csv", "step,reward,seed\n")
    out = rejected(tmp_path / "in", tmp_path, fmt="tdmpc2")
    assert "cheetah-run.csv: an empty file (0 bytes)" in out
    assert "walker-run.csv: a header and no data rows" in out


def test_files_that_are_not_what_format_says(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "x.npy", np.zeros((2, 2)))
    out = rejected(folder, tmp_path, fmt="tdmpc2")
    assert "x.npy: a file without the .csv suffix" in out
    write(tmp_path / "bro", "dog-run.npy", "step,reward,seed\n0,1,1\n")
    out = rejected(tmp_path / "bro", tmp_path, "--step-start", 0, "--step-every", 1, fmt="bro")
    assert "dog-run.npy:" in out and "expected a NumPy .npy array" in out
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "results.csv").write_bytes(b"PK\x03\x04\x00\x00binary")
    out = rejected(tmp_path / "bin" / "results.csv", tmp_path)
    assert "results.csv: binary content; expected a text CSV file" in out
    fake = long_csv(tmp_path / "pq", GOOD, name="results.parquet")
    out = rejected(fake, tmp_path)
    assert "results.parquet: no Parquet magic bytes; expected a Parquet file" in out
    out = rejected(tmp_path / "pq", tmp_path)
    assert "pq: a folder; expected one CSV or Parquet file" in out


def test_bro_arrays_checked(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "dog-run.npy", np.array([[1.0, np.nan], [np.inf, 4.0]]))  # (evaluations, seeds)
    np.save(folder / "dog-walk.npy", np.zeros((2, 2, 2)))
    np.save(folder / "myo-reach.npy", np.array([[0.5], [1.5]]))
    out = rejected(folder, tmp_path, "--step-start", 25000, "--step-every", 25000, fmt="bro")
    assert "dog-run.npy, evaluation 0, seed column 1, column value: 'nan'; expected a finite number" in out
    assert "dog-run.npy, evaluation 1, seed column 0, column value: 'inf'; expected a finite number" in out
    assert ("dog-walk.npy: an array of shape (2, 2, 2); expected a non-empty 2-D array "
            "(evaluations, seeds)") in out
    assert "myo-reach.npy, evaluation 1, seed column 0, column value: '1.5'; expected a success rate" in out
    assert "Problems (4)" in out


def test_ragged_lines_all_reported(tmp_path):
    rows = "cheetah-run,1,0,1,9\ncheetah-run,1,1000,2\n\ncheetah-run,1\n"
    out = rejected(long_csv(tmp_path / "in", rows), tmp_path)
    assert "line 2: 5 fields; expected 4 fields, like the header" in out
    assert "line 4: an empty line; expected 4 fields" in out
    assert "line 5: 2 fields; expected 4 fields" in out


def test_links_out_of_the_folder_are_not_followed(tmp_path):
    outside = write(tmp_path / "elsewhere", "walker-run.csv", "step,reward,seed\n0,1.0,1\n")
    write(tmp_path / "in", "cheetah-run.csv", "step,reward,seed\n0,1.0,1\n")
    (tmp_path / "in" / "walker-run.csv").symlink_to(outside)
    (tmp_path / "in" / "hopper-hop.csv").symlink_to(tmp_path / "in" / "cheetah-run.csv")  # inside: read
    out = rejected(tmp_path / "in", tmp_path, fmt="tdmpc2")
    assert "walker-run.csv: a link to" in out
    assert "expected a file inside the submitted folder (links out of it are not followed)" in out
    assert "Problems (1)" in out


def test_unknown_tasks_rejected_or_skipped_knowingly(tmp_path):
    write(tmp_path / "in", "cheetah-run.csv", "step,reward,seed\n0,1.0,1\n")
    write(tmp_path / "in", "lift-cube.csv", "step,success,seed\n0,0.5,1\n")
    out = rejected(tmp_path / "in", tmp_path, fmt="tdmpc2")
    assert "lift-cube.csv, line 2, column (file name): unknown task 'lift-cube'" in out
    code, out = submit(tmp_path / "in", tmp_path / "r", "--format", "tdmpc2", "--agent", "a",
                       "--skip-unknown-tasks")
    assert code == 0, out
    assert "Skipped tasks (1): lift-cube" in out
    tasks = query(tmp_path / "r" / "harness.duckdb", "SELECT DISTINCT task FROM runs")
    assert tasks == [("dmc/cheetah-run",)]


def test_two_names_for_one_task(tmp_path):
    write(tmp_path / "in", "cup-catch.csv", "step,reward,seed\n0,1.0,1\n")
    write(tmp_path / "in", "ball_in_cup-catch.csv", "step,reward,seed\n0,2.0,1\n")
    out = rejected(tmp_path / "in", tmp_path, fmt="tdmpc2")
    assert "also means dmc/ball-in-cup-catch" in out


def test_every_problem_is_listed_not_just_the_first(tmp_path):
    rows = "cheetah-run,1,0,x\nnot-a-task,1,0,1\nmw-reach,1,-1,2\ncheetah-run,,1000,3\n"
    out = rejected(long_csv(tmp_path / "in", rows), tmp_path)
    assert "Problems (5)" in out  # bad value, unknown task, negative step, success 2 > 1, empty seed


# ----------------------------------------------------------------------------------------------
# The long format: CSV and Parquet, column mapping, metric choice, seed labels.


def test_long_parquet_with_mapped_columns_and_chosen_metric(tmp_path):
    path = tmp_path / "runs.parquet"
    with duckdb.connect() as con:
        con.execute(
            "COPY (SELECT * FROM (VALUES ('dmc/walker-walk', 7, 0, 10.0, 'eval/return'), "
            "('dmc/walker-walk', 7, 5000, 300.0, 'eval/return'), ('dmc/walker-walk', 7, 5000, 0.3, 'loss'), "
            "('walker-walk', 8, 5000, 250.0, 'eval/return')) t(env, run, step, score, what)) "
            f"TO '{path}' (FORMAT parquet)")
    mapping = ("--column", "task=env", "--column", "seed=run", "--column", "value=score",
               "--column", "metric=what")
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", *mapping)
    assert code == 1
    assert "runs.parquet, column what: several metrics (eval/return, loss); expected one metric" in out
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", *mapping,
                       "--metric", "eval/return")
    assert code == 0, out
    rows = query(tmp_path / "r" / "harness.duckdb",
                 "SELECT r.task, r.seed, c.metric, c.step, c.value FROM runs r JOIN curves c USING (run_id) "
                 "ORDER BY r.seed, c.step")
    assert rows == [("dmc/walker-walk", 7, "eval/return", 0, 10.0),
                    ("dmc/walker-walk", 7, "eval/return", 5000, 300.0),
                    ("dmc/walker-walk", 8, "eval/return", 5000, 250.0)]


def test_non_integer_seed_labels_are_numbered_by_first_appearance(tmp_path):
    rows = "reacher-easy,run-b,0,1\nreacher-easy,run-a,0,2\nreacher-hard,run-a,0,3\n"
    code, out = submit(long_csv(tmp_path / "in", rows), tmp_path / "r", "--format", "long", "--agent", "a")
    assert code == 0, out
    assert "'run-b' -> 1, 'run-a' -> 2" in out
    assert query(tmp_path / "r" / "harness.duckdb", "SELECT task, seed FROM runs ORDER BY task, seed") == [
        ("dmc/reacher-easy", 1), ("dmc/reacher-easy", 2), ("dmc/reacher-hard", 2)]


def test_seed_labels_meaning_the_same_number(tmp_path):
    rows = "reacher-easy,1,0,1\nreacher-easy,1.0,1000,2\n"
    out = rejected(long_csv(tmp_path / "in", rows), tmp_path)
    assert "column seed: '1', '1.0'; expected one label per seed: these labels all mean seed 1" in out


# ----------------------------------------------------------------------------------------------
# Provenance, duplicates, conflicts, listing and removal.


def test_stored_submission_records_provenance(tmp_path):
    path = long_csv(tmp_path / "in", GOOD)
    results = tmp_path / "r"
    code, out = submit(path, results, "--format", "long", "--agent", "my-agent", "--suite", "dmc-easy",
                       "--meta", "paper=https://example.org/p?a=1&b=2", "--meta", "commit=abc123",
                       "--meta", "notes=step = env steps")
    assert code == 0, out
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    content = hashlib.sha256(f"results.csv\t{sha}\n".encode()).hexdigest()
    db = results / "harness.duckdb"
    [(sid, agent, fmt, suite, files, content_db, meta, submitted_at, version)] = query(
        db, "SELECT * FROM submissions")
    assert (sid, agent, fmt, suite, content_db) == (content[:12], "my-agent", "long", "dmc-easy", content)
    assert json.loads(files) == [{"name": "results.csv", "sha256": sha, "size": path.stat().st_size}]
    meta = json.loads(meta)
    assert {k: meta[k] for k in ("paper", "commit", "notes")} == {
        "paper": "https://example.org/p?a=1&b=2", "commit": "abc123", "notes": "step = env steps"}
    assert meta["harness_import"]["options"]["format"] == "long"
    assert submitted_at is not None and version == harness.__version__
    assert f"Stored submission {sid}" in out
    runs = query(db, "SELECT run_id, source, submission_id, label, agent, suite, task, seed, status "
                     "FROM runs ORDER BY seed")
    assert runs == [
        (run_id(content, "dmc/cheetah-run", s), "submission", sid, "my-agent", "my-agent", "dmc-easy",
         "dmc/cheetah-run", s, "finished")
        for s in (1, 2)
    ]
    # Values as published under the task's score metric: 10, 20 (seed 1) and 11, 21 (seed 2).
    assert query(db, "SELECT metric, sum(value), count(*) FROM curves GROUP BY metric") == [
        ("eval/return", 62.0, 4)]


def test_dry_run_stores_nothing(tmp_path):
    code, out = submit(long_csv(tmp_path / "in", GOOD), tmp_path / "r", "--format", "long", "--agent", "a",
                       "--dry-run")
    assert code == 0, out
    assert "Dry run: nothing was stored." in out
    assert "tasks       1" in out and "runs        2" in out and "points      4" in out
    assert not (tmp_path / "r" / "harness.duckdb").exists()


def test_same_files_again_is_detected_and_changes_nothing(tmp_path):
    path = long_csv(tmp_path / "in", GOOD)
    results = tmp_path / "r"
    assert submit(path, results, "--format", "long", "--agent", "a")[0] == 0
    db = results / "harness.duckdb"
    before, before_bytes = digest(db), db.read_bytes()
    [(sid,)] = query(db, "SELECT submission_id FROM submissions")
    code, out = submit(path, results, "--format", "long", "--agent", "another-name")
    assert code == 1
    assert f"  - the submission: the same files as submission {sid} (agent 'a'" in out
    assert digest(db) == before and db.read_bytes() == before_bytes


def test_rejected_submission_leaves_the_store_unchanged(tmp_path):
    results = tmp_path / "r"
    assert submit(long_csv(tmp_path / "in", GOOD), results, "--format", "long", "--agent", "a")[0] == 0
    db = results / "harness.duckdb"
    before, before_bytes = digest(db), db.read_bytes()
    assert before["curves"][0] == 4 and before["runs"][0] == 2 and before["submissions"][0] == 1
    bad = long_csv(tmp_path / "bad", "walker-run,1,0,1\nwalker-run,1,1000,oops\n")
    assert submit(bad, results, "--format", "long", "--agent", "b")[0] == 1
    assert digest(db) == before and db.read_bytes() == before_bytes


def test_agent_cannot_receive_a_task_seed_it_has_from_another_submission(tmp_path):
    results = tmp_path / "r"
    assert submit(long_csv(tmp_path / "one", GOOD), results, "--format", "long", "--agent", "a")[0] == 0
    [(first,)] = query(results / "harness.duckdb", "SELECT submission_id FROM submissions")
    overlap = long_csv(tmp_path / "two", "cheetah-run,2,0,1\ncheetah-run,3,0,1\n")
    code, out = submit(overlap, results, "--format", "long", "--agent", "a")
    assert code == 1
    assert f"agent 'a' already has dmc/cheetah-run seed(s) 2 from submission {first}" in out
    assert submit(overlap, results, "--format", "long", "--agent", "b")[0] == 0
    other_task = long_csv(tmp_path / "three", "walker-run,1,0,1\n")
    assert submit(other_task, results, "--format", "long", "--agent", "a")[0] == 0


def test_label_of_harness_runs_cannot_name_submitted_runs(tmp_path):
    store = Store(tmp_path / "r" / "harness.duckdb")
    with store.transaction() as con:
        upsert_run(con, {"run_id": "ours", "source": "harness", "label": "sac", "agent": "sac",
                         "task": "dmc/cheetah-run", "seed": 0, "status": "finished"})
    code, out = submit(long_csv(tmp_path / "in", GOOD), tmp_path / "r", "--format", "long", "--agent", "sac")
    assert code == 1
    assert "--agent 'sac', a label of 1 runs trained by the harness" in out and "'sac-paper'" in out


def test_list_and_remove_leave_no_orphans(tmp_path):
    results = tmp_path / "r"
    db = results / "harness.duckdb"
    assert submit(long_csv(tmp_path / "one", GOOD), results, "--format", "long", "--agent", "a",
                  "--meta", "paper=P1")[0] == 0
    assert submit(long_csv(tmp_path / "two", "walker-run,5,0,1\nwalker-run,5,10,2\nwalker-run,5,20,3\n"),
                  results, "--format", "long", "--agent", "b")[0] == 0
    listed = list_submissions(Store(db))
    assert listed[["agent", "tasks", "runs", "points", "files"]].values.tolist() == [
        ["a", 1, 2, 4, 1], ["b", 1, 1, 3, 1]]
    code, out = cli("submissions", "--results", results)
    assert code == 0 and "paper=P1" in out
    first = str(listed["submission_id"].iloc[0])
    code, out = cli("submissions", "rm", first, "--results", results)
    assert code == 0, out
    assert f"Removed submission {first} (agent 'a'): 2 runs, 4 points." in out
    orphans = query(db, "SELECT (SELECT count(*) FROM curves WHERE run_id NOT IN (SELECT run_id FROM runs)), "
                        "(SELECT count(*) FROM runs WHERE submission_id IS NOT NULL AND submission_id NOT IN "
                        "(SELECT submission_id FROM submissions))")
    assert orphans == [(0, 0)]
    assert query(db, "SELECT agent FROM submissions") == [("b",)]
    assert query(db, "SELECT count(*) FROM curves") == [(3,)]
    code, out = cli("submissions", "list", "--results", results)
    assert code == 0 and first not in out
    assert cli("submissions", "rm", first, "--results", results)[0] == 2


def test_names_for_html_are_stored_as_given(tmp_path):
    agent = "<script>alert(1)</script>"
    code, out = submit(long_csv(tmp_path / "in", GOOD), tmp_path / "r", "--format", "long", "--agent", agent,
                       "--meta", "notes=<b>[bold]x[/bold]</b>")
    assert code == 0, out
    assert agent in out and "[bold]x[/bold]" in out  # printed literally, not read as markup
    db = tmp_path / "r" / "harness.duckdb"
    assert query(db, "SELECT DISTINCT label, agent FROM runs") == [(agent, agent)]
    [(stored_agent, meta)] = query(db, "SELECT agent, meta FROM submissions")
    assert stored_agent == agent and json.loads(meta)["notes"] == "<b>[bold]x[/bold]</b>"


def test_library_plan_then_store(tmp_path):
    path = write(tmp_path / "in", "results.csv", "env,seed,step,score\ncheetah-run,1,0,3.5\n")
    store = Store(tmp_path / "harness.duckdb")
    options = SubmitOptions(ReadOptions("long", columns=LongColumns(task="env", value="score")), agent="lib")
    plan = plan_submission(store, path, options)
    assert plan.problems == () and not store.path.exists()
    assert plan.content_sha256 == content_sha256(plan.files)
    assert store_submission(store, plan) == plan.submission_id
    assert query(store.path, "SELECT value FROM curves") == [(3.5,)]


# ----------------------------------------------------------------------------------------------
# Usage errors (exit 2) and help.


@pytest.mark.parametrize("args", [
    ("--format", "csv", "--agent", "a"),
    ("--format", "bro", "--agent", "a"),
    ("--format", "bro", "--agent", "a", "--step-start", "0"),
    ("--format", "tdmpc2", "--agent", "a", "--column", "task=x"),
    ("--format", "long", "--agent", "a", "--column", "colour=x"),
    ("--format", "long", "--agent", "a", "--step-start", "0", "--step-every", "5"),
    ("--format", "long", "--agent", "a", "--meta", "no-equals-sign"),
    ("--format", "long", "--agent", "a", "--meta", "harness_import=x"),
    ("--format", "long", "--agent", " "),
    ("--format", "long", "--agent", "tab\there"),
])
def test_usage_errors_exit_2(tmp_path, args):
    code, _ = submit(long_csv(tmp_path / "in", GOOD), tmp_path / "r", *args)
    assert code == 2
    assert not (tmp_path / "r").exists()


def test_missing_path_exits_2(tmp_path):
    assert submit(tmp_path / "nope.csv", tmp_path / "r", "--format", "long", "--agent", "a")[0] == 2


def test_help_documents_every_format_with_an_example():
    code, out = cli("submit", "--help")
    assert code == 0
    for example in ("harness submit my-agent.csv --format long", "harness submit tdmpc2/results/tdmpc2 "
                    "--format tdmpc2", "--format bro --agent bro-paper --step-start 25000 --step-every 25000",
                    "--split-duplicate-seeds", "--skip-unknown-tasks", "--column", "--metric", "--dry-run"):
        assert example in out, example
