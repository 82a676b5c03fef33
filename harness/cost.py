"""What a job's updates cost on this machine, estimated before it runs, so that a plan which puts a
GPU-sized agent on a CPU says so up front instead of leaving a user waiting blind.

The floating-point operations of one update of all a job's seeds come from XLA's cost analysis of the
update's program, traced with abstract shapes (nothing is allocated, compiled or run); the machine's
rate is measured with a dense float32 matrix product. Real updates are slower than that rate (small
matrices, memory traffic), so the estimate is a lower bound on the time.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

import agents
from agents.base import Batch
from harness.jobs import AgentSpec, Job

NOMINAL_SIZES = (64, 8)
"""Observation and action sizes assumed when a task's are not known: the hidden layers of a network
sized for a GPU dominate its cost whatever the task's sizes."""
WARN_AFTER_S = 3600.0
"""A job whose updates would take longer than this (at the estimate) gets a warning."""
FAST_RATE = 1e12
"""Float32 operations per second faster than any CPU: the screen that skips the estimate of jobs that
cannot take long."""


@dataclass(frozen=True)
class Estimate:
    """The updates of one job at the machine's measured rate."""

    label: str
    flops_per_update: float
    """One gradient update of every seed of the job."""
    updates: int
    """Gradient updates in the job: (budget - warm-up) / envs per step x updates per step."""
    rate: float
    """Measured float32 operations per second of this machine."""

    @property
    def seconds_per_update(self) -> float:
        return self.flops_per_update / self.rate

    @property
    def seconds(self) -> float:
        return self.updates * self.seconds_per_update


def update_flops(spec: AgentSpec, seeds: int, obs: int, act: int, tasks: int) -> float:
    """Floating-point operations of one update of ``seeds`` stacked agent states (XLA's count)."""
    agent, cfg = agents.get(spec.algo), spec.config
    state = jax.eval_shape(lambda key: agent.init(cfg, key, obs, act, tasks), jax.random.PRNGKey(0))
    stacked = jax.tree.map(lambda x: jax.ShapeDtypeStruct((seeds, *x.shape), x.dtype), state)

    def shape(*dims: int, dtype: Any = jnp.float32) -> Any:  # an abstract array where update takes one
        return jax.ShapeDtypeStruct((seeds, cfg.batch_size, *dims), dtype)

    batch = Batch(obs=shape(obs), action=shape(act), reward=shape(), discount=shape(), next_obs=shape(obs),
                  task_id=shape(dtype=jnp.int32))
    keys = jax.ShapeDtypeStruct((seeds, 2), jnp.uint32)
    lowered = jax.jit(jax.vmap(functools.partial(agent.update, cfg))).lower(stacked, batch, keys)
    analysis = lowered.cost_analysis()  # None where the backend cannot count
    return float(analysis["flops"]) if analysis else 0.0


def machine_rate(seconds: float = 0.2) -> float:
    """Float32 operations per second of a jitted 1024 x 1024 matrix product on JAX's default device."""
    x = jnp.ones((1024, 1024), jnp.float32)
    product = jax.jit(lambda a: a @ a)
    product(x).block_until_ready()  # compiled
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product(x).block_until_ready()
        count += 1
    return 2 * 1024**3 * count / (time.perf_counter() - start)


def updates(job: Job) -> int:
    """Gradient updates of the job: one batch of ``updates_per_step`` per vector step after the warm-up."""
    cfg = job.agent.config
    return -(-max(job.budget - cfg.warmup_steps, 0) // cfg.num_envs) * cfg.updates_per_step


def may_take_long(job: Job, sizes: tuple[int, int]) -> bool:
    """A cheap screen: could the job's updates take longer than :data:`WARN_AFTER_S` on any CPU? Its
    bound, 6 operations per batch row for every float of the agent's state (parameters, targets and
    optimiser moments: more than a forward and backward pass of every network) at :data:`FAST_RATE`."""
    agent, cfg = agents.get(job.agent.algo), job.agent.config
    state = jax.eval_shape(lambda key: agent.init(cfg, key, *sizes, len(job.tasks)), jax.random.PRNGKey(0))
    floats = sum(leaf.size for leaf in jax.tree.leaves(state))
    bound = 6.0 * floats * cfg.batch_size * len(job.seeds) * updates(job)
    return bound / FAST_RATE > WARN_AFTER_S


def estimate(job: Job, sizes: tuple[int, int], rate: float) -> Estimate:
    """The cost of ``job``'s updates (task sizes ``(obs, act)``) at ``rate``."""
    count = updates(job)
    flops = update_flops(job.agent, len(job.seeds), *sizes, len(job.tasks)) if count else 0.0
    return Estimate(job.agent.label, flops, count, rate)


def duration(seconds: float) -> str:
    """``3.2 days``, ``5.1 hours``, ``12 minutes``, ``40 s``."""
    for unit, size in (("years", 365 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def warning(found: Estimate) -> str:
    """The line a plan prints for a job whose updates would take longer than :data:`WARN_AFTER_S`."""
    return (f"{found.label}: one update of a job's seeds is {found.flops_per_update / 1e9:,.1f} GFLOP, at least "
            f"{found.seconds_per_update:.2g} s on this machine ({found.rate / 1e9:.0f} GFLOP/s measured), so a "
            f"job's {found.updates:,} updates would take at least {duration(found.seconds)}, and no GPU is visible: "
            "run it where there is one, shrink its networks (`harness agents` lists its keys) or lower the budget.")
