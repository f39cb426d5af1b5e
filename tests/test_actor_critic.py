"""rlbook.agents.actor_critic: config validation, loop/scan agreement, reproducibility."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook.agents import actor_critic


def small_config(**kw):
    base = dict(n_updates=3, n_envs=2, n_steps=8, hidden=(8,), gae_lambda=0.9)
    base.update(kw)
    return actor_critic.Config(**base)


@pytest.mark.parametrize(
    "field, value",
    [
        ("env_name", "MountainCar-v0"),
        ("n_updates", 0),
        ("n_envs", -1),
        ("gamma", 1.0),
        ("gae_lambda", 1.5),
        ("learning_rate", 0.0),
        ("n_minibatches", 3),
        ("hidden", (8, 0)),
        ("normalize_advantages", 1),
        ("value_coef", -1.0),
    ],
)
def test_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        small_config(**{field: value})


@pytest.mark.parametrize("epochs, minibatches", [(1, 1), (2, 4)])
def test_readable_update_matches_the_fast_one(epochs, minibatches):
    config = small_config(n_epochs=epochs, n_minibatches=minibatches)
    state = actor_critic.init_state(jax.random.PRNGKey(0), config)
    key = jax.random.PRNGKey(1)
    fast, _ = jax.jit(lambda s, k: actor_critic.make_step(config)(s, k, config.gae_lambda))(
        state, key
    )
    slow = actor_critic.update_loop(key, state, config)
    for a, b in zip(
        jax.tree_util.tree_leaves(fast.params), jax.tree_util.tree_leaves(slow.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_targets_are_gae_of_the_critic():
    config = small_config()
    env, env_params, policy, _ = actor_critic.components(config)
    state = actor_critic.init_state(jax.random.PRNGKey(2), config)
    _, traj, _ = actor_critic.rollout(
        jax.random.PRNGKey(3), policy, state.params, env, env_params, state.env, 64
    )
    adv, tgt = actor_critic.targets(state.params["value"], traj, 0.99, 0.8)
    v = np.asarray(actor_critic.value(state.params["value"], traj.obs), np.float64)
    nv = np.asarray(actor_critic.value(state.params["value"], traj.next_obs), np.float64)
    g = 0.99 * (1.0 - np.asarray(traj.terminated, np.float64))
    r = np.asarray(traj.reward, np.float64)
    done = np.asarray(traj.done)
    ref = np.zeros_like(r)
    later = np.zeros(r.shape[1])
    for t in reversed(range(r.shape[0])):
        later = np.where(done[t] | (t == r.shape[0] - 1), 0.0, later)
        ref[t] = r[t] + g[t] * nv[t] - v[t] + g[t] * 0.8 * later
        later = ref[t]
    assert adv.dtype == jnp.float32
    np.testing.assert_allclose(adv, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tgt, ref + v, rtol=1e-4, atol=1e-4)


def test_train_is_pure_and_vmaps_over_lambda():
    config = small_config()
    train = actor_critic.make_train(config)
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    lams = jnp.array([0.0, 1.0], jnp.float32)
    _, metrics = jax.jit(jax.vmap(jax.vmap(train, (0, None)), (None, 0)))(keys, lams)
    assert metrics["episodes"].shape == (2, 2, config.n_updates)
    _, again = jax.jit(train)(keys[1], lams[0])
    np.testing.assert_allclose(again["return_sum"], metrics["return_sum"][0, 1], rtol=1e-5)
    _, default = jax.jit(train)(keys[1])
    assert np.all(np.isfinite(np.asarray(default["value_loss"])))


@pytest.mark.parametrize("lam", [1.5, -0.1, float("nan")])
def test_train_rejects_a_bad_lambda_before_any_work(lam):
    train = actor_critic.make_train(small_config())
    with pytest.raises(ValueError, match="gae_lambda"):
        train(jax.random.PRNGKey(0), lam)
