"""Random-agent returns on HumanoidBench tasks: the ``random`` references of the catalog's normalisation.

For each task: 10 seeds x 10 episodes of the harness's ``random`` agent (uniform actions in
[-1, 1]) through the harness's adapter, episodes as long as the catalog says (or until the env
terminates). Prints the mean return, its standard error over the 10 seed means, the catalog's
current reference and its source, and the random-action speed. This is how the ``measured``
entries of ``harness/catalog_humanoidbench.py`` were obtained (SimbaV2 and BRC measured theirs
the same way: 10 seeds, 10 episodes each).

Needs ``harness install humanoidbench``.

Example:
    python benchmarks/humanoidbench_random.py h1-basketball h1-door h1-walk --seeds 10 --episodes 10
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import agents
from harness import catalog, catalog_humanoidbench, envs


def episode_actions(key: jax.Array, steps: int, act_dim: int) -> np.ndarray:
    """The random agent's actions for one episode: ``(steps, act_dim)``, one agent key per step."""
    agent = agents.get("random")
    cfg = agent.config()
    state = agent.init(cfg, key, 1, act_dim, 1)
    obs, task_id = jnp.zeros((1,), jnp.float32), jnp.zeros((), jnp.int32)
    keys = jax.random.split(key, steps)  # (steps,) keys
    act = jax.vmap(lambda k: agent.act(cfg, state, obs, task_id, k, k, False))
    return np.asarray(act(keys), dtype=np.float64)


def measure(name: str, seeds: int, episodes: int) -> tuple[float, float, float]:
    """(mean return, standard error over seed means, steps per second) of the random agent."""
    task = catalog.resolve(name)
    seed_means, steps, seconds = [], 0, 0.0
    for seed in range(seeds):
        env = envs.make(task, seed)
        key = jax.random.key(seed)
        returns = []
        for _ in range(episodes):
            key, sub = jax.random.split(key)
            actions = episode_actions(sub, task.episode_length, env.action_size)
            env.reset()
            total, start = 0.0, time.perf_counter()
            for action in actions:
                _, reward, terminated, truncated, _ = env.step(action)
                total += reward
                steps += 1
                if terminated or truncated:
                    break
            seconds += time.perf_counter() - start
            returns.append(total)
        seed_means.append(float(np.mean(returns)))
        env.close()
    means = np.array(seed_means)  # (seeds,)
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(seeds)), steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="*", help="catalog names or aliases (default: every measured entry)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=10)
    args = parser.parse_args()
    names = args.tasks or [env_id for env_id, r in catalog_humanoidbench.RANDOM_RETURN.items()
                           if r.source == "measured"]
    print(f"{'task':38s} {'random mean':>12s} {'s.e.':>8s} {'catalog':>10s} {'source':>9s} {'steps/s':>8s}")
    for name in names:
        task = catalog.resolve(name)
        mean, stderr, sps = measure(name, args.seeds, args.episodes)
        source = catalog_humanoidbench.RANDOM_RETURN[task.env_id].source
        print(f"{task.name:38s} {mean:12.3f} {stderr:8.3f} {task.norm_low:10.3f} {source:>9s} {sps:8.0f}", flush=True)


if __name__ == "__main__":
    main()
