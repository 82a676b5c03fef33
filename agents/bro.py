"""BRO (Nauman et al., 2024, "Bigger, Regularized, Optimistic: scaling for compute and
sample-efficient continuous control", NeurIPS).

SAC with a large BroNet critic pair predicting 100 quantiles each (quantile Huber loss, targets
from the critics' mean: no pessimism), AdamW, full parameter resets on a fixed schedule, and
optimistic exploration: a second, optimistic actor shifts the conservative actor's mean to maximise
the upper bound Q_mean + beta * Q_spread under a KL penalty, with beta and the KL weight tuned so
that the KL stays near a target. The conservative actor's mean action is used for evaluation.

Defaults are the authors' (github.com/naumix/BiggerRegularizedOptimistic: ``train_parallel.py``,
``configs/bro_default.py``, ``jaxrl/bro/bro_learner.py``). ``bro`` does 10 updates per step,
``bro_fast`` 2 (with a single reset, as in that code). With several tasks, every network sees the
task's one-hot code after the observation (a multi-task baseline; BRO itself is single-task).

Order: config, networks, state, losses, update, act/init.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from agents.base import Agent, AgentConfig, Batch, Metrics
from agents.common import (
    BroEnsemble,
    BroNet,
    TanhGaussianActor,
    actor_act_dim,
    apply,
    gaussian_kl,
    optimiser_step,
    orthogonal,
    quantile_huber_loss,
    quantile_midpoints,
    select_tree,
    tanh_gaussian_sample,
    task_codes,
    temperature_loss,
    with_task,
)

ADJUST_LOG_MIN, ADJUST_LOG_MAX = -10.0, 7.5
"""Range of the log of the optimism and of the KL weight (tanh-squashed, as in BRO's code)."""

# ----------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class BROConfig(AgentConfig):
    """BRO's published defaults (naumix/BiggerRegularizedOptimistic, ``bro_learner.py`` and
    ``train_parallel.py``)."""

    batch_size: int = 128
    """Transitions per gradient update."""
    updates_per_step: int = 10
    """Gradient updates per environment step (replay ratio)."""
    warmup_steps: int = 2500
    """Environment steps of uniformly random actions before the first update."""
    critic_width: int = 512
    """Width of each BroNet critic."""
    critic_blocks: int = 2
    """Residual blocks of each BroNet critic."""
    actor_width: int = 256
    """Width of the conservative and of the optimistic actor."""
    actor_blocks: int = 1
    """Residual blocks of each actor."""
    num_quantiles: int = 100
    """Quantiles predicted by each of the two critics."""
    huber_kappa: float = 1.0
    """Threshold of the quantile Huber loss."""
    pessimism: float = 0.0
    """Targets and the conservative actor use Q_mean - pessimism * Q_spread; 0 is BRO's choice."""
    actor_lr: float = 3e-4
    """AdamW learning rate of both actors."""
    critic_lr: float = 3e-4
    """AdamW learning rate of the critics."""
    weight_decay: float = 1e-4
    """AdamW weight decay of actors and critics (optax's default, as in BRO's code)."""
    temperature_lr: float = 3e-4
    """Adam (b1 = 0.5) learning rate of the log-temperature."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    target_entropy_scale: float = 0.5
    """Target entropy is -target_entropy_scale * |A|."""
    tau: float = 0.005
    """Polyak averaging rate of the target critics."""
    adjustment_lr: float = 3e-5
    """Adam (b1 = 0.5) learning rate of the optimism and the KL weight."""
    init_optimism: float = 1.0
    """Initial optimism beta of the optimistic actor's upper bound Q_mean + beta * Q_spread."""
    init_kl_weight: float = 0.25
    """Initial weight of the KL penalty between the optimistic and the conservative actor."""
    kl_target: float = 0.05
    """Per-action-dimension KL that the optimism and the KL weight are tuned towards."""
    std_multiplier: float = 0.75
    """The optimistic actor's standard deviation is the conservative one's times this."""
    reset_steps: tuple[int, ...] = (
        15_000, 50_000, 250_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000,
    )
    """Environment steps after which every parameter and optimiser state returns to its initial value."""

    def __post_init__(self) -> None:
        for name in ("critic_width", "actor_width", "num_quantiles"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.critic_blocks < 0 or self.actor_blocks < 0:
            raise ValueError("critic_blocks and actor_blocks must be >= 0")
        for name in ("init_temperature", "std_multiplier", "huber_kappa", "kl_target"):
            if getattr(self, name) <= 0.0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        low, high = math.exp(ADJUST_LOG_MIN), math.exp(ADJUST_LOG_MAX)
        for name in ("init_optimism", "init_kl_weight"):
            if not low < getattr(self, name) < high:
                raise ValueError(f"{name} must be in ({low:.3g}, {high:.3g}), got {getattr(self, name)}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if list(self.reset_steps) != sorted(set(self.reset_steps)):
            raise ValueError(f"reset_steps must be strictly increasing, got {list(self.reset_steps)}")


@dataclass(frozen=True)
class BROFastConfig(BROConfig):
    """BRO (fast): the authors' cheaper setting, 2 updates per step and one reset."""

    updates_per_step: int = 2
    """Gradient updates per environment step (replay ratio)."""
    reset_steps: tuple[int, ...] = (15_000,)
    """Environment steps after which every parameter returns to its initial value."""


# ----------------------------------------------------------------------------------------------
# Networks

class OptimisticShift(nn.Module):
    """The optimistic actor: a BroNet on (obs, conservative mean) outputting a mean shift (..., act).

    The shift layer has no bias and a small orthogonal gain (0.01), so the optimistic actor starts
    at the conservative one.
    """

    act_dim: int
    width: int
    blocks: int

    @nn.compact
    def __call__(self, obs: jax.Array, conservative_mean: jax.Array) -> jax.Array:
        h = BroNet(self.width, self.blocks)(jnp.concatenate([obs, conservative_mean], axis=-1))
        return nn.Dense(self.act_dim, use_bias=False, kernel_init=orthogonal(0.01))(h)


def _nets(cfg: BROConfig, act_dim: int) -> tuple[TanhGaussianActor, OptimisticShift, BroEnsemble]:
    return (
        TanhGaussianActor(act_dim, cfg.actor_width, cfg.actor_blocks),
        OptimisticShift(act_dim, cfg.actor_width, cfg.actor_blocks),
        BroEnsemble(2, cfg.critic_width, cfg.critic_blocks, cfg.num_quantiles),
    )


def adjustment_value(raw: jax.Array) -> jax.Array:
    """exp of the raw parameter squashed by tanh into [ADJUST_LOG_MIN, ADJUST_LOG_MAX]."""
    return jnp.exp(ADJUST_LOG_MIN + 0.5 * (ADJUST_LOG_MAX - ADJUST_LOG_MIN) * (1.0 + jnp.tanh(raw)))


def adjustment_raw(value: float) -> jax.Array:
    """The raw parameter whose :func:`adjustment_value` is ``value`` (the inverse map)."""
    scaled = (math.log(value) - ADJUST_LOG_MIN) / (0.5 * (ADJUST_LOG_MAX - ADJUST_LOG_MIN)) - 1.0
    return jnp.asarray(math.atanh(scaled), jnp.float32)


# ----------------------------------------------------------------------------------------------
# State


class BROLearner(NamedTuple):
    """Everything a full reset restores: parameters, optimiser states and adaptive coefficients."""

    actor: Any
    optimistic: Any
    critic: Any
    target_critic: Any
    log_temperature: jax.Array  # ()
    optimism_raw: jax.Array  # (), see adjustment_value
    kl_weight_raw: jax.Array  # ()
    actor_opt: optax.OptState
    optimistic_opt: optax.OptState
    critic_opt: optax.OptState
    temperature_opt: optax.OptState
    optimism_opt: optax.OptState
    kl_weight_opt: optax.OptState


class BROState(NamedTuple):
    learner: BROLearner
    initial: BROLearner  # the learner as initialised; a reset copies it back (as BRO's code does)
    target_entropy: jax.Array  # ()
    updates: jax.Array  # () int32, updates done
    task_codes: jax.Array  # (T, T) one-hot task codes appended to observations; (1, 0) for one task


class _Optimisers(NamedTuple):
    actor: optax.GradientTransformation
    critic: optax.GradientTransformation
    temperature: optax.GradientTransformation
    adjustment: optax.GradientTransformation


def _optimisers(cfg: BROConfig) -> _Optimisers:
    return _Optimisers(
        actor=optax.adamw(cfg.actor_lr, weight_decay=cfg.weight_decay),
        critic=optax.adamw(cfg.critic_lr, weight_decay=cfg.weight_decay),
        temperature=optax.adam(cfg.temperature_lr, b1=0.5),
        adjustment=optax.adam(cfg.adjustment_lr, b1=0.5),
    )


# ----------------------------------------------------------------------------------------------
# Losses (module level so tests can import them)


def mean_and_spread(q: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and half the absolute difference of two critics' outputs: q (2, ...) -> (...), (...)."""
    return 0.5 * (q[0] + q[1]), 0.5 * jnp.abs(q[0] - q[1])


def critic_target(
    next_q: jax.Array, reward: jax.Array, discount: jax.Array, next_logp: jax.Array,
    temperature: jax.Array, pessimism: float,
) -> jax.Array:
    """Soft quantile targets r + discount * (Q_mean - pessimism * Q_spread - alpha * log pi(a'|s')).

    next_q: (2, B, N) target critics at (s', a' ~ pi); reward, discount, next_logp: (B,). Returns (B, N).
    """
    mean, spread = mean_and_spread(next_q)
    soft_q = mean - pessimism * spread - temperature * next_logp[:, None]
    return reward[:, None] + discount[:, None] * soft_q


def critic_loss(q_pred: jax.Array, target: jax.Array, taus: jax.Array, kappa: float) -> jax.Array:
    """Sum over both critics of the quantile Huber loss; q_pred: (2, B, N), target: (B, N)."""
    return sum((quantile_huber_loss(q, target, taus, kappa) for q in q_pred), jnp.zeros(()))


def actor_loss(q: jax.Array, logp: jax.Array, temperature: jax.Array, pessimism: float) -> jax.Array:
    """E[alpha * log pi(a|s) - Q_lb(s, a)], Q_lb averaged over quantiles; q: (2, B, N), logp: (B,)."""
    mean, spread = mean_and_spread(q)
    return jnp.mean(temperature * logp - jnp.mean(mean - pessimism * spread, axis=-1))


def optimistic_actor_loss(
    q: jax.Array, kl: jax.Array, optimism: jax.Array, kl_weight: jax.Array
) -> jax.Array:
    """-E[Q_mean + beta * Q_spread] + kl_weight * E[KL]; q: (2, B, N) at optimistic actions, kl: (B,)."""
    mean, spread = mean_and_spread(q)
    return -jnp.mean(mean + optimism * spread) + kl_weight * jnp.mean(kl)


def optimism_loss(optimism_raw: jax.Array, kl: jax.Array, kl_target: float, pessimism: float) -> jax.Array:
    """(beta - pessimism) * (KL - KL_target): gradient descent lowers beta while the KL is too large."""
    return (adjustment_value(optimism_raw) - pessimism) * jax.lax.stop_gradient(kl - kl_target)


def kl_weight_loss(kl_weight_raw: jax.Array, kl: jax.Array, kl_target: float) -> jax.Array:
    """-kl_weight * (KL - KL_target): gradient descent raises the KL weight while the KL is too large."""
    return -adjustment_value(kl_weight_raw) * jax.lax.stop_gradient(kl - kl_target)


# ----------------------------------------------------------------------------------------------
# Update


def reset_due(cfg: BROConfig, updates: jax.Array) -> jax.Array:
    """True on the first update after each environment step of ``cfg.reset_steps``.

    Assumes the runner's schedule: the first update follows ``warmup_steps`` environment steps, and
    each further batch of ``updates_per_step`` updates follows one step of the ``num_envs`` envs.
    """
    due = [  # ceil((s - warmup) / num_envs) vectorised steps after the warm-up, times updates per step
        -(-(s - cfg.warmup_steps) // cfg.num_envs) * cfg.updates_per_step
        for s in cfg.reset_steps
        if s > cfg.warmup_steps
    ]
    return jnp.isin(updates, jnp.asarray(due, jnp.int32)) if due else jnp.zeros(jnp.shape(updates), bool)


def update(cfg: BROConfig, state: BROState, batch: Batch, key: jax.Array) -> tuple[BROState, Metrics]:
    """One BRO update: critics, target critics, actor, optimistic actor, temperature, optimism, KL weight."""
    reset = reset_due(cfg, state.updates)
    ln = select_tree(reset, state.initial, state.learner)
    batch = batch._replace(obs=with_task(batch.obs, state.task_codes, batch.task_id),
                           next_obs=with_task(batch.next_obs, state.task_codes, batch.task_id))
    act_dim = batch.action.shape[-1]
    actor, optimistic, critic = _nets(cfg, act_dim)
    opt = _optimisers(cfg)
    taus = quantile_midpoints(cfg.num_quantiles)
    temperature = jnp.exp(ln.log_temperature)
    key_next, key_pi, key_opt = jax.random.split(key, 3)

    # Critics: quantile regression towards the soft targets of the target critics.
    next_mean, next_log_std = apply(actor, ln.actor, batch.next_obs)
    next_action, next_logp = tanh_gaussian_sample(next_mean, next_log_std, key_next)
    next_q = apply(critic, ln.target_critic, batch.next_obs, next_action)  # (2, B, N)
    target = critic_target(next_q, batch.reward, batch.discount, next_logp, temperature, cfg.pessimism)

    def critic_objective(params: Any) -> tuple[jax.Array, jax.Array]:
        q_pred = apply(critic, params, batch.obs, batch.action)  # (2, B, N)
        return critic_loss(q_pred, target, taus, cfg.huber_kappa), q_pred

    (c_loss, q_pred), c_grads = jax.value_and_grad(critic_objective, has_aux=True)(ln.critic)
    critic_params, critic_opt = optimiser_step(opt.critic, c_grads, ln.critic_opt, ln.critic)
    target_critic = optax.incremental_update(critic_params, ln.target_critic, cfg.tau)

    # Conservative actor: maximise the (non-pessimistic) soft value under the updated critics.
    def actor_objective(params: Any) -> tuple[jax.Array, jax.Array]:
        mean, log_std = apply(actor, params, batch.obs)
        action, logp = tanh_gaussian_sample(mean, log_std, key_pi)
        q = apply(critic, critic_params, batch.obs, action)  # (2, B, N)
        return actor_loss(q, logp, temperature, cfg.pessimism), logp

    (a_loss, logp), a_grads = jax.value_and_grad(actor_objective, has_aux=True)(ln.actor)
    actor_params, actor_opt = optimiser_step(opt.actor, a_grads, ln.actor_opt, ln.actor)

    # Optimistic actor: shift the updated conservative mean towards the upper bound, KL-penalised.
    mean_c, log_std_c = jax.lax.stop_gradient(apply(actor, actor_params, batch.obs))
    optimism, kl_weight = adjustment_value(ln.optimism_raw), adjustment_value(ln.kl_weight_raw)

    def optimistic_objective(params: Any) -> tuple[jax.Array, jax.Array]:
        mean_o = mean_c + apply(optimistic, params, batch.obs, mean_c)
        log_std_o = log_std_c + jnp.log(cfg.std_multiplier)
        action, _ = tanh_gaussian_sample(mean_o, log_std_o, key_opt)
        # KL of the optimistic Gaussian with its std divided back by the multiplier, as in BRO's code.
        kl = gaussian_kl(mean_o, jnp.exp(log_std_o) / cfg.std_multiplier, mean_c, jnp.exp(log_std_c))  # (B,)
        q = apply(critic, critic_params, batch.obs, action)
        return optimistic_actor_loss(q, kl, optimism, kl_weight), kl

    (o_loss, kl), o_grads = jax.value_and_grad(optimistic_objective, has_aux=True)(ln.optimistic)
    optimistic_params, optimistic_opt = optimiser_step(opt.actor, o_grads, ln.optimistic_opt, ln.optimistic)

    # Temperature, optimism and KL weight.
    entropy = -jnp.mean(logp)
    t_grad = jax.grad(temperature_loss)(ln.log_temperature, entropy, state.target_entropy)
    log_temperature, temperature_opt = optimiser_step(opt.temperature, t_grad, ln.temperature_opt, ln.log_temperature)
    kl_per_dim = jnp.mean(kl) / act_dim
    b_grad = jax.grad(optimism_loss)(ln.optimism_raw, kl_per_dim, cfg.kl_target, cfg.pessimism)
    optimism_raw, optimism_opt = optimiser_step(opt.adjustment, b_grad, ln.optimism_opt, ln.optimism_raw)
    w_grad = jax.grad(kl_weight_loss)(ln.kl_weight_raw, kl_per_dim, cfg.kl_target)
    kl_weight_raw, kl_weight_opt = optimiser_step(opt.adjustment, w_grad, ln.kl_weight_opt, ln.kl_weight_raw)

    learner = BROLearner(
        actor_params, optimistic_params, critic_params, target_critic, log_temperature, optimism_raw,
        kl_weight_raw, actor_opt, optimistic_opt, critic_opt, temperature_opt, optimism_opt, kl_weight_opt,
    )
    q_mean, q_spread = mean_and_spread(q_pred)
    metrics = {
        "critic_loss": c_loss,
        "actor_loss": a_loss,
        "optimistic_actor_loss": o_loss,
        "temperature": temperature,
        "entropy": entropy,
        "optimism": optimism,
        "kl_weight": kl_weight,
        "kl_per_dim": kl_per_dim,
        "q_mean": jnp.mean(q_mean),
        "q_spread": jnp.mean(q_spread),
        "reset": reset.astype(jnp.float32),
    }
    return BROState(learner, state.initial, state.target_entropy, state.updates + 1, state.task_codes), metrics


# ----------------------------------------------------------------------------------------------
# Acting and initialisation


def act(
    cfg: BROConfig, state: BROState, obs: jax.Array, task_id: jax.Array, key: jax.Array,
    episode_key: jax.Array, deterministic: bool,
) -> jax.Array:
    """Evaluation: the conservative actor's tanh(mean). Exploration: a sample of the optimistic actor."""
    del episode_key
    actor, optimistic, _ = _nets(cfg, actor_act_dim(state.learner.actor))
    obs = with_task(obs, state.task_codes, task_id)
    mean, log_std = apply(actor, state.learner.actor, obs)
    if deterministic:
        return jnp.tanh(mean)
    mean_o = mean + apply(optimistic, state.learner.optimistic, obs, mean)
    action, _ = tanh_gaussian_sample(mean_o, log_std + jnp.log(cfg.std_multiplier), key)
    return action


def init(cfg: BROConfig, key: jax.Array, obs_dim: int, act_dim: int, num_tasks: int) -> BROState:
    """Fresh networks and optimisers; with several tasks the networks also see the task's one-hot code."""
    actor, optimistic, critic = _nets(cfg, act_dim)
    opt = _optimisers(cfg)
    key_actor, key_optimistic, key_critic = jax.random.split(key, 3)
    codes = task_codes(num_tasks)
    obs, action = jnp.zeros((1, obs_dim + codes.shape[1])), jnp.zeros((1, act_dim))
    actor_params = actor.init(key_actor, obs)
    optimistic_params = optimistic.init(key_optimistic, obs, action)
    critic_params = critic.init(key_critic, obs, action)
    log_temperature = jnp.log(jnp.asarray(cfg.init_temperature, jnp.float32))
    optimism_raw, kl_weight_raw = adjustment_raw(cfg.init_optimism), adjustment_raw(cfg.init_kl_weight)
    learner = BROLearner(
        actor=actor_params,
        optimistic=optimistic_params,
        critic=critic_params,
        target_critic=critic_params,
        log_temperature=log_temperature,
        optimism_raw=optimism_raw,
        kl_weight_raw=kl_weight_raw,
        actor_opt=opt.actor.init(actor_params),
        optimistic_opt=opt.actor.init(optimistic_params),
        critic_opt=opt.critic.init(critic_params),
        temperature_opt=opt.temperature.init(log_temperature),
        optimism_opt=opt.adjustment.init(optimism_raw),
        kl_weight_opt=opt.adjustment.init(kl_weight_raw),
    )
    target_entropy = jnp.asarray(-cfg.target_entropy_scale * act_dim, jnp.float32)
    return BROState(learner, learner, target_entropy, jnp.zeros((), jnp.int32), codes)


AGENT = Agent(
    name="bro",
    description="BRO: BroNet quantile critics, optimistic exploration, resets; 10 updates per step.",
    config_cls=BROConfig,
    init=init,
    act=act,
    update=update,
)

AGENT_FAST = Agent(
    name="bro_fast",
    description="BRO (fast): as bro with 2 updates per step and a single reset.",
    config_cls=BROFastConfig,
    init=init,
    act=act,
    update=update,
)
