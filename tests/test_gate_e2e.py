"""`harness run` then `harness gate` on real SAC runs: SAC against a crippled SAC (every learning rate 0).

The crippled runs are suites/ci-gate.yaml with learning-rate overrides and their own tag, the way a
pull request's runs are told apart from main's in one store. SAC needs the suite's full budget
(20k steps, about 9 CPU minutes per run group here) to beat the crippled SAC clearly, so that check
is marked slow; the default test runs the same commands on a 2k-step budget and checks the plumbing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from harness.commands.gate import register
from harness.errors import HarnessError
from tests.test_run import harness

ROOT = Path(__file__).resolve().parents[1]
SUITE = "suites/ci-gate.yaml"
FROZEN = ("agents.sac.actor_lr=0", "agents.sac.critic_lr=0", "agents.sac.temperature_lr=0")
TINY = ("budget=2000", "eval.every=2000", "eval.episodes=1", "agents.sac.warmup_steps=500",
        "agents.sac.hidden_dims=[32,32]", "agents.sac.batch_size=32")


def train(results: Path, tag: str, *overrides: str) -> float:
    """`harness run suites/ci-gate.yaml --tag TAG OVERRIDES`; returns its wall time in seconds."""
    start = time.monotonic()
    done = harness("run", SUITE, "--tag", tag, *overrides, results=results, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    return time.monotonic() - start


def gate(results: Path, candidate: str, baseline: str) -> tuple[int, str, dict[str, Any]]:
    """`harness gate` with the shipped config; returns the exit code, the output and the JSON."""
    app = typer.Typer()
    register(app)
    app.command("unused")(lambda: None)  # with two commands typer keeps `gate` as a subcommand
    out = results.parent / f"gate-{candidate}-{baseline}"
    result = CliRunner().invoke(app, [
        "gate", "--candidate", candidate, "--baseline", baseline, "--suite", str(ROOT / SUITE),
        "--config", str(ROOT / "ci" / "gate.yaml"), "--results", str(results),
        "--markdown", str(out / "gate.md"), "--json", str(out / "gate.json")], env={"COLUMNS": "200"})
    code = result.exception.exit_code if isinstance(result.exception, HarnessError) else result.exit_code
    if result.exception is not None and not isinstance(result.exception, HarnessError | SystemExit):
        raise result.exception
    return code, result.output + str(result.exception or ""), json.loads((out / "gate.json").read_text())


def test_tiny_sac_and_crippled_sac_runs_go_through_the_gate(tmp_path: Path) -> None:
    results = tmp_path / "results"
    train(results, "main", *TINY)
    train(results, "lr0", *TINY, *FROZEN)
    code, out, data = gate(results, "sac@lr0", "sac@main")
    # 2k steps is too short for SAC to learn, so the verdict may go either way; what must hold: the
    # tagged runs of both sides were found, 5 seeds each, and the exit code follows the verdict.
    assert data["tasks"] == ["dmc/cartpole-balance"]
    assert [len(data["per_task"][0][side]) for side in ("candidate_scores", "baseline_scores")] == [5, 5]
    assert code == {"regression": 1, "pass": 0, "inconclusive": 0}[str(data["verdict"])], out
    assert (results.parent / "gate-sac@lr0-sac@main" / "gate.svg").is_file()
    # A label against itself: the same runs on both sides, difference 0 and P(candidate > baseline) 1/2.
    code, out, data = gate(results, "sac@main", "sac@main")
    assert code == 0 and data["verdict"] != "regression", out
    assert data["iqm"]["difference"]["point"] == 0.0 and data["poi"]["point"] == 0.5


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_crippled_sac_is_a_regression_and_sac_against_itself_passes(tmp_path: Path) -> None:
    # The suite as shipped: 5 seeds of SAC, 20k steps (7 to 9 minutes per run group on a busy 2-core
    # machine; 15.5 minutes for this test). At 20k steps SAC's final return was 480-930 in two
    # trials, the crippled SAC's 150-370.
    results = tmp_path / "results"
    seconds = {"baseline": train(results, "main"), "crippled": train(results, "lr0", *FROZEN)}
    code, out, data = gate(results, "sac@lr0", "sac@main")
    assert code == 1 and data["verdict"] == "regression", (out, seconds)
    assert "regression: sac@lr0 is significantly worse than sac@main" in out
    assert data["per_task"][0]["flagged"]
    # SAC against itself: difference 0. With SAC's spread here (0.1 to 0.12) the interval, about
    # +/-0.2, rules out a drop of min_effect (0.25 in ci/gate.yaml) and the gate passes; a much
    # noisier run would make it inconclusive, which also exits 0.
    code, out, data = gate(results, "sac@main", "sac@main")
    assert code == 0 and data["verdict"] != "regression", (out, seconds)
    assert data["iqm"]["difference"]["point"] == 0.0 and data["poi"]["point"] == 0.5
    # With a difference of 0 the interval is +/-h: the gate passes exactly when h <= min_effect.
    assert (data["verdict"] == "pass") == (data["power"]["half_width"] <= 0.25), data["power"]
