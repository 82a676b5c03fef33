"""FastTD3 (Seo et al., 2025, "FastTD3: Simple, Fast, and Capable Reinforcement Learning for
Humanoid Control").

TD3 scaled for many parallel environments: twin distributional critics (C51, 101 atoms) with
clipped double-Q over distributions (both critics learn the projected target of the critic whose
target distribution has the smaller mean), a deterministic actor updated every second critic
update, target-policy smoothing noise, n-step returns, large batches, AdamW with weight decay 0.1,
observation normalisation, and Gaussian exploration noise whose scale each environment draws
uniformly from [std_min, std_max] once per episode. There is no target actor.

Defaults are the authors' MuJoCo Playground settings for DeepMind-Control-style tasks
(github.com/younggyoseo/FastTD3: ``fast_td3/hyperparams.py``, ``MuJoCoPlaygroundArgs`` with the
``CheetahRunArgs`` overrides, which the authors recommend for DMC tasks; networks in
``fast_td3/fast_td3.py``, update in ``fast_td3/train.py``). ``PRESETS`` holds the other suites'
published overrides.

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
    MLP,
    TorchDense,
    apply,
    categorical_cross_entropy,
    categorical_mean,
    categorical_projection,
    optimiser_step,
    select_tree,
    support,
)

# ----------------------------------------------------------------------------------------------
# Config


@dataclass(frozen=True)
class FastTD3Config(AgentConfig):
    """FastTD3's published MuJoCo Playground settings for DMC-style tasks (``hyperparams.py``:
    ``MuJoCoPlaygroundArgs`` + ``CheetahRunArgs``)."""

    batch_size: int = 32_768
    """Transitions per gradient update (all environments together)."""
    updates_per_step: int = 2
    """Gradient updates per vectorised step (one step of every one of the num_envs environments)."""
    warmup_steps: int = 10 * 1024
    """Environment steps before the first update: 10 vectorised steps of 1024 environments."""
    replay_capacity: int = 10 * 1024 * 1024
    """Transitions kept per seed: 10240 per environment times 1024 environments."""
    gamma: float = 0.97
    """Discount factor."""
    n_step: int = 3
    """Steps of the return target."""
    num_envs: int = 1024
    """Environments stepped in parallel for each seed."""
    critic_hidden_dim: int = 1024
    """Width of each critic's first hidden layer; the second and third halve it (1024, 512, 256)."""
    actor_hidden_dim: int = 512
    """Width of the actor's first hidden layer; the second and third halve it (512, 256, 128)."""
    num_atoms: int = 101
    """Atoms of each critic's categorical value distribution."""
    v_min: float = -500.0
    """Lowest atom of the value support."""
    v_max: float = 500.0
    """Highest atom of the value support."""
    actor_lr: float = 3e-4
    """AdamW learning rate of the actor."""
    critic_lr: float = 3e-4
    """AdamW learning rate of the critics."""
    weight_decay: float = 0.1
    """AdamW weight decay of actor and critics."""
    tau: float = 0.1
    """Polyak averaging rate of the target critics."""
    policy_delay: int = 2
    """The actor is updated on every policy_delay-th critic update."""
    policy_noise: float = 0.1
    """Standard deviation of the target-policy smoothing noise."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to [-noise_clip, noise_clip]."""
    std_min: float = 0.1
    """Smallest exploration noise scale an environment can draw for an episode."""
    std_max: float = 0.4
    """Largest exploration noise scale an environment can draw for an episode."""
    init_scale: float = 0.01
    """Standard deviation of the actor's output-layer weights at initialisation."""
    clipped_double_q: bool = True
    """Learn both critics from the target of the one with the smaller mean; the actor maximises the
    smaller of the two values (False: each critic its own target, the actor the mean)."""
    normalize_obs: bool = True
    """Normalise observations by running mean and variance (kept in the state)."""
    obs_norm_eps: float = 1e-2
    """Added to the running standard deviation when normalising."""

    def __post_init__(self) -> None:
        if self.v_min >= self.v_max:
            raise ValueError(f"v_min ({self.v_min}) must be below v_max ({self.v_max})")
        if self.num_atoms < 2:
            raise ValueError(f"num_atoms must be at least 2, got {self.num_atoms}")
        if not 0.0 <= self.std_min <= self.std_max:
            raise ValueError(f"expected 0 <= std_min <= std_max, got {self.std_min} and {self.std_max}")
        if self.critic_hidden_dim < 4 or self.actor_hidden_dim < 4:
            raise ValueError("critic_hidden_dim and actor_hidden_dim must be at least 4 (they are halved twice)")
        if self.policy_delay < 1:
            raise ValueError(f"policy_delay must be positive, got {self.policy_delay}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if self.policy_noise < 0.0 or self.noise_clip < 0.0 or self.obs_norm_eps <= 0.0:
            raise ValueError("policy_noise and noise_clip must be >= 0 and obs_norm_eps > 0")


PRESETS: dict[str, dict[str, Any]] = {
    "playground-dmc": {},
    "playground-locomotion": {
        "n_step": 1, "v_min": -10.0, "v_max": 10.0, "std_min": 0.001, "policy_noise": 0.001,
    },
    "humanoidbench": {
        "num_envs": 128, "gamma": 0.99, "n_step": 1, "v_min": -250.0, "v_max": 250.0, "std_min": 0.001,
        "policy_noise": 0.001, "warmup_steps": 10 * 128, "replay_capacity": 50 * 1024 * 128,
    },
}
"""Published overrides per suite (``hyperparams.py``): Playground's DMC-style tasks (the defaults),
Playground's other tasks (``MuJoCoPlaygroundArgs``) and HumanoidBench (``BaseArgs``). Task-specific
entries of ``hyperparams.py`` (e.g. Go1: 8 updates, noise in [0.2, 0.8]) go on top of these."""


# ----------------------------------------------------------------------------------------------
# Networks


class Actor(nn.Module):
    """Three ReLU layers (h, h/2, h/4) and a tanh output whose weights start at N(0, init_scale^2)."""

    act_dim: int
    hidden_dim: int
    init_scale: float

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = MLP((self.hidden_dim, self.hidden_dim // 2, self.hidden_dim // 4))(obs)
        out = nn.Dense(self.act_dim, kernel_init=nn.initializers.normal(self.init_scale), name="out")(h)
        return jnp.tanh(out)  # (..., act)


class TwinCritic(nn.Module):
    """Two independent critics on (obs, action), each three ReLU layers (h, h/2, h/4); logits (2, ..., K)."""

    hidden_dim: int
    num_atoms: int

    @nn.compact
    def __call__(self, obs: jax.Array, action: jax.Array) -> jax.Array:
        x = jnp.concatenate([obs, action], axis=-1)
        widths = (self.hidden_dim, self.hidden_dim // 2, self.hidden_dim // 4)
        return jnp.stack([TorchDense(self.num_atoms)(MLP(widths)(x)) for _ in range(2)])


def _nets(cfg: FastTD3Config, act_dim: int) -> tuple[Actor, TwinCritic]:
    return Actor(act_dim, cfg.actor_hidden_dim, cfg.init_scale), TwinCritic(cfg.critic_hidden_dim, cfg.num_atoms)


# ----------------------------------------------------------------------------------------------
# State


class ObsStats(NamedTuple):
    """Running observation statistics (Chan et al.'s parallel update)."""

    mean: jax.Array  # (obs_dim,)
    var: jax.Array  # (obs_dim,)
    total: jax.Array  # () float32, observations folded in so far


class FastTD3State(NamedTuple):
    actor: Any
    critic: Any
    target_critic: Any
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    obs_stats: ObsStats
    updates: jax.Array  # () int32, updates done


def _optimisers(cfg: FastTD3Config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
    return (
        optax.adamw(cfg.actor_lr, weight_decay=cfg.weight_decay),
        optax.adamw(cfg.critic_lr, weight_decay=cfg.weight_decay),
    )


def update_obs_stats(stats: ObsStats, obs: jax.Array) -> ObsStats:
    """Fold a batch of observations (B, obs_dim) into the running mean and (population) variance."""
    n = jnp.asarray(obs.shape[0], jnp.float32)
    total = stats.total + n
    batch_mean, batch_var = jnp.mean(obs, axis=0), jnp.var(obs, axis=0)
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * n / total
    var = (stats.var * stats.total + batch_var * n + delta**2 * stats.total * n / total) / total
    return ObsStats(mean, var, total)


def normalize(cfg: FastTD3Config, stats: ObsStats, obs: jax.Array) -> jax.Array:
    """(obs - mean) / (std + eps) when cfg.normalize_obs, else obs unchanged."""
    if not cfg.normalize_obs:
        return obs
    return (obs - stats.mean) / (jnp.sqrt(stats.var) + cfg.obs_norm_eps)


# ----------------------------------------------------------------------------------------------
# Losses (module level so tests can import them)


def clipped_double_q_target(projected: jax.Array, atoms: jax.Array) -> jax.Array:
    """Per sample, the projected target distribution (of the two) with the smaller mean.

    projected: (2, B, K) the critics' projected target distributions; atoms: (K,). Returns (B, K).
    """
    values = categorical_mean(projected, atoms)  # (2, B)
    return jnp.where((values[0] < values[1])[:, None], projected[0], projected[1])


def critic_targets(
    cfg: FastTD3Config, next_logits: jax.Array, reward: jax.Array, discount: jax.Array
) -> jax.Array:
    """Each critic's target distribution (2, B, K) from the target critics' logits (2, B, K).

    Atom z moves to r + discount * z (discount = gamma**n, 0 after termination) and is projected
    onto the support; with clipped double-Q both critics get the target of smaller mean.
    """
    atoms = support(cfg.v_min, cfg.v_max, cfg.num_atoms)
    moved = reward[:, None] + discount[:, None] * atoms[None]  # (B, K)
    probs = jax.nn.softmax(next_logits, axis=-1)
    projected = jnp.stack([categorical_projection(moved, p, cfg.v_min, cfg.v_max) for p in probs])
    if cfg.clipped_double_q:
        chosen = clipped_double_q_target(projected, atoms)
        return jnp.stack([chosen, chosen])
    return projected


def critic_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Sum over both critics of the batch-mean cross-entropy; logits, targets: (2, B, K)."""
    return jnp.sum(jnp.mean(categorical_cross_entropy(logits, targets), axis=-1))


def actor_loss(cfg: FastTD3Config, logits: jax.Array) -> jax.Array:
    """-E[min(Q1, Q2)] (clipped double-Q) or -E[(Q1 + Q2) / 2]; logits (2, B, K) at the actor's actions."""
    q = categorical_mean(jax.nn.softmax(logits, axis=-1), support(cfg.v_min, cfg.v_max, cfg.num_atoms))
    return -jnp.mean(jnp.min(q, axis=0) if cfg.clipped_double_q else jnp.mean(q, axis=0))


# ----------------------------------------------------------------------------------------------
# Update


def update(cfg: FastTD3Config, state: FastTD3State, batch: Batch, key: jax.Array) -> tuple[FastTD3State, Metrics]:
    """One critic update, the delayed actor update on every policy_delay-th call, and the target update.

    Observation statistics are updated from the batch's observations (see docs/agents.md).
    """
    actor, critic = _nets(cfg, batch.action.shape[-1])
    actor_tx, critic_tx = _optimisers(cfg)
    obs_stats = update_obs_stats(state.obs_stats, batch.obs) if cfg.normalize_obs else state.obs_stats
    obs, next_obs = normalize(cfg, obs_stats, batch.obs), normalize(cfg, obs_stats, batch.next_obs)

    smoothing = jnp.clip(cfg.policy_noise * jax.random.normal(key, batch.action.shape), -cfg.noise_clip, cfg.noise_clip)
    next_action = jnp.clip(apply(actor, state.actor, next_obs) + smoothing, -1.0, 1.0)
    next_logits = apply(critic, state.target_critic, next_obs, next_action)  # (2, B, K)
    targets = critic_targets(cfg, next_logits, batch.reward, batch.discount)

    def critic_objective(params: Any) -> jax.Array:
        return critic_loss(apply(critic, params, obs, batch.action), targets)

    c_loss, c_grads = jax.value_and_grad(critic_objective)(state.critic)
    critic_params, critic_opt = optimiser_step(critic_tx, c_grads, state.critic_opt, state.critic)

    def actor_objective(params: Any) -> jax.Array:
        return actor_loss(cfg, apply(critic, critic_params, obs, apply(actor, params, obs)))

    a_loss, a_grads = jax.value_and_grad(actor_objective)(state.actor)
    actor_step = state.updates % cfg.policy_delay == cfg.policy_delay - 1
    actor_params, actor_opt = select_tree(
        actor_step, optimiser_step(actor_tx, a_grads, state.actor_opt, state.actor), (state.actor, state.actor_opt)
    )

    target_critic = optax.incremental_update(critic_params, state.target_critic, cfg.tau)
    new_state = FastTD3State(
        actor_params, critic_params, target_critic, actor_opt, critic_opt, obs_stats, state.updates + 1
    )
    metrics = {"critic_loss": c_loss, "actor_loss": a_loss, "actor_updated": actor_step.astype(jnp.float32)}
    return new_state, metrics


# ----------------------------------------------------------------------------------------------
# Acting and initialisation


def exploration_scale(cfg: FastTD3Config, episode_key: jax.Array) -> jax.Array:
    """The exploration noise scale of one environment for one episode: U(std_min, std_max)."""
    return jax.random.uniform(episode_key, (), minval=cfg.std_min, maxval=cfg.std_max)


def act(
    cfg: FastTD3Config, state: FastTD3State, obs: jax.Array, task_id: jax.Array, key: jax.Array,
    episode_key: jax.Array, deterministic: bool,
) -> jax.Array:
    """The actor's action; when exploring, plus Gaussian noise of scale :func:`exploration_scale`.

    The scale comes from ``episode_key``, which the runner draws once per environment and episode,
    so each environment keeps its scale for a whole episode as in FastTD3; the noise itself is new
    at every step (``key``).
    """
    del task_id
    action = apply(_nets(cfg, _act_dim(state.actor))[0], state.actor, normalize(cfg, state.obs_stats, obs))
    if deterministic:
        return action
    noise = exploration_scale(cfg, episode_key) * jax.random.normal(key, action.shape)
    return jnp.clip(action + noise, -1.0, 1.0)


def _act_dim(actor_params: Any) -> int:
    return int(actor_params["params"]["out"]["kernel"].shape[-1])


def init(cfg: FastTD3Config, key: jax.Array, obs_dim: int, act_dim: int, num_tasks: int) -> FastTD3State:
    """Fresh networks, optimisers and observation statistics (mean 0, variance 1, count 0)."""
    del num_tasks
    actor, critic = _nets(cfg, act_dim)
    actor_tx, critic_tx = _optimisers(cfg)
    key_actor, key_critic = jax.random.split(key)
    obs, action = jnp.zeros((1, obs_dim)), jnp.zeros((1, act_dim))
    actor_params = actor.init(key_actor, obs)
    critic_params = critic.init(key_critic, obs, action)
    stats = ObsStats(jnp.zeros((obs_dim,)), jnp.ones((obs_dim,)), jnp.zeros(()))
    return FastTD3State(
        actor=actor_params,
        critic=critic_params,
        target_critic=critic_params,
        actor_opt=actor_tx.init(actor_params),
        critic_opt=critic_tx.init(critic_params),
        obs_stats=stats,
        updates=jnp.zeros((), jnp.int32),
    )


AGENT = Agent(
    name="fasttd3",
    description="FastTD3: TD3 with twin C51 critics, many parallel envs, large batches, n-step returns.",
    config_cls=FastTD3Config,
    init=init,
    act=act,
    update=update,
)
