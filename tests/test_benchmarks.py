"""The benchmark scripts still run (at sizes of seconds): they read the store's schema, the catalog
and the agents, which change under them. Their figures are not checked here: speed lives in the
benchmarks themselves."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.test_run import ROOT


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "MUJOCO_GL": "disable"}, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_leaderboard_build_writes_a_store_of_the_current_schema_and_builds() -> None:
    out = run("leaderboard_build.py", "--tasks", "3", "--agents", "2", "--seeds", "2", "--points", "3", "--reps", "50")
    assert "built" in out and "files" in out


def test_stats_against_rliable_agree() -> None:
    pytest.importorskip("rliable")
    out = run("stats_vs_rliable.py", "--reps", "200", "--seeds", "3", "--tasks", "5", "--agents", "2", "--repeats", "1")
    assert "agreement" in out and "bit-identical" in out


def test_overhead_runs_a_pair() -> None:
    out = run("overhead.py", "--agents", "random", "--tasks", "dmc/cheetah-run", "--steps", "2000", "--pairs", "1")
    (pair,) = [line.split() for line in out.splitlines() if line.startswith("random")]
    assert pair[:3] == ["random", "dmc/cheetah-run", "1"] and all(float(r) > 0 for r in pair[3:6])  # steady, wall, cpu
