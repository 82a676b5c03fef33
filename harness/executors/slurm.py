"""The Slurm executor: one Slurm job per harness job (or per ``jobs_per_gpu`` jobs sharing a GPU),
submitted as an array through ``submitit``.

The results folder and the log folder must be on a filesystem that the compute nodes share with
the machine the coordinator runs on: the jobs write their shards, run records and checkpoints into
the first, and submitit its pickled job, result and logs into the second.

The Slurm job ids are kept in ``results/executor/slurm.json``: the same ``harness run`` command
run again (after the coordinator was stopped or lost) reattaches to the jobs still pending or
running instead of submitting them twice, and submits the others, which resume from their
checkpoints. A job that ends without a result (``scancel``, pre-emption, its time limit, a lost
node) or with an error is recorded so and submitted again up to ``max_retries`` times.

``cluster: local`` runs the jobs as processes of this machine through submitit's LocalExecutor,
for testing; they are not stopped with the coordinator, so a re-run reattaches to them as it would
to Slurm jobs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.errors import InputError, StorageError
from harness.executors.remote import Retrying, remote_group
from harness.executors.settings import SlurmSettings
from harness.jobs import Job

#: Slurm job states (``squeue``) of a job that may still write its result.
ALIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                          "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING"})


def state_file(results: Path) -> Path:
    return results / "executor" / "slurm.json"


class SlurmRunner(Retrying):
    def __init__(self, settings: SlurmSettings, results: Path, jobs: Sequence[Job],
                 step_workers: int | None) -> None:
        import submitit

        super().__init__(results.resolve(), jobs, settings.max_retries, settings.gpus_per_job > 0)
        self.settings = settings
        self.folder = (settings.log_folder or self.results / "executor" / "slurm-logs").resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._executor = submitit.AutoExecutor(folder=self.folder, cluster=settings.cluster)
        except RuntimeError as exc:  # no sbatch/srun here
            raise InputError(f"--executor slurm: {exc} (run the coordinator on a Slurm login node; `cluster: "
                             "local` in the slurm settings runs the jobs on this machine, for testing)") from None
        params: dict[str, Any] = {"name": "harness", "timeout_min": settings.time_min,
                                  "gpus_per_node": settings.gpus_per_job, "cpus_per_task": settings.cpus_per_job}
        if settings.cluster == "slurm":
            params |= {"slurm_array_parallelism": settings.array_parallelism,
                       "slurm_additional_parameters": dict(settings.sbatch_flags)}
            params |= {f"slurm_{key}": value for key, value in
                       (("partition", settings.partition), ("account", settings.account), ("qos", settings.qos))
                       if value is not None}
        self._executor.update_parameters(**params)
        if settings.cluster == "slurm":
            for what, folder in (("results folder", self.results), ("log folder", self.folder)):
                if filesystem(folder) == "tmpfs":
                    self.notes.append((jobs[0].job_id, f"warning: the {what} {folder} is on tmpfs, memory of this "
                                                       "machine: compute nodes other than this one cannot see it; "
                                                       "put it on a filesystem they share"))
        self._args = (str(self.results), settings.gpus_per_job > 0, settings.jobs_per_gpu, step_workers)
        self._handles: dict[str, tuple[Any, list[str]]] = {}  # Slurm job id -> (submitit Job, its jobs' ids)
        self._earlier_folder = self.folder
        self._record: dict[str, dict[str, Any]] = self._read_record()
        self._reattach(jobs)
        self.submit([j for j in jobs if j.job_id not in self.running()])

    # Submitting and reattaching

    def _read_record(self) -> dict[str, dict[str, Any]]:
        """The jobs an earlier run submitted to the same cluster; their log folder is where their results land."""
        path = state_file(self.results)
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except ValueError as exc:
            raise StorageError(f"{path}: not valid JSON ({exc}); move it aside to follow no earlier Slurm jobs (the "
                               "unfinished ones are then submitted again)") from None
        if data.get("cluster") != self.settings.cluster:
            return {}
        self._earlier_folder = Path(data.get("folder") or self.folder)
        return dict(data.get("jobs", {}))

    def _write_record(self) -> None:
        path = state_file(self.results)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cluster": self.settings.cluster, "folder": str(self.folder),
                                   "jobs": self._record}, indent=1, sort_keys=True))
        tmp.replace(path)

    def _reattach(self, jobs: Sequence[Job]) -> None:
        """Follow the recorded Slurm jobs of these jobs that are still pending or running."""
        import submitit

        job_class = submitit.LocalJob if self.settings.cluster == "local" else submitit.SlurmJob
        known = {j.job_id: self._record[j.job_id] for j in jobs if j.job_id in self._record}
        alive = self._alive([entry["id"] for entry in known.values()])
        for job_id, entry in known.items():
            self.attempts[job_id] = int(entry.get("attempts", 0))
            if entry["id"] in alive:
                handle: Any = job_class(self._earlier_folder, entry["id"])
                self._handles.setdefault(entry["id"], (handle, []))[1].append(job_id)
                self._record[job_id] = {**entry, "state": "reattached"}
                self.notes.append((job_id, f"reattached to Slurm job {entry['id']} (submitted by an earlier run)"))
        if self._handles:
            self._write_record()

    def submit(self, jobs: Sequence[Job]) -> None:
        """Submit the jobs as one array, ``jobs_per_gpu`` of them in each Slurm job."""
        if not jobs:
            return
        k = self.settings.jobs_per_gpu
        groups = [list(jobs[i:i + k]) for i in range(0, len(jobs), k)]
        with self._executor.batch():
            handles = [self._executor.submit(remote_group, group, *self._args) for group in groups]
        for group, handle in zip(groups, handles, strict=True):
            self._handles[str(handle.job_id)] = (handle, [job.job_id for job in group])
            for job in group:
                self._record[job.job_id] = {"id": str(handle.job_id), "attempts": self.attempts[job.job_id],
                                            "state": "submitted"}
        self._write_record()

    # Following

    def running(self) -> list[str]:
        return [job_id for _, job_ids in self._handles.values() for job_id in job_ids]

    def _alive(self, ids: Sequence[str]) -> set[str]:
        """Which of these Slurm job ids (process ids with ``cluster: local``) may still write a result."""
        if not ids:
            return set()
        if self.settings.cluster == "local":
            return {i for i in ids if _process_alive(int(i))}
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i %T", "-j", ",".join(ids)], capture_output=True,
                             text=True, check=False).stdout
        return {line.split()[0] for line in out.splitlines() if len(line.split()) == 2
                and line.split()[1] in ALIVE_STATES}

    def ended(self, timeout: float) -> list[tuple[str, str | None]]:
        from submitit.core.utils import pickle_load

        time.sleep(timeout)
        alive = self._alive(list(self._handles))
        out: list[tuple[str, str | None]] = []
        for slurm_id, (handle, job_ids) in list(self._handles.items()):
            local = getattr(handle, "_process", None)
            if (local is not None and local.poll() is None) or slurm_id in alive:
                continue
            result = handle.paths.result_pickle
            errors: list[str | None]
            if result.exists():
                try:
                    outcome, value = pickle_load(result)
                except (OSError, EOFError, ValueError) as exc:
                    outcome, value = "error", f"its result {result} cannot be read: {exc}"
                errors = list(value) if outcome == "success" else \
                    [f"Slurm job {slurm_id} failed: {str(value).strip().splitlines()[-1]}"] * len(job_ids)
            else:
                log = handle.paths.stderr
                where = f"its log: {log}" if log.exists() else \
                    f"it wrote no log to {log}: is the log folder on a filesystem the node shares with this machine?"
                errors = [f"Slurm job {slurm_id} ended without a result (cancelled, pre-empted, out of time or its "
                          f"node lost; {where})"] * len(job_ids)
            del self._handles[slurm_id]
            for job_id, error in zip(job_ids, errors, strict=True):
                self._record[job_id] = {**self._record[job_id], "state": "failed" if error else "finished",
                                        "attempts": self.attempts[job_id] + (1 if error else 0)}
                out.append((job_id, error))
        if out:
            self._write_record()
        return out

    # Stopping

    def terminate(self) -> None:
        """Cancel every job submitted or reattached (``scancel``); the next run resumes them."""
        for handle, _ in self._handles.values():
            handle.cancel(check=False)
        if self.settings.cluster == "local":  # reattached processes have no handle to signal
            for slurm_id, (handle, _) in self._handles.items():
                if getattr(handle, "_process", None) is None and _process_alive(int(slurm_id)):
                    _signal(int(slurm_id))
        self._handles.clear()

    def kill(self) -> None:
        self.terminate()

    def close(self) -> None:
        self._write_record()


def filesystem(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts; '' where unknown)."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return ""
    path = path.resolve()
    best, kind = -1, ""
    for fields in mounts:
        if len(fields) >= 3 and path.is_relative_to(fields[1]) and len(fields[1]) > best:
            best, kind = len(fields[1]), fields[2]
    return kind


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _signal(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
