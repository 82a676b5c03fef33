"""The device backend: tasks with a batched JAX environment (MuJoCo Playground), the whole step on
the JAX device.

:func:`train` runs a single-task job through the same lifecycle as the host backend
(:mod:`harness.lifecycle`: run records, curve metrics, budget, evaluation, logging and
checkpoint-after-evaluation resume) but keeps everything on the default JAX device: S seeds x E
Playground envs stepped by :class:`harness.envs.playground_batch.BatchEnv`, a replay ring buffer of
arrays (S, E, C, ...), and one jitted call (:func:`_advance`, a ``lax.fori_loop``) that runs up to
``chunk`` vectorised steps of act -> env step -> replay write -> sample -> update. The replay's
n-step sampling is :func:`harness.replay.nstep`, the host backend's, on JAX arrays. The host
touches the device once per chunk: it reads the chunk's per-step outputs (agent metrics, finished
episodes' returns) and writes them to the curve shards exactly as the host backend would have,
step by step.

Randomness is per seed: seed ``s`` starts from ``PRNGKey(s)``, split into the agent's key, its
init key, the loop's key (warm-up actions and replay sampling), the envs' reset streams and their
episode keys. A new episode's key is the next key of its env's episode-key chain, drawn when the
previous episode ends. Evaluation resets ``eval_episodes`` envs per seed from a key of (seed, env
steps) and runs them in parallel, deterministically, for a whole episode.

Resuming: a checkpoint after each evaluation holds the agent states, the replay's filled part,
the envs' states (Playground's states and key streams), all keys, the counters and the curve
shards' byte lengths; a restarted job truncates its shards to those lengths and continues as if
it had never stopped (unlike the host backend, the envs' episodes carry on too).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import agents
from agents.base import AgentConfig
from harness import catalog
from harness import replay as replay_rule
from harness.envs.playground_batch import BatchEnv, EnvState
from harness.jobs import Job
from harness.lifecycle import Counters, JobFiles, ProgressFn, eval_due, log_episodes, log_metrics, record_evaluation
from harness.vmapped import make_learner, make_observer, make_policy

MAX_CHUNK = 500
"""Most vectorised steps in one jitted call (the host reports progress between calls)."""

_EVAL_STREAM = 1
"""Folded into a seed's key (then the env steps) for the reset keys of its evaluation episodes."""


@dataclass(frozen=True)
class Loop:
    """What the jitted parts of a group's loop depend on: a static argument, so that groups (and
    resumed groups) with the same settings share their compiled code."""

    task: catalog.Task
    """The Playground task."""
    agent: agents.Agent[Any, Any]
    """The agent."""
    cfg: AgentConfig
    """The agent's config."""
    seeds: int
    """S, seeds trained together."""
    num_envs: int
    """E, training envs per seed."""
    capacity: int
    """C, replay positions per env (the config's replay capacity divided among the E envs)."""
    eval_episodes: int
    """Deterministic evaluation episodes per seed, run in parallel."""
    chunk: int
    """Most vectorised steps of one :func:`_advance` call (the length of its output arrays)."""


class Replay(NamedTuple):
    """Ring buffers of S seeds x E envs on the device; all envs write at the same position."""

    obs: jax.Array  # (S, E, C, obs)
    action: jax.Array  # (S, E, C, act)
    reward: jax.Array  # (S, E, C) float32
    next_obs: jax.Array  # (S, E, C, obs)
    terminated: jax.Array  # (S, E, C) bool
    ended: jax.Array  # (S, E, C) bool: terminated or truncated
    ptr: jax.Array  # () int32, the next position to write
    size: jax.Array  # () int32, positions filled


class Carry(NamedTuple):
    """Everything a group's loop carries from one vectorised step to the next."""

    agent: Any  # the agent states, stacked over seeds (S, ...)
    env: EnvState  # S * E envs, seed-major
    replay: Replay
    keys: jax.Array  # (S, 2) the agent's keys (act and update)
    loop_keys: jax.Array  # (S, 2) warm-up actions and replay sampling
    episode_keys: jax.Array  # (S, E, 2) each env's key of its current episode
    episode_rewards: jax.Array | None  # (S, E, T) rewards of the current episodes, for observe_episode


class StepOut(NamedTuple):
    """What one vectorised step reports to the host."""

    learned: jax.Array  # () bool, whether the agent updated at this step
    metrics: dict[str, jax.Array]  # (S, U) each, the agent's metrics of this step's updates
    episode_return: jax.Array  # (S,) mean return of the episodes that ended at this step, NaN if none


# ----------------------------------------------------------------------------------------------
# Replay


def _replay(loop: Loop, obs_dim: int, act_dim: int) -> Replay:
    shape = (loop.seeds, loop.num_envs, loop.capacity)
    return Replay(jnp.zeros((*shape, obs_dim), jnp.float32), jnp.zeros((*shape, act_dim), jnp.float32),
                  jnp.zeros(shape, jnp.float32), jnp.zeros((*shape, obs_dim), jnp.float32),
                  jnp.zeros(shape, bool), jnp.zeros(shape, bool), jnp.zeros((), jnp.int32),
                  jnp.zeros((), jnp.int32))


def _replay_add(replay: Replay, *values: jax.Array) -> Replay:
    """Write one transition per (seed, env): obs (S, E, obs), action, reward (S, E), next_obs,
    terminated, ended."""
    arrays = {name: jax.lax.dynamic_update_index_in_dim(getattr(replay, name), value, replay.ptr, 2)
              for name, value in zip(replay_rule.ARRAYS, values, strict=True)}
    cap = replay.reward.shape[2]
    return replay._replace(**arrays, ptr=(replay.ptr + 1) % cap, size=jnp.minimum(replay.size + 1, cap))


def _replay_sample(cfg: AgentConfig, replay: Replay, keys: jax.Array) -> dict[str, jax.Array]:
    """``updates_per_step`` minibatches of n-step transitions per seed, arrays (S, U, B, ...);
    ``keys (S, 2)``. A single-task job: every ``task_id`` is 0."""
    shape = (cfg.updates_per_step, cfg.batch_size)

    def per_seed(arrays: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        num_envs, cap = arrays["reward"].shape
        key_env, key_pos = jax.random.split(key)
        e = jax.random.randint(key_env, shape, 0, num_envs)
        offsets = jax.random.randint(key_pos, shape, 0, replay_rule.usable(replay.size, cfg.n_step))
        base = replay_rule.positions(replay.ptr, replay.size, offsets, cap)  # (U, B)

        def take(name: str, pos: jax.Array) -> jax.Array:
            return arrays[name][e, pos]

        batch = replay_rule.nstep(jnp, take, base, cap, cfg.n_step, cfg.gamma)
        return {**batch, "task_id": jnp.zeros(shape, jnp.int32)}

    return jax.vmap(per_seed)({name: getattr(replay, name) for name in replay_rule.ARRAYS}, keys)


# ----------------------------------------------------------------------------------------------
# The jitted parts


def _split(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per row of ``keys (S, 2)``: (the next key, a key to use now)."""
    pairs = jax.vmap(jax.random.split)(keys)  # (S, 2, 2)
    return pairs[:, 0], pairs[:, 1]


@partial(jax.jit, static_argnums=0)
def _start(loop: Loop, seeds: jax.Array) -> Carry:
    """The carry of a fresh group; ``seeds (S,)`` int32."""
    env = BatchEnv(loop.task)
    streams = jax.vmap(lambda s: jax.random.split(jax.random.PRNGKey(s), 5))(seeds)  # (S, 5, 2)
    init = jax.vmap(partial(loop.agent.init, loop.cfg), in_axes=(0, None, None, None))
    state = init(streams[:, 1], env.observation_size, env.action_size, 1)
    env_keys = jax.vmap(lambda k: jax.random.split(k, loop.num_envs))(streams[:, 3])  # (S, E, 2)
    episode_keys = jax.vmap(lambda k: jax.random.split(k, loop.num_envs))(streams[:, 4])  # (S, E, 2)
    rewards = None
    if loop.agent.observe_episode is not None:
        rewards = jnp.zeros((loop.seeds, loop.num_envs, env.max_steps), jnp.float32)
    return Carry(state, env.reset(env_keys.reshape(-1, 2)), _replay(loop, env.observation_size, env.action_size),
                 streams[:, 0], streams[:, 2], episode_keys, rewards)


def _one_step(loop: Loop, env: BatchEnv, carry: Carry, warm: jax.Array) -> tuple[Carry, StepOut]:
    """One vectorised step, with uniform random actions and no update while ``warm`` (a () bool):
    act, step the envs, write the replay, observe finished episodes, update.

    The branches (warm-up or policy, update or not, episode ended or not) take only the small
    arrays they need, never the replay, so that XLA does not copy the replay at every step.
    """
    cfg, n_seeds, n_envs = loop.cfg, loop.seeds, loop.num_envs
    explore = make_policy(loop.agent, cfg, deterministic=False)
    obs = env.obs(carry.env).reshape(n_seeds, n_envs, -1)  # (S, E, obs)
    Keys = tuple[jax.Array, jax.Array]  # (agent keys (S, 2), loop keys (S, 2))

    def uniform(state: Any, keys: Keys) -> tuple[jax.Array, Keys]:
        loop_keys, now_keys = _split(keys[1])
        draw = jax.vmap(lambda k: jax.random.uniform(k, (n_envs, env.action_size), minval=-1.0, maxval=1.0))
        return draw(now_keys), (keys[0], loop_keys)

    def policy(state: Any, keys: Keys) -> tuple[jax.Array, Keys]:
        action, agent_keys = explore(state, obs, keys[0], carry.episode_keys, jnp.zeros(n_envs, jnp.int32))
        return action, (agent_keys, keys[1])

    state = carry.agent
    action, (keys, loop_keys) = jax.lax.cond(warm, uniform, policy, state, (carry.keys, carry.loop_keys))

    steps_before = carry.env.steps.reshape(n_seeds, n_envs)  # (S, E)
    env_state, step = env.step(carry.env, action.reshape(n_seeds * n_envs, -1))
    seed_env = (n_seeds, n_envs)
    reward, terminated = step.reward.reshape(seed_env), step.terminated.reshape(seed_env)
    truncated = step.truncated.reshape(seed_env)
    ended = terminated | truncated
    replay = _replay_add(carry.replay, obs, action, reward, step.next_obs.reshape(*seed_env, -1), terminated, ended)

    rewards = carry.episode_rewards
    if rewards is not None:
        observe = make_observer(loop.agent, cfg)
        at = jnp.arange(rewards.shape[-1])  # (T,)
        rewards = jnp.where(at == steps_before[..., None], reward[..., None], rewards)  # (S, E, T)
        valid = at < steps_before[..., None] + 1
        episodes = jnp.where(valid, rewards, 0.0)
        task_ids = jnp.zeros(n_envs, jnp.int32)
        state = jax.lax.cond(jnp.any(ended), lambda s: observe(s, episodes, valid, truncated, ended, task_ids),
                             lambda s: s, state)

    learned, metrics = jnp.zeros((), bool), {}
    if cfg.updates_per_step > 0:
        # Unlike the host loop (which updates while the simulators step), the update comes after this
        # step's transition is in the replay: a gather from the replay before the write would make
        # XLA copy the whole replay at every step. The batches are drawn at every step (cheap); they
        # are used only when the agent learns.
        learn = make_learner(loop.agent, cfg)
        sample_keys, now_keys = _split(loop_keys)
        batches = _replay_sample(cfg, replay, now_keys)

        def update(state: Any, keys: jax.Array) -> tuple[Any, dict[str, jax.Array], jax.Array]:
            return learn(state, batches, keys)

        shapes = jax.eval_shape(update, state, keys)[1]

        def skip(state: Any, keys: jax.Array) -> tuple[Any, dict[str, jax.Array], jax.Array]:
            return state, {name: jnp.zeros(s.shape, s.dtype) for name, s in shapes.items()}, keys

        learned = ~warm & (replay.size >= cfg.n_step)
        state, metrics, keys = jax.lax.cond(learned, update, skip, state, keys)
        loop_keys = jnp.where(learned, sample_keys, loop_keys)

    next_keys = jax.vmap(jax.vmap(lambda k: jax.random.fold_in(k, 1)))(carry.episode_keys)
    episode_keys = jnp.where(ended[..., None], next_keys, carry.episode_keys)
    out = StepOut(learned, metrics, jnp.nanmean(step.episode_return.reshape(seed_env), axis=1))
    return Carry(state, env_state, replay, keys, loop_keys, episode_keys, rewards), out


@partial(jax.jit, static_argnums=0, donate_argnums=1)
def _advance(loop: Loop, carry: Carry, warmup_left: jax.Array, count: jax.Array) -> tuple[Carry, StepOut]:
    """Run ``count`` (<= loop.chunk) vectorised steps, the first ones warm-up steps while fewer than
    ``warmup_left`` env steps have been taken (both int32); outputs (chunk, ...), the ones past
    ``count`` with ``learned`` False and NaN values."""
    env = BatchEnv(loop.task)
    per_iter = loop.num_envs * loop.task.action_repeat
    shapes = jax.eval_shape(lambda c: _one_step(loop, env, c, jnp.zeros((), bool))[1], carry)
    outs = jax.tree_util.tree_map(
        lambda s: jnp.full((loop.chunk, *s.shape), jnp.nan if jnp.issubdtype(s.dtype, jnp.floating) else 0, s.dtype),
        shapes)

    def body(i: jax.Array, c: tuple[Carry, StepOut]) -> tuple[Carry, StepOut]:
        carry, outs = c
        carry, out = _one_step(loop, env, carry, i * per_iter < warmup_left)
        return carry, jax.tree_util.tree_map(lambda buf, x: buf.at[i].set(x), outs, out)

    return jax.lax.fori_loop(0, count, body, (carry, outs))


@partial(jax.jit, static_argnums=0)
def _evaluate(loop: Loop, state: Any, keys: jax.Array, seeds: jax.Array, env_steps: jax.Array) -> jax.Array:
    """Returns (S, M) of M = eval_episodes deterministic episodes per seed, run in parallel; their
    initial states come from (seed, ``env_steps``: uint32, the env steps modulo 2**32)."""
    env = BatchEnv(loop.task)
    n_seeds, m = loop.seeds, loop.eval_episodes
    greedy = make_policy(loop.agent, loop.cfg, deterministic=True)

    def reset_keys(seed: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), _EVAL_STREAM), env_steps)
        return jax.random.split(key, m)  # (M, 2)

    start = env.reset(jax.vmap(reset_keys)(seeds).reshape(n_seeds * m, 2))
    episode_keys = jnp.zeros((n_seeds, m, 2), jnp.uint32)  # evaluation is deterministic

    def body(c: tuple[EnvState, jax.Array, jax.Array], _: None) -> tuple[tuple[EnvState, jax.Array, jax.Array], None]:
        env_state, total, running = c
        obs = env.obs(env_state).reshape(n_seeds, m, -1)
        action, _ = greedy(state, obs, keys, episode_keys, jnp.zeros(m, jnp.int32))
        env_state, step = env.step(env_state, action.reshape(n_seeds * m, -1), auto_reset=False)
        total = total + jnp.where(running, step.reward, 0.0)
        return (env_state, total, running & ~(step.terminated | step.truncated)), None

    zeros = jnp.zeros((n_seeds * m,), jnp.float32)
    (_, total, _), _ = jax.lax.scan(body, (start, zeros, jnp.ones_like(zeros, bool)), None, length=env.max_steps)
    return total.reshape(n_seeds, m)


# ----------------------------------------------------------------------------------------------
# The host loop


def train(job: Job, results: Path, progress: ProgressFn | None = None, step_workers: int | None = None) -> None:
    """Train (or resume, or skip if finished) a single-task job on the default JAX device; raises if
    training fails. ``step_workers`` does not apply (the envs step on the device)."""
    del step_workers
    files = JobFiles(job, results)
    if files.finished():
        return
    (task,) = [catalog.resolve(name) for name in job.tasks]
    agent = agents.get(job.agent.algo)
    cfg: AgentConfig = job.agent.config
    n_seeds, n_envs = len(job.seeds), cfg.num_envs
    per_iter = n_envs * task.action_repeat
    env = BatchEnv(task)  # checks the task before any record says "running"
    device = jax.devices()[0]
    files.start(f"{device.platform}:{getattr(device, 'device_kind', '')}".rstrip(":"))

    capacity = replay_rule.positions_needed(cfg.replay_capacity, n_envs, job.budget, per_iter)
    loop = Loop(task, agent, cfg, n_seeds, n_envs, capacity, job.eval_episodes,
                min(MAX_CHUNK, -(-job.eval_every // per_iter)))
    seeds = jnp.asarray(job.seeds, jnp.int32)
    saved = files.load()
    if saved is None:
        carry, counters = _start(loop, seeds), Counters(next_eval=job.eval_every)
    else:
        carry, counters = _restore(loop, saved, env), saved["counters"]
    shards = files.shards

    pending: list[dict[str, Any]] = []  # agent metrics (S, U) of the updates since the last log
    clock = time.perf_counter()
    window = (clock, counters.env_steps, counters.updates)
    try:
        while counters.env_steps < job.budget:
            target = min(counters.next_eval, job.budget)
            count = min(loop.chunk, -(-(target - counters.env_steps) // per_iter))
            warmup_left = min(max(cfg.warmup_steps - counters.env_steps, 0), loop.chunk * per_iter)
            carry, out = _advance(loop, carry, jnp.int32(warmup_left), jnp.int32(count))
            host: StepOut = jax.device_get(out)  # waits for the chunk
            for i in range(count):
                counters.env_steps += per_iter
                log_episodes(job, shards, np.asarray(host.episode_return[i]).reshape(n_seeds, 1, 1), None,
                             counters.env_steps)
                if host.learned[i]:
                    counters.updates += cfg.updates_per_step
                    pending.append({name: np.asarray(values[i]) for name, values in host.metrics.items()})
                if len(pending) * cfg.updates_per_step >= job.log_every:
                    log_metrics(job, shards, pending, counters.env_steps)
                    pending = []

            tick = time.perf_counter()
            elapsed = max(tick - window[0], 1e-9)
            sps = (counters.env_steps - window[1]) / elapsed
            if eval_due(job, counters):
                counters.wall_s += tick - clock
                clock = tick
                ups = (counters.updates - window[2]) / elapsed
                returns = np.asarray(_evaluate(loop, carry.agent, carry.keys, seeds,
                                               jnp.uint32(counters.env_steps % 2**32)))  # (S, M)
                record_evaluation(job, shards, counters, returns[:, None], None, sps, ups)
                files.save({**_checkpoint(carry), "counters": counters})
                window = (time.perf_counter(), counters.env_steps, counters.updates)
            if progress is not None:
                progress(job.job_id, counters.env_steps, job.budget, sps, counters.last_eval)
    finally:
        shards.close()
    files.finish(counters)


def _checkpoint(carry: Carry) -> dict[str, Any]:
    """The carry on the host, its replay cut to the filled part."""
    size = int(carry.replay.size)
    arrays = {name: np.asarray(getattr(carry.replay, name)[:, :, :size]) for name in replay_rule.ARRAYS}
    rest = {name: getattr(carry, name) for name in Carry._fields if name != "replay"}
    return {"carry": jax.device_get(rest), "replay": arrays, "ptr": int(carry.replay.ptr), "size": size}


def _restore(loop: Loop, saved: dict[str, Any], env: BatchEnv) -> Carry:
    """A carry from a checkpoint (see :func:`_checkpoint`)."""
    replay = _replay(loop, env.observation_size, env.action_size)
    size = saved["size"]
    arrays = {name: getattr(replay, name).at[:, :, :size].set(saved["replay"][name]) for name in replay_rule.ARRAYS}
    filled = replay._replace(**arrays, ptr=jnp.int32(saved["ptr"]), size=jnp.int32(size))
    return Carry(replay=filled, **jax.tree_util.tree_map(jnp.asarray, saved["carry"]))
