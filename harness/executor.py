"""The local executor: run jobs in worker processes, the coordinator alone writes DuckDB.

Workers (spawned processes, one GPU each when there are GPUs) train jobs through
:func:`harness.backends.train` and write shards; the coordinator shows progress, ingests shards as
evaluations land and when jobs end, and records a failed job's runs as failed with its error while
the others go on.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.errors import StoreBusy
from harness.jobs import Job
from harness.layout import read_status, run_dir, write_run_record
from harness.manifest import Plan
from harness.processes import without_main
from harness.runfiles import SHARD_CURVES, SHARD_RUN, SHARD_SUPERSEDED, read_record
from harness.worker import serve

if TYPE_CHECKING:
    from harness import store as store_mod
    from harness.executors import Runner


@dataclass(frozen=True)
class Outcome:
    """What a batch did: jobs finished now, skipped (already finished), and failed with errors."""

    finished: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]


def visible_gpus() -> list[str]:
    """GPU ids from CUDA_VISIBLE_DEVICES, else from ``nvidia-smi -L``; empty on a CPU machine."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


def default_workers() -> int:
    return max(1, len(visible_gpus()))


def job_state(results: Path, job: Job) -> str:
    """'finished', 'resumable' (a checkpoint or partial shards exist) or 'new'."""
    statuses = {read_status(results, r.run_id) for r in job.runs}
    if statuses == {"finished"}:
        return "finished"
    return "new" if statuses == {None} else "resumable"


class Interrupted(Exception):
    """The coordinator was stopped by SIGINT (Ctrl-C) or SIGTERM; its workers are stopped too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by it (130, 143)."""
        return 128 + self.signum


# ----------------------------------------------------------------------------------------------
# Coordinator side


def execute(plan: Plan, results: Path, workers: int, console: Console, step_workers: int | None = None,
            launch: Callable[[Path, Sequence[Job]], Runner] | None = None) -> Outcome:
    """Run every unfinished job of the plan; ingest shards into ``results/harness.duckdb``.
    ``step_workers``: processes stepping each job's simulators (None: the backend's default).
    ``launch``: starts the jobs on an executor (:func:`harness.executors.launcher`); None: ``workers``
    local worker processes.

    SIGINT or SIGTERM stops every worker at once (their jobs resume from their last checkpoints)
    and raises :class:`Interrupted`; a second signal while stopping kills the workers and exits.
    Another process holding the store does not stop training (see :class:`_Ingester`); if it still
    holds it when every job has ended, :class:`harness.errors.StoreBusy` says how to ingest later.
    """
    todo = [j for j in plan.jobs if job_state(results, j) != "finished"]
    skipped = tuple(j.job_id for j in plan.jobs if j not in todo)
    if not todo:
        ingester = _Ingester(_store(results), results, {j.job_id: j for j in plan.jobs})
        ingester.pending.update(skipped)
        _rebuild_unless_busy(ingester.store, results)
        ingester.finish(console)
        return Outcome((), skipped, ())
    pool: Runner | None = None
    stopping: list[int] = []
    armed = threading.Event()  # set once a stop can be carried out: the jobs launched, the store open

    def stop(signum: int, frame: Any) -> None:
        if stopping:  # a second signal: no more waiting
            if pool is not None:
                pool.kill()
            os._exit(128 + signum)
        stopping.append(signum)
        if armed.is_set():  # otherwise the stop waits until it is
            raise Interrupted(signum)

    # The handlers come first: the jobs then start with the default SIGINT even where this process
    # ignores it (a background job of a script), so that cancelling them works.
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[sps]} steps/s  eval {task.fields[score]}{task.fields[store]}"),
               TimeElapsedColumn())
    try:
        # The workers start (and load their libraries) before this process loads the store's and opens it.
        pool = launch(results, todo) if launch else _Pool(results, min(workers, len(todo)), step_workers, todo)
        try:
            store = _store(results)
            ingester = _Ingester(store, results, {j.job_id: j for j in plan.jobs})
            ingester.pending.update(skipped)
            armed.set()
            if stopping:
                raise Interrupted(stopping[0])
            _rebuild_unless_busy(store, results)
            with Progress(*columns, console=console, transient=False) as progress:
                bars = {j.job_id: progress.add_task(describe(j), total=j.budget, sps="-", score="-", store="")
                        for j in todo}
                outcome = _supervise(pool, ingester, progress, bars, skipped)
            ingester.finish(console)
            return outcome
        except Interrupted:
            pool.terminate()
            # What the stopped jobs had written (their checkpoints resume them), if the store is free now.
            ingester.pending.update(j.job_id for j in todo)
            ingester.ingest(BUSY_WAIT_S)
            raise
        finally:
            pool.close()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _supervise(pool: Runner, ingester: _Ingester, progress: Progress, bars: dict[str, Any],
               skipped: tuple[str, ...]) -> Outcome:
    """Follow the workers until every job is done: progress, ingests, failures, dead workers."""
    finished: list[str] = []
    failed: list[tuple[str, str]] = []
    while len(finished) + len(failed) < len(pool.jobs):
        for event in pool.events(timeout=0.5):
            kind, job_id, *rest = event
            job = pool.jobs[job_id]
            ingester.pending.add(job_id)
            if kind == "progress":
                steps, sps, last_eval = rest
                score = "-" if last_eval is None else f"{last_eval:.1f}"
                progress.update(bars[job_id], completed=steps, sps=f"{sps:,.0f}", score=score)
            elif kind == "note":
                progress.console.print(f"{describe(job)}: {escape(rest[0])}")
            elif kind == "done":
                error = rest[0]
                ingester.soon()
                if error is None:
                    finished.append(job_id)
                    progress.update(bars[job_id], completed=job.budget)
                    if pool.asks_gpu and (device := recorded_device(ingester.results, job)).startswith("cpu"):
                        progress.console.print(f"[yellow]warning:[/] {describe(job)} asked for a GPU and ran on "
                                               f"{escape(device)} (its run record says so): is a GPU visible to "
                                               "its worker, and is JAX's CUDA build installed there?")
                else:
                    failed.append((job_id, error))
                    progress.update(bars[job_id], description=f"[red]FAILED[/] {describe(job)}")
        if ingester.due():
            was_busy = ingester.busy
            ingester.ingest(BUSY_WAIT_S)
            if ingester.busy != was_busy:
                progress.console.print(
                    f"store busy: another process holds {ingester.store.path}; training goes on and the ingest "
                    "will retry" if ingester.busy else "store free again: the curves so far are ingested")
                for bar in bars.values():
                    progress.update(bar, store="  (store busy, will retry)" if ingester.busy else "")
    return Outcome(tuple(finished), skipped, tuple(failed))


#: How long an ingest during training waits for a store another process holds before it leaves
#: the points for the next one (the shards keep them).
BUSY_WAIT_S = 1.0
#: How long the last ingest, when every job has ended, waits for a store another process holds.
FINAL_BUSY_WAIT_S = 120.0
#: The shortest time between two ingests during training (a job that ends is ingested at once).
INGEST_EVERY_S = 5.0
#: An ingest that took d seconds is followed by none for INGEST_SHARE * d seconds.
INGEST_SHARE = 49.0
#: How much lower than the coordinator's the priority of its ingests is (nice increment).
INGEST_NICE = 10


class _Ingester:
    """The coordinator's ingests of shards into the store while workers train.

    Only what changed since the last ingest is read and written (:func:`harness.store.ingest_run_dirs`),
    in batches: at most one every :data:`INGEST_EVERY_S` seconds and, after one that took d seconds,
    none for ``INGEST_SHARE * d`` (so ingests take at most a fiftieth of a core: one worker of a JAX
    agent keeps both cores of a small machine busy), except that a job that ends is ingested at once.
    Each runs in a thread of its own whose priority is :data:`INGEST_NICE` lower (Linux gives every
    thread its own), so on a machine with as many workers as cores the workers' steps come first;
    the coordinator's main thread, which starts workers, keeps its own.

    While another process holds the store, an ingest gives up after a short wait and its jobs stay
    pending: the progress line says so and the next ingest tries again. The last one, when every job
    has ended, waits :data:`FINAL_BUSY_WAIT_S`.
    """

    def __init__(self, store: store_mod.Store, results: Path, jobs: dict[str, Job]) -> None:
        self.store = store
        self.results = results
        self.jobs = jobs
        self.pending: set[str] = set()  # jobs whose shards may have changed since they were last ingested
        self.busy = False  # whether the last ingest found the store held by another process
        self._next = 0.0  # monotonic time of the next ingest
        self._thread: threading.Thread | None = None
        self._ingested: dict[Path, tuple[object, ...]] = {}  # each run folder's files at its last ingest

    def due(self) -> bool:
        return bool(self.pending) and time.monotonic() >= self._next

    def soon(self) -> None:
        """Ingest at the next occasion (a job has ended)."""
        self._next = 0.0

    def ingest(self, wait_s: float) -> bool:
        """Ingest the pending jobs, waiting at most ``wait_s`` for the store; False if it was busy.
        Run folders whose files are as they were at their last ingest are left out, and when none
        changed the store is not opened at all (an ingest that writes nothing still costs 40 ms)."""
        started = time.monotonic()
        dirs = [run_dir(self.results, r.run_id) for j in sorted(self.pending) for r in self.jobs[j].runs]
        marks = {d: _files_mark(d) for d in dirs}
        dirs = [d for d in dirs if d.exists() and marks[d] != self._ingested.get(d)]
        if not dirs:
            self.pending.clear()
            self._next = time.monotonic() + INGEST_EVERY_S
            return True
        outcome: list[BaseException] = []

        def work() -> None:
            from harness.store import ingest_run_dirs

            if sys.platform == "linux":  # elsewhere a priority is the whole process's
                tid = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + INGEST_NICE))
            try:
                ingest_run_dirs(replace(self.store, busy_timeout_s=wait_s), dirs)
            except BaseException as exc:  # handed to the main thread
                outcome.append(exc)

        if self._thread is not None:  # one that a signal interrupted the wait for
            self._thread.join()
        self._thread = threading.Thread(target=work, name="ingest", daemon=True)
        self._thread.start()
        self._thread.join()
        self._thread = None
        took = time.monotonic() - started
        self._next = time.monotonic() + max(INGEST_EVERY_S - took, INGEST_SHARE * took)
        self.busy = bool(outcome) and isinstance(outcome[0], StoreBusy)
        if outcome and not self.busy:
            raise outcome[0]
        if not self.busy:
            self.pending.clear()
            self._ingested.update((d, marks[d]) for d in dirs)  # as they were before it: later writes count
        return not self.busy

    def finish(self, console: Console) -> None:
        """Ingest whatever is pending, waiting the store's full timeout; StoreBusy if it stays held."""
        if not self.pending:
            return
        if not self.ingest(BUSY_WAIT_S):
            console.print(f"store busy: waiting up to {FINAL_BUSY_WAIT_S:g} s for {self.store.path}")
            if not self.ingest(FINAL_BUSY_WAIT_S):
                raise StoreBusy(
                    f"the store {self.store.path} is held by another process: the curves of these runs are "
                    f"safe in {self.results / 'runs'}/ but not in the store yet. Close the other process "
                    "(a notebook, `duckdb` shell, ...) and run the same `harness run` command again: it "
                    "trains nothing more and ingests them.")


def _files_mark(folder: Path) -> tuple[object, ...]:
    """What changes when a run folder's files are written: each one's inode, size and modification time."""
    mark: list[object] = []
    for name in (SHARD_RUN, SHARD_CURVES, SHARD_SUPERSEDED):
        try:
            stat = (folder / name).stat()
        except FileNotFoundError:
            mark.append(None)
        else:
            mark.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(mark)


class _Pool:
    """The local executor: worker processes (spawned, one GPU each when there are GPUs, or
    ``jobs_per_gpu`` per GPU) taking jobs from a queue.

    A worker that dies (a crash in a simulator, an OOM kill) fails the job it held, recorded as
    such, and is replaced while jobs remain."""

    def __init__(self, results: Path, workers: int, step_workers: int | None, jobs: Sequence[Job],
                 jobs_per_gpu: int = 1) -> None:
        self.results = results
        self.jobs = {j.job_id: j for j in jobs}
        self._ctx = mp.get_context("spawn")
        self._queue = self._ctx.Queue()
        self._events = self._ctx.Queue()
        self._step_workers = step_workers
        for job in jobs:
            self._queue.put(job)
        for _ in range(workers):
            self._queue.put(None)
        self._jobs_per_gpu = jobs_per_gpu
        self._free_gpus = [gpu for gpu in visible_gpus() for _ in range(jobs_per_gpu)]
        self.asks_gpu = bool(self._free_gpus)
        self._procs: dict[int, tuple[Any, str | None]] = {}  # pid -> (process, its GPU)
        self._holding: dict[int, str] = {}  # pid -> the job it trains
        self._done: set[str] = set()
        self._dead_on_start = "no worker left"
        for _ in range(workers):
            self._start(self._free_gpus.pop(0) if self._free_gpus else None)

    def _start(self, gpu: str | None) -> None:
        proc = self._ctx.Process(target=serve, args=(self._queue, self._events, self.results, gpu,
                                                       self._step_workers, self._jobs_per_gpu))
        with without_main():
            proc.start()
        assert proc.pid is not None
        self._procs[proc.pid] = (proc, gpu)

    def events(self, timeout: float) -> list[tuple[Any, ...]]:
        """The events that arrived within ``timeout`` seconds (and a ("done", job, error) for each job
        whose worker died)."""
        out: list[tuple[Any, ...]] = []
        try:
            out.append(self._events.get(timeout=timeout))
            while True:
                out.append(self._events.get_nowait())
        except queue.Empty:
            pass
        for event in out:
            if event[0] == "start":
                self._holding[event[2]] = event[1]
            elif event[0] == "done":
                self._done.add(event[1])
        return [e for e in out if e[0] != "start"] + self._reap()

    def _reap(self) -> list[tuple[Any, ...]]:
        """Failures of the jobs whose worker died, and replacements for those workers."""
        out: list[tuple[Any, ...]] = []
        for pid, (proc, gpu) in list(self._procs.items()):
            if proc.is_alive() or proc.exitcode == 0:
                continue
            del self._procs[pid]
            job_id = self._holding.pop(pid, None)
            if job_id is None:  # died before taking a job (a broken install): not replaced
                self._dead_on_start = f"worker died on start (exit code {proc.exitcode})"
                continue
            if job_id not in self._done:
                out += self._fail([job_id], f"worker died (exit code {proc.exitcode})")
            if len(self._done) < len(self.jobs):
                self._start(gpu)
                self._queue.put(None)  # the dead worker's share of the stop marks was not taken
        if not self._procs and len(self._done) < len(self.jobs):  # nobody left to take the rest
            out += self._fail([j for j in self.jobs if j not in self._done], self._dead_on_start)
        return out

    def _fail(self, job_ids: list[str], text: str) -> list[tuple[Any, ...]]:
        for job_id in job_ids:
            for spec in self.jobs[job_id].runs:
                write_run_record(self.results, spec, status="failed", error=text)
            self._done.add(job_id)
        return [("done", job_id, text) for job_id in job_ids]

    def terminate(self) -> None:
        """SIGTERM every worker (their env processes follow), wait a few seconds, kill the rest."""
        for proc, _ in self._procs.values():
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + 5.0
        for proc, _ in self._procs.values():
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
        self.kill()

    def kill(self) -> None:
        for proc, _ in self._procs.values():
            if proc.is_alive():
                proc.kill()

    def close(self) -> None:
        for proc, _ in self._procs.values():
            proc.join(timeout=5.0)
        for q in (self._queue, self._events):
            q.cancel_join_thread()
            q.close()


def describe(job: Job) -> str:
    """A job in a progress line: task (or task set) · label · seeds, as rich markup (the user's
    text escaped, so a label like ``[/x]`` prints as it is)."""
    what = job.tasks[0] if len(job.tasks) == 1 else f"{job.name} ({len(job.tasks)} tasks)"
    return escape(f"{what} · {job.first.label} · {len(job.seeds)} seeds")


def recorded_device(results: Path, job: Job) -> str:
    """The device the job's first run record says it trained on ('' when not recorded)."""
    path = run_dir(results, job.first.run_id) / SHARD_RUN
    return str((read_record(path) if path.exists() else {}).get("device") or "")


def _store(results: Path) -> store_mod.Store:
    """The store of a results folder; DuckDB and pandas (half a second to import) load here."""
    from harness import store as store_mod

    return store_mod.Store(results / "harness.duckdb")


def _rebuild_unless_busy(store: store_mod.Store, results: Path) -> None:
    """:func:`_rebuild_if_new`, unless another process holds the store (the ingester then retries
    this plan's runs)."""
    with contextlib.suppress(StoreBusy):
        _rebuild_if_new(replace(store, busy_timeout_s=1.0), results)


def _rebuild_if_new(store: store_mod.Store, results: Path) -> None:
    """A new store (or a broken one moved aside) holds none of our runs: fold every run folder of
    the results into it, a few hundred at a time (one transaction each), other manifests' included."""
    from harness.store import ingest_run_dirs, scalar

    store.ensure()
    with store.connect(read_only=True) as con:
        empty = scalar(con, "SELECT count(*) FROM runs WHERE source = 'harness'") == 0
    if empty:
        dirs = sorted(p for p in (results / "runs").glob("*") if p.is_dir())
        for start in range(0, len(dirs), 200):
            ingest_run_dirs(store, dirs[start:start + 200])
