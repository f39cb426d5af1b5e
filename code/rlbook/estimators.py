r"""Monte-Carlo estimators of ∇_θ J(θ), J(θ) = E_{x∼p(x;θ)}[f(x, θ)].

The objective is given by three functions, each unbatched:

* ``f(x, theta)``: the integrand, a scalar;
* ``sample(key, theta)``: a draw x ∼ p(·; θ) (``rsample`` when it is a differentiable
  map x = g(ε; θ) of noise ε drawn from ``key``);
* ``log_prob(theta, x)``: log p(x; θ).

``theta`` may be any pytree of arrays; every gradient estimate has its structure.
Per-sample terms (``*_term``) are the quantity a single draw contributes; the batch
estimators average n of them, drawing the samples from n keys split from ``key``.
All are pure functions of their arguments (keys first), so a chapter vmaps them over
keys for independent trials, or over θ. The derivations are the estimators chapter's
(labels ``est-…``); the survey is Mohamed, Rosca, Figurnov and Mnih (2020).

===========================  ===============================================================
estimator                    per-sample term
===========================  ===============================================================
naive                        ∇_θ f(x, θ) with x held fixed: biased, it drops ∫ f ∇_θ p dx
score function               (f(x, θ) − b) ∇_θ log p(x; θ) + ∇_θ f(x, θ)  (Glynn, 1990;
                             Williams, 1992), unbiased for any constant baseline b
importance-weighted score    w (f ∇_θ log p + ∇_θ f), x ∼ q, w = p(x; θ)/q(x)
reparameterization           ∇_θ f(g(ε; θ), θ)  (Kingma and Welling, 2014; Rezende et al., 2014)
===========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks

__all__ = [
    "naive_term",
    "score_function_term",
    "importance_term",
    "reparameterization_term",
    "naive",
    "score_function",
    "importance",
    "reparameterization",
    "control_variate",
    "optimal_coefficient",
]

Fn = Callable


def _callables(**fns) -> None:
    """Each keyword names a function argument: refuse one that is not callable, by name."""
    for name, fn in fns.items():
        if not callable(fn):
            raise ValueError(f"{name} must be a callable, got {fn!r}")


def _mean(tree):
    return jax.tree.map(lambda t: jnp.mean(t, axis=0), tree)


def _draws(key, sample, theta, n):
    _checks.positive_int("n", n)
    keys = jax.random.split(key, n)
    return jax.lax.stop_gradient(jax.vmap(lambda k: sample(k, theta))(keys))


# ------------------------------------------------------------------ per-sample terms


def naive_term(f: Fn, theta, x):
    """∇_θ f(x, θ) at a sample x held fixed: the product rule's second term only."""
    _callables(f=f)
    _checks.finite_tree("theta", theta)
    _checks.finite_tree("x", x)
    return jax.grad(f, argnums=1)(jax.lax.stop_gradient(x), theta)


def score_function_term(f: Fn, log_prob: Fn, theta, x, baseline=0.0):
    """(f(x, θ) − b) ∇_θ log p(x; θ) + ∇_θ f(x, θ), for x ∼ p(·; θ) and a constant b.

    Its expectation is ∇_θ J(θ) whatever b, because E[∇_θ log p] = 0; b = ``baseline``
    (a scalar, or a pytree like θ for one baseline per coordinate) changes only the variance.
    """
    _callables(f=f, log_prob=log_prob)
    _checks.finite_tree("theta", theta)
    _checks.finite_tree("x", x)
    _checks.finite_tree("baseline", baseline)
    x = jax.lax.stop_gradient(x)
    fx, grad_f = jax.value_and_grad(f, argnums=1)(x, theta)
    score = jax.grad(log_prob)(theta, x)
    fx = jax.lax.stop_gradient(fx)
    # a scalar b (a leaf of no dimensions); a dict's jnp.ndim is 0 too, so test the structure
    if (
        jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(baseline))
        and jnp.ndim(baseline) == 0
    ):
        return jax.tree.map(lambda s, g: (fx - baseline) * s + g, score, grad_f)
    return jax.tree.map(lambda s, g, b: (fx - b) * s + g, score, grad_f, baseline)


def importance_term(f: Fn, log_prob: Fn, log_q: Fn, theta, x):
    """w(x) (f(x, θ) ∇_θ log p(x; θ) + ∇_θ f(x, θ)), w = p(x; θ)/q(x), for x ∼ q.

    The likelihood-ratio gradient under a proposal q that does not depend on θ:
    ∇_θ ∫ q (p/q) f dx = E_q[(∇_θ p / q) f + (p/q) ∇_θ f]. With q = p(·; θ) it is the
    score-function term. ``log_q(x)`` is the proposal's log-density.
    """
    _callables(f=f, log_prob=log_prob, log_q=log_q)
    _checks.finite_tree("theta", theta)
    _checks.finite_tree("x", x)
    x = jax.lax.stop_gradient(x)
    w = jnp.exp(log_prob(theta, x) - log_q(x))
    return jax.tree.map(lambda t: w * t, score_function_term(f, log_prob, theta, x))


def reparameterization_term(key: jax.Array, f: Fn, rsample: Fn, theta):
    """∇_θ f(g(ε; θ), θ) with x = g(ε; θ) = ``rsample(key, theta)``, ε drawn from ``key``.

    Unbiased when the map is differentiable in θ for almost every ε and f is
    differentiable in x: ∇_θ E_ε[f(g(ε; θ), θ)] = E_ε[∇_θ f(g(ε; θ), θ)].
    """
    _callables(f=f, rsample=rsample)
    _checks.finite_tree("theta", theta)
    return jax.grad(lambda th: f(rsample(key, th), th))(theta)


# ------------------------------------------------------------------ batch estimators


def naive(key: jax.Array, f: Fn, sample: Fn, theta, n: int):
    """(1/n) Σ_i ∇_θ f(x_i, θ), x_i ∼ p(·; θ) held fixed: differentiating the Monte-Carlo
    average as if its samples did not depend on θ. Biased by −∫ f ∇_θ p dx."""
    _callables(f=f, sample=sample)
    _checks.finite_tree("theta", theta)
    xs = _draws(key, sample, theta, n)
    return _mean(jax.vmap(lambda x: naive_term(f, theta, x))(xs))


def score_function(key: jax.Array, f: Fn, sample: Fn, log_prob: Fn, theta, n: int, baseline=0.0):
    """(1/n) Σ_i [(f(x_i, θ) − b) ∇_θ log p(x_i; θ) + ∇_θ f(x_i, θ)], x_i ∼ p(·; θ) i.i.d."""
    _callables(f=f, sample=sample, log_prob=log_prob)
    _checks.finite_tree("theta", theta)
    _checks.finite_tree("baseline", baseline)
    xs = _draws(key, sample, theta, n)
    return _mean(jax.vmap(lambda x: score_function_term(f, log_prob, theta, x, baseline))(xs))


def importance(key: jax.Array, f: Fn, log_prob: Fn, sample_q: Fn, log_q: Fn, theta, n: int):
    """(1/n) Σ_i w_i (f ∇_θ log p + ∇_θ f)(x_i), x_i ∼ q i.i.d. (``sample_q(key)``)."""
    _callables(f=f, log_prob=log_prob, sample_q=sample_q, log_q=log_q)
    _checks.finite_tree("theta", theta)
    _checks.positive_int("n", n)
    xs = jax.vmap(sample_q)(jax.random.split(key, n))
    return _mean(jax.vmap(lambda x: importance_term(f, log_prob, log_q, theta, x))(xs))


def reparameterization(key: jax.Array, f: Fn, rsample: Fn, theta, n: int):
    """(1/n) Σ_i ∇_θ f(g(ε_i; θ), θ), ε_i i.i.d. from n keys split from ``key``."""
    _callables(f=f, rsample=rsample)
    _checks.finite_tree("theta", theta)
    _checks.positive_int("n", n)
    keys = jax.random.split(key, n)
    return _mean(jax.vmap(lambda k: reparameterization_term(k, f, rsample, theta))(keys))


# ------------------------------------------------------------------ control variates


def control_variate(estimate, control, control_mean, coefficient):
    """g − β (c − E[c]): unbiased for E[g] whatever β, with variance
    Var g − 2β Cov(g, c) + β² Var c, smallest at β* = Cov(g, c)/Var(c)
    (elementwise; all arguments broadcast)."""
    args = (
        ("estimate", estimate),
        ("control", control),
        ("control_mean", control_mean),
        ("coefficient", coefficient),
    )
    for name, x in args:
        _checks.real(name, x)
        _checks.finite(name, x)
    try:
        jnp.broadcast_shapes(*(jnp.shape(x) for _, x in args))
    except ValueError as err:
        shapes = ", ".join(f"{name} {jnp.shape(x)}" for name, x in args)
        raise ValueError(
            f"estimate, control, control_mean and coefficient must broadcast "
            f"together, got shapes {shapes}"
        ) from err
    return estimate - coefficient * (control - control_mean)


def optimal_coefficient(estimates: jax.Array, controls: jax.Array) -> jax.Array:
    """β* = Cov(g, c)/Var(c), estimated from n paired samples (leading axis), per coordinate.

    Estimated from the same samples it is then applied to, β* makes the controlled average
    biased by O(1/n); estimate it on separate samples when that matters. A concrete control
    constant over the samples is refused; under ``jit`` its coordinate of β* is NaN.
    """
    for name, x in (("estimates", estimates), ("controls", controls)):
        _checks.real(name, x)
        _checks.finite(name, x)
    if jnp.shape(estimates) != jnp.shape(controls):
        raise ValueError(
            f"controls must have the shape of estimates {jnp.shape(estimates)}, "
            f"got {jnp.shape(controls)}"
        )
    if jnp.ndim(estimates) < 1 or jnp.shape(estimates)[0] < 2:
        raise ValueError(
            f"estimates must have a sample axis of length >= 2 first, "
            f"got shape {jnp.shape(estimates)}"
        )
    if _checks.is_concrete(controls) and np.any(np.ptp(np.asarray(controls), axis=0) == 0):
        raise ValueError(
            "controls must vary across samples in every coordinate (Var(c) = 0 "
            "leaves β* = Cov(g, c)/Var(c) undefined)"
        )
    g = estimates - jnp.mean(estimates, axis=0)
    c = controls - jnp.mean(controls, axis=0)
    return jnp.sum(g * c, axis=0) / jnp.sum(c * c, axis=0)
