"""Parts shared by the BRO, BRC and FastTD3 agents: networks, policy heads and distributional losses.

Everything here is a flax.linen module or a pure function of arrays, so it can be jitted and
vmapped over seeds by the runner. Shapes: B = batch, N = quantiles, K = atoms (bins), E = ensemble.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, TypeVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

T = TypeVar("T")

LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0
"""Range into which the tanh-Gaussian actor squashes its log standard deviation (BRO and BRC)."""


def apply(module: nn.Module, params: Any, *args: jax.Array, method: Any = None) -> Any:
    """``module.apply(params, *args, method=method)``, typed as Any (flax types it as a union)."""
    return module.apply(params, *args, method=method)


def optimiser_step(tx: optax.GradientTransformation, grads: Any, opt: optax.OptState, params: Any) -> tuple[Any, Any]:
    """One step of the optimiser ``tx``: (new params, new optimiser state)."""
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), opt


@jax.custom_batching.custom_vmap
def _q_factor(a: jax.Array) -> jax.Array:
    """Q of the QR decomposition of a (n, m), n >= m, signed so that diag(R) > 0 (Haar-distributed)."""
    q, r = jnp.linalg.qr(a)
    return q * jnp.sign(jnp.diag(r))


@_q_factor.def_vmap
def _q_factor_vmap(axis_size: int, in_batched: list[bool], a: jax.Array) -> tuple[jax.Array, bool]:
    # One QR per batch element, in sequence: batched QR (what vmapping over seeds produces) has hung
    # XLA:CPU intermittently in jax 0.10.2 (the computation never signals completion).
    del axis_size
    return (jax.lax.map(_q_factor, a), True) if in_batched[0] else (_q_factor(a), False)


def task_codes(num_tasks: int) -> jax.Array:
    """The one-hot codes (T, T) a multi-task agent appends to its observations (indexed by
    ``task_id``); (1, 0) for a single task, so that a single-task agent sees its observations alone."""
    return jnp.eye(num_tasks, dtype=jnp.float32) if num_tasks > 1 else jnp.zeros((1, 0), jnp.float32)


def with_task(obs: jax.Array, codes: jax.Array, task_id: jax.Array) -> jax.Array:
    """``obs (..., obs)`` followed by its task's code: ``(..., obs + T)`` (unchanged for one task);
    ``task_id (...)`` int32, ``codes`` from :func:`task_codes`."""
    return jnp.concatenate([obs, codes[task_id]], axis=-1)


def orthogonal(scale: float = math.sqrt(2.0)) -> nn.initializers.Initializer:
    """Orthogonal kernel initialiser (gain ``scale``); BRO and BRC initialise every dense kernel so.

    The same construction as flax's ``orthogonal`` (QR of a Gaussian matrix), vmapped seed by seed.
    """

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        rows, cols = math.prod(shape[:-1]), shape[-1]
        tall = (max(rows, cols), min(rows, cols))
        q = _q_factor(jax.random.normal(key, tall, dtype))
        return scale * (q if rows >= cols else q.T).reshape(shape)

    return init


# ----------------------------------------------------------------------------------------------
# Networks


class BroNet(nn.Module):
    """BroNet (Nauman et al., 2024): Dense-LayerNorm-ReLU, then residual blocks, optional output layer.

    A block maps x to x + LN(Dense(ReLU(LN(Dense(x))))). With ``out_dim`` set, a final dense layer
    maps the width to ``out_dim`` outputs.
    """

    width: int
    blocks: int
    out_dim: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.relu(nn.LayerNorm()(nn.Dense(self.width, kernel_init=orthogonal())(x)))  # (..., width)
        for _ in range(self.blocks):
            y = nn.relu(nn.LayerNorm()(nn.Dense(self.width, kernel_init=orthogonal())(x)))
            x = x + nn.LayerNorm()(nn.Dense(self.width, kernel_init=orthogonal())(y))
        if self.out_dim is not None:
            x = nn.Dense(self.out_dim, kernel_init=orthogonal())(x)  # (..., out_dim)
        return x


class BroEnsemble(nn.Module):
    """``size`` independently initialised BroNets on the concatenated inputs; output (E, ..., out_dim)."""

    size: int
    width: int
    blocks: int
    out_dim: int

    @nn.compact
    def __call__(self, *inputs: jax.Array) -> jax.Array:
        x = jnp.concatenate(inputs, axis=-1)
        stacked = nn.vmap(
            BroNet,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.size,
        )
        return stacked(self.width, self.blocks, self.out_dim)(x)


class TanhGaussianActor(nn.Module):
    """A BroNet actor with a Gaussian head squashed by tanh; returns (mean, log_std), each (..., act).

    The mean head has gain sqrt 2 and the log-std head gain 1; the log-std is squashed by tanh into
    [LOG_STD_MIN, LOG_STD_MAX] (as in BRO's and BRC's code).
    """

    act_dim: int
    width: int
    blocks: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = BroNet(self.width, self.blocks)(obs)
        mean = nn.Dense(self.act_dim, kernel_init=orthogonal(), name="mean")(h)
        raw = nn.Dense(self.act_dim, kernel_init=orthogonal(1.0), name="log_std")(h)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (1.0 + jnp.tanh(raw))
        return mean, log_std


def actor_act_dim(actor_params: Any) -> int:
    """The action size of a :class:`TanhGaussianActor`, read from its mean head's kernel."""
    return int(actor_params["params"]["mean"]["kernel"].shape[-1])


def torch_uniform(fan_in: int) -> nn.initializers.Initializer:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default for the weights and biases of a Linear."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class TorchDense(nn.Module):
    """A dense layer initialised like PyTorch's ``nn.Linear`` (FastTD3's networks are PyTorch)."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        kernel = self.param("kernel", torch_uniform(fan_in), (fan_in, self.features))
        bias = self.param("bias", torch_uniform(fan_in), (self.features,))
        return x @ kernel + bias


class MLP(nn.Module):
    """ReLU hidden layers of the given widths (PyTorch initialisation); returns the last activations."""

    hidden_dims: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_dims:
            x = nn.relu(TorchDense(width)(x))
        return x


# ----------------------------------------------------------------------------------------------
# Policies


def tanh_gaussian_sample(mean: jax.Array, log_std: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A sample tanh(mean + std * eps) and its log-probability, with the tanh change of variables.

    mean, log_std: (..., act). Returns action (..., act) and log-probability (...,).
    """
    noise = jax.random.normal(key, mean.shape)
    pre_tanh = mean + jnp.exp(log_std) * noise
    gaussian_logp = -0.5 * (noise**2 + 2.0 * log_std + jnp.log(2.0 * jnp.pi))
    # log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u)), stable for large |u|.
    log_det = 2.0 * (jnp.log(2.0) - pre_tanh - jax.nn.softplus(-2.0 * pre_tanh))
    return jnp.tanh(pre_tanh), jnp.sum(gaussian_logp - log_det, axis=-1)


def gaussian_kl(mean_p: jax.Array, std_p: jax.Array, mean_q: jax.Array, std_q: jax.Array) -> jax.Array:
    """KL(N(mean_p, std_p) || N(mean_q, std_q)) of diagonal Gaussians, summed over the last axis."""
    kl = jnp.log(std_q / std_p) + (std_p**2 + (mean_p - mean_q) ** 2) / (2.0 * std_q**2) - 0.5
    return jnp.sum(kl, axis=-1)


def temperature_loss(log_temperature: jax.Array, entropy: jax.Array, target_entropy: jax.Array) -> jax.Array:
    """alpha * (H - H_target) with alpha = exp(log_temperature): alpha grows while H < H_target.

    The entropy estimate H (from the actor step) is held fixed; this is BRO's and BRC's form.
    """
    return jnp.exp(log_temperature) * jax.lax.stop_gradient(entropy - target_entropy)


# ----------------------------------------------------------------------------------------------
# Distributional critics


def quantile_midpoints(num_quantiles: int) -> jax.Array:
    """The quantile fractions tau_i = (2i + 1) / (2N), i = 0..N-1; shape (N,)."""
    return (jnp.arange(num_quantiles, dtype=jnp.float32) + 0.5) / num_quantiles


def quantile_huber_loss(pred: jax.Array, target: jax.Array, taus: jax.Array, kappa: float = 1.0) -> jax.Array:
    """Quantile Huber loss (Dabney et al., 2018) of predicted quantiles against target samples.

    pred: (B, N) quantiles at fractions taus (N,); target: (B, M) samples (held fixed).
    Each pair (i, j) costs |tau_i - 1{u < 0}| * Huber_kappa(u) / kappa with u = target_j - pred_i;
    the loss sums over the N predicted quantiles and averages over the batch and the M targets.

    Differentiable in ``pred`` only, by its closed-form gradient
    dL/dpred_bi = -sum_j |tau_i - 1{u < 0}| * clip(u, -kappa, kappa) / (kappa * B * M), computed in
    the same pass as the loss: XLA's autodiff of the pairwise (B, N, M) terms is several times slower.
    """
    return _quantile_huber(pred, jax.lax.stop_gradient(target), taus, kappa)


def _quantile_huber_value_and_grad(
    pred: jax.Array, target: jax.Array, taus: jax.Array, kappa: float
) -> tuple[jax.Array, jax.Array]:
    """The loss () and its gradient in ``pred`` (B, N)."""
    u = target[:, None, :] - pred[:, :, None]  # (B, N, M)
    abs_u = jnp.abs(u)
    huber = jnp.where(abs_u <= kappa, 0.5 * u**2, kappa * (abs_u - 0.5 * kappa))
    weight = jnp.abs(taus[None, :, None] - (u < 0).astype(u.dtype))
    scale = kappa * target.shape[0] * target.shape[1]
    loss = jnp.sum(weight * huber) / scale
    grad = -jnp.sum(weight * jnp.clip(u, -kappa, kappa), axis=2) / scale  # (B, N)
    return loss, grad


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _quantile_huber(pred: jax.Array, target: jax.Array, taus: jax.Array, kappa: float) -> jax.Array:
    return _quantile_huber_value_and_grad(pred, target, taus, kappa)[0]


def _quantile_huber_fwd(
    pred: jax.Array, target: jax.Array, taus: jax.Array, kappa: float
) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
    loss, grad = _quantile_huber_value_and_grad(pred, target, taus, kappa)
    return loss, (grad, target, taus)


def _quantile_huber_bwd(
    kappa: float, saved: tuple[jax.Array, jax.Array, jax.Array], cotangent: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    del kappa
    grad, target, taus = saved
    return cotangent * grad, jnp.zeros_like(target), jnp.zeros_like(taus)


_quantile_huber.defvjp(_quantile_huber_fwd, _quantile_huber_bwd)


def support(v_min: float, v_max: float, num_atoms: int) -> jax.Array:
    """The K evenly spaced atoms of a categorical value distribution on [v_min, v_max]; shape (K,)."""
    return jnp.linspace(v_min, v_max, num_atoms, dtype=jnp.float32)


def categorical_projection(atoms: jax.Array, probs: jax.Array, v_min: float, v_max: float) -> jax.Array:
    """Project a distribution with probabilities ``probs`` at positions ``atoms`` onto the support.

    atoms, probs: (B, K); the support is ``support(v_min, v_max, K)``. Positions are clipped to
    [v_min, v_max] and each mass is split between its two neighbouring atoms in proportion to
    closeness (C51, Bellemare et al., 2017); a position that falls on an atom gives it all its mass.
    Returns (B, K) probabilities.
    """
    num_atoms = probs.shape[-1]
    delta = (v_max - v_min) / (num_atoms - 1)
    b = (jnp.clip(atoms, v_min, v_max) - v_min) / delta  # (B, K) fractional atom index
    index = jnp.arange(num_atoms, dtype=b.dtype)
    # Mass of source i landing on atom j: max(0, 1 - |b_i - j|), the linear interpolation weight.
    weight = jnp.clip(1.0 - jnp.abs(b[:, :, None] - index[None, None, :]), 0.0, 1.0)  # (B, K, K)
    return jnp.einsum("bi,bij->bj", probs, weight)


def categorical_mean(probs: jax.Array, atoms: jax.Array) -> jax.Array:
    """Expected value of categorical distributions: probs (..., K), atoms (K,) -> (...)."""
    return jnp.sum(probs * atoms, axis=-1)


def categorical_cross_entropy(logits: jax.Array, target_probs: jax.Array) -> jax.Array:
    """-sum_k target_k * log softmax(logits)_k over the last axis; the target is held fixed."""
    return -jnp.sum(jax.lax.stop_gradient(target_probs) * jax.nn.log_softmax(logits, axis=-1), axis=-1)


# ----------------------------------------------------------------------------------------------
# Pytrees


def select_tree(pred: jax.Array, on_true: T, on_false: T) -> T:
    """Leafwise ``where(pred, on_true, on_false)`` of two pytrees of the same structure (pred: ())."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)
