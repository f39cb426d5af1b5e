r"""Tabular Markov decision processes as arrays.

An MDP is the tuple ``(P, r, rho0, gamma)`` with ``P[s, a, s'] = P(s' | s, a)``
of shape ``[S, A, S]``, ``r[s, a]`` of shape ``[S, A]``, ``rho0[s]`` of shape
``[S]`` and a discount ``gamma`` in [0, 1). A stochastic policy is an array
``pi[s, a] = π(a | s)`` of shape ``[S, A]``; a deterministic one is the same
array with one-hot rows.

Everything here is a pure function of arrays and is differentiable with JAX,
so ``jax.grad(lambda θ: expected_return(mdp, softmax_policy(θ)))`` is the exact
policy gradient of the closed-form J(θ) = ρ₀ᵀ V^π. Notation follows the book's
notation page: P_π and r_π are the dynamics and reward averaged under π,
T^π and T^* the Bellman evaluation and optimality operators, and
d^π_ρ₀ = (1 − γ) ρ₀ᵀ (I − γ P_π)⁻¹ the normalized discounted state visitation.

Used by every chapter that checks a claim exactly on a small MDP.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks

__all__ = [
    "MDP",
    "make_mdp",
    "garnet",
    "softmax_policy",
    "greedy_policy",
    "uniform_policy",
    "policy_dynamics",
    "policy_reward",
    "bellman_v",
    "bellman_q",
    "bellman_opt_v",
    "bellman_opt_q",
    "evaluate_v",
    "evaluate_q",
    "advantage",
    "return_second_moment",
    "gae_moments",
    "ValueIterationResult",
    "value_iteration",
    "visitation",
    "occupancy",
    "expected_return",
    "soft_value",
    "soft_bellman_opt_q",
    "soft_value_iteration",
    "projected_value_iteration",
]


class MDP(NamedTuple):
    """A finite discounted MDP; a pytree, so it passes through ``jit`` and ``vmap``.

    Attributes:
        P: transition probabilities P(s' | s, a), shape [S, A, S].
        r: expected rewards r(s, a), shape [S, A].
        rho0: initial-state distribution ρ₀, shape [S].
        gamma: discount γ in [0, 1), a scalar.
    """

    P: jax.Array
    r: jax.Array
    rho0: jax.Array
    gamma: jax.Array

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def make_mdp(P, r, rho0, gamma) -> MDP:
    """Build an :class:`MDP` from array-likes, validating every part.

    Raises ``ValueError`` when a row of ``P`` or ``rho0`` is not a distribution,
    when the shapes disagree, when ``r`` is not finite, or when ``gamma`` is outside
    [0, 1). Integer (or bool) arrays are promoted to JAX's default float.
    """
    for name, x in (("P", P), ("r", r), ("rho0", rho0), ("gamma", gamma)):
        _checks.real(name, x)
    mdp = MDP(_checks.floating(P), _checks.floating(r), _checks.floating(rho0), jnp.asarray(gamma))
    _checks.an_mdp(mdp)
    return mdp


def garnet(
    key: jax.Array,
    n_states: int,
    n_actions: int,
    *,
    branching: int | None = None,
    gamma: float = 0.9,
    reward_scale: float = 1.0,
    dtype=None,
) -> MDP:
    """A random Garnet MDP (Archibald, McKinnon & Thomas 1995; Bhatnagar et al. 2009).

    Each (s, a) moves to ``branching`` distinct next states chosen uniformly, with
    probabilities from a flat Dirichlet; rewards are standard normal times
    ``reward_scale``; ρ₀ is a flat Dirichlet draw. ``branching=None`` uses all states.

    Returns an :class:`MDP` with P of shape [S, A, S].
    """
    _checks.positive_int("n_states", n_states)
    _checks.positive_int("n_actions", n_actions)
    if branching is None:
        branching = n_states
    _checks.positive_int("branching", branching)
    if branching > n_states:
        raise ValueError(f"branching must be at most n_states={n_states}, got {branching}")
    _checks.discount("gamma", gamma)
    _checks.finite("reward_scale", reward_scale)
    if np.ndim(reward_scale) != 0:
        raise ValueError(f"reward_scale must be a scalar, got shape {np.shape(reward_scale)}")
    dtype = _checks.float_dtype("dtype", dtype)
    P, r, rho0 = _garnet_arrays(key, n_states, n_actions, branching, dtype)
    return MDP(P, r * jnp.asarray(reward_scale, dtype), rho0, jnp.asarray(gamma, dtype))


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _garnet_arrays(key, n_states, n_actions, branching, dtype):
    k_support, k_probs, k_r, k_rho = jax.random.split(key, 4)
    # For each (s, a), a random subset of `branching` next states.
    scores = jax.random.uniform(k_support, (n_states, n_actions, n_states))
    ranks = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1)
    support = ranks < branching
    # Dirichlet(1, …, 1) draws as normalized standard exponentials.
    weights = jax.random.exponential(k_probs, (n_states, n_actions, branching))
    # Place the Dirichlet weights on the chosen states in order of their rank.
    P = jnp.where(support, jnp.take_along_axis(weights, jnp.minimum(ranks, branching - 1), -1), 0.0)
    P = (P / P.sum(-1, keepdims=True)).astype(dtype)
    r = jax.random.normal(k_r, (n_states, n_actions)).astype(dtype)
    rho0 = jax.random.exponential(k_rho, (n_states,))
    rho0 = (rho0 / rho0.sum()).astype(dtype)
    return P, r, rho0


def softmax_policy(logits: jax.Array, temperature: float = 1.0) -> jax.Array:
    """π_θ(a | s) = exp(θ[s, a] / τ) / Σ_b exp(θ[s, b] / τ); logits of shape [S, A]."""
    _checks.ndim("logits", logits, 2)
    _checks.finite("logits", logits)
    _checks.positive("temperature", temperature)
    return jax.nn.softmax(logits / temperature, axis=-1)


def greedy_policy(q: jax.Array) -> jax.Array:
    """One-hot policy on argmax_a q[s, a] (ties to the lowest index); q of shape [S, A]."""
    _checks.ndim("q", q, 2)
    if np.shape(q)[-1] == 0:
        raise ValueError(
            f"q must have at least one action (shape [S, A], A > 0), got {np.shape(q)}"
        )
    _checks.finite("q", q)
    return jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1], dtype=q.dtype)


def uniform_policy(mdp: MDP) -> jax.Array:
    """π(a | s) = 1 / :math:`|A|` for every state, shape [S, A]."""
    _checks.an_mdp(mdp)
    return jnp.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions, dtype=mdp.P.dtype)


def policy_dynamics(mdp: MDP, pi: jax.Array) -> jax.Array:
    """P_π[s, s'] = Σ_a π(a | s) P(s' | s, a), shape [S, S]."""
    _checks.an_mdp(mdp)
    _checks.policy(mdp, pi)
    return jnp.einsum("sa,sat->st", pi, mdp.P)


def policy_reward(mdp: MDP, pi: jax.Array) -> jax.Array:
    """r_π[s] = Σ_a π(a | s) r(s, a), shape [S]."""
    _checks.an_mdp(mdp)
    _checks.policy(mdp, pi)
    return jnp.sum(pi * mdp.r, axis=-1)


def bellman_v(mdp: MDP, pi: jax.Array, v: jax.Array) -> jax.Array:
    """(T^π V)(s) = r_π(s) + γ Σ_s' P_π(s' | s) V(s'), shape [S]."""
    _checks.an_mdp(mdp)
    _checks.values(mdp, v, "v", "v")
    return policy_reward(mdp, pi) + mdp.gamma * policy_dynamics(mdp, pi) @ v


def bellman_q(mdp: MDP, pi: jax.Array, q: jax.Array) -> jax.Array:
    """(T^π Q)(s, a) = r(s, a) + γ Σ_s' P(s' | s, a) Σ_a' π(a' | s') Q(s', a'), shape [S, A]."""
    _checks.an_mdp(mdp)
    _checks.policy(mdp, pi)
    _checks.values(mdp, q, "q", "q")
    return mdp.r + mdp.gamma * mdp.P @ jnp.sum(pi * q, axis=-1)


def bellman_opt_v(mdp: MDP, v: jax.Array) -> jax.Array:
    """(T^* V)(s) = max_a [r(s, a) + γ Σ_s' P(s' | s, a) V(s')], shape [S]."""
    _checks.an_mdp(mdp)
    _checks.values(mdp, v, "v", "v")
    return jnp.max(mdp.r + mdp.gamma * mdp.P @ v, axis=-1)


def bellman_opt_q(mdp: MDP, q: jax.Array) -> jax.Array:
    """(T^* Q)(s, a) = r(s, a) + γ Σ_s' P(s' | s, a) max_a' Q(s', a'), shape [S, A]."""
    _checks.an_mdp(mdp)
    _checks.values(mdp, q, "q", "q")
    return mdp.r + mdp.gamma * mdp.P @ jnp.max(q, axis=-1)


def evaluate_v(mdp: MDP, pi: jax.Array) -> jax.Array:
    """V^π = (I − γ P_π)⁻¹ r_π by a direct linear solve, shape [S]."""
    P_pi = policy_dynamics(mdp, pi)
    eye = jnp.eye(mdp.n_states, dtype=P_pi.dtype)
    return jnp.linalg.solve(eye - mdp.gamma * P_pi, policy_reward(mdp, pi))


def evaluate_q(mdp: MDP, pi: jax.Array) -> jax.Array:
    """Q^π(s, a) = r(s, a) + γ Σ_s' P(s' | s, a) V^π(s'), shape [S, A]."""
    _checks.require_mdp(mdp)
    return mdp.r + mdp.gamma * mdp.P @ evaluate_v(mdp, pi)


def advantage(mdp: MDP, pi: jax.Array) -> jax.Array:
    """A^π(s, a) = Q^π(s, a) − V^π(s), shape [S, A]."""
    _checks.require_mdp(mdp)
    q = evaluate_q(mdp, pi)
    return q - jnp.sum(pi * q, axis=-1, keepdims=True)


def return_second_moment(mdp: MDP, pi: jax.Array) -> jax.Array:
    r"""M^π(s, a) = E[G² | s_0 = s, a_0 = a] with G = Σ_t γᵗ r(s_t, a_t), shape [S, A].

    Rewards are the deterministic r(s, a), so G = r(s, a) + γ G' with G' the
    return from s' ∼ P(· | s, a), and squaring gives a Bellman equation for the
    second moment (Sobel 1982) with discount γ²::

        M^π(s, a) = r(s, a)² + 2γ r(s, a) Σ_s' P(s' | s, a) V^π(s')
                    + γ² Σ_s' P(s' | s, a) M_V(s'),
        M_V = (I − γ² P_π)⁻¹ Σ_a π(a | ·) m(·, a),

    where m(s, a) is the first two terms. Var(G | s, a) = M^π − (Q^π)². Used by
    the baselines chapter (``bl-optimal-baseline``) for exact variances of
    policy-gradient estimators.
    """
    v = evaluate_v(mdp, pi)
    m = mdp.r**2 + 2.0 * mdp.gamma * mdp.r * (mdp.P @ v)
    P_pi = policy_dynamics(mdp, pi)
    eye = jnp.eye(mdp.n_states, dtype=P_pi.dtype)
    m_v = jnp.linalg.solve(eye - mdp.gamma**2 * P_pi, jnp.sum(pi * m, axis=-1))
    return m + mdp.gamma**2 * mdp.P @ m_v


def gae_moments(mdp: MDP, pi: jax.Array, v: jax.Array, lam) -> tuple[jax.Array, jax.Array]:
    r"""First and second moments of the GAE(γ, λ) advantage estimate, each of shape [S, A].

    With a value estimate V (any array [S]), TD errors
    δ_t = r(s_t, a_t) + γ V(s_{t+1}) − V(s_t) and κ = γλ, the estimate
    X = Â^{GAE(γ, λ)}_0 = Σ_l κ^l δ_l (Schulman et al. 2016) satisfies X = δ_0 + κ X'
    with X' the same sum from s_1, a_1 ∼ π. Conditioning on (s_0, a_0) = (s, a)::

        μ(s, a) = E[X | s, a] = δ̄(s, a) + κ Σ_s' P(s' | s, a) μ_π(s'),
        m(s, a) = E[X² | s, a] = Σ_s' P(s' | s, a) [δ(s, a, s')² + 2κ δ(s, a, s') μ_π(s')
                                                     + κ² m_π(s')],

    where δ̄(s, a) = Σ_s' P(s' | s, a) δ(s, a, s') and f_π(s) = Σ_a π(a | s) f(s, a);
    each is a linear solve, with (I − κ P_π) and (I − κ² P_π). Returns ``(μ, m)``; the
    variance is m − μ². At λ = 1 and V = 0, X is the return G, so ``m`` is
    :func:`return_second_moment`. Used by the baselines chapter (``bl-gae-tradeoff``).
    """
    _checks.an_mdp(mdp)
    _checks.policy(mdp, pi)
    _checks.values(mdp, v, "v", "v")
    _checks.discount("lam", lam, allow_one=True)
    kappa = mdp.gamma * jnp.asarray(lam, mdp.P.dtype)
    eye = jnp.eye(mdp.n_states, dtype=mdp.P.dtype)
    P_pi = policy_dynamics(mdp, pi)
    delta = mdp.r[:, :, None] + mdp.gamma * v[None, None, :] - v[:, None, None]  # [S, A, S']
    delta_bar = jnp.sum(mdp.P * delta, axis=-1)
    mu_pi = jnp.linalg.solve(eye - kappa * P_pi, jnp.sum(pi * delta_bar, axis=-1))
    mu = delta_bar + kappa * mdp.P @ mu_pi
    c = jnp.sum(mdp.P * (delta**2 + 2.0 * kappa * delta * mu_pi[None, None, :]), axis=-1)
    m_pi = jnp.linalg.solve(eye - kappa**2 * P_pi, jnp.sum(pi * c, axis=-1))
    return mu, c + kappa**2 * mdp.P @ m_pi


class ValueIterationResult(NamedTuple):
    """Output of :func:`value_iteration`.

    Attributes:
        q: the last iterate Q_k, shape [S, A].
        iterations: k, the number of applications of T^*.
        bound: the a-posteriori bound γ / (1 − γ) ‖Q_k − Q_{k−1}‖∞ ≥ ‖Q_k − Q*‖∞.
    """

    q: jax.Array
    iterations: jax.Array
    bound: jax.Array


def _check_q0(mdp: MDP, q0):
    if q0 is None:
        return jnp.zeros_like(mdp.r)
    _checks.real("q0", q0)
    _checks.finite("q0", q0)
    q = jnp.asarray(q0, mdp.r.dtype)
    _checks.values(mdp, q, "q0", "q")
    return q


def _converged(result: ValueIterationResult, tol, max_iter, insist: bool, return_info: bool):
    """``result`` (and whether bound ≤ tol when ``return_info``); raise when ``insist``."""
    if not (insist or return_info):
        return result
    converged = result.bound <= tol
    if insist and _checks.is_concrete(converged) and not bool(converged):
        raise ValueError(
            f"max_iter={max_iter} iterations did not reach tol={tol}: the bound is "
            f"{float(result.bound):.3g} (raise max_iter or tol; in float32 a γ close to 1 "
            "may never reach a small tol)"
        )
    return (result, converged) if return_info else result


def value_iteration(
    mdp: MDP,
    *,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    q0: jax.Array | None = None,
    insist: bool = False,
    return_info: bool = False,
) -> ValueIterationResult:
    """Iterate Q_{k+1} = T^* Q_k until the a-posteriori bound falls below ``tol``.

    Since T^* is a γ-contraction in the sup norm,
    ‖Q_k − Q*‖∞ ≤ γ / (1 − γ) ‖Q_k − Q_{k−1}‖∞, so stopping when that bound is
    below ``tol`` guarantees ``tol`` accuracy (:ref:`q-banach` in :doc:`/book/qlearning`).
    Runs as one jitted ``lax.while_loop``.

    Convergence: the loop also stops at ``max_iter``; then ``bound > tol``. With
    ``return_info=True`` the result is ``(result, converged)``, ``converged`` the
    bool array ``bound <= tol`` (usable under ``jit``; False when anything is NaN).
    With ``insist=True`` a concrete result that did not converge raises
    ``ValueError`` (under ``jit`` nothing can be raised: read ``converged``).
    """
    _checks.an_mdp(mdp)
    _checks.positive("tol", tol)
    _checks.positive_int("max_iter", max_iter)
    _checks.flag("insist", insist)
    _checks.flag("return_info", return_info)
    q = _check_q0(mdp, q0)
    return _converged(_value_iteration(mdp, q, tol, max_iter), tol, max_iter, insist, return_info)


@partial(jax.jit, static_argnums=(3,))
def _value_iteration(mdp: MDP, q, tol, max_iter):
    factor = mdp.gamma / (1.0 - mdp.gamma)

    def cond(carry):
        _, k, bound = carry
        return (bound > tol) & (k < max_iter)

    def body(carry):
        q, k, _ = carry
        q_next = mdp.r + mdp.gamma * mdp.P @ jnp.max(q, axis=-1)
        return q_next, k + 1, factor * jnp.max(jnp.abs(q_next - q))

    init = (q, jnp.asarray(0), jnp.asarray(jnp.inf, mdp.r.dtype))
    return ValueIterationResult(*jax.lax.while_loop(cond, body, init))


def visitation(mdp: MDP, pi: jax.Array) -> jax.Array:
    """Normalized discounted state visitation d^π_ρ₀ = (1 − γ) ρ₀ᵀ (I − γ P_π)⁻¹, shape [S].

    A distribution over states: it satisfies d = (1 − γ) ρ₀ + γ P_πᵀ d.
    """
    P_pi = policy_dynamics(mdp, pi)
    eye = jnp.eye(mdp.n_states, dtype=P_pi.dtype)
    x = jnp.linalg.solve((eye - mdp.gamma * P_pi).T, mdp.rho0)
    return (1.0 - mdp.gamma) * x


def occupancy(mdp: MDP, pi: jax.Array) -> jax.Array:
    """Discounted occupancy measure ρ_π(s, a) = Σ_t γᵗ Pr(s_t = s, a_t = a), shape [S, A].

    Unnormalized: it sums to 1 / (1 − γ), and J(π) = Σ_{s,a} ρ_π(s, a) r(s, a).
    """
    return visitation(mdp, pi)[:, None] * pi / (1.0 - mdp.gamma)


def expected_return(mdp: MDP, pi: jax.Array) -> jax.Array:
    """J(π) = ρ₀ᵀ V^π = E[Σ_t γᵗ r(s_t, a_t)] with s_0 ∼ ρ₀; a scalar, differentiable in π."""
    _checks.require_mdp(mdp)
    return mdp.rho0 @ evaluate_v(mdp, pi)


# --------------------------------------------------------------------------- soft operators


def soft_value(q: jax.Array, temperature) -> jax.Array:
    """V_β(s) = β log Σ_a exp(Q(s, a) / β), the log-sum-exp "soft maximum" of each row.

    ``q`` has shape [..., A]; the result has shape [...]. It is computed stably
    (max-shifted, ``jax.nn.logsumexp``) and satisfies
    max_a Q(s, a) ≤ V_β(s) ≤ max_a Q(s, a) + β log :math:`|A|`, so it tends to the hard
    maximum as β → 0 (Ziebart et al. 2008; Haarnoja et al. 2017; the Q-learning
    chapter, ``q-soft``). A concrete ``temperature`` whose reciprocal overflows in
    q's floating dtype (1e-45 in float32) is refused, as in :func:`soft_value_iteration`.
    """
    _checks.positive("temperature", temperature)
    if np.ndim(q) < 1:
        raise ValueError(f"q must have an action axis, got shape {np.shape(q)}")
    _checks.real("q", q)
    _checks.finite("q", q)
    _check_temperature_dtype(temperature, jnp.result_type(q, float))
    return temperature * jax.nn.logsumexp(q / temperature, axis=-1)


def soft_bellman_opt_q(mdp: MDP, q: jax.Array, temperature) -> jax.Array:
    """(T_β Q)(s, a) = r(s, a) + γ Σ_s' P(s' | s, a) β log Σ_a' exp(Q(s', a') / β), shape [S, A].

    The entropy-regularized (soft) Bellman optimality operator with temperature
    β > 0; a γ-contraction in the sup norm whose fixed point Q*_β satisfies
    0 ≤ Q*_β − Q* ≤ γ β log :math:`|A|` / (1 − γ) elementwise. A concrete ``temperature``
    whose reciprocal overflows in q's dtype is refused (by :func:`soft_value`).
    """
    _checks.an_mdp(mdp)
    _checks.values(mdp, q, "q", "q")
    return mdp.r + mdp.gamma * mdp.P @ soft_value(q, temperature)


def soft_value_iteration(
    mdp: MDP,
    temperature,
    *,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    q0: jax.Array | None = None,
    insist: bool = False,
    return_info: bool = False,
) -> ValueIterationResult:
    """Iterate Q_{k+1} = T_β Q_k until γ / (1 − γ) ‖Q_k − Q_{k−1}‖∞ ≤ ``tol``.

    The soft counterpart of :func:`value_iteration` (same stopping rule, same
    guarantee ‖Q_k − Q*_β‖∞ ≤ bound, same ``insist`` and ``return_info``), as one
    jitted ``lax.while_loop``. A concrete ``temperature`` whose reciprocal overflows
    in the MDP's dtype (1e-45 in float32) is refused.
    """
    _checks.an_mdp(mdp)
    _checks.positive("temperature", temperature)
    _check_temperature_dtype(temperature, mdp.r.dtype)
    _checks.positive("tol", tol)
    _checks.positive_int("max_iter", max_iter)
    _checks.flag("insist", insist)
    _checks.flag("return_info", return_info)
    q = _check_q0(mdp, q0)
    result = _soft_value_iteration(mdp, q, jnp.asarray(temperature, mdp.r.dtype), tol, max_iter)
    return _converged(result, tol, max_iter, insist, return_info)


def _check_temperature_dtype(temperature, dtype) -> None:
    if not _checks.is_concrete(temperature):
        return
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        t = np.asarray(temperature).astype(dtype)
        inv = np.asarray(1.0, dtype) / t
    if not (np.all(t > 0) and np.all(np.isfinite(inv))):
        raise ValueError(
            f"temperature must be > 0 with a finite reciprocal in {np.dtype(dtype)}, "
            f"got {temperature!r}"
        )


@partial(jax.jit, static_argnums=(4,))
def _soft_value_iteration(mdp: MDP, q, temperature, tol, max_iter):
    factor = mdp.gamma / (1.0 - mdp.gamma)

    def cond(carry):
        _, k, bound = carry
        return (bound > tol) & (k < max_iter)

    def body(carry):
        q, k, _ = carry
        v = temperature * jax.nn.logsumexp(q / temperature, axis=-1)
        q_next = mdp.r + mdp.gamma * mdp.P @ v
        return q_next, k + 1, factor * jnp.max(jnp.abs(q_next - q))

    init = (q, jnp.asarray(0), jnp.asarray(jnp.inf, mdp.r.dtype))
    return ValueIterationResult(*jax.lax.while_loop(cond, body, init))


# --------------------------------------------------------------------------- projected iteration


def projected_value_iteration(
    mdp: MDP, features: jax.Array, weights: jax.Array, w0: jax.Array, n_iter: int
) -> jax.Array:
    """Least-squares fitted value iteration with linear features, Q_w = Φ w.

    ::

        w_{k+1} = argmin_w Σ_{s,a} D(s, a) (Φ w − T^* Φ w_k)²(s, a)
                = (Φᵀ D Φ)⁻¹ Φᵀ D T^*(Φ w_k),

    that is Q_{k+1} = Π_D T^* Q_k with Π_D the D-weighted orthogonal projection
    onto the span of the features: fitted Q-iteration (Ernst et al. 2005) with
    exact expectations and a linear regressor. ``features`` Φ has shape
    [S, A, K], ``weights`` D (positive) shape [S, A], ``w0`` shape [K].
    Returns the iterates w_0, …, w_n, shape [n_iter + 1, K]. Gordon (1995) and
    Tsitsiklis & Van Roy (1997) show it can diverge: the Q-learning chapter,
    ``q-projected``.
    """
    _checks.an_mdp(mdp)
    _checks.ndim("features", features, 3)
    S, A = mdp.n_states, mdp.n_actions
    if np.shape(features)[:2] != (S, A):
        raise ValueError(
            f"features must have shape [S, A, K] with [S, A] = {(S, A)}, got {np.shape(features)}"
        )
    _checks.finite("features", features)
    K = np.shape(features)[2]
    if np.shape(weights) != (S, A):
        raise ValueError(f"weights must have shape {(S, A)}, got {np.shape(weights)}")
    _checks.positive("weights", weights, strict=False)
    if np.shape(w0) != (K,):
        raise ValueError(f"w0 must have shape {(K,)}, got {np.shape(w0)}")
    _checks.finite("w0", w0)
    _checks.positive_int("n_iter", n_iter)
    return _projected_value_iteration(
        mdp, jnp.asarray(features), jnp.asarray(weights), jnp.asarray(w0), n_iter
    )


@partial(jax.jit, static_argnums=(4,))
def _projected_value_iteration(mdp: MDP, features, weights, w0, n_iter):
    phi = features.reshape(-1, features.shape[-1])  # [S·A, K]
    d = weights.reshape(-1)
    gram = phi.T @ (d[:, None] * phi)  # Φᵀ D Φ

    def body(w, _):
        q = features @ w  # Φ w, shape [S, A]
        target = (mdp.r + mdp.gamma * mdp.P @ jnp.max(q, axis=-1)).reshape(-1)
        w_next = jnp.linalg.solve(gram, phi.T @ (d * target))
        return w_next, w_next

    _, ws = jax.lax.scan(body, w0, None, length=n_iter)
    return jnp.concatenate([w0[None], ws], axis=0)
