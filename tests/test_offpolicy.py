"""DDPG, TD3, SAC and their building blocks (noise, tanh-Gaussian, shared off-policy pieces)
against closed forms, numerical densities, plain-numpy references and the environment."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from rlbook import distributions as D
from rlbook import envs, nets, noise
from rlbook.agents import ddpg, offpolicy, sac, td3

# The smallest run that exercises warm-up, updates, TD3's delay, evaluation and the value check.
TINY = dict(
    total_steps=120,
    learning_starts=40,
    buffer_size=64,
    batch_size=8,
    hidden=(8,),
    eval_every=60,
    eval_episodes=1,
    value_states=2,
    value_horizon=5,
    train_every=2,
)
AGENTS = {"ddpg": ddpg, "td3": td3, "sac": sac}


# ------------------------------------------------------------------ TD target and transitions


def test_td_target_masks_termination_and_not_truncation():
    env, params = envs.make("Pendulum-v1")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    state = state._replace(t=jnp.asarray(params.max_steps - 1, jnp.int32))
    new_obs, _, step = env.step(jax.random.PRNGKey(1), state, jnp.zeros(1), params)
    assert bool(step.truncated) and not bool(step.terminated)
    # The stored s' is the pre-reset observation, not the reset one the agent acts on next.
    assert not np.allclose(step.next_obs, new_obs)
    v_next = jnp.asarray(-3.0, jnp.float32)
    y = offpolicy.td_target(step.reward, step.terminated, 0.9, v_next)
    np.testing.assert_allclose(y, float(step.reward) + 0.9 * -3.0, rtol=1e-6)  # bootstrapped
    # A terminal transition is not bootstrapped; a plain-numpy reference on a batch.
    rng = np.random.default_rng(0)
    r, v, term = rng.normal(size=7), rng.normal(size=7), rng.random(7) < 0.5
    want = np.array([ri if ti else ri + 0.95 * vi for ri, vi, ti in zip(r, v, term, strict=True)])
    np.testing.assert_allclose(
        offpolicy.td_target(jnp.asarray(r), jnp.asarray(term), 0.95, jnp.asarray(v)),
        want,
        rtol=1e-12,
    )


def test_targets_of_each_agent_match_a_per_sample_loop():
    """The vectorized targets against a plain loop over the batch (the two tiers agree)."""
    b = 6
    rng = np.random.default_rng(1)
    batch = offpolicy.Transition(
        jnp.asarray(rng.normal(size=(b, 3)), jnp.float32),
        jnp.asarray(rng.uniform(-1, 1, (b, 1)), jnp.float32),
        jnp.asarray(rng.normal(size=b), jnp.float32),
        jnp.asarray(rng.normal(size=(b, 3)), jnp.float32),
        jnp.asarray([False, True, False, False, True, False]),
    )
    cfg = ddpg.Config(hidden=(8,))
    st = ddpg.init(jax.random.PRNGKey(0), 3, 1, cfg)
    y = jax.jit(ddpg.targets, static_argnums=2)(st, batch, cfg.gamma)

    @jax.jit
    def q_next(st, s):  # one sample at a time
        return offpolicy.critic_apply(
            st.critic_target, s, offpolicy.actor_apply(st.actor_target, s)
        )

    for i in range(b):
        q = float(q_next(st, batch.next_obs[i]))
        want = float(batch.reward[i]) + (0.0 if batch.terminated[i] else cfg.gamma * q)
        np.testing.assert_allclose(y[i], want, rtol=1e-5, atol=1e-6)
    # TD3 with no smoothing noise: the minimum of the two target critics.
    cfg3 = td3.Config(hidden=(8,), target_noise=0.0)
    st3 = td3.init(jax.random.PRNGKey(1), 3, 1, cfg3)
    y3 = jax.jit(td3.targets, static_argnums=3)(jax.random.PRNGKey(2), st3, batch, cfg3)

    @jax.jit
    def q_next_j(st, s, j):
        critic = jax.tree_util.tree_map(lambda p: p[j], st.critic_target)
        return offpolicy.critic_apply(critic, s, offpolicy.actor_apply(st.actor_target, s))

    for i in range(b):
        q = min(float(q_next_j(st3, batch.next_obs[i], j)) for j in range(2))
        want = float(batch.reward[i]) + (0.0 if batch.terminated[i] else cfg3.gamma * q)
        np.testing.assert_allclose(y3[i], want, rtol=1e-5, atol=1e-6)


def test_soft_update_is_polyak_averaging():
    a = {"w": jnp.ones(3)}
    b = {"w": jnp.zeros(3)}
    np.testing.assert_allclose(offpolicy.soft_update(b, a, 0.1)["w"], 0.1)


def test_ddpg_actor_gradient_is_the_chain_rule():
    """∇_θ Q(s, μ_θ(s)) = ∇_a Q(s, a)|_{a=μ_θ(s)} ∇_θ μ_θ(s) (Silver et al. 2014)."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(3))
    actor = nets.mlp_init(k1, [3, 8, 1], dtype=jnp.float64)
    critic = nets.mlp_init(k2, [4, 8, 1], dtype=jnp.float64)
    s = jnp.array([0.3, -0.2, 1.1])

    @jax.jit
    def both(actor):
        auto = jax.grad(lambda th: offpolicy.critic_apply(critic, s, offpolicy.actor_apply(th, s)))(
            actor
        )
        a = offpolicy.actor_apply(actor, s)
        dq_da = jax.grad(lambda a: offpolicy.critic_apply(critic, s, a))(a)
        jac = jax.jacobian(lambda th: offpolicy.actor_apply(th, s))(actor)
        chain = jax.tree_util.tree_map(lambda j: jnp.tensordot(dq_da, j, axes=1), jac)
        loss_grad = jax.grad(lambda th: ddpg.actor_loss(th, critic, s[None])[0])(actor)
        return auto, chain, loss_grad

    auto, chain, g = both(actor)
    for x, y in zip(jax.tree_util.tree_leaves(auto), jax.tree_util.tree_leaves(chain), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)
    # and DDPG's actor loss is minus the batch mean of that objective
    for x, y in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(auto), strict=True):
        np.testing.assert_allclose(x, -y, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ tanh-Gaussian


def _reference_log_density(mean, std, a):
    """log p(a) for a = tanh(u), u ∼ N(mean, std²), by the change of variables, in numpy."""
    u = np.arctanh(a)
    return stats.norm.logpdf(u, mean, std) - np.log1p(-(a**2))


def test_tanh_gaussian_log_prob_is_the_change_of_variables():
    mean, log_std = jnp.array([0.4, -1.2]), jnp.array([-0.3, 0.5])
    std = np.exp(np.asarray(log_std))
    rng = np.random.default_rng(0)
    for a in rng.uniform(-0.999, 0.999, size=(20, 2)):
        want = _reference_log_density(np.asarray(mean), std, a).sum()
        np.testing.assert_allclose(
            D.tanh_gaussian_log_prob(mean, log_std, jnp.asarray(a)), want, rtol=1e-9
        )
    # the sampler's log-prob (computed from u, no atanh) is the same density at its sample
    for i in range(5):
        a, lp = D.tanh_gaussian_sample_and_log_prob(jax.random.PRNGKey(i), mean, log_std)
        np.testing.assert_allclose(lp, D.tanh_gaussian_log_prob(mean, log_std, a), rtol=1e-8)
    # stable where 1 − tanh² u underflows: log(1 − tanh² u) ≈ 2 log 2 − 2|u| for large |u|
    np.testing.assert_allclose(
        D.tanh_log_det_jacobian(jnp.array([40.0, -40.0])), 2 * (2 * np.log(2) - 80.0), rtol=1e-12
    )
    with pytest.raises(ValueError, match="a must have the shape"):
        D.tanh_gaussian_log_prob(mean, log_std, jnp.zeros(3))


def test_tanh_gaussian_density_matches_a_numerical_density_and_samples():
    mean, log_std = jnp.array([0.7]), jnp.array([0.2])
    std = float(np.exp(0.2))

    def cdf(a):  # P(tanh u ≤ a) = Φ((atanh a − μ) / σ)
        return stats.norm.cdf((np.arctanh(a) - 0.7) / std)

    h = 1e-5
    for a in np.linspace(-0.95, 0.95, 9):
        numerical = (cdf(a + h) - cdf(a - h)) / (2 * h)
        np.testing.assert_allclose(
            np.exp(D.tanh_gaussian_log_prob(mean, log_std, jnp.array([a]))), numerical, rtol=1e-6
        )
    grid = np.linspace(-1 + 1e-9, 1 - 1e-9, 400_001)
    dens = np.exp(
        np.asarray(
            jax.vmap(lambda a: D.tanh_gaussian_log_prob(mean, log_std, a[None], eps=1e-12))(
                jnp.asarray(grid)
            )
        )
    )
    np.testing.assert_allclose(np.trapezoid(dens, grid), 1.0, atol=1e-4)
    draws = jax.vmap(D.tanh_gaussian_sample, (0, None, None))(
        jax.random.split(jax.random.PRNGKey(5), 20_000), mean, log_std
    )
    assert float(jnp.max(jnp.abs(draws))) <= 1.0
    assert stats.kstest(np.asarray(draws[:, 0]), cdf).pvalue > 1e-3


# ------------------------------------------------------------------ Ornstein–Uhlenbeck


def test_ou_mean_decays_geometrically_and_variance_is_stationary():
    theta, sigma, dt = 0.5, 0.3, 0.1
    # σ = 0: the Euler–Maruyama chain is x_k = (1 − θ dt)^k x_0 exactly
    path = noise.ou_path(jax.random.PRNGKey(0), jnp.array([2.0]), 50, theta, 0.0, dt)
    np.testing.assert_allclose(path[:, 0], 2.0 * (1 - theta * dt) ** np.arange(1, 51), rtol=1e-12)
    # Independent chains from 0, run 20 relaxation times: the spread is stationary.
    n_chains, n_steps = 4000, int(20 / (theta * dt))
    x = jax.vmap(lambda k: noise.ou_path(k, jnp.zeros(()), n_steps, theta, sigma, dt)[-1])(
        jax.random.split(jax.random.PRNGKey(1), n_chains)
    )
    want = noise.ou_stationary_variance(theta, sigma, dt)
    se = want * np.sqrt(2 / (n_chains - 1))  # standard error of a Gaussian sample variance
    assert abs(float(jnp.var(x, ddof=1)) - want) < 4 * se
    assert abs(float(jnp.mean(x))) < 4 * np.sqrt(want / n_chains)
    # the discrete chain's variance is the SDE's σ²/(2θ) up to a factor 1/(1 − θ dt / 2)
    np.testing.assert_allclose(want, sigma**2 / (2 * theta) / (1 - theta * dt / 2), rtol=1e-12)
    np.testing.assert_allclose(noise.ou_stationary_variance(theta, sigma), sigma**2 / (2 * theta))
    for kwargs, name in [
        (dict(theta=0.0), "theta"),
        (dict(sigma=-1.0), "sigma"),
        (dict(dt=0.0), "dt"),
        (dict(dt=3.0), "theta \\* dt"),
    ]:
        args = dict(theta=theta, sigma=sigma, dt=dt) | kwargs
        with pytest.raises(ValueError, match=name):
            noise.ou_step(jax.random.PRNGKey(0), jnp.zeros(1), **args)
    with pytest.raises(ValueError, match="n_steps"):
        noise.ou_path(jax.random.PRNGKey(0), jnp.zeros(1), 0, theta, sigma, dt)


# ------------------------------------------------------------------ agents


@pytest.mark.parametrize("name", list(AGENTS))
def test_a_short_run_is_bitwise_reproducible_from_its_key(name):
    mod = AGENTS[name]
    train = jax.jit(mod.make_train(mod.Config(**TINY)))
    s1, m1 = train(jax.random.PRNGKey(7))
    s2, m2 = train(jax.random.PRNGKey(7))
    _, m3 = train(jax.random.PRNGKey(8))
    for a, b in zip(
        jax.tree_util.tree_leaves((s1, m1)), jax.tree_util.tree_leaves((s2, m2)), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(m1["eval_return"], m3["eval_return"])
    e = TINY["total_steps"] // TINY["eval_every"]
    np.testing.assert_array_equal(m1["step"], [60, 120])
    assert m1["eval_return"].shape == (e,) and m1["q_estimate"].shape == (e, 2)
    assert np.all(np.isfinite(m1["critic_loss"])) and float(m1["critic_loss"][-1]) > 0
    # returns of Pendulum episodes lie in [−16.27 · 200, 0]
    assert np.all((m1["eval_return"] <= 0) & (m1["eval_return"] > -16.3 * 200))


def test_td3_delays_the_actor_and_sac_tunes_its_temperature():
    b = 8
    rng = np.random.default_rng(2)
    batch = offpolicy.Transition(
        jnp.asarray(rng.normal(size=(b, 3)), jnp.float32),
        jnp.asarray(rng.uniform(-1, 1, (b, 1)), jnp.float32),
        jnp.asarray(rng.normal(size=b), jnp.float32),
        jnp.asarray(rng.normal(size=(b, 3)), jnp.float32),
        jnp.zeros(b, bool),
    )
    cfg = td3.Config(hidden=(8,), policy_delay=2)
    st = td3.init(jax.random.PRNGKey(0), 3, 1, cfg)
    upd = jax.jit(td3.update, static_argnums=4)
    odd, _ = upd(jax.random.PRNGKey(1), st, batch, 1, cfg)
    even, _ = upd(jax.random.PRNGKey(1), st, batch, 0, cfg)

    def same(x, y):
        leaves = zip(jax.tree_util.tree_leaves(x), jax.tree_util.tree_leaves(y), strict=True)
        return all(np.array_equal(p, q) for p, q in leaves)

    assert same(odd.actor, st.actor) and same(odd.critic_target, st.critic_target)
    assert not same(odd.critic, st.critic)
    assert not same(even.actor, st.actor) and not same(even.critic_target, st.critic_target)
    # SAC: the temperature rises when the policy's entropy is below the target −D, falls above.
    g_low = jax.grad(sac.temperature_loss)(0.0, jnp.full(4, 3.0), -1.0)  # entropy −3 < −1
    g_high = jax.grad(sac.temperature_loss)(0.0, jnp.full(4, -3.0), -1.0)  # entropy 3 > −1
    assert g_low < 0 < g_high  # gradient descent moves log β up, resp. down


@pytest.mark.parametrize("name", list(AGENTS))
def test_bad_configs_raise_value_errors_naming_the_field(name):
    mod = AGENTS[name]
    bad = [
        ("total_steps", 0),
        ("learning_starts", -1),
        ("batch_size", 0),
        ("gamma", 1.0),
        ("tau", 0.0),
        ("tau", 1.5),
        ("actor_lr", -1e-3),
        ("critic_lr", 0.0),
        ("hidden", ()),
        ("eval_every", 7),
        ("train_every", 0),
        ("learning_starts", 20_000),
        ("value_states", -2),
    ]
    extra = {
        "ddpg": [("ou_theta", 0.0), ("ou_sigma", -0.1), ("ou_dt", 100.0)],
        "td3": [
            ("policy_delay", 0),
            ("target_noise", -0.1),
            ("noise_clip", -1.0),
            ("explore_noise", -0.2),
        ],
        "sac": [("init_temperature", 0.0), ("temperature_lr", -1.0), ("learn_temperature", 1)],
    }[name]
    for field, value in bad + extra:
        with pytest.raises(ValueError, match=field):
            mod.make_train(dataclasses.replace(mod.Config(), **{field: value}))
