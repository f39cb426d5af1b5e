r"""Tabular Q-learning (Watkins & Dayan 1992) on an MDP given as arrays.

One transition (s, a, r, s') updates one entry,

    Q(s, a) ← Q(s, a) + α_n(s, a) [r + γ max_a' Q(s', a') − Q(s, a)],

with the step size α_n(s, a) = c / n(s, a)^ω, where n(s, a) counts the visits
to (s, a) so far. For ω ∈ (1/2, 1] the steps satisfy the Robbins–Monro
conditions Σ_n α_n = ∞ and Σ_n α_n² < ∞ (Robbins & Monro 1951), and Q
converges to Q* almost surely when every pair is visited infinitely often
(Jaakkola, Jordan & Singh 1994); ω = 0 is a constant step size c, which does
not. Used by the Q-learning chapter (``q-tabular``).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from rlbook import _checks
from rlbook import mdp as mdp_lib

__all__ = ["step_size", "q_learning_update", "q_learning"]


def step_size(count: jax.Array, omega, scale=1.0) -> jax.Array:
    """α_n = c / n^ω for a visit count n ≥ 1 (c = ``scale``).

    Concrete arguments must be real and finite, and ``count`` positive (a count of 0
    would give an infinite step); traced ones are not checked.
    """
    _checks.real("count", count)
    _checks.positive("count", count)
    for name, x in (("omega", omega), ("scale", scale)):
        _checks.real(name, x)
        _checks.finite(name, x)
    return scale / jnp.asarray(count, jnp.result_type(float)) ** omega


def q_learning_update(q: jax.Array, s, a, r, s_next, alpha, gamma) -> jax.Array:
    """Q(s, a) ← Q(s, a) + α [r + γ max_a' Q(s', a') − Q(s, a)]; q of shape [S, A].

    Concrete indices outside [0, S) or [0, A) raise ``ValueError``; traced ones
    (inside :func:`q_learning`'s scan, or under ``jit``/``vmap``) cannot be checked:
    an ``s``, ``a`` or ``s_next`` out of range makes the whole returned table NaN
    (never a read of the nearest valid index or a silently dropped write).
    """
    _checks.real("q", q)
    _checks.ndim("q", q, 2)
    _checks.finite("q", q)
    S, A = jnp.shape(q)
    _checks.index("s", s, S, what="a state index")
    _checks.index("a", a, A, what="an action index")
    _checks.index("s_next", s_next, S, what="a state index")
    for name, x in (("r", r), ("alpha", alpha), ("gamma", gamma)):
        _checks.real(name, x)
        _checks.finite(name, x)
    q = jnp.asarray(q)  # a numpy table gets JAX's .at (a JAX array is returned as it is)
    td = r + gamma * jnp.max(q[s_next]) - q[s, a]
    valid = (s >= 0) & (s < S) & (a >= 0) & (a < A) & (s_next >= 0) & (s_next < S)
    return _checks.nan_unless(valid, q.at[s, a].add(alpha * td))


def q_learning(
    key: jax.Array,
    mdp: mdp_lib.MDP,
    *,
    n_steps: int,
    omega=0.8,
    scale=1.0,
    log_every: int = 100,
    behaviour: jax.Array | None = None,
    q0: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Run Q-learning along one trajectory of ``mdp`` and log the iterates.

    The trajectory starts from s₀ ∼ ρ₀ and follows the ``behaviour`` policy
    (uniform by default, shape [S, A]); rewards are r(s, a). Step sizes are
    α_n(s, a) = ``scale`` / n(s, a)^``omega``. ``n_steps`` must be a multiple of
    ``log_every``. Returns the final Q (shape [S, A]) and the iterates after
    every ``log_every`` steps, shape [n_steps // log_every, S, A]. ``omega`` and
    ``scale`` may be traced, so one compile serves every step-size schedule.
    """
    _checks.an_mdp(mdp)
    _checks.positive_int("n_steps", n_steps)
    _checks.positive_int("log_every", log_every)
    if n_steps % log_every:
        raise ValueError(f"n_steps must be a multiple of log_every={log_every}, got {n_steps}")
    _checks.real("omega", omega)
    if _checks.is_concrete(omega) and not 0.0 <= float(omega) <= 1.0:
        raise ValueError(f"omega must lie in [0, 1], got {float(omega)}")
    _checks.positive("scale", scale)
    if behaviour is None:
        behaviour = jnp.full(mdp.r.shape, 1.0 / mdp.n_actions, mdp.r.dtype)
    _checks.policy(mdp, behaviour, "behaviour")
    q = jnp.zeros_like(mdp.r) if q0 is None else jnp.asarray(q0, mdp.r.dtype)
    _checks.values(mdp, q, "q0", "q")
    return _q_learning(
        key,
        mdp,
        jnp.asarray(behaviour, mdp.r.dtype),
        q,
        omega,
        scale,
        n_steps // log_every,
        log_every,
    )


@partial(jax.jit, static_argnums=(6, 7))
def _q_learning(key, mdp, behaviour, q, omega, scale, n_logs, log_every):
    k_s0, k_run = jax.random.split(key)
    s0 = jax.random.choice(k_s0, mdp.n_states, p=mdp.rho0)
    counts = jnp.zeros(mdp.r.shape, jnp.int32)

    def step(carry, k):
        q, counts, s = carry
        k_a, k_s = jax.random.split(k)
        a = jax.random.choice(k_a, mdp.n_actions, p=behaviour[s])
        s_next = jax.random.choice(k_s, mdp.n_states, p=mdp.P[s, a])
        counts = counts.at[s, a].add(1)
        alpha = step_size(counts[s, a], omega, scale).astype(q.dtype)
        q = q_learning_update(q, s, a, mdp.r[s, a], s_next, alpha, mdp.gamma)
        return (q, counts, s_next), None

    def block(carry, k):
        carry, _ = jax.lax.scan(step, carry, jax.random.split(k, log_every))
        return carry, carry[0]

    (q, _, _), log = jax.lax.scan(block, (q, counts, s0), jax.random.split(k_run, n_logs))
    return q, log
