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
]

_LOG_2PI = jnp.log(2.0 * jnp.pi)


# ------------------------------------------------------------------ categorical / softmax


def categorical_sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """a ∼ softmax(logits), an integer in [0, K)."""
    _checks.ndim("logits", logits, 1)
    return jax.random.categorical(key, logits)


def categorical_log_prob(logits: jax.Array, a: jax.Array) -> jax.Array:
    """log softmax(logits)[a]."""
    _checks.ndim("logits", logits, 1)
    return jax.nn.log_softmax(logits)[a]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """H = −Σ_k p_k log p_k with p = softmax(logits)."""
    _checks.ndim("logits", logits, 1)
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp)


def categorical_kl(logits_p: jax.Array, logits_q: jax.Array) -> jax.Array:
    """KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) for p = softmax(logits_p), q = softmax(logits_q)."""
    if jnp.shape(logits_p) != jnp.shape(logits_q):
        raise ValueError(f"logits_q must have the shape of logits_p {jnp.shape(logits_p)}, "
                         f"got {jnp.shape(logits_q)}")
    logp, logq = jax.nn.log_softmax(logits_p), jax.nn.log_softmax(logits_q)
    return jnp.sum(jnp.exp(logp) * (logp - logq))


# ------------------------------------------------------------------ diagonal Gaussian


def _check_gaussian(mean, log_std):
    if jnp.shape(log_std) not in ((), jnp.shape(mean)):
        raise ValueError(f"log_std must be a scalar or have the shape of mean {jnp.shape(mean)}, "
                         f"got {jnp.shape(log_std)}")


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """x = μ + σ ⊙ ε with ε ∼ N(0, I): reparameterized, differentiable in μ and log σ."""
    _check_gaussian(mean, log_std)
    eps = jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))
    return mean + jnp.exp(log_std) * eps


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, x: jax.Array) -> jax.Array:
    """log N(x; μ, diag σ²) = Σ_i [−(x_i − μ_i)² / (2σ_i²) − log σ_i − ½ log 2π]."""
    _check_gaussian(mean, log_std)
    if jnp.shape(x) != jnp.shape(mean):
        raise ValueError(f"x must have the shape of mean {jnp.shape(mean)}, got {jnp.shape(x)}")
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI)


def gaussian_entropy(mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """H = Σ_i (log σ_i + ½ log 2πe)."""
    _check_gaussian(mean, log_std)
    return jnp.sum(jnp.broadcast_to(log_std, jnp.shape(mean)) + 0.5 * (_LOG_2PI + 1.0))


def gaussian_kl(mean_p, log_std_p, mean_q, log_std_q) -> jax.Array:
    """KL(N(μ_p, σ_p²) ‖ N(μ_q, σ_q²)) = Σ_i [log σ_q/σ_p + (σ_p² + (μ_p − μ_q)²)/(2σ_q²) − ½]."""
    _check_gaussian(mean_p, log_std_p)
    _check_gaussian(mean_q, log_std_q)
    var_p, var_q = jnp.exp(2 * log_std_p), jnp.exp(2 * log_std_q)
    kl = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
    return jnp.sum(jnp.broadcast_to(kl, jnp.broadcast_shapes(jnp.shape(mean_p), jnp.shape(mean_q))))


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
    """Σ_i log(1 − tanh² u_i) = Σ_i 2 (log 2 − u_i − softplus(−2 u_i)), stable for large |u|."""
    return jnp.sum(2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u)))


def tanh_gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """a = tanh(μ + σ ⊙ ε), ε ∼ N(0, I): reparameterized, in (−1, 1)^D."""
    return jnp.tanh(gaussian_sample(key, mean, log_std))


def tanh_gaussian_sample_and_log_prob(key: jax.Array, mean: jax.Array, log_std: jax.Array):
    """``(a, log π(a))`` for a = tanh(u), u = μ + σ ⊙ ε, the log-density from u (no atanh)."""
    u = gaussian_sample(key, mean, log_std)
    return jnp.tanh(u), gaussian_log_prob(mean, log_std, u) - tanh_log_det_jacobian(u)


def tanh_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, a: jax.Array,
                           eps: float = 1e-6) -> jax.Array:
    """log π(a) = log N(atanh a; μ, σ²) − Σ_i log(1 − a_i²), with a clipped to ±(1 − eps)."""
    if jnp.shape(a) != jnp.shape(mean):
        raise ValueError(f"a must have the shape of mean {jnp.shape(mean)}, got {jnp.shape(a)}")
    _checks.positive("eps", eps)
    u = jnp.arctanh(jnp.clip(a, -1.0 + eps, 1.0 - eps))
    return gaussian_log_prob(mean, log_std, u) - tanh_log_det_jacobian(u)
