"""Broken files in the results folder: a broken store, shard line or run record, a full disk and a
read-only folder each end in a message naming the file and what to do (exit 1), no traceback, and
nothing is lost: a store moved aside is rebuilt from the shards.

The shards here are written by hand in the layout the workers write (run records with
:func:`harness.layout.write_run_record`, curve lines as JSON), every run finished, so `harness run`
trains nothing and these tests stay fast. The full disk and the read-only folder are real: a small
tmpfs and a read-only bind mount, made in a private user and mount namespace (``unshare -rm``);
those tests skip where namespaces are not allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from harness import manifest
from harness.cli import app
from harness.layout import run_dir, write_run_record
from harness.runfiles import SHARD_CURVES

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = """\
name: broken
tasks: [dmc/cartpole-balance, dmc/pendulum-swingup]
agents: {random: {}, other: {algo: random}}
seeds: 2
budget: 2000
eval: {every: 1000, episodes: 1}
"""


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def store_contents(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        runs = con.execute("SELECT run_id, label, task, seed, status FROM runs ORDER BY run_id").fetchall()
        curves = con.execute("SELECT * FROM curves ORDER BY ALL").fetchall()
    finally:
        con.close()
    return runs, curves


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A manifest and a results folder whose runs are all finished, with the store ingested."""
    root = tmp_path_factory.mktemp("finished")
    path = root / "m.yaml"
    path.write_text(MANIFEST)
    results = root / "results"
    for i, spec in enumerate(manifest.load(path).runs):
        write_run_record(results, spec, status="finished")
        lines = [json.dumps({"metric": "eval/return", "step": step, "value": 10.0 * i + step / 1000})
                 for step in (1000, 2000)]
        (run_dir(results, spec.run_id) / SHARD_CURVES).write_text("\n".join(lines) + "\n")
    code, out = cli("run", str(path), "--results", str(results))
    assert code == 0, out
    return path, results


@pytest.fixture
def copy(finished: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    path, results = finished
    shutil.copytree(results, tmp_path / "results")
    return path, tmp_path / "results"


def test_the_fixture_store_holds_every_run(finished: tuple[Path, Path]) -> None:
    runs, curves = store_contents(finished[1] / "harness.duckdb")
    assert len(runs) == 8 and len(curves) == 16  # 2 tasks x 2 agents x 2 seeds, 2 evaluations each


def _truncate(data: bytes) -> bytes:
    return data[:4096]


def _zero(data: bytes) -> bytes:
    return bytes(len(data))


def _garble(data: bytes) -> bytes:
    return b"this is not a database\n" * 200


def _flip_block(data: bytes) -> bytes:
    # Bytes changed inside the first data block after the headers: its checksum no longer matches.
    return data[:12288] + bytes(b ^ 0xFF for b in data[12288:16384]) + data[16384:]


BREAKS = {"truncated": _truncate, "zeroed": _zero, "garbled": _garble, "empty": lambda data: b"",
          "block flipped": _flip_block}


@pytest.mark.parametrize("how", list(BREAKS))
def test_broken_store_is_named_and_rebuilt_after_moving_it_aside(copy: tuple[Path, Path], how: str) -> None:
    path, results = copy
    store = results / "harness.duckdb"
    before = store_contents(store)
    store.write_bytes(BREAKS[how](store.read_bytes()))
    for args in (("status",), ("report", "--tasks", "dmc/cartpole-balance", "--reps", "10", "--out",
                                str(results.parent / "report")), ("run", str(path))):
        code, out = cli(*args, "--results", str(results))
        assert code == 1, f"{how} {args[0]}: exit {code}: {out}"
        assert "Traceback" not in out
        assert f"the store {store} is not a readable DuckDB file" in out, out
        assert "move it aside" in out and f"{results / 'runs'}/" in out
    store.rename(store.with_suffix(".broken"))
    code, out = cli("run", str(path), "--results", str(results))
    assert code == 0, out
    assert store_contents(store) == before


def test_moved_aside_store_is_rebuilt_with_the_runs_of_other_manifests(copy: tuple[Path, Path]) -> None:
    """Runs of every manifest come back, not only those of the manifest run again."""
    path, results = copy
    store = results / "harness.duckdb"
    before = store_contents(store)
    store.rename(store.with_suffix(".broken"))
    other = path.parent / "other.yaml"
    other.write_text(MANIFEST.replace("name: broken", "name: other").replace(
        "tasks: [dmc/cartpole-balance, dmc/pendulum-swingup]", "tasks: [dmc/cartpole-balance]").replace(
        "agents: {random: {}, other: {algo: random}}", "agents: {random: {}}"))
    code, out = cli("run", str(other), "--dry-run", "--results", str(results))
    assert code == 0 and "0 new, 0 to resume, 1" in out, out  # the subset is finished
    code, out = cli("run", str(other), "--results", str(results))
    assert code == 0, out
    assert store_contents(store) == before


def test_garbled_shard_line_is_named(copy: tuple[Path, Path]) -> None:
    path, results = copy
    (results / "harness.duckdb").unlink()
    shard = sorted((results / "runs").glob(f"*/{SHARD_CURVES}"))[0]
    with shard.open("a") as f:
        f.write('{"metric": "eval/return", "step": 3000, "val\n')
    code, out = cli("run", str(path), "--results", str(results))
    assert code == 1 and "Traceback" not in out
    assert f"{shard} line 3: not a curve point" in out and "Delete that line" in out


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"status": "finished"}'])
def test_garbled_run_record_is_named(copy: tuple[Path, Path], content: str) -> None:
    path, results = copy
    record = sorted((results / "runs").glob("*/run.json"))[0]
    record.write_text(content)
    for args in (("--dry-run",), ()):
        code, out = cli("run", str(path), *args, "--results", str(results))
        assert code == 1 and "Traceback" not in out, out
        assert f"{record}: not a run record" in out and f"move the folder {record.parent} aside" in out


# ----------------------------------------------------------------------------------------------
# A full disk and a read-only folder, for real, in a private mount namespace

def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True, check=False)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not _namespaces_work(), reason="needs `unshare -rm` and tmpfs mounts "
                                      "(user and mount namespaces) to make a real full disk or read-only folder")


def in_namespace(script: str, tmp_path: Path) -> str:
    """Run a shell script in a private user and mount namespace; its mounts vanish with it."""
    env = {**os.environ, "PYTHON": sys.executable, "MUJOCO_GL": "disable"}
    done = subprocess.run(["unshare", "-rm", "bash", "-c", f"set -u\n{script}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_namespaces
def test_full_disk_ends_cleanly_and_loses_nothing(copy: tuple[Path, Path], tmp_path: Path) -> None:
    """The store is rebuilt on a 6 MiB tmpfs filled up to its last 300 KiB: the write fails with a
    clear message; with space freed the same command completes, with every point."""
    path, results = copy
    before = store_contents(results / "harness.duckdb")
    (results / "harness.duckdb").unlink()
    disk, out1, out2 = tmp_path / "disk", tmp_path / "first.txt", tmp_path / "second.txt"
    disk.mkdir()
    in_namespace(f"""
mount -t tmpfs -o size=6m tmpfs {disk}
cp -r {results} {disk}/results
head -c $(( $(df -k --output=avail {disk} | tail -1) * 1024 - 300 * 1024 )) /dev/zero > {disk}/filler
"$PYTHON" -m harness run {path} --results {disk}/results > {out1} 2>&1; echo "first $?"
rm {disk}/filler
"$PYTHON" -m harness run {path} --results {disk}/results > {out2} 2>&1; echo "second $?"
cp {disk}/results/harness.duckdb {tmp_path}/rebuilt.duckdb
""", tmp_path)
    first, second = out1.read_text(), out2.read_text()
    assert "Traceback" not in first and "Traceback" not in second
    assert "no space left on its disk" in first and f"{disk}/results/harness.duckdb" in first, first
    assert f"what was trained is kept in {disk}/results/runs/" in first
    assert "4 job(s) were already finished" in second, second
    assert store_contents(tmp_path / "rebuilt.duckdb") == before


@needs_namespaces
def test_read_only_results_folder(copy: tuple[Path, Path], tmp_path: Path) -> None:
    """A read-only bind mount (root cannot write through it either): status reads it; run, which
    must write the store, says what to do."""
    path, results = copy
    out1, out2 = tmp_path / "status.txt", tmp_path / "run.txt"
    codes = in_namespace(f"""
mount --bind {results} {results} && mount -o remount,bind,ro {results}
touch {results}/probe 2>/dev/null && echo "writable"
"$PYTHON" -m harness status --results {results} > {out1} 2>&1; echo "status $?"
"$PYTHON" -m harness run {path} --results {results} > {out2} 2>&1; echo "run $?"
""", tmp_path)
    assert "writable" not in codes
    assert "status 0" in codes and "run 1" in codes, codes
    status, run = out1.read_text(), out2.read_text()
    assert "finished" in status
    assert "Traceback" not in run
    assert f"the store {results / 'harness.duckdb'} cannot be written" in run and "writable" in run, run


@pytest.mark.slow
@needs_namespaces
def test_disk_filling_up_during_training(tmp_path: Path) -> None:
    """A real run on an 8 MiB tmpfs that fills up once the first checkpoint is written: whichever
    write fails first (a shard, a checkpoint, a run record, the store), the run stops with exit 1 and
    no traceback; with space freed the same command finishes every run."""
    path, disk, out1, out2 = tmp_path / "m.yaml", tmp_path / "disk", tmp_path / "first.txt", tmp_path / "second.txt"
    path.write_text(MANIFEST.replace("budget: 2000", "budget: 40000").replace(
        "tasks: [dmc/cartpole-balance, dmc/pendulum-swingup]", "tasks: [dmc/cartpole-balance]").replace(
        "agents: {random: {}, other: {algo: random}}", "agents: {random: {}}"))
    disk.mkdir()
    codes = in_namespace(f"""
mount -t tmpfs -o size=8m tmpfs {disk}
"$PYTHON" -m harness run {path} --results {disk}/results > {out1} 2>&1 &
for i in $(seq 120); do sleep 0.5; ls {disk}/results/groups/*/checkpoint.pkl > /dev/null 2>&1 && break; done
head -c 20m /dev/zero > {disk}/filler 2> /dev/null
wait $!; echo "first $?"
rm {disk}/filler
"$PYTHON" -m harness run {path} --results {disk}/results > {out2} 2>&1; echo "second $?"
"$PYTHON" -m harness status --results {disk}/results >> {out2} 2>&1
""", tmp_path)
    first, second = out1.read_text(), out2.read_text()
    assert "first 1" in codes and "second 0" in codes, codes + first + second
    assert "Traceback" not in first and "Traceback" not in second, first
    assert "No space left on device" in first or "no space left on its disk" in first, first
    assert "finished" in second and "40,000" in second, second
