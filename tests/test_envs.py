"""rlbook.envs stepped against Gymnasium's own CartPole-v1 and Pendulum-v1."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import envs

N = 3000  # random transitions per environment


def test_make_rejects_unknown_names():
    with pytest.raises(ValueError, match="name must be one of"):
        envs.make("MountainCar-v0")


def test_cartpole_matches_gymnasium_step_by_step():
    env, params = envs.make("CartPole-v1")
    rng = np.random.default_rng(0)
    # States spread over and beyond the termination region, random actions.
    states = rng.uniform([-2.6, -3, -0.25, -3.5], [2.6, 3, 0.25, 3.5], size=(N, 4))
    actions = rng.integers(0, 2, size=N)
    ref = gym.make("CartPole-v1").unwrapped
    ref.reset(seed=0)
    want_obs, want_term = np.zeros((N, 4)), np.zeros(N, bool)
    for i in range(N):
        ref.state = states[i].copy()
        ref.steps_beyond_terminated = None
        obs, rew, term, trunc, _ = ref.step(int(actions[i]))
        want_obs[i], want_term[i] = obs, term
        assert rew == 1.0 and not trunc

    def one(s, a):
        st = envs.CartPoleState(*s, t=jnp.asarray(0, jnp.int32))
        _, obs, rew, term = env.step_env(st, a, params)
        return obs, rew, term

    obs, rew, term = jax.jit(jax.vmap(one))(jnp.asarray(states, jnp.float32), jnp.asarray(actions))
    np.testing.assert_allclose(obs, want_obs, atol=1e-5)
    np.testing.assert_array_equal(term, want_term)
    np.testing.assert_array_equal(rew, 1.0)
    assert 0.05 < want_term.mean() < 0.95  # both outcomes were exercised


def test_pendulum_matches_gymnasium_step_by_step():
    env, params = envs.make("Pendulum-v1")
    rng = np.random.default_rng(1)
    states = rng.uniform([-3 * np.pi, -9], [3 * np.pi, 9], size=(N, 2))
    actions = rng.uniform(-3, 3, size=(N, 1))  # beyond the torque limit too
    ref = gym.make("Pendulum-v1").unwrapped
    ref.reset(seed=0)
    want_obs, want_rew = np.zeros((N, 3)), np.zeros(N)
    for i in range(N):
        ref.state = states[i].copy()
        obs, rew, term, trunc, _ = ref.step(actions[i].astype(np.float32))
        want_obs[i], want_rew[i] = obs, rew
        assert not term and not trunc

    def one(s, a):
        st = envs.PendulumState(s[0], s[1], t=jnp.asarray(0, jnp.int32))
        _, obs, rew, term = env.step_env(st, a, params)
        return obs, rew, term

    obs, rew, term = jax.jit(jax.vmap(one))(
        jnp.asarray(states, jnp.float32), jnp.asarray(actions, jnp.float32)
    )
    np.testing.assert_allclose(obs, want_obs, atol=1e-5)
    np.testing.assert_allclose(rew, want_rew, atol=1e-5, rtol=1e-6)
    assert not np.any(term)


def test_reset_distributions_match_gymnasium_ranges():
    for name, high in (("CartPole-v1", [0.05] * 4), ("Pendulum-v1", [1, 1, 1])):
        env, params = envs.make(name)
        obs, _ = jax.vmap(env.reset, (0, None))(
            jax.random.split(jax.random.PRNGKey(0), 4000), params
        )
        assert obs.shape == (4000, env.obs_dim)
        assert np.all(np.abs(obs) <= np.asarray(high) + 1e-7)
        if name == "CartPole-v1":  # uniform on [−0.05, 0.05]: mean 0, sd 0.05/√3
            np.testing.assert_allclose(obs.std(0), 0.05 / np.sqrt(3), rtol=0.06)


def test_truncation_at_the_time_limit_and_auto_reset():
    env, params = envs.make("Pendulum-v1")
    params = params._replace(max_steps=5)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    for t in range(1, 6):
        prev = state
        obs, state, step = env.step(jax.random.PRNGKey(t), state, jnp.array([0.5]), params)
        assert not step.terminated
        assert bool(step.truncated) == (t == 5)
    # next_obs is s' of the last transition (before the reset), obs the new episode's first.
    want, _, _, _ = env.step_env(prev, jnp.array([0.5]), params)
    np.testing.assert_allclose(step.next_obs, env.observe(want), atol=1e-6)
    assert int(state.t) == 0 and not np.allclose(obs, step.next_obs)


def test_termination_is_not_truncation_in_cartpole():
    env, params = envs.make("CartPole-v1")
    state = envs.CartPoleState(2.39, 1.0, 0.0, 0.0, jnp.asarray(499, jnp.int32))
    _, new, step = env.step(jax.random.PRNGKey(0), state, 1, params)
    assert bool(step.terminated) and not bool(step.truncated)
    assert step.next_obs[0] > 2.4 and int(new.t) == 0


def test_pendulum_dynamics_are_differentiable():
    """Jacobian of step_env against central finite differences (away from the clips)."""
    env, params = envs.make("Pendulum-v1")

    def f(x):
        st = envs.PendulumState(x[0], x[1], jnp.asarray(0))
        new, _, rew, _ = env.step_env(st, x[2], params)
        return jnp.stack([new.theta, new.theta_dot, rew])

    x = jnp.array([0.7, -1.3, 0.4])
    jac = jax.jacfwd(f)(x)
    eps = 1e-6
    fd = np.stack([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(jac, fd, atol=1e-7)


def test_observations_are_float32_even_with_x64_enabled():
    for name in ("CartPole-v1", "Pendulum-v1"):
        env, params = envs.make(name)
        obs, state = env.reset(jax.random.PRNGKey(0), params)
        action = 1 if name == "CartPole-v1" else jnp.array([0.3], jnp.float32)
        obs2, _, step = env.step(jax.random.PRNGKey(1), state, action, params)
        assert obs.dtype == obs2.dtype == step.next_obs.dtype == step.reward.dtype == jnp.float32
