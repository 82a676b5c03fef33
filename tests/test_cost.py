"""The estimate of a job's update cost that warns before a plan puts a GPU-sized agent on a CPU."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from harness import cost
from harness.cli import app
from harness.jobs import Job
from harness.manifest import validate

ROOT = Path(__file__).resolve().parents[1]


def job(tmp_path: Path, agent: dict[str, object], seeds: int = 1, budget: int = 10_000) -> Job:
    raw = {"name": "c", "tasks": ["dmc/cartpole-balance"], "agents": {"sac": agent}, "seeds": seeds,
           "budget": budget, "eval": {"every": budget}}
    return validate(raw, tmp_path / "c.yaml").jobs[0]


def test_flops_grow_with_batch_seeds_and_width(tmp_path: Path) -> None:
    """An MLP's update is matrix products: twice the rows or twice the seeds about twice the work
    (a few element-wise and per-seed operations aside); a 4x wider hidden layer about 16x on the
    hidden x hidden product, which dominates from width 256."""
    small = {"hidden_dims": [256, 256], "batch_size": 64, "warmup_steps": 0}
    base = cost.update_flops(job(tmp_path, small).agent, 1, 8, 2, 1)
    rows = cost.update_flops(job(tmp_path, {**small, "batch_size": 128}).agent, 1, 8, 2, 1)
    seeds = cost.update_flops(job(tmp_path, small).agent, 2, 8, 2, 1)
    wide = cost.update_flops(job(tmp_path, {**small, "hidden_dims": [1024, 1024]}).agent, 1, 8, 2, 1)
    assert 1.9 < rows / base < 2.1
    assert 1.95 < seeds / base < 2.05
    assert 10 < wide / base < 16.5


def test_updates_count_the_steps_after_the_warm_up(tmp_path: Path) -> None:
    # (10,000 - 2,000) steps x 3 updates per step
    assert cost.updates(job(tmp_path, {"warmup_steps": 2000, "updates_per_step": 3})) == 24_000


def test_the_screen_passes_small_jobs_and_flags_long_ones(tmp_path: Path) -> None:
    assert not cost.may_take_long(job(tmp_path, {"hidden_dims": [32, 32], "warmup_steps": 500}), (8, 2))
    assert cost.may_take_long(job(tmp_path, {}, seeds=5, budget=1_000_000), (8, 2))


def test_durations_read_naturally() -> None:
    assert [cost.duration(s) for s in (40, 720, 3 * 3600, 5 * 86400, 3 * 365 * 86400)] == [
        "40 s", "12.0 minutes", "3.0 hours", "5.0 days", "3.0 years"]


def test_a_plan_warns_of_a_gpu_sized_agent_on_a_cpu_and_not_of_a_small_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    runner = CliRunner(env=env)
    big = runner.invoke(app, ["run", str(ROOT / "suites" / "dmc-hard.yaml"), "--dry-run", "--results", "/nonexistent",
                              "agents=" + "{brc: {}}"], terminal_width=400)
    assert big.exit_code == 0, big.output
    assert "warning: brc: one update of a job's seeds is" in big.output and "no GPU is visible" in big.output
    small = runner.invoke(app, ["run", str(ROOT / "suites" / "quickstart.yaml"), "--dry-run", "--results",
                                "/nonexistent"], terminal_width=400)
    assert small.exit_code == 0 and "warning" not in small.output


def test_no_warning_where_a_gpu_is_visible() -> None:
    """No GPU here: CUDA_VISIBLE_DEVICES stands in for one (what `harness run` reads to find them)."""
    result = CliRunner(env={"CUDA_VISIBLE_DEVICES": "0"}).invoke(
        app, ["run", str(ROOT / "suites" / "dmc-hard.yaml"), "--dry-run", "--results", "/nonexistent",
              "agents={brc: {}}"], terminal_width=400)
    assert result.exit_code == 0 and "warning" not in result.output
