"""Bad input is refused by name (issue 19), and valid input gives exactly what it gave before.

One test per bullet of the issue: each asserts a ``ValueError`` whose message names the
argument. Where a check touched the valid path (a promotion, a ``jnp.where`` outside a
density's support, a new keyword), a test holds the result bit for bit against the
formula the function computed before.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlbook import (
    counterexamples,
    envs,
    mdp,
    natural,
    nets,
    ntk,
    plotting,
    policies,
    replay,
    returns,
    rollouts,
)
from rlbook import distributions as D
from rlbook import estimators as E
from rlbook.agents import (
    actor_critic,
    dqn,
    fqi,
    offline_q,
    offpolicy,
    ppo,
    qlearning,
    sac,
    svg,
    trpo,
)


@pytest.fixture(scope="module")
def small_mdp():
    return mdp.garnet(jax.random.PRNGKey(0), 4, 2, gamma=0.9)


# --------------------------------------------------------------------------- returns


def test_integer_rewards_are_promoted_to_float():
    g = returns.discounted_returns([1, 1, 1], returns.step_discounts(0.9, jnp.zeros(3, bool)))
    np.testing.assert_allclose(g, [1 + 0.9 + 0.81, 1.9, 1.0])
    assert jnp.issubdtype(g.dtype, jnp.floating)
    # integer rewards with integer discounts: the discounts follow the promoted rewards
    g_int = returns.discounted_returns(jnp.array([1, 1, 1]), jnp.array([1, 1, 1]))
    np.testing.assert_array_equal(g_int, [3.0, 2.0, 1.0])
    adv = returns.gae([1, 0, 2], [0.9, 0.9, 0.9], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 0.5)
    assert jnp.issubdtype(adv.dtype, jnp.floating)
    np.testing.assert_allclose(adv, [1 + 0.45 * (0 + 0.45 * 2), 0.45 * 2, 2.0])


def test_step_discounts_refuses_an_integer_dtype():
    with pytest.raises(ValueError, match="dtype"):
        returns.step_discounts(0.9, jnp.zeros(3, bool), dtype=jnp.int32)


@pytest.mark.parametrize("name", ["rewards", "bootstrap"])
def test_returns_refuse_non_finite_inputs(name):
    args = {"rewards": jnp.ones(3), "discounts": jnp.full(3, 0.9), "bootstrap": jnp.zeros(3)}
    args[name] = args[name].at[1].set(jnp.nan)
    with pytest.raises(ValueError, match=name):
        returns.discounted_returns(**args)


def test_returns_refuse_strings():
    with pytest.raises(ValueError, match="rewards"):
        returns.discounted_returns(["a", "b"], [0.9, 0.9])


def test_gae_refuses_non_finite_values():
    with pytest.raises(ValueError, match="next_values"):
        returns.gae(jnp.ones(2), jnp.full(2, 0.9), jnp.zeros(2), jnp.array([0.0, jnp.inf]), 0.9)


def test_float_returns_are_unchanged():
    r = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    disc = returns.step_discounts(0.95, jax.random.bernoulli(jax.random.PRNGKey(2), 0.2, (7, 3)))
    g = returns.discounted_returns(r, disc)
    # what the function did before the checks: the same scan on the unconverted inputs
    cut = jnp.zeros((7, 3), bool).at[-1].set(True)
    want = returns._returns_scan(r, jnp.asarray(disc, r.dtype), jnp.zeros_like(r), cut)
    np.testing.assert_array_equal(g, want)
    np.testing.assert_array_equal(
        returns.discounted_returns_loop(r, disc),
        returns.discounted_returns_loop(r.tolist(), disc.tolist()),
    )


# --------------------------------------------------------------------------- MDPs


def test_garnet_refuses_an_integer_dtype():
    with pytest.raises(ValueError, match="dtype"):
        mdp.garnet(jax.random.PRNGKey(0), 3, 2, dtype=jnp.int32)


@pytest.mark.parametrize("scale", [np.nan, np.inf, "big"])
def test_garnet_refuses_a_non_finite_reward_scale(scale):
    with pytest.raises(ValueError, match="reward_scale"):
        mdp.garnet(jax.random.PRNGKey(0), 3, 2, reward_scale=scale)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_make_mdp_refuses_non_finite_rewards(bad):
    P = np.full((2, 1, 2), 0.5)
    with pytest.raises(ValueError, match="mdp.r"):
        mdp.make_mdp(P, np.array([[0.0], [bad]]), np.array([0.5, 0.5]), 0.9)


def test_make_mdp_promotes_integers_and_mdp_refuses_integer_arrays():
    P = np.zeros((2, 1, 2), int)
    P[:, 0, 0] = 1
    m = mdp.make_mdp(P, np.array([[1], [2]]), np.array([1, 0]), 0.5)
    assert jnp.issubdtype(m.P.dtype, jnp.floating) and jnp.issubdtype(m.r.dtype, jnp.floating)
    np.testing.assert_allclose(mdp.value_iteration(m, tol=1e-12).q, [[2.0], [3.0]])
    raw = mdp.MDP(m.P, jnp.array([[1], [2]]), m.rho0, m.gamma)
    with pytest.raises(ValueError, match="mdp.r"):
        mdp.value_iteration(raw)


def test_zero_actions_are_refused():
    with pytest.raises(ValueError, match="mdp.P"):
        mdp.uniform_policy(
            mdp.MDP(
                jnp.zeros((2, 0, 2)), jnp.zeros((2, 0)), jnp.array([0.5, 0.5]), jnp.asarray(0.9)
            )
        )


def test_bellman_v_refuses_a_tuple_for_the_mdp(small_mdp):
    pi = mdp.uniform_policy(small_mdp)
    with pytest.raises(ValueError, match="mdp"):
        mdp.bellman_v(tuple(small_mdp), pi, jnp.zeros(4))


def test_value_iteration_refuses_a_non_finite_q0(small_mdp):
    with pytest.raises(ValueError, match="q0"):
        mdp.value_iteration(small_mdp, q0=jnp.full((4, 2), jnp.nan))
    with pytest.raises(ValueError, match="q0"):
        mdp.soft_value_iteration(small_mdp, 0.1, q0=jnp.full((4, 2), jnp.inf))


def test_soft_value_iteration_refuses_an_underflowing_temperature():
    m = mdp.garnet(jax.random.PRNGKey(0), 3, 2, dtype=jnp.float32)
    with pytest.raises(ValueError, match="temperature"):
        mdp.soft_value_iteration(m, 1e-45)


def test_value_iteration_reports_and_insists_on_convergence():
    m = mdp.garnet(jax.random.PRNGKey(0), 5, 2, gamma=0.9999, dtype=jnp.float32)
    res, converged = mdp.value_iteration(m, tol=1e-8, max_iter=100, return_info=True)
    assert not bool(converged) and int(res.iterations) == 100
    with pytest.raises(ValueError, match="max_iter"):
        mdp.value_iteration(m, tol=1e-8, max_iter=100, insist=True)
    with pytest.raises(ValueError, match="max_iter"):
        mdp.soft_value_iteration(m, 0.5, tol=1e-8, max_iter=100, insist=True)
    # under jit the flag is an array and nothing raises
    flag = jax.jit(lambda mm: mdp.value_iteration(mm, max_iter=100, return_info=True)[1])(m)
    assert not bool(flag)


def test_value_iteration_result_is_unchanged_by_the_new_keywords(small_mdp):
    plain = mdp.value_iteration(small_mdp, tol=1e-10)
    res, converged = mdp.value_iteration(small_mdp, tol=1e-10, return_info=True, insist=True)
    assert bool(converged) and isinstance(plain, mdp.ValueIterationResult)
    for a, b in zip(plain, res, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- discrete actions


@pytest.mark.parametrize("action", [2, -1, 0.5, True])
def test_cartpole_refuses_an_action_other_than_0_or_1(action):
    env, params = envs.make("CartPole-v1")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    with pytest.raises(ValueError, match="action"):
        env.step_env(state, action, params)
    with pytest.raises(ValueError, match="action"):
        env.step(jax.random.PRNGKey(1), state, action, params)


def test_tabular_refuses_an_out_of_range_action(small_mdp):
    env, params = envs.Tabular(), envs.TabularParams(small_mdp, max_steps=5)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    for a in (2, -1):
        with pytest.raises(ValueError, match="action"):
            env.step_env(state, a, params)
    env.step_env(state, 1, params)


@pytest.mark.parametrize("a", [10, -1, 3])
def test_categorical_log_prob_refuses_an_out_of_range_index(a):
    with pytest.raises(ValueError, match="a must"):
        D.categorical_log_prob(jnp.zeros(3), a)


def test_categorical_log_prob_is_unchanged_in_range():
    logits = jnp.array([0.3, -1.2, 2.0])
    for a in range(3):
        assert D.categorical_log_prob(logits, a) == jax.nn.log_softmax(logits)[a]


def test_policies_refuse_out_of_range_actions_and_states():
    pol = policies.SoftmaxPolicy(4, 2, (8,))
    params = pol.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="a must"):
        pol.log_prob(params, jnp.zeros(4), 2)
    tab = policies.TabularSoftmax(3, 2)
    theta = tab.init(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="obs"):
        tab.logits(theta, 3)
    with pytest.raises(ValueError, match="a must"):
        tab.log_prob(theta, 0, -1)


@pytest.mark.parametrize("field, value", [("s", 4), ("a", 2), ("s_next", -1)])
def test_q_learning_update_refuses_out_of_range_indices(field, value):
    args = dict(q=jnp.zeros((4, 2)), s=0, a=1, r=1.0, s_next=2, alpha=0.5, gamma=0.9)
    args[field] = value
    with pytest.raises(ValueError, match=field):
        qlearning.q_learning_update(**args)


def test_q_learning_update_is_unchanged():
    q = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
    got = qlearning.q_learning_update(q, 1, 0, 0.5, 3, 0.1, 0.9)
    want = q.at[1, 0].add(0.1 * (0.5 + 0.9 * jnp.max(q[3]) - q[1, 0]))
    np.testing.assert_array_equal(got, want)


def test_collect_refuses_a_policy_that_does_not_fit_the_env():
    env, params = envs.make("CartPole-v1")
    state = rollouts.init(jax.random.PRNGKey(0), env, params, 2)
    pol = policies.SoftmaxPolicy(4, 3, (8,))
    with pytest.raises(ValueError, match="n_actions"):
        rollouts.collect(
            jax.random.PRNGKey(1), pol, pol.init(jax.random.PRNGKey(2)), env, params, state, 4
        )
    gauss = policies.GaussianPolicy(4, 1, (8,))
    with pytest.raises(ValueError, match="policy"):
        rollouts.collect(
            jax.random.PRNGKey(1), gauss, gauss.init(jax.random.PRNGKey(2)), env, params, state, 4
        )


def test_environment_parameters_are_validated():
    env, params = envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="params.masspole"):
        env.reset(jax.random.PRNGKey(0), params._replace(masspole=0.0))
    with pytest.raises(ValueError, match="params.max_steps"):
        env.reset(jax.random.PRNGKey(0), params._replace(max_steps=-3))
    pend, pparams = envs.make("Pendulum-v1")
    with pytest.raises(ValueError, match="params.dt"):
        pend.reset(jax.random.PRNGKey(0), pparams._replace(dt=float("nan")))
    _, state = pend.reset(jax.random.PRNGKey(0), pparams)
    with pytest.raises(ValueError, match="action"):
        pend.step_env(state, jnp.array([jnp.nan]), pparams)


# --------------------------------------------------------------------------- solvers


def test_conjugate_gradient_refuses_a_non_finite_b():
    A = jnp.eye(3)
    with pytest.raises(ValueError, match="b must be finite"):
        natural.conjugate_gradient(A, jnp.array([1.0, jnp.nan, 0.0]))
    with pytest.raises(ValueError, match="x0"):
        natural.conjugate_gradient(A, jnp.ones(3), x0=jnp.array([jnp.inf, 0.0, 0.0]))


def test_conjugate_gradient_reports_and_insists_on_convergence():
    A = jnp.diag(jnp.arange(1.0, 21.0))
    b = jnp.ones(20)
    plain = natural.conjugate_gradient(A, b, max_iter=3)
    res, converged = natural.conjugate_gradient(A, b, max_iter=3, return_info=True)
    assert not bool(converged)
    for x, y in zip(plain, res, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="max_iter"):
        natural.conjugate_gradient(A, b, max_iter=3, insist=True)
    _, ok = natural.conjugate_gradient(A, b, max_iter=40, return_info=True, insist=True)
    assert bool(ok)
    # under jit a NaN in b cannot raise: the documented result is converged = False
    nan_b = b.at[0].set(jnp.nan)
    flag = jax.jit(lambda v: natural.conjugate_gradient(A, v, return_info=True)[1])(nan_b)
    assert not bool(flag)


def test_conjugate_gradient_names_a_nan_matvec():
    """A matvec that returns NaN stops CG like a non-positive curvature, and says so."""
    with pytest.raises(ValueError, match="non-finite"):
        natural.conjugate_gradient(lambda x: jnp.full(2, jnp.nan), jnp.ones(2))
    res = natural.conjugate_gradient(
        lambda x: jnp.full(2, jnp.nan), jnp.ones(2), on_nonpositive="stop"
    )
    assert bool(res.nonpositive_curvature) and bool(jnp.all(jnp.isfinite(res.x)))


def test_natural_direction_and_step_insist_on_convergence():
    """An ill-conditioned Fisher with one CG iteration: reported in ``cg``, raised on insist."""
    kl = lambda p, q: jnp.sum(jnp.array([1.0, 1e-6]) * (p - q) ** 2)  # noqa: E731
    theta, g = jnp.ones(2), jnp.ones(2)
    _, cg = natural.natural_direction(kl, theta, g, max_iter=1)
    assert int(cg.iterations) == 1 and float(cg.residual_norm) > 1e-10 * float(jnp.sqrt(2.0))
    with pytest.raises(ValueError, match="did not converge"):
        natural.natural_direction(kl, theta, g, max_iter=1, insist=True)
    with pytest.raises(ValueError, match="did not converge"):
        natural.natural_step(kl, theta, g, max_kl=0.01, max_iter=1, insist=True)
    with pytest.raises(ValueError, match="insist"):
        natural.natural_step(kl, theta, g, max_kl=0.01, insist="yes")
    step = natural.natural_step(kl, theta, g, max_kl=0.01, max_iter=2, insist=True)
    assert bool(jnp.all(jnp.isfinite(step.direction)))


def test_greedy_policy_refuses_zero_actions():
    with pytest.raises(ValueError, match="q must have at least one action"):
        mdp.greedy_policy(jnp.zeros((3, 0)))


def test_preqn_refuses_zero_damping_on_a_singular_kernel():
    J = jnp.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # two identical batch entries
    with pytest.raises(ValueError, match="damping"):
        ntk.preqn_direction(J, jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="damping"):
        ntk.preqn_step(lambda w: J @ w, jnp.zeros(3), jnp.array([1.0, 2.0]), 0.1)
    ntk.preqn_direction(J, jnp.array([1.0, 2.0]), 0.1)  # damped: fine
    Jf = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(
        ntk.preqn_direction(Jf, jnp.array([1.0, 2.0])),
        Jf.T @ jnp.linalg.solve(Jf @ Jf.T, jnp.array([1.0, 2.0])),
    )


# --------------------------------------------------------------------------- replay and configs


def test_replay_refuses_sampling_an_empty_buffer():
    buf = replay.init(4, {"a": jnp.asarray(0)})
    with pytest.raises(ValueError, match="buffer"):
        replay.sample(jax.random.PRNGKey(0), buf, 2)


def test_dqn_refuses_a_batch_larger_than_the_buffer():
    with pytest.raises(ValueError, match="batch_size"):
        dqn.DQNConfig(buffer_size=32, batch_size=64)


def test_dqn_make_train_refuses_a_continuous_environment():
    with pytest.raises(ValueError, match="env"):
        dqn.make_train(dqn.DQNConfig(), envs.Pendulum())


@pytest.mark.parametrize("agent", [offpolicy, sac, svg])
@pytest.mark.parametrize(
    "change, name",
    [
        ({"batch_size": 128, "buffer_size": 64}, "batch_size"),
        ({"learning_starts": 0}, "learning_starts"),
        ({"learning_starts": 100, "batch_size": 128}, "learning_starts"),
        ({"hidden": (True,)}, "hidden"),
        ({"tau": "x"}, "tau"),
    ],
)
def test_offpolicy_configs_are_checked_across_fields(agent, change, name):
    # refused when the config is built (``__post_init__``), before any training
    with pytest.raises(ValueError, match=name):
        dataclasses.replace(agent.Config(), **change)


def test_svg_infinity_and_ntk_and_fqi_check_hidden():
    with pytest.raises(ValueError, match="hidden"):
        svg.make_train(svg.InfinityConfig(hidden=(True,)))
    with pytest.raises(ValueError, match="hidden"):
        offline_q.Config(hidden=(True,))
    for bad in ((True,), (), (8, 0), [8]):
        with pytest.raises(ValueError, match="hidden"):
            fqi.validate(fqi.Config(hidden=bad))


@pytest.mark.parametrize("module", [ppo, actor_critic])
def test_one_transition_minibatches_with_normalization_are_refused(module):
    with pytest.raises(ValueError, match="n_minibatches"):
        module.Config(n_envs=2, n_steps=2, n_minibatches=4)
    module.Config(n_envs=2, n_steps=2, n_minibatches=4, normalize_advantages=False)
    module.Config(n_envs=2, n_steps=2, n_minibatches=2)


def test_trpo_refuses_a_one_transition_batch_with_normalization():
    with pytest.raises(ValueError, match="normalize_advantages"):
        trpo.Config(n_envs=1, n_steps=1)


def test_ntk_dataset_checks():
    m = mdp.garnet(jax.random.PRNGKey(0), 3, 2, dtype=jnp.float32)
    rho = jnp.full((3, 2), 1 / 6)
    with pytest.raises(ValueError, match="rho"):
        offline_q.sample_dataset(jax.random.PRNGKey(0), m, jnp.ones((3, 2)), 10)
    with pytest.raises(ValueError, match="rho"):
        offline_q.sample_dataset(jax.random.PRNGKey(0), m, rho[:2], 10)
    data = offline_q.sample_dataset(jax.random.PRNGKey(0), m, rho, 10)
    cfg = offline_q.Config(hidden=(4,), n_steps=20, log_every=10, batch_size=4)
    obs = jnp.eye(3)
    with pytest.raises(ValueError, match="dataset"):
        offline_q.make_train(cfg, m, obs, {k: v for k, v in data.items() if k != "r"})
    with pytest.raises(ValueError, match="dataset"):
        offline_q.make_train(cfg, m, obs, dict(data, a=data["a"].at[0].set(5)))


# --------------------------------------------------------------------------- obscure errors


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: mdp.value_iteration(mdp.garnet(jax.random.PRNGKey(0), 3, 2), tol="tiny"), "tol"),
        (lambda: mdp.softmax_policy(jnp.zeros((2, 2)), temperature="hot"), "temperature"),
        (lambda: returns.step_discounts("0.9", jnp.zeros(2)), "gamma"),
        (lambda: D.kumaraswamy_sample(jax.random.PRNGKey(0), "a", 1.0), "a"),
        (lambda: natural.conjugate_gradient(jnp.eye(2), jnp.ones(2), tol=None), "tol"),
        (lambda: dqn.DQNConfig(target_tau="x"), "target_tau"),
        (lambda: dqn.DQNConfig(epsilon_end=None), "epsilon_end"),
        (lambda: trpo.Config(backtrack_coef="x"), "backtrack_coef"),
        (lambda: plotting.mean_and_band(np.ones((3, 2)), "x"), "confidence"),
    ],
)
def test_strings_and_none_in_numeric_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --------------------------------------------------------------------------- densities


def test_densities_are_minus_infinity_outside_their_support():
    for x in (-0.5, 1.5):
        assert D.kumaraswamy_log_prob(2.0, 3.0, x) == -jnp.inf
    assert D.gumbel_softmax_log_prob(jnp.zeros(2), 0.5, jnp.array([1.5, -0.5])) == -jnp.inf
    assert D.truncated_normal_log_prob(0.0, 1.0, -1.0, 1.0, 2.0) == -jnp.inf


def test_densities_are_unchanged_inside_their_support():
    a, b = 2.0, 3.0
    for x in (0.1, 0.5, 0.9):
        log_x = jnp.log(x)
        old = jnp.log(a) + jnp.log(b) + (a - 1) * log_x + (b - 1) * jnp.log(-jnp.expm1(a * log_x))
        assert D.kumaraswamy_log_prob(a, b, x) == old
    logits, tau, y = jnp.array([0.2, -0.3]), 0.7, jnp.array([0.4, 0.6])
    log_y = jnp.log(y)
    old = (
        jax.scipy.special.gammaln(2)
        + jnp.log(tau)
        + jnp.sum(logits - (tau + 1.0) * log_y)
        - 2 * jax.scipy.special.logsumexp(logits - tau * log_y)
    )
    assert D.gumbel_softmax_log_prob(logits, tau, y) == old


def test_gaussian_kl_refuses_mismatched_means():
    with pytest.raises(ValueError, match="mean_q"):
        D.gaussian_kl(jnp.zeros(3), jnp.zeros(3), jnp.zeros(1), jnp.zeros(1))


# --------------------------------------------------------------------------- plotting


def test_mean_and_band_accepts_a_single_seed():
    y = np.array([[1.0, 2.0, 3.0]])
    mean, low, high = plotting.mean_and_band(y)
    for part in (mean, low, high):
        np.testing.assert_array_equal(part, y[0])
    plotting.learning_curve(np.arange(3), y, label="one seed")


# --------------------------------------------------------------------------- property-based


def _named(err, names):
    return any(n in str(err) for n in names)


_reals = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(-5, 5),
    st.just("x"),
    st.none(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gamma=_reals,
    lam=_reals,
    r=st.lists(
        st.one_of(st.floats(-1e3, 1e3), st.integers(-3, 3), st.just(float("nan"))),
        min_size=1,
        max_size=5,
    ),
)
def test_fuzz_returns(gamma, lam, r):
    """Either finite float output of rewards' shape, or a ValueError naming an argument."""
    try:
        disc = returns.step_discounts(gamma, jnp.zeros(len(r), bool))
        g = returns.discounted_returns(r, disc)
        adv = returns.gae(r, disc, jnp.zeros(len(r)), jnp.zeros(len(r)), lam)
    except ValueError as err:
        assert _named(err, ("gamma", "lam", "rewards", "discounts"))
        return
    for out in (g, adv):
        assert out.shape == (len(r),) and jnp.issubdtype(out.dtype, jnp.floating)
        assert bool(jnp.all(jnp.isfinite(out)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.integers(-3, 5),
    logit=st.floats(-50, 50),
    mean_dim=st.integers(1, 3),
    x=st.floats(-2, 2),
    ka=st.one_of(st.floats(-1, 5), st.just(float("nan"))),
)
def test_fuzz_distributions(a, logit, mean_dim, x, ka):
    logits = jnp.array([logit, 0.0, -logit])
    try:
        lp = D.categorical_log_prob(logits, a)
        assert bool(jnp.isfinite(lp)) and lp.shape == ()
    except ValueError as err:
        assert _named(err, ("a must",))
    try:
        kl = D.gaussian_kl(jnp.zeros(3), jnp.zeros(3), jnp.zeros(mean_dim), jnp.zeros(mean_dim))
        assert kl.shape == () and bool(jnp.isfinite(kl))
    except ValueError as err:
        assert _named(err, ("mean_q",))
    try:
        lk = D.kumaraswamy_log_prob(ka, 2.0, x)
        assert not bool(jnp.isnan(lk))  # −∞ outside the support, never NaN
        xf = np.asarray(x, jnp.result_type(ka, 2.0, x, float))  # x as the maths sees it
        if np.finfo(xf.dtype).tiny <= xf < 1.0:
            assert bool(jnp.isfinite(lk))
        else:
            assert lk == -np.inf
    except ValueError as err:
        assert _named(err, ("a must",))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gamma=_reals,
    scale=_reals,
    q0=st.one_of(st.floats(-10, 10), st.just(float("nan"))),
    s=st.integers(-1, 4),
    act=st.integers(-1, 2),
)
def test_fuzz_mdp(gamma, scale, q0, s, act):
    try:
        m = mdp.garnet(jax.random.PRNGKey(0), 3, 2, gamma=gamma, reward_scale=scale)
        res = mdp.value_iteration(m, q0=jnp.full((3, 2), q0), tol=1e-6)
        assert res.q.shape == (3, 2) and bool(jnp.all(jnp.isfinite(res.q)))
        q = qlearning.q_learning_update(res.q, s, act, 1.0, 0, 0.5, 0.9)
        assert q.shape == (3, 2) and bool(jnp.all(jnp.isfinite(q)))
    except ValueError as err:
        assert _named(err, ("gamma", "reward_scale", "q0", "s must", "a must"))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: rollouts.step_keys(jax.random.PRNGKey(0), -2, 3), "n_steps"),
        (lambda: rollouts.step_keys(jax.random.PRNGKey(0), 2, 0), "n_envs"),
        (
            lambda: offpolicy.evaluate(jax.random.PRNGKey(0), lambda o: jnp.zeros(1), -1),
            "n_episodes",
        ),
        (lambda: svg.collect_episode(jax.random.PRNGKey(0), None, -5), "n_steps"),
        (
            lambda: rollouts.init(
                jax.random.PRNGKey(0), envs.CartPole(), envs.CartPoleParams(), -1
            ),
            "n_envs",
        ),
        (lambda: mdp.garnet(jax.random.PRNGKey(0), -3, 2), "n_states"),
    ],
)
def test_negative_sizes_are_refused_by_name(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.integers(-2, 200),
    buffer=st.integers(-2, 200),
    starts=st.integers(-2, 300),
    hidden=st.sampled_from([(8,), (True,), (), (0,), (8, 8), "8"]),
    tau=st.one_of(st.floats(-1, 2), st.just(float("nan"))),
)
def test_fuzz_offpolicy_config(batch, buffer, starts, hidden, tau):
    """A config is accepted only when consistent; otherwise a ValueError names a field."""
    try:
        offpolicy.Config(
            total_steps=400,
            eval_every=200,
            batch_size=batch,
            buffer_size=buffer,
            learning_starts=starts,
            hidden=hidden,
            tau=tau,
        )
    except ValueError as err:
        assert _named(
            err,
            (
                "config.batch_size",
                "config.buffer_size",
                "config.learning_starts",
                "config.hidden",
                "config.tau",
            ),
        )
        return
    assert 0 < batch <= buffer and batch <= starts < 400 and 0 < tau <= 1
    assert isinstance(hidden, tuple) and hidden and all(type(h) is int and h > 0 for h in hidden)


# --------------------------------------------------------------------------- traced indices


def test_traced_out_of_range_category_gives_nan():
    logits = jnp.array([0.3, -1.2, 2.0])
    lp = jax.jit(jax.vmap(D.categorical_log_prob, (None, 0)))(logits, jnp.array([-1, 0, 2, 3]))
    assert np.isnan(lp[0]) and np.isnan(lp[3])
    np.testing.assert_array_equal(lp[1:3], jax.nn.log_softmax(logits)[jnp.array([0, 2])])


def test_traced_out_of_range_cartpole_action_gives_nan():
    env, params = envs.make("CartPole-v1")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(env.step_env)
    for bad in (2, -1):
        new, obs, reward, _ = step(state, bad, params)
        assert np.all(np.isnan(obs)) and np.isnan(reward) and np.isnan(new.x)
    for good in (0, 1):
        new, obs, reward, done = step(state, good, params)
        want = env.step_env(state, good, params)
        for x, y in zip(
            jax.tree_util.tree_leaves((new, obs, reward, done)),
            jax.tree_util.tree_leaves(want),
            strict=True,
        ):
            np.testing.assert_array_equal(x, y)


def test_traced_out_of_range_tabular_action_gives_a_nan_reward(small_mdp):
    env, params = envs.Tabular(), envs.TabularParams(small_mdp, max_steps=5)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(env.step_env)
    for bad in (2, -1):
        assert np.isnan(step(state, bad, params)[2])
    for good in (0, 1):
        assert step(state, good, params)[2] == env.step_env(state, good, params)[2]


@pytest.mark.parametrize("field, value", [("s", 4), ("a", 2), ("s_next", -1), ("a", -1)])
def test_traced_out_of_range_q_learning_indices_give_nan(field, value):
    q = jax.random.normal(jax.random.PRNGKey(0), (4, 2))
    args = dict(s=0, a=1, s_next=2)
    update = jax.jit(
        lambda s, a, s_next: qlearning.q_learning_update(q, s, a, 0.5, s_next, 0.1, 0.9)
    )
    want = qlearning.q_learning_update(q, 0, 1, 0.5, 2, 0.1, 0.9)
    np.testing.assert_array_equal(update(**args), want)
    args[field] = value
    assert np.all(np.isnan(update(**args)))


def test_sampling_an_empty_buffer_under_jit_gives_nan():
    buf = replay.init(4, {"x": jnp.zeros(2), "i": jnp.asarray(0)})
    sample = jax.jit(lambda b: replay.sample(jax.random.PRNGKey(0), b, 3))
    batch = sample(buf)
    assert np.all(np.isnan(batch["x"])) and batch["i"].dtype == buf.data["i"].dtype
    full = replay.add(buf, {"x": jnp.ones(2), "i": jnp.asarray(7)})
    for k, v in sample(full).items():
        np.testing.assert_array_equal(v, replay.sample(jax.random.PRNGKey(0), full, 3)[k])


# --------------------------------------------------------------------------- strings in numbers


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: D.gaussian_log_prob(jnp.zeros(2), "x", jnp.zeros(2)), "log_std"),
        (lambda: D.gaussian_log_prob(jnp.zeros(2), 0.0, "ab"), "x"),
        (lambda: D.gaussian_sample(jax.random.PRNGKey(0), "ab", 0.0), "mean"),
        (lambda: D.truncated_normal_log_prob("0", 1.0, -1.0, 1.0, 0.0), "loc"),
        (lambda: D.truncated_normal_icdf(0.0, 1.0, None, 1.0, 0.5), "low"),
        (lambda: D.truncated_normal_entropy(0.0, 1.0, -1.0, "1"), "high"),
        (lambda: D.kumaraswamy_log_prob(2.0, 3.0, "0.5"), "x"),
        (lambda: D.kumaraswamy_icdf(2.0, 3.0, "0.5"), "u"),
        (lambda: D.truncated_normal_icdf(0.0, 1.0, -1.0, 1.0, "0.5"), "u"),
        (lambda: D.tanh_gaussian_log_prob(jnp.zeros(1), jnp.zeros(1), np.array(["a"])), "a"),
        (lambda: D.categorical_sample(jax.random.PRNGKey(0), np.array(["a", "b"])), "logits"),
        (lambda: E.control_variate(1.0, "c", 0.0, 1.0), "control"),
        (lambda: E.control_variate(1.0, 0.5, 0.0, "beta"), "coefficient"),
        (lambda: E.optimal_coefficient(np.array(["a", "b"]), np.ones(2)), "estimates"),
        (lambda: E.optimal_coefficient(np.ones(2), np.array(["a", "b"])), "controls"),
    ],
)
def test_strings_in_distribution_and_estimator_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --------------------------------------------------------------------------- supports


def test_tanh_gaussian_log_prob_is_minus_infinity_off_the_open_box():
    mean, log_std = jnp.array([0.3, -0.2]), jnp.array([-0.1, 0.4])
    for a in ([1.0, 0.0], [0.2, -1.0], [1.5, 0.0], [0.0, -3.0]):
        assert D.tanh_gaussian_log_prob(mean, log_std, jnp.array(a)) == -jnp.inf
    a = jnp.array([0.999, -0.5])  # inside: the formula, unchanged
    u = jnp.arctanh(jnp.clip(a, -1.0 + 1e-6, 1.0 - 1e-6))
    want = D.gaussian_log_prob(mean, log_std, u) - D.tanh_log_det_jacobian(u)
    assert D.tanh_gaussian_log_prob(mean, log_std, a) == want


def test_gumbel_softmax_log_prob_is_minus_infinity_off_the_simplex():
    logits, tau = jnp.array([0.2, -0.3, 0.5]), 0.7
    for y in ([0.0, 0.5, 0.5], [0.2, 0.2, 0.2], [0.5, 0.5, 0.5], [1.0, 0.0, 0.0]):
        lp = D.gumbel_softmax_log_prob(logits, tau, jnp.array(y))
        assert lp == -jnp.inf, (y, lp)
    lp = jax.jit(D.gumbel_softmax_log_prob)(logits, tau, jnp.array([0.0, 0.4, 0.6]))
    assert lp == -jnp.inf
    for y in (jax.nn.softmax(jnp.array([0.1, 0.7, -0.3])), jnp.array([0.2, 0.3, 0.5])):
        assert np.isfinite(D.gumbel_softmax_log_prob(logits, tau, y))  # on the simplex


@pytest.mark.parametrize("u", [-0.1, 1.5, float("nan"), [0.5, 2.0]])
def test_inverse_cdfs_refuse_u_outside_the_unit_interval(u):
    with pytest.raises(ValueError, match="u must"):
        D.kumaraswamy_icdf(2.0, 3.0, jnp.asarray(u))
    with pytest.raises(ValueError, match="u must"):
        D.truncated_normal_icdf(0.0, 1.0, -1.0, 1.0, u)
    D.kumaraswamy_icdf(2.0, 3.0, jnp.array([0.0, 0.5, 1.0]))  # the closed interval is fine


# --------------------------------------------------------------------------- temperatures, configs


def test_soft_value_and_soft_bellman_check_the_temperature_in_the_dtype(small_mdp):
    q32 = jnp.zeros((3, 2), jnp.float32)
    with pytest.raises(ValueError, match="temperature"):
        mdp.soft_value(q32, 1e-45)
    with pytest.raises(ValueError, match="temperature"):
        mdp.soft_value(q32, "hot")
    q = jnp.zeros((small_mdp.n_states, small_mdp.n_actions), small_mdp.r.dtype)
    with pytest.raises(ValueError, match="temperature"):
        mdp.soft_bellman_opt_q(small_mdp, q, 0.0)
    tiny = float(np.finfo(small_mdp.r.dtype).tiny) / 4  # reciprocal overflows in the MDP's dtype
    with pytest.raises(ValueError, match="temperature"):
        mdp.soft_bellman_opt_q(small_mdp, q, tiny)
    qq = jax.random.normal(jax.random.PRNGKey(0), (3, 2))
    assert np.array_equal(mdp.soft_value(qq, 0.3), 0.3 * jax.nn.logsumexp(qq / 0.3, axis=-1))


def test_ntk_make_train_refuses_preqn_without_damping():
    m = mdp.garnet(jax.random.PRNGKey(0), 3, 2, dtype=jnp.float32)
    data = offline_q.sample_dataset(jax.random.PRNGKey(0), m, jnp.full((3, 2), 1 / 6), 10)
    cfg = offline_q.Config(
        method="preqn", hidden=(4,), n_steps=20, log_every=10, batch_size=4, damping=0.0
    )
    with pytest.raises(ValueError, match="damping"):
        offline_q.make_train(cfg, m, jnp.eye(3), data)
    offline_q.make_train(dataclasses.replace(cfg, damping=1e-3), m, jnp.eye(3), data)


def test_fqi_and_svg_infinity_configs_are_checked_when_built():
    with pytest.raises(ValueError, match="config.window"):
        fqi.Config(window=0)
    with pytest.raises(ValueError, match="config.gamma"):
        dataclasses.replace(fqi.Config(), gamma=1.0)
    with pytest.raises(ValueError, match="config.total_steps"):
        svg.InfinityConfig(total_steps=300)
    assert dataclasses.replace(fqi.Config(), actor="regression").actor == "regression"
    assert dataclasses.replace(svg.InfinityConfig(), lr=2e-3).lr == 2e-3


# --------------------------------------------------------------------------- small named errors


@pytest.mark.parametrize("make", [counterexamples.baird_star, counterexamples.two_state])
def test_counterexamples_refuse_an_integer_dtype(make):
    """An integer dtype made γ = 0.9 into 0 (two_state) or failed as a row-sum error."""
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        make(dtype=jnp.int32)
    assert make(dtype=jnp.float32).mdp.gamma.dtype == jnp.float32


def test_cartpole_refuses_a_vector_action():
    env = envs.CartPole()
    _, state = env.reset(jax.random.PRNGKey(0), env.default_params)
    with pytest.raises(ValueError, match="action must be a scalar"):
        env.step(jax.random.PRNGKey(1), state, jnp.array([1]), env.default_params)


def test_replay_refuses_a_transition_of_another_shape():
    buf = replay.init(4, {"x": jnp.zeros(2), "r": jnp.zeros(())})
    with pytest.raises(ValueError, match="transition leaves must have shape"):
        replay.add(buf, {"x": jnp.zeros(3), "r": 1.0})
    with pytest.raises(ValueError, match="transitions leaves must have shape"):
        replay.add_batch(buf, {"x": jnp.zeros((2, 3)), "r": jnp.zeros(2)})
    with pytest.raises(ValueError, match="transitions leaves must have shape"):
        replay.add_batch(buf, {"x": jnp.zeros(2), "r": jnp.zeros(())})
    assert int(replay.add(buf, {"x": jnp.ones(2), "r": 1.0}).size) == 1


def test_optimal_coefficient_refuses_a_constant_control():
    g = jnp.array([1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="controls must vary"):
        E.optimal_coefficient(g, jnp.full(3, 0.1))
    np.testing.assert_allclose(E.optimal_coefficient(g, g), 1.0, rtol=1e-6)
    assert bool(jnp.isnan(jax.jit(E.optimal_coefficient)(g, jnp.full(3, 0.5))))


def test_score_function_term_takes_a_pytree_baseline():
    """One baseline per coordinate, given as a pytree like θ (a dict's ndim is 0 too)."""
    f = lambda x, th: jnp.sum(th["w"] * x)  # noqa: E731
    log_prob = lambda th, x: -0.5 * jnp.sum((x - th["w"]) ** 2)  # noqa: E731
    theta, x = {"w": jnp.array([0.3, -0.2])}, jnp.array([1.0, 0.5])
    b = {"w": jnp.array([0.1, 0.7])}
    got = E.score_function_term(f, log_prob, theta, x, baseline=b)
    fx = float(f(x, theta))
    want = (fx - b["w"]) * (x - theta["w"]) + x  # score of N(w, I) is x − w
    np.testing.assert_allclose(got["w"], want, rtol=1e-6)
    scalar = E.score_function_term(f, log_prob, theta, x, baseline=0.1)
    np.testing.assert_allclose(scalar["w"], (fx - 0.1) * (x - theta["w"]) + x, rtol=1e-6)


def test_networks_name_their_input():
    """nets.mlp_apply names the input as its caller does; the agents' networks say 'obs'."""
    params = nets.mlp_init(jax.random.PRNGKey(0), [3, 4, 2])
    with pytest.raises(ValueError, match="input_name"):
        nets.mlp_apply(params, jnp.ones(3), input_name="")
    with pytest.raises(ValueError, match="features must"):
        nets.mlp_apply(params, jnp.ones(2), input_name="features")
    for q in (dqn.q_values, offline_q.q_values):
        with pytest.raises(ValueError, match="obs"):
            q(params, jnp.ones(2))
    with pytest.raises(ValueError, match="obs"):
        offpolicy.actor_apply(params, jnp.full(3, jnp.nan))
