"""`harness run --executor slurm` through submitit's LocalExecutor (``cluster: local``: the jobs are
processes of this machine, started and followed as Slurm jobs are): two jobs into DuckDB, a re-run
that submits nothing, and a coordinator restart that reattaches to its running job instead of
submitting it twice; a cancelled job is recorded, resubmitted, and resumes.
(A real Slurm controller: test_executor_slurm_cluster.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.executors.slurm import _process_alive, state_file
from tests.test_executor_ray import evals, wait_for
from tests.test_run import ROOT, harness, query, write_manifest

LOCAL = ["--executor", "slurm", "executor.slurm.cluster=local"]


def submitted(results: Path) -> dict[str, Any]:
    path = state_file(results)
    return dict(json.loads(path.read_text())["jobs"]) if path.exists() else {}


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (a local Slurm job's controller starts its tasks)."""
    return [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_two_jobs_into_duckdb_and_a_rerun_submits_nothing(tmp_path: Path) -> None:
    results = tmp_path / "results"
    sac = {"hidden_dims": [8, 8], "batch_size": 8, "warmup_steps": 1900}  # an agent on a JAX device
    manifest = write_manifest(tmp_path, seeds=1, agents={"sac": sac},
                              tasks=["dmc/cartpole-balance", "dmc/pendulum-swingup"])
    done = harness("run", str(manifest), *LOCAL, results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = query(results / "harness.duckdb", "SELECT task, status FROM runs ORDER BY task")
    assert rows == [("dmc/cartpole-balance", "finished"), ("dmc/pendulum-swingup", "finished")]
    assert query(results / "harness.duckdb", "SELECT count(DISTINCT run_id) FROM curves "
                                             "WHERE metric = 'eval/return' AND step = 2000") == [(2,)]
    jobs = submitted(results)
    assert len(jobs) == 2 and {j["state"] for j in jobs.values()} == {"finished"}
    assert list((results / "executor" / "slurm-logs").glob("*_result.pkl"))

    again = harness("run", str(manifest), *LOCAL, results=results)
    assert again.returncode == 0 and "2 job(s) were already finished" in again.stdout
    assert submitted(results) == jobs


def test_a_restarted_coordinator_reattaches_and_a_lost_job_is_resubmitted(tmp_path: Path) -> None:
    results = tmp_path / "results"
    # The random agent: checkpoints and resumes like any agent, and trains fast.
    manifest = write_manifest(tmp_path, seeds=1, budget=30_000, eval={"every": 1000, "episodes": 1},
                              agents={"random": {}})
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results), "COLUMNS": "300"}
    command = [sys.executable, "-m", "harness", "run", str(manifest), *LOCAL]
    pids: list[int] = []
    try:
        first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 text=True, start_new_session=True)
        wait_for("an evaluation", lambda: evals(results) >= 1 and submitted(results), first)
        ((entry_id, entry),) = submitted(results).items()
        pids.append(int(entry["id"]))  # with cluster: local, the Slurm job id is the job's process id
        # The job hangs from here on, so it cannot finish before it is cancelled, however slowly the
        # coordinators start on a loaded machine (its controller's SIGKILL still ends a stopped task).
        tasks = children(pids[0])
        assert tasks, f"the controller {pids[0]} has no task process"
        for task in tasks:
            os.kill(task, signal.SIGSTOP)
        os.kill(first.pid, signal.SIGKILL)  # the coordinator alone (a lost login session)
        first.wait()
        assert _process_alive(pids[0]), "the job did not outlive its coordinator, as a Slurm job does"

        second = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, start_new_session=True)
        wait_for("the reattachment", lambda: submitted(results)[entry_id]["state"] == "reattached", second)
        os.kill(pids[0], signal.SIGINT)  # cancels the job: its controller stops its task, as scancel does
        out, _ = second.communicate(timeout=600)
    finally:
        for pid in pids:
            if _process_alive(pid):
                os.kill(pid, signal.SIGINT)  # the job's controller stops its task
    assert second.returncode == 0, out
    assert f"reattached to Slurm job {pids[0]}" in out, out
    flat = " ".join(out.split())  # a note longer than the console's width wraps
    assert f"Slurm job {pids[0]}" in flat and "submitted again" in flat, out
    (entry,) = submitted(results).values()
    assert entry["id"] != str(pids[0]) and entry["attempts"] == 1 and entry["state"] == "finished"
    steps = query(results / "harness.duckdb", "SELECT step FROM curves WHERE metric = 'eval/return' ORDER BY step")
    assert [s for (s,) in steps] == [1000 * k for k in range(1, 31)]
    assert query(results / "harness.duckdb", "SELECT status FROM runs") == [("finished",)]


def test_packed_jobs_share_one_slurm_job_and_a_gpu_job_on_cpu_is_warned_of(tmp_path: Path) -> None:
    """Two jobs packed on one GPU (jobs_per_gpu: 2): one Slurm job trains both, each in a process of
    its own. This machine has no GPU: the jobs record a CPU device, and the coordinator says so
    (on a GPU node they would share its GPU, with half of 0.9 of its memory each)."""
    results = tmp_path / "results"
    sac = {"hidden_dims": [8, 8], "batch_size": 8, "warmup_steps": 1900}  # an agent on a JAX device
    manifest = write_manifest(tmp_path, seeds=1, agents={"sac": sac},
                              tasks=["dmc/cartpole-balance", "dmc/pendulum-swingup"])
    done = harness("run", str(manifest), *LOCAL, "executor.slurm.gpus_per_job=1", "executor.slurm.jobs_per_gpu=2",
                   results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = submitted(results)
    assert len(jobs) == 2 and len({j["id"] for j in jobs.values()}) == 1
    assert {j["state"] for j in jobs.values()} == {"finished"}
    assert " ".join(done.stdout.split()).count("asked for a GPU and ran on cpu") == 2  # lines wrap at 80
    assert query(results / "harness.duckdb", "SELECT status FROM runs") == [("finished",), ("finished",)]


def test_a_failing_job_is_recorded_retried_up_to_max_retries_and_the_others_finish(tmp_path: Path) -> None:
    results = tmp_path / "results"
    manifest = write_manifest(tmp_path, seeds=1, agents={"random": {}},
                              tasks=["dmc/cartpole-balance", "myosuite/myoNoSuchTask-v0"])
    done = harness("run", str(manifest), *LOCAL, "executor.slurm.max_retries=1", results=results)
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())  # lines wrap at 80
    assert text.count("submitted again (1 of 1 retries)") == 1 and "1 of 2 run group(s) failed" in done.stderr
    rows = query(results / "harness.duckdb", "SELECT task, status, error FROM runs ORDER BY task")
    assert rows[0][:2] == ("dmc/cartpole-balance", "finished")
    assert rows[1][:2] == ("myosuite/myoNoSuchTask-v0", "failed")
    assert "myoNoSuchTask" in str(rows[1][2]) and "Traceback" in str(rows[1][2])  # the worker's own record
    assert sorted(j["attempts"] for j in submitted(results).values()) == [0, 2]  # the first try and one retry


@pytest.mark.parametrize("started_ignoring_sigint", [False, True])
def test_ctrl_c_cancels_the_submitted_jobs(tmp_path: Path, started_ignoring_sigint: bool) -> None:
    """SIGINT to the coordinator alone (not its process group): it cancels its Slurm job itself. Also
    for a coordinator started with SIGINT ignored, as a background job of a script is: the job (whose
    controller submitit cancels with SIGINT) must not inherit that."""
    results = tmp_path / "results"
    # A budget of minutes: only the cancel can end the job within the test's seconds.
    manifest = write_manifest(tmp_path, seeds=1, budget=5_000_000, eval={"every": 1000, "episodes": 1},
                              agents={"random": {}})
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(manifest), *LOCAL], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=ignore_sigint if started_ignoring_sigint else None)
    job: list[int] = []  # the controller and its task
    try:
        wait_for("an evaluation", lambda: evals(results) >= 1 and submitted(results), proc)
        pid = int(next(iter(submitted(results).values()))["id"])
        job += [pid, *children(pid)]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 130, out
        deadline = time.monotonic() + 15
        while any(map(_process_alive, job)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_process_alive, job)), "Ctrl-C left the Slurm job running"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in reversed(job):
            if _process_alive(p):
                os.kill(p, signal.SIGKILL)
