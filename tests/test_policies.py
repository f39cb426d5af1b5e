"""rlbook.policies against numpy and scipy.stats references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from rlbook import envs, mdp, nets, policies


def numpy_logits(params, obs):
    h = np.asarray(obs, np.float64)
    for layer in params[:-1]:
        h = np.tanh(h @ np.asarray(layer["w"], np.float64) + np.asarray(layer["b"], np.float64))
    return h @ np.asarray(params[-1]["w"], np.float64) + np.asarray(params[-1]["b"], np.float64)


def batch_log_prob(pol):
    return jax.jit(jax.vmap(pol.log_prob, (None, None, 0)))


def test_softmax_policy_matches_numpy():
    pol = policies.SoftmaxPolicy(obs_dim=4, n_actions=3, hidden=(8, 8), final_scale=1.0)
    params = pol.init(jax.random.PRNGKey(0))
    obs = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    logp = special.log_softmax(numpy_logits(params, obs), axis=-1)
    table = jax.vmap(lambda o: jax.vmap(lambda a: pol.log_prob(params, o, a))(jnp.arange(3)))
    got = jax.jit(table)(obs)
    np.testing.assert_allclose(got, logp, atol=1e-5)
    np.testing.assert_allclose(
        jax.vmap(pol.entropy, (None, 0))(params, obs), -(np.exp(logp) * logp).sum(-1), atol=1e-5
    )
    other = pol.init(jax.random.PRNGKey(1))
    logq = special.log_softmax(numpy_logits(other, obs), axis=-1)
    np.testing.assert_allclose(
        jax.vmap(pol.kl, (None, None, 0))(params, other, obs),
        (np.exp(logp) * (logp - logq)).sum(-1),
        atol=1e-5,
    )
    np.testing.assert_array_equal(jax.vmap(pol.mode, (None, 0))(params, obs), logp.argmax(-1))
    assert nets.n_params(params) == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3


def test_softmax_samples_follow_the_policy_and_report_their_log_prob():
    pol = policies.SoftmaxPolicy(obs_dim=2, n_actions=4, hidden=(5,), final_scale=1.0)
    params = pol.init(jax.random.PRNGKey(2))
    obs = jnp.array([0.3, -1.2], jnp.float32)
    n = 40_000
    a, logp = jax.jit(jax.vmap(pol.sample, (0, None, None)))(
        jax.random.split(jax.random.PRNGKey(3), n), params, obs
    )
    assert a.dtype == jnp.int32 and a.shape == (n,)
    np.testing.assert_allclose(logp, batch_log_prob(pol)(params, obs, a), atol=1e-6)
    p = np.asarray(pol.probs(params, obs), np.float64)
    assert stats.chisquare(np.bincount(np.asarray(a), minlength=4), n * p / p.sum()).pvalue > 1e-3


def test_score_has_mean_zero_exactly():
    """Σ_a π(a|s) ∇_θ log π(a|s) = ∇_θ Σ_a π(a|s) = 0, the identity behind baselines."""
    pol = policies.SoftmaxPolicy(obs_dim=3, n_actions=5, hidden=(6,), final_scale=1.0)
    params = jax.tree_util.tree_map(
        lambda x: x.astype(jnp.float64), pol.init(jax.random.PRNGKey(4))
    )
    obs = jnp.array([0.1, 0.5, -0.7])
    probs = pol.probs(params, obs)
    scores = jax.jit(jax.vmap(jax.grad(pol.log_prob), (None, None, 0)))(params, obs, jnp.arange(5))
    mean = jax.tree_util.tree_map(lambda g: jnp.tensordot(probs, g, axes=1), scores)
    assert max(float(jnp.max(jnp.abs(m))) for m in jax.tree_util.tree_leaves(mean)) < 1e-12


def test_tabular_softmax_is_mdp_softmax_policy():
    pol = policies.TabularSoftmax(n_states=4, n_actions=3)
    theta = pol.init(jax.random.PRNGKey(0), scale=1.0, dtype=jnp.float64)
    table = mdp.softmax_policy(theta)
    np.testing.assert_allclose(pol.probs_table(theta), table, rtol=1e-14)
    for s in range(4):
        for a in range(3):
            np.testing.assert_allclose(pol.log_prob(theta, s, a), np.log(table[s, a]), rtol=1e-12)
    np.testing.assert_array_equal(pol.init(jax.random.PRNGKey(0)), 0.0)  # uniform by default
    with pytest.raises(ValueError, match="params"):
        pol.log_prob(jnp.zeros((3, 3)), 0, 0)
    with pytest.raises(ValueError, match="obs"):
        pol.log_prob(theta, jnp.array([0, 1]), 0)


def test_gaussian_policy_matches_scipy():
    pol = policies.GaussianPolicy(
        obs_dim=3, action_dim=2, hidden=(8,), final_scale=1.0, init_log_std=-0.5
    )
    params = pol.init(jax.random.PRNGKey(5))
    params["log_std"] = jnp.array([-0.5, 0.3], jnp.float32)
    obs = jnp.array([0.2, -0.4, 1.0], jnp.float32)
    mean = numpy_logits(params["mean"], obs)
    std = np.exp(np.asarray(params["log_std"], np.float64))
    x = np.array([0.7, -1.1], np.float32)
    np.testing.assert_allclose(
        pol.log_prob(params, obs, x), stats.norm(mean, std).logpdf(x).sum(), rtol=1e-5
    )
    np.testing.assert_allclose(
        pol.entropy(params, obs), stats.norm(mean, std).entropy().sum(), rtol=1e-5
    )
    other = dict(params, log_std=jnp.array([0.1, 0.1], jnp.float32))
    s_q = np.exp(0.1)
    kl = np.sum(np.log(s_q / std) + std**2 / (2 * s_q**2) - 0.5)  # same mean
    np.testing.assert_allclose(pol.kl(params, other, obs), kl, rtol=1e-5)
    n = 40_000
    a, logp = jax.jit(jax.vmap(pol.sample, (0, None, None)))(
        jax.random.split(jax.random.PRNGKey(6), n), params, obs
    )
    assert a.shape == (n, 2)
    np.testing.assert_allclose(a.mean(0), mean, atol=5 * std.max() / np.sqrt(n))
    np.testing.assert_allclose(a.std(0), std, rtol=0.03)
    np.testing.assert_allclose(logp, batch_log_prob(pol)(params, obs, a), atol=1e-5)
    np.testing.assert_allclose(pol.mode(params, obs), mean, rtol=1e-5)


def test_for_env_and_bad_arguments():
    cart, _ = envs.make("CartPole-v1")
    pend, _ = envs.make("Pendulum-v1")
    assert isinstance(policies.for_env(cart), policies.SoftmaxPolicy)
    assert isinstance(policies.for_env(pend, (16,)), policies.GaussianPolicy)
    with pytest.raises(ValueError, match="env"):
        policies.for_env(object())
    with pytest.raises(ValueError, match="hidden"):
        policies.SoftmaxPolicy(4, 2, hidden=[64])
    with pytest.raises(ValueError, match=r"hidden\[1\]"):
        policies.SoftmaxPolicy(4, 2, hidden=(64, 0))
    with pytest.raises(ValueError, match="n_actions"):
        policies.SoftmaxPolicy(4, 0)
    with pytest.raises(ValueError, match="action_dim"):
        policies.GaussianPolicy(3, 0)
    with pytest.raises(ValueError, match="init_log_std"):
        policies.GaussianPolicy(3, 1, init_log_std=float("nan"))
    pol = policies.SoftmaxPolicy(4, 2, hidden=(4,))
    params = pol.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="obs"):
        pol.log_prob(params, jnp.zeros((5, 4)), 0)  # a batch: use jax.vmap
    with pytest.raises(ValueError, match="action"):
        pol.log_prob(params, jnp.zeros(4), jnp.zeros(2, jnp.int32))
    g = policies.GaussianPolicy(3, 1, hidden=(4,))
    with pytest.raises(ValueError, match="action"):
        g.log_prob(g.init(jax.random.PRNGKey(0)), jnp.zeros(3), jnp.zeros(()))
