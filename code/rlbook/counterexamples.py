r"""Two tabular MDPs with linear state features on which off-policy TD(0) diverges.

Baird's star (Baird 1995) and the two-state "w → 2w" example of Tsitsiklis & Van Roy
(1997). Both are :mod:`rlbook.mdp` MDPs (``P[s, a, s']``) with a feature matrix
``Φ[s, k]``; the value estimate is V_w = Φ w. The chapter ``td_divergence`` derives their
exact thresholds on γ (labels ``tdd-*``). They are MDPs to be solved and linearized, not
environments to be stepped, so they sit beside :mod:`rlbook.mdp`, not in
:mod:`rlbook.envs`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlbook import _checks
from rlbook import mdp as mdp_lib

__all__ = ["FeatureMDP", "baird_star", "two_state"]


class FeatureMDP(NamedTuple):
    """A tabular MDP with linear features for evaluating a target policy.

    Attributes:
        mdp: the :class:`rlbook.mdp.MDP`.
        phi: state features Φ of shape [S, k]; V_w(s) = Φ[s] · w.
        target: the policy π being evaluated, shape [S, A].
        behaviour: the policy μ that generates the data, shape [S, A].
        w0: the customary initial weights, shape [k].
    """

    mdp: mdp_lib.MDP
    phi: jax.Array
    target: jax.Array
    behaviour: jax.Array
    w0: jax.Array


def baird_star(gamma: float = 0.99, dtype=None) -> FeatureMDP:
    r"""Baird's star counterexample (Baird 1995; Sutton & Barto 2018, §11.2): 7 states, 8 weights.

    States 0–5 ("upper") have V(s) = 2 w_s + w_7, state 6 ("lower") has
    V(6) = w_6 + 2 w_7. Action 0 ("dashed") moves to one of the upper states
    uniformly, action 1 ("solid") moves to the lower state; every reward is 0,
    so V^π = 0 is representable (w = 0). The target policy always takes solid;
    the behaviour takes dashed with probability 6/7, which makes its state
    distribution uniform. ρ₀ is uniform. ``w0`` = (1, 1, 1, 1, 1, 1, 10, 1).
    """
    _checks.discount("gamma", gamma)
    dtype = _checks.float_dtype("dtype", dtype)
    S = 7
    P = jnp.zeros((S, 2, S), dtype)
    P = P.at[:, 0, :6].set(1.0 / 6.0).at[:, 1, 6].set(1.0)
    phi = jnp.zeros((S, 8), dtype)
    phi = phi.at[jnp.arange(6), jnp.arange(6)].set(2.0).at[:6, 7].set(1.0)
    phi = phi.at[6, 6].set(1.0).at[6, 7].set(2.0)
    m = mdp_lib.make_mdp(
        P, jnp.zeros((S, 2), dtype), jnp.full((S,), 1.0 / S, dtype), jnp.asarray(gamma, dtype)
    )
    target = jnp.zeros((S, 2), dtype).at[:, 1].set(1.0)
    behaviour = jnp.tile(jnp.asarray([6.0 / 7.0, 1.0 / 7.0], dtype), (S, 1))
    w0 = jnp.asarray([1, 1, 1, 1, 1, 1, 10, 1], dtype)
    return FeatureMDP(m, phi, target, behaviour, w0)


def two_state(gamma: float = 0.9, epsilon: float = 0.0, dtype=None) -> FeatureMDP:
    r"""The two-state "w → 2w" example (Tsitsiklis & Van Roy 1997; Sutton & Barto 2018, §11.2).

    One weight w and one action. State 0 has feature 1 (V = w) and moves to
    state 1; state 1 has feature 2 (V = 2w) and stays with probability 1 − ε,
    else moves to state 2, an absorbing terminal state with feature 0. Rewards
    are 0, so V^π = 0 = Φ · 0. ρ₀ is the point mass on state 0. ``w0`` = (1,).
    """
    _checks.discount("gamma", gamma)
    _checks.interval("epsilon", epsilon, 0.0, 1.0)
    dtype = _checks.float_dtype("dtype", dtype)
    P = jnp.asarray([[[0.0, 1.0, 0.0]], [[0.0, 1.0 - epsilon, epsilon]], [[0.0, 0.0, 1.0]]], dtype)
    m = mdp_lib.make_mdp(
        P, jnp.zeros((3, 1), dtype), jnp.asarray([1.0, 0.0, 0.0], dtype), jnp.asarray(gamma, dtype)
    )
    phi = jnp.asarray([[1.0], [2.0], [0.0]], dtype)
    one = jnp.ones((3, 1), dtype)
    return FeatureMDP(m, phi, one, one, jnp.ones((1,), dtype))
