"""Baird's star and the two-state w → 2w example against direct numpy computations."""

import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import counterexamples, mdp, ntk


def np_baird():
    """Baird's star written out by hand (Sutton & Barto 2018, Figure 11.1)."""
    phi = np.zeros((7, 8))
    for i in range(6):
        phi[i, i], phi[i, 7] = 2.0, 1.0
    phi[6, 6], phi[6, 7] = 1.0, 2.0
    P_target = np.zeros((7, 7))
    P_target[:, 6] = 1.0  # solid action: always to the lower state
    P_behaviour = 6 / 7 * np.tile(np.r_[np.full(6, 1 / 6), 0.0], (7, 1)) + 1 / 7 * P_target
    return phi, P_target, P_behaviour


def baird_A(gamma):
    phi, P, _ = np_baird()
    return phi.T @ np.eye(7) / 7 @ (np.eye(7) - gamma * P) @ phi


def test_baird_star_is_the_textbook_mdp():
    b = counterexamples.baird_star()
    phi, P_target, P_behaviour = np_baird()
    np.testing.assert_array_equal(b.phi, phi)
    np.testing.assert_allclose(mdp.policy_dynamics(b.mdp, b.target), P_target, atol=1e-15)
    np.testing.assert_allclose(mdp.policy_dynamics(b.mdp, b.behaviour), P_behaviour, atol=1e-15)
    assert float(b.mdp.gamma) == 0.99 and np.all(np.asarray(b.mdp.r) == 0)
    # the behaviour's state distribution is uniform: stationary and discounted
    u = np.full(7, 1 / 7)
    np.testing.assert_allclose(u @ P_behaviour, u, atol=1e-15)
    np.testing.assert_allclose(mdp.visitation(b.mdp, b.behaviour), u, atol=1e-12)
    np.testing.assert_array_equal(b.w0, [1, 1, 1, 1, 1, 1, 10, 1])


@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_baird_expected_update_matrix_and_spectrum_against_numpy(gamma):
    b = counterexamples.baird_star(gamma)
    A, bvec = ntk.linear_td(b.mdp, b.target, b.phi, np.full(7, 1 / 7))
    np.testing.assert_allclose(A, baird_A(gamma), atol=1e-14)
    np.testing.assert_allclose(bvec, 0.0, atol=0)
    got = np.sort_complex(np.linalg.eigvals(np.asarray(A)))
    want = np.sort_complex(np.linalg.eigvals(baird_A(gamma)))
    np.testing.assert_allclose(got, want, atol=1e-10)


def test_baird_threshold_is_15_over_17():
    """Off-policy TD(0) on Baird's star is unstable iff γ > 15/17 (for every small α)."""

    def least_real(gamma):
        ev = np.linalg.eigvals(baird_A(gamma))
        ev = ev[np.abs(ev) > 1e-9]  # drop the null direction of Φ (8 weights, 7 states)
        return ev.real.min()

    g = 15 / 17
    assert least_real(g - 1e-6) > 0 > least_real(g + 1e-6)
    assert least_real(0.99) < -0.02
    # on-policy weighting (the target's discounted visitation) is stable at γ = 0.99
    b = counterexamples.baird_star(0.99)
    d = np.asarray(mdp.visitation(b.mdp, b.target))
    A, _ = ntk.linear_td(b.mdp, b.target, b.phi, d)
    ev = np.linalg.eigvals(np.asarray(A))
    assert ev[np.abs(ev) > 1e-9].real.min() > 0


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_two_state_thresholds(epsilon):
    def a(gamma, d):
        t = counterexamples.two_state(gamma, epsilon)
        A, _ = ntk.linear_td(t.mdp, t.target, t.phi, np.asarray(d, float))
        return float(np.asarray(A)[0, 0])

    first, uniform = [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]
    # closed form A = d0 (1 − 2γ) + 4 d1 (1 − γ(1 − ε))
    for gamma in (0.3, 0.7, 0.95):
        assert a(gamma, uniform) == pytest.approx(
            0.5 * (1 - 2 * gamma) + 2 * (1 - gamma * (1 - epsilon)), abs=1e-14
        )
    g1, g2 = 0.5, 5 / (6 - 4 * epsilon)
    assert a(g1 - 1e-6, first) > 0 > a(g1 + 1e-6, first)
    if g2 < 1:
        assert a(g2 - 1e-6, uniform) > 0 > a(g2 + 1e-6, uniform)
    else:
        assert a(0.999, uniform) > 0
    # on-policy: A = (1 − γ)(1 + 2γ) > 0 for every γ
    for gamma in (0.1, 0.6, 0.99):
        t = counterexamples.two_state(gamma, epsilon)
        d = np.asarray(mdp.visitation(t.mdp, t.target))
        assert a(gamma, d) == pytest.approx((1 - gamma) * (1 + 2 * gamma), rel=1e-10)


def test_two_state_w_to_2w():
    t = counterexamples.two_state(0.9)
    np.testing.assert_array_equal(t.phi[:, 0], [1.0, 2.0, 0.0])
    np.testing.assert_array_equal(t.mdp.P[0, 0], [0.0, 1.0, 0.0])
    # TD(0) on the first transition only: w ← w + α (2γ − 1) w
    A, _ = ntk.linear_td(t.mdp, t.target, t.phi, jnp.asarray([1.0, 0.0, 0.0]))
    assert float(A[0, 0]) == pytest.approx(1 - 2 * 0.9)


def test_bad_input():
    with pytest.raises(ValueError, match="gamma must lie in"):
        counterexamples.baird_star(1.0)
    with pytest.raises(ValueError, match="gamma must lie in"):
        counterexamples.two_state(-0.1)
    with pytest.raises(ValueError, match="epsilon must lie in"):
        counterexamples.two_state(0.9, 1.5)
