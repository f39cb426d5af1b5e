"""Model-based policy gradients (rlbook.agents.svg) against finite differences, quadrature,
a plain-numpy forward recursion, the environment, and the closed-form inverses."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import envs, nets
from rlbook.agents import offpolicy, sac, svg

XI, W = np.polynomial.hermite_e.hermegauss(60)
W = W / W.sum()


def _toy():
    policy = lambda th, s: th[0] + th[1] * s  # noqa: E731
    f = lambda s, a: 0.8 * s + 0.4 * a + 0.3 * jnp.cos(s)  # noqa: E731
    r = lambda s, a: -(s**2) - (a - 0.5) ** 2  # noqa: E731
    v = lambda s: jnp.sin(s) - 0.5 * s**2  # noqa: E731
    return policy, f, r, v


def test_one_step_estimators_are_unbiased_against_finite_differences():
    policy, f, r, v = _toy()
    theta, s, sigma, gamma = jnp.array([0.1, 0.4]), 0.3, 0.25, 0.95

    def J(th):  # quadrature over ξ
        a = policy(th, s)
        return r(s, a) + gamma * W @ v(f(s, a) + sigma * XI)

    h = 1e-6
    fd = np.array([(J(theta + h * e) - J(theta - h * e)) / (2 * h) for e in np.eye(2)])
    args = (policy, f, sigma, r, v, gamma)
    xs = jnp.asarray(XI)
    path = jax.vmap(lambda x: svg.one_step_pathwise(theta, s, x, *args))(xs)
    score = jax.vmap(
        lambda x: svg.one_step_score(theta, s, f(s, policy(theta, s)) + sigma * x, *args)
    )(xs)
    np.testing.assert_allclose(W @ path, fd, atol=1e-8)
    np.testing.assert_allclose(W @ score, fd, atol=1e-8)


def _pendulum_setup(seed=0):
    k_a, k_c = jax.random.split(jax.random.PRNGKey(seed))
    theta = nets.mlp_init(k_a, [3, 8, 1], dtype=jnp.float64)
    phi = nets.mlp_init(k_c, [4, 8, 1], dtype=jnp.float64)
    critic = lambda s, a: offpolicy.critic_apply(phi, s, a)  # noqa: E731
    s0 = jnp.array([np.cos(2.0), np.sin(2.0), -0.7])
    return theta, critic, s0


def _numpy_recursion(theta, s0, critic, n, gamma):
    """The forward recursion with every Jacobian by central finite differences (plain numpy)."""
    flat, unravel = jax.flatten_util.ravel_pytree(theta)
    flat = np.asarray(flat)

    def mu(th, s):
        return np.atleast_1d(np.asarray(offpolicy.actor_apply(unravel(th), s)))

    model = lambda s, a: tuple(np.asarray(x) for x in svg.pendulum_model(s, a))  # noqa: E731

    def jac(fn, x, eps=1e-6):
        cols = [
            (np.atleast_1d(fn(x + eps * e)) - np.atleast_1d(fn(x - eps * e))) / (2 * eps)
            for e in np.eye(len(x))
        ]
        return np.stack(cols, axis=1)

    G = np.zeros((3, flat.size))
    grad = np.zeros(flat.size)
    s, disc = np.asarray(s0), 1.0
    # jac calls each lambda at once: they see this iteration's s and a (noqa: B023 below)
    for _ in range(n):
        a = mu(flat, s)
        A = jac(lambda th: mu(th, s), flat) + jac(lambda x: mu(flat, x), s) @ G  # noqa: B023
        r_s = jac(lambda x: model(x, a)[0], s)  # noqa: B023
        r_a = jac(lambda u: model(s, u)[0], a)  # noqa: B023
        grad += disc * (r_s @ G + r_a @ A)[0]
        G = jac(lambda x: model(x, a)[1], s) @ G + jac(lambda u: model(s, u)[1], a) @ A  # noqa: B023
        s = model(s, a)[1]
        disc *= gamma
    if critic is not None:
        a = mu(flat, s)
        A = jac(lambda th: mu(th, s), flat) + jac(lambda x: mu(flat, x), s) @ G
        q = lambda x, u: np.asarray(critic(x, u))  # noqa: E731
        grad += disc * (jac(lambda x: q(x, a), s) @ G + jac(lambda u: q(s, u), a) @ A)[0]
    return grad


@pytest.mark.parametrize("n", [0, 1, 4])
@pytest.mark.parametrize("with_critic", [True, False])
def test_bpo_recursion_matches_jax_grad_and_numpy(n, with_critic):
    theta, critic, s0 = _pendulum_setup()
    q = critic if with_critic else None
    auto = jax.grad(svg.bpo_objective)(
        theta, s0, offpolicy.actor_apply, svg.pendulum_model, q, n, 0.9
    )
    rec = svg.bpo_gradient_recursion(
        theta, s0, offpolicy.actor_apply, svg.pendulum_model, q, n, 0.9
    )
    flat = lambda g: jax.flatten_util.ravel_pytree(g)[0]  # noqa: E731
    np.testing.assert_allclose(flat(rec), flat(auto), rtol=1e-10, atol=1e-12)
    ref = _numpy_recursion(theta, s0, q, n, 0.9)
    np.testing.assert_allclose(flat(rec), ref, rtol=1e-5, atol=1e-7)


def test_bpo_masked_horizon_equals_static_horizon():
    theta, critic, s0 = _pendulum_setup(1)
    for q in (critic, None):
        for n in (0, 3, 7):
            static = svg.bpo_objective(
                theta, s0, offpolicy.actor_apply, svg.pendulum_model, q, n, 0.97
            )
            masked = jax.jit(
                lambda m, q=q: svg.bpo_objective(
                    theta, s0, offpolicy.actor_apply, svg.pendulum_model, q, m, 0.97, max_n=7
                )
            )(n)
            np.testing.assert_allclose(masked, static, rtol=1e-12)


def test_pendulum_model_is_the_environment():
    env, params = envs.make("Pendulum-v1")
    rng = np.random.default_rng(0)
    for _ in range(5):
        th, thdot, a = rng.uniform(-np.pi, np.pi), rng.uniform(-8, 8), rng.uniform(-1, 1, 1)
        state = envs.PendulumState(jnp.asarray(th), jnp.asarray(thdot), jnp.asarray(0))
        _, obs_next, reward, _ = env.step_env(state, 2.0 * a, params)
        r, nxt = svg.pendulum_model(env.observe(state), jnp.asarray(a))
        np.testing.assert_allclose(nxt, obs_next, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r, reward, rtol=1e-12)


def test_noise_inference_round_trips():
    rng = np.random.default_rng(1)
    mean, log_std = jnp.asarray(rng.normal(size=(20, 2))), jnp.asarray(rng.normal(-1, 0.3, (20, 2)))
    eta = jnp.asarray(rng.normal(size=(20, 2)))
    a = svg.policy_action(mean, log_std, eta)
    np.testing.assert_allclose(svg.infer_policy_noise(mean, log_std, a), eta, atol=1e-9)
    # numpy reference of the inverse
    np.testing.assert_allclose(
        svg.infer_policy_noise(mean, log_std, a),
        (np.arctanh(np.asarray(a)) - mean) / np.exp(log_std),
        rtol=1e-12,
    )
    m = jnp.asarray(rng.normal(size=(5, 3)))
    xi = jnp.asarray(rng.normal(size=(5, 3)))
    s_next = svg.dynamics_sample(m, 0.2, xi)
    np.testing.assert_allclose(svg.infer_dynamics_noise(m, 0.2, s_next), xi, atol=1e-13)


def test_resimulated_episode_is_the_real_one():
    actor = nets.mlp_init(jax.random.PRNGKey(2), [3, 8, 2], final_scale=0.1)
    obs, act, rew, nxt = svg.collect_episode(jax.random.PRNGKey(3), actor, 50)
    to64 = lambda x: jax.tree_util.tree_map(lambda y: y.astype(jnp.float64), x)  # noqa: E731
    actor, obs, act, nxt = to64(actor), to64(obs), to64(act), to64(nxt)
    eta, res = svg.infer_episode(actor, obs, act, nxt)
    real = float(np.sum(0.9 ** np.arange(50) * np.asarray(rew, np.float64)))
    resim = -float(svg.episode_loss(actor, obs[0], eta, res, 0.9))
    np.testing.assert_allclose(resim, real, rtol=1e-6)


def test_svg1_actor_loss_against_a_per_sample_loop():
    cfg = svg.Config(hidden=(8,))
    st = svg.init(jax.random.PRNGKey(4), 3, 1, cfg)
    rng = np.random.default_rng(5)
    th = rng.uniform(-np.pi, np.pi, 6)
    obs = jnp.asarray(np.stack([np.cos(th), np.sin(th), rng.uniform(-3, 3, 6)], 1), jnp.float32)
    key = jax.random.PRNGKey(6)
    loss, _ = svg.actor_loss(
        st.actor, st.critic, st.log_temperature, key, obs, jnp.zeros_like(obs), 1.0, cfg.gamma
    )
    a, logp = sac.sample_action(key, st.actor, obs)
    beta = float(np.exp(st.log_temperature))
    want = []
    for i in range(6):
        r, nxt = svg.pendulum_model(obs[i], a[i])
        v = min(
            float(
                offpolicy.critic_apply(
                    jax.tree_util.tree_map(lambda p, j=j: p[j], st.critic), nxt, nxt[:0]
                )
            )
            for j in range(2)
        )
        want.append(float(r) - beta * float(logp[i]) + cfg.gamma * v)
    np.testing.assert_allclose(loss, -np.mean(want), rtol=1e-5)


def test_train_runs_and_reports():
    cfg = svg.Config(
        total_steps=120,
        learning_starts=40,
        buffer_size=64,
        batch_size=8,
        hidden=(8,),
        eval_every=60,
        eval_episodes=1,
        train_every=2,
    )
    _, m = jax.jit(svg.make_train(cfg))(jax.random.PRNGKey(0))
    assert m["eval_return"].shape == (2,) and np.all(np.isfinite(m["eval_return"]))
    assert np.all(np.isfinite(m["critic_loss"]))
    icfg = svg.InfinityConfig(
        total_steps=400,
        episodes=1,
        updates_per_iteration=2,
        hidden=(8,),
        eval_every=200,
        eval_episodes=1,
    )
    _, m = jax.jit(svg.make_train(icfg))(jax.random.PRNGKey(1))
    assert m["eval_return"].shape == (2,) and np.all(np.isfinite(m["loss"]))


def test_value_errors():
    theta, critic, s0 = _pendulum_setup()
    with pytest.raises(ValueError, match="n"):
        svg.bpo_objective(theta, s0, offpolicy.actor_apply, svg.pendulum_model, None, -1, 0.9)
    with pytest.raises(ValueError, match="n"):
        svg.bpo_objective(
            theta, s0, offpolicy.actor_apply, svg.pendulum_model, None, 5, 0.9, max_n=3
        )
    with pytest.raises(ValueError, match="gamma"):
        svg.bpo_gradient_recursion(
            theta, s0, offpolicy.actor_apply, svg.pendulum_model, None, 1, 1.5
        )
    with pytest.raises(ValueError, match="action"):
        svg.infer_policy_noise(jnp.zeros(2), jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(ValueError, match="std"):
        svg.infer_dynamics_noise(jnp.zeros(2), -1.0, jnp.zeros(2))
    with pytest.raises(ValueError, match="next_obs"):
        svg.infer_dynamics_noise(jnp.zeros(2), 1.0, jnp.zeros(3))
    with pytest.raises(ValueError, match="config.tau"):
        svg.make_train(svg.Config(tau=0.0))
    with pytest.raises(ValueError, match="config.total_steps"):
        svg.make_train(svg.InfinityConfig(total_steps=300))
    with pytest.raises(ValueError, match="config.gamma"):
        svg.make_train(dataclasses.replace(svg.InfinityConfig(), gamma=1.5))
    with pytest.raises(ValueError, match="config"):
        svg.make_train(object())
