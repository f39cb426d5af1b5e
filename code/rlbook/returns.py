r"""Discounted returns along a stream of transitions, with termination and truncation.

A stream is what :func:`rlbook.rollouts.collect` returns: arrays with time first,
``[T]`` or ``[T, N]`` (N environments side by side), in which one environment may
finish an episode and start the next. Three per-step arrays describe the stream:

``rewards[t]``
    r_t, the reward of the transition (s_t, a_t, s_{t+1}).
``discounts[t]``
    γ_t = γ (1 − terminated_t), the discount from t to t + 1
    (:func:`step_discounts`). Termination means s_{t+1} is absorbing with value
    zero, so nothing is bootstrapped through it: γ_t = 0.
``done[t]``
    the episode ended at t, by termination *or* truncation; entry t + 1 belongs
    to another episode, so the recursion must not run through it. Where an
    episode was cut by a time limit (truncated, γ_t = γ), the return is
    completed with ``bootstrap[t]``, an estimate of V(s_{t+1}) at the pre-reset
    ``next_obs``: the book bootstraps through truncation, never through
    termination. The end of the stream is always a cut.

The reward-to-go (the discounted return from step t) is then

    G_t = r_t + γ_t · (bootstrap_t  if done_t or t = T − 1  else  G_{t+1}),

and the episode return G_{start(t)} assigns to each step the discounted return
of its whole episode from that episode's first step in the stream. With
``bootstrap = 0`` both are Monte-Carlo returns (REINFORCE; Williams 1992).

Each quantity comes twice: a readable Python loop (``*_loop``) that follows
the formula line by line, and a ``lax.scan`` that runs inside ``jit``; tests
hold the two against each other and a plain-numpy reference. :ref:`pg-reward-to-go`
in :doc:`/book/reinforce` derives why G_t may replace G_0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks

__all__ = [
    "step_discounts",
    "discounted_returns",
    "discounted_returns_loop",
    "episode_returns",
    "episode_returns_loop",
    "td_errors",
    "gae",
    "gae_loop",
]


def step_discounts(gamma, terminated: jax.Array, dtype=None) -> jax.Array:
    """γ_t = γ (1 − terminated_t), same shape as ``terminated`` (default dtype: JAX's float)."""
    _checks.discount("gamma", gamma, allow_one=True)
    dtype = _checks.float_dtype("dtype", dtype)
    _checks.real("terminated", terminated)
    return jnp.asarray(gamma, dtype) * (1.0 - jnp.asarray(terminated, dtype))


def _prepare(rewards, discounts, bootstrap, done):
    _checks.real("rewards", rewards)
    _checks.finite("rewards", rewards)
    rewards = _checks.floating(rewards)  # integer rewards would make every γ_t an integer
    if rewards.ndim < 1:
        raise ValueError(f"rewards must have a time axis first, got shape {rewards.shape}")
    if rewards.shape[0] == 0:
        raise ValueError("rewards must hold at least one step")
    _checks.real("discounts", discounts)
    discounts = jnp.asarray(discounts, rewards.dtype)
    if discounts.shape != rewards.shape:
        raise ValueError(
            f"discounts must have the shape of rewards {rewards.shape}, got {discounts.shape}"
        )
    if _checks.is_concrete(discounts):
        d = np.asarray(discounts)
        if np.any(~np.isfinite(d)) or np.any(d < 0) or np.any(d > 1):
            raise ValueError("discounts must lie in [0, 1]")
    if bootstrap is None:
        bootstrap = jnp.zeros_like(rewards)
    _checks.real("bootstrap", bootstrap)
    _checks.finite("bootstrap", bootstrap)
    bootstrap = jnp.asarray(bootstrap, rewards.dtype)
    if bootstrap.shape != rewards.shape:
        raise ValueError(
            f"bootstrap must have the shape of rewards {rewards.shape}, got {bootstrap.shape}"
        )
    if done is None:
        done = jnp.zeros(rewards.shape, bool)
    _checks.real("done", done)
    done = jnp.asarray(done, bool)
    if done.shape != rewards.shape:
        raise ValueError(f"done must have the shape of rewards {rewards.shape}, got {done.shape}")
    cut = done.at[-1].set(True)  # the end of the stream cuts every episode still running
    return rewards, discounts, bootstrap, cut


def discounted_returns(rewards, discounts, bootstrap=None, done=None) -> jax.Array:
    """Reward-to-go G_t = r_t + γ_t · (bootstrap_t if cut at t else G_{t+1}), by a reverse scan.

    Args:
        rewards: r_t, shape [T, ...].
        discounts: γ_t = γ (1 − terminated_t), shape [T, ...] (:func:`step_discounts`).
        bootstrap: V(s_{t+1}) used where the episode is cut (truncation or the end of
            the stream), shape [T, ...]; ``None`` means 0 (Monte Carlo).
        done: episode ended at t (terminated or truncated), bool [T, ...]; ``None``
            means one episode that the stream cuts at its end.

    Returns:
        G_t, shape [T, ...].
    """
    return _returns_scan(*_prepare(rewards, discounts, bootstrap, done))


@jax.jit
def _returns_scan(rewards, discounts, bootstrap, cut):
    def back(g_next, x):
        r, gamma_t, b, c = x
        g = r + gamma_t * jnp.where(c, b, g_next)
        return g, g

    _, g = jax.lax.scan(
        back, jnp.zeros_like(rewards[0]), (rewards, discounts, bootstrap, cut), reverse=True
    )
    return g


def discounted_returns_loop(rewards, discounts, bootstrap=None, done=None) -> jax.Array:
    """:func:`discounted_returns` as a plain loop from the last step back to the first."""
    rewards, discounts, bootstrap, cut = _prepare(rewards, discounts, bootstrap, done)
    T = rewards.shape[0]
    G = [None] * T
    for t in reversed(range(T)):
        future = jnp.where(cut[t], bootstrap[t], G[t + 1] if t + 1 < T else 0.0)
        G[t] = rewards[t] + discounts[t] * future
    return jnp.stack(G)


def episode_returns(rewards, discounts, bootstrap=None, done=None) -> jax.Array:
    """G_{start(t)}: the return of t's episode from its first step in the stream, at every t.

    ``start(t)`` is the first step after the last cut before t (or 0). The
    arguments are those of :func:`discounted_returns`; shape [T, ...]. This is
    the weight R(τ) of the whole-trajectory REINFORCE estimator (chapter label
    ``pg-log-derivative``).
    """
    rewards, discounts, bootstrap, cut = _prepare(rewards, discounts, bootstrap, done)
    return _episode_scan(_returns_scan(rewards, discounts, bootstrap, cut), cut)


@jax.jit
def _episode_scan(g, cut):
    starts = jnp.concatenate([jnp.ones_like(cut[:1]), cut[:-1]])  # a step after a cut starts one

    def forward(g_start, x):
        g_t, is_start = x
        g_start = jnp.where(is_start, g_t, g_start)
        return g_start, g_start

    _, out = jax.lax.scan(forward, jnp.zeros_like(g[0]), (g, starts))
    return out


def episode_returns_loop(rewards, discounts, bootstrap=None, done=None) -> jax.Array:
    """:func:`episode_returns` as a plain loop: remember G at each episode's first step."""
    g = discounted_returns_loop(rewards, discounts, bootstrap, done)
    _, _, _, cut = _prepare(rewards, discounts, bootstrap, done)
    out, g_start = [], None
    for t in range(g.shape[0]):
        starts_here = jnp.ones_like(cut[t]) if t == 0 else cut[t - 1]
        g_start = g[t] if t == 0 else jnp.where(starts_here, g[t], g_start)
        out.append(g_start)
    return jnp.stack(out)


# --------------------------------------------------------------------------- TD errors and GAE


def _prepare_values(rewards, discounts, values, next_values, done):
    rewards, discounts, _, cut = _prepare(rewards, discounts, None, done)
    for name, x in (("values", values), ("next_values", next_values)):
        _checks.real(name, x)
        _checks.finite(name, x)
    values = jnp.asarray(values, rewards.dtype)
    next_values = jnp.asarray(next_values, rewards.dtype)
    for name, x in (("values", values), ("next_values", next_values)):
        if x.shape != rewards.shape:
            raise ValueError(
                f"{name} must have the shape of rewards {rewards.shape}, got {x.shape}"
            )
    return rewards, discounts, values, next_values, cut


def td_errors(rewards, discounts, values, next_values) -> jax.Array:
    r"""δ_t = r_t + γ_t V(s_{t+1}) − V(s_t), elementwise, shape [T, ...].

    ``values[t]`` is V(s_t) and ``next_values[t]`` is V(s_{t+1}) at the *pre-reset*
    ``next_obs``, so a truncated step bootstraps from the state the time limit cut
    (γ_t = γ), and a terminated one does not (γ_t = 0). The TD error is GAE with
    λ = 0 (baselines chapter, ``bl-gae``; Sutton 1988).
    """
    rewards, discounts, values, next_values, _ = _prepare_values(
        rewards, discounts, values, next_values, None
    )
    return rewards + discounts * next_values - values


def _check_lambda(lam):
    _checks.discount("lam", lam, allow_one=True)


def gae(rewards, discounts, values, next_values, lam, done=None) -> jax.Array:
    r"""GAE(γ, λ) advantages Â_t = Σ_l (γλ)^l δ_{t+l} within each episode, by a reverse scan.

    The recursion Â_t = δ_t + γ_t λ Â_{t+1} runs backwards and is cut where the
    episode ends (``done``, or the end of the stream): there Â_t = δ_t, whose
    ``next_values`` term already bootstraps through truncation (Schulman et al. 2016;
    the baselines chapter, ``bl-def-gae``). λ = 0 gives :func:`td_errors`; λ = 1
    gives :func:`discounted_returns` bootstrapped with ``next_values`` minus V(s_t).

    Args:
        rewards, discounts: r_t and γ_t = γ (1 − terminated_t), shape [T, ...].
        values: V(s_t), shape [T, ...].
        next_values: V(s_{t+1}) at the pre-reset next observation, shape [T, ...].
        lam: λ ∈ [0, 1], a scalar (may be traced, so ``jax.vmap`` over λ works).
        done: episode ended at t (terminated or truncated), bool [T, ...].

    Returns:
        Â_t, shape [T, ...]; the λ-return targets for the critic are Â_t + V(s_t).
    """
    _check_lambda(lam)
    rewards, discounts, values, next_values, cut = _prepare_values(
        rewards, discounts, values, next_values, done
    )
    delta = rewards + discounts * next_values - values
    lam = jnp.asarray(lam, rewards.dtype)

    def back(a_next, x):
        d, gamma_t, c = x
        a = d + gamma_t * lam * jnp.where(c, 0.0, a_next)
        return a, a

    _, adv = jax.lax.scan(back, jnp.zeros_like(rewards[0]), (delta, discounts, cut), reverse=True)
    return adv


def gae_loop(rewards, discounts, values, next_values, lam, done=None) -> jax.Array:
    """:func:`gae` as a plain loop from the last step back, following ``bl-alg-minibatch``."""
    _check_lambda(lam)
    rewards, discounts, values, next_values, cut = _prepare_values(
        rewards, discounts, values, next_values, done
    )
    T = rewards.shape[0]
    A = [None] * T
    for t in reversed(range(T)):
        delta = rewards[t] + discounts[t] * next_values[t] - values[t]
        later = jnp.where(cut[t], 0.0, A[t + 1] if t + 1 < T else 0.0)
        A[t] = delta + discounts[t] * lam * later
    return jnp.stack(A)
