"""rlbook.returns: the loop and the scan against each other and a plain-numpy reference."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbook import returns


def numpy_returns(r, discounts, bootstrap, done):
    """G_t written out from the definition, one stream at a time, in numpy."""
    r, discounts, bootstrap, done = map(np.asarray, (r, discounts, bootstrap, done))
    T = len(r)
    G, G0 = np.zeros(T), np.zeros(T)
    for t in range(T):
        # Sum forward until the episode is cut at k (done or end of stream), then bootstrap.
        total, scale, k = 0.0, 1.0, t
        while True:
            total += scale * r[k]
            scale *= discounts[k]
            if done[k] or k == T - 1:
                total += scale * bootstrap[k]
                break
            k += 1
        G[t] = total
    start = 0
    for t in range(T):
        if t > 0 and done[t - 1]:
            start = t
        G0[t] = G[start]
    return G, G0


streams = st.sampled_from([1, 2, 9, 16]).flatmap(  # few lengths: few compiles
    lambda T: st.tuples(
        st.lists(st.floats(-5, 5), min_size=T, max_size=T),
        st.lists(st.booleans(), min_size=T, max_size=T),
        st.lists(st.booleans(), min_size=T, max_size=T),
        st.lists(st.floats(-5, 5), min_size=T, max_size=T),
        st.floats(0.0, 1.0),
    )
)


@settings(max_examples=60, deadline=None)
@given(streams)
def test_returns_match_numpy_for_every_stream(stream):
    r, term, trunc, boot, gamma = stream
    term, trunc = np.array(term), np.array(trunc) & ~np.array(term)
    disc = returns.step_discounts(gamma, term)
    done = term | trunc
    want_g, want_g0 = numpy_returns(r, disc, boot, done)
    for f in (returns.discounted_returns, returns.discounted_returns_loop):
        np.testing.assert_allclose(f(r, disc, boot, done), want_g, rtol=1e-12, atol=1e-12)
    for f in (returns.episode_returns, returns.episode_returns_loop):
        np.testing.assert_allclose(f(r, disc, boot, done), want_g0, rtol=1e-12, atol=1e-12)


def test_batched_streams_are_independent_columns():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(30, 4))
    term = rng.random((30, 4)) < 0.1
    trunc = (rng.random((30, 4)) < 0.1) & ~term
    boot = rng.normal(size=(30, 4))
    disc = returns.step_discounts(0.9, term)
    g = returns.discounted_returns(r, disc, boot, term | trunc)
    g0 = returns.episode_returns(r, disc, boot, term | trunc)
    for j in range(4):
        want_g, want_g0 = numpy_returns(r[:, j], disc[:, j], boot[:, j], (term | trunc)[:, j])
        np.testing.assert_allclose(g[:, j], want_g, rtol=1e-12)
        np.testing.assert_allclose(g0[:, j], want_g0, rtol=1e-12)
    np.testing.assert_allclose(
        returns.discounted_returns_loop(r, disc, boot, term | trunc), g, rtol=1e-12
    )


def test_closed_forms():
    # One episode of constant reward 1 and no cut: G_t = (1 − γ^{T−t}) / (1 − γ).
    T, gamma = 50, 0.95
    g = returns.discounted_returns(jnp.ones(T), jnp.full(T, gamma))
    np.testing.assert_allclose(g, (1 - gamma ** (T - np.arange(T))) / (1 - gamma), rtol=1e-12)
    # Termination stops the sum; truncation bootstraps: r = 1, V(s_T) = 10.
    r, boot = jnp.ones(3), jnp.full(3, 10.0)
    term = returns.discounted_returns(
        r, returns.step_discounts(0.5, [0, 0, 1]), boot, [False, False, True]
    )
    trunc = returns.discounted_returns(
        r, returns.step_discounts(0.5, [0, 0, 0]), boot, [False, False, True]
    )
    np.testing.assert_allclose(term, [1.75, 1.5, 1.0])
    np.testing.assert_allclose(
        trunc, [1 + 0.5 + 0.25 + 0.125 * 10, 1 + 0.5 + 0.25 * 10, 1 + 0.5 * 10]
    )


def test_bad_inputs_raise_naming_the_argument():
    r = jnp.ones(4)
    with pytest.raises(ValueError, match="discounts"):
        returns.discounted_returns(r, jnp.ones(3))
    with pytest.raises(ValueError, match="discounts"):
        returns.discounted_returns(r, jnp.full(4, 1.5))
    with pytest.raises(ValueError, match="bootstrap"):
        returns.discounted_returns(r, jnp.ones(4), bootstrap=jnp.ones(2))
    with pytest.raises(ValueError, match="done"):
        returns.episode_returns(r, jnp.ones(4), done=jnp.ones(5, bool))
    with pytest.raises(ValueError, match="rewards"):
        returns.discounted_returns(jnp.asarray(1.0), jnp.asarray(1.0))
    with pytest.raises(ValueError, match="gamma"):
        returns.step_discounts(1.5, jnp.zeros(3, bool))
