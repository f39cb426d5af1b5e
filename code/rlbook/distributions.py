r"""Distributions as pure functions: sample, log-probability, entropy, KL.

Unbatched and shape-polymorphic in the trailing event axis: a categorical takes
``logits`` of shape [K]; a diagonal Gaussian takes ``mean`` and ``log_std`` of
shape [D] and sums over that axis. Batch with ``jax.vmap``. Samplers take a
``jax.random`` key first; reparameterized samplers are differentiable in the
parameters (x = g(ε; θ) with ε independent of θ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks

__all__ = [
    "categorical_sample",
    "categorical_log_prob",
    "categorical_entropy",
    "categorical_kl",
    "gaussian_sample",
    "gaussian_log_prob",
    "gaussian_entropy",
    "gaussian_kl",
    "logits_from_probs",
    "mvn_sample",
    "mvn_log_prob",
    "mvn_entropy",
    "mvn_kl",
    "truncated_normal_icdf",
    "truncated_normal_sample",
    "truncated_normal_log_prob",
    "truncated_normal_entropy",
    "kumaraswamy_icdf",
    "kumaraswamy_sample",
    "kumaraswamy_log_prob",
    "kumaraswamy_entropy",
    "gumbel_max_sample",
    "gumbel_softmax_sample",
    "gumbel_softmax_log_prob",
]

_LOG_2PI = jnp.log(2.0 * jnp.pi)


def _finite(name: str, x) -> None:
    """``x`` is real and, when concrete, finite: ``None``, strings, NaN and ±inf are refused by
    name before any ``jnp`` call sees them. A tracer has only its dtype checked."""
    if _checks.is_concrete(x):
        _checks.finite(name, x)
    else:
        _checks.real(name, x)


# ------------------------------------------------------------------ categorical / softmax


def categorical_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """a ∼ softmax(logits), an integer in [0, K)."""
    _finite("logits", logits)
    _checks.ndim("logits", logits, 1)
    return jax.random.categorical(key, logits)


def categorical_log_prob(logits: jax.Array, a: jax.Array) -> jax.Array:
    """log softmax(logits)[a], for an integer a in [0, K).

    A concrete ``a`` outside [0, K) (or not an integer) raises ``ValueError``. Under
    ``jit``/``vmap`` a traced ``a`` cannot be checked: one outside [0, K) gives NaN
    (never the log-probability of the nearest valid index, which JAX's indexing
    would clamp it to).
    """
    _finite("logits", logits)
    _checks.ndim("logits", logits, 1)
    _checks.index("a", a, jnp.shape(logits)[0], what="a category index")
    k = jnp.shape(logits)[0]
    return _checks.nan_unless((a >= 0) & (a < k), jax.nn.log_softmax(logits)[a])


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """H = −Σ_k p_k log p_k with p = softmax(logits)."""
    _finite("logits", logits)
    _checks.ndim("logits", logits, 1)
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp)


def categorical_kl(logits_p: jax.Array, logits_q: jax.Array) -> jax.Array:
    """KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) for p = softmax(logits_p), q = softmax(logits_q)."""
    _finite("logits_p", logits_p)
    _finite("logits_q", logits_q)
    if jnp.shape(logits_p) != jnp.shape(logits_q):
        raise ValueError(
            f"logits_q must have the shape of logits_p {jnp.shape(logits_p)}, "
            f"got {jnp.shape(logits_q)}"
        )
    logp, logq = jax.nn.log_softmax(logits_p), jax.nn.log_softmax(logits_q)
    return jnp.sum(jnp.exp(logp) * (logp - logq))


# ------------------------------------------------------------------ diagonal Gaussian


def _check_gaussian(mean, log_std, mean_name="mean", log_std_name="log_std"):
    _finite(mean_name, mean)
    _finite(log_std_name, log_std)
    if jnp.shape(log_std) not in ((), jnp.shape(mean)):
        raise ValueError(
            f"{log_std_name} must be a scalar or have the shape of {mean_name} "
            f"{jnp.shape(mean)}, got {jnp.shape(log_std)}"
        )


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """x = μ + σ ⊙ ε with ε ∼ N(0, I): reparameterized, differentiable in μ and log σ."""
    _check_gaussian(mean, log_std)
    eps = jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))
    return mean + jnp.exp(log_std) * eps


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, x: jax.Array) -> jax.Array:
    """log N(x; μ, diag σ²) = Σ_i [−(x_i − μ_i)² / (2σ_i²) − log σ_i − ½ log 2π]."""
    _check_gaussian(mean, log_std)
    _finite("x", x)
    if jnp.shape(x) != jnp.shape(mean):
        raise ValueError(f"x must have the shape of mean {jnp.shape(mean)}, got {jnp.shape(x)}")
    return _gaussian_log_prob(mean, log_std, x)


def _gaussian_log_prob(mean, log_std, x):
    """:func:`gaussian_log_prob` without the checks, for an ``x`` computed here (which may be
    ±inf, e.g. atanh of a clipped action, where the caller masks the result)."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI)


def gaussian_entropy(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """H = Σ_i (log σ_i + ½ log 2πe)."""
    _check_gaussian(mean, log_std)
    return jnp.sum(jnp.broadcast_to(log_std, jnp.shape(mean)) + 0.5 * (_LOG_2PI + 1.0))


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) -> jax.Array:
    """KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²)) = Σ_i [log σ_q/σ_p + (σ_p² + (μ_p − μ_q)²)/(2σ_q²) − ½]."""
    _check_gaussian(mean_p, log_std_p, "mean_p", "log_std_p")
    _check_gaussian(mean_q, log_std_q, "mean_q", "log_std_q")
    if jnp.shape(mean_q) != jnp.shape(mean_p):
        raise ValueError(
            f"mean_q must have the shape of mean_p {jnp.shape(mean_p)}, got {jnp.shape(mean_q)}"
        )
    var_p, var_q = jnp.exp(2 * log_std_p), jnp.exp(2 * log_std_q)
    kl = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
    return jnp.sum(jnp.broadcast_to(kl, jnp.broadcast_shapes(jnp.shape(mean_p), jnp.shape(mean_q))))


# ------------------------------------------------------------------ reparameterizable families
#
# Beyond the diagonal Gaussian: each sampler below is a map x = g(ε; θ) of noise ε
# that does not depend on θ, so it is differentiable in the parameters (the estimators
# chapter, section est-reparameterization). The inverse-CDF maps are public so that a chapter
# can differentiate g itself and check the change-of-variables formula
# p(x; θ) = q(ε) |det ∂g/∂ε|⁻¹.


def logits_from_probs(probs: jax.Array) -> jax.Array:
    """log p: logits of a categorical given by probabilities p of shape [K] (summing to 1)."""
    _checks.ndim("probs", probs, 1)
    _checks.probabilities("probs", probs)
    return jnp.log(probs)


def _check_scale_tril(mean, scale_tril, mean_name="mean", tril_name="scale_tril"):
    _finite(mean_name, mean)
    _finite(tril_name, scale_tril)
    _checks.ndim(mean_name, mean, 1)
    d = jnp.shape(mean)[0]
    if jnp.shape(scale_tril) != (d, d):
        raise ValueError(
            f"{tril_name} must have shape {(d, d)} to match {mean_name}, "
            f"got {jnp.shape(scale_tril)}"
        )
    if _checks.is_concrete(scale_tril):
        L = np.asarray(scale_tril)
        _checks.positive(f"{tril_name}'s diagonal", np.diag(L))
        if np.any(np.triu(L, 1) != 0):
            raise ValueError(
                f"{tril_name} must be lower triangular (entries above the diagonal are nonzero)"
            )


def mvn_sample(key: jax.Array, mean: jax.Array, scale_tril: jax.Array) -> jax.Array:
    """x = μ + L ε with ε ∼ N(0, I_D): a draw of N(μ, Σ = L Lᵀ), reparameterized in μ and L.

    ``mean`` has shape [D]; ``scale_tril`` is the lower-triangular Cholesky factor L of the
    covariance, shape [D, D], with a positive diagonal. Kingma and Welling (2014);
    Rezende, Mohamed and Wierstra (2014).
    """
    _check_scale_tril(mean, scale_tril)
    eps = jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean, scale_tril))
    return mean + scale_tril @ eps


def mvn_log_prob(mean: jax.Array, scale_tril: jax.Array, x: jax.Array) -> jax.Array:
    """log N(x; μ, L Lᵀ) = −½ ‖L⁻¹(x − μ)‖² − Σ_i log L_ii − (D/2) log 2π."""
    _check_scale_tril(mean, scale_tril)
    _finite("x", x)
    if jnp.shape(x) != jnp.shape(mean):
        raise ValueError(f"x must have the shape of mean {jnp.shape(mean)}, got {jnp.shape(x)}")
    z = jax.scipy.linalg.solve_triangular(scale_tril, x - mean, lower=True)
    log_det = jnp.sum(jnp.log(jnp.diag(scale_tril)))
    return -0.5 * jnp.sum(z**2) - log_det - 0.5 * mean.shape[0] * _LOG_2PI


def mvn_entropy(mean: jax.Array, scale_tril: jax.Array) -> jax.Array:
    """H = Σ_i log L_ii + (D/2)(1 + log 2π)."""
    _check_scale_tril(mean, scale_tril)
    return jnp.sum(jnp.log(jnp.diag(scale_tril))) + 0.5 * mean.shape[0] * (1.0 + _LOG_2PI)


def mvn_kl(mean_p, scale_tril_p, mean_q, scale_tril_q) -> jax.Array:
    """KL(N(μ_p, Σ_p) ‖ N(μ_q, Σ_q))
    = ½[tr(Σ_q⁻¹Σ_p) + ‖L_q⁻¹(μ_q − μ_p)‖² − D + log det Σ_q/det Σ_p]."""
    _check_scale_tril(mean_p, scale_tril_p, "mean_p", "scale_tril_p")
    _check_scale_tril(mean_q, scale_tril_q, "mean_q", "scale_tril_q")
    if jnp.shape(mean_p) != jnp.shape(mean_q):
        raise ValueError(
            f"mean_q must have the shape of mean_p {jnp.shape(mean_p)}, got {jnp.shape(mean_q)}"
        )
    solve = jax.scipy.linalg.solve_triangular
    m = solve(scale_tril_q, scale_tril_p, lower=True)  # L_q⁻¹ L_p
    z = solve(scale_tril_q, mean_q - mean_p, lower=True)
    log_det = jnp.sum(jnp.log(jnp.diag(scale_tril_q))) - jnp.sum(jnp.log(jnp.diag(scale_tril_p)))
    return 0.5 * (jnp.sum(m**2) + jnp.sum(z**2) - mean_p.shape[0]) + log_det


def _check_truncated_normal(loc, scale, low, high):
    for name, v in (("loc", loc), ("scale", scale), ("low", low), ("high", high)):
        _checks.real(name, v)
    _checks.finite("loc", loc)
    _checks.positive("scale", scale)
    for name, v in (("loc", loc), ("low", low), ("high", high)):
        if jnp.ndim(v) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(v)}")
    if jnp.ndim(scale) != 0:
        raise ValueError(f"scale must be a scalar, got shape {jnp.shape(scale)}")
    if _checks.is_concrete(low) and _checks.is_concrete(high):
        if not (np.asarray(low) < np.asarray(high)) or np.isnan(low) or np.isnan(high):
            raise ValueError(f"low must be < high, got low={float(low)}, high={float(high)}")


def _truncated_normal_standard(loc, scale, low, high):
    """Standardized bounds α, β, mirrored into the left tail where Φ is accurate.

    Returns (sign, a, b, Φ(a), Z = Φ(b) − Φ(a)) with (a, b) = (α, β) when sign = 1 and
    (−β, −α) when sign = −1 (bounds in the right tail), so that z = sign · Φ⁻¹(...)."""
    alpha, beta = (low - loc) / scale, (high - loc) / scale
    flip = alpha + beta > 0
    sign = jnp.where(flip, -1.0, 1.0)
    a = jnp.where(flip, -beta, alpha)
    b = jnp.where(flip, -alpha, beta)
    cdf_a, cdf_b = jax.scipy.special.ndtr(a), jax.scipy.special.ndtr(b)
    return sign, a, b, cdf_a, cdf_b - cdf_a


def truncated_normal_icdf(loc, scale, low, high, u: jax.Array) -> jax.Array:
    """x = μ + σ Φ⁻¹(Φ(α) + u (Φ(β) − Φ(α))), α = (low − μ)/σ, β = (high − μ)/σ.

    The inverse CDF of N(μ, σ²) truncated to [low, high], at u ∈ (0, 1): a draw when
    u ∼ U(0, 1). Bounds in the right tail are mirrored to the left, where Φ keeps its
    relative precision. ``low`` may be −∞ and ``high`` +∞. A concrete ``u`` outside
    [0, 1] raises ``ValueError``.
    """
    _check_truncated_normal(loc, scale, low, high)
    _checks.interval("u", u, 0.0, 1.0, scalar=False)
    sign, a, b, cdf_a, mass = _truncated_normal_standard(loc, scale, low, high)
    # In mirrored coordinates u ↦ 1 − u keeps the map increasing in u.
    v = jnp.where(sign > 0, u, 1.0 - u)
    z = jnp.clip(jax.scipy.special.ndtri(cdf_a + v * mass), a, b)
    return loc + scale * sign * z


def truncated_normal_sample(key: jax.Array, loc, scale, low, high) -> jax.Array:
    """A draw of N(μ = loc, σ² = scale²) truncated to [low, high] through the inverse CDF
    (:func:`truncated_normal_icdf` at u ∼ U(0, 1)): reparameterized in all four parameters."""
    _check_truncated_normal(loc, scale, low, high)
    dtype = jnp.result_type(loc, scale, low, high, float)
    tiny = jnp.finfo(dtype).tiny
    u = jax.random.uniform(key, (), dtype, minval=tiny, maxval=1.0)
    return truncated_normal_icdf(loc, scale, low, high, u)


def truncated_normal_log_prob(loc, scale, low, high, x: jax.Array) -> jax.Array:
    """log p(x) = log φ((x − μ)/σ) − log σ − log(Φ(β) − Φ(α)) on [low, high], −∞ outside."""
    _check_truncated_normal(loc, scale, low, high)
    _finite("x", x)
    _, _, _, _, mass = _truncated_normal_standard(loc, scale, low, high)
    z = (x - loc) / scale
    logp = -0.5 * z**2 - 0.5 * _LOG_2PI - jnp.log(scale) - jnp.log(mass)
    return jnp.where((x >= low) & (x <= high), logp, -jnp.inf)


def truncated_normal_entropy(loc, scale, low, high) -> jax.Array:
    """H = log(√(2πe) σ Z) + (α φ(α) − β φ(β)) / (2Z), Z = Φ(β) − Φ(α); αφ(α) = 0 at α = ±∞."""
    _check_truncated_normal(loc, scale, low, high)
    _, _, _, _, mass = _truncated_normal_standard(loc, scale, low, high)
    alpha, beta = (low - loc) / scale, (high - loc) / scale

    def t_phi(t):
        finite = jnp.isfinite(t)
        t0 = jnp.where(finite, t, 0.0)
        return jnp.where(finite, t0 * jnp.exp(-0.5 * t0**2 - 0.5 * _LOG_2PI), 0.0)

    return (
        0.5 * (_LOG_2PI + 1.0)
        + jnp.log(scale)
        + jnp.log(mass)
        + (t_phi(alpha) - t_phi(beta)) / (2.0 * mass)
    )


def _check_kumaraswamy(a, b):
    _checks.real("a", a)
    _checks.real("b", b)
    _checks.positive("a", a)
    _checks.positive("b", b)
    for name, v in (("a", a), ("b", b)):
        # XLA:CPU flushes subnormal numbers to zero: a parameter below the smallest normal
        # number of its dtype would silently act as 0.
        if _checks.is_concrete(v):
            arr = np.asarray(v)
            # the dtype the maths runs in (float32 for a Python float unless x64 is on)
            tiny = float(jnp.finfo(jnp.result_type(a, b, float)).tiny)
            if np.any(arr < tiny):
                raise ValueError(
                    f"{name} must be at least {tiny:.3g} (a normal number), "
                    f"got {arr[arr < tiny].ravel()[:3]}"
                )


def kumaraswamy_icdf(a, b, u: jax.Array) -> jax.Array:
    """x = (1 − (1 − u)^{1/b})^{1/a}: the inverse of F(x) = 1 − (1 − x^a)^b on (0, 1).

    Computed in logs, x = exp(log(−expm1(log1p(−u)/b)) / a), for precision near 0 and 1.
    Kumaraswamy (1980); as a reparameterizable stand-in for the Beta, Nalisnick and Smyth (2017).
    A concrete ``u`` outside [0, 1] raises ``ValueError``.
    """
    _check_kumaraswamy(a, b)
    _checks.interval("u", u, 0.0, 1.0, scalar=False)
    return jnp.exp(jnp.log(-jnp.expm1(jnp.log1p(-u) / b)) / a)


def kumaraswamy_sample(key: jax.Array, a, b) -> jax.Array:
    """A draw of Kumaraswamy(a, b) through the inverse CDF at u ∼ U(0, 1): reparameterized in a, b.

    ``a`` and ``b`` (both > 0) broadcast; the draw has their broadcast shape."""
    _check_kumaraswamy(a, b)
    shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b))
    dtype = jnp.result_type(a, b, float)
    u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
    return kumaraswamy_icdf(a, b, u)


def kumaraswamy_log_prob(a, b, x: jax.Array) -> jax.Array:
    """log p(x) = log a + log b + (a − 1) log x + (b − 1) log(1 − x^a) for x ∈ (0, 1).

    −∞ for x outside the open interval (0, 1), the endpoints included (they have
    probability zero; the formula is undefined there for some a, b). x is taken in the
    dtype of the computation, where XLA flushes subnormal numbers to zero: a positive x
    below that dtype's smallest normal number counts as 0 (−∞, never NaN), and an x that
    rounds to 1 counts as 1.
    """
    _check_kumaraswamy(a, b)
    _finite("x", x)
    x = jnp.asarray(x, jnp.result_type(a, b, x, float))
    outside = (x < jnp.finfo(x.dtype).tiny) | (x >= 1)
    log_x = jnp.log(jnp.where(outside, 0.5, x))
    logp = jnp.log(a) + jnp.log(b) + (a - 1) * log_x + (b - 1) * jnp.log(-jnp.expm1(a * log_x))
    return jnp.where(outside, -jnp.inf, logp)


def kumaraswamy_entropy(a, b) -> jax.Array:
    """H = (1 − 1/b) + (1 − 1/a) H_b − log(ab), H_b = ψ(b + 1) + γ the b-th harmonic number."""
    _check_kumaraswamy(a, b)
    harmonic = jax.scipy.special.digamma(b + 1.0) + jnp.euler_gamma
    return (1.0 - 1.0 / b) + (1.0 - 1.0 / a) * harmonic - jnp.log(a * b)


def gumbel_max_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """a = argmax_k (θ_k + G_k), G_k ∼ Gumbel(0, 1) i.i.d.: a draw of softmax(θ) (the Gumbel-max
    trick, Gumbel (1954); the proof is the estimators chapter's theorem est-gumbel-max)."""
    _finite("logits", logits)
    _checks.ndim("logits", logits, 1)
    g = jax.random.gumbel(key, jnp.shape(logits), jnp.result_type(logits, float))
    return jnp.argmax(logits + g)


def _check_temperature(temperature):
    _checks.positive("temperature", temperature)
    if jnp.ndim(temperature) != 0:
        raise ValueError(f"temperature must be a scalar, got shape {jnp.shape(temperature)}")


def gumbel_softmax_sample(key: jax.Array, logits: jax.Array, temperature) -> jax.Array:
    """y = softmax((θ + G)/τ), G_k ∼ Gumbel(0, 1): a point of the simplex, differentiable in θ.

    The Gumbel-softmax (Jang, Gu and Poole, 2017) or Concrete (Maddison, Mnih and Teh, 2017)
    relaxation of the one-hot Gumbel-max draw (τ → 0), with temperature τ > 0; shape [K].
    The same key gives argmax y = :func:`gumbel_max_sample` for every τ.
    """
    _finite("logits", logits)
    _checks.ndim("logits", logits, 1)
    _check_temperature(temperature)
    g = jax.random.gumbel(key, jnp.shape(logits), jnp.result_type(logits, float))
    return jax.nn.softmax((logits + g) / temperature)


def gumbel_softmax_log_prob(logits: jax.Array, temperature, y: jax.Array) -> jax.Array:
    """Log-density of the Concrete distribution on the simplex (Maddison, Mnih and Teh, 2017):

    log p(y) = log (K−1)! + (K−1) log τ + Σ_k (θ_k − (τ+1) log y_k)
               − K logsumexp_k(θ_k − τ log y_k),

    with respect to Lebesgue measure on the first K − 1 coordinates (y_K = 1 − Σ_{k<K} y_k).
    −∞ off the open simplex (never NaN): when some y_k ≤ 0 or y_k > 1 (the faces
    y_k = 0 have probability zero), or when :math:`|Σ_k y_k − 1|` exceeds √ε of y's dtype
    (3.5e-4 in float32, 1.5e-8 in float64). Invariant to adding a constant to the logits θ.
    """
    _finite("logits", logits)
    _checks.ndim("logits", logits, 1)
    _check_temperature(temperature)
    _finite("y", y)
    if jnp.shape(y) != jnp.shape(logits):
        raise ValueError(f"y must have the shape of logits {jnp.shape(logits)}, got {jnp.shape(y)}")
    k = logits.shape[0]
    log_y = jnp.log(y)
    logp = (
        jax.scipy.special.gammaln(k)
        + (k - 1) * jnp.log(temperature)
        + jnp.sum(logits - (temperature + 1.0) * log_y)
        - k * jax.scipy.special.logsumexp(logits - temperature * log_y)
    )
    y_f = _checks.floating(y)
    tol = float(np.sqrt(jnp.finfo(y_f.dtype).eps))
    off = jnp.any((y_f <= 0) | (y_f > 1)) | (jnp.abs(jnp.sum(y_f) - 1) > tol)
    return jnp.where(off, -jnp.inf, logp)  # −∞ off the simplex


# ------------------------------------------------------------------ tanh-squashed Gaussian
#
# a = tanh(u), u ∼ N(μ, diag σ²): the bounded policy of SAC (Haarnoja et al. 2018,
# appendix C). By the change of variables a = tanh(u), |da/du| = Π_i (1 − tanh² u_i), so
#   log π(a) = log N(u; μ, σ²) − Σ_i log(1 − tanh² u_i),
# with log(1 − tanh² u) = 2 (log 2 − u − softplus(−2u)) computed without cancellation.

__all__ += [
    "tanh_log_det_jacobian",
    "tanh_gaussian_sample",
    "tanh_gaussian_sample_and_log_prob",
    "tanh_gaussian_log_prob",
]


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    """Σ_i log(1 − tanh² u_i) = Σ_i 2 (log 2 − u_i − softplus(−2 u_i)), stable for large
    :math:`|u|`.
    """
    _finite("u", u)
    return _tanh_log_det_jacobian(u)


def _tanh_log_det_jacobian(u):
    """:func:`tanh_log_det_jacobian` without the check, for a ``u`` computed here."""
    return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)))


def tanh_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """a = tanh(μ + σ ⊙ ε), ε ∼ N(0, I): reparameterized, in (−1, 1)^D."""
    return jnp.tanh(gaussian_sample(key, mean, log_std))


def tanh_gaussian_sample_and_log_prob(key: jax.Array, mean: jax.Array, log_std: jax.Array):
    """``(a, log π(a))`` for a = tanh(u), u = μ + σ ⊙ ε, the log-density from u (no atanh)."""
    u = gaussian_sample(key, mean, log_std)  # checks mean and log_std
    return jnp.tanh(u), _gaussian_log_prob(mean, log_std, u) - _tanh_log_det_jacobian(u)


def tanh_gaussian_log_prob(
    mean: jax.Array, log_std: jax.Array, a: jax.Array, eps: float = 1e-6
) -> jax.Array:
    """log π(a) = log N(atanh a; μ, σ²) − Σ_i log(1 − a_i²), with a clipped to ±(1 − eps).

    The support is the open box (−1, 1)^D: −∞ when some :math:`|a_i| ≥ 1` (the density tends
    to 0 there; a_i = ±1 has probability zero). Inside, an a_i within ``eps`` of ±1 is
    clipped to ±(1 − eps) before the atanh, so that the result stays finite.
    """
    _check_gaussian(mean, log_std)
    _finite("a", a)
    if jnp.shape(a) != jnp.shape(mean):
        raise ValueError(f"a must have the shape of mean {jnp.shape(mean)}, got {jnp.shape(a)}")
    _checks.positive("eps", eps)
    u = jnp.arctanh(jnp.clip(a, -1.0 + eps, 1.0 - eps))
    lp = _gaussian_log_prob(mean, log_std, u) - _tanh_log_det_jacobian(u)
    return jnp.where(jnp.any(jnp.abs(a) >= 1), -jnp.inf, lp)
