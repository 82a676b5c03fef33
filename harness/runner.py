"""The one training driver every agent shares.

:func:`train_group` trains the seeds of one (task, agent) pair together in one process: S seeds x
E environments each, the agent states stacked over seeds, ``act`` and ``update`` ``jax.vmap``ped
over them. It owns replay, warm-up, updates per step, periodic deterministic evaluation,
checkpoints and the curve shards under ``results/runs/<run_id>/``.

Resuming: a checkpoint is written right after each evaluation, together with the byte length of
every curve shard at that moment. A restarted group truncates its shards back to those lengths and
continues from the checkpoint, so no curve point is lost or written twice, even after ``kill -9``.
Environments are not part of a checkpoint: a resumed group starts fresh episodes.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import agents
from agents.base import AgentConfig, Batch
from harness import catalog, envs
from harness.envs.vector import VecEnv, evaluate
from harness.layout import group_dir, now, read_status, run_dir, write_run_record
from harness.manifest import RunGroup
from harness.store import SHARD_CURVES

#: Progress callback: (group_id, env_steps, budget, env_steps_per_s, last eval return or None).
ProgressFn = Callable[[str, int, int, float, float | None], None]

PACKAGES = ("harness", "jax", "jaxlib", "flax", "optax", "numpy", "mujoco", "dm-control", "metaworld",
            "myosuite", "playground", "humanoid_bench", "brc-dex-envs", "gymnasium", "gymnasium-robotics",
            "duckdb")


# ----------------------------------------------------------------------------------------------
# Replay


class Replay:
    """Ring buffers of one seed's E environments, for S seeds, on the host.

    Arrays have shape (S, E, C, ...), C = capacity per environment. All environments step in
    lockstep, so one write pointer serves them all. Sampling builds n-step targets that stop at
    episode ends.
    """

    def __init__(self, seeds: int, num_envs: int, capacity: int, obs_dim: int, act_dim: int) -> None:
        cap = max(1, capacity // num_envs)
        self.obs = np.zeros((seeds, num_envs, cap, obs_dim), np.float32)
        self.action = np.zeros((seeds, num_envs, cap, act_dim), np.float32)
        self.reward = np.zeros((seeds, num_envs, cap), np.float32)
        self.next_obs = np.zeros((seeds, num_envs, cap, obs_dim), np.float32)
        self.terminated = np.zeros((seeds, num_envs, cap), bool)
        self.ended = np.zeros((seeds, num_envs, cap), bool)
        self.ptr = 0
        self.size = 0

    @property
    def capacity(self) -> int:
        return self.obs.shape[2]

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, ended: np.ndarray) -> None:
        """Add one transition per (seed, env): obs (S, E, obs), reward (S, E), ..."""
        p = self.ptr
        self.obs[:, :, p], self.action[:, :, p], self.reward[:, :, p] = obs, action, reward
        self.next_obs[:, :, p], self.terminated[:, :, p], self.ended[:, :, p] = next_obs, terminated, ended
        self.ptr = (p + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, count: int, batch: int, n_step: int,
               gamma: float) -> dict[str, np.ndarray]:
        """``count`` minibatches of ``batch`` n-step transitions per seed: arrays (S, count, batch, ...)."""
        seeds, num_envs, cap = self.reward.shape
        usable = self.size - (n_step - 1)  # the newest n-1 positions lack their n-step future
        if usable < 1:
            raise RuntimeError("replay holds too few transitions to sample")
        shape = (seeds, count, batch)
        s = np.arange(seeds)[:, None, None]  # (S, 1, 1)
        e = rng.integers(0, num_envs, shape)
        base = (self.ptr - self.size + rng.integers(0, usable, shape)) % cap  # (S, count, B)
        reward = np.zeros(shape, np.float32)
        discount = np.zeros(shape, np.float32)
        next_obs = np.zeros((*shape, self.obs.shape[-1]), np.float32)
        alive = np.ones(shape, bool)
        for k in range(n_step):
            pos = (base + k) % cap
            reward += np.where(alive, gamma**k * self.reward[s, e, pos], 0.0)
            next_obs = np.where(alive[..., None], self.next_obs[s, e, pos], next_obs)
            stop = alive & (self.ended[s, e, pos] | (k == n_step - 1))
            discount = np.where(stop, gamma ** (k + 1) * ~self.terminated[s, e, pos], discount)
            alive &= ~self.ended[s, e, pos]
        return {
            "obs": self.obs[s, e, base], "action": self.action[s, e, base], "reward": reward,
            "discount": discount, "next_obs": next_obs,
        }

    def state(self) -> dict[str, Any]:
        """The filled part of the buffers, for a checkpoint."""
        return {"arrays": {k: getattr(self, k)[:, :, : self.size] for k in _REPLAY_ARRAYS},
                "ptr": self.ptr, "size": self.size}

    def restore(self, saved: dict[str, Any]) -> None:
        for k in _REPLAY_ARRAYS:
            getattr(self, k)[:, :, : saved["size"]] = saved["arrays"][k]
        self.ptr, self.size = saved["ptr"], saved["size"]


_REPLAY_ARRAYS = ("obs", "action", "reward", "next_obs", "terminated", "ended")


# ----------------------------------------------------------------------------------------------
# Shards


@dataclass
class Shards:
    """The curve files of a group's runs (one per seed), appended as points arrive."""

    dirs: list[Path]
    files: list[Any] = field(default_factory=list)

    def open(self, offsets: list[int] | None) -> None:
        for i, d in enumerate(self.dirs):
            d.mkdir(parents=True, exist_ok=True)
            path = d / SHARD_CURVES
            path.touch()
            with path.open("r+b") as f:
                f.truncate(offsets[i] if offsets else 0)
            self.files.append(path.open("a"))

    def write(self, seed_index: int, metric: str, step: int, value: float) -> None:
        if np.isfinite(value):
            self.files[seed_index].write(json.dumps({"metric": metric, "step": step, "value": float(value)}) + "\n")

    def flush(self) -> list[int]:
        """Flush to disk; returns each file's length (the offsets a checkpoint records)."""
        out = []
        for f in self.files:
            f.flush()
            os.fsync(f.fileno())
            out.append(f.tell())
        return out

    def close(self) -> None:
        for f in self.files:
            f.close()


def environment_facts() -> dict[str, Any]:
    """Host, device, package versions and git commit, recorded with every run."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=False).stdout.strip() or None
    except OSError:
        commit = None
    device = jax.devices()[0]
    return {
        "host": socket.gethostname(),
        "device": f"{device.platform}:{getattr(device, 'device_kind', '')}".rstrip(":"),
        "packages": {"python": platform.python_version(), **versions},
        "git_commit": commit,
    }


# ----------------------------------------------------------------------------------------------
# Training


@dataclass
class Counters:
    """Where a group stands; saved in every checkpoint."""

    next_eval: int
    env_steps: int = 0
    updates: int = 0
    wall_s: float = 0.0
    last_eval: float | None = None


def train_group(group: RunGroup, results: Path, progress: ProgressFn | None = None) -> None:
    """Train (or resume, or skip if finished) the seeds of one group; raises if training fails.

    Playground tasks train in :func:`harness.device_runner.train_group_on_device`, with the whole
    step on the JAX device; every other suite here, with simulators on the host.
    """
    specs = group.runs
    if catalog.resolve(specs[0].task).suite == "playground":
        # Imported here: harness.device_runner imports this module (and Playground).
        from harness.device_runner import train_group_on_device

        train_group_on_device(group, results, progress)
        return
    if all(read_status(results, s.run_id) == "finished" for s in specs):
        return
    first = specs[0]
    task = catalog.resolve(first.task)
    agent = agents.get(first.agent.algo)
    cfg: AgentConfig = first.agent.config
    n_seeds, n_envs = len(specs), cfg.num_envs
    facts = environment_facts()
    started = now()
    for spec in specs:
        write_run_record(results, spec, status="running", started_at=started, **facts)

    # S x E training envs and S evaluation envs; seeds differ per env and from evaluation's.
    train_envs = [envs.make(task, seed=_env_seed(s.seed, e, 0)) for s in specs for e in range(n_envs)]
    eval_envs = [envs.make(task, seed=_env_seed(s.seed, -1, 0)) for s in specs]
    vec = VecEnv(train_envs)
    obs_dim, act_dim = vec.observation_size, vec.action_size

    init = jax.jit(jax.vmap(partial(agent.init, cfg), in_axes=(0, None, None, None)), static_argnums=(1, 2, 3))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray([s.seed for s in specs]))  # (S, 2)
    pairs = jax.vmap(jax.random.split)(keys)  # (S, 2, 2)
    keys, init_keys = pairs[:, 0], pairs[:, 1]
    state = init(init_keys, obs_dim, act_dim, 1)
    replay = Replay(n_seeds, n_envs, cfg.replay_capacity, obs_dim, act_dim)
    rng = np.random.default_rng([s.seed for s in specs])
    counters = Counters(next_eval=first.eval_every)

    ckpt = group_dir(results, group.group_id) / "checkpoint.pkl"
    shards = Shards([run_dir(results, s.run_id) for s in specs])
    saved = pickle.loads(ckpt.read_bytes()) if ckpt.exists() else None
    if saved is not None:
        state = jax.tree_util.tree_map(jnp.asarray, saved["state"])
        keys = jnp.asarray(saved["keys"])
        replay.restore(saved["replay"])
        rng.bit_generator.state = saved["rng"]
        counters = saved["counters"]
    shards.open(saved["offsets"] if saved is not None else None)

    explore = make_policy(agent, cfg, deterministic=False)
    greedy = make_policy(agent, cfg, deterministic=True)
    learn = make_learner(agent, cfg)
    observe = make_observer(agent, cfg) if agent.observe_episode is not None else None
    steps_per_iter = n_envs * task.action_repeat
    # A resumed group starts new episodes, seeded apart from the episodes it already saw.
    obs = vec.reset([_env_seed(s.seed, e, counters.env_steps) for s in specs for e in range(n_envs)])
    seeds = [s.seed for s in specs]
    episode_keys = _episode_keys(seeds, np.ones((n_seeds, n_envs), bool), counters.env_steps,
                                 np.zeros((n_seeds, n_envs, 2), np.uint32))  # (S, E, 2)
    episodes = EpisodeRewards(n_seeds, n_envs, -(-task.episode_length // task.action_repeat))
    pending: list[dict[str, jax.Array]] = []  # agent metrics (S, U) since the last log, still on the device
    clock = time.perf_counter()
    window = (clock, counters.env_steps, counters.updates)
    try:
        while counters.env_steps < first.budget:
            if counters.env_steps < cfg.warmup_steps:
                action = rng.uniform(-1.0, 1.0, (n_seeds * n_envs, act_dim)).astype(np.float32)
            else:
                actions, keys = explore(state, obs.reshape(n_seeds, n_envs, obs_dim), keys, episode_keys)
                action = np.asarray(actions).reshape(n_seeds * n_envs, act_dim)
            # The update is dispatched before the environments step, so that XLA computes it while
            # the simulators run; it samples the replay as it was before this step's transition.
            learning = counters.env_steps >= cfg.warmup_steps and cfg.updates_per_step > 0
            if learning and replay.size >= cfg.n_step:
                batch = replay.sample(rng, cfg.updates_per_step, cfg.batch_size, cfg.n_step, cfg.gamma)
                state, metrics, keys = learn(state, batch, keys)
                counters.updates += cfg.updates_per_step
                pending.append(metrics)
            step = vec.step(action)
            replay.add(*(x.reshape((n_seeds, n_envs, *x.shape[1:])) for x in (
                obs, action, step.reward, step.next_obs, step.terminated, step.terminated | step.truncated)))
            obs = step.obs
            counters.env_steps += steps_per_iter
            ended = (step.terminated | step.truncated).reshape(n_seeds, n_envs)
            if observe is not None:
                episodes.add(step.reward.reshape(n_seeds, n_envs))
                if ended.any():
                    truncated = (step.truncated & ~step.terminated).reshape(n_seeds, n_envs)
                    state = observe(state, *episodes.finished(ended), truncated, ended)
            if ended.any():
                episode_keys = _episode_keys(seeds, ended, counters.env_steps, episode_keys)
            _log_episodes(shards, task, step, n_seeds, n_envs, counters.env_steps)
            if len(pending) * cfg.updates_per_step >= first.log_every:
                log_metrics(shards, pending, n_seeds, counters.env_steps)
                pending = []

            done = counters.env_steps >= first.budget
            if counters.env_steps >= counters.next_eval or done:
                tick = time.perf_counter()
                counters.wall_s += tick - clock
                clock = tick
                elapsed = max(tick - window[0], 1e-9)
                sps = (counters.env_steps - window[1]) / elapsed
                ups = (counters.updates - window[2]) / elapsed
                policy = partial(_greedy_numpy, greedy, state, keys, episode_keys[:, :1])  # keys do not advance
                returns, successes = evaluate(eval_envs, policy, first.eval_episodes, seed=counters.env_steps)
                record_evaluation(shards, task, counters, first.eval_every, returns, successes, sps, ups)
                offsets = shards.flush()
                save_checkpoint(ckpt, {"state": jax.device_get(state), "keys": np.asarray(keys),
                                       "replay": replay.state(), "rng": rng.bit_generator.state,
                                       "counters": counters, "offsets": offsets})
                window = (time.perf_counter(), counters.env_steps, counters.updates)
                if progress is not None:
                    progress(group.group_id, counters.env_steps, first.budget, sps, counters.last_eval)
            elif progress is not None and counters.env_steps % (50 * steps_per_iter) == 0:
                elapsed = max(time.perf_counter() - window[0], 1e-9)
                progress(group.group_id, counters.env_steps, first.budget,
                         (counters.env_steps - window[1]) / elapsed, counters.last_eval)
    finally:
        shards.close()
        for env in train_envs + eval_envs:
            env.close()
    finished = now()
    for spec in specs:
        write_run_record(results, spec, status="finished", finished_at=finished,
                         wall_seconds=counters.wall_s)
    ckpt.unlink(missing_ok=True)


def _env_seed(seed: int, env_index: int, env_steps: int) -> int:
    """A 31-bit environment seed for (run seed, env index or -1 for evaluation, resume point)."""
    return int(np.random.SeedSequence([seed, env_index + 1, env_steps]).generate_state(1)[0] >> 1)


def _episode_keys(seeds: list[int], ended: np.ndarray, env_steps: int, keys: np.ndarray) -> np.ndarray:
    """``keys`` (S, E, 2) uint32 with a fresh key for each (seed, env) whose episode starts now.

    A new episode's key depends only on the run seed, the env index and the step it starts at, so it
    needs no state of its own (and a resumed group draws the same keys as an uninterrupted one would
    for episodes starting at the same step).
    """
    keys = keys.copy()
    for s, e in zip(*np.nonzero(ended), strict=True):
        keys[s, e] = np.random.SeedSequence([seeds[s], int(e) + 1, env_steps, 1]).generate_state(2)
    return keys


class EpisodeRewards:
    """The rewards of each (seed, env)'s current training episode, for agents that observe episodes."""

    def __init__(self, seeds: int, num_envs: int, max_length: int) -> None:
        self.rewards = np.zeros((seeds, num_envs, max(1, max_length)), np.float32)  # (S, E, T), grows if needed
        self.length = np.zeros((seeds, num_envs), np.int64)  # (S, E) steps of the current episode so far

    def add(self, reward: np.ndarray) -> None:
        """Append one step's rewards (S, E)."""
        if self.length.max() >= self.rewards.shape[-1]:  # an episode longer than the catalog says
            self.rewards = np.concatenate([self.rewards, np.zeros_like(self.rewards)], axis=-1)
        s, e = np.indices(self.length.shape)
        self.rewards[s, e, self.length] = reward
        self.length += 1

    def finished(self, ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rewards (S, E, T), valid (S, E, T)) of all envs; the ``ended`` (S, E) ones start over."""
        valid = np.arange(self.rewards.shape[-1]) < self.length[..., None]
        rewards = np.where(valid, self.rewards, 0.0).astype(np.float32)
        self.length[ended] = 0
        return rewards, valid


def make_policy(agent: agents.Agent[Any, Any], cfg: AgentConfig, deterministic: bool) -> Callable[..., Any]:
    """jit(vmap over seeds (vmap over envs)): (state, obs (S, E, obs), keys (S, 2), episode_keys (S, E, 2))
    -> (actions (S, E, act), keys)."""

    def per_seed(state: Any, obs: jax.Array, key: jax.Array, episode_keys: jax.Array) -> tuple[jax.Array, jax.Array]:
        key, sub = jax.random.split(key)
        env_keys = jax.random.split(sub, obs.shape[0])  # (E, 2)
        task_ids = jnp.zeros(obs.shape[0], jnp.int32)
        per_env = jax.vmap(lambda o, t, k, ek: agent.act(cfg, state, o, t, k, ek, deterministic))
        return per_env(obs, task_ids, env_keys, episode_keys), key

    return jax.jit(jax.vmap(per_seed))


def _greedy_numpy(greedy: Callable[..., Any], state: Any, keys: jax.Array, episode_keys: np.ndarray,
                  obs: np.ndarray) -> np.ndarray:
    """Evaluation actions (S, act) for one observation per seed (S, obs); episode_keys (S, 1, 2)."""
    actions, _ = greedy(state, obs[:, None], keys, episode_keys)
    return np.asarray(actions)[:, 0]


def make_observer(agent: agents.Agent[Any, Any], cfg: AgentConfig) -> Callable[..., Any]:
    """jit(vmap over seeds (scan over envs)) of the agent's ``observe_episode``:
    (state, rewards (S, E, T), valid (S, E, T), truncated (S, E), ended (S, E)) -> state; envs whose
    episode did not end leave the state as it is."""
    observe_episode = agent.observe_episode
    assert observe_episode is not None

    def per_seed(state: Any, rewards: jax.Array, valid: jax.Array, truncated: jax.Array,
                 ended: jax.Array) -> Any:
        def one(carry: Any, xs: tuple[jax.Array, ...]) -> tuple[Any, None]:
            reward, mask, trunc, end = xs
            seen = observe_episode(cfg, carry, reward, mask, trunc, jnp.zeros((), jnp.int32))
            return jax.tree_util.tree_map(lambda new, old: jnp.where(end, new, old), seen, carry), None

        state, _ = jax.lax.scan(one, state, (rewards, valid, truncated, ended))
        return state

    return jax.jit(jax.vmap(per_seed))


def make_learner(agent: agents.Agent[Any, Any], cfg: AgentConfig) -> Callable[..., Any]:
    """jit(vmap over seeds (scan over U minibatches)): (state, batches (S, U, B, ...), keys (S, 2)) ->
    (state, metrics (S, U) each, keys)."""

    def per_seed(state: Any, batches: dict[str, jax.Array], key: jax.Array) -> tuple[Any, dict[str, jax.Array],
                                                                                   jax.Array]:
        def one(carry: Any, xs: tuple[dict[str, jax.Array], jax.Array]) -> tuple[Any, dict[str, jax.Array]]:
            b, k = xs
            batch = Batch(b["obs"], b["action"], b["reward"], b["discount"], b["next_obs"],
                          jnp.zeros(b["reward"].shape, jnp.int32))
            return agent.update(cfg, carry, batch, k)

        key, sub = jax.random.split(key)
        state, metrics = jax.lax.scan(one, state, (batches, jax.random.split(sub, batches["reward"].shape[0])))
        return state, metrics, key

    return jax.jit(jax.vmap(per_seed))


def record_evaluation(shards: Shards, task: catalog.Task, counters: Counters, every: int, returns: np.ndarray,
                      successes: np.ndarray | None, sps: float, ups: float) -> None:
    """Write each seed's evaluation at ``counters.env_steps`` (the mean over its episodes; returns and
    successes (S, episodes)) with the system figures, and move ``counters`` on to the next one."""
    step = counters.env_steps
    for i in range(len(returns)):
        shards.write(i, "eval/return", step, float(np.mean(returns[i])))
        if task.metric == "success" and successes is not None:
            shards.write(i, "eval/success", step, float(np.mean(successes[i])))
        shards.write(i, "sys/env_steps_per_s", step, sps)
        shards.write(i, "sys/updates_per_s", step, ups)
        shards.write(i, "sys/wall_s", step, counters.wall_s)
    counters.last_eval = float(np.mean(returns))
    while counters.next_eval <= step:
        counters.next_eval += every


def log_metrics(shards: Shards, pending: list[dict[str, jax.Array]], n_seeds: int, env_steps: int) -> None:
    """The mean of each agent metric over the updates since the last log, one point per seed."""
    host = jax.device_get(pending)  # one transfer for the whole window
    for name in host[0]:
        values = np.concatenate([np.asarray(m[name]) for m in host], axis=1)  # (S, updates)
        for i in range(n_seeds):
            shards.write(i, f"agent/{name}", env_steps, float(values[i].mean()))


def _log_episodes(shards: Shards, task: catalog.Task, step: Any, n_seeds: int, n_envs: int, env_steps: int) -> None:
    """Training episode returns (and successes) that ended this step, averaged over a seed's envs."""
    returns = step.episode_return.reshape(n_seeds, n_envs)
    if np.all(np.isnan(returns)):
        return
    successes = step.episode_success.reshape(n_seeds, n_envs)
    for i in range(n_seeds):
        if not np.all(np.isnan(returns[i])):
            shards.write(i, "train/episode_return", env_steps, float(np.nanmean(returns[i])))
            if task.metric == "success":
                shards.write(i, "train/episode_success", env_steps, float(np.nanmean(successes[i])))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
