"""Learning checks (slow: minutes of CPU). Run with `python -m pytest -m slow`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.test_run import harness

pytestmark = pytest.mark.slow


def test_sac_clearly_beats_random_on_cartpole_balance(tmp_path: Path) -> None:
    """SAC on DMC cartpole-balance, 2 seeds vmapped, 25k steps (~4 CPU minutes on two cores).

    Threshold: SAC's final evaluation return, averaged over seeds, is at least 800 and at least
    300 above the random agent's (random balances by luck for a while: about 250-450; SAC reached
    987 at 25k steps in our runs, 432 at 10k).
    """
    manifest = tmp_path / "learn.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "learning-check",
        "tasks": ["dmc/cartpole-balance"],
        "agents": {"sac": {"hidden_dims": [128, 128], "warmup_steps": 2000}, "random": {}},
        "seeds": 2,
        "budget": 25000,
        "eval": {"every": 12500, "episodes": 3},
    }))
    results = tmp_path / "results"
    done = harness("run", str(manifest), results=results, timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        final = dict(con.execute(
            "SELECT r.label, avg(c.value) FROM runs r JOIN curves c USING (run_id) "
            "WHERE c.metric = 'eval/return' AND c.step = 25000 GROUP BY r.label"
        ).fetchall())
    assert final["sac"] >= 800, final
    assert final["sac"] >= final["random"] + 300, final


def final_returns(tmp_path: Path, agent: str, overrides: dict[str, Any], budget: int) -> dict[str, float]:
    """Train ``agent`` (with ``overrides``) and the random agent on cartpole-balance, 2 seeds;
    the mean final evaluation return (3 episodes per seed) of each."""
    manifest = tmp_path / "learn.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": f"learning-check-{agent}",
        "tasks": ["dmc/cartpole-balance"],
        "agents": {agent: overrides, "random": {}},
        "seeds": 2,
        "budget": budget,
        "eval": {"every": budget // 2, "episodes": 3},
    }))
    results = tmp_path / "results"
    done = harness("run", str(manifest), results=results, timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        return dict(con.execute(
            "SELECT r.label, avg(c.value) FROM runs r JOIN curves c USING (run_id) "
            f"WHERE c.metric = 'eval/return' AND c.step = {budget} GROUP BY r.label"
        ).fetchall())


# Each reference agent at reduced width clearly beats random on cartpole-balance within a few CPU
# minutes (about 5 each on two idle cores). Thresholds: the agent's mean final return over 2 seeds
# is at least 250 above the random agent's (random: about 150-450) and at least the agent's floor
# below. At 10k steps BRO (fast) reached 544 and BRC 406 in our runs, hence 20k (then 920 and 982).
# BRO's reset (at 15k steps in bro_fast) moves past the budget: this checks learning, not recovery
# from a reset. FastTD3 makes 2 updates per vectorised step and is built for thousands of envs;
# with 2 envs (18k updates) it reached 619 (8 envs, 5k updates: 572), hence its lower floor.
REDUCED: dict[str, tuple[dict[str, Any], int, float]] = {  # agent -> (overrides, budget, floor)
    "bro_fast": ({"critic_width": 128, "actor_width": 64, "num_quantiles": 25, "batch_size": 64,
                  "warmup_steps": 1000, "reset_steps": [1_000_000]}, 20_000, 700.0),
    "brc": ({"critic_width": 128, "actor_width": 64, "batch_size": 128, "warmup_steps": 1000}, 20_000, 700.0),
    "fasttd3": ({"critic_hidden_dim": 128, "actor_hidden_dim": 64, "num_envs": 2, "batch_size": 256,
                 "warmup_steps": 2000, "replay_capacity": 100_000}, 20_000, 450.0),
}


@pytest.mark.parametrize("agent", sorted(REDUCED))
def test_reference_agent_clearly_beats_random_on_cartpole_balance(tmp_path: Path, agent: str) -> None:
    overrides, budget, floor = REDUCED[agent]
    final = final_returns(tmp_path, agent, overrides, budget)
    assert final[agent] >= floor, final
    assert final[agent] >= final["random"] + 250, final


def test_a_reward_conditioned_agent_beats_a_nominal_only_one_under_held_out_psi(tmp_path: Path) -> None:
    """Reward-conditioned SAC against SAC trained on the nominal reward alone, on DMC cartpole-balance,
    evaluated with the cart rewarded for staying at -1 or +1 m instead of 0 (`cart_target`), 2 seeds
    vmapped, 50k steps (9 to 11 minutes on two shared cores).

    Threshold: the conditioned agent's final return under the held-out ψ, averaged over both ψ and
    seeds, is at least 40 above the baseline's. Measured first: 868 against 782 (a gap of 86; every
    conditioned run above every baseline run under both ψ); at 20k steps neither agent had learned
    enough to tell them apart (left: 518 against 657, right: 663 against 633). At ψ* the baseline was
    ahead (976 against 905).
    """
    manifest = tmp_path / "learn.yaml"
    sac = {"hidden_dims": [64, 64], "batch_size": 128, "warmup_steps": 1000}
    manifest.write_text(yaml.safe_dump({
        "name": "rc-learning-check",
        "variant": "reward_conditioned",
        "tasks": ["dmc/cartpole-balance"],
        "agents": {"sac": sac, "sac_nominal": {"algo": "sac", **sac}},
        "seeds": 2,
        "budget": 50000,
        "eval": {"every": 50000, "episodes": 5},
        "psi": {"unconditioned": ["sac_nominal"],
                "eval": {"dmc/cartpole-balance": {"right": {"cart_target": 1.0}, "left": {"cart_target": -1.0}}}},
    }))
    results = tmp_path / "results"
    done = harness("run", str(manifest), results=results, timeout=2400)
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        held_out = dict(con.execute(
            "SELECT r.label, avg(c.value) FROM runs r JOIN curves c USING (run_id) "
            "WHERE c.metric = 'eval/return' AND c.step = 50000 AND c.psi IN ('left', 'right') GROUP BY r.label"
        ).fetchall())
    assert held_out["sac-rc"] >= held_out["sac_nominal"] + 40, held_out
