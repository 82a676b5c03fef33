"""The CLI starts without the heavy libraries: `harness --help` and the store and catalog commands import
only what they use, and each feature command listed by `harness --help` (its module loaded on use) shows
the help its module gives it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import harness.cli
from harness.cli import FEATURES, FeatureCommand

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "flax", "matplotlib", "numba", "mujoco", "dm_control", "scipy")


def imported_modules(args: list[str], cwd: Path) -> set[str]:
    """Every module `python -X importtime -m harness ARGS` imports."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "harness", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return {m.group(1) for m in re.finditer(r"\|\s+([\w.]+)\s*$", proc.stderr, re.MULTILINE)}


@pytest.mark.parametrize(("args", "allowed"), [
    (["--help"], ()),
    (["tasks", "dmc-hard"], ("numpy",)),
    (["status"], ("numpy", "pandas", "duckdb")),
    (["submissions"], ("numpy", "pandas", "duckdb")),
])
def test_commands_import_only_what_they_use(tmp_path: Path, args: list[str], allowed: tuple[str, ...]) -> None:
    modules = imported_modules(args, tmp_path)
    assert "harness.cli" in modules  # the measurement saw the CLI start
    top = {m.split(".")[0] for m in modules}
    assert not top & set(HEAVY), f"harness {' '.join(args)} imported {sorted(top & set(HEAVY))}"
    light = {"numpy", "pandas", "duckdb"} - set(allowed)
    assert not top & light, f"harness {' '.join(args)} imported {sorted(top & light)}"


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_each_feature_line_is_its_commands_own_help(name: str) -> None:
    command = FeatureCommand(name).load()
    first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
    assert FEATURES[name][1] == first_paragraph
    assert command.name == name


def test_a_feature_command_runs_and_shows_its_help() -> None:
    result = CliRunner().invoke(harness.cli.app, ["report", "--help"])
    assert result.exit_code == 0, result.output
    assert "--suite" in result.output and "--reps" in result.output


def test_a_manifest_of_the_random_agent_is_read_without_jax(tmp_path: Path) -> None:
    """`run --dry-run` reads and plans the manifest like `run` does; only the agents it names are
    imported (agents.MODULES: any other would load JAX), and the random agent's module loads none."""
    (tmp_path / "m.yaml").write_text("name: m\ntasks: [dmc/cheetah-run]\nagents: {random: {}}\nseeds: 1\n"
                                     "budget: 2000\neval: {every: 1000, episodes: 1}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "harness", "run", "m.yaml", "--dry-run"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "agent random = random" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    modules = {m.group(1) for m in re.finditer(r"\|\s+([\w.]+)\s*$", proc.stderr, re.MULTILINE)}
    top = {m.split(".")[0] for m in modules}
    assert not top & set(HEAVY), f"imported {sorted(top & set(HEAVY))}"


def test_what_a_worker_writes_with_loads_no_store() -> None:
    """A worker process (harness.worker, the target of every executor's workers) writes run records,
    shards and checkpoints without DuckDB or pandas (the store's dependencies), and takes its jobs
    (harness.jobs) without pydantic or the manifest's parsing, none of which it needs."""
    code = "import harness.worker, harness.lifecycle, harness.backends.host"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    modules = {m.group(1) for m in re.finditer(r"\|\s+([\w.]+)\s*$", proc.stderr, re.MULTILINE)}
    top = {m.split(".")[0] for m in modules}
    assert "harness.jobs" in modules
    unneeded = {"duckdb", "pandas", "jax", "pydantic"}
    assert not top & unneeded, f"imported {sorted(top & unneeded)}"
    assert not {"harness.manifest", "harness.executors"} & modules


def test_every_agent_name_finds_its_agent() -> None:
    import agents

    assert [a.name for a in agents.every()] == list(agents.NAMES)


def test_a_random_agent_job_on_host_simulators_trains_without_jax(tmp_path: Path) -> None:
    """The random agent draws its actions with numpy and has no state, so its host job never loads
    JAX (about a second and a half of start-up per worker); its run record names the device ``host``,
    and the JAX compilation cache is still set up for whatever the process compiles later."""
    (tmp_path / "m.yaml").write_text("name: m\ntasks: [dmc/cartpole-balance]\nagents: {random: {}}\nseeds: 1\n"
                                     "budget: 2000\neval: {every: 1000, episodes: 1}\n")
    code = ("import json, os, sys\nfrom pathlib import Path\nfrom harness import backends, manifest\n"
            "[job] = manifest.load(Path('m.yaml')).jobs\nbackends.train(job, Path('results'))\n"
            "[record] = Path('results/runs').glob('*/run.json')\n"
            "print(json.loads(record.read_text())['status'], json.loads(record.read_text())['device'],"
            " 'jax' in sys.modules, os.environ['JAX_COMPILATION_CACHE_DIR'])\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update({"PYTHONPATH": str(ROOT), "MUJOCO_GL": "disable", "HARNESS_JAX_CACHE": str(tmp_path / "cache")})
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["finished", "host", "False", str(tmp_path / "cache")]
