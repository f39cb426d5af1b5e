"""The baselines chapter's building blocks against independent references.

``mdp.return_second_moment`` and ``mdp.gae_moments`` against a plain-numpy sum of
the series Σ_l Σ_m κ^{l+m} E[δ_l δ_m] over a long horizon.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbook import mdp


def setup(seed, S=4, A=3, gamma=0.7):
    m = mdp.garnet(jax.random.PRNGKey(seed), S, A, branching=2, gamma=gamma)
    pi = np.asarray(jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(seed + 100), (S, A)), -1))
    return m, pi


def np_gae_moments(m, pi, v, lam, horizon=70):
    """Plain numpy: E[X | s, a] and E[X² | s, a] for X = Σ_{j<H} κ^j δ_j, summed term by term.

    E[δ_j δ_n] for j < n is E[δ_j · (P_π^{n−j−1} δ̄_π)(s_{j+1})]; the joint law of
    (s_j, a_j, s_{j+1}) given (s_0, a_0) = (s, a) is pushed forward one step at a time.
    """
    P, r, g = np.asarray(m.P), np.asarray(m.r), float(m.gamma)
    S, A = r.shape
    kappa = g * lam
    delta = r[:, :, None] + g * v[None, None, :] - v[:, None, None]  # [S, A, S']
    dbar_pi = (pi * (P * delta).sum(-1)).sum(-1)  # [S]
    P_pi = np.einsum("sa,sat->st", pi, P)
    # h[k] = P_π^k δ̄_π: the expected TD error k steps after reaching a state.
    h = [dbar_pi]
    for _ in range(horizon):
        h.append(P_pi @ h[-1])
    mean = np.zeros((S, A))
    second = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            w = np.zeros((S, A))  # law of (s_j, a_j)
            w[s, a] = 1.0
            for j in range(horizon):
                joint = w[:, :, None] * P  # law of (s_j, a_j, s_{j+1})
                mean[s, a] += kappa**j * (joint * delta).sum()
                second[s, a] += kappa ** (2 * j) * (joint * delta**2).sum()
                for n in range(j + 1, horizon):
                    cross = (joint * delta * h[n - j - 1][None, None, :]).sum()
                    second[s, a] += 2 * kappa ** (j + n) * cross
                w = joint.sum((0, 1))[:, None] * pi
    return mean, second


def test_return_second_moment_matches_the_series():
    m, pi = setup(0)
    _, ref = np_gae_moments(m, pi, np.zeros(4), 1.0)
    np.testing.assert_allclose(mdp.return_second_moment(m, pi), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("lam", [0.0, 0.4, 1.0])
def test_gae_moments_match_the_series(lam):
    m, pi = setup(1)
    v = np.asarray(jax.random.normal(jax.random.PRNGKey(5), (4,)))
    mu, second = mdp.gae_moments(m, pi, v, lam)
    ref_mu, ref_second = np_gae_moments(m, pi, v, lam)
    np.testing.assert_allclose(mu, ref_mu, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(second, ref_second, rtol=1e-9, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), lam=st.floats(0.0, 1.0))
def test_gae_with_the_true_value_is_unbiased_for_every_lambda(seed, lam):
    """With V = V^π every TD error has mean A^π at its own step and 0 after (bl-gae-unbiased)."""
    m, pi = setup(seed, gamma=0.9)
    mu, second = mdp.gae_moments(m, pi, mdp.evaluate_v(m, pi), lam)
    np.testing.assert_allclose(mu, mdp.advantage(m, pi), atol=1e-10)
    assert np.all(np.asarray(second - mu**2) >= -1e-10)


def test_return_variance_is_zero_when_everything_is_deterministic():
    m, _ = setup(2)
    P = jax.nn.one_hot(jnp.argmax(m.P, -1), 4, dtype=m.P.dtype)
    det = m._replace(P=P)
    pi = mdp.greedy_policy(det.r)
    np.testing.assert_allclose(
        mdp.return_second_moment(det, pi), mdp.evaluate_q(det, pi) ** 2, rtol=1e-10
    )


def test_gae_moments_reject_bad_input():
    m, pi = setup(3)
    with pytest.raises(ValueError, match="lam"):
        mdp.gae_moments(m, pi, np.zeros(4), 1.5)
    with pytest.raises(ValueError, match="v"):
        mdp.gae_moments(m, pi, np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="pi"):
        mdp.gae_moments(m, pi[:, :2], np.zeros(4), 0.5)
    with pytest.raises(ValueError, match="pi"):
        mdp.return_second_moment(m, pi * 2)
