"""rlbook.agents.offline_q: the step against ntk's generic steps, the dataset against ρ and P."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import mdp, nets, ntk
from rlbook.agents import offline_q


def test_offline_q_semi_gradient_update_matches_the_generic_step():
    m = mdp.garnet(jax.random.PRNGKey(2), 4, 2, branching=2, gamma=0.9, dtype=jnp.float32)
    obs = jnp.asarray(np.random.default_rng(13).normal(size=(4, 3)), jnp.float32)
    # every pair once, so the batch kernel is invertible
    data = {
        "s": jnp.repeat(jnp.arange(4), 2),
        "a": jnp.tile(jnp.arange(2), 4),
        "r": m.r.ravel(),
        "s_next": jnp.asarray([1, 2, 3, 0, 2, 3, 0, 1]),
    }
    cfg = offline_q.Config(learning_rate=0.2, hidden=(6,))
    params = nets.mlp_init(jax.random.PRNGKey(4), [3, 6, 2])
    got = offline_q.update(cfg, params, params, data, obs, m.gamma)
    # the same step from semi_gradient_step: ρ puts 1/B on each sampled pair
    delta = (
        offline_q.targets(params, data, obs, m.gamma)
        - offline_q.q_values(params, obs[data["s"]])[jnp.arange(8), data["a"]]
    )
    f = lambda p: offline_q.q_values(p, obs[data["s"]])[jnp.arange(8), data["a"]]  # noqa: E731
    want = ntk.semi_gradient_step(
        lambda p: f(p), params, jnp.full(8, 1 / 8, jnp.float32), delta, 0.2
    )
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # and PreQN moves the batch by α δ to first order
    new = offline_q.update(
        offline_q.Config(method="preqn", learning_rate=1e-3, hidden=(6,), damping=0.0),
        params,
        params,
        data,
        obs,
        m.gamma,
    )
    moved = np.asarray(f(new) - f(params))
    np.testing.assert_allclose(moved, 1e-3 * np.asarray(delta), rtol=0.05, atol=2e-5)


def test_make_train_runs_both_methods_and_vmaps_over_seeds():
    m = mdp.garnet(jax.random.PRNGKey(5), 4, 2, branching=1, gamma=0.5, dtype=jnp.float32)
    obs = jnp.eye(4, dtype=jnp.float32)
    data = offline_q.sample_dataset(jax.random.PRNGKey(6), m, jnp.full((4, 2), 1 / 8), 64)
    for method in ("semi-gradient", "preqn"):
        cfg = offline_q.Config(
            method=method, learning_rate=0.3, hidden=(16,), batch_size=8, n_steps=300, log_every=100
        )
        _, met = jax.jit(jax.vmap(offline_q.make_train(cfg, m, obs, data)))(
            jax.random.split(jax.random.PRNGKey(7), 2)
        )
        assert met["error"].shape == (2, 3)
        # deterministic MDP, full coverage: both approach Q*
        assert np.all(np.asarray(met["error"][:, -1]) < np.asarray(met["error"][:, 0]))


def test_sample_dataset_follows_rho_and_P():
    m = mdp.garnet(jax.random.PRNGKey(8), 3, 2, branching=1, gamma=0.5)
    rho = np.array([[0.5, 0.0], [0.25, 0.0], [0.0, 0.25]])
    data = offline_q.sample_dataset(jax.random.PRNGKey(9), m, jnp.asarray(rho), 4000)
    s, a, s2 = map(np.asarray, (data["s"], data["a"], data["s_next"]))
    counts = np.zeros((3, 2))
    np.add.at(counts, (s, a), 1)
    # binomial standard error ≤ sqrt(0.25 / 4000) ≈ 0.008; 5 standard errors
    np.testing.assert_allclose(counts / 4000, rho, atol=0.04)
    np.testing.assert_array_equal(np.asarray(m.P)[s, a, s2], 1.0)


def test_bad_input_raises_value_error_naming_the_argument():
    m = mdp.garnet(jax.random.PRNGKey(0), 3, 2)
    for field, kwargs in [
        ("method", {"method": "adam"}),
        ("learning_rate", {"learning_rate": 0.0}),
        ("batch_size", {"batch_size": 0}),
        ("hidden", {"hidden": ()}),
        ("log_every", {"n_steps": 10, "log_every": 3}),
        ("damping", {"damping": -1.0}),
    ]:
        with pytest.raises(ValueError, match=field):
            offline_q.Config(**kwargs)
    with pytest.raises(ValueError, match="config must be"):
        offline_q.make_train({"learning_rate": 1}, m, np.ones((3, 2)), {})
    with pytest.raises(ValueError, match="obs must have one row per state"):
        offline_q.make_train(offline_q.Config(), m, np.ones((4, 2)), {})
