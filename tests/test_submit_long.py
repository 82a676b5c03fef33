"""Long files as papers publish them: extra columns, several metrics, merged names, provenance."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_submit import cli, long_csv, query, submit


def test_extra_columns_named_at_once_and_other_problems_still_found(tmp_path):
    # A pandas index column (empty name) and an experiment column; line 3 has an unknown task and
    # line 4 a success rate above 1: all three problems are listed, not just the columns.
    rows = ("0,cheetah-run,1,0,5.0,exp-a\n1,not-a-task,1,0,1.0,exp-a\n2,mw-reach,1,0,1.5,exp-a\n")
    path = long_csv(tmp_path / "in", rows, header=",task,seed,step,value,exp_name")
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a")
    assert code == 1, out
    assert "results.csv, line 1: 2 extra column(s): '' (unnamed), 'exp_name'" in out
    assert "--ignore-column NAME" in out
    assert "line 3, column task: unknown task 'not-a-task'" in out
    assert "line 4, column value: '1.5'; expected a success rate in [0, 1]" in out
    assert "Problems (3)" in out

    good = long_csv(tmp_path / "ok", "0,cheetah-run,1,0,5.0,exp-a\n1,cheetah-run,1,1000,7.0,exp-a\n",
                    header=",task,seed,step,value,exp_name")
    code, out = submit(good, tmp_path / "r", "--format", "long", "--agent", "a",
                       "--ignore-column", "", "--ignore-column", "exp_name")
    assert code == 0, out
    assert query(tmp_path / "r" / "harness.duckdb", "SELECT count(*) FROM curves") == [(2,)]
    code, out = submit(good, tmp_path / "r2", "--format", "long", "--agent", "a", "--ignore-column", "wall")
    assert code == 1 and "column wall: no such column to ignore" in out


def several_metrics(folder: Path) -> Path:
    # Locomotion rows under avg_return, manipulation rows under avg_success, and an episode_length
    # metric for both; the mw-reach success row at line 8 is out of range.
    rows = ("cheetah-run,1,0,5.0,avg_return\ncheetah-run,1,0,0.0,avg_success\n"
            "cheetah-run,1,0,1000,episode_length\nmw-reach,1,0,0.5,avg_success\n"
            "mw-reach,1,0,150.0,avg_return\nmw-reach,1,0,200,episode_length\nmw-reach,1,1000,1.5,avg_success\n")
    return long_csv(folder, rows, header="task,seed,step,value,metric")


def test_several_metrics_without_a_choice_still_checks_each_task(tmp_path):
    out = submit(several_metrics(tmp_path / "in"), tmp_path / "r", "--format", "long", "--agent", "a")[1]
    assert "several metrics (avg_return, avg_success, episode_length)" in out
    assert "--metric auto" in out
    # Checked as --metric auto would take it: the success row of mw-reach at line 8 is out of range.
    assert "line 8, column value: '1.5'; expected a success rate in [0, 1]" in out
    assert "Problems (2)" in out


def test_metric_auto_takes_each_tasks_catalog_metric(tmp_path):
    path = several_metrics(tmp_path / "in")
    path.write_text(path.read_text().replace("1000,1.5,avg_success", "1000,0.75,avg_success"))
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", "--metric", "auto")
    assert code == 0, out
    assert ("kept each task's catalog metric (avg_return 1, avg_success 2); dropped the rows of other "
            "metrics (avg_success 1, episode_length 2, avg_return 1)") in out
    rows = query(tmp_path / "r" / "harness.duckdb",
                 "SELECT r.task, c.metric, c.step, c.value FROM runs r JOIN curves c USING (run_id) "
                 "ORDER BY r.task, c.step")
    assert rows == [("dmc/cheetah-run", "eval/return", 0, 5.0),
                    ("metaworld/reach", "eval/success", 0, 0.5),
                    ("metaworld/reach", "eval/success", 1000, 0.75)]


def test_metric_map_adds_a_name(tmp_path):
    path = long_csv(tmp_path / "in", "cheetah-run,1,0,5.0,ret\ncheetah-run,1,0,9.0,len\n",
                    header="task,seed,step,value,metric")
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", "--metric", "auto")
    assert code == 1
    assert "no row of a return metric for 'cheetah-run' (metrics: len, ret)" in out
    assert "--metric-map NAME=return" in out
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", "--metric", "auto",
                       "--metric-map", "ret=return")
    assert code == 0, out
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "b", "--metric", "auto",
                       "--metric-map", "ret=reward")
    assert code == 2 and "expected ret=return or ret=success" in out


FINGER = ("finger-turn,1,0,10\nfinger-turn,1,1000,20\n"
          "finger-turn-hard,2,0,30\nfinger-turn-hard,2,1000,40\n")


def test_two_published_names_of_one_task_stop_the_import_until_merged(tmp_path):
    # BRO's finger-turn and DMC's finger-turn-hard are both dmc/finger-turn-hard.
    path = long_csv(tmp_path / "in", FINGER)
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a")
    assert code == 1
    assert ("results.csv, line 4, column task: 'finger-turn-hard' (line 4 to line 5, 2 rows); expected one "
            "published name per task: 'finger-turn' (results.csv, line 2 to line 3, 2 rows) also means "
            "dmc/finger-turn-hard; pass --merge-aliases") in out

    results = tmp_path / "r"
    code, out = submit(path, results, "--format", "long", "--agent", "a", "--merge-aliases")
    assert code == 0, out
    assert "merged 'finger-turn' (results.csv, line 2 to line 3, 2 rows) and 'finger-turn-hard'" in out
    (submission,) = query(results / "harness.duckdb", "SELECT submission_id, meta FROM submissions")
    record = json.loads(submission[1])["harness_import"]
    assert record["task_names"] == {"finger-turn": "dmc/finger-turn-hard",
                                    "finger-turn-hard": "dmc/finger-turn-hard"}
    assert record["merged_names"] == {"dmc/finger-turn-hard": ["finger-turn", "finger-turn-hard"]}
    code, out = cli("submissions", "show", submission[0], "--results", results)
    assert code == 0, out
    assert "finger-turn-hard │ dmc/finger-turn-hard │ merged" in out
    assert "dmc/finger-turn-hard │ 2    │ 1-2" in out


def test_merged_names_sharing_a_seed_label_are_split_with_names(tmp_path):
    path = long_csv(tmp_path / "in", FINGER.replace("finger-turn-hard,2", "finger-turn-hard,1"))
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", "--merge-aliases")
    assert code == 1
    assert ("line 4, column seed: '1' of 'finger-turn-hard', a seed label that 'finger-turn' also uses; "
            "expected one run per seed label (this label carries 2 runs: 'finger-turn' in results.csv, line 2 "
            "to line 3 (steps 0-1000); 'finger-turn-hard' in results.csv, line 4 to line 5 (steps 0-1000))") in out
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", "--merge-aliases",
                       "--split-duplicate-seeds")
    assert code == 0, out
    assert ("dmc/finger-turn-hard seed '1' carries 2 runs; the run at line 4 to line 5 (steps 0-1000) is stored "
            "as seed 2 (published name 'finger-turn-hard')") in out


def test_repeat_note_names_both_lines_when_not_adjacent(tmp_path):
    rows = "cheetah-run,1,0,1\ncheetah-run,2,0,4\ncheetah-run,1,0,1\ncheetah-run,1,1000,2\n"
    code, out = submit(long_csv(tmp_path / "in", rows), tmp_path / "r", "--format", "long", "--agent", "a")
    assert code == 0, out
    assert "dropped 1 row(s) that repeat an earlier row of their task and seed exactly (same step and " \
           "value): line 4 (= line 2)" in out


def test_options_of_the_long_format_only(tmp_path):
    path = long_csv(tmp_path / "in", "cheetah-run,1,0,1\n")
    code, out = submit(path, tmp_path / "r", "--format", "long", "--agent", "a", "--metric-map", "x=return")
    assert code == 2 and "add --metric auto" in out
