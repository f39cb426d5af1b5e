"""rlbook.agents.ppo: the clipped objective against plain numpy, the loss, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import policies
from rlbook.agents import ppo


def _numpy_clipped(ratio, adv, eps):
    """L^CLIP per sample, by cases (Schulman et al. 2017, eq. 7)."""
    out = np.empty_like(ratio)
    for i, (r, a) in enumerate(zip(ratio, adv, strict=True)):
        unclipped = r * a
        clipped = min(max(r, 1 - eps), 1 + eps) * a
        out[i] = unclipped if unclipped < clipped else clipped
    return out


def test_clipped_objective_matches_numpy():
    rng = np.random.default_rng(0)
    ratio = np.exp(rng.normal(scale=0.5, size=1000))
    adv = rng.normal(size=1000)
    for eps in (0.1, 0.2, 0.5):
        np.testing.assert_allclose(
            ppo.clipped_objective(ratio, adv, eps),
            _numpy_clipped(ratio, adv, eps),
            rtol=1e-14,
            atol=1e-15,
        )


def test_gradient_in_ratio_is_advantage_or_zero():
    rng = np.random.default_rng(1)
    ratio = np.exp(rng.normal(scale=0.5, size=500))
    adv = rng.normal(size=500)
    eps = 0.2
    ratio = ratio[np.abs(np.abs(ratio - 1) - eps) > 1e-6]
    adv = adv[: len(ratio)]
    grad = jax.vmap(jax.grad(lambda r, a: ppo.clipped_objective(r, a, eps)))(ratio, adv)
    moving = ((adv > 0) & (ratio < 1 + eps)) | ((adv < 0) & (ratio > 1 - eps))
    np.testing.assert_array_equal(np.asarray(grad), np.where(moving, adv, 0.0))


def test_loss_policy_part_against_numpy():
    policy = policies.SoftmaxPolicy(3, 2, (5,))
    params = {
        "policy": policy.init(jax.random.PRNGKey(0)),
        "value": [{"w": jnp.ones((3, 1)), "b": jnp.zeros(1)}],
    }
    obs = jax.random.normal(jax.random.PRNGKey(1), (20, 3))
    action = jnp.arange(20) % 2
    old = jnp.linspace(-1.0, -0.2, 20)
    adv = jnp.linspace(-2.0, 2.0, 20)
    target = jnp.zeros(20)
    batch = ppo.Batch(obs, action, old, adv, target)
    total, (objective, value_loss, _, clip_fraction) = ppo.loss(
        params, policy, batch, 0.2, 0.5, 0.0, normalize=False
    )
    lp = np.asarray(jax.vmap(policy.log_prob, (None, 0, 0))(params["policy"], obs, action))
    ratio = np.exp(lp - np.asarray(old))
    ref = np.mean(_numpy_clipped(ratio, np.asarray(adv), 0.2))
    np.testing.assert_allclose(objective, ref, rtol=1e-12)
    np.testing.assert_allclose(value_loss, np.mean(np.asarray(obs).sum(-1) ** 2), rtol=1e-12)
    np.testing.assert_allclose(total, -ref + 0.5 * value_loss, rtol=1e-12)
    np.testing.assert_allclose(clip_fraction, np.mean(np.abs(ratio - 1) > 0.2))


def test_train_shapes_and_traced_clip():
    config = ppo.Config(n_updates=3, n_envs=2, n_steps=16, n_minibatches=2, n_epochs=2, hidden=(4,))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    train = ppo.make_train(config)
    _, metrics = jax.jit(jax.vmap(train, (0, None)))(keys, jnp.asarray(0.1))
    assert metrics["kl"].shape == (2, 3) and np.all(np.asarray(metrics["kl"]) >= 0)


def test_value_errors():
    with pytest.raises(ValueError, match="ratio"):
        ppo.clipped_objective(jnp.ones(3), jnp.ones(4), 0.2)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.clipped_objective(jnp.ones(3), jnp.ones(3), 0.0)
    for field, value in (
        ("env_name", "Acrobot-v1"),
        ("clip_eps", -0.1),
        ("n_minibatches", 3),
        ("n_epochs", 0),
        ("gamma", 1.5),
        ("hidden", (0,)),
        ("normalize_advantages", "yes"),
    ):
        with pytest.raises(ValueError, match=field):
            ppo.Config(**{field: value})
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.make_train(ppo.Config(n_updates=1, n_envs=1, n_steps=2, n_minibatches=1, hidden=(2,)))(
            jax.random.PRNGKey(0), clip_eps=0.0
        )
