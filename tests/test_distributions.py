"""The reparameterizable families of rlbook.distributions against scipy.stats.

Samplers: moments and Kolmogorov–Smirnov tests against scipy.stats (or, for the
Kumaraswamy and Concrete laws scipy lacks, their CDFs written here). Log-densities and
entropies: scipy.stats, closed forms, numerical integration. Reparameterized gradients:
central finite differences of the sampler at the same key, and the derivative of
scipy's mean. Bad parameters raise ValueError.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from rlbook import distributions as D

N = 20_000  # draws per sampler test
P_MIN = 1e-3  # KS / chi-square p-values below this fail (fixed seeds: deterministic)


@functools.cache
def _batched(sampler):
    return jax.jit(lambda keys, *params: jax.vmap(lambda k: sampler(k, *params))(keys))


def draws(sampler, *params, n=N, seed=0):
    """n draws of ``sampler(key, *params)``: one compile per sampler, the params traced."""
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return np.asarray(_batched(sampler)(keys, *params))


def fd(fun, x, h=1e-6):
    """Central finite difference of a scalar function of a float."""
    return (fun(x + h) - fun(x - h)) / (2 * h)


# ------------------------------------------------------------------ multivariate Gaussian

MEAN = jnp.array([0.5, -1.0, 2.0])
L = jnp.array([[1.2, 0.0, 0.0], [0.4, 0.7, 0.0], [-0.3, 0.5, 0.9]])


def test_mvn_against_scipy():
    cov = np.asarray(L @ L.T)
    ref = stats.multivariate_normal(np.asarray(MEAN), cov)
    x = jnp.array([0.1, -0.2, 1.5])
    np.testing.assert_allclose(D.mvn_log_prob(MEAN, L, x), ref.logpdf(np.asarray(x)), rtol=1e-12)
    np.testing.assert_allclose(D.mvn_entropy(MEAN, L), ref.entropy(), rtol=1e-12)
    xs = draws(D.mvn_sample, MEAN, L)
    # Sample mean: standard error sqrt(Σ_ii / N) ≤ 1.5/141 ≈ 0.011; 5 SE ≈ 0.05.
    np.testing.assert_allclose(xs.mean(0), MEAN, atol=5 * np.sqrt(cov.diagonal().max() / N))
    # Sample covariance: SE of entry (i, j) is sqrt((Σ_ii Σ_jj + Σ_ij²)/N) ≤ sqrt(2)·2.1/141.
    se = np.sqrt((np.outer(cov.diagonal(), cov.diagonal()) + cov**2) / N)
    assert np.all(np.abs(np.cov(xs.T) - cov) < 5 * se)
    # KS on a projection: vᵀx ∼ N(vᵀμ, vᵀΣv).
    v = np.array([1.0, -2.0, 0.5])
    ks = stats.kstest(xs @ v, "norm", (float(v @ MEAN), float(np.sqrt(v @ cov @ v))))
    assert ks.pvalue > P_MIN


def test_mvn_kl_against_monte_carlo_and_the_diagonal_case():
    Lq = jnp.array([[0.8, 0.0, 0.0], [-0.2, 1.1, 0.0], [0.1, 0.3, 0.6]])
    mq = jnp.array([0.0, 0.5, 1.0])
    kl = float(D.mvn_kl(MEAN, L, mq, Lq))
    xs = draws(D.mvn_sample, MEAN, L, n=200_000, seed=3)
    ratio = stats.multivariate_normal(np.asarray(MEAN), np.asarray(L @ L.T)).logpdf(
        xs
    ) - stats.multivariate_normal(np.asarray(mq), np.asarray(Lq @ Lq.T)).logpdf(xs)
    # Monte-Carlo KL = mean log ratio; tolerance: 5 standard errors of that mean.
    assert abs(ratio.mean() - kl) < 5 * ratio.std() / np.sqrt(len(ratio))
    d1, d2 = jnp.array([0.3, 1.2, 0.5]), jnp.array([1.0, 0.4, 2.0])
    np.testing.assert_allclose(
        D.mvn_kl(MEAN, jnp.diag(d1), mq, jnp.diag(d2)),
        D.gaussian_kl(MEAN, jnp.log(d1), mq, jnp.log(d2)),
        rtol=1e-12,
    )
    np.testing.assert_allclose(D.mvn_kl(MEAN, L, MEAN, L), 0.0, atol=1e-12)


def test_mvn_sample_is_reparameterized():
    key = jax.random.PRNGKey(5)
    # ∂x/∂μ = I and ∂x/∂L_ij = ε_j e_i, compared with finite differences at the same key.
    jac = jax.jit(jax.jacobian(D.mvn_sample, argnums=(1, 2)))(key, MEAN, L)
    np.testing.assert_allclose(jac[0], np.eye(3), atol=1e-12)
    e = np.zeros((3, 3))
    e[2, 1] = 1.0
    sample = jax.jit(D.mvn_sample)
    want = fd(lambda h: np.asarray(sample(key, MEAN, L + h * e)), 0.0)
    np.testing.assert_allclose(jac[1][:, 2, 1], want, rtol=1e-6, atol=1e-9)


def test_mvn_rejects_bad_scale():
    with pytest.raises(ValueError, match="scale_tril's diagonal"):
        D.mvn_sample(jax.random.PRNGKey(0), MEAN, L.at[1, 1].set(-0.7))
    with pytest.raises(ValueError, match="lower triangular"):
        D.mvn_log_prob(MEAN, L.at[0, 2].set(0.1), MEAN)
    with pytest.raises(ValueError, match="scale_tril must have shape"):
        D.mvn_entropy(MEAN, L[:2, :2])
    with pytest.raises(ValueError, match="x must have"):
        D.mvn_log_prob(MEAN, L, MEAN[:2])


# ------------------------------------------------------------------ truncated normal

TN_LOG_PROB = jax.jit(jax.vmap(D.truncated_normal_log_prob, (None, None, None, None, 0)))
TN_ICDF = jax.jit(jax.vmap(D.truncated_normal_icdf, (None, None, None, None, 0)))
TN_CASES = [  # (loc, scale, low, high): two-sided, one-sided each way, far in the right tail
    (0.3, 1.5, -1.0, 2.0),
    (1.0, 0.5, -np.inf, 0.5),
    (-0.5, 2.0, 0.0, np.inf),
    (0.0, 1.0, 4.0, 6.0),
]


@pytest.mark.parametrize("loc,scale,low,high", TN_CASES)
def test_truncated_normal_against_scipy(loc, scale, low, high):
    ref = stats.truncnorm((low - loc) / scale, (high - loc) / scale, loc=loc, scale=scale)
    grid = np.linspace(max(low, loc - 4 * scale), min(high, loc + 4 * scale), 7)[1:-1]
    got = TN_LOG_PROB(loc, scale, low, high, grid)
    np.testing.assert_allclose(got, ref.logpdf(grid), rtol=1e-9)
    # scipy's entropy is nan with an infinite bound: integrate −log p instead.
    entropy = ref.expect(lambda t: -ref.logpdf(t), epsabs=1e-12, epsrel=1e-12)
    np.testing.assert_allclose(
        jax.jit(D.truncated_normal_entropy)(loc, scale, low, high), entropy, rtol=1e-8
    )
    outside = low - 1.0 if np.isfinite(low) else high + 1.0
    assert D.truncated_normal_log_prob(loc, scale, low, high, outside) == -np.inf
    u = np.array([1e-6, 0.1, 0.5, 0.9, 1 - 1e-6])
    icdf = TN_ICDF(loc, scale, low, high, u)
    np.testing.assert_allclose(icdf, ref.ppf(u), rtol=1e-7)
    xs = draws(D.truncated_normal_sample, loc, scale, low, high)
    assert np.all((xs >= low) & (xs <= high))
    # Mean within 5 standard errors sqrt(Var/N); KS against scipy's CDF.
    assert abs(xs.mean() - ref.mean()) < 5 * ref.std() / np.sqrt(N)
    assert stats.kstest(xs, ref.cdf).pvalue > P_MIN


def test_truncated_normal_sample_is_reparameterized():
    loc, scale, low, high = 0.3, 1.5, -1.0, 2.0
    key = jax.random.PRNGKey(7)
    sample = jax.jit(D.truncated_normal_sample)
    grads = jax.jit(jax.grad(D.truncated_normal_sample, argnums=(1, 2, 3, 4)))(
        key, loc, scale, low, high
    )
    for i, g in enumerate(grads):

        def moved(h, i=i):
            args = [loc, scale, low, high]
            args[i] += h
            return float(sample(key, *args))

        np.testing.assert_allclose(g, fd(moved, 0.0), rtol=1e-6, atol=1e-9)
    # In expectation: ∂/∂μ E[x] from pathwise gradients equals the finite difference of
    # scipy's mean. The pathwise derivative lies in [0, 2] here (its sd < 1), so over
    # 20 000 draws 0.03 is more than 4 standard errors.
    keys = jax.random.split(jax.random.PRNGKey(8), N)
    dmean = jax.jit(
        jax.vmap(jax.grad(D.truncated_normal_sample, argnums=1), (0, None, None, None, None))
    )(keys, loc, scale, low, high)

    def scipy_mean(m):
        return stats.truncnorm.mean((low - m) / scale, (high - m) / scale, loc=m, scale=scale)

    assert np.std(dmean) < 1.0
    assert abs(float(dmean.mean()) - fd(scipy_mean, loc, 1e-5)) < 0.03


def test_truncated_normal_rejects_bad_parameters():
    with pytest.raises(ValueError, match="scale"):
        D.truncated_normal_sample(jax.random.PRNGKey(0), 0.0, -1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="low must be < high"):
        D.truncated_normal_log_prob(0.0, 1.0, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="scale"):
        D.truncated_normal_entropy(0.0, 0.0, -1.0, 1.0)


# ------------------------------------------------------------------ Kumaraswamy


def kumaraswamy_cdf(x, a, b):
    return 1.0 - (1.0 - x**a) ** b


@pytest.mark.parametrize("a,b", [(2.0, 5.0), (0.5, 0.7), (1.0, 3.0)])
def test_kumaraswamy_against_closed_forms(a, b):
    x = np.array([0.05, 0.3, 0.6, 0.95])
    want = np.log(a * b * x ** (a - 1) * (1 - x**a) ** (b - 1))
    np.testing.assert_allclose(D.kumaraswamy_log_prob(a, b, jnp.asarray(x)), want, rtol=1e-12)
    if a == 1.0:  # Kumaraswamy(1, b) is Beta(1, b)
        np.testing.assert_allclose(
            D.kumaraswamy_log_prob(a, b, jnp.asarray(x)), stats.beta(1.0, b).logpdf(x), rtol=1e-12
        )

    def density(t):
        return a * b * t ** (a - 1) * (1 - t**a) ** (b - 1)

    h, _ = integrate.quad(lambda t: -density(t) * np.log(density(t)), 0, 1, limit=200)
    np.testing.assert_allclose(D.kumaraswamy_entropy(a, b), h, rtol=1e-6)
    u = np.array([0.01, 0.5, 0.99])
    np.testing.assert_allclose(
        kumaraswamy_cdf(np.asarray(D.kumaraswamy_icdf(a, b, u)), a, b), u, rtol=1e-12
    )
    xs = draws(D.kumaraswamy_sample, a, b)
    # Moments E[x^m] = b B(1 + m/a, b); tolerance 5 standard errors sqrt(Var(x^m)/N).
    for m in (1, 2):
        moment = b * special.beta(1 + m / a, b)
        sd = np.sqrt(b * special.beta(1 + 2 * m / a, b) - moment**2)
        assert abs((xs**m).mean() - moment) < 5 * sd / np.sqrt(N)
    assert stats.kstest(xs, lambda t: kumaraswamy_cdf(t, a, b)).pvalue > P_MIN


def test_kumaraswamy_sample_is_reparameterized():
    a, b, key = 2.0, 5.0, jax.random.PRNGKey(4)
    sample = jax.jit(D.kumaraswamy_sample)
    ga, gb = jax.jit(jax.grad(D.kumaraswamy_sample, argnums=(1, 2)))(key, a, b)
    np.testing.assert_allclose(ga, fd(lambda t: float(sample(key, t, b)), a), rtol=1e-6)
    np.testing.assert_allclose(gb, fd(lambda t: float(sample(key, a, t)), b), rtol=1e-6)
    # ∂/∂b E[x] = ∂/∂b [b B(1 + 1/a, b)]: the pathwise derivative's sd is < 0.1 here,
    # so over 20 000 draws 0.003 is more than 4 standard errors.
    keys = jax.random.split(jax.random.PRNGKey(9), N)
    dm = jax.jit(jax.vmap(jax.grad(D.kumaraswamy_sample, argnums=2), (0, None, None)))(keys, a, b)
    assert np.std(dm) < 0.1
    assert abs(float(dm.mean()) - fd(lambda t: t * special.beta(1 + 1 / a, t), b)) < 0.003


def test_kumaraswamy_rejects_bad_parameters():
    with pytest.raises(ValueError, match="a must"):
        D.kumaraswamy_sample(jax.random.PRNGKey(0), -1.0, 2.0)
    with pytest.raises(ValueError, match="b must"):
        D.kumaraswamy_log_prob(1.0, 0.0, 0.5)


# ------------------------------------------------------------------ Gumbel-max, Gumbel-softmax

PROBS = jnp.array([0.1, 0.2, 0.3, 0.4])


def test_gumbel_max_samples_the_categorical():
    logits = D.logits_from_probs(PROBS)
    a = draws(D.gumbel_max_sample, logits, n=40_000)
    counts = np.bincount(a, minlength=4)
    assert stats.chisquare(counts, 40_000 * np.asarray(PROBS)).pvalue > P_MIN


def test_gumbel_softmax_anneals_to_gumbel_max():
    logits = jnp.array([0.3, -1.0, 2.0])
    hard = draws(D.gumbel_max_sample, logits, n=500, seed=2)
    for tau in (5.0, 0.5, 0.05):  # the same keys, so the same Gumbel noise, at every τ
        y = draws(D.gumbel_softmax_sample, logits, tau, n=500, seed=2)
        np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-12)
        np.testing.assert_array_equal(jnp.argmax(y, -1), hard)


def test_concrete_log_prob_two_categories_is_a_logistic_law():
    """K = 2: y₁ = σ((Δ + L)/τ), L ∼ Logistic(0, 1), Δ = θ₁ − θ₂, so
    p(y₁) = τ f_L(τ logit y₁ − Δ) / (y₁(1 − y₁))."""
    logits, tau = jnp.array([0.7, -0.4]), 0.6
    delta = float(logits[0] - logits[1])
    y1 = np.array([0.01, 0.2, 0.5, 0.8, 0.99])
    want = (
        stats.logistic.logpdf(tau * special.logit(y1) - delta) + np.log(tau) - np.log(y1 * (1 - y1))
    )
    got = jax.jit(
        jax.vmap(lambda t: D.gumbel_softmax_log_prob(logits, tau, jnp.stack([t, 1 - t])))
    )(y1)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_allclose(
        D.gumbel_softmax_log_prob(logits + 3.0, tau, jnp.array([0.3, 0.7])),
        D.gumbel_softmax_log_prob(logits, tau, jnp.array([0.3, 0.7])),
        rtol=1e-12,
    )
    ys = draws(D.gumbel_softmax_sample, logits, tau)[:, 0]
    cdf = lambda t: stats.logistic.cdf(tau * special.logit(t) - delta)  # noqa: E731
    assert stats.kstest(ys, cdf).pvalue > P_MIN


def test_concrete_density_integrates_to_one_on_the_simplex():
    logits, tau = jnp.array([0.5, -0.3, 1.0]), 0.8
    # Midpoint rule on the triangle {y₁, y₂ > 0, y₁ + y₂ < 1}: the density is bounded there
    # ((K − 1)τ ≥ 1 keeps it bounded at the edges), and the rule converges as h² ≈ 2e-6.
    m = 800
    g = (np.arange(m) + 0.5) / m
    y1, y2 = np.meshgrid(g, g)
    inside = y1 + y2 < 1 - 0.5 / m
    ys = np.stack([y1[inside], y2[inside], 1 - y1[inside] - y2[inside]], -1)
    dens = np.exp(jax.jit(jax.vmap(lambda y: D.gumbel_softmax_log_prob(logits, tau, y)))(ys))
    # Cells cut by the diagonal are half-counted: their share is O(1/m).
    assert abs(dens.sum() / m**2 - 1.0) < 5e-3


def test_gumbel_rejects_bad_parameters():
    with pytest.raises(ValueError, match="probs must sum to 1"):
        D.logits_from_probs(jnp.array([0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="probs has negative"):
        D.logits_from_probs(jnp.array([-0.2, 0.8, 0.4]))
    with pytest.raises(ValueError, match="temperature"):
        D.gumbel_softmax_sample(jax.random.PRNGKey(0), jnp.zeros(3), 0.0)
    with pytest.raises(ValueError, match="temperature"):
        D.gumbel_softmax_log_prob(jnp.zeros(3), -1.0, jnp.ones(3) / 3)
    with pytest.raises(ValueError, match="logits"):
        D.gumbel_max_sample(jax.random.PRNGKey(0), jnp.zeros((2, 3)))
