"""rlbook.mdp against independent references: numpy iteration, direct sums, finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbook import mdp


def random_mdp(seed, S=5, A=3, gamma=0.9, branching=None):
    return mdp.garnet(jax.random.PRNGKey(seed), S, A, branching=branching, gamma=gamma)


def random_policy(seed, S, A):
    return np.asarray(jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(seed), (S, A)), -1))


def np_iterate_v(P, r, pi, gamma, n=3000):
    """Plain-numpy reference: apply T^π n times from zero."""
    P, r, pi = map(np.asarray, (P, r, pi))
    v = np.zeros(P.shape[0])
    for _ in range(n):
        v = (pi * (r + gamma * P @ v)).sum(-1)
    return v


def test_garnet_is_a_valid_mdp_with_the_requested_branching():
    m = random_mdp(1, S=8, A=4, branching=3)
    np.testing.assert_allclose(m.P.sum(-1), 1.0, atol=1e-12)
    assert np.all(np.asarray(m.P) >= 0)
    assert np.all((np.asarray(m.P) > 0).sum(-1) == 3)
    np.testing.assert_allclose(m.rho0.sum(), 1.0, atol=1e-12)


def test_exact_evaluation_matches_iterating_the_operator():
    m = random_mdp(2)
    pi = random_policy(3, 5, 3)
    np.testing.assert_allclose(mdp.evaluate_v(m, pi), np_iterate_v(m.P, m.r, pi, 0.9), atol=1e-10)
    q = mdp.evaluate_q(m, pi)
    np.testing.assert_allclose(mdp.bellman_q(m, pi, q), q, atol=1e-12)
    np.testing.assert_allclose((pi * mdp.advantage(m, pi)).sum(-1), 0.0, atol=1e-12)


def test_visitation_is_a_distribution_satisfying_its_balance_equation():
    m = random_mdp(4, S=7, A=2, gamma=0.95)
    pi = random_policy(5, 7, 2)
    d = np.asarray(mdp.visitation(m, pi))
    P_pi = np.einsum("sa,sat->st", pi, np.asarray(m.P))
    np.testing.assert_allclose(d.sum(), 1.0, atol=1e-12)
    assert np.all(d >= -1e-15)
    np.testing.assert_allclose(d, (1 - 0.95) * np.asarray(m.rho0) + 0.95 * P_pi.T @ d, atol=1e-12)
    # Against the truncated series (1 − γ) Σ_t γᵗ ρ₀ᵀ P_πᵗ.
    series, x = np.zeros(7), np.asarray(m.rho0)
    for t in range(2000):
        series += (1 - 0.95) * 0.95**t * x
        x = x @ P_pi
    np.testing.assert_allclose(d, series, atol=1e-12)


def test_expected_return_equals_occupancy_weighted_reward():
    m = random_mdp(6)
    pi = random_policy(7, 5, 3)
    occ = mdp.occupancy(m, pi)
    np.testing.assert_allclose(occ.sum(), 1 / (1 - 0.9), rtol=1e-12)
    np.testing.assert_allclose(mdp.expected_return(m, pi), (occ * m.r).sum(), rtol=1e-12)
    np.testing.assert_allclose(
        mdp.expected_return(m, pi), np.asarray(m.rho0) @ np_iterate_v(m.P, m.r, pi, 0.9), atol=1e-10
    )


def test_expected_return_gradient_matches_finite_differences():
    m = random_mdp(8, S=4, A=3)
    theta = jax.random.normal(jax.random.PRNGKey(9), (4, 3))
    J = lambda th: mdp.expected_return(m, mdp.softmax_policy(th))  # noqa: E731
    g = jax.grad(J)(theta)
    eps, fd = 1e-6, np.zeros((4, 3))
    for i in range(4):
        for j in range(3):
            e = jnp.zeros((4, 3)).at[i, j].set(eps)
            fd[i, j] = (J(theta + e) - J(theta - e)) / (2 * eps)
    np.testing.assert_allclose(g, fd, atol=1e-8)


def np_policy_iteration(P, r, gamma):
    """Reference Q* by Howard's policy iteration in numpy (exact after finitely many steps)."""
    P, r = np.asarray(P), np.asarray(r)
    S, A = r.shape
    pol = np.zeros(S, int)
    while True:
        P_pi, r_pi = P[np.arange(S), pol], r[np.arange(S), pol]
        v = np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
        q = r + gamma * P @ v
        new = q.argmax(-1)
        if np.all(q[np.arange(S), new] <= q[np.arange(S), pol] + 1e-12):
            return q
        pol = new


def test_value_iteration_meets_its_a_posteriori_bound():
    m = random_mdp(10, S=6, A=3, gamma=0.95)
    q_star = np_policy_iteration(m.P, m.r, 0.95)
    res = mdp.value_iteration(m, tol=1e-9)
    err = np.max(np.abs(np.asarray(res.q) - q_star))
    assert res.bound <= 1e-9
    assert err <= res.bound  # the a-posteriori bound is a true bound
    assert int(res.iterations) < 10_000
    np.testing.assert_allclose(mdp.bellman_opt_q(m, q_star), q_star, atol=1e-10)
    np.testing.assert_allclose(mdp.bellman_opt_v(m, q_star.max(-1)), q_star.max(-1), atol=1e-10)


def test_greedy_and_softmax_policies():
    q = jnp.array([[1.0, 3.0, 2.0], [0.0, -1.0, 0.5]])
    np.testing.assert_array_equal(mdp.greedy_policy(q), [[0, 1, 0], [0, 0, 1]])
    pi = mdp.softmax_policy(q, temperature=0.5)
    np.testing.assert_allclose(pi, np.exp(2 * q) / np.exp(2 * q).sum(-1, keepdims=True))


@jax.jit
def _contraction_ratios(key, gamma, P_shape_probe):
    S, A = P_shape_probe.shape
    k = jax.random.split(key, 4)
    P = jax.nn.softmax(3 * jax.random.normal(k[0], (S, A, S)), -1)
    m = mdp.MDP(P, jax.random.normal(k[0], (S, A)), jnp.ones(S) / S, gamma)
    pi = jax.nn.softmax(jax.random.normal(k[1], (S, A)), -1)
    q1 = 10 * jax.random.normal(k[2], (S, A))
    q2 = 10 * jax.random.normal(k[3], (S, A))
    dist = jnp.max(jnp.abs(q1 - q2))
    return (
        jnp.stack(
            [
                jnp.max(jnp.abs(mdp.bellman_q(m, pi, q1) - mdp.bellman_q(m, pi, q2))),
                jnp.max(jnp.abs(mdp.bellman_opt_q(m, q1) - mdp.bellman_opt_q(m, q2))),
            ]
        )
        / dist
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    gamma=st.floats(0.0, 0.999),
    S=st.integers(1, 5),
    A=st.integers(1, 3),
)
def test_bellman_operators_are_sup_norm_contractions(seed, gamma, S, A):
    """‖T Q₁ − T Q₂‖∞ ≤ γ ‖Q₁ − Q₂‖∞ for T^π and T^* on random dense MDPs."""
    ratios = _contraction_ratios(jax.random.PRNGKey(seed), gamma, jnp.zeros((S, A)))
    assert jnp.all(ratios <= gamma * (1 + 1e-12) + 1e-15), (ratios, gamma)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_value_error_naming_the_argument():
    m = random_mdp(11, S=3, A=2)
    P_bad = np.asarray(m.P).copy()
    P_bad[0, 0] *= 0.5
    with pytest.raises(ValueError, match="mdp.P must sum to 1"):
        mdp.make_mdp(P_bad, m.r, m.rho0, 0.9)
    P_neg = np.asarray(m.P).copy()
    P_neg[0, 0, :2] = [1.5, -0.5] if P_neg.shape[-1] == 2 else P_neg[0, 0, :2]
    P_neg[0, 0] = [1.5, -0.5, 0.0]
    with pytest.raises(ValueError, match="mdp.P has negative"):
        mdp.make_mdp(P_neg, m.r, m.rho0, 0.9)
    with pytest.raises(ValueError, match=r"mdp.gamma must lie in \[0, 1\)"):
        mdp.make_mdp(m.P, m.r, m.rho0, 1.0)
    with pytest.raises(ValueError, match="mdp.gamma"):
        mdp.make_mdp(m.P, m.r, m.rho0, -0.1)
    with pytest.raises(ValueError, match="mdp.r must have shape"):
        mdp.make_mdp(m.P, m.r[:, :1], m.rho0, 0.9)
    with pytest.raises(ValueError, match="mdp.rho0"):
        mdp.make_mdp(m.P, m.r, np.array([0.5, 0.5, 0.5]), 0.9)
    with pytest.raises(ValueError, match="mdp.P must have shape"):
        mdp.make_mdp(np.ones((3, 2, 2)) / 2, m.r, m.rho0, 0.9)
    with pytest.raises(ValueError, match="pi must have shape"):
        mdp.evaluate_v(m, np.ones((3, 3)) / 3)
    with pytest.raises(ValueError, match="pi must sum to 1"):
        mdp.evaluate_v(m, np.ones((3, 2)))
    with pytest.raises(ValueError, match="q must have shape"):
        mdp.bellman_opt_q(m, np.zeros(3))
    with pytest.raises(ValueError, match="v must have shape"):
        mdp.bellman_v(m, mdp.uniform_policy(m), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="gamma"):
        mdp.garnet(jax.random.PRNGKey(0), 3, 2, gamma=1.2)
    with pytest.raises(ValueError, match="branching"):
        mdp.garnet(jax.random.PRNGKey(0), 3, 2, branching=4)
    with pytest.raises(ValueError, match="n_states"):
        mdp.garnet(jax.random.PRNGKey(0), 0, 2)
    with pytest.raises(ValueError, match="tol"):
        mdp.value_iteration(m, tol=0.0)
    with pytest.raises(ValueError, match="temperature"):
        mdp.softmax_policy(np.zeros((2, 2)), temperature=0.0)
    with pytest.raises(ValueError, match="mdp must be"):
        mdp.evaluate_v((m.P, m.r, m.rho0, m.gamma), mdp.uniform_policy(m))


def test_functions_trace_under_jit_and_vmap():
    """Validation must not break tracing: J of a batch of policies, jitted."""
    m = random_mdp(12, S=4, A=2)
    thetas = jax.random.normal(jax.random.PRNGKey(13), (8, 4, 2))
    J = jax.jit(jax.vmap(lambda th: mdp.expected_return(m, mdp.softmax_policy(th))))
    ref = [float(mdp.expected_return(m, mdp.softmax_policy(t))) for t in thetas]
    np.testing.assert_allclose(J(thetas), ref, rtol=1e-12)
