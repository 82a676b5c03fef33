"""`harness run` under `kill -9` at chosen moments, and with another process holding the store: the
store always agrees with the shards (results/runs/), and a resumed run equals an uninterrupted one.

Each kill trial SIGKILLs the process group of `python -m harness run` (the coordinator and its
workers) at a phase found by watching the results folder, never by timing:

- ``before-checkpoint``: the SAC run is training and has no checkpoint yet;
- ``after-checkpoint``:  a new checkpoint file has just appeared;
- ``during-ingest``:     the store's write-ahead log exists (a write transaction is open);
- ``between-ingests``:   the store holds points written after the last checkpoint (read once per
                         ingest) and is not being written;
- ``group-finished``:    the random group is finished (it trains first), the SAC one is not.

The default run kills one run at three moments in turn (the first is after a group finished and
before the first checkpoint at once); the slow set kills a run once at each phase. Between ingests
is only in the slow set: it needs an ingest to land between two checkpoints after points past the
first reached the shard, which takes evaluations slower than the ingests' pace (a loaded machine).

After each kill, every point in the store is in its shard with the same value (the store may lag,
never lead); after the last re-run, each run's points in the store are exactly its shard's, and
every curve equals the uninterrupted run's (but the `sys/` timings).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import duckdb
import pytest
import yaml
from rich.console import Console

from harness import executor, layout, runfiles
from harness import manifest as manifest_mod
from harness import store as store_mod
from harness.errors import StoreBusy
from tests.test_run import ROOT, assert_group_ends, harness, query

Points = dict[tuple[str, str, int], float]  # (run_id, metric, step) -> value


def write_manifest(tmp_path: Path, agents: Mapping[str, object], budget: int) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({
        "name": "reliability", "tasks": ["dmc/cartpole-balance"], "agents": agents, "seeds": 1, "budget": budget,
        "eval": {"every": 1000, "episodes": 1}, "log_every": 20,  # past the shard's write buffer between evals
    }))
    return path


SAC_AND_RANDOM = {"sac": {"hidden_dims": [32, 32], "batch_size": 32, "warmup_steps": 200}, "random": {}}
BUDGET = 4000  # four evaluations and checkpoints: room for each phase of a chain of kills


def start(manifest: Path, results: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(manifest)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group of `harness run`, as `kill -9 -PGID` does."""
    assert proc.poll() is None, "the run ended before the phase was reached"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert_group_ends(proc.pid, "a process outlived the kill")


# ----------------------------------------------------------------------------------------------
# Store and shards, value by value


def shard_points(results: Path) -> tuple[Points, int]:
    """Every run's shard points, and how many lines they came from (a key twice would differ)."""
    points: Points = {}
    lines = 0
    for d in sorted((results / "runs").iterdir()):
        run = runfiles.read_run(d)
        assert run is not None
        frame, _ = store_mod.read_points(d)
        lines += len(frame)
        points.update({(run["run_id"], m, int(s)): float(v)
                       for m, s, v in zip(frame.metric, frame.step, frame.value, strict=True)})
    return points, lines


def store_points(results: Path) -> Points:
    db = results / "harness.duckdb"
    if not db.exists():
        return {}
    return {(r, m, int(s)): float(v) for r, m, s, v in query(db, "SELECT run_id, metric, step, value FROM curves")}


def assert_store_within_shards(results: Path) -> int:
    """After a kill: every stored point is in its shard with the same value; returns how many."""
    stored, (shards, _) = store_points(results), shard_points(results)
    assert {k: v for k, v in stored.items() if shards.get(k) != v} == {}
    return len(stored)


def assert_store_equals_shards(results: Path) -> int:
    """After a completed run: the store holds exactly the shards' points; returns how many."""
    stored, (shards, lines) = store_points(results), shard_points(results)
    assert lines == len(shards), "a shard holds a key twice"
    assert set(stored) - set(shards) == set(), "points in the store that no shard holds (superseded)"
    assert set(shards) - set(stored) == set(), "shard points missing from the store"
    assert {k: (stored[k], v) for k, v in shards.items() if stored[k] != v} == {}
    runs = query(results / "harness.duckdb", "SELECT run_id, status FROM runs")
    assert {r for r, _ in runs} == {k[0] for k in shards} and {s for _, s in runs} == {"finished"}
    return len(stored)


def curves(results: Path) -> dict[tuple[str, str, int], float]:
    """Every point but the `sys/` timings, keyed by (label, metric, step)."""
    labels = dict(query(results / "harness.duckdb", "SELECT run_id, label FROM runs"))
    return {(labels[r], m, s): v for (r, m, s), v in store_points(results).items() if not m.startswith("sys/")}


# ----------------------------------------------------------------------------------------------
# Phases, read from the results folder


class Watch:
    """What the results folder of a run says about where it stands."""

    def __init__(self, results: Path) -> None:
        self.results = results
        self.last_checkpoint: float | None = None  # mtime of the SAC checkpoint when last seen
        self.kept: tuple[float, int] | None = None  # (mtime, shard offset) of the SAC checkpoint last read
        self.grown_at: float | None = None  # when the SAC shard on disk went past that offset
        self.checked = 0.0  # mtime of the store when it was last read

    def record(self, label: str) -> dict[str, object] | None:
        for path in (self.results / "runs").glob("*/run.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):  # replaced while read
                continue
            if record["label"] == label:
                return dict(record)
        return None

    def checkpoint_mtime(self, label: str) -> float | None:
        record = self.record(label)
        if record is None or record.get("job_id") is None:
            return None
        try:
            return (self.results / "groups" / str(record["job_id"]) / "checkpoint.pkl").stat().st_mtime
        except FileNotFoundError:
            return None

    def writing_store(self) -> bool:
        return (self.results / "harness.duckdb.wal").exists()

    def before_checkpoint(self) -> bool:
        record = self.record("sac")
        return record is not None and record["status"] == "running" and self.checkpoint_mtime("sac") is None

    def after_checkpoint(self) -> bool:
        seen, self.last_checkpoint = self.last_checkpoint, self.checkpoint_mtime("sac")
        return seen is not None and self.last_checkpoint is not None and self.last_checkpoint != seen

    def during_ingest(self) -> bool:
        record = self.record("sac")
        return record is not None and record["status"] == "running" and self.writing_store()

    def between_ingests(self) -> bool:
        """Points past the last checkpoint reached the shard, an ingest has run since, none runs now:
        the store holds points that the resumed attempt will supersede."""
        record, checkpoint = self.record("sac"), self.checkpoint_mtime("sac")
        if record is None or record["status"] != "running" or checkpoint is None:
            return False
        if self.kept is None or self.kept[0] != checkpoint:
            try:
                path = self.results / "groups" / str(record["job_id"]) / "checkpoint.pkl"
                offsets = pickle.loads(path.read_bytes())
            except (OSError, EOFError, pickle.UnpicklingError):  # replaced while read
                return False
            self.kept, self.grown_at = (checkpoint, offsets["offsets"][0]), None
        shard = self.results / "runs" / str(record["run_id"]) / runfiles.SHARD_CURVES
        if self.grown_at is None and shard.stat().st_size > self.kept[1]:
            self.grown_at = time.time()
        db = self.results / "harness.duckdb"
        written = db.stat().st_mtime
        if self.grown_at is None or self.writing_store() or written <= self.grown_at or written == self.checked:
            return False
        self.checked = written  # once per ingest: an ingest that began before the growth read none of it
        cut, _ = store_mod.read_points(shard.parent, self.kept[1])
        try:
            con = duckdb.connect(str(db), read_only=True)
        except duckdb.IOException:  # an ingest has begun
            return False
        with con:
            stored = set(con.execute("SELECT metric, step FROM curves WHERE run_id = ?", [record["run_id"]]).fetchall())
        return any((m, int(s)) in stored for m, s in zip(cut.metric, cut.step, strict=True))

    def group_finished(self) -> bool:
        rnd, sac = self.record("random"), self.record("sac")
        return rnd is not None and rnd["status"] == "finished" and (sac is None or sac["status"] != "finished")

    def group_finished_and_before_checkpoint(self) -> bool:
        """Both at once (one start-up less): the random group is finished, SAC trains towards its first."""
        return self.group_finished() and self.before_checkpoint()


def superseded_in_store(results: Path) -> int:
    """Points the store holds from past a job's last checkpoint: the resumed attempt supersedes them."""
    stored = store_points(results)
    count = 0
    for path in (results / "groups").glob("*/checkpoint.pkl"):
        offsets = pickle.loads(path.read_bytes())["offsets"]
        for d in (results / "runs").iterdir():
            run = runfiles.read_run(d)
            if run is not None and run.get("job_id") == path.parent.name:
                cut, _ = store_mod.read_points(d, offsets[0])
                count += sum((run["run_id"], m, int(s)) in stored for m, s in zip(cut.metric, cut.step, strict=True))
    return count


def kill_at(manifest: Path, results: Path, phase: Callable[[], bool]) -> None:
    proc = start(manifest, results)
    deadline = time.monotonic() + 300
    while not phase():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before the phase was reached"
        time.sleep(0.005)
    kill_group(proc)


FIGURES: dict[str, int] = {"trials": 0, "points compared": 0, "values equal": 0, "superseded in store": 0}


class Uninterrupted:
    """The same run, never stopped, in a folder of its own; started at once, awaited when needed."""

    def __init__(self, tmp: Path) -> None:
        self.results = tmp / "results"
        self.proc = start(write_manifest(tmp, SAC_AND_RANDOM, BUDGET), self.results)
        self._curves: dict[tuple[str, str, int], float] | None = None

    def curves(self) -> dict[tuple[str, str, int], float]:
        if self._curves is None:
            assert self.proc.wait(timeout=600) == 0
            self._curves = curves(self.results)
        return self._curves


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Uninterrupted]:
    whole = Uninterrupted(tmp_path_factory.mktemp("whole"))
    yield whole
    if whole.proc.poll() is None:
        kill_group(whole.proc)
    print(f"\nkill trials: {FIGURES}")


def kill_trials(tmp_path: Path, phases: list[str], uninterrupted: Uninterrupted) -> int:
    """Kill one run at each phase in turn (each re-run resumes the last), then run it to the end;
    returns how many points the store held that a resumed attempt superseded."""
    manifest, results = write_manifest(tmp_path, SAC_AND_RANDOM, BUDGET), tmp_path / "results"
    watch = Watch(results)
    superseded = 0
    for name in phases:
        kill_at(manifest, results, getattr(watch, name.replace("-", "_")))
        FIGURES["trials"] += 1
        superseded += superseded_in_store(results)
        assert_store_within_shards(results)
    done = harness("run", str(manifest), results=results)
    assert done.returncode == 0, done.stdout + done.stderr
    compared = assert_store_equals_shards(results)
    resumed, whole = curves(results), uninterrupted.curves()
    assert set(resumed) == set(whole)
    equal = sum(resumed[k] == v for k, v in whole.items())
    assert equal == len(whole), "a resumed curve differs from the uninterrupted run's"
    eval_steps = sorted(s for (label, m, s) in resumed if m == "eval/return" and label == "sac")
    assert eval_steps == list(range(1000, BUDGET + 1, 1000))
    FIGURES["points compared"] += compared + len(whole)
    FIGURES["values equal"] += compared + equal
    FIGURES["superseded in store"] += superseded
    return superseded


def test_kill_9_at_each_phase_then_resume_equals_the_shards_and_the_uninterrupted_run(
        tmp_path: Path, uninterrupted: Uninterrupted) -> None:
    kill_trials(tmp_path, ["group-finished-and-before-checkpoint", "after-checkpoint", "during-ingest"], uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["group-finished", "before-checkpoint", "after-checkpoint", "during-ingest",
                                   "between-ingests"])
def test_kill_9_once_at_a_phase(tmp_path: Path, phase: str, uninterrupted: Uninterrupted) -> None:
    superseded = kill_trials(tmp_path, [phase], uninterrupted)
    if phase == "between-ingests":
        assert superseded > 0  # the store held points past the checkpoint, and the resume replaced them


# ----------------------------------------------------------------------------------------------
# Another process holding the store


HOLD = """
import sys, time
from pathlib import Path
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.05)
con.close()
"""


def hold_store(db: Path, release: Path) -> subprocess.Popen[str]:
    """Another process with a read-only connection to the store, open until ``release`` exists."""
    store_mod.Store(db).ensure()
    reader = subprocess.Popen([sys.executable, "-c", HOLD, str(db), str(release)], stdout=subprocess.PIPE, text=True)
    assert reader.stdout is not None and reader.stdout.readline().strip() == "holding"
    return reader


def test_a_reader_holding_the_store_does_not_stop_the_run(tmp_path: Path) -> None:
    manifest, results = write_manifest(tmp_path, {"random": {}}, 30_000), tmp_path / "results"
    release = tmp_path / "release"
    reader = hold_store(results / "harness.duckdb", release)
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(manifest)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        watch = Watch(results)
        deadline = time.monotonic() + 300
        while watch.checkpoint_mtime("random") is None:  # trains while the store is held
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(executor.INGEST_EVERY_S + executor.BUSY_WAIT_S)  # an ingest tried and gave up
        assert store_points(results) == {}
    finally:
        release.touch()
        reader.wait(timeout=30)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "store busy" in out and "will retry" in out and "store free again" in out
    assert assert_store_equals_shards(results) > 0


def test_a_store_held_to_the_end_says_the_shards_are_safe_and_a_rerun_ingests_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executor, "FINAL_BUSY_WAIT_S", 2.0)
    results = tmp_path / "results"
    plan = manifest_mod.load(write_manifest(tmp_path, {"random": {}}, 2000), [])
    release = tmp_path / "release"
    reader = hold_store(results / "harness.duckdb", release)
    console = Console(file=io.StringIO(), width=200)
    try:
        with pytest.raises(StoreBusy, match="is held by another process") as raised:
            executor.execute(plan, results, 1, console)
        assert "safe in" in str(raised.value) and "run the same `harness run` command again" in str(raised.value)
        assert {r["status"] for r in map(runfiles.read_run, (results / "runs").iterdir()) if r} == {"finished"}
    finally:
        release.touch()
        reader.wait(timeout=30)
    outcome = executor.execute(plan, results, 1, console)  # trains nothing, ingests
    assert outcome.finished == () and len(outcome.skipped) == 1
    assert assert_store_equals_shards(results) > 0
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(1,)]


def test_an_ingest_of_run_folders_that_did_not_change_leaves_the_store_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = tmp_path / "results"
    plan = manifest_mod.load(write_manifest(tmp_path, {"random": {}}, 2000), [])
    executor.execute(plan, results, 1, Console(file=io.StringIO()))
    (job,) = plan.jobs
    ingester = executor._Ingester(store_mod.Store(results / "harness.duckdb"), results, {job.job_id: job})
    ingester.pending.add(job.job_id)
    assert ingester.ingest(1.0)  # a new ingester reads every folder once
    calls: list[list[Path]] = []
    monkeypatch.setattr(store_mod, "ingest_run_dirs", lambda store, dirs: calls.append(list(dirs)) or 0)
    ingester.pending.add(job.job_id)
    assert ingester.ingest(1.0) and calls == [] and not ingester.pending
    shard = layout.run_dir(results, job.runs[0].run_id) / runfiles.SHARD_CURVES
    written = shard.stat().st_mtime_ns
    os.utime(shard, ns=(written, written + 1_000_000))  # written again
    ingester.pending.add(job.job_id)
    assert ingester.ingest(1.0) and calls == [[shard.parent]]
