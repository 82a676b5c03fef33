"""Every `harness ...` line of the README's bash blocks runs as written, in order, from a folder laid
out like the repository (suites/, ci/ and ../shared/ beside it) on one temporary results folder that
already holds other runs (a finished gate baseline and candidate), so that no example can rot.

Commands that train run with --dry-run. Three kinds are checked against the CLI's commands and options
instead of run, each for its reason: `install` and `baselines add` download from the internet (tests
install from ../shared/vendor in tests/test_install*.py), and `tasks ... --check` steps every
Playground task (tests/test_taskcheck.py runs the check). The quick start's own block is
run by the project's README check from a fresh clone.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.store import Store, insert_points, upsert_run
from tests.test_gate_workflow import check_call, cli_root

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
README = ROOT / "README.md"
NOT_RUN = {  # (command words) -> why the line is only checked against the CLI
    ("install",): "downloads from the internet",
    ("baselines", "add"): "downloads from the internet",
    ("tasks", "--check"): "steps every task of a suite for minutes",
}

pytestmark = pytest.mark.skipif(not (SHARED / "data" / "tdmpc2").is_dir(),
                                reason=f"published data not found at {SHARED / 'data'} (see shared/data/README.md)")


def readme_calls() -> list[list[str]]:
    """The words after `harness` of every README line that calls it, past the quick start, in order;
    comments cut, continued lines joined."""
    text = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text.split("## What you can do", 1)[1], re.DOTALL)
    calls = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "harness":
                calls.append(words[1:])
    return calls


def not_run(words: list[str]) -> str:
    """Why a call is only checked against the CLI ('' when it runs)."""
    for key, why in NOT_RUN.items():
        if words[0] == key[0] and all(k in words for k in key[1:]):
            return why
    return ""


def with_gate_runs(results: Path) -> None:
    """Finished runs of sac@main and sac@candidate on the gate suite's task: 5 seeds each, evaluated
    every 5,000 steps to 20,000, as `harness run suites/ci-gate.yaml --tag ...` leaves them."""
    rng = np.random.default_rng(0)
    with Store(results / "harness.duckdb").transaction() as con:
        for label in ("sac@main", "sac@candidate"):
            for seed in range(5):
                run_id = f"{label}-{seed}"
                upsert_run(con, {"run_id": run_id, "source": "harness", "label": label, "agent": "sac",
                                 "task": "dmc/cartpole-balance", "seed": seed, "suite": "ci-gate", "budget": 20_000,
                                 "status": "finished"})
                final = 900.0 + 20.0 * rng.standard_normal()
                insert_points(con, pd.DataFrame({
                    "run_id": run_id, "metric": "eval/return", "step": [5000, 10_000, 15_000, 20_000],
                    "value": [final * f for f in (0.3, 0.6, 0.9, 1.0)]}))


def test_the_readme_has_the_examples_users_start_from() -> None:
    calls = [" ".join(c) for c in readme_calls()]
    for expected in ("run suites/dmc-hard.yaml", "submit ../shared/data/tdmpc2/tdmpc2", "report --suite",
                     "leaderboard build", "gate --candidate"):
        assert any(c.startswith(expected) for c in calls), expected
    gate = next(i for i, c in enumerate(readme_calls()) if c[0] == "gate")
    tags = [c for c in readme_calls()[:gate] if c[0] == "run" and "--tag" in c]
    assert [c[c.index("--tag") + 1] for c in tags] == ["main", "candidate"]  # the gate's labels are made first


def test_every_readme_example_runs(tmp_path: Path) -> None:
    repo = tmp_path / "work" / "repo"
    repo.mkdir(parents=True)
    for name in ("suites", "ci"):
        (repo / name).symlink_to(ROOT / name)
    (tmp_path / "work" / "shared").symlink_to(SHARED)
    results = tmp_path / "results"
    results.mkdir()
    with_gate_runs(results)
    env = {**os.environ, "MUJOCO_GL": "disable", "HARNESS_RESULTS": str(results), "PYTHONPATH": str(ROOT),
           "COLUMNS": "160"}
    root = cli_root()
    ran = []
    for words in readme_calls():
        check_call(root, words)
        if not_run(words):
            continue
        args = [*words, "--dry-run"] if words[0] == "run" else words
        if words[0] in ("report", "leaderboard"):
            args += ["--reps", "500"]  # fewer bootstrap repetitions: the same code, sooner
        proc = subprocess.run([sys.executable, "-m", "harness", *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"harness {shlex.join(args)} exited {proc.returncode}:\n{proc.stdout}\n" \
                                     f"{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        ran.append(words[0])
    assert {"run", "status", "submit", "submissions", "report", "leaderboard", "gate"} <= set(ran)
    assert (repo / "leaderboard" / "index.html").is_file() and (repo / "reports" / "gate" / "gate.md").is_file()
