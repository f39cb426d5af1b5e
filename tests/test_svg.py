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


def _svg_toy():
    """A two-state, one-action problem with state-dependent noise in policy and model."""
    policy = lambda th, s, e: jnp.tanh(th["w"] @ s + th["b"] + jnp.exp(th["c"] @ s) * e)  # noqa: E731
    dynamics = lambda s, a, x: s + 0.3 * jnp.sin(s[::-1] + a) + 0.2 * (1 + 0.3 * s**2) * x  # noqa: E731
    reward = lambda s, a: -(s @ s) + jnp.cos(s[0] * a[0]) - 0.5 * a @ a  # noqa: E731
    rng = np.random.default_rng(7)
    theta = {
        "w": jnp.asarray(rng.normal(size=(1, 2))),
        "b": jnp.asarray(rng.normal(size=1)),
        "c": jnp.asarray(0.3 * rng.normal(size=(1, 2))),
    }
    s0 = jnp.asarray(rng.normal(size=2))
    eta, xi = jnp.asarray(rng.normal(size=(6, 1))), jnp.asarray(rng.normal(size=(6, 2)))
    return theta, s0, eta, xi, (policy, dynamics, reward)


def _loop_return(theta, s0, eta, xi, policy, dynamics, reward, gamma, value, n):
    """The sampled return as a plain Python loop (the reference for svg_sampled_return)."""
    s, total = s0, 0.0
    for t in range(n):
        a = policy(theta, s, eta[t])
        total = total + gamma**t * reward(s, a)
        s = dynamics(s, a, xi[t])
    return total if value is None else total + gamma**n * value(s)


@pytest.mark.parametrize("n", [0, 1, 6])
@pytest.mark.parametrize("with_value", [True, False])
def test_svg_recursion_matches_the_gradient_of_a_plain_loop(n, with_value):
    theta, s0, eta, xi, pieces = _svg_toy()
    value = (lambda s: jnp.tanh(s[1]) - 0.5 * s[0] ** 2) if with_value else None
    args = (*pieces, 0.9, value, n)
    want = _loop_return(theta, s0, eta, xi, *args)
    np.testing.assert_allclose(svg.svg_sampled_return(theta, s0, eta, xi, *args), want, rtol=1e-13)
    g_th, g_s = jax.grad(_loop_return, (0, 1))(theta, s0, eta, xi, *args)
    v_s, v_th = svg.svg_gradient_recursion(theta, s0, eta, xi, *args)
    np.testing.assert_allclose(v_s, g_s, rtol=1e-12, atol=1e-14)
    flat = lambda g: jax.flatten_util.ravel_pytree(g)[0]  # noqa: E731
    np.testing.assert_allclose(flat(v_th), flat(g_th), rtol=1e-12, atol=1e-14)
    # a traced horizon inside the full-length noise gives the same values (one compile)
    traced = jax.jit(lambda m: svg.svg_gradient_recursion(theta, s0, eta, xi, *args[:-1], m))(n)
    np.testing.assert_allclose(traced[0], v_s, rtol=1e-13, atol=1e-15)
    if n == 0:  # V_θ = 0 and V_s = ∇V(s₀): nothing depends on θ
        np.testing.assert_array_equal(flat(v_th), 0.0)


def test_svg_recursion_is_unbiased_on_a_scalar_linear_gaussian_problem():
    """E over (η₀, ξ₀, η₁, ξ₁) by tensor Gauss–Hermite quadrature (exact: the gradient is a
    quadratic polynomial in the noise) against central differences of the closed form."""
    gamma, F, G, sig, q, p = 0.9, 0.8, 0.5, 0.3, 0.4, 0.7

    def closed_form(th, s0):  # E[r₀ + γ r₁ + γ² V(s₂)], r = −s² − a² + q s, V = −p s²
        k, b, ell = th
        m, var, total = s0, 0.0, 0.0
        for t in range(2):
            ma, va = k * m + b, k * k * var + np.exp(2 * ell)
            total += gamma**t * (-(m * m + var) - (ma * ma + va) + q * m)
            m, var = F * m + G * ma, (F + G * k) ** 2 * var + G * G * np.exp(2 * ell) + sig**2
        return total + gamma**2 * (-p * (m * m + var))

    th0, s0 = np.array([0.4, -0.3, np.log(0.6)]), 0.8
    h = 1e-5
    fd = [
        (closed_form(th0 + h * e, s0) - closed_form(th0 - h * e, s0)) / (2 * h) for e in np.eye(3)
    ]
    fd_s = (closed_form(th0, s0 + h) - closed_form(th0, s0 - h)) / (2 * h)

    policy = lambda th, s, e: th[0] * s + th[1] + jnp.exp(th[2]) * e  # noqa: E731
    dynamics = lambda s, a, x: F * s + G * a + sig * x  # noqa: E731
    reward = lambda s, a: jnp.sum(-(s**2) - a**2 + q * s)  # noqa: E731
    value = lambda s: jnp.sum(-p * s**2)  # noqa: E731
    x, w = np.polynomial.hermite_e.hermegauss(5)
    grid = np.stack(np.meshgrid(x, x, x, x, indexing="ij"), -1).reshape(-1, 4)
    weight = np.prod(np.stack(np.meshgrid(w, w, w, w, indexing="ij"), -1).reshape(-1, 4), 1)
    weight = weight / weight.sum()

    def draw(z):
        eta, xi = z[jnp.array([0, 2])][:, None], z[jnp.array([1, 3])][:, None]
        v_s, v_th = svg.svg_gradient_recursion(
            jnp.asarray(th0), jnp.array([s0]), eta, xi, policy, dynamics, reward, gamma, value
        )
        return jnp.concatenate([v_s, v_th])

    mean = weight @ np.asarray(jax.vmap(draw)(jnp.asarray(grid)))
    np.testing.assert_allclose(mean, [fd_s, *fd], rtol=1e-7, atol=1e-8)


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
    t_s, t_s0, t_eta, t_xi, pieces = _svg_toy()
    for fn in (svg.svg_sampled_return, svg.svg_gradient_recursion):
        with pytest.raises(ValueError, match="s0"):
            fn(t_s, t_s0[None], t_eta, t_xi, *pieces, 0.9)
        with pytest.raises(ValueError, match="xi"):
            fn(t_s, t_s0, t_eta, t_xi[:-1], *pieces, 0.9)
        with pytest.raises(ValueError, match="eta"):
            fn(t_s, t_s0, t_eta[0, 0], t_xi, *pieces, 0.9)
        with pytest.raises(ValueError, match="gamma"):
            fn(t_s, t_s0, t_eta, t_xi, *pieces, 1.5)
        for bad_n in (7, -1, 2.5, True, jnp.ones(2)):
            with pytest.raises(ValueError, match="^n must"):
                fn(t_s, t_s0, t_eta, t_xi, *pieces, 0.9, None, bad_n)
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
