"""rlbook.agents.reinforce: the readable loop and the scanned agent give the same updates."""

import dataclasses

import jax
import numpy as np
import pytest

from rlbook.agents import reinforce as R


@pytest.mark.parametrize(
    "config",
    [
        R.Config(n_updates=2, n_episodes=3, horizon=40, hidden=(8,), learning_rate=0.05),
        R.Config(
            env_name="Pendulum-v1",
            n_updates=2,
            n_episodes=2,
            horizon=12,
            hidden=(8,),
            learning_rate=0.05,
            gamma=0.9,
            reward_to_go=False,
            discount_states=True,
        ),
    ],
    ids=["cartpole-reward-to-go", "pendulum-whole-return-discounted"],
)
def test_scanned_training_equals_the_readable_loop(config):
    key = jax.random.PRNGKey(7)
    state, metrics = jax.jit(R.make_train(config))(key)
    assert metrics["return"].shape == (config.n_updates,)
    # The same run by update_loop: same initial parameters, same per-update keys.
    _, _, policy, optimizer, _ = R.components(config)
    k_init, k_updates = jax.random.split(key)
    params = policy.init(k_init)
    opt_state = optimizer.init(params)
    for k in jax.random.split(k_updates, config.n_updates):
        params, opt_state, g_hat = R.update_loop(k, params, opt_state, config)
        assert max(float(np.abs(g).max()) for g in jax.tree_util.tree_leaves(g_hat)) > 0
    leaves = jax.tree_util.tree_leaves
    for got, want in zip(leaves(state.params), leaves(params), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-6)


@pytest.mark.parametrize(
    "field, value",
    [
        ("env_name", "MountainCar-v0"),
        ("n_updates", 0),
        ("n_episodes", -1),
        ("horizon", 0),
        ("gamma", 1.5),
        ("learning_rate", 0.0),
        ("hidden", (32, 0)),
        ("hidden", [32]),
        ("anneal_lr", 1),
        ("reward_to_go", "yes"),
        ("discount_states", None),
    ],
)
def test_invalid_configs_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(R.Config(), **{field: value})


def test_config_is_frozen_and_documented():
    with pytest.raises(dataclasses.FrozenInstanceError):
        R.Config().gamma = 0.5
    source = __import__("inspect").getsource(R.Config)
    for f in dataclasses.fields(R.Config):
        assert f"{f.name}:" in source and '"""' in source.split(f"{f.name}:")[1].splitlines()[1]
