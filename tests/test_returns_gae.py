"""TD errors and GAE(γ, λ) of rlbook.returns against a plain-numpy reference.

The scan (``gae``) and the loop (``gae_loop``) must agree with each other and with
the reference written here; λ = 0 must give the TD errors and λ = 1 the
bootstrapped discounted return minus V(s_t) (Schulman et al. 2016); truncation
bootstraps and termination does not.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbook import returns


def np_gae(rewards, discounts, values, next_values, lam, done):
    """Reference: Â_t = δ_t + γ_t λ Â_{t+1}, with Â_{t+1} = 0 where the episode ended."""
    r, g, v, nv, d = map(np.asarray, (rewards, discounts, values, next_values, done))
    adv = np.zeros_like(r, dtype=np.float64)
    later = np.zeros(r.shape[1:])
    for t in reversed(range(r.shape[0])):
        cut = d[t] | (t == r.shape[0] - 1)
        later = np.where(cut, 0.0, later)
        adv[t] = r[t] + g[t] * nv[t] - v[t] + g[t] * lam * later
        later = adv[t]
    return adv


def stream(seed, T=30, N=3, gamma=0.9, p_end=0.1):
    k = jax.random.split(jax.random.PRNGKey(seed), 6)
    rewards = jax.random.normal(k[0], (T, N))
    terminated = jax.random.uniform(k[1], (T, N)) < p_end / 2
    truncated = ~terminated & (jax.random.uniform(k[2], (T, N)) < p_end / 2)
    values = jax.random.normal(k[3], (T, N))
    next_values = (
        jnp.where(
            terminated | truncated, jax.random.normal(k[4], (T, N)), jnp.roll(values, -1, axis=0)
        )
        .at[-1]
        .set(jax.random.normal(k[5], (N,)))
    )
    discounts = returns.step_discounts(gamma, terminated)
    return rewards, discounts, values, next_values, terminated | truncated


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), lam=st.floats(0.0, 1.0))
def test_scan_loop_and_numpy_agree(seed, lam):
    r, g, v, nv, done = stream(seed)
    ref = np_gae(r, g, v, nv, lam, done)
    np.testing.assert_allclose(returns.gae(r, g, v, nv, lam, done), ref, atol=1e-12)
    np.testing.assert_allclose(returns.gae_loop(r, g, v, nv, lam, done), ref, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_lambda_limits(seed):
    r, g, v, nv, done = stream(seed)
    np.testing.assert_allclose(
        returns.gae(r, g, v, nv, 0.0, done), returns.td_errors(r, g, v, nv), atol=1e-12
    )
    mc = returns.discounted_returns(r, g, bootstrap=nv, done=done) - v
    np.testing.assert_allclose(returns.gae(r, g, v, nv, 1.0, done), mc, atol=1e-12)


def test_td_errors_match_numpy():
    r, g, v, nv, _ = stream(3)
    np.testing.assert_allclose(
        returns.td_errors(r, g, v, nv),
        np.asarray(r) + np.asarray(g) * np.asarray(nv) - np.asarray(v),
        atol=1e-14,
    )


def test_truncation_bootstraps_and_termination_does_not():
    # Two episodes of 2 steps in one stream of 4: the first truncated, the second terminated.
    r = jnp.array([1.0, 1.0, 1.0, 1.0])
    terminated = jnp.array([False, False, False, True])
    done = jnp.array([False, True, False, True])
    v = jnp.array([0.5, 0.5, 0.5, 0.5])
    nv = jnp.array([0.5, 10.0, 0.5, 10.0])  # V(s') at the pre-reset observation
    g = returns.step_discounts(0.9, terminated)
    adv = returns.gae(r, g, v, nv, 1.0, done)
    np.testing.assert_allclose(adv[1], 1.0 + 0.9 * 10.0 - 0.5)  # bootstraps through truncation
    np.testing.assert_allclose(adv[3], 1.0 - 0.5)  # no bootstrap at termination
    np.testing.assert_allclose(adv[0], 1.0 + 0.9 * 0.5 - 0.5 + 0.9 * adv[1])
    np.testing.assert_allclose(adv[2], 1.0 + 0.9 * 0.5 - 0.5 + 0.9 * adv[3])  # not across episodes


def test_lambda_can_be_vmapped_and_jitted():
    r, g, v, nv, done = stream(4)
    lams = jnp.array([0.0, 0.5, 1.0])
    batched = jax.jit(jax.vmap(lambda lam: returns.gae(r, g, v, nv, lam, done)))(lams)
    for i, lam in enumerate([0.0, 0.5, 1.0]):
        np.testing.assert_allclose(batched[i], returns.gae(r, g, v, nv, lam, done), atol=1e-12)


def test_bad_input_is_rejected():
    r, g, v, nv, done = stream(5)
    with pytest.raises(ValueError, match="lam"):
        returns.gae(r, g, v, nv, 1.5, done)
    with pytest.raises(ValueError, match="lam"):
        returns.gae_loop(r, g, v, nv, -0.1, done)
    with pytest.raises(ValueError, match="next_values"):
        returns.gae(r, g, v, nv[:-1], 0.5, done)
    with pytest.raises(ValueError, match="values"):
        returns.td_errors(r, g, v[:, :2], nv)
    with pytest.raises(ValueError, match="discounts"):
        returns.gae(r, g * 2, v, nv, 0.5, done)
