"""rlbook.agents.trpo: the line search against a plain-numpy rule, its KL limit, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from rlbook import policies
from rlbook.agents import trpo


def _quadratic_problem():
    """L(θ) = cᵀθ − ½‖θ‖², "KL"(θ, θ') = ½‖θ' − θ‖²·w: a case with closed-form candidates."""
    c = jnp.array([1.0, -2.0, 0.5])
    params = {"a": jnp.zeros(2), "b": jnp.zeros(1)}

    def objective(p):
        x = ravel_pytree(p)[0]
        return c @ x - 0.5 * x @ x

    def kl(p, q):
        return 0.5 * 3.0 * jnp.sum((ravel_pytree(q)[0] - ravel_pytree(p)[0]) ** 2)

    return c, params, objective, kl


def _numpy_line_search(c, step, max_kl, coef, iters):
    """The backtracking rule written out in numpy: first k with L gain > 0 and KL ≤ δ."""
    c, step = np.asarray(c), np.asarray(step)
    for k in range(iters):
        x = coef**k * step
        gain = c @ x - 0.5 * x @ x
        d = 1.5 * x @ x
        if gain > 0 and d <= max_kl:
            return True, k, coef**k, x
    return False, iters - 1, 0.0, np.zeros_like(step)


@pytest.mark.parametrize(
    "scale, max_kl", [(0.1, 0.5), (2.0, 0.5), (2.0, 0.01), (30.0, 0.5), (-1.0, 0.5), (2.0, 1e-9)]
)
def test_line_search_matches_numpy_and_respects_kl(scale, max_kl):
    c, params, objective, kl = _quadratic_problem()
    step = scale * c
    ok, k, frac, x = _numpy_line_search(c, step, max_kl, 0.5, 10)
    for fn in (
        jax.jit(lambda s: trpo.line_search(objective, kl, params, s, max_kl)),
        lambda s: trpo.line_search_loop(objective, kl, params, s, max_kl),
    ):
        out = fn(step)
        assert bool(out.accepted) == ok
        new = np.asarray(ravel_pytree(out.params)[0])
        np.testing.assert_allclose(new, x, rtol=1e-12, atol=1e-15)
        if ok:
            assert int(out.n_tried) == k + 1 and float(out.fraction) == frac
            assert float(out.kl) <= max_kl
            assert float(kl(params, out.params)) <= max_kl
            assert float(out.improvement) > 0
        else:
            assert int(out.n_tried) == 10 and float(out.kl) == 0.0


def test_line_search_rejects_every_step_that_breaks_the_kl_limit():
    # full step with KL ≫ δ: candidates 0, 1, … must be rejected until KL ≤ δ
    c, params, objective, kl = _quadratic_problem()
    step = 0.5 * c  # improves L at every fraction
    kls = [1.5 * (0.5**k) ** 2 * float(step @ step) for k in range(10)]
    max_kl = 0.02
    first_ok = next(k for k, d in enumerate(kls) if d <= max_kl)
    assert first_ok >= 2  # the test needs rejections
    out = trpo.line_search(objective, kl, params, step, max_kl)
    assert bool(out.accepted) and int(out.n_tried) == first_ok + 1
    assert float(out.kl) <= max_kl < kls[first_ok - 1]


def test_line_search_on_a_policy_keeps_kl_below_delta():
    policy = policies.SoftmaxPolicy(4, 2, (8,))
    params = policy.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 4))
    action = jax.random.bernoulli(jax.random.PRNGKey(2), 0.5, (64,)).astype(jnp.int32)
    adv = jax.random.normal(jax.random.PRNGKey(3), (64,))
    old = jax.vmap(policy.log_prob, (None, 0, 0))(params, obs, action)
    L = trpo.surrogate(policy, obs, action, old, adv)
    kl = trpo.mean_kl(policy, obs)
    g = ravel_pytree(jax.grad(L)(params))[0]
    for delta in (1e-4, 1e-2):
        step = 10.0 * g  # a step far outside the region
        assert float(kl(params, ravel_pytree(params)[1](ravel_pytree(params)[0] + step))) > delta
        out = trpo.line_search(L, kl, params, step, delta, backtrack_iters=30)
        assert bool(out.accepted) and float(kl(params, out.params)) <= delta
        assert int(out.n_tried) > 1


def test_surrogate_and_mean_kl_against_numpy():
    policy = policies.SoftmaxPolicy(3, 4, (5,))
    p, q = policy.init(jax.random.PRNGKey(0)), policy.init(jax.random.PRNGKey(1))
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (10, 3)), np.float64)
    action = np.arange(10) % 4
    adv = np.linspace(-1, 1, 10)
    logits_p = np.stack([np.asarray(policy.logits(p, o)) for o in obs])
    logits_q = np.stack([np.asarray(policy.logits(q, o)) for o in obs])
    lp = logits_p - np.log(np.exp(logits_p).sum(-1, keepdims=True))
    lq = logits_q - np.log(np.exp(logits_q).sum(-1, keepdims=True))
    ref_L = np.mean(np.exp(lq[np.arange(10), action] - lp[np.arange(10), action]) * adv)
    ref_kl = np.mean(np.sum(np.exp(lp) * (lp - lq), -1))
    L = trpo.surrogate(policy, obs, action, lp[np.arange(10), action], adv)
    np.testing.assert_allclose(L(q), ref_L, rtol=1e-10)
    np.testing.assert_allclose(trpo.mean_kl(policy, obs)(p, q), ref_kl, rtol=1e-10)


def test_train_every_accepted_step_is_inside_the_region():
    config = trpo.Config(n_updates=3, n_envs=2, n_steps=16, hidden=(4,), max_kl=0.01)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    _, metrics = jax.jit(jax.vmap(trpo.make_train(config)))(keys)
    assert metrics["kl"].shape == (2, 3)
    assert np.all(np.asarray(metrics["kl"]) <= 0.01)
    np.testing.assert_allclose(metrics["predicted_kl"], 0.01, rtol=1e-3)


def test_value_errors():
    c, params, objective, kl = _quadratic_problem()
    with pytest.raises(ValueError, match="full_step"):
        trpo.line_search(objective, kl, params, jnp.ones(4), 0.1)
    with pytest.raises(ValueError, match="max_kl"):
        trpo.line_search(objective, kl, params, jnp.ones(3), -0.1)
    with pytest.raises(ValueError, match="backtrack_coef"):
        trpo.line_search_loop(objective, kl, params, jnp.ones(3), 0.1, backtrack_coef=1.5)
    with pytest.raises(ValueError, match="backtrack_iters"):
        trpo.line_search(objective, kl, params, jnp.ones(3), 0.1, backtrack_iters=0)
    policy = policies.SoftmaxPolicy(3, 2, (4,))
    with pytest.raises(ValueError, match="advantage"):
        trpo.surrogate(policy, jnp.ones((5, 3)), jnp.zeros(5, int), jnp.zeros(5), jnp.zeros(4))
    with pytest.raises(ValueError, match="obs"):
        trpo.surrogate(policy, jnp.ones((6, 3)), jnp.zeros(5, int), jnp.zeros(5), jnp.zeros(5))
    with pytest.raises(ValueError, match="obs"):
        trpo.mean_kl(policy, jnp.ones(3))
    for field, value in (
        ("env_name", "Acrobot-v1"),
        ("max_kl", 0.0),
        ("backtrack_coef", 1.0),
        ("n_steps", 0),
        ("gamma", 1.0),
        ("hidden", [4]),
        ("damping", -1.0),
        ("normalize_advantages", 1),
    ):
        with pytest.raises(ValueError, match=field):
            trpo.Config(**{field: value})
    with pytest.raises(ValueError, match="max_kl"):
        trpo.make_train(trpo.Config(n_updates=1, n_envs=1, n_steps=2, hidden=(2,)))(
            jax.random.PRNGKey(0), max_kl=-1.0
        )
