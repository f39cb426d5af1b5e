"""rlbook.rollouts and the tabular environment against plain loops and exact distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rlbook import envs, mdp, policies, rollouts


def test_collect_matches_a_plain_loop_over_environments():
    """Same keys, one environment at a time: the same stream, auto-resets and episode returns."""
    env = envs.CartPole()
    params = envs.CartPoleParams(max_steps=25)  # short limit: truncation happens too
    pol = policies.SoftmaxPolicy(4, 2, hidden=(8,), final_scale=1.0)
    theta = pol.init(jax.random.PRNGKey(0))
    N, T = 3, 40
    k_init, k1, k2 = jax.random.split(jax.random.PRNGKey(1), 3)
    state = rollouts.init(k_init, env, params, N)
    collect = jax.jit(rollouts.collect, static_argnums=(1, 3, 6))
    state, traj1, ep1 = collect(k1, pol, theta, env, params, state, T)
    state, traj2, ep2 = collect(k2, pol, theta, env, params, state, T)
    traj = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), traj1, traj2)
    ep = jax.tree_util.tree_map(lambda a, b: np.concatenate([a, b]), ep1, ep2)
    keys = np.concatenate([rollouts.step_keys(k1, T, N), rollouts.step_keys(k2, T, N)])
    sample, step = jax.jit(pol.sample), jax.jit(env.step)  # one environment, one step
    for i in range(N):
        obs, s = env.reset(jax.random.split(k_init, N)[i], params)
        ret, length = 0.0, 0
        for t in range(2 * T):
            a, logp = sample(keys[t, 0, i], theta, obs)
            obs_next, s, info = step(keys[t, 1, i], s, a, params)
            np.testing.assert_allclose(traj.obs[t, i], obs, atol=1e-6)
            assert traj.action[t, i] == a
            np.testing.assert_allclose(traj.log_prob[t, i], logp, atol=1e-6)
            np.testing.assert_allclose(traj.next_obs[t, i], info.next_obs, atol=1e-6)
            assert traj.terminated[t, i] == info.terminated
            assert traj.truncated[t, i] == info.truncated
            ret, length = ret + float(info.reward), length + 1
            assert ep.done[t, i] == (info.terminated | info.truncated)
            if ep.done[t, i]:
                assert ep.returns[t, i] == ret and ep.lengths[t, i] == length
                ret, length = 0.0, 0
            else:
                assert ep.returns[t, i] == 0 and ep.lengths[t, i] == 0
            obs = obs_next
    assert traj.truncated.any() and traj.terminated.any()
    assert traj.done.shape == (2 * T, N)
    mean, count = rollouts.mean_episode_return(ep1)
    assert count == ep1.done.sum()
    np.testing.assert_allclose(mean, ep1.returns[ep1.done].mean(), rtol=1e-6)


def test_first_episode_mask():
    done = np.array([[0, 0], [1, 0], [0, 0], [1, 1], [0, 1]], bool)
    want = np.array([[1, 1], [1, 1], [0, 1], [0, 1], [0, 0]], bool)
    np.testing.assert_array_equal(rollouts.first_episode_mask(done), want)
    with pytest.raises(ValueError, match="done"):
        rollouts.first_episode_mask(True)


def test_tabular_env_samples_rho0_and_P():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=(4, 2))
    P[2, 1] = [0.5, 0.0, 0.2, 0.3]  # a zero-probability next state too
    m = mdp.make_mdp(P, rng.normal(size=(4, 2)), [0.1, 0.2, 0.3, 0.4], 0.9)
    env, params = envs.Tabular(), envs.TabularParams(m, max_steps=10)
    n = 20_000
    s0, state = jax.jit(jax.vmap(env.reset, (0, None)))(
        jax.random.split(jax.random.PRNGKey(1), n), params
    )
    assert s0.dtype == jnp.int32
    assert (
        stats.chisquare(np.bincount(np.asarray(s0), minlength=4), n * np.asarray(m.rho0)).pvalue
        > 1e-3
    )
    # From state 2 with action 1, s' ∼ P(· | 2, 1) and r = r(2, 1).
    state = state._replace(s=jnp.full(n, 2, jnp.int32))
    new, s1, r, term = jax.jit(jax.vmap(env.step_env, (0, 0, None)))(
        state, jnp.ones(n, jnp.int32), params
    )
    p = np.asarray(m.P[2, 1])
    counts = np.bincount(np.asarray(s1), minlength=4)
    assert np.all(counts[p == 0] == 0)
    assert stats.chisquare(counts[p > 0], n * p[p > 0]).pvalue > 1e-3
    np.testing.assert_allclose(r, m.r[2, 1])
    assert not term.any()
    # The time limit truncates.
    pol = policies.TabularSoftmax(4, 2)
    st = rollouts.init(jax.random.PRNGKey(2), env, params, 5)
    collect = jax.jit(rollouts.collect, static_argnums=(1, 3, 6))
    _, traj, ep = collect(jax.random.PRNGKey(3), pol, jnp.zeros((4, 2)), env, params, st, 25)
    np.testing.assert_array_equal(np.nonzero(traj.truncated[:, 0])[0], [9, 19])
    np.testing.assert_array_equal(ep.lengths[9], 10)


def test_bad_arguments():
    env, params = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="n_envs"):
        rollouts.init(jax.random.PRNGKey(0), env, params, 0)
    pol = policies.for_env(env, (4,))
    st = rollouts.init(jax.random.PRNGKey(0), env, params, 2)
    with pytest.raises(ValueError, match="n_steps"):
        rollouts.collect(
            jax.random.PRNGKey(0), pol, pol.init(jax.random.PRNGKey(0)), env, params, st, 0
        )
