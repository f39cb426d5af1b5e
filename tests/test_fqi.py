"""Fitted Q-iteration (rlbook.agents.fqi): its two maximizers against grid searches and closed
forms, its data set against Pendulum-v1, and its refusals of bad arguments."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import envs
from rlbook.agents import fqi


def test_cem_finds_the_closed_form_maximum_of_concave_quadratics():
    """max of −(a − c)ᵀH(a − c) on [−1, 1]² is at a = c when c is inside the box."""

    @jax.jit
    def solve(key, c, h):
        return fqi.cem_maximize(key, lambda a: -(a - c) @ h @ (a - c), jnp.zeros(2), 1.0)

    rng = np.random.default_rng(0)
    for i in range(10):
        c = rng.uniform(-0.8, 0.8, 2)
        b = rng.normal(size=(2, 2))
        h = b @ b.T + 0.5 * np.eye(2)
        a, v = solve(jax.random.PRNGKey(i), jnp.asarray(c), jnp.asarray(h))
        np.testing.assert_allclose(a, c, atol=0.05)
        assert -1e-3 <= float(v) <= 0.0
    # an unconstrained maximizer outside the box: the maximum is on the boundary
    a, v = fqi.cem_maximize(
        jax.random.PRNGKey(0), lambda a: -jnp.sum((a - 2.0) ** 2), jnp.zeros(1), 1.0
    )
    np.testing.assert_allclose(a, [1.0])
    np.testing.assert_allclose(v, -1.0)


def test_cem_matches_a_grid_search_on_multimodal_functions():
    """f(a) = Σ_k w_k sin(ω_k a + φ_k), several local maxima on [−1, 1]: CEM's value is
    within 1e-3 of the range of f of a 20,001-point grid's maximum."""
    rng = np.random.default_rng(1)
    grid = np.linspace(-1, 1, 20_001)
    solve = jax.jit(
        lambda key, w, om, ph: fqi.cem_maximize(
            key,
            lambda a: jnp.sum(w * jnp.sin(om * a[0] + ph)),
            jnp.zeros(1),
            1.0,
            n_samples=128,
            n_iters=15,
        )
    )
    for i in range(10):
        w, om, ph = rng.normal(size=3), rng.uniform(2, 12, 3), rng.uniform(0, 2 * np.pi, 3)
        vals = (w * np.sin(om * grid[:, None] + ph)).sum(1)
        a, v = solve(jax.random.PRNGKey(i), *map(jnp.asarray, (w, om, ph)))
        np.testing.assert_allclose(float(v), (w * np.sin(om * float(a[0]) + ph)).sum(), rtol=1e-6)
        assert float(v) >= vals.max() - 1e-3 * (vals.max() - vals.min())
        assert float(v) <= vals.max() + 1e-6


def test_cem_is_jittable_and_vmappable():
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    cs = jnp.linspace(-0.5, 0.5, 4)
    a, v = jax.jit(
        jax.vmap(
            lambda k, c: fqi.cem_maximize(k, lambda a: -jnp.sum((a - c) ** 2), jnp.zeros(1), 0.5)
        )
    )(keys, cs)
    np.testing.assert_allclose(a[:, 0], cs, atol=0.05)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(f=1.0), "f"),
        (dict(mean=jnp.zeros((1, 1))), "mean"),
        (dict(mean=jnp.array([jnp.nan])), "mean"),
        (dict(std=0.0), "std"),
        (dict(std=jnp.ones(2)), "std"),
        (dict(n_samples=0), "n_samples"),
        (dict(n_elite=100), "n_elite"),
        (dict(n_iters=1.5), "n_iters"),
        (dict(low=1.0, high=-1.0), "low"),
        (dict(high=jnp.inf), "high"),
        (dict(min_std=-1.0), "min_std"),
        (dict(key=jnp.zeros(3)), "key"),
    ],
)
def test_cem_refuses_bad_arguments_by_name(kwargs, name):
    args = dict(key=jax.random.PRNGKey(0), f=lambda a: -jnp.sum(a**2), mean=jnp.zeros(1), std=1.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        fqi.cem_maximize(**args)


def test_maximize_finds_the_maximum_of_known_functions():
    @jax.jit
    def solve(c):
        return fqi.maximize(lambda a: -jnp.sum((a - c) ** 2) + 0.1 * jnp.sum(jnp.cos(5 * a)))

    for c in (-0.7, 0.0, 0.35):
        a, v = solve(jnp.float32(c))
        grid = np.linspace(-1, 1, 20001)
        vals = -((grid - c) ** 2) + 0.1 * np.cos(5 * grid)
        assert abs(float(a[0]) - grid[np.argmax(vals)]) < 5e-3
        np.testing.assert_allclose(float(v), vals.max(), atol=1e-4)
    # a maximizer outside the box is projected onto its boundary
    a, _ = jax.jit(lambda: fqi.maximize(lambda a: jnp.sum(a)))()
    np.testing.assert_array_equal(a, [1.0])


def test_fqi_dataset_is_pendulum_and_configs_are_validated():
    data = fqi.random_dataset(jax.random.PRNGKey(0), 16)
    env, params = envs.make("Pendulum-v1")
    th = jnp.arctan2(data.obs[:, 1], data.obs[:, 0])
    for i in range(3):
        st = envs.PendulumState(th[i], data.obs[i, 2], jnp.asarray(0, jnp.int32))
        _, obs, r, _ = env.step_env(st, data.action[i] * 2.0, params)
        np.testing.assert_allclose(obs, data.next_obs[i], atol=1e-5)
        np.testing.assert_allclose(r, data.reward[i], rtol=1e-5)
    for field, value in [
        ("iterations", 0),
        ("gamma", 1.0),
        ("lr", 0.0),
        ("actor", "max"),
        ("window", 0),
    ]:
        with pytest.raises(ValueError, match=field):
            fqi.run(
                jax.random.PRNGKey(0), data, dataclasses.replace(fqi.Config(), **{field: value})
            )
