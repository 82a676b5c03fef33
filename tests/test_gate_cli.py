"""`harness gate` on real DuckDB stores: exit codes, outputs, task selection, budgets, bad input; BRO's data."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from harness import catalog
from harness import store as store_mod
from harness.commands.gate import register
from harness.errors import HarnessError
from harness.store import Store

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BRO = DATA / "bro"
TASKS = ("dmc/cartpole-balance", "dmc/walker-stand")


def cli(*args: object) -> tuple[int, str]:
    """Run `gate` as the CLI does: a HarnessError becomes its exit code and message."""
    app = typer.Typer()
    register(app)
    app.command("unused")(lambda: None)  # with two commands typer keeps `gate` as a subcommand
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    if isinstance(result.exception, HarnessError):
        return result.exception.exit_code, result.output + "\n" + str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def add_runs(results: Path, label: str, returns: dict[str, list[float]], *, budget: int = 10_000,
             first_seed: int = 0) -> None:
    """Finished runs of ``label``: per task one run per return, evaluated at budget / 2 and at budget."""
    store = Store(results / "harness.duckdb")
    with store.transaction() as con:
        for task, values in returns.items():
            for i, value in enumerate(values):
                run_id = f"{label}-{task}-{i}"
                store_mod.upsert_run(con, {"run_id": run_id, "source": "harness", "label": label,
                                           "agent": label.split("@")[0], "task": task, "seed": first_seed + i,
                                           "budget": budget, "status": "finished"})
                points = pd.DataFrame({"run_id": run_id, "metric": "eval/return", "step": [budget // 2, budget],
                                       "value": [value / 2, value]})
                store_mod.insert_points(con, points)


def seeds(rng: np.random.Generator, centre: float, spread: float, n: int = 5) -> list[float]:
    return list(np.round(centre + spread * rng.standard_normal(n), 3))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a baseline sac@main and three candidates, 5 seeds on two tasks (returns 0..1000)."""
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("template") / "results"
    base = {"dmc/cartpole-balance": 900.0, "dmc/walker-stand": 700.0}
    add_runs(out, "sac@main", {t: seeds(rng, c, 15) for t, c in base.items()})
    add_runs(out, "sac@same", {t: seeds(rng, c, 15) for t, c in base.items()}, first_seed=5)
    add_runs(out, "sac@broken", {t: seeds(rng, c - 300, 15) for t, c in base.items()}, first_seed=5)
    add_runs(out, "sac@few", {t: seeds(rng, c, 15, n=3) for t, c in base.items()}, first_seed=5)
    return out


@pytest.fixture
def results(template: Path, tmp_path: Path) -> Path:
    """A copy of the template store that a test may add runs to."""
    return Path(shutil.copytree(template, tmp_path / "results"))


def gate_args(results: Path, candidate: str, *extra: object) -> list[object]:
    return ["gate", "--candidate", candidate, "--baseline", "sac@main", "--results", results,
            "--markdown", results.parent / "out" / "gate.md", "--json", results.parent / "out" / "gate.json", *extra]


def test_a_broken_candidate_is_a_regression_with_exit_1(results: Path) -> None:
    code, out = cli(*gate_args(results, "sac@broken", "--tasks", ",".join(TASKS)))
    assert code == 1, out
    assert "regression: sac@broken is significantly worse than sac@main" in out
    data = json.loads((results.parent / "out" / "gate.json").read_text())
    assert data["verdict"] == "regression" and data["exit_code"] == 1 and set(data["fired"]) == {"iqm", "poi"}
    # Both tasks dropped by 300 of 1000: the difference of means is about -0.3 (seed noise 0.015).
    assert data["mean"]["difference"]["point"] == pytest.approx(-0.3, abs=0.03)
    assert [t["flagged"] for t in data["per_task"]] == [True, True]
    assert len(data["per_task"][0]["candidate_scores"]) == 5
    markdown = (results.parent / "out" / "gate.md").read_text()
    assert markdown.startswith("## Regression gate: REGRESSION")
    assert "![IQM of each side" in markdown and "(gate.svg)" in markdown
    assert (results.parent / "out" / "gate.svg").read_bytes().startswith(b"<?xml")
    assert "| dmc/walker-stand | 5 / 5 |" in markdown


def test_a_candidate_from_the_same_distribution_passes(results: Path) -> None:
    code, out = cli(*gate_args(results, "sac@same"))
    assert code == 0, out
    assert "PASS: no significant regression" in out
    data = json.loads((results.parent / "out" / "gate.json").read_text())
    assert data["verdict"] == "pass" and data["tasks"] == list(TASKS) and data["left_out"] == []


def test_too_few_seeds_is_inconclusive_with_a_warning_and_the_configured_exit_code(results: Path) -> None:
    code, out = cli(*gate_args(results, "sac@few"))
    assert code == 0, out
    assert "warning: inconclusive" in out and "at least min_seeds = 5 needed" in out
    assert "about 2 more seed(s) per task on each side" in out
    config = results.parent / "gate.yaml"
    config.write_text("inconclusive_exit_code: 78\n")
    code, out = cli(*gate_args(results, "sac@few", "--config", config))
    assert code == 78, out


def test_a_suite_task_without_runs_makes_the_verdict_inconclusive(results: Path, tmp_path: Path) -> None:
    add_runs(results, "sac@main", {"dmc/cheetah-run": [300.0, 310.0, 320.0, 330.0, 340.0]})
    # Without --suite the task only the baseline has is left out and listed.
    code, out = cli(*gate_args(results, "sac@same"))
    assert code == 0, out
    data = json.loads((results.parent / "out" / "gate.json").read_text())
    assert data["verdict"] == "pass" and data["left_out"] == [["dmc/cheetah-run", "no finished runs of sac@same"]]
    # With a manifest as --suite every one of its tasks counts.
    manifest = tmp_path / "suite.yaml"
    manifest.write_text("name: three\ntasks: [dmc/cartpole-balance, dmc/walker-stand, cheetah-run]\n"
                        "agents: {sac: {}}\nseeds: 5\nbudget: 10000\neval: {every: 5000}\n")
    code, out = cli(*gate_args(results, "sac@same", "--suite", manifest))
    assert code == 0 and "warning: inconclusive" in out, out
    assert "dmc/cheetah-run: 0 candidate and 5 baseline run(s)" in out


def test_different_budgets_need_a_step(results: Path) -> None:
    add_runs(results, "sac@longer", {t: [900.0, 700.0, 800.0, 850.0, 750.0] for t in TASKS}, budget=20_000)
    code, out = cli(*gate_args(results, "sac@longer"))
    assert code == 2
    assert "the candidate's runs end at step 20,000 and the baseline's at 10,000" in out and "--step" in out
    # Both have a point at step 10,000 (the longer runs at half their budget).
    code, out = cli(*gate_args(results, "sac@longer", "--step", 10_000))
    assert code in (0, 1) and "Wrote" in out, out


@pytest.mark.parametrize(("extra", "expected"), [
    (["--tasks", "dmc/no-such-task"], "unknown task 'dmc/no-such-task'"),
    (["--suite", "no-such-group"], "unknown task group 'no-such-group'"),
    (["--tasks", " , "], "expected comma-separated task names"),
])
def test_bad_task_selection_is_exit_2(results: Path, extra: list[str], expected: str) -> None:
    code, out = cli(*gate_args(results, "sac@same", *extra))
    assert code == 2 and expected in out


def test_unknown_label_and_bad_config_are_exit_2(results: Path) -> None:
    code, out = cli(*gate_args(results, "sac@nobody"))
    assert code == 2 and "no finished runs for agent label(s) sac@nobody" in out
    config = results.parent / "gate.yaml"
    config.write_text("min_seed: 3\n")
    code, out = cli(*gate_args(results, "sac@same", "--config", config))
    assert code == 2 and f"{config}: 1 problem(s)" in out and "min_seed: unknown key" in out


# ----------------------------------------------------------------------------------------------
# BRO's published curves: BRO (10 updates per step) against BRO_fast (2 updates per step)


def final_scores(variant: str, tasks: list[str]) -> np.ndarray:
    """(seeds, tasks) normalised returns at 1M steps read from BRO's arrays (finger-turn is finger-turn-hard)."""
    files = [BRO / variant / f"{'finger-turn' if t == 'dmc/finger-turn-hard' else t.removeprefix('dmc/')}.npy"
             for t in tasks]
    return np.stack([np.load(f)[39] / 1000 for f in files], axis=1)


@pytest.mark.skipif(not BRO.is_dir(), reason=f"published BRO data not found at {BRO} (see shared/data/README.md)")
def test_bro_fast_against_bro_at_one_million_steps_on_the_dmc_tasks(tmp_path: Path) -> None:
    from harness.commands.submit import register as register_submit

    app = typer.Typer()
    register_submit(app)
    results = tmp_path / "results"
    for variant in ("BRO", "BRO_fast"):
        done = CliRunner().invoke(app, ["submit", str(BRO / variant), "--format", "bro", "--agent", variant,
                                        "--results", str(results), "--step-start", "25000", "--step-every", "25000"])
        assert done.exit_code == 0, done.output
    code, out = cli("gate", "--candidate", "BRO_fast", "--baseline", "BRO", "--suite", "bro-dmc", "--step", 1_000_000,
                    "--results", results, "--json", tmp_path / "gate.json", "--markdown", tmp_path / "gate.md")
    data = json.loads((tmp_path / "gate.json").read_text())
    # Independent of the harness: the last evaluation (index 39 = step 1,000,000) of the 15 DMC arrays,
    # 10 seeds each, returns / 1000. The IQM drops the 37 lowest and 37 highest of the 150 pooled scores.
    bro, fast = (final_scores(variant, data["tasks"]) for variant in ("BRO", "BRO_fast"))
    assert bro.shape == fast.shape == (10, 15)

    def iqm(m: np.ndarray) -> float:
        return float(np.sort(m.ravel())[37:113].mean())

    assert data["iqm"]["candidate"]["point"] == pytest.approx(iqm(fast))
    assert data["iqm"]["baseline"]["point"] == pytest.approx(iqm(bro))
    assert data["mean"]["difference"]["point"] == pytest.approx(float(fast.mean() - bro.mean()))
    for row, j in zip(data["per_task"], range(15), strict=True):
        assert row["mean_candidate"] == pytest.approx(float(fast[:, j].mean()))
    # BRO_fast is worse: IQM 0.794 against 0.836 (difference -0.042, interval about [-0.062, -0.023]),
    # P(BRO_fast > BRO) about 0.31; dog-run and humanoid-walk drop significantly.
    assert code == 1 and data["verdict"] == "regression", out
    assert data["iqm"]["difference"]["high"] < -0.02 and data["poi"]["high"] < 0.5
    assert {t["task"] for t in data["per_task"] if t["flagged"]} == {"dmc/dog-run", "dmc/humanoid-walk"}
    # The drop (about 0.042) is larger than min_drop (0.02), so the verdict stays a regression, and the
    # message gives the effect with its interval.
    assert data["effect"]["large"] and data["effect"]["value"] == data["iqm"]["difference"]
    assert "IQM difference (candidate - baseline) -0.042 [" in out and "min_drop 0.02" in out


# ----------------------------------------------------------------------------------------------
# BRO's published curves against altered copies of themselves: floating-point noise passes, a real drop fails

def write_copy(source: Path, out: Path, change: Callable[[np.ndarray, float], np.ndarray]) -> Path:
    """BRO's 40 arrays with ``change(array, top)`` applied; top is the task's best score (a return of 1000
    or a success rate of 1), which normalises to 1."""
    out.mkdir(parents=True)
    for path in sorted(source.glob("*.npy")):
        array = np.load(path)  # (evaluations, seeds)
        # Column-major bytes: the same files cannot be submitted twice, so an unchanged copy is the
        # same values stored in another byte order.
        np.save(out / path.name, np.asfortranarray(change(array, catalog.resolve(path.stem).norm_high)))
    return out


COPIES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "BRO_same": lambda a, top: a,
    "BRO_down": lambda a, top: a * (1 - 1e-12),
    "BRO_up": lambda a, top: np.minimum(a * (1 + 1e-12), top),  # a success rate of 1 stays 1
    "BRO_lower": lambda a, top: np.maximum(a - 0.1 * top, 0.0),  # 0.1 normalised lower, not below 0
}


@pytest.fixture(scope="module")
def bro_copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with BRO's published runs and the altered copies of COPIES, each under its own label."""
    if not BRO.is_dir():
        pytest.skip(f"published BRO data not found at {BRO} (see shared/data/README.md)")
    from harness.commands.submit import register as register_submit

    app = typer.Typer()
    register_submit(app)
    root = tmp_path_factory.mktemp("bro-copies")
    folders = {"BRO": BRO / "BRO"} | {label: write_copy(BRO / "BRO", root / label, change)
                                     for label, change in COPIES.items()}
    for label, folder in folders.items():
        done = CliRunner().invoke(app, ["submit", str(folder), "--format", "bro", "--agent", label, "--results",
                                        str(root / "results"), "--step-start", "25000", "--step-every", "25000"])
        assert done.exit_code == 0, done.output
    return root / "results"


def gate_bro(results: Path, candidate: str, *extra: object) -> tuple[int, str, dict[str, Any]]:
    out = results.parent / f"gate-{candidate}"
    code, text = cli("gate", "--candidate", candidate, "--baseline", "BRO", "--suite", "bro-40", "--step", 1_000_000,
                     "--results", results, "--json", out / "gate.json", "--markdown", out / "gate.md", *extra)
    return code, text, json.loads((out / "gate.json").read_text())


@pytest.mark.parametrize("candidate", ["BRO_same", "BRO_down", "BRO_up"])
def test_a_copy_of_bro_up_to_floating_point_noise_passes(bro_copies: Path, candidate: str) -> None:
    code, out, data = gate_bro(bro_copies, candidate)
    assert code == 0 and data["verdict"] == "pass", out
    # Same seeds, same values to twelve digits: every same-seed pair is a tie, every other pair is BRO
    # against itself, so P(candidate > baseline) is 1/2 exactly and the IQM difference about 0.
    assert data["poi"]["point"] == 0.5 and abs(data["iqm"]["difference"]["point"]) < 1e-9
    assert data["fired"] == [] and not any(t["flagged"] for t in data["per_task"])
    assert "Effect: IQM difference (candidate - baseline) " in out and "not a drop larger than min_drop = 0.02" in out


def test_a_copy_of_bro_scaled_down_by_1e_12_failed_without_the_tie_tolerance(bro_copies: Path) -> None:
    # The behaviour the tie tolerance fixes: with exact ties only, a scaled-down score x_i beats y_j
    # exactly when BRO's own b_i > b_j, and every pair of equal scores (the same seed, or two seeds at
    # the same success rate) becomes a loss, except pairs of zeros (0 scaled is 0: still a tie). On a
    # DMC task with 10 distinct scores that is 45 wins of 100 pairs (P = 0.45); on a task where every
    # seed succeeded, 0 of 100. The bootstrap interval
    # excludes 1/2 ('poi' fires). The IQM drop (~1e-12) is below min_drop even then, so only with
    # min_drop 0 as well is it called a regression.
    code, out, data = gate_bro(bro_copies, "BRO_down", "--tie-tolerance", 0)
    assert len(data["tasks"]) == 40
    final = [np.load(path)[39] for path in sorted((BRO / "BRO").glob("*.npy"))]  # (seeds,) per task, 40 tasks
    expected = np.mean([(np.count_nonzero(b[:, None] > b[None, :]) + 0.5 * np.count_nonzero(b == 0) ** 2)
                        / b.size**2 for b in final])
    assert data["poi"]["point"] == pytest.approx(expected) and data["fired"] == ["poi"]
    assert code == 0 and data["verdict"] == "pass" and "significant but not larger than min_drop" in out, out
    config = bro_copies.parent / "no-minimum.yaml"
    config.write_text("tie_tolerance: 0\nmin_drop: 0\n")
    code, out, data = gate_bro(bro_copies, "BRO_down", "--config", config)
    assert code == 1 and data["verdict"] == "regression", out


def test_bro_lowered_by_a_tenth_fails(bro_copies: Path) -> None:
    code, out, data = gate_bro(bro_copies, "BRO_lower")
    assert code == 1 and data["verdict"] == "regression", out
    assert set(data["fired"]) == {"iqm", "poi"}
    # Every score 0.1 lower (the few scores below 0.1 go to 0): the IQM drops by at most 0.1, and by
    # nearly that much. The effect and its interval are in the message and the JSON.
    effect = data["effect"]
    assert effect["measure"] == "iqm" and effect["large"] and -0.1 <= effect["value"]["point"] < -0.09
    assert f"IQM difference (candidate - baseline) {effect['value']['point']:.3f} [" in out


def test_tie_tolerance_on_the_command_line_overrides_the_config_and_is_checked(results: Path) -> None:
    code, out = cli(*gate_args(results, "sac@same", "--tie-tolerance", 0.001))
    assert code == 0, out
    assert json.loads((results.parent / "out" / "gate.json").read_text())["config"]["tie_tolerance"] == 0.001
    # A tie tolerance above iqm_tolerance (0.02) would call a tolerated drop a tie: bad input.
    code, out = cli(*gate_args(results, "sac@same", "--tie-tolerance", 0.05))
    assert code == 2 and "--tie-tolerance: 1 problem(s)" in out and "must be at least tie_tolerance (0.05)" in out
