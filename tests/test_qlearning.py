"""Soft Bellman operators, projected value iteration and tabular Q-learning against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbook import mdp
from rlbook.agents import qlearning


def np_soft_value(q, beta):
    """β log Σ_a exp(q_a / β), shifted by the row maximum so that small β does not overflow."""
    q = np.asarray(q, dtype=np.float64)
    m = q.max(-1, keepdims=True)
    return (m + beta * np.log(np.exp((q - m) / beta).sum(-1, keepdims=True)))[..., 0]


def np_policy_iteration(P, r, gamma):
    """Q* by Howard's policy iteration in numpy (exact after finitely many steps)."""
    P, r = np.asarray(P), np.asarray(r)
    S, _ = r.shape
    pol = np.zeros(S, int)
    while True:
        P_pi, r_pi = P[np.arange(S), pol], r[np.arange(S), pol]
        q = r + gamma * P @ np.linalg.solve(np.eye(S) - gamma * P_pi, r_pi)
        new = q.argmax(-1)
        if np.all(q[np.arange(S), new] <= q[np.arange(S), pol] + 1e-12):
            return q
        pol = new


def random_mdp(seed, S=5, A=3, gamma=0.9):
    return mdp.garnet(jax.random.PRNGKey(seed), S, A, gamma=gamma)


# ----------------------------------------------------------------------------- soft operators


@pytest.mark.parametrize("beta", [1e-3, 0.1, 1.0, 10.0])
def test_soft_value_matches_numpy_and_lies_between_max_and_max_plus_beta_log_a(beta):
    q = np.random.default_rng(0).normal(scale=5.0, size=(7, 4))
    v = np.asarray(mdp.soft_value(q, beta))
    np.testing.assert_allclose(v, np_soft_value(q, beta), rtol=1e-12, atol=1e-12)
    assert np.all(v >= q.max(-1) - 1e-12)
    assert np.all(v <= q.max(-1) + beta * np.log(4) + 1e-12)


def test_soft_value_is_the_entropy_regularized_maximum():
    """β log Σ exp(q/β) = max_π Σ_a π_a q_a + β H(π), attained at π = softmax(q/β)."""
    rng = np.random.default_rng(1)
    q, beta = rng.normal(size=5), 0.7
    pi = np.exp(q / beta) / np.exp(q / beta).sum()
    np.testing.assert_allclose(pi @ q - beta * pi @ np.log(pi), mdp.soft_value(q, beta), rtol=1e-12)
    for _ in range(100):
        other = rng.dirichlet(np.ones(5))
        assert other @ q - beta * other @ np.log(other) <= float(mdp.soft_value(q, beta)) + 1e-12


def test_soft_bellman_operator_matches_a_numpy_reference():
    m = random_mdp(2)
    q = np.random.default_rng(2).normal(size=(5, 3))
    P, r = np.asarray(m.P), np.asarray(m.r)
    want = r + 0.9 * np.einsum("sat,t->sa", P, np_soft_value(q, 0.3))
    np.testing.assert_allclose(mdp.soft_bellman_opt_q(m, q, 0.3), want, rtol=1e-12, atol=1e-12)


@jax.jit
def _soft_ratio(key, gamma, beta):
    k = jax.random.split(key, 4)
    S, A = 4, 3
    P = jax.nn.softmax(3 * jax.random.normal(k[0], (S, A, S)), -1)
    m = mdp.MDP(P, jax.random.normal(k[1], (S, A)), jnp.ones(S) / S, gamma)
    q1, q2 = 10 * jax.random.normal(k[2], (S, A)), 10 * jax.random.normal(k[3], (S, A))
    diff = mdp.soft_bellman_opt_q(m, q1, beta) - mdp.soft_bellman_opt_q(m, q2, beta)
    return jnp.max(jnp.abs(diff)) / jnp.max(jnp.abs(q1 - q2))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gamma=st.floats(0.0, 0.999), beta=st.floats(1e-3, 1e3))
def test_soft_bellman_operator_is_a_sup_norm_contraction(seed, gamma, beta):
    """‖T_β Q₁ − T_β Q₂‖∞ ≤ γ ‖Q₁ − Q₂‖∞ for every temperature β > 0."""
    ratio = _soft_ratio(jax.random.PRNGKey(seed), gamma, beta)
    assert ratio <= gamma * (1 + 1e-10) + 1e-15, (ratio, gamma, beta)


@pytest.mark.parametrize("beta", [1.0, 0.1, 0.01])
def test_soft_fixed_point_is_within_gamma_beta_log_a_over_one_minus_gamma_of_q_star(beta):
    gamma, A = 0.9, 3
    m = random_mdp(3, S=6, A=A, gamma=gamma)
    q_star = np_policy_iteration(m.P, m.r, gamma)
    res = mdp.soft_value_iteration(m, beta, tol=1e-11)
    q_beta = np.asarray(res.q)
    np.testing.assert_allclose(mdp.soft_bellman_opt_q(m, q_beta, beta), q_beta, atol=1e-10)
    gap = q_beta - q_star
    assert np.all(gap >= -1e-10)
    assert gap.max() <= gamma * beta * np.log(A) / (1 - gamma) + 1e-10
    # and the a-posteriori bound is a true bound on the distance to Q*_β
    long = mdp.soft_value_iteration(m, beta, tol=1e-13)
    assert np.max(np.abs(q_beta - np.asarray(long.q))) <= float(res.bound) + 1e-12


# ----------------------------------------------------------------------------- projection


def test_projected_value_iteration_matches_numpy_weighted_least_squares():
    m = random_mdp(4, S=5, A=2, gamma=0.8)
    rng = np.random.default_rng(4)
    phi, d = rng.normal(size=(5, 2, 3)), rng.uniform(0.1, 1.0, size=(5, 2))
    w0 = rng.normal(size=3)
    ws = np.asarray(mdp.projected_value_iteration(m, phi, d, w0, 4))
    P, r = np.asarray(m.P), np.asarray(m.r)
    w = w0
    np.testing.assert_allclose(ws[0], w0)
    for k in range(1, 5):
        target = (r + 0.8 * P @ (phi @ w).max(-1)).ravel()
        sqrt_d = np.sqrt(d.ravel())
        w = np.linalg.lstsq(sqrt_d[:, None] * phi.reshape(10, 3), sqrt_d * target, rcond=None)[0]
        np.testing.assert_allclose(ws[k], w, rtol=1e-9, atol=1e-10)


def test_projected_value_iteration_diverges_on_the_two_state_example():
    """Tsitsiklis & Van Roy's w, 2w chain with a quit action: w_k = (6γ/5)^k w_0 although Q* = 0."""
    gamma = 0.9
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[1, 0, 1] = 1.0  # continue: s0 → s1 → s1
    P[:, 1, 2] = 1.0  # quit: to the absorbing s2
    P[2, 0, 2] = 1.0
    m = mdp.make_mdp(P, np.zeros((3, 2)), np.array([1.0, 0, 0]), gamma)
    phi = np.zeros((3, 2, 1))
    phi[0, 0, 0], phi[1, 0, 0] = 1.0, 2.0
    ws = np.asarray(mdp.projected_value_iteration(m, phi, np.ones((3, 2)), np.ones(1), 30))
    np.testing.assert_allclose(ws[:, 0], (6 * gamma / 5) ** np.arange(31), rtol=1e-12)


# ----------------------------------------------------------------------------- Q-learning


def test_q_learning_update_is_one_td_step():
    q = np.arange(6.0).reshape(3, 2)
    new = np.asarray(qlearning.q_learning_update(jnp.asarray(q), 1, 0, 0.5, 2, 0.25, 0.9))
    want = q.copy()
    want[1, 0] += 0.25 * (0.5 + 0.9 * 5.0 - 2.0)
    np.testing.assert_allclose(new, want, rtol=1e-15)
    np.testing.assert_allclose(
        qlearning.step_size(jnp.arange(1, 5), 0.5, 2.0), 2.0 / np.sqrt(np.arange(1, 5)), rtol=1e-15
    )


def test_q_learning_converges_to_q_star_with_robbins_monro_steps():
    m = random_mdp(5, S=4, A=2, gamma=0.7)
    q_star = np_policy_iteration(m.P, m.r, 0.7)
    q, log = qlearning.q_learning(
        jax.random.PRNGKey(6), m, n_steps=40_000, omega=0.8, log_every=10_000
    )
    assert log.shape == (4, 4, 2)
    np.testing.assert_array_equal(log[-1], q)
    err = np.abs(np.asarray(log) - q_star).max((1, 2))
    assert err[-1] < 0.1 * np.abs(q_star).max() and err[-1] < err[0]


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_value_error_naming_the_argument():
    m = random_mdp(7, S=3, A=2)
    with pytest.raises(ValueError, match="temperature"):
        mdp.soft_value(np.zeros((3, 2)), 0.0)
    with pytest.raises(ValueError, match="q must have an action axis"):
        mdp.soft_value(np.float64(1.0), 1.0)
    with pytest.raises(ValueError, match="q must have shape"):
        mdp.soft_bellman_opt_q(m, np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        mdp.soft_value_iteration(m, -1.0)
    with pytest.raises(ValueError, match="features"):
        mdp.projected_value_iteration(m, np.zeros((3, 3, 1)), np.ones((3, 2)), np.zeros(1), 2)
    with pytest.raises(ValueError, match="weights"):
        mdp.projected_value_iteration(m, np.zeros((3, 2, 1)), np.ones((3, 3)), np.zeros(1), 2)
    with pytest.raises(ValueError, match="weights"):
        mdp.projected_value_iteration(m, np.zeros((3, 2, 1)), -np.ones((3, 2)), np.zeros(1), 2)
    with pytest.raises(ValueError, match="w0"):
        mdp.projected_value_iteration(m, np.zeros((3, 2, 1)), np.ones((3, 2)), np.zeros(2), 2)
    with pytest.raises(ValueError, match="n_iter"):
        mdp.projected_value_iteration(m, np.zeros((3, 2, 1)), np.ones((3, 2)), np.zeros(1), 0)
    with pytest.raises(ValueError, match="n_steps"):
        qlearning.q_learning(jax.random.PRNGKey(0), m, n_steps=150, log_every=100)
    with pytest.raises(ValueError, match="omega"):
        qlearning.q_learning(jax.random.PRNGKey(0), m, n_steps=100, omega=1.5)
    with pytest.raises(ValueError, match="scale"):
        qlearning.q_learning(jax.random.PRNGKey(0), m, n_steps=100, scale=0.0)
    with pytest.raises(ValueError, match="behaviour"):
        qlearning.q_learning(jax.random.PRNGKey(0), m, n_steps=100, behaviour=np.ones((3, 2)))
