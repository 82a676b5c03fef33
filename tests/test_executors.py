"""Executor settings, the worker environment of packed GPUs, and the coordinator's warning of a job
that asked for a GPU and ran on CPU (Ray and Slurm runs: test_executor_ray, test_executor_slurm)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from rich.console import Console

from harness import executor, worker
from harness.errors import InputError
from harness.executors import EXECUTORS, settings
from harness.jobs import Job
from tests.test_run import ROOT, harness, query, write_manifest


def parse(kind: str, section: object) -> settings.ExecutorSettings:
    return settings.parse(kind, section, "cluster.yaml")


def test_every_executor_has_settings_and_defaults_need_no_file() -> None:
    assert set(EXECUTORS) == set(settings.KINDS) == {"local", "ray", "slurm"}
    assert parse("ray", None) == settings.RaySettings()
    assert parse("slurm", {"ray": {"cpus_per_job": 2}}) == settings.SlurmSettings()
    chosen = parse("ray", {"ray": {"address": "auto", "gpus_per_job": 1, "jobs_per_gpu": 4}})
    assert isinstance(chosen, settings.RaySettings) and (chosen.address, chosen.jobs_per_gpu) == ("auto", 4)


@pytest.mark.parametrize(("kind", "section", "expected"), [
    ("ray", {"ray": {"gpus": 1}}, "ray.gpus: unknown key; expected one of address, cpus_per_job"),
    ("ray", {"ray": {"gpus_per_job": -1}}, "ray.gpus_per_job: Input should be greater than or equal to 0 (got -1)"),
    ("local", {"slurm": {"gpus_per_job": -2}}, "slurm.gpus_per_job: Input should be greater than or equal to 0"),
    ("slurm", {"slurm": {"log_folder": "/no/such/folder"}}, "slurm.log_folder: /no/such/folder is not an existing "
                                                            "folder; expected one on a filesystem that the compute "
                                                            "nodes share"),
    ("slurm", {"slurm": {"jobs_per_gpu": 2}}, "slurm.jobs_per_gpu: packs jobs on one GPU; expected "
                                              "slurm.gpus_per_job: 1"),
    ("ray", {"kubernetes": {}}, "'kubernetes': no such executor; expected one of local, ray, slurm"),
    ("ray", ["ray"], "expected a mapping of executor names"),
])
def test_bad_settings_are_input_errors_naming_the_key(kind: str, section: object, expected: str) -> None:
    with pytest.raises(InputError, match=r"^cluster\.yaml: ") as info:
        parse(kind, section)
    assert expected in str(info.value)


def test_an_unknown_executor_lists_the_valid_names() -> None:
    with pytest.raises(InputError, match="--executor 'k8s': no such executor; expected one of local, ray, slurm"):
        parse("k8s", None)


def test_bad_settings_exit_2_naming_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "cluster.yaml"
    config.write_text("slurm:\n  cluster: local\n  gpus_per_job: -1\n")
    done = harness("run", str(write_manifest(tmp_path)), "--executor", "slurm", "--executor-config", str(config),
                   results=tmp_path / "results")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{config}: 1 problem(s)" in done.stderr and "slurm.gpus_per_job" in done.stderr
    assert "Traceback" not in done.stderr
    # The manifest's own executor: section, set by an override, is checked the same way.
    done = harness("run", str(write_manifest(tmp_path)), "executor.ray.cpus=2", "--executor", "ray", "--dry-run",
                   results=tmp_path / "results")
    assert done.returncode == 2 and "manifest.yaml: executor" in done.stderr and "ray.cpus: unknown key" in done.stderr
    assert not (tmp_path / "results").exists()  # nothing written


def test_packing_env_shares_a_gpu_memory_between_its_jobs() -> None:
    assert worker.packing_env(1) == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    # Four jobs on a GPU: 0.9 / 4 = 0.225 of its memory each (0.9 of it in all, the rest for CUDA itself).
    assert worker.packing_env(4) == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                                     "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}


def test_a_worker_sets_the_packing_variables_before_jax_starts() -> None:
    """The worker set-up of every executor, in a fresh process: JAX is initialised after it and
    reads the variables (on CPU it ignores the GPU memory share, so the variables are what we check)."""
    code = ("import os; from harness.worker import setup_environment; setup_environment(True, 3); "
            "import jax; jax.devices(); "
            "print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'], os.environ['XLA_PYTHON_CLIENT_MEM_FRACTION'], "
            "'XLA_FLAGS' in os.environ)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XLA_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["false", "0.300", "False"]  # 0.9 / 3; a GPU worker keeps XLA's own CPU flags


def test_a_job_that_asked_for_a_gpu_and_ran_on_cpu_is_warned_of(tmp_path: Path) -> None:
    """Stands in for a worker that was promised a GPU and got none (as a Ray task asking for no GPU
    is): the local pool, told its jobs asked for a GPU, trains on this CPU machine. The random agent
    calls no JAX device (its record says ``host``) and is not warned of."""
    from harness import manifest as manifest_mod

    def launch(results: Path, jobs: Sequence[Job]) -> executor._Pool:
        pool = executor._Pool(results, 1, None, jobs)
        pool.asks_gpu = True
        return pool

    results = tmp_path / "results"
    sac = {"hidden_dims": [8, 8], "batch_size": 8, "warmup_steps": 1900}  # 100 small updates
    plan = manifest_mod.load(write_manifest(tmp_path, seeds=1, agents={"random": {}, "sac": sac}))
    out = io.StringIO()
    outcome = executor.execute(plan, results, 1, Console(file=out, width=200), launch=launch)
    assert len(outcome.finished) == 2
    devices = {json.loads(p.read_text())["agent"]: json.loads(p.read_text())["device"]
               for p in (results / "runs").glob("*/run.json")}
    assert devices["random"] == "host" and devices["sac"].startswith("cpu")
    warned = [line for line in out.getvalue().splitlines() if "asked for a GPU and ran on cpu" in line]
    assert len(warned) == 1 and "sac" in warned[0]
    assert query(results / "harness.duckdb", "SELECT status FROM runs") == [("finished",), ("finished",)]


def test_the_filesystem_of_a_folder_is_read_from_the_mounts() -> None:
    """What the Slurm executor's tmpfs warning reads: the longest mount point above the path."""
    from harness.executors.slurm import filesystem

    assert filesystem(Path("/proc/self")) == "proc"
    assert filesystem(Path("/")) != ""


def test_a_resubmitted_job_waits_for_its_earlier_attempt_to_die(tmp_path: Path) -> None:
    """The job lock of remote workers: held by a process (an earlier attempt being stopped), it is
    taken once that process is killed, and a wait that runs out is an error naming the lock."""
    from harness.executors.remote import job_lock

    code = ("import sys, time; from pathlib import Path; from harness.executors.remote import job_lock\n"
            "with job_lock(Path(sys.argv[1]), 'j1'):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(TimeoutError, match=r"another process still trains job j1 .*/j1\.lock"), \
                job_lock(tmp_path, "j1", wait_s=1.0):
            pass
        holder.kill()  # as kill -9: the kernel drops its lock
        with job_lock(tmp_path, "j1", wait_s=10.0):
            pass
    finally:
        holder.kill()
        holder.wait()
