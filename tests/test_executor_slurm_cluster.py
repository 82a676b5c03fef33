"""`harness run --executor slurm` against a real single-node Slurm (Debian's slurm-wlm and munge):
the fixture generates a slurm.conf for this host and starts munged, slurmctld and slurmd as root;
a two-job array trains into DuckDB, and a job cancelled with `scancel` is recorded, resubmitted,
and resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.executors.slurm import state_file
from tests.test_executor_ray import wait_for
from tests.test_run import ROOT, query, write_manifest

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel")
missing = [name for name in DAEMONS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]
pytestmark = [
    pytest.mark.skipif(bool(missing), reason=f"needs Debian's slurm-wlm and munge ({', '.join(missing)} not found: "
                                             "apt-get install slurm-wlm munge)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="slurmd runs jobs as their users: the fixture must run as root"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A Slurm controller and one node (this host, its CPUs) with their own munge socket and key;
    yields the environment that points Slurm's commands at it."""
    root = tmp_path_factory.mktemp("slurm")
    host = socket.gethostname().split(".")[0]
    key = root / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o400)
    sock = root / "munge.socket"
    (root / "state").mkdir()
    (root / "spool").mkdir()
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=harness-test", f"SlurmctldHost={host}", "SlurmUser=root",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "AuthType=auth/munge", f"AuthInfo=socket={sock}",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}", f"SlurmdLogFile={root / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "MpiDefault=none", "ReturnToService=2",
        "KillWait=2",  # seconds between scancel's SIGTERM and its SIGKILL
        f"NodeName={host} CPUs={os.cpu_count()} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [subprocess.Popen([binary("munged"), "--foreground", "--force", f"--socket={sock}",
                                 f"--key-file={key}", f"--pid-file={root / 'munged.pid'}",
                                 f"--log-file={root / 'munged.log'}", f"--seed-file={root / 'munged.seed'}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 20
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for command in ([binary("slurmctld"), "-D", "-i"], [binary("slurmd"), "-D", "-N", host]):
            daemons.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.0)
        while time.monotonic() < deadline + 40:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout
            if out.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            logs = "\n".join((root / f).read_text()[-2000:] for f in ("slurmctld.log", "slurmd.log")
                             if (root / f).exists())
            raise AssertionError(f"the Slurm node did not become idle: {out!r}\n{logs}")
        yield env
    finally:
        for proc in reversed(daemons):
            proc.send_signal(signal.SIGTERM)
        for proc in reversed(daemons):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def jobs(results: Path) -> dict[str, dict[str, object]]:
    path = state_file(results)
    return dict(json.loads(path.read_text())["jobs"]) if path.exists() else {}


def evals(run_dir: Path) -> int:
    shard = run_dir / "curves.jsonl"
    return shard.read_text().count('"eval/return"') if shard.exists() else 0


def test_a_two_job_array_trains_and_a_cancelled_job_is_resubmitted(tmp_path: Path, slurm: dict[str, str]) -> None:
    results = tmp_path / "results"
    manifest = write_manifest(tmp_path, seeds=1, budget=6000, eval={"every": 1000, "episodes": 1},
                              tasks=["dmc/cartpole-balance", "dmc/pendulum-swingup"],
                              agents={"sac": {"hidden_dims": [64, 64], "batch_size": 64, "warmup_steps": 500}})
    env = {**slurm, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results), "COLUMNS": "300"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(manifest), "--executor", "slurm"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("an evaluation", lambda: len(jobs(results)) == 2 and any(
            evals(d) >= 1 for d in (results / "runs").glob("*")), proc)
        first = next(json.loads((d / "run.json").read_text())["job_id"] for d in (results / "runs").glob("*")
                     if evals(d) >= 1)
        cancelled = str(jobs(results)[first]["id"])
        assert "_" in cancelled  # an element of one array: <array id>_<index>
        subprocess.run(["scancel", cancelled], env=slurm, check=True)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert f"Slurm job {cancelled}" in out and "submitted again" in out, out
    entry = jobs(results)[first]
    assert entry["id"] != cancelled and entry["attempts"] == 1 and entry["state"] == "finished"
    db = results / "harness.duckdb"
    assert query(db, "SELECT status FROM runs") == [("finished",), ("finished",)]
    steps = query(db, "SELECT run_id, list(step ORDER BY step) FROM curves WHERE metric = 'eval/return' GROUP BY 1")
    assert sorted(tuple(s) for _, s in steps) == [tuple(1000 * k for k in range(1, 7))] * 2
