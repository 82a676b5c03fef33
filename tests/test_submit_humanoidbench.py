"""`harness submit --format humanoidbench / fasttd3`: HumanoidBench's and FastTD3's published JSON files.

Small files in the publishers' shapes, with the stored values worked out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from tests.test_submit import submit

CURVE = {"million_steps": [0.0, 0.01, 0.35000000000000003], "return": [-860.0, -838.5, -593.25]}
HB_FILE = {
    "push": {"SAC": {"seed_0": CURVE, "seed_1": {"million_steps": [0.0, 0.01], "return": [-900.0, -700.0]}},
             "DreamerV3": {"seed_0": CURVE}},
    "highbar_hard": {"SAC": {"seed_0": {"million_steps": [0.0], "return": [1.5]}},
                     "DreamerV3": {"seed_0": CURVE}},
}


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def stored(results: Path) -> list[tuple[object, ...]]:
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        return con.execute("SELECT r.task, r.seed, c.step, c.value FROM curves c JOIN runs r USING (run_id) "
                           "ORDER BY 1, 2, 3").fetchall()


def test_humanoidbench_json_one_method_per_submission(tmp_path: Path) -> None:
    path = write_json(tmp_path / "hb.json", HB_FILE)
    code, out = submit(path, tmp_path / "r", "--format", "humanoidbench", "--agent", "sac-hb")
    assert code == 1 and "2 methods (DreamerV3, SAC)" in out and "--method NAME" in out

    code, out = submit(path, tmp_path / "r", "--format", "humanoidbench", "--agent", "sac-hb", "--method", "SAC")
    assert code == 0, out
    # push is h1hand's (the default robot); highbar_hard is h1strong's, as in the paper. Steps are
    # million_steps x 1e6: 0.35000000000000003 -> 350000. Seed keys seed_0, seed_1 -> seeds 0, 1.
    assert stored(tmp_path / "r") == [
        ("humanoidbench/h1hand-push", 0, 0, -860.0), ("humanoidbench/h1hand-push", 0, 10000, -838.5),
        ("humanoidbench/h1hand-push", 0, 350000, -593.25), ("humanoidbench/h1hand-push", 1, 0, -900.0),
        ("humanoidbench/h1hand-push", 1, 10000, -700.0), ("humanoidbench/h1strong-highbar-hard", 0, 0, 1.5),
    ]


def test_humanoidbench_json_problems_are_located(tmp_path: Path) -> None:
    bad = {"push": {"SAC": {"seed_0": {"million_steps": [0.0, 0.01], "return": [1.0]}}},
           "walk": {"TD-MPC2": {"seed_0": CURVE}}}
    code, out = submit(write_json(tmp_path / "bad.json", bad), tmp_path / "r", "--format", "humanoidbench",
                       "--agent", "x", "--method", "SAC", "--robot", "h1")
    assert code == 1
    assert "push / SAC / seed_0" in out and "two lists of numbers of the same length" in out
    assert "walk" in out and "no 'SAC' (has: TD-MPC2)" in out
    assert not (tmp_path / "r" / "harness.duckdb").exists() or stored(tmp_path / "r") == []
    code, out = submit(write_json(tmp_path / "x.json", HB_FILE), tmp_path / "r", "--format", "humanoidbench",
                       "--agent", "x", "--robot", "r2d2")
    assert code == 2 and "--robot r2d2" in out


def test_fasttd3_means_only_file_is_rejected_with_the_reason(tmp_path: Path) -> None:
    # FastTD3's published humanoidbench_result.json: per task time, env_step, the mean return over
    # seeds, return_min and return_max.
    means = {"h1hand_walk": {"time": [0.0, 327.4], "env_step": [0.0, 640000.0], "return": [0.0, 18.96],
                             "return_min": [0.0, 14.86], "return_max": [0.0, 23.06]}}
    code, out = submit(write_json(tmp_path / "humanoidbench_result.json", means), tmp_path / "r",
                       "--format", "fasttd3", "--agent", "fasttd3-paper")
    assert code == 1
    assert "the mean over seeds (with return_min, return_max)" in out
    assert "cannot be stored as runs without inventing seeds" in out


def test_fasttd3_per_seed_file_is_read(tmp_path: Path) -> None:
    per_seed = {"h1hand_walk": {"env_step": [0.0, 640000.0], "return": [[1.0, 20.0], [2.0, 30.0]]}}
    code, out = submit(write_json(tmp_path / "per_seed.json", per_seed), tmp_path / "r",
                       "--format", "fasttd3", "--agent", "fasttd3-paper")
    assert code == 0, out
    assert stored(tmp_path / "r") == [
        ("humanoidbench/h1hand-walk", 0, 0, 1.0), ("humanoidbench/h1hand-walk", 0, 640000, 20.0),
        ("humanoidbench/h1hand-walk", 1, 0, 2.0), ("humanoidbench/h1hand-walk", 1, 640000, 30.0),
    ]
