"""rlbook.agents.npg: one update against a dense solve with the batch's explicit Fisher matrix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from rlbook import envs

# The agent builds on the REINFORCE chapter's modules; skip until they are present.
policies = pytest.importorskip("rlbook.policies")
reinforce = pytest.importorskip("rlbook.agents.reinforce")
from rlbook.agents import npg  # noqa: E402

SMALL = dict(
    n_episodes=3,
    horizon=20,
    hidden=(4,),
    n_updates=2,
    max_kl=0.01,
    damping=0.1,
    cg_iters=60,
    cg_tol=1e-12,
)


def test_one_update_is_the_kl_sized_solve_of_the_explicit_fisher_system():
    config = npg.Config(**SMALL)
    env, env_params = envs.make(config.env_name)
    policy = policies.for_env(env, config.hidden)
    params = policy.init(jax.random.PRNGKey(0))
    traj, mask = reinforce.rollout(
        jax.random.PRNGKey(1), policy, params, env, env_params, config.n_episodes, config.horizon
    )
    weights = reinforce.targets(traj, mask, config.gamma)
    new_params, step, g_hat = jax.jit(lambda p: npg.update(p, policy, traj, mask, weights, config))(
        params
    )

    # explicit F̂ = masked mean over visited states of Σ_a π(a|s) ∇log π ∇log πᵀ, in numpy
    flat, unravel = ravel_pytree(params)
    obs = np.asarray(traj.obs).reshape(-1, env.obs_dim)[np.asarray(mask).ravel()]

    def log_pi(x, s):
        return jax.nn.log_softmax(policy.logits(unravel(x), s))

    scores = np.asarray(jax.vmap(jax.jacobian(log_pi), (None, 0))(flat, obs), np.float64)
    probs = np.exp(np.asarray(jax.vmap(log_pi, (None, 0))(flat, obs), np.float64))
    F = np.einsum("sai,sa,saj->ij", scores, probs, scores) / len(obs)
    g = np.asarray(ravel_pytree(g_hat)[0], np.float64)
    s = np.linalg.solve(F + config.damping * np.eye(len(g)), g)
    beta = np.sqrt(2 * config.max_kl / (s @ F @ s))
    np.testing.assert_allclose(step.direction, s, rtol=2e-3, atol=1e-5 * np.abs(s).max())
    np.testing.assert_allclose(step.step_size, beta, rtol=2e-3)
    np.testing.assert_allclose(step.predicted_kl, config.max_kl, rtol=1e-4)
    np.testing.assert_allclose(
        ravel_pytree(new_params)[0], flat + beta * s, rtol=2e-3, atol=1e-5 * beta * np.abs(s).max()
    )
    # ĝ is REINFORCE's gradient estimate
    g_ref = jax.grad(reinforce.loss)(params, policy, traj, weights)
    np.testing.assert_allclose(
        g, -np.asarray(ravel_pytree(g_ref)[0]), rtol=1e-5, atol=1e-6 * np.abs(g).max()
    )  # float32 sums in another order


def test_train_is_jittable_and_vmappable_over_seeds():
    config = npg.Config(**SMALL)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    state, metrics = jax.jit(jax.vmap(npg.make_train(config)))(keys)
    assert metrics["return"].shape == (2, config.n_updates)
    np.testing.assert_allclose(metrics["predicted_kl"], config.max_kl, rtol=1e-4)
    assert jnp.all(metrics["kl"] > 0) and jnp.all(metrics["kl"] < 5 * config.max_kl)
    assert jax.tree_util.tree_leaves(state.params)[0].dtype == jnp.float32
    assert not jnp.any(jnp.isnan(ravel_pytree(state.params)[0]))


def test_config_rejects_bad_fields():
    for field, value in [
        ("max_kl", 0.0),
        ("damping", -1.0),
        ("cg_iters", 0),
        ("n_updates", 0),
        ("n_episodes", 1.5),
        ("gamma", 1.5),
        ("hidden", [32]),
        ("env_name", "Pong"),
        ("cg_tol", -1.0),
        ("reward_to_go", 1),
    ]:
        with pytest.raises(ValueError, match=field):
            npg.Config(**{field: value})
