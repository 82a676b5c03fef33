"""Soft Actor-Critic (Haarnoja et al., 2018, "Soft Actor-Critic Algorithms and Applications").

Twin critics with clipped double-Q targets, a tanh-squashed Gaussian actor, and a temperature
learned towards a target entropy of -|A|. With several tasks, actor and critics see the task's
one-hot code after the observation (a plain multi-task baseline). Defaults follow the paper's Table 1 (Adam, learning
rate 3e-4, batch 256, two hidden layers of 256, tau 0.005, gamma 0.99, one update per step).

Order: config, networks, state, losses, update, act/init.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from agents.base import Agent, AgentConfig, Batch, Metrics
from agents.common import task_codes, with_task

# ----------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class SACConfig(AgentConfig):
    """SAC's published defaults (Haarnoja et al., 2018, Table 1)."""

    hidden_dims: tuple[int, ...] = (256, 256)
    """Widths of the hidden layers of the actor and of each critic."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    temperature_lr: float = 3e-4
    """Adam learning rate of the log-temperature."""
    init_temperature: float = 1.0
    """Initial entropy temperature alpha."""
    target_entropy_scale: float = 1.0
    """Target entropy is -target_entropy_scale * |A|."""
    tau: float = 0.005
    """Polyak averaging rate of the target critics."""
    batch_size: int = 256
    """Transitions per gradient update."""
    warmup_steps: int = 5000
    """Environment steps of uniformly random actions before learning starts."""


# ----------------------------------------------------------------------------------------------
# Networks

LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


class MLP(nn.Module):
    hidden_dims: tuple[int, ...]
    out_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_dims:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.out_dim)(x)


class Actor(nn.Module):
    """Outputs the mean and log-std of a Gaussian that is squashed by tanh."""

    hidden_dims: tuple[int, ...]
    act_dim: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        out = MLP(self.hidden_dims, 2 * self.act_dim)(obs)
        mean, log_std = jnp.split(out, 2, axis=-1)  # (..., act) each
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(log_std) + 1.0)
        return mean, log_std


class TwinCritic(nn.Module):
    """Two independent Q networks; returns Q-values of shape (2, ...)."""

    hidden_dims: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        q1 = MLP(self.hidden_dims, 1)(x)[..., 0]
        q2 = MLP(self.hidden_dims, 1)(x)[..., 0]
        return jnp.stack([q1, q2])  # (2, ...)


def sample_action(
    mean: jax.Array, log_std: jax.Array, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """A tanh-squashed Gaussian sample and its log-probability (with the tanh correction)."""
    std = jnp.exp(log_std)
    noise = jax.random.normal(key, mean.shape)
    pre_tanh = mean + std * noise  # (..., act)
    action = jnp.tanh(pre_tanh)
    gaussian_logp = -0.5 * (noise**2 + 2.0 * log_std + jnp.log(2.0 * jnp.pi))
    # log(1 - tanh(u)^2) written stably as 2 * (log 2 - u - softplus(-2u)).
    correction = 2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return action, jnp.sum(gaussian_logp - correction, axis=-1)


# ----------------------------------------------------------------------------------------------
# State


Params = Any  # a flax parameter tree


class SACState(NamedTuple):
    actor_params: Params
    critic_params: Params
    target_critic_params: Params
    log_temperature: jax.Array  # ()
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    temperature_opt: optax.OptState
    target_entropy: jax.Array  # ()
    steps: jax.Array  # () int32, updates done
    task_codes: jax.Array  # (T, T) one-hot task codes appended to observations; (1, 0) for one task


def _nets(cfg: SACConfig, act_dim: int) -> tuple[Actor, TwinCritic]:
    return Actor(cfg.hidden_dims, act_dim), TwinCritic(cfg.hidden_dims)


def _policy(actor: Actor, params: Params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    return cast(tuple[jax.Array, jax.Array], actor.apply(params, obs))


def _q(critic: TwinCritic, params: Params, obs: jax.Array, action: jax.Array) -> jax.Array:
    return cast(jax.Array, critic.apply(params, obs, action))


# ----------------------------------------------------------------------------------------------
# Losses (module level so tests can import them)


def critic_loss(
    q_pred: jax.Array, reward: jax.Array, discount: jax.Array, next_q: jax.Array,
    next_logp: jax.Array, temperature: jax.Array,
) -> jax.Array:
    """Mean squared TD error of both critics against the clipped double-Q soft target.

    q_pred: (2, B) both critics at (s, a); next_q: (2, B) target critics at (s', a' ~ pi);
    next_logp: (B,) log pi(a'|s'). target = r + discount * (min(next_q) - alpha * next_logp).
    """
    target = reward + discount * (jnp.min(next_q, axis=0) - temperature * next_logp)  # (B,)
    target = jax.lax.stop_gradient(target)
    return jnp.mean(jnp.sum((q_pred - target[None]) ** 2, axis=0)) * 0.5


def actor_loss(q: jax.Array, logp: jax.Array, temperature: jax.Array) -> jax.Array:
    """E[alpha * log pi(a|s) - min(Q1, Q2)(s, a)] with a ~ pi; q: (2, B), logp: (B,)."""
    return jnp.mean(temperature * logp - jnp.min(q, axis=0))


def temperature_loss(log_temperature: jax.Array, logp: jax.Array, target_entropy: jax.Array) -> jax.Array:
    """-E[log alpha * (log pi + target entropy)]: raises alpha when entropy is below target."""
    return -jnp.mean(log_temperature * jax.lax.stop_gradient(logp + target_entropy))


# ----------------------------------------------------------------------------------------------
# Update


def update(cfg: SACConfig, state: SACState, batch: Batch, key: jax.Array) -> tuple[SACState, Metrics]:
    """One gradient step on critics, actor and temperature (one seed; the runner vmaps)."""
    actor, critic = _nets(cfg, batch.action.shape[-1])
    batch = batch._replace(obs=with_task(batch.obs, state.task_codes, batch.task_id),
                           next_obs=with_task(batch.next_obs, state.task_codes, batch.task_id))
    key_next, key_pi = jax.random.split(key)
    temperature = jnp.exp(state.log_temperature)

    next_mean, next_log_std = _policy(actor, state.actor_params, batch.next_obs)
    next_action, next_logp = sample_action(next_mean, next_log_std, key_next)
    next_q = _q(critic, state.target_critic_params, batch.next_obs, next_action)  # (2, B)

    def critic_objective(params: Params) -> tuple[jax.Array, jax.Array]:
        q_pred = _q(critic, params, batch.obs, batch.action)  # (2, B)
        return critic_loss(q_pred, batch.reward, batch.discount, next_q, next_logp, temperature), q_pred

    (c_loss, q_pred), c_grads = jax.value_and_grad(critic_objective, has_aux=True)(state.critic_params)
    c_updates, critic_opt = optax.adam(cfg.critic_lr).update(c_grads, state.critic_opt)
    critic_params = optax.apply_updates(state.critic_params, c_updates)

    def actor_objective(params: Params) -> tuple[jax.Array, jax.Array]:
        mean, log_std = _policy(actor, params, batch.obs)
        action, logp = sample_action(mean, log_std, key_pi)
        q = _q(critic, critic_params, batch.obs, action)
        return actor_loss(q, logp, temperature), logp

    (a_loss, logp), a_grads = jax.value_and_grad(actor_objective, has_aux=True)(state.actor_params)
    a_updates, actor_opt = optax.adam(cfg.actor_lr).update(a_grads, state.actor_opt)
    actor_params = optax.apply_updates(state.actor_params, a_updates)

    t_loss, t_grad = jax.value_and_grad(temperature_loss)(state.log_temperature, logp, state.target_entropy)
    t_update, temperature_opt = optax.adam(cfg.temperature_lr).update(t_grad, state.temperature_opt)
    log_temperature = optax.apply_updates(state.log_temperature, t_update)

    target_critic_params = optax.incremental_update(critic_params, state.target_critic_params, cfg.tau)
    new_state = SACState(
        actor_params, critic_params, target_critic_params, log_temperature, actor_opt, critic_opt,
        temperature_opt, state.target_entropy, state.steps + 1, state.task_codes,
    )
    metrics = {
        "critic_loss": c_loss,
        "actor_loss": a_loss,
        "temperature_loss": t_loss,
        "temperature": temperature,
        "entropy": -jnp.mean(logp),
        "q_mean": jnp.mean(q_pred),
        "critic_grad_norm": optax.global_norm(c_grads),
        "actor_grad_norm": optax.global_norm(a_grads),
    }
    return new_state, metrics


# ----------------------------------------------------------------------------------------------
# Acting and initialisation


def act(
    cfg: SACConfig, state: SACState, obs: jax.Array, task_id: jax.Array, key: jax.Array,
    episode_key: jax.Array, deterministic: bool,
) -> jax.Array:
    """tanh(mean) when deterministic (evaluation), else a sample from the squashed Gaussian."""
    del episode_key
    actor = Actor(cfg.hidden_dims, _act_dim(state.actor_params))
    mean, log_std = _policy(actor, state.actor_params, with_task(obs, state.task_codes, task_id))
    if deterministic:
        return jnp.tanh(mean)
    action, _ = sample_action(mean, log_std, key)
    return action


def _act_dim(actor_params: Params) -> int:
    """The action size, read from the shape of the actor's output layer (mean and log-std)."""
    last = jax.tree_util.tree_leaves(actor_params)[-1]  # the output layer's kernel, (hidden, 2 * act)
    return int(last.shape[-1]) // 2


def init(cfg: SACConfig, key: jax.Array, obs_dim: int, act_dim: int, num_tasks: int) -> SACState:
    actor, critic = _nets(cfg, act_dim)
    key_actor, key_critic = jax.random.split(key)
    codes = task_codes(num_tasks)
    obs = jnp.zeros((1, obs_dim + codes.shape[1]))
    action = jnp.zeros((1, act_dim))
    actor_params = actor.init(key_actor, obs)
    critic_params = critic.init(key_critic, obs, action)
    log_temperature = jnp.log(jnp.asarray(cfg.init_temperature, jnp.float32))
    return SACState(
        actor_params=actor_params,
        critic_params=critic_params,
        target_critic_params=critic_params,
        log_temperature=log_temperature,
        actor_opt=optax.adam(cfg.actor_lr).init(actor_params),
        critic_opt=optax.adam(cfg.critic_lr).init(critic_params),
        temperature_opt=optax.adam(cfg.temperature_lr).init(log_temperature),
        target_entropy=jnp.asarray(-cfg.target_entropy_scale * act_dim, jnp.float32),
        steps=jnp.zeros((), jnp.int32),
        task_codes=codes,
    )


AGENT = Agent(
    name="sac",
    description="Soft Actor-Critic: twin critics, tanh-Gaussian actor, learned temperature.",
    config_cls=SACConfig,
    init=init,
    act=act,
    update=update,
)

