"""rlbook.agents.dqn: TD targets, the plain-loop update against the jitted one, configs,
training."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import envs, nets
from rlbook.agents import dqn


def random_batch(seed, B=16, obs_dim=4, n_actions=2, terminated_frac=0.3):
    rng = np.random.default_rng(seed)
    return dqn.Transition(
        obs=jnp.asarray(rng.normal(size=(B, obs_dim)), jnp.float32),
        action=jnp.asarray(rng.integers(0, n_actions, B), jnp.int32),
        reward=jnp.asarray(rng.normal(size=B), jnp.float32),
        next_obs=jnp.asarray(rng.normal(size=(B, obs_dim)), jnp.float32),
        terminated=jnp.asarray(rng.uniform(size=B) < terminated_frac),
    )


def make_learner(config, seed=0, obs_dim=4, n_actions=2):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    params = nets.mlp_init(k1, [obs_dim, *config.hidden, n_actions])
    target = nets.mlp_init(k2, [obs_dim, *config.hidden, n_actions])  # a different φ̄
    optimizer = dqn.make_optimizer(config)
    return dqn.Learner(params, target, optimizer.init(params), jnp.asarray(0, jnp.int32)), optimizer


def test_targets_mask_termination_only():
    q_next = jnp.array([[1.0, 3.0], [2.0, -1.0], [0.5, 0.25]], jnp.float32)
    reward = jnp.array([1.0, 1.0, -2.0], jnp.float32)
    terminated = jnp.array([False, True, False])
    y = dqn.targets(q_next, reward, terminated, 0.9)
    np.testing.assert_allclose(y, [1.0 + 0.9 * 3.0, 1.0, -2.0 + 0.9 * 0.5], rtol=1e-6)
    assert y.dtype == jnp.float32


def test_truncated_transitions_bootstrap_from_the_pre_reset_observation():
    """Through CartPole: the time limit sets truncated but not terminated, and s' is kept."""
    env = envs.CartPole()
    config = dqn.DQNConfig(
        hidden=(8,), total_steps=100, log_every=100, learning_starts=64, n_envs=2
    )
    params = nets.mlp_init(jax.random.PRNGKey(0), [4, 8, 2])
    short = env.default_params._replace(max_steps=3)
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.PRNGKey(1), 2), short)
    actor = dqn.Actor(
        state,
        obs,
        jnp.asarray(0, jnp.int32),
        jnp.zeros(2, jnp.float32),
        jnp.asarray(0.0, jnp.float32),
        jnp.asarray(0, jnp.int32),
    )
    rollout = jax.jit(dqn.rollout, static_argnums=(3, 4, 5))
    for k in range(3):
        before = actor
        actor, tr = rollout(jax.random.PRNGKey(10 + k), params, actor, config, env, short)
    # Step 3 hit the time limit in both environments (CartPole cannot fall in 3 steps from reset).
    assert not np.any(tr.terminated)
    assert int(actor.finished_count) == 2 and float(actor.finished_return) == 6.0
    np.testing.assert_array_equal(tr.obs, before.obs)
    assert not np.allclose(tr.next_obs, actor.obs)  # s' is the pre-reset observation
    q_next = dqn.q_values(params, tr.next_obs)
    np.testing.assert_allclose(
        dqn.targets(q_next, tr.reward, tr.terminated, 0.99), 1.0 + 0.99 * q_next.max(-1), rtol=1e-6
    )
    # A pole past 12° terminates: the stored transition is terminal and its target is r.
    falling = state._replace(theta=jnp.full(2, 0.25, jnp.float32))
    actor = actor._replace(env_state=falling, obs=jax.vmap(env.observe)(falling))
    actor, tr = rollout(jax.random.PRNGKey(20), params, actor, config, env, short)
    assert np.all(tr.terminated)
    np.testing.assert_allclose(dqn.targets(q_next, tr.reward, tr.terminated, 0.99), 1.0)


@pytest.mark.parametrize("use_target,huber_delta", [(True, 1.0), (True, None), (False, 1.0)])
def test_readable_update_agrees_with_the_jitted_update(use_target, huber_delta):
    config = dqn.DQNConfig(
        hidden=(16, 16),
        use_target=use_target,
        huber_delta=huber_delta,
        target_period=2,
        target_tau=0.5,
        learning_rate=3e-3,
    )
    learner, optimizer = make_learner(config)
    fast = jax.jit(lambda learner, b: dqn.update(learner, b, config, optimizer)[0])
    slow = learner
    for i in range(2):  # the target moves at update 2
        batch = random_batch(i, B=8)
        batch = batch._replace(reward=batch.reward * 5)  # TD errors beyond the Huber threshold
        learner, slow = fast(learner, batch), dqn.readable_update(slow, batch, config, optimizer)
        for a, b in zip(
            jax.tree_util.tree_leaves(learner), jax.tree_util.tree_leaves(slow), strict=True
        ):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert int(learner.n_updates) == 2


def test_no_target_network_is_a_target_copied_after_every_update():
    base = dqn.DQNConfig(hidden=(16,))
    plain = dataclasses.replace(base, use_target=False)
    copied = dataclasses.replace(base, target_period=1, target_tau=1.0)
    l1, optimizer = make_learner(base)
    l1 = l1._replace(target_params=l1.params)
    l2 = l1
    for i in range(3):
        l1 = dqn.update(l1, random_batch(i), plain, optimizer)[0]
        l2 = dqn.update(l2, random_batch(i), copied, optimizer)[0]
    for a, b in zip(jax.tree_util.tree_leaves(l1), jax.tree_util.tree_leaves(l2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_loss_is_the_mean_huber_td_error():
    config = dqn.DQNConfig(hidden=(8,))
    learner, _ = make_learner(config)
    b = random_batch(3)
    value, q_sa = dqn.loss(learner.params, learner.target_params, b, 0.9, 1.0)
    q = np.asarray(dqn.q_values(learner.params, b.obs))
    q_next = np.asarray(dqn.q_values(learner.target_params, b.next_obs))
    y = np.asarray(b.reward) + 0.9 * (1 - np.asarray(b.terminated)) * q_next.max(-1)
    td = q[np.arange(16), np.asarray(b.action)] - y
    huber = np.where(np.abs(td) <= 1, 0.5 * td**2, np.abs(td) - 0.5)
    np.testing.assert_allclose(value, huber.mean(), rtol=1e-5)
    np.testing.assert_allclose(q_sa, q[np.arange(16), np.asarray(b.action)], rtol=1e-6)


def test_epsilon_schedule_and_epsilon_greedy():
    config = dqn.DQNConfig(epsilon_start=1.0, epsilon_end=0.1, epsilon_steps=100)
    np.testing.assert_allclose(
        [dqn.epsilon(config, t) for t in (0, 50, 100, 1000)], [1.0, 0.55, 0.1, 0.1], rtol=1e-6
    )
    q = jnp.tile(jnp.array([0.0, 1.0, 0.5]), (4000, 1))
    greedy = dqn.epsilon_greedy(jax.random.PRNGKey(0), q, 0.0)
    np.testing.assert_array_equal(greedy, 1)
    mixed = np.asarray(dqn.epsilon_greedy(jax.random.PRNGKey(1), q, 0.3))
    # P(greedy) = 0.7 + 0.3 / 3 = 0.8; 5 standard errors of a mean of 4000 Bernoullis.
    assert abs((mixed == 1).mean() - 0.8) < 5 * np.sqrt(0.8 * 0.2 / 4000)


def test_train_runs_jitted_and_vmapped_in_float32():
    config = dqn.DQNConfig(
        total_steps=400,
        n_envs=2,
        hidden=(16,),
        learning_starts=64,
        buffer_size=256,
        batch_size=32,
        log_every=200,
        train_every=2,
        target_period=10,
    )
    train = jax.jit(jax.vmap(dqn.make_train(config)))
    (learner, actor, buffer), metrics = train(jax.random.split(jax.random.PRNGKey(0), 2))
    assert metrics["train_return"].shape == (2, 2) and config.log_steps.tolist() == [200, 400]
    assert np.all(np.asarray(metrics["train_return"]) >= 1.0)
    assert int(actor.t[0]) == 400 and int(buffer.size[0]) == 256
    # the last snapshot is the final φ, and the greedy evaluation runs on any snapshot
    last = jax.tree_util.tree_map(lambda x: x[0, -1], metrics["params"])
    for a, b in zip(
        jax.tree_util.tree_leaves(last), jax.tree_util.tree_leaves(learner.params), strict=True
    ):
        np.testing.assert_array_equal(a, b[0])
    env, params = envs.make("CartPole-v1")
    returns = dqn.evaluate(jax.random.PRNGKey(1), last, env, params._replace(max_steps=50), 3)
    assert returns.shape == (3,) and np.all((returns >= 1) & (returns <= 50))
    # one update per iteration of 4 transitions, once at least learning_starts are stored
    assert int(learner.n_updates[0]) == sum(4 * i >= 64 for i in range(1, 101))
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(learner.params))
    assert np.all(np.isfinite(np.asarray(metrics["loss"])))


@pytest.mark.parametrize(
    "field,value",
    [
        ("total_steps", 0),
        ("n_envs", -1),
        ("hidden", (64, 0)),
        ("hidden", [64]),
        ("learning_rate", 0.0),
        ("gamma", 1.0),
        ("buffer_size", 0),
        ("batch_size", 0),
        ("learning_starts", 10),
        ("train_every", 0),
        ("target_period", 0),
        ("target_tau", 0.0),
        ("target_tau", 1.5),
        ("epsilon_start", 1.5),
        ("epsilon_end", -0.1),
        ("epsilon_steps", 0),
        ("huber_delta", 0.0),
        ("max_grad_norm", -1.0),
        ("log_every", 3_000),
        ("log_every", 0),
    ],
)
def test_bad_configs_raise_value_errors_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        dqn.DQNConfig(**{field: value})


def test_make_train_rejects_a_non_config():
    with pytest.raises(ValueError, match="config"):
        dqn.make_train({"total_steps": 10})
    with pytest.raises(ValueError, match="learning_starts"):
        dqn.DQNConfig(total_steps=1_000, log_every=1_000, learning_starts=1_000)
