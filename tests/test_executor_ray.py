"""`harness run --executor ray` against a real Ray runtime that the tests start (two CPUs): curves
equal the local executor's, a killed Ray worker's job is recorded, resubmitted and resumes from its
checkpoint, Ctrl-C cancels the tasks, a coordinator killed with -9 takes its tasks with it, and the
same command run again finishes what was left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from tests.test_run import ROOT, harness, query, write_manifest

SAC = {"hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 500}


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A Ray runtime with two CPUs for the module's runs (`harness run` joins it as a driver)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def ray_workers() -> list[int]:
    """Ray worker processes running a harness job (Ray titles them after the task's function)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::remote_job"):
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def evals(results: Path) -> int:
    shards = list((results / "runs").glob("*/curves.jsonl"))
    return sum('"eval/return"' in line for line in shards[0].read_text().splitlines()) if shards else 0


def wait_for(what: str, check: object, proc: subprocess.Popen[str], within_s: float = 300) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()}"
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_jobs_through_ray_equal_the_local_executor(tmp_path: Path, ray_address: str) -> None:
    manifest = write_manifest(tmp_path, seeds=1, budget=1500, eval={"every": 500, "episodes": 1}, agents={"sac": SAC},
                              tasks=["dmc/cartpole-balance", "dmc/pendulum-swingup"])
    points = {}
    for name, extra in (("local", []), ("ray", ["--executor", "ray", f"executor.ray.address={ray_address}"])):
        done = harness("run", str(manifest), *extra, results=tmp_path / name)
        assert done.returncode == 0, done.stdout + done.stderr
        points[name] = query(tmp_path / name / "harness.duckdb",
                             "SELECT run_id, metric, step, value FROM curves WHERE metric NOT LIKE 'sys/%' "
                             "ORDER BY ALL")
    assert "executor: ray" in done.stdout
    assert len({p[0] for p in points["ray"]}) == 2 and len(points["ray"]) > 20
    assert points["ray"] == points["local"]


def test_a_killed_worker_resumes_ctrl_c_and_kill_9_end_the_tasks_and_a_rerun_finishes(
        tmp_path: Path, ray_address: str) -> None:
    results = tmp_path / "results"
    # The random agent: checkpoints and resumes like any agent, and trains fast. Its 150k steps (about
    # ten seconds) leave each stop below time to find the job still training.
    manifest = write_manifest(tmp_path, seeds=1, budget=150_000, eval={"every": 5000, "episodes": 1},
                              agents={"random": {}})
    command = [sys.executable, "-m", "harness", "run", str(manifest), "--executor", "ray",
               f"executor.ray.address={ray_address}", "executor.ray.max_retries=1"]
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results), "COLUMNS": "300"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("two evaluations and a checkpoint", lambda: evals(results) >= 2 and list(
            (results / "groups").glob("*/checkpoint.pkl")), proc)
        (killed,) = ray_workers()
        at_kill = evals(results)
        os.kill(killed, signal.SIGKILL)  # the Ray worker alone, as an OOM kill or a lost node would
        wait_for("the job resubmitted and past its checkpoint",
                 lambda: evals(results) > at_kill and ray_workers() and killed not in ray_workers(), proc)
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the coordinator cancels its task
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "attempt 1 failed" in out and "submitted again" in out, out
    deadline = time.monotonic() + 30
    while ray_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ray_workers(), "Ctrl-C left a Ray task running"

    # kill -9 of the coordinator: Ray ends the tasks of its driver, and a re-run resumes the job.
    at_stop = evals(results)
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        wait_for("training past the stop", lambda: evals(results) > at_stop and ray_workers(), proc)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 60
    while ray_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not ray_workers(), "a Ray task outlived its coordinator"

    again = harness("run", str(manifest), *command[5:], results=results)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 to resume" in again.stdout
    steps = query(results / "harness.duckdb", "SELECT step FROM curves WHERE metric = 'eval/return' ORDER BY step")
    assert [s for (s,) in steps] == [5000 * k for k in range(1, 31)]
    shard = next((results / "runs").glob("*/curves.jsonl")).read_text().splitlines()
    keys = [(json.loads(line)["metric"], json.loads(line)["step"]) for line in shard]
    assert len(keys) == len(set(keys))  # no point twice after the kill, the resubmission and the re-run
    assert query(results / "harness.duckdb", "SELECT status FROM runs") == [("finished",)]
