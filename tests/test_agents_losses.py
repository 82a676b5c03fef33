"""Losses, targets and statistics of the BRO, BRC and FastTD3 agents on small hand-computed cases."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents import brc, bro, fasttd3
from agents.common import (
    categorical_projection,
    gaussian_kl,
    orthogonal,
    quantile_huber_loss,
    quantile_midpoints,
    support,
    tanh_gaussian_sample,
    temperature_loss,
)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_orthogonal_init_matches_flax_and_vmaps_over_seeds(shape: tuple[int, int]) -> None:
    key = jax.random.PRNGKey(3)
    ours = orthogonal(1.5)(key, shape)
    np.testing.assert_allclose(ours, nn.initializers.orthogonal(1.5)(key, shape), atol=1e-6)
    stacked = jax.jit(jax.vmap(lambda k: orthogonal(1.5)(k, shape)))(jax.random.split(key, 2))
    for w in stacked:  # columns (or rows, for a wide kernel) are orthogonal with norm 1.5
        gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
        np.testing.assert_allclose(gram, 2.25 * np.eye(min(shape)), atol=1e-5)


def test_quantile_midpoints() -> None:
    np.testing.assert_allclose(quantile_midpoints(4), [0.125, 0.375, 0.625, 0.875])


def test_quantile_huber_loss_small_case() -> None:
    # taus (0.25, 0.75), predicted quantiles (0, 1), target samples (0.5, 3), kappa 1.
    # u = target_j - pred_i: i=0 -> (0.5, 3), i=1 -> (-0.5, 2).
    # Huber: 0.5*0.5^2 = 0.125, 3 - 0.5 = 2.5, 0.125, 2 - 0.5 = 1.5.
    # Weights |tau_i - 1{u<0}|: i=0 -> 0.25, 0.25; i=1 -> |0.75 - 1| = 0.25, 0.75.
    # Sum over i: j=0 -> 0.25*0.125 + 0.25*0.125 = 0.0625; j=1 -> 0.25*2.5 + 0.75*1.5 = 1.75.
    # Mean over j: (0.0625 + 1.75) / 2 = 0.90625.
    loss = quantile_huber_loss(jnp.array([[0.0, 1.0]]), jnp.array([[0.5, 3.0]]), jnp.array([0.25, 0.75]))
    assert float(loss) == pytest.approx(0.90625)


def test_quantile_huber_gradient_small_case() -> None:
    # The case above: dL/dpred_i = -sum_j w_ij * clip(u_ij, -1, 1) / (B * M), B * M = 2.
    # i=0: u = (0.5, 3), w = (0.25, 0.25) -> -(0.25*0.5 + 0.25*1) / 2 = -0.1875.
    # i=1: u = (-0.5, 2), w = (0.25, 0.75) -> -(0.25*-0.5 + 0.75*1) / 2 = -0.3125.
    grad = jax.grad(lambda p: quantile_huber_loss(p, jnp.array([[0.5, 3.0]]), jnp.array([0.25, 0.75])))(
        jnp.array([[0.0, 1.0]]))
    np.testing.assert_allclose(np.asarray(grad), [[-0.1875, -0.3125]])


def test_quantile_huber_closed_form_gradient_equals_autodiff() -> None:
    """The custom gradient against autodiff of the plain formula, on random quantiles and kappa 0.7,
    under vmap (as the runner calls it) and with the target held fixed."""
    taus = quantile_midpoints(7)

    def plain(pred: jax.Array, target: jax.Array) -> jax.Array:
        u = jax.lax.stop_gradient(target)[:, None, :] - pred[:, :, None]
        huber = jnp.where(jnp.abs(u) <= 0.7, 0.5 * u**2, 0.7 * (jnp.abs(u) - 0.35))
        return jnp.mean(jnp.sum(jnp.abs(taus[None, :, None] - (u < 0)) * huber / 0.7, axis=1))

    pred = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 7))  # (seeds, B, N)
    target = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 6))  # (seeds, B, M)
    ours = jax.vmap(jax.value_and_grad(lambda p, t: quantile_huber_loss(p, t, taus, 0.7), argnums=(0, 1)))
    theirs = jax.vmap(jax.value_and_grad(plain, argnums=(0, 1)))
    (loss, (g_pred, g_target)), (loss_ref, (g_pred_ref, g_target_ref)) = ours(pred, target), theirs(pred, target)
    np.testing.assert_allclose(np.asarray(loss), np.asarray(loss_ref), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(g_pred), np.asarray(g_pred_ref), rtol=1e-5, atol=1e-7)
    assert not np.asarray(g_target).any() and not np.asarray(g_target_ref).any()


def test_quantile_huber_loss_is_zero_at_target_and_pulls_towards_it() -> None:
    taus = quantile_midpoints(3)
    target = jnp.array([[1.0, 2.0, 3.0]])
    # Predicting each target sample exactly is not optimal for every quantile, but a constant far
    # below the targets must cost more and have negative gradient (push the quantiles up).
    low = jnp.zeros((1, 3))
    grad = jax.grad(lambda p: quantile_huber_loss(p, target, taus))(low)
    assert bool(jnp.all(grad < 0.0))
    assert float(quantile_huber_loss(jnp.full((1, 3), 2.0), target, taus)) < float(
        quantile_huber_loss(low, target, taus)
    )


def test_categorical_projection_on_five_bins() -> None:
    # Support (-2, -1, 0, 1, 2), uniform probabilities 0.2; atoms move to 0.5 + 0.5 * z
    # = (-0.5, 0, 0.5, 1, 1.5), i.e. fractional indices (1.5, 2, 2.5, 3, 3.5).
    # 1.5 -> 0.1 to bins 1 and 2; 2 -> 0.2 to bin 2; 2.5 -> 0.1 to bins 2 and 3; 3 -> 0.2 to bin 3;
    # 3.5 -> 0.1 to bins 3 and 4. Result: (0, 0.1, 0.4, 0.4, 0.1).
    z = support(-2.0, 2.0, 5)
    probs = jnp.full((1, 5), 0.2)
    projected = categorical_projection(0.5 + 0.5 * z[None], probs, -2.0, 2.0)
    np.testing.assert_allclose(projected, [[0.0, 0.1, 0.4, 0.4, 0.1]], atol=1e-6)


def test_categorical_projection_clips_to_the_support() -> None:
    # Reward 3 with discount 0 puts all mass at 3, beyond v_max = 2: it all lands on the last bin.
    # Atoms at (-2.5, -1.2, 0, 0, 9) with masses (0.1, 0.2, 0.3, 0.3, 0.1): -2.5 clips to bin 0;
    # -1.2 is index 0.8 -> 0.2 * 0.2 = 0.04 to bin 0, 0.2 * 0.8 = 0.16 to bin 1; 0 -> bin 2 (0.6);
    # 9 clips to bin 4. Result: (0.14, 0.16, 0.6, 0, 0.1).
    probs = jnp.array([[0.2] * 5, [0.1, 0.2, 0.3, 0.3, 0.1]])
    atoms = jnp.array([[3.0] * 5, [-2.5, -1.2, 0.0, 0.0, 9.0]])
    projected = categorical_projection(atoms, probs, -2.0, 2.0)
    np.testing.assert_allclose(projected, [[0, 0, 0, 0, 1.0], [0.14, 0.16, 0.6, 0.0, 0.1]], atol=1e-6)


def test_clipped_double_q_chooses_the_distribution_with_smaller_mean() -> None:
    # Support (-2..2). Sample 0: critic 1 mean -1 (all on -1), critic 2 mean +1 -> critic 1.
    # Sample 1: critic 1 mean 0.5*0 + 0.5*2 = 1, critic 2 mean 0 -> critic 2.
    atoms = support(-2.0, 2.0, 5)
    p1 = jnp.array([[0, 1.0, 0, 0, 0], [0, 0, 0.5, 0, 0.5]])
    p2 = jnp.array([[0, 0, 0, 1.0, 0], [0, 0, 1.0, 0, 0]])
    chosen = fasttd3.clipped_double_q_target(jnp.stack([p1, p2]), atoms)
    np.testing.assert_allclose(chosen, [p1[0], p2[1]])


def test_fasttd3_targets_with_and_without_clipped_double_q() -> None:
    cfg = fasttd3.FastTD3Config(num_atoms=5, v_min=-2.0, v_max=2.0)
    # Critic 1 puts all mass on atom 1 (value -1), critic 2 on atom 3 (value 1). Reward 0.5,
    # discount 0.5: critic 1's atom moves to 0.5 - 0.5 = 0 (bin 2); critic 2's to 1.0 (bin 3).
    logits = jnp.log(jnp.array([[[1e-9, 1, 1e-9, 1e-9, 1e-9]], [[1e-9, 1e-9, 1e-9, 1, 1e-9]]]))
    targets = fasttd3.critic_targets(cfg, logits, jnp.array([0.5]), jnp.array([0.5]))
    np.testing.assert_allclose(targets[:, 0], [[0, 0, 1, 0, 0]] * 2, atol=1e-6)
    independent = fasttd3.critic_targets(
        fasttd3.FastTD3Config(num_atoms=5, v_min=-2.0, v_max=2.0, clipped_double_q=False),
        logits, jnp.array([0.5]), jnp.array([0.5]),
    )
    np.testing.assert_allclose(independent[:, 0], [[0, 0, 1, 0, 0], [0, 0, 0, 1, 0]], atol=1e-6)


def test_fasttd3_observation_statistics_match_the_full_data() -> None:
    data = np.arange(12, dtype=np.float32).reshape(6, 2) ** 1.5
    stats = fasttd3.ObsStats(jnp.zeros(2), jnp.ones(2), jnp.zeros(()))
    for chunk in (data[:1], data[1:4], data[4:]):
        stats = fasttd3.update_obs_stats(stats, jnp.asarray(chunk))
    np.testing.assert_allclose(stats.mean, data.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, data.var(axis=0), rtol=1e-4)
    assert float(stats.total) == 6.0


def test_fasttd3_exploration_scale_range() -> None:
    cfg = fasttd3.FastTD3Config()
    scales = jax.vmap(lambda k: fasttd3.exploration_scale(cfg, k))(jax.random.split(jax.random.PRNGKey(0), 512))
    assert cfg.std_min <= float(scales.min()) < float(scales.max()) <= cfg.std_max


def test_bro_critic_target_uses_the_mean_of_both_critics() -> None:
    # Two critics, one sample, two quantiles: q1 = (1, 3), q2 = (3, 5): mean (2, 4), spread (1, 1).
    # r = 1, discount 0.5, alpha 0.5, log pi = -2: soft = mean + 1 -> (3, 5); target = 1 + 0.5*soft.
    next_q = jnp.array([[[1.0, 3.0]], [[3.0, 5.0]]])
    args = (jnp.array([1.0]), jnp.array([0.5]), jnp.array([-2.0]), jnp.asarray(0.5))
    np.testing.assert_allclose(bro.critic_target(next_q, *args, pessimism=0.0), [[2.5, 3.5]])
    # With pessimism 1 the spread (1) is subtracted first: soft = (2, 4) -> target (2, 3).
    np.testing.assert_allclose(bro.critic_target(next_q, *args, pessimism=1.0), [[2.0, 3.0]])


@pytest.mark.parametrize("kl, optimism_moves, kl_weight_moves", [(0.2, -1.0, 1.0), (0.01, 1.0, -1.0)])
def test_bro_optimism_and_kl_weight_move_to_hold_the_kl_target(
    kl: float, optimism_moves: float, kl_weight_moves: float
) -> None:
    # KL above the target (0.05) must lower the optimism and raise the KL weight; below, the opposite.
    cfg = bro.BROConfig()
    tx = optax.adam(cfg.adjustment_lr, b1=0.5)
    for loss, init_value, direction in (
        (lambda raw: bro.optimism_loss(raw, jnp.asarray(kl), cfg.kl_target, cfg.pessimism), 1.0, optimism_moves),
        (lambda raw: bro.kl_weight_loss(raw, jnp.asarray(kl), cfg.kl_target), 0.25, kl_weight_moves),
    ):
        raw = bro.adjustment_raw(init_value)
        assert float(bro.adjustment_value(raw)) == pytest.approx(init_value, rel=1e-5)
        step, _ = tx.update(jax.grad(loss)(raw), tx.init(raw))
        moved = float(bro.adjustment_value(optax.apply_updates(raw, step))) - init_value
        assert math.copysign(1.0, moved) == direction


def test_bro_optimistic_actor_loss_rewards_disagreement_and_penalises_kl() -> None:
    # q1 = 0, q2 = 2 (mean 1, spread 1): loss = -(1 + beta * 1) + w * KL.
    q = jnp.array([[[0.0]], [[2.0]]])
    loss = bro.optimistic_actor_loss(q, jnp.array([0.4]), jnp.asarray(2.0), jnp.asarray(0.5))
    assert float(loss) == pytest.approx(-(1.0 + 2.0) + 0.5 * 0.4)


def test_gaussian_kl_hand_value() -> None:
    # KL(N(1, 1) || N(0, 2)) = log 2 + (1 + 1) / 8 - 0.5 = 0.443147...
    kl = gaussian_kl(jnp.array([1.0]), jnp.array([1.0]), jnp.array([0.0]), jnp.array([2.0]))
    assert float(kl) == pytest.approx(math.log(2.0) + 0.25 - 0.5, rel=1e-6)


def test_tanh_gaussian_log_probability_matches_change_of_variables() -> None:
    mean, log_std = jnp.array([0.3, -0.2]), jnp.array([-0.5, 0.1])
    action, logp = tanh_gaussian_sample(mean, log_std, jax.random.PRNGKey(3))
    pre = jnp.arctanh(action)
    expected = jax.scipy.stats.norm.logpdf(pre, mean, jnp.exp(log_std)) - jnp.log(1.0 - action**2)
    assert float(logp) == pytest.approx(float(jnp.sum(expected)), rel=1e-4)


def test_temperature_loss_raises_alpha_when_entropy_is_low() -> None:
    grad = jax.grad(temperature_loss)(jnp.asarray(0.0), jnp.asarray(-3.0), jnp.asarray(-1.0))
    assert float(grad) == pytest.approx(-2.0)  # d/dlog(a) a * (H - H*) at a = 1 is H - H* = -2


def test_brc_episode_return_range_hand_values() -> None:
    rewards, valid = jnp.array([1.0, 2.0, 3.0, 0.0]), jnp.array([True, True, True, False])
    # Terminated, gamma 0.5: returns-to-go 3, 2 + 0.5*3 = 3.5, 1 + 0.5*3.5 = 2.75.
    low, high = brc.episode_return_range(rewards, valid, jnp.asarray(False), 0.5)
    assert (float(low), float(high)) == (2.75, 3.5)
    # Truncated: bootstrap mean reward / (1 - gamma) = 2 / 0.5 = 4, so 3 + 2 = 5, 2 + 2.5 = 4.5,
    # 1 + 2.25 = 3.25.
    low, high = brc.episode_return_range(rewards, valid, jnp.asarray(True), 0.5)
    assert (float(low), float(high)) == (3.25, 5.0)


def test_brc_reward_scale_per_task() -> None:
    cfg = brc.BRCConfig(gamma=0.5, v_max=10.0)
    # Task 0: returns in [-30, 20] -> 30; task 1: no episode yet -> divisor 1.
    # alpha 0.1, horizon 2, target entropy -4: (30 - 0.1 * 2 * -4 / 2) / 10 = (30 + 0.4) / 10 = 3.04.
    scale = brc.reward_scale(
        cfg, jnp.array([-30.0, jnp.inf]), jnp.array([20.0, -jnp.inf]), jnp.asarray(0.1), jnp.asarray(-4.0)
    )
    np.testing.assert_allclose(scale, [3.04, 1.0], rtol=1e-6)


def test_brc_critic_target_projects_the_ensemble_mean() -> None:
    # Support (-2..2); critic 1 all on atom 0 (-2), critic 2 all on atom 4 (2): mean (0.5, 0, 0, 0, 0.5).
    # r = 0, discount 0.5, alpha * log pi = 0: -2 -> -1 (bin 1), 2 -> 1 (bin 3).
    logits = jnp.log(jnp.array([[[1, 1e-9, 1e-9, 1e-9, 1e-9]], [[1e-9, 1e-9, 1e-9, 1e-9, 1]]]))
    target = brc.critic_target(logits, jnp.array([0.0]), jnp.array([0.5]), jnp.array([0.0]), jnp.asarray(0.2), 2.0)
    np.testing.assert_allclose(target, [[0, 0.5, 0, 0.5, 0]], atol=1e-6)


@pytest.mark.parametrize(
    "cls, overrides, message",
    [
        (fasttd3.FastTD3Config, {"v_min": 5.0, "v_max": 5.0}, "v_min"),
        (fasttd3.FastTD3Config, {"std_min": 0.5, "std_max": 0.4}, "std_min"),
        (brc.BRCConfig, {"num_bins": 1}, "num_bins"),
        (bro.BROConfig, {"reset_steps": (50_000, 15_000)}, "reset_steps"),
        (bro.BROConfig, {"init_optimism": 0.0}, "init_optimism"),
    ],
)
def test_configs_reject_bad_values(cls: type, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cls(**overrides)


def test_bro_reset_schedule() -> None:
    # Resets after 15k env steps: (15000 - 2500) * 10 = 125000 updates for bro, and after 50k:
    # (50000 - 2500) * 10 = 475000; for bro_fast (15000 - 2500) * 2 = 25000 only.
    due = bro.reset_due(bro.BROConfig(), jnp.array([0, 124_999, 125_000, 125_001, 475_000]))
    assert due.tolist() == [False, False, True, False, True]
    assert bool(bro.reset_due(bro.BROFastConfig(), jnp.asarray(25_000)))
    assert not bool(bro.reset_due(bro.BROFastConfig(), jnp.asarray(95_000)))  # bro_fast resets once
