"""rlbook.estimators against closed forms.

Every Monte-Carlo check compares a batch mean with its closed-form expectation within
five standard errors, the standard error computed from the per-sample variance in
closed form where we know it (the Gaussian problem, the categorical by enumeration).
With fixed seeds the tests are deterministic; five standard errors make a failure of a
correct estimator a < 1e-6 event for any seed.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbook import distributions as D
from rlbook import estimators as E

N = 20_000
Z = 5.0  # standard errors of tolerance


# The running example: J(θ) = E_{x∼N(θ,1)}[x² θ] = θ(1 + θ²), ∇J = 1 + 3θ².
def f(x, theta):
    return x**2 * theta


def sample(key, theta):
    return D.gaussian_sample(key, theta, 0.0)


def log_prob(theta, x):
    return D.gaussian_log_prob(theta, 0.0, x)


def gaussian_moments(theta):
    """E[x^k], k = 0..6, for x ∼ N(θ, 1)."""
    t = theta
    return [
        1.0,
        t,
        t**2 + 1,
        t**3 + 3 * t,
        t**4 + 6 * t**2 + 3,
        t**5 + 10 * t**3 + 15 * t,
        t**6 + 15 * t**4 + 45 * t**2 + 15,
    ]


def per_sample_variances(theta):
    """Closed-form variances of one sample's term. Naive: Var x² = 2 + 4θ². Score function:
    g = x²(θ(x − θ) + 1) = θx³ + (1 − θ²)x². Reparameterization: x = θ + ε,
    ∂/∂θ [(θ + ε)² θ] = 3θ² + 4θε + ε², variance 16θ² + 2."""
    m = gaussian_moments(theta)
    sf_second = theta**2 * m[6] + 2 * theta * (1 - theta**2) * m[5] + (1 - theta**2) ** 2 * m[4]
    return {
        "naive": 2 + 4 * theta**2,
        "score": sf_second - (1 + 3 * theta**2) ** 2,
        "reparam": 2 + 16 * theta**2,
    }


@functools.partial(jax.jit, static_argnums=2)
def estimates(key, theta, n=N):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "naive": E.naive(k1, f, sample, theta, n),
        "score": E.score_function(k2, f, sample, log_prob, theta, n),
        "reparam": E.reparameterization(k3, f, sample, theta, n),
    }


def test_variance_formulas_by_gauss_hermite_quadrature():
    # Gauss–Hermite with 20 nodes integrates polynomials of degree < 40 exactly.
    eps, w = np.polynomial.hermite_e.hermegauss(20)
    w = w / w.sum()
    for theta in (-1.3, 0.0, 1.0, 2.0):
        x = theta + eps
        terms = {"naive": x**2, "score": x**2 * (theta * eps + 1), "reparam": x * (3 * theta + eps)}
        for name, g in terms.items():
            mean = w @ g
            want_mean = 1 + theta**2 if name == "naive" else 1 + 3 * theta**2
            np.testing.assert_allclose(mean, want_mean, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(
                w @ (g - mean) ** 2, per_sample_variances(theta)[name], rtol=1e-10
            )


@settings(max_examples=8, deadline=None)
@given(theta=st.floats(-2.0, 2.0), seed=st.integers(0, 2**31 - 1))
def test_estimators_means_on_the_gaussian_problem(theta, seed):
    """Naive: mean 1 + θ² (bias −2θ²); score function and reparameterization: 1 + 3θ²."""
    got = estimates(jax.random.PRNGKey(seed), theta)
    var = per_sample_variances(theta)
    want = {"naive": 1 + theta**2, "score": 1 + 3 * theta**2, "reparam": 1 + 3 * theta**2}
    for name in got:
        assert abs(float(got[name]) - want[name]) < Z * np.sqrt(var[name] / N), name


@jax.jit
def baselined(key, theta, b):
    return E.score_function(key, f, sample, log_prob, theta, N, b)


@settings(max_examples=6, deadline=None)
@given(b=st.floats(-10.0, 10.0))
def test_score_function_is_unbiased_for_any_constant_baseline(b):
    got = baselined(jax.random.PRNGKey(1), 1.0, b)
    # At θ = 1 the term is (1 + ε)³ − bε: variance 60 − 12b + b².
    assert abs(float(got) - 4.0) < Z * np.sqrt((60 - 12 * b + b**2) / N)


def test_importance_weighted_score_function_with_a_wide_proposal():
    theta, scale_q = 1.0, 2.0

    def sample_q(key):
        return scale_q * jax.random.normal(key, (), jnp.float64)

    def log_q(x):
        return D.gaussian_log_prob(jnp.zeros(()), jnp.log(scale_q), x)

    terms = jax.jit(jax.vmap(lambda x: E.importance_term(f, log_prob, log_q, theta, x)))(
        jax.vmap(sample_q)(jax.random.split(jax.random.PRNGKey(2), N))
    )
    est = jax.jit(lambda k: E.importance(k, f, log_prob, sample_q, log_q, theta, N))(
        jax.random.PRNGKey(2)
    )
    np.testing.assert_allclose(est, terms.mean(), rtol=1e-12)
    # The weights p/q are bounded here, so the terms have finite variance; tolerance from
    # their sample standard deviation.
    assert abs(float(est) - 4.0) < Z * float(terms.std()) / np.sqrt(N)


def test_score_function_on_a_categorical():
    """J(θ) = Σ_a softmax(θ)_a c_a, ∇J = p ⊙ (c − pᵀc); one sample's term is c_a (e_a − p)."""
    logits, c = jnp.array([0.2, -0.5, 1.0, 0.0]), jnp.array([1.0, -2.0, 3.0, 0.5])
    p = jax.nn.softmax(logits)
    terms = c[:, None] * (jnp.eye(4) - p)  # row a: the term when a is drawn
    mean = p @ terms
    np.testing.assert_allclose(mean, p * (c - p @ c), rtol=1e-12)
    var = p @ (terms - mean) ** 2
    got = jax.jit(
        lambda k: E.score_function(
            k, lambda a, th: c[a], D.categorical_sample, D.categorical_log_prob, logits, N
        )
    )(jax.random.PRNGKey(3))
    assert np.all(np.abs(got - mean) < Z * np.sqrt(var / N))


def test_reparameterization_with_a_pytree_of_parameters():
    """x ∼ N(μ, diag σ²), f = ‖x‖²: ∇_μ = 2μ (term 2x, variance 4σ²),
    ∇_{log σ} = 2σ² (term 2σ²ε², variance 8σ⁴)."""
    theta = {"mean": jnp.array([0.5, -1.0]), "log_std": jnp.array([0.0, -0.7])}

    def rsample(key, th):
        return D.gaussian_sample(key, th["mean"], th["log_std"])

    got = jax.jit(
        lambda k: E.reparameterization(k, lambda x, th: jnp.sum(x**2), rsample, theta, N)
    )(jax.random.PRNGKey(4))
    s2 = jnp.exp(2 * theta["log_std"])
    assert np.all(np.abs(got["mean"] - 2 * theta["mean"]) < Z * np.sqrt(4 * s2 / N))
    assert np.all(np.abs(got["log_std"] - 2 * s2) < Z * np.sqrt(8 * s2**2 / N))


def test_estimators_vmap_over_keys_and_parameters():
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    thetas = jnp.array([0.5, 1.0, 1.5])
    batched = jax.jit(jax.vmap(lambda k, t: E.score_function(k, f, sample, log_prob, t, 64)))
    one = jax.jit(lambda k, t: E.score_function(k, f, sample, log_prob, t, 64))
    np.testing.assert_allclose(
        batched(keys, thetas), [one(k, t) for k, t in zip(keys, thetas, strict=True)], rtol=1e-12
    )


def test_control_variate_with_the_optimal_coefficient():
    """g = x + x², c = x, x ∼ N(0, 1): β* = Cov(g, c)/Var(c) = 1, and g − β*c = x² has
    variance Var(x²) = 2 instead of Var(g) = 3."""
    x = jax.random.normal(jax.random.PRNGKey(6), (N,), jnp.float64)
    g, c = x + x**2, x
    beta = E.optimal_coefficient(g, c)
    # β̂ − 1 = Ĉov(x², x)/V̂ar(x) ≈ mean of x³ (to first order), whose per-sample variance
    # is E[x⁶] = 15: standard error sqrt(15/N).
    assert abs(float(beta) - 1.0) < Z * np.sqrt(15 / N)
    controlled = E.control_variate(g, c, 0.0, beta)
    np.testing.assert_allclose(controlled, g - beta * c)
    # Variance of x²: 2; its sample variance has SE sqrt((E(x²−1)⁴ − 4)/N) = sqrt(56/N).
    assert abs(float(controlled.var()) - 2.0) < Z * np.sqrt(56 / N)
    assert float(g.var()) > float(controlled.var()) + 0.5


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n must be"):
        E.naive(jax.random.PRNGKey(0), f, sample, 1.0, 0)
    with pytest.raises(ValueError, match="n must be"):
        E.reparameterization(jax.random.PRNGKey(0), f, sample, 1.0, 2.5)
    with pytest.raises(ValueError, match="controls must have"):
        E.optimal_coefficient(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match="sample axis"):
        E.optimal_coefficient(jnp.ones(1), jnp.ones(1))
