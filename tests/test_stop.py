"""Stopping `harness run` with real signals to its process group, as a terminal's Ctrl-C does: every
process stops within seconds, the message is printed once and the exit code says which signal
(resuming after a stop is tested in test_run and test_multitask)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_run import ROOT, assert_group_ends, write_manifest


def start_and_wait_for_training(tmp_path: Path) -> subprocess.Popen[str]:
    """A two-job run (the second job waits for the worker) that is past its start-up: a run is
    recorded as running."""
    results = tmp_path / "results"
    manifest = write_manifest(tmp_path, seeds=1, budget=50_000, eval={"every": 1000, "episodes": 1},
                              tasks=["dmc/cartpole-balance", "dmc/pendulum-swingup"])
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", str(manifest)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        records = [json.loads(p.read_text()) for p in (results / "runs").glob("*/run.json")]
        if any(r["status"] == "running" for r in records):
            return proc
        time.sleep(0.2)
    raise AssertionError(f"the run did not start training: {proc.poll()}")


@pytest.mark.parametrize(("signals", "code"), [
    ([signal.SIGINT], 130),
    ([signal.SIGTERM], 143),
    ([signal.SIGINT, signal.SIGINT], 130),  # a second Ctrl-C while stopping: at once
])
def test_a_signal_stops_every_process_within_seconds(tmp_path: Path, signals: list[int], code: int) -> None:
    proc = start_and_wait_for_training(tmp_path)
    time.sleep(2.0)  # into the training loop
    sent = time.monotonic()
    for sig in signals:
        os.killpg(proc.pid, sig)
        time.sleep(0.2)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == code, out + err
    assert took < 15, f"took {took:.1f} s to stop"
    if len(signals) == 1:
        assert out.count("stopped.") == 1, out
        assert "Traceback" not in err, err
    assert_group_ends(proc.pid, "a process outlived the stop", within_s=10)
