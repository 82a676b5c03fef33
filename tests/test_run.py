"""`harness run` end to end on real simulators and a real DuckDB file: results, resume, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[1]


def harness(*args: str, results: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def write_manifest(tmp_path: Path, **changes: object) -> Path:
    data: dict[str, object] = {
        "name": "test-run",
        "tasks": ["dmc/cartpole-balance"],
        "agents": {"sac": {"hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 500}},
        "seeds": 2,
        "budget": 2000,
        "eval": {"every": 1000, "episodes": 1},
        "log_every": 100,
    }
    data.update(changes)
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_short_sac_run_lands_every_curve_in_duckdb(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = harness("run", str(write_manifest(tmp_path)), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "final evaluation" in done.stdout
    db = results / "harness.duckdb"
    runs = query(db, "SELECT label, agent, task, seed, status, config_hash, packages, host, device, wall_seconds "
                     "FROM runs ORDER BY seed")
    assert [(r[0], r[2], r[3], r[4]) for r in runs] == [("sac", "dmc/cartpole-balance", 0, "finished"),
                                                        ("sac", "dmc/cartpole-balance", 1, "finished")]
    for run in runs:
        assert run[5] and run[7] and str(run[8]).startswith("cpu")
        assert "jax" in json.loads(str(run[6])) and float(str(run[9])) > 0
    metrics = {m for (m,) in query(db, "SELECT DISTINCT metric FROM curves")}
    assert {"eval/return", "train/episode_return", "agent/critic_loss", "agent/actor_loss", "agent/temperature",
            "agent/q_mean", "agent/critic_grad_norm", "sys/env_steps_per_s", "sys/updates_per_s",
            "sys/wall_s"} <= metrics
    evals = query(db, "SELECT run_id, list(step ORDER BY step) FROM curves "
                      "WHERE metric = 'eval/return' GROUP BY run_id")
    assert sorted(tuple(steps) for _, steps in evals) == [(1000, 2000), (1000, 2000)]
    # Seeds differ: the two runs' losses are not identical.
    losses = query(db, "SELECT run_id, list(value ORDER BY step) FROM curves WHERE metric = 'agent/critic_loss' "
                       "GROUP BY run_id")
    assert losses[0][1] != losses[1][1]

    again = harness("run", str(write_manifest(tmp_path)), results=results)
    assert again.returncode == 0
    assert "already finished" in again.stdout
    assert query(db, "SELECT count(*) FROM curves") == query(db, "SELECT count(*) FROM curves")


def live_processes(group: int) -> list[int]:
    """Processes of a process group that are still running (not exited, not zombies), from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        except OSError:
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def kill_coordinator(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the coordinator alone, mid-run: every process it started must stop too."""
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert_group_ends(proc.pid, "a worker outlived its coordinator")


def assert_group_ends(group: int, message: str, within_s: float = 30.0) -> None:
    """Every process of ``group`` is gone within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while live_processes(group) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not live_processes(group), message


def test_resume_after_sigkill_has_every_eval_step_exactly_once(tmp_path: Path) -> None:
    results = tmp_path / "results"
    manifest = write_manifest(tmp_path, seeds=1, budget=8000, eval={"every": 1000, "episodes": 1},
                              agents={"sac": {"hidden_dims": [64, 64], "batch_size": 64, "warmup_steps": 500}})
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(manifest)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = results / "groups"
    deadline = time.monotonic() + 300
    killed_after = 0
    while time.monotonic() < deadline and proc.poll() is None:
        shards = list((results / "runs").glob("*/curves.jsonl"))
        if shards and list(checkpoints.glob("*/checkpoint.pkl")):
            killed_after = sum('"eval/return"' in line for line in shards[0].read_text().splitlines())
            if killed_after >= 2:
                break
        time.sleep(0.2)
    kill_coordinator(proc)
    assert 2 <= killed_after < 8

    resumed = harness("run", str(manifest), results=results)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1 to resume" in resumed.stdout
    db = results / "harness.duckdb"
    steps = query(db, "SELECT step FROM curves WHERE metric = 'eval/return' ORDER BY step")
    assert [s for (s,) in steps] == [1000 * k for k in range(1, 9)]
    shard = next((results / "runs").glob("*/curves.jsonl")).read_text().splitlines()
    eval_steps = [json.loads(line)["step"] for line in shard if '"eval/return"' in line]
    assert eval_steps == [1000 * k for k in range(1, 9)]  # the shard too: no duplicate, no gap
    keys = [(json.loads(line)["metric"], json.loads(line)["step"]) for line in shard]
    assert len(keys) == len(set(keys))


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path: Path) -> None:
    results = tmp_path / "results"
    manifest = write_manifest(tmp_path, seeds=1, tasks=["dmc/cartpole-balance", "myosuite/myoNoSuchTask-v0"],
                              agents={"random": {}})
    done = harness("run", str(manifest), results=results)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 of 2 run group(s) failed" in done.stderr
    rows = query(results / "harness.duckdb", "SELECT task, status, error FROM runs ORDER BY task")
    assert rows[0][:2] == ("dmc/cartpole-balance", "finished")
    assert rows[1][:2] == ("myosuite/myoNoSuchTask-v0", "failed")
    assert "myoNoSuchTask" in str(rows[1][2])
    status = harness("status", results=results)
    assert status.returncode == 0
    assert "failed" in status.stdout


def test_the_same_seed_gives_the_same_curve(tmp_path: Path) -> None:
    """Two runs of the same manifest into two stores: every curve point is identical, bit for bit."""
    manifest = write_manifest(tmp_path, seeds=3, budget=1500, eval={"every": 1500, "episodes": 1},
                              agents={"sac": {"hidden_dims": [128, 128], "batch_size": 256, "warmup_steps": 500}})
    points = []
    for name in ("a", "b"):
        done = harness("run", str(manifest), results=tmp_path / name)
        assert done.returncode == 0, done.stdout + done.stderr
        points.append(query(tmp_path / name / "harness.duckdb",
                            "SELECT run_id, metric, step, value FROM curves WHERE metric NOT LIKE 'sys/%' "
                            "ORDER BY ALL"))
    assert len(points[0]) > 30
    assert points[0] == points[1]
