"""Overhead of the harness's loop: an agent through `harness run` against the same agent in a bare loop.

For each task (dm-control cheetah-run, MetaWorld reach, MyoSuite hand reach) and each agent
(``random``, ``sac``), runs pairs of processes, alternated: `python -m harness run` on a one-seed
manifest (a fresh results folder, the whole path a user takes: CLI, coordinator, worker, DuckDB
ingest), then a bare loop in its own process (the suite's own env, no harness):

- random: the simulator's own env stepped with uniform random actions drawn with numpy;
- sac: the same env, a plain numpy replay, and the same jitted ``vmap`` (one seed) of SAC's ``act``
  and ``update`` (:mod:`harness.vmapped`), one update per step after the same warm-up.

Both sides take the same env steps in episodes of the same length (the catalog's); the harness
evaluates twice on top (``eval.every`` = half the budget, 1 episode), as a real run does. Printed
for each pair, then the median (and range) over pairs, as env-steps/s of the harness over
env-steps/s of the bare loop (1.00: no overhead):

- steady: the second half of the budget, after compilation and warm-up (the harness's own
  ``sys/env_steps_per_s`` of its last evaluation, which excludes evaluation; the bare loop times
  the same steps);
- wall / cpu: the whole process, start to exit, in wall time and in CPU time (all its processes,
  from ``getrusage`` of the children).

The harness runs share one JAX compilation cache folder (``HARNESS_JAX_CACHE``), as the runs of
one results folder do: the first pair of each agent and task compiles, later pairs load the
programs. ``--cold-cache`` gives every harness run an empty cache folder of its own.

    python benchmarks/overhead.py                                         # 20k random, 3k SAC steps, 3 pairs
    python benchmarks/overhead.py --steps 10000 --sac-steps 2500 --pairs 1  # quick: a few minutes
    python benchmarks/overhead.py --agents random --tasks dmc/cheetah-run   # one agent, one task
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("dmc/cheetah-run", "metaworld/reach", "myosuite/myo-reach")
SAC_WARMUP = 1000


# ----------------------------------------------------------------------------------------------
# Bare loops (run in their own process: `overhead.py --bare AGENT TASK STEPS HIDDEN`)


class BareEnv:
    """The suite's own env of a catalog task, with just what a loop needs: reset, step, the bounds.
    Its episodes last the catalog's episode length, as the harness's do (MetaWorld's own limit is 500
    steps, the catalog's 200; a MetaWorld reset costs about 100 physics steps)."""

    def __init__(self, name: str, seed: int) -> None:
        from harness import catalog

        self.episode_length = catalog.resolve(name).episode_length  # env steps (every task here: no action repeat)
        self.t = 0  # steps of the current episode
        if name.startswith("dmc/"):
            from dm_control import suite

            domain, task = name.removeprefix("dmc/").split("-", 1)
            self.kind = "dmc"
            self.env: Any = suite.load(domain, task, task_kwargs={"random": seed})
            spec = self.env.action_spec()
            self.low, self.high = spec.minimum, spec.maximum
            self.obs_size = sum(int(np.prod(s.shape)) for s in self.env.observation_spec().values())
        elif name.startswith("metaworld/"):
            from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE

            from harness.envs.metaworld import patch_mocap_welds  # MuJoCo 3.17 compatibility, not overhead

            patch_mocap_welds()
            self.kind = "gym"
            make: Any = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[f"{name.removeprefix('metaworld/')}-v3-goal-observable"]
            self.env = make(seed=seed)
            self.env._freeze_rand_vec = False
            self.low, self.high = self.env.action_space.low, self.env.action_space.high
            self.obs_size = int(self.env.observation_space.shape[0])
        else:
            import gymnasium
            import myosuite  # noqa: F401  (registers its ids)

            ids = {"myosuite/myo-reach": "myoHandReachFixed-v0"}
            self.kind = "gym"
            self.env = gymnasium.make(ids[name])
            self.env.reset(seed=seed)
            self.low, self.high = self.env.action_space.low, self.env.action_space.high
            self.obs_size = int(self.env.observation_space.shape[0])
        self.act_size = int(self.low.shape[0])

    def reset(self) -> np.ndarray:
        self.t = 0
        if self.kind == "dmc":
            return np.concatenate([np.asarray(v, np.float32).ravel() for v in self.env.reset().observation.values()])
        return np.asarray(self.env.reset()[0], np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        """(next obs, reward, terminated, episode over)."""
        self.t += 1
        if self.kind == "dmc":
            ts = self.env.step(action)
            obs = np.concatenate([np.asarray(v, np.float32).ravel() for v in ts.observation.values()])
            return obs, float(ts.reward), False, ts.last() or self.t >= self.episode_length
        obs, reward, terminated, truncated, _ = self.env.step(action)
        over = terminated or truncated or self.t >= self.episode_length
        return np.asarray(obs, np.float32), float(reward), bool(terminated), bool(over)


def bare_random(name: str, steps: int) -> float:
    """A bare random-action loop; returns env steps/s over the second half of ``steps``."""
    env = BareEnv(name, 0)
    rng = np.random.default_rng(0)
    low, span = env.low.astype(np.float64), (env.high - env.low).astype(np.float64)  # (act,)
    if env.kind == "dmc":  # the plainest dm-control loop: no flattening (dm-control's limit: the catalog's 1000)
        env.env.reset()
        start = 0.0
        for i in range(steps):
            if i == steps // 2:
                start = time.perf_counter()
            if env.env.step(low + span * rng.random(env.act_size)).last():
                env.env.reset()
        return (steps - steps // 2) / (time.perf_counter() - start)
    env.reset()
    start = 0.0
    for i in range(steps):
        if i == steps // 2:
            start = time.perf_counter()
        if env.step((low + span * rng.random(env.act_size)).astype(np.float32))[3]:
            env.reset()
    return (steps - steps // 2) / (time.perf_counter() - start)


def bare_sac(name: str, steps: int, hidden: int) -> float:
    """A bare SAC loop with the same jitted act and update as the harness; env steps/s over the
    second half of ``steps``."""
    import jax
    import jax.numpy as jnp

    import agents
    from harness.vmapped import make_learner, make_policy

    env = BareEnv(name, 0)
    agent = agents.get("sac")
    cfg = agent.config(hidden_dims=(hidden, hidden), warmup_steps=SAC_WARMUP)
    init = jax.jit(jax.vmap(lambda k: agent.init(cfg, k, env.obs_size, env.act_size, 1)))
    keys = jax.random.split(jax.random.PRNGKey(0), 1)  # (1, 2)
    state = init(keys)
    explore, learn = make_policy(agent, cfg, deterministic=False), make_learner(agent, cfg)
    rng = np.random.default_rng(0)
    obs_buf = np.zeros((steps, env.obs_size), np.float32)
    next_buf = np.zeros((steps, env.obs_size), np.float32)
    act_buf = np.zeros((steps, env.act_size), np.float32)
    rew_buf = np.zeros(steps, np.float32)
    disc_buf = np.zeros(steps, np.float32)
    ep_keys = np.zeros((1, 1, 2), np.uint32)
    task_ids = jnp.zeros((1,), jnp.int32)
    obs = env.reset()
    start = 0.0
    for i in range(steps):
        if i == steps // 2:
            start = time.perf_counter()
        if i < cfg.warmup_steps:
            action = rng.uniform(-1.0, 1.0, env.act_size).astype(np.float32)
        else:
            actions, keys = explore(state, obs[None, None], keys, ep_keys, task_ids)
            action = np.asarray(actions)[0, 0]
            idx = rng.integers(0, i, cfg.batch_size)
            batch = {"obs": obs_buf[idx], "action": act_buf[idx], "reward": rew_buf[idx], "discount": disc_buf[idx],
                     "next_obs": next_buf[idx], "task_id": np.zeros(cfg.batch_size, np.int32)}
            state, _, keys = learn(state, {k: v[None, None] for k, v in batch.items()}, keys)
        next_obs, reward, terminated, over = env.step(env.low + (action + 1.0) * 0.5 * (env.high - env.low))
        obs_buf[i], act_buf[i], rew_buf[i], next_buf[i] = obs, action, reward, next_obs
        disc_buf[i] = 0.0 if terminated else cfg.gamma
        obs = env.reset() if over else next_obs
    jax.block_until_ready(state)
    return (steps - steps // 2) / (time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------
# Timing processes


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``: (wall s, CPU s of it and all its processes, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def harness_run(agent: str, task: str, steps: int, hidden: int, folder: Path,
                env: dict[str, str]) -> dict[str, float]:
    """One `harness run` of ``agent`` on ``task`` for ``steps``: its figures."""
    config: dict[str, Any] = {}
    if agent == "sac":
        config = {"hidden_dims": [hidden, hidden], "warmup_steps": SAC_WARMUP}
    manifest = {"name": "overhead", "tasks": [task], "agents": {agent: config}, "seeds": 1, "budget": steps,
                "eval": {"every": steps // 2, "episodes": 1}, "log_every": 1000}
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest))
    results = folder / "results"
    wall, cpu, _ = timed([sys.executable, "-m", "harness", "run", str(path), "--results", str(results)], env)
    sps = [json.loads(line) for shard in results.glob("runs/*/curves.jsonl") for line in shard.open()]
    last = max((p for p in sps if p["metric"] == "sys/env_steps_per_s"), key=lambda p: p["step"])
    return {"steady": last["value"], "wall": wall, "cpu": cpu}


def bare_run(agent: str, task: str, steps: int, hidden: int, env: dict[str, str]) -> dict[str, float]:
    wall, cpu, out = timed([sys.executable, __file__, "--bare", agent, task, str(steps), str(hidden)], env)
    return {"steady": float(out.split()[-1]), "wall": wall, "cpu": cpu}


def ratios(ours: dict[str, float], bare: dict[str, float]) -> dict[str, float]:
    """Harness env-steps/s over bare env-steps/s: steady rates, and whole-process times inverted."""
    return {"steady": ours["steady"] / bare["steady"], "wall": bare["wall"] / ours["wall"],
            "cpu": bare["cpu"] / ours["cpu"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", default=["random", "sac"], choices=("random", "sac"))
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--steps", type=int, default=20_000, help="env steps of a random run (default 20000)")
    parser.add_argument("--sac-steps", type=int, default=3000,
                        help=f"env steps of a SAC run, the first {SAC_WARMUP} random (default 3000)")
    parser.add_argument("--sac-hidden", type=int, default=256, help="SAC's hidden layer width (default 256)")
    parser.add_argument("--pairs", type=int, default=3, help="harness/bare pairs per agent and task (default 3)")
    parser.add_argument("--cold-cache", action="store_true",
                        help="an empty JAX compilation cache for every harness run (default: one shared cache)")
    parser.add_argument("--bare", nargs=4, metavar=("AGENT", "TASK", "STEPS", "HIDDEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        agent, task, steps, hidden = args.bare
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        rate = bare_random(task, int(steps)) if agent == "random" else bare_sac(task, int(steps), int(hidden))
        print(f"{rate:.3f}")
        return
    if args.sac_steps <= 2 * SAC_WARMUP:
        parser.error(f"--sac-steps must exceed {2 * SAC_WARMUP} (the steady half must be past the warm-up)")
    env = {**os.environ, "MUJOCO_GL": "disable", "PYTHONPATH": str(ROOT)}
    print(f"pairs: {args.pairs}; random {args.steps:,} steps, SAC {args.sac_steps:,} steps (hidden "
          f"{args.sac_hidden}x2, warm-up {SAC_WARMUP:,}); harness env-steps/s over bare env-steps/s "
          "(1.00 = no overhead)")
    print(f"{'agent':8}{'task':22}{'pair':>5}{'steady':>8}{'wall':>7}{'cpu':>7}   "
          f"{'harness wall/cpu s':>19}{'bare wall/cpu s':>17}")
    with tempfile.TemporaryDirectory() as tmp:
        for agent in args.agents:
            steps = args.steps if agent == "random" else args.sac_steps
            for task in args.tasks:
                seen: list[dict[str, float]] = []
                for pair in range(args.pairs):
                    folder = Path(tmp) / f"{agent}-{task.replace('/', '-')}-{pair}"
                    folder.mkdir()
                    cache = folder / "jax-cache" if args.cold_cache else Path(tmp) / "jax-cache"
                    run_env = {**env, "HARNESS_JAX_CACHE": str(cache)}
                    ours = harness_run(agent, task, steps, args.sac_hidden, folder, run_env)
                    bare = bare_run(agent, task, steps, args.sac_hidden, env)
                    seen.append(ratios(ours, bare))
                    r = seen[-1]
                    print(f"{agent:8}{task:22}{pair + 1:5}{r['steady']:8.2f}{r['wall']:7.2f}{r['cpu']:7.2f}   "
                          f"{ours['wall']:9.1f}/{ours['cpu']:<9.1f}{bare['wall']:7.1f}/{bare['cpu']:<9.1f}", flush=True)
                if args.pairs > 1:
                    parts = []
                    for key in ("steady", "wall", "cpu"):
                        values = [s[key] for s in seen]
                        parts.append(f"{key} {statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]")
                    print(f"{agent:8}{task:22} median: " + ", ".join(parts), flush=True)


if __name__ == "__main__":
    main()
