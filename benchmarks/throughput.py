"""Throughput: our SAC against sbx-rl's SAC (a JAX peer), and seed scaling of our agents.

Part 1 measures, in one process run, at the same network sizes and batch size:
- gradient updates per second (one update per call, as in training with one update per step, on a
  full replay buffer), and
- environment steps per second of a whole training loop on DMC cartpole-balance (act, step,
  store, update), after compilation.
and prints ours / theirs as a ratio.

Part 2 measures seed-updates per second of our agents with 1, 5 and 10 seeds vmapped in one jit.

Part 1's ratio needs sbx-rl, a registry package: `pip install sbx-rl` (without it part 1 prints our
figures alone and says how to get the ratio).

Example:
    python benchmarks/throughput.py --hidden 256 --batch 256 --updates 2000 --env-steps 3000
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import agents
from harness import backends, catalog, envs, manifest
from harness.replay import Replay
from harness.vmapped import make_learner

TASK = "dmc/cartpole-balance"


def ours_updates_per_s(agent_name: str, overrides: dict[str, Any], seeds: int, updates: int) -> float:
    """Seed-updates per second of ``agent_name`` with ``seeds`` vmapped, on random full-replay batches."""
    agent = agents.get(agent_name)
    cfg = dataclasses.replace(agent.config(), **overrides)
    env = envs.make(TASK, 0)
    obs_dim, act_dim = env.observation_size, env.action_size
    init = jax.jit(jax.vmap(lambda k: agent.init(cfg, k, obs_dim, act_dim, 1)))
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    state = init(keys)
    rng = np.random.default_rng(0)
    replay = Replay(seeds, np.zeros(cfg.num_envs, np.int32), 10_000 // cfg.num_envs, obs_dim, act_dim)
    for _ in range(replay.capacity):
        shape = (seeds, cfg.num_envs)
        replay.add(rng.normal(size=(*shape, obs_dim)), rng.uniform(-1, 1, (*shape, act_dim)), rng.normal(size=shape),
                   rng.normal(size=(*shape, obs_dim)), np.zeros(shape, bool), np.zeros(shape, bool))
    learn = make_learner(agent, cfg)

    def one(state: Any, keys: jax.Array) -> Any:
        batch = replay.sample(rng, 1, cfg.batch_size, cfg.n_step, cfg.gamma)
        return learn(state, batch, keys)

    state, metrics, keys = one(state, keys)  # compile
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(updates):
        state, metrics, keys = one(state, keys)
    jax.block_until_ready(metrics)
    return seeds * updates / (time.perf_counter() - start)


def ours_env_steps_per_s(hidden: int, batch: int, env_steps: int, results: Path) -> float:
    """Env steps per second of our whole training loop (one seed), from the runner's own sys metric."""
    import duckdb

    from harness.store import Store, ingest_run_dirs

    raw = {"name": "throughput", "tasks": [TASK], "seeds": 1, "budget": 2 * env_steps,
           "eval": {"every": env_steps, "episodes": 1},
           "agents": {"sac": {"hidden_dims": [hidden, hidden], "batch_size": batch, "warmup_steps": batch}}}
    plan = manifest.validate(raw, Path("benchmarks/throughput.py"))
    job = plan.jobs[0]
    backends.train(job, results)  # first window includes compilation; the second is steady state
    ingest_run_dirs(Store(results / "harness.duckdb"), [results / "runs" / job.first.run_id])
    with duckdb.connect(str(results / "harness.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT value FROM curves WHERE metric = 'sys/env_steps_per_s' ORDER BY step").fetchall()
    return float(rows[-1][0])


def sbx_rates(hidden: int, batch: int, updates: int, env_steps: int) -> tuple[float, float]:
    """sbx SAC's (updates/s, env steps/s) on the same task through a gymnasium wrapper of our adapter."""
    import gymnasium as gym
    from sbx import SAC

    class Wrapped(gym.Env):
        def __init__(self) -> None:
            self.env = envs.make(TASK, 0)
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.env.observation_size,), np.float32)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (self.env.action_size,), np.float32)

        def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
            return self.env.reset(seed)

        def step(self, action: np.ndarray) -> Any:
            return self.env.step(action)

    model = SAC("MlpPolicy", Wrapped(), batch_size=batch, learning_starts=batch, train_freq=1, gradient_steps=1,
                policy_kwargs={"net_arch": [hidden, hidden]}, verbose=0, seed=0)
    model.learn(total_timesteps=max(2 * batch, 1000))  # fills the buffer and compiles
    model.train(gradient_steps=1, batch_size=batch)
    start = time.perf_counter()
    for _ in range(updates):
        model.train(gradient_steps=1, batch_size=batch)
    jax.block_until_ready(jnp.zeros(()))
    update_rate = updates / (time.perf_counter() - start)
    start = time.perf_counter()
    model.learn(total_timesteps=env_steps, reset_num_timesteps=False)
    return update_rate, env_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--updates", type=int, default=2000, help="timed updates per measurement")
    parser.add_argument("--env-steps", type=int, default=3000, help="timed environment steps of a training loop")
    parser.add_argument("--scaling-updates", type=int, default=50, help="timed updates per seed-scaling point")
    parser.add_argument("--agents", nargs="*", default=None, help="agents for seed scaling (default: all learning)")
    parser.add_argument("--results", type=Path, default=Path("results-throughput"))
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].platform}; task {TASK} ({catalog.resolve(TASK).episode_length} steps)")

    sizes = {"hidden_dims": (args.hidden, args.hidden), "batch_size": args.batch}
    print(f"\n[1] SAC, hidden {args.hidden}x2, batch {args.batch}, one update per call / per env step")
    ours_u = ours_updates_per_s("sac", sizes, 1, args.updates)
    ours_e = ours_env_steps_per_s(args.hidden, args.batch, args.env_steps, args.results)
    try:
        theirs_u, theirs_e = sbx_rates(args.hidden, args.batch, args.updates, args.env_steps)
    except ImportError:
        print(f"  ours: {ours_u:,.0f} updates/s, {ours_e:,.0f} env steps/s (no ratio: sbx-rl is not installed; "
              "`pip install sbx-rl` and run again for the ratio to sbx-rl's SAC)")
    else:
        print(f"  {'':12}{'ours':>12}{'sbx-rl':>12}{'ratio':>8}")
        print(f"  {'updates/s':12}{ours_u:12,.0f}{theirs_u:12,.0f}{ours_u / theirs_u:8.2f}")
        print(f"  {'env steps/s':12}{ours_e:12,.0f}{theirs_e:12,.0f}{ours_e / theirs_e:8.2f}")

    print("\n[2] seed scaling: seed-updates/s with 1, 5, 10 seeds vmapped in one jit (published sizes)")
    names = args.agents if args.agents is not None else [a.name for a in agents.every()
                                                         if a.config().updates_per_step > 0]
    for name in names:
        rates = [ours_updates_per_s(name, {}, s, args.scaling_updates) for s in (1, 5, 10)]
        print(f"  {name:10}" + "".join(f"{r:12,.1f}" for r in rates) + f"   (x{rates[2] / rates[0]:.1f} at 10 seeds)")


if __name__ == "__main__":
    main()
