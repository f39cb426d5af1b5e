r"""Exploration noise processes, as pure functions of an explicit key.

The Ornstein–Uhlenbeck process (Uhlenbeck & Ornstein 1930) is the SDE

    dX_t = θ (μ − X_t) dt + σ dW_t,

mean-reverting at rate θ > 0 with diffusion σ > 0; its stationary law is
N(μ, σ² / (2θ)). DDPG (Lillicrap et al. 2016) adds it to the deterministic
policy's action for temporally correlated exploration. Discretized by
Euler–Maruyama with step dt (Kloeden & Platen 1992),

    X_{k+1} = X_k + θ (μ − X_k) dt + σ √dt ε_k,   ε_k ∼ N(0, I),

an AR(1) chain whose own stationary variance is σ² dt / (1 − (1 − θ dt)²)
= σ² / (2θ) · 1 / (1 − θ dt / 2): the continuous one up to O(θ dt).
Used by DDPG in :doc:`/book/ddpg_td3_sac` (:ref:`cc-ddpg`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlbook import _checks

__all__ = ["ou_step", "ou_path", "ou_stationary_variance"]


def _check_ou(theta, sigma, dt):
    _checks.positive("theta", theta)
    _checks.positive("sigma", sigma, strict=False)
    _checks.positive("dt", dt)
    if _checks.is_concrete(theta) and _checks.is_concrete(dt):
        if float(theta) * float(dt) >= 1.0:
            raise ValueError(
                f"theta * dt must be < 1 for a stable discretization, got "
                f"{float(theta) * float(dt)}"
            )


def ou_step(key: jax.Array, x: jax.Array, theta, sigma, dt, mu=0.0) -> jax.Array:
    """One Euler–Maruyama step x + θ(μ − x) dt + σ √dt ε, ε ∼ N(0, I) of the shape of x."""
    _checks.finite("x", x)
    _checks.finite("mu", mu)
    _check_ou(theta, sigma, dt)
    eps = jax.random.normal(key, jnp.shape(x), jnp.result_type(x))
    return x + theta * (mu - x) * dt + sigma * jnp.sqrt(dt) * eps


def ou_path(key: jax.Array, x0: jax.Array, n_steps: int, theta, sigma, dt, mu=0.0) -> jax.Array:
    """X_1, …, X_n from X_0 = ``x0`` by ``ou_step``: shape ``[n_steps, *x0.shape]``."""
    _checks.finite("x0", x0)
    _checks.finite("mu", mu)
    _checks.positive_int("n_steps", n_steps)
    _check_ou(theta, sigma, dt)

    def body(x, k):
        x = ou_step(k, x, theta, sigma, dt, mu)
        return x, x

    _, xs = jax.lax.scan(body, jnp.asarray(x0), jax.random.split(key, n_steps))
    return xs


def ou_stationary_variance(theta, sigma, dt=None):
    """σ² / (2θ) for the SDE (``dt=None``); σ² dt / (1 − (1 − θ dt)²) for its Euler–Maruyama
    chain."""
    _checks.positive("theta", theta)
    _checks.positive("sigma", sigma, strict=False)
    if dt is None:
        return sigma**2 / (2 * theta)
    _check_ou(theta, sigma, dt)
    return sigma**2 * dt / (1 - (1 - theta * dt) ** 2)
