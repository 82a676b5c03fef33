"""The host backend: simulators stepped by the runner on the CPU, the agent on the JAX device.

A job of S seeds over T tasks steps S x T x E envs in lockstep (E = the agent's ``num_envs`` per
seed and task), env columns task-major: column ``t * E + e`` of a seed is env ``e`` of task ``t``.
The agent states are stacked over seeds and ``act``/``update`` ``jax.vmap``ped over them
(:class:`harness.backends.learner.Learner`); an agent with ``uniform_actions`` has no state, draws its
actions with numpy, and its job loads no JAX. In a
multi-task job observations are zero-padded to the job's largest observation size, the policy acts
in the largest action space and each env takes its own first entries, and every column's task
reaches the agent as its ``task_id``. The simulators of a multi-task job step in worker processes
(:class:`harness.envs.vector.ParallelVecEnv`) unless ``step_workers`` says otherwise.

The update is dispatched before the environments step, so that XLA computes it while the
simulators run; it samples the replay as it was before this step's transitions.

A job of a reward-conditioned manifest (:mod:`harness.conditioning`) steps envs that measure reward
components; a conditioned agent's replay keeps them, its observations carry ψ (ψ* when acting, a
ψ drawn per sampled transition when learning, with the rewards recomputed; a reference agent's
rewards are recomputed for its one ψ, its observations unchanged), and every evaluation also
scores the policy under each named evaluation ψ (:func:`evaluate_psi`). An agent that also learns
from whole training episodes (``observe_episode``) sees them relabelled too: each finished
episode's rewards recomputed for one ψ drawn as its updates draw theirs (:func:`relabel_episodes`).

Resuming is exact: a checkpoint holds the agent states, keys, replay, generator, the pending
agent metrics, the episode keys and rewards, and every env's episode seed and actions so far, from
which the env replays its current episode (:meth:`harness.envs.vector.VecEnv.restore`); a resumed
job continues as if it had never stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import agents
from agents.base import AgentConfig
from harness import catalog, envs
from harness.conditioning import Conditioning
from harness.envs.vector import ParallelVecEnv, VecEnv, Vector, evaluate, evaluate_scored, padded_sizes
from harness.jobs import Job
from harness.lifecycle import (
    Counters,
    JobFiles,
    ProgressFn,
    env_seed,
    episode_keys,
    eval_due,
    eval_env_seed,
    log_episodes,
    log_metrics,
    record_evaluation,
    record_psi_evaluation,
)
from harness.replay import Replay, nbytes, positions_needed
from harness.runfiles import NOMINAL_PSI

if TYPE_CHECKING:
    from harness.backends.learner import Learner

NO_DEVICE = "host"
"""The device recorded for a job whose agent never calls JAX (``uniform_actions``): only the host's
simulators and numpy ran."""
PROGRESS_EVERY_S = 0.25
"""Seconds between two progress reports of a training job (a report costs a message to the coordinator)."""


def train(job: Job, results: Path, progress: ProgressFn | None = None, step_workers: int | None = None) -> None:
    """Train (or resume, or skip if finished) a job; raises if training fails. ``step_workers``:
    processes stepping the simulators (None: one per core for a multi-task job, none for a
    single-task one, whose few envs step faster in this process)."""
    files = JobFiles(job, results)
    if files.finished():
        return
    tasks = [catalog.resolve(name) for name in job.tasks]
    agent = agents.get(job.agent.algo)
    cfg: AgentConfig = job.agent.config
    n_tasks, n_envs = len(tasks), cfg.num_envs
    columns = n_tasks * n_envs
    column_task = np.repeat(np.arange(n_tasks, dtype=np.int32), n_envs)  # (N,)
    workers = ((os.cpu_count() or 1) if n_tasks > 1 else 1) if step_workers is None else step_workers

    # S x N training envs and S x T evaluation envs, seed-major; seeds differ per env and from evaluation's.
    train_specs = [(tasks[c // n_envs], env_seed(seed, c, 0)) for seed in job.seeds for c in range(columns)]
    eval_specs = [(task, eval_env_seed(seed, t)) for seed in job.seeds for t, task in enumerate(tasks)]
    conditioning = Conditioning.of(job)
    measured = 0 if conditioning is None else conditioning.components
    vec = _vector(train_specs, n_tasks > 1, workers, measured if conditioning and conditioning.relabels else 0)
    eval_vec = _vector(eval_specs, n_tasks > 1, workers, measured)
    try:
        if agent.uniform_actions:  # nothing runs on a JAX device
            files.start(NO_DEVICE)
        else:
            from harness.backends.learner import device
            files.start(device())
        _loop(job, files, tasks, agent, cfg, column_task, vec, eval_vec, progress, conditioning)
    finally:
        files.shards.close()
        vec.close()
        eval_vec.close()


def _vector(specs: list[tuple[catalog.Task, int]], pad: bool, workers: int, components: int = 0) -> Vector:
    """The envs of ``specs``, padded to their largest sizes when ``pad``, in ``workers`` processes
    when more than one; measuring reward components (padded to ``components``) when that is not 0."""
    if workers > 1:
        sizes = _sizes({task for task, _ in specs})
        return ParallelVecEnv([(task.name, seed) for task, seed in specs], sizes, workers, components)
    made = [envs.make(task, seed, components > 0) for task, seed in specs]
    return VecEnv(made, padded_sizes(made) if pad else None, components)


def _sizes(tasks: set[catalog.Task]) -> tuple[int, int]:
    """The largest observation and action sizes of ``tasks``, from one env of each."""
    made = [envs.make(task, 0) for task in tasks]
    try:
        return padded_sizes(made)
    finally:
        for env in made:
            env.close()


def _loop(job: Job, files: JobFiles, tasks: list[catalog.Task], agent: agents.Agent[Any, Any], cfg: AgentConfig,
          column_task: np.ndarray, vec: Vector, eval_vec: Vector, progress: ProgressFn | None,
          conditioning: Conditioning | None) -> None:
    n_seeds, n_tasks, columns = len(job.seeds), len(tasks), len(column_task)
    n_envs = columns // n_tasks
    obs_dim, act_dim = vec.observation_size, vec.action_size
    relabel = conditioning if conditioning is not None and conditioning.relabels else None
    width = 0 if relabel is None else relabel.width
    # (repeat, components) of each stored transition, for a conditioned agent's relabelling
    stored = None if relabel is None else (relabel.repeat, relabel.components)
    if relabel is not None:  # ψ* of every training env column, appended to what the policy acts on
        nominal = [relabel.nominal(t) for t in range(n_tasks)]
        acting_psi = np.tile(relabel.inputs(nominal, column_task), (n_seeds, 1))  # (S * N, width)
    steps_per_iter = n_envs * tasks[0].action_repeat
    capacity = positions_needed(cfg.replay_capacity, n_envs, job.budget, steps_per_iter)
    components = 0 if stored is None else stored[0] * stored[1]
    _check_memory(nbytes(n_seeds, columns, capacity, obs_dim, act_dim, components), cfg.replay_capacity, job)
    replay = Replay(n_seeds, column_task, capacity, obs_dim, act_dim, stored)
    rng = np.random.default_rng(list(job.seeds))
    counters = Counters(next_eval=job.eval_every)
    seeds = list(job.seeds)
    longest = max(-(-t.episode_length // t.action_repeat) for t in tasks)
    episodes = EpisodeRewards(n_seeds, columns, longest, () if stored is None else stored)
    saved = files.load()
    if saved is None:
        obs = vec.reset([env_seed(seed, c, 0) for seed in job.seeds for c in range(columns)])
        ep_keys = episode_keys(seeds, np.ones((n_seeds, columns), bool), 0,
                               np.zeros((n_seeds, columns, 2), np.uint32))  # (S, N, 2)
    else:
        replay.restore(saved["replay"])
        rng.bit_generator.state = saved["rng"]
        counters = saved["counters"]
        obs = vec.restore(saved["envs"])
        ep_keys = saved["episode_keys"]
        episodes.rewards, episodes.length = saved["episode_rewards"]
    learner: Learner | None = None  # None: uniform actions, drawn below
    if not agent.uniform_actions:
        from harness.backends.learner import Learner
        learner = Learner(agent, cfg, seeds, obs_dim + width, act_dim, column_task, n_tasks, saved)
    shards = files.shards
    clock = time.perf_counter()
    window = (clock, counters.env_steps, counters.updates)
    reported = clock
    seed_tasks = (n_seeds, n_tasks, n_envs)
    learns = cfg.updates_per_step > 0  # else nothing is stored: the replay would never be sampled

    def per_column(x: np.ndarray) -> np.ndarray:  # (S * N, ...) -> (S, N, ...)
        return x.reshape((n_seeds, columns, *x.shape[1:]))

    ahead: Iterator[np.ndarray] = iter(())  # uniform actions drawn ahead (S * N, act), for an agent without state

    while counters.env_steps < job.budget:
        if learner is None:
            if (action := next(ahead, None)) is None:
                until_eval = -(-(min(counters.next_eval, job.budget) - counters.env_steps) // steps_per_iter)
                ahead = iter(uniform_ahead(rng, until_eval, (n_seeds * columns, act_dim)))
                action = next(ahead)
        elif counters.env_steps < cfg.warmup_steps:
            action = rng.uniform(-1.0, 1.0, (n_seeds * columns, act_dim)).astype(np.float32)
        else:
            acting = obs if relabel is None else relabel.condition(obs, acting_psi)  # (S * N, obs + width)
            action = learner.act(acting.reshape(n_seeds, columns, -1), ep_keys).reshape(n_seeds * columns, act_dim)
        if learner is not None and learns and counters.env_steps >= cfg.warmup_steps and replay.size >= cfg.n_step:
            learner.learn(replay.sample(rng, cfg.updates_per_step, cfg.batch_size, cfg.n_step, cfg.gamma, relabel))
            counters.updates += cfg.updates_per_step
        step = vec.step(action)
        if learns:
            replay.add(per_column(obs), per_column(action), per_column(step.reward), per_column(step.next_obs),
                       per_column(step.terminated), per_column(step.terminated | step.truncated),
                       None if relabel is None or step.components is None else per_column(step.components))
        obs = step.obs
        counters.env_steps += steps_per_iter
        # (S, N) the columns whose episode ended, if any did
        ended = (step.terminated | step.truncated).reshape(n_seeds, columns) if step.ended else None
        if learner is not None and learner.observes:
            if relabel is None:
                episodes.add(step.reward.reshape(n_seeds, columns))
            else:  # a relabelling job keeps the episode's components, relabelled when it ends
                assert step.components is not None
                episodes.add(per_column(step.components))
            if ended is not None:
                truncated = (step.truncated & ~step.terminated).reshape(n_seeds, columns)
                seen, valid = episodes.finished(ended)
                if relabel is not None:
                    seen = relabel_episodes(relabel, rng, seen, column_task)
                learner.observe(seen, valid, truncated, ended)
        if ended is not None:  # episode returns are NaN except where an episode ended
            ep_keys = episode_keys(seeds, ended, counters.env_steps, ep_keys)
            log_episodes(job, shards, step.episode_return.reshape(seed_tasks),
                         step.episode_success.reshape(seed_tasks), counters.env_steps)
        if learner is not None and len(learner.pending) * cfg.updates_per_step >= job.log_every:
            log_metrics(job, shards, learner.take_metrics(), counters.env_steps)

        if eval_due(job, counters):
            tick = time.perf_counter()
            counters.wall_s += tick - clock
            clock = tick
            elapsed = max(tick - window[0], 1e-9)
            sps = (counters.env_steps - window[1]) / elapsed
            ups = (counters.updates - window[2]) / elapsed
            if learner is None:  # its own generator: training's stream is left as it was
                policy = partial(_uniform, np.random.default_rng([*seeds, counters.env_steps]), act_dim)
            else:  # each seed's first columns give the episode keys
                policy = learner.policy(ep_keys[:, :n_tasks])
            per_run = (n_seeds, n_tasks, job.eval_episodes)
            if conditioning is None:
                returns, successes = evaluate(eval_vec, policy, job.eval_episodes, seed=counters.env_steps)
            else:
                returns, successes = evaluate_psi(job, conditioning, eval_vec, policy, counters.env_steps, files)
            record_evaluation(job, shards, counters, returns.reshape(per_run), successes.reshape(per_run), sps, ups)
            files.save({"replay": replay.state(), "rng": rng.bit_generator.state, "counters": counters,
                        "envs": vec.state(), "episode_keys": ep_keys,
                        "episode_rewards": (episodes.rewards, episodes.length),
                        **({} if learner is None else learner.checkpoint())})
            window = (time.perf_counter(), counters.env_steps, counters.updates)
            reported = window[0]
            if progress is not None:
                progress(job.job_id, counters.env_steps, job.budget, sps, counters.last_eval)
        elif progress is not None and (now := time.perf_counter()) - reported >= PROGRESS_EVERY_S:
            reported = now
            elapsed = max(now - window[0], 1e-9)
            progress(job.job_id, counters.env_steps, job.budget, (counters.env_steps - window[1]) / elapsed,
                     counters.last_eval)
    files.finish(counters)


def evaluate_psi(job: Job, conditioning: Conditioning, eval_vec: Vector, policy: Any, step: int,
                 files: JobFiles) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate a job of a reward-conditioned manifest under ψ* and every named evaluation ψ, the
    same episodes (seed ``step``) each time; record the named ψ's returns (scored with r_ψ) and give
    back the nominal ``(returns, successes)`` (S * T, episodes) for :func:`record_evaluation`.

    A conditioned policy is given each ψ in turn (ψ* for the tasks without it); an unconditioned one
    acts the same under every ψ, so one evaluation is scored with all of them."""
    n_seeds, n_tasks = len(job.seeds), len(job.tasks)
    eval_task = np.tile(np.arange(n_tasks), n_seeds)  # (S * T,) seed-major
    held_out = conditioning.settings.labels[1:]
    per_run = (n_seeds, n_tasks, job.eval_episodes)

    def conditioned(label: str) -> Any:
        psis = [conditioning.evaluation(label, t) or conditioning.nominal(t) for t in range(n_tasks)]
        psi_input = conditioning.inputs(psis, eval_task)  # (S * T, width)
        return lambda obs: policy(conditioning.condition(obs, psi_input))

    def has(label: str) -> np.ndarray:  # (T,) whether each task has the named ψ
        return np.array([conditioning.evaluation(label, t) is not None for t in range(n_tasks)])

    if not conditioning.conditioned:
        returns, successes, scored = evaluate_scored(eval_vec, policy, job.eval_episodes, step,
                                                     conditioning.score(held_out, eval_task))
        for j, label in enumerate(held_out):
            assert scored is not None
            record_psi_evaluation(job, files.shards, step, label, scored[..., j].reshape(per_run), has(label))
        return returns, successes
    returns, successes, _ = evaluate_scored(eval_vec, conditioned(NOMINAL_PSI), job.eval_episodes, step, None)
    for label in held_out:
        _, _, scored = evaluate_scored(eval_vec, conditioned(label), job.eval_episodes, step,
                                       conditioning.score((label,), eval_task))
        assert scored is not None
        record_psi_evaluation(job, files.shards, step, label, scored[..., 0].reshape(per_run), has(label))
    return returns, successes


UNIFORM_AHEAD = 65536
"""The most uniform action numbers an agent without state draws at once (0.5 MiB as float64)."""


def uniform_ahead(rng: np.random.Generator, steps: int, shape: tuple[int, int]) -> np.ndarray:
    """Uniform actions in [-1, 1] for the next k <= ``steps`` steps at once, ``(k, *shape)`` float32:
    the values ``k`` draws of ``rng.uniform(-1, 1, shape)`` would give, one call instead of k (numpy's
    per-call cost is most of a random agent's own time per step). A caller that draws no further than
    its next checkpoint leaves ``rng`` where step-by-step draws would, so resuming is unchanged."""
    k = max(1, min(steps, UNIFORM_AHEAD // (shape[0] * shape[1])))
    return rng.uniform(-1.0, 1.0, (k, *shape)).astype(np.float32)


def _uniform(draws: np.random.Generator, act_dim: int, obs: np.ndarray) -> np.ndarray:
    """Uniform actions (n, act) in [-1, 1] for observations (n, obs): the evaluation policy of an
    agent with ``uniform_actions``."""
    return draws.uniform(-1.0, 1.0, (obs.shape[0], act_dim))


def _check_memory(needed: int, capacity: int, job: Job) -> None:
    """A clear error, before anything is allocated, when the replay cannot fit in this machine's memory."""
    available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    if needed > available:
        raise MemoryError(
            f"the replay of {len(job.seeds)} seed(s) x {len(job.tasks)} task(s) needs {needed / 2**30:.1f} GiB "
            f"(replay_capacity {capacity:,} transitions per seed and task) and this machine has "
            f"{available / 2**30:.1f} GiB: lower replay_capacity, the seeds or the tasks of a job")


class EpisodeRewards:
    """The rewards of each (seed, env column)'s current training episode, for agents that observe
    episodes; or, with a ``step`` shape, whatever each step gives of that shape (a relabelling job's
    reward components (repeat, components))."""

    def __init__(self, seeds: int, num_envs: int, max_length: int, step: tuple[int, ...] = ()) -> None:
        # (S, N, T, *step), T grows if needed
        self.rewards = np.zeros((seeds, num_envs, max(1, max_length), *step), np.float32)
        self.length = np.zeros((seeds, num_envs), np.int64)  # (S, N) steps of the current episode so far

    def add(self, reward: np.ndarray) -> None:
        """Append one step's rewards (S, N, *step)."""
        if self.length.max() >= self.rewards.shape[2]:  # an episode longer than the catalog says
            self.rewards = np.concatenate([self.rewards, np.zeros_like(self.rewards)], axis=2)
        s, e = np.indices(self.length.shape)
        self.rewards[s, e, self.length] = reward
        self.length += 1

    def finished(self, ended: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rewards (S, N, T, *step), valid (S, N, T)) of all columns; the ``ended`` (S, N) ones start over."""
        valid = np.arange(self.rewards.shape[2]) < self.length[..., None]
        extra = (1,) * (self.rewards.ndim - 3)
        rewards = np.where(valid.reshape(valid.shape + extra), self.rewards, 0.0).astype(np.float32)
        self.length[ended] = 0
        return rewards, valid


def relabel_episodes(relabel: Conditioning, rng: np.random.Generator, components: np.ndarray,
                     column_task: np.ndarray) -> np.ndarray:
    """The rewards (S, N, T) of training episodes from their components (S, N, T, repeat, components):
    each (seed, column)'s episode relabelled with one ψ drawn as an update draws a transition's (a
    reference agent: its ψ), so that an agent's episode statistics see the rewards its updates see."""
    n_seeds, columns, length = components.shape[:3]
    task = np.broadcast_to(column_task, (n_seeds, columns))  # (S, N)
    psis, _ = relabel.draw(rng, task)  # per task: values (S, N), or numbers
    per_episode = [{k: np.asarray(v)[..., None] for k, v in psi.items()} for psi in psis]  # (S, N, 1) or (1,)
    steps = np.broadcast_to(task[..., None], (n_seeds, columns, length))  # (S, N, T)
    return relabel.reward(per_episode, steps, components).astype(np.float32)
