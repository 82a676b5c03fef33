"""BRC (Nauman et al., 2025, "Bigger, Regularized, Categorical: High-Capacity Value Functions are
Efficient Multi-Task Learners").

SAC with an ensemble of two wide BroNet critics that predict categorical value distributions
(101 bins on [-10, 10]) trained by cross-entropy against a C51-style projected soft target built
from the ensemble's mean next-state distribution; the actor maximises the expected value under that
mean distribution. Rewards are divided per task by a return scale (the largest absolute discounted
return seen on the task, plus the entropy bonus's scale) so that values fit the fixed support.
With several tasks, learnable L2-normalised task embeddings (dimension 32) condition the critics
and, through the critic's embeddings, the actor.

Defaults are the authors' single-task settings (github.com/naumix/BiggerRegularizedCategorical:
``train.py``, ``jaxrl/agent/brc_learner.py``, ``jaxrl/agent/update.py``, ``jaxrl/normalizer.py``).

Order: config, networks, state, losses, update, act/init.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from agents.base import Agent, AgentConfig, Batch, Metrics
from agents.common import (
    BroEnsemble,
    TanhGaussianActor,
    actor_act_dim,
    apply,
    categorical_cross_entropy,
    categorical_mean,
    categorical_projection,
    optimiser_step,
    support,
    tanh_gaussian_sample,
    temperature_loss,
)

# ----------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class BRCConfig(AgentConfig):
    """BRC's published single-task defaults (naumix/BiggerRegularizedCategorical, ``train.py`` and
    ``brc_learner.py``); the authors' multi-task runs use ``batch_size=1024``."""

    batch_size: int = 256
    """Transitions per gradient update (1024 in the authors' multi-task runs)."""
    updates_per_step: int = 2
    """Gradient updates per environment step (replay ratio)."""
    warmup_steps: int = 5000
    """Environment steps of uniformly random actions before the first update."""
    critic_width: int = 4096
    """Width of each BroNet critic."""
    critic_blocks: int = 2
    """Residual blocks of each BroNet critic."""
    ensemble_size: int = 2
    """Critics in the ensemble."""
    actor_width: int = 256
    """Width of the BroNet actor."""
    actor_blocks: int = 1
    """Residual blocks of the actor."""
    num_bins: int = 101
    """Atoms of the categorical value distribution."""
    v_max: float = 10.0
    """The support is [-v_max, v_max]; normalised rewards keep discounted returns within it."""
    embedding_dim: int = 32
    """Size of the L2-normalised task embeddings (used when there is more than one task)."""
    actor_lr: float = 3e-4
    """AdamW learning rate of the actor."""
    critic_lr: float = 3e-4
    """AdamW learning rate of the critics and task embeddings."""
    weight_decay: float = 1e-4
    """AdamW weight decay (optax's default, as in BRC's code)."""
    temperature_lr: float = 3e-4
    """Adam (b1 = 0.5) learning rate of the log-temperature."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha."""
    target_entropy_scale: float = 0.5
    """Target entropy is -target_entropy_scale * |A|."""
    tau: float = 0.005
    """Polyak averaging rate of the target critics."""

    def __post_init__(self) -> None:
        for name in ("critic_width", "actor_width", "ensemble_size", "embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_bins < 2:
            raise ValueError(f"num_bins must be at least 2, got {self.num_bins}")
        if self.v_max <= 0.0 or self.init_temperature <= 0.0:
            raise ValueError("v_max and init_temperature must be positive")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"gamma must be in (0, 1) (the return scale uses 1 / (1 - gamma)), got {self.gamma}")


@dataclass(frozen=True)
class BRCMultiTaskConfig(BRCConfig):
    """BRC's published multi-task settings (``train.py``: batch 1024, 2 updates per lockstep step of
    all tasks, 5k warm-up, a replay of 1M transitions per task; width 4096, 2 critics, 101 bins)."""

    batch_size: int = 1024
    """Transitions per gradient update, drawn uniformly over every task's stored transitions."""


# ----------------------------------------------------------------------------------------------
# Networks


class Critic(nn.Module):
    """The critic ensemble on (obs, action[, task embedding]); logits (E, ..., bins).

    With one task there is no embedding (as in BRC's code); with several, ``embed`` gives the
    L2-normalised embedding of a task id, which the actor also reads.
    """

    num_tasks: int
    embedding_dim: int
    ensemble_size: int
    width: int
    blocks: int
    num_bins: int

    def setup(self) -> None:
        if self.num_tasks > 1:
            self.embedding = nn.Embed(self.num_tasks, self.embedding_dim)
        self.ensemble = BroEnsemble(self.ensemble_size, self.width, self.blocks, self.num_bins)

    def embed(self, task_id: jax.Array) -> jax.Array:
        e = self.embedding(task_id)  # (..., embedding_dim)
        return e / jnp.linalg.norm(e, axis=-1, keepdims=True)

    def __call__(self, obs: jax.Array, action: jax.Array, task_id: jax.Array) -> jax.Array:
        if self.num_tasks > 1:
            return self.ensemble(obs, action, self.embed(task_id))
        return self.ensemble(obs, action)


def _nets(cfg: BRCConfig, act_dim: int, num_tasks: int) -> tuple[TanhGaussianActor, Critic]:
    return (
        TanhGaussianActor(act_dim, cfg.actor_width, cfg.actor_blocks),
        Critic(num_tasks, cfg.embedding_dim, cfg.ensemble_size, cfg.critic_width, cfg.critic_blocks, cfg.num_bins),
    )


def _actor_input(critic: Critic, critic_params: Any, obs: jax.Array, task_id: jax.Array) -> jax.Array:
    """The observation, followed by the critic's task embedding when there are several tasks."""
    if critic.num_tasks == 1:
        return obs
    embedding = apply(critic, critic_params, task_id, method=Critic.embed)
    return jnp.concatenate([obs, jax.lax.stop_gradient(embedding)], axis=-1)


# ----------------------------------------------------------------------------------------------
# State


class BRCState(NamedTuple):
    actor: Any
    critic: Any
    target_critic: Any
    log_temperature: jax.Array  # ()
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    temperature_opt: optax.OptState
    return_min: jax.Array  # (tasks,) smallest discounted return seen per task; +inf before any episode
    return_max: jax.Array  # (tasks,) largest discounted return seen per task; -inf before any episode
    target_entropy: jax.Array  # ()
    updates: jax.Array  # () int32, updates done


class _Optimisers(NamedTuple):
    actor: optax.GradientTransformation
    critic: optax.GradientTransformation
    temperature: optax.GradientTransformation


def _optimisers(cfg: BRCConfig) -> _Optimisers:
    return _Optimisers(
        actor=optax.adamw(cfg.actor_lr, weight_decay=cfg.weight_decay),
        critic=optax.adamw(cfg.critic_lr, weight_decay=cfg.weight_decay),
        temperature=optax.adam(cfg.temperature_lr, b1=0.5),
    )


def _num_tasks(critic_params: Any) -> int:
    """Tasks the critic was built for: the rows of its embedding table (1 when it has none)."""
    table = critic_params["params"].get("embedding")
    return 1 if table is None else int(table["embedding"].shape[0])


# ----------------------------------------------------------------------------------------------
# Losses and return statistics (module level so tests can import them)


def reward_scale(
    cfg: BRCConfig, return_min: jax.Array, return_max: jax.Array, temperature: jax.Array,
    target_entropy: jax.Array,
) -> jax.Array:
    """Per-task divisor of rewards: (max(|G_min|, G_max) - alpha * H * target_entropy / 2) / v_max.

    G_min, G_max: (tasks,) extreme discounted returns seen; H = 1 / (1 - gamma) is the effective
    horizon (the second term is the scale of the soft entropy bonus). A task without any finished
    episode keeps its rewards as they are (divisor 1).
    """
    horizon = 1.0 / (1.0 - cfg.gamma)
    largest = jnp.maximum(return_max, jnp.abs(return_min))  # (tasks,)
    scale = (largest - temperature * horizon * target_entropy / 2.0) / cfg.v_max
    return jnp.where(jnp.isfinite(largest), scale, 1.0)


def episode_return_range(
    rewards: jax.Array, valid: jax.Array, truncated: jax.Array, gamma: float
) -> tuple[jax.Array, jax.Array]:
    """Smallest and largest discounted return-to-go over the steps of one finished episode.

    rewards, valid: (T,), the episode's rewards padded after its end (valid marks real steps);
    truncated: () whether it ended by a time limit, in which case the return after the last step is
    bootstrapped as mean reward / (1 - gamma). Returns (+inf, -inf) for an empty episode.
    """
    count = jnp.sum(valid)
    mean_reward = jnp.sum(jnp.where(valid, rewards, 0.0)) / jnp.maximum(count, 1)
    bootstrap = jnp.where(truncated, mean_reward / (1.0 - gamma), 0.0)

    def backward(following: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        reward, real = step
        value = jnp.where(real, reward + gamma * following, following)
        return value, value

    _, values = jax.lax.scan(backward, bootstrap, (rewards, valid), reverse=True)  # (T,)
    return jnp.min(jnp.where(valid, values, jnp.inf)), jnp.max(jnp.where(valid, values, -jnp.inf))


def observe_episode(
    cfg: BRCConfig, state: BRCState, rewards: jax.Array, valid: jax.Array, truncated: jax.Array,
    task_id: jax.Array,
) -> BRCState:
    """Fold one finished training episode of task ``task_id`` into the per-task return range.

    rewards, valid: (T,) padded episode rewards and their mask; truncated, task_id: ().
    """
    low, high = episode_return_range(rewards, valid, truncated, cfg.gamma)
    return state._replace(
        return_min=state.return_min.at[task_id].min(low), return_max=state.return_max.at[task_id].max(high)
    )


def critic_target(
    next_logits: jax.Array, reward: jax.Array, discount: jax.Array, next_logp: jax.Array,
    temperature: jax.Array, v_max: float,
) -> jax.Array:
    """Projected soft target distribution (B, K) from the ensemble's mean next-state distribution.

    next_logits: (E, B, K) target critics at (s', a' ~ pi); atom z moves to
    r + discount * (z - alpha * log pi(a'|s')) and is projected back onto the support.
    """
    next_probs = jnp.mean(jax.nn.softmax(next_logits, axis=-1), axis=0)  # (B, K)
    atoms = support(-v_max, v_max, next_logits.shape[-1])
    moved = reward[:, None] + discount[:, None] * (atoms[None] - temperature * next_logp[:, None])
    return categorical_projection(moved, next_probs, -v_max, v_max)


def critic_loss(logits: jax.Array, target_probs: jax.Array) -> jax.Array:
    """Cross-entropy to the target, averaged over the batch and summed over critics; logits (E, B, K)."""
    return jnp.sum(jnp.mean(categorical_cross_entropy(logits, target_probs[None]), axis=-1))


def actor_loss(logits: jax.Array, logp: jax.Array, temperature: jax.Array, v_max: float) -> jax.Array:
    """E[alpha * log pi(a|s) - Q(s, a)], Q the mean of the ensemble's mean distribution; logits (E, B, K)."""
    probs = jnp.mean(jax.nn.softmax(logits, axis=-1), axis=0)  # (B, K)
    q = categorical_mean(probs, support(-v_max, v_max, logits.shape[-1]))  # (B,)
    return jnp.mean(temperature * logp - q)


# ----------------------------------------------------------------------------------------------
# Update


def update(cfg: BRCConfig, state: BRCState, batch: Batch, key: jax.Array) -> tuple[BRCState, Metrics]:
    """One BRC update: critics (with task embeddings), target critics, actor, temperature."""
    actor, critic = _nets(cfg, batch.action.shape[-1], _num_tasks(state.critic))
    opt = _optimisers(cfg)
    temperature = jnp.exp(state.log_temperature)
    key_next, key_pi = jax.random.split(key)
    scale = reward_scale(cfg, state.return_min, state.return_max, temperature, state.target_entropy)
    reward = batch.reward / scale[batch.task_id]  # (B,)

    next_input = _actor_input(critic, state.critic, batch.next_obs, batch.task_id)
    next_mean, next_log_std = apply(actor, state.actor, next_input)
    next_action, next_logp = tanh_gaussian_sample(next_mean, next_log_std, key_next)
    next_logits = apply(critic, state.target_critic, batch.next_obs, next_action, batch.task_id)
    target = critic_target(next_logits, reward, batch.discount, next_logp, temperature, cfg.v_max)

    def critic_objective(params: Any) -> tuple[jax.Array, jax.Array]:
        logits = apply(critic, params, batch.obs, batch.action, batch.task_id)  # (E, B, K)
        return critic_loss(logits, target), logits

    (c_loss, logits), c_grads = jax.value_and_grad(critic_objective, has_aux=True)(state.critic)
    critic_params, critic_opt = optimiser_step(opt.critic, c_grads, state.critic_opt, state.critic)
    target_critic = optax.incremental_update(critic_params, state.target_critic, cfg.tau)

    obs_input = _actor_input(critic, state.critic, batch.obs, batch.task_id)

    def actor_objective(params: Any) -> tuple[jax.Array, jax.Array]:
        mean, log_std = apply(actor, params, obs_input)
        action, logp = tanh_gaussian_sample(mean, log_std, key_pi)
        q_logits = apply(critic, critic_params, batch.obs, action, batch.task_id)
        return actor_loss(q_logits, logp, temperature, cfg.v_max), logp

    (a_loss, logp), a_grads = jax.value_and_grad(actor_objective, has_aux=True)(state.actor)
    actor_params, actor_opt = optimiser_step(opt.actor, a_grads, state.actor_opt, state.actor)

    entropy = -jnp.mean(logp)
    t_grad = jax.grad(temperature_loss)(state.log_temperature, entropy, state.target_entropy)
    log_temperature, temperature_opt = optimiser_step(
        opt.temperature, t_grad, state.temperature_opt, state.log_temperature
    )

    q = categorical_mean(jax.nn.softmax(logits, axis=-1), support(-cfg.v_max, cfg.v_max, cfg.num_bins))
    new_state = state._replace(
        actor=actor_params, critic=critic_params, target_critic=target_critic, log_temperature=log_temperature,
        actor_opt=actor_opt, critic_opt=critic_opt, temperature_opt=temperature_opt, updates=state.updates + 1,
    )
    metrics = {
        "critic_loss": c_loss,
        "actor_loss": a_loss,
        "temperature": temperature,
        "entropy": entropy,
        "q_mean": jnp.mean(q),
        "reward_scale": jnp.mean(scale[batch.task_id]),
    }
    return new_state, metrics


# ----------------------------------------------------------------------------------------------
# Acting and initialisation


def act(
    cfg: BRCConfig, state: BRCState, obs: jax.Array, task_id: jax.Array, key: jax.Array,
    episode_key: jax.Array, deterministic: bool,
) -> jax.Array:
    """tanh(mean) when deterministic (evaluation), else a sample of the squashed Gaussian."""
    del episode_key
    actor, critic = _nets(cfg, actor_act_dim(state.actor), _num_tasks(state.critic))
    mean, log_std = apply(actor, state.actor, _actor_input(critic, state.critic, obs, task_id))
    if deterministic:
        return jnp.tanh(mean)
    action, _ = tanh_gaussian_sample(mean, log_std, key)
    return action


def init(cfg: BRCConfig, key: jax.Array, obs_dim: int, act_dim: int, num_tasks: int) -> BRCState:
    """Fresh networks, optimisers and empty return statistics for ``num_tasks`` tasks."""
    actor, critic = _nets(cfg, act_dim, num_tasks)
    opt = _optimisers(cfg)
    key_actor, key_critic = jax.random.split(key)
    obs, action, task_id = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim)), jnp.zeros((1,), jnp.int32)
    critic_params = critic.init(key_critic, obs, action, task_id)
    actor_params = actor.init(key_actor, _actor_input(critic, critic_params, obs, task_id))
    log_temperature = jnp.log(jnp.asarray(cfg.init_temperature, jnp.float32))
    return BRCState(
        actor=actor_params,
        critic=critic_params,
        target_critic=critic_params,
        log_temperature=log_temperature,
        actor_opt=opt.actor.init(actor_params),
        critic_opt=opt.critic.init(critic_params),
        temperature_opt=opt.temperature.init(log_temperature),
        return_min=jnp.full((num_tasks,), jnp.inf, jnp.float32),
        return_max=jnp.full((num_tasks,), -jnp.inf, jnp.float32),
        target_entropy=jnp.asarray(-cfg.target_entropy_scale * act_dim, jnp.float32),
        updates=jnp.zeros((), jnp.int32),
    )


AGENT = Agent(
    name="brc",
    description="BRC: wide BroNet categorical critic ensemble, task embeddings, per-task reward scaling.",
    config_cls=BRCConfig,
    init=init,
    act=act,
    update=update,
    observe_episode=observe_episode,
)

AGENT_MT = Agent(
    name="brc_mt",
    description="BRC with its published multi-task settings (batch 1024) for multi-task manifests.",
    config_cls=BRCMultiTaskConfig,
    init=init,
    act=act,
    update=update,
    observe_episode=observe_episode,
)
