"""rlbook.agents.ppo: the clipped objective against plain numpy, the loss, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import policies
from rlbook.agents import actor_critic, ppo


def _numpy_clipped(ratio, adv, eps):
    """L^CLIP per sample, by cases (Schulman et al. 2017, eq. 7)."""
    out = np.empty_like(ratio)
    for i, (r, a) in enumerate(zip(ratio, adv, strict=True)):
        unclipped = r * a
        clipped = min(max(r, 1 - eps), 1 + eps) * a
        out[i] = unclipped if unclipped < clipped else clipped
    return out


def test_clipped_objective_matches_numpy():
    rng = np.random.default_rng(0)
    ratio = np.exp(rng.normal(scale=0.5, size=1000))
    adv = rng.normal(size=1000)
    for eps in (0.1, 0.2, 0.5):
        np.testing.assert_allclose(
            ppo.clipped_objective(ratio, adv, eps),
            _numpy_clipped(ratio, adv, eps),
            rtol=1e-14,
            atol=1e-15,
        )


def test_gradient_in_ratio_is_advantage_or_zero():
    rng = np.random.default_rng(1)
    ratio = np.exp(rng.normal(scale=0.5, size=500))
    adv = rng.normal(size=500)
    eps = 0.2
    ratio = ratio[np.abs(np.abs(ratio - 1) - eps) > 1e-6]
    adv = adv[: len(ratio)]
    grad = jax.vmap(jax.grad(lambda r, a: ppo.clipped_objective(r, a, eps)))(ratio, adv)
    moving = ((adv > 0) & (ratio < 1 + eps)) | ((adv < 0) & (ratio > 1 - eps))
    np.testing.assert_array_equal(np.asarray(grad), np.where(moving, adv, 0.0))


def test_loss_policy_part_against_numpy():
    policy = policies.SoftmaxPolicy(3, 2, (5,))
    params = {
        "policy": policy.init(jax.random.PRNGKey(0)),
        "value": [{"w": jnp.ones((3, 1)), "b": jnp.zeros(1)}],
    }
    obs = jax.random.normal(jax.random.PRNGKey(1), (20, 3))
    action = jnp.arange(20) % 2
    old = jnp.linspace(-1.0, -0.2, 20)
    adv = jnp.linspace(-2.0, 2.0, 20)
    target = jnp.zeros(20)
    batch = ppo.Batch(obs, action, old, adv, target)
    total, (objective, value_loss, _, clip_fraction) = ppo.loss(
        params, policy, batch, 0.2, 0.5, 0.0, normalize=False
    )
    lp = np.asarray(jax.vmap(policy.log_prob, (None, 0, 0))(params["policy"], obs, action))
    ratio = np.exp(lp - np.asarray(old))
    ref = np.mean(_numpy_clipped(ratio, np.asarray(adv), 0.2))
    np.testing.assert_allclose(objective, ref, rtol=1e-12)
    np.testing.assert_allclose(value_loss, np.mean(np.asarray(obs).sum(-1) ** 2), rtol=1e-12)
    np.testing.assert_allclose(total, -ref + 0.5 * value_loss, rtol=1e-12)
    np.testing.assert_allclose(clip_fraction, np.mean(np.abs(ratio - 1) > 0.2))


def test_train_shapes_and_traced_clip():
    config = ppo.Config(n_updates=3, n_envs=2, n_steps=16, n_minibatches=2, n_epochs=2, hidden=(4,))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    train = ppo.make_train(config)
    _, metrics = jax.jit(jax.vmap(train, (0, None)))(keys, jnp.asarray(0.1))
    assert metrics["kl"].shape == (2, 3) and np.all(np.asarray(metrics["kl"]) >= 0)


def test_value_errors():
    with pytest.raises(ValueError, match="ratio"):
        ppo.clipped_objective(jnp.ones(3), jnp.ones(4), 0.2)
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.clipped_objective(jnp.ones(3), jnp.ones(3), 0.0)
    for field, value in (
        ("env_name", "Acrobot-v1"),
        ("clip_eps", -0.1),
        ("n_minibatches", 3),
        ("n_epochs", 0),
        ("gamma", 1.5),
        ("hidden", (0,)),
        ("normalize_advantages", "yes"),
    ):
        with pytest.raises(ValueError, match=field):
            ppo.Config(**{field: value})
    with pytest.raises(ValueError, match="clip_eps"):
        ppo.make_train(ppo.Config(n_updates=1, n_envs=1, n_steps=2, n_minibatches=1, hidden=(2,)))(
            jax.random.PRNGKey(0), clip_eps=0.0
        )


@pytest.mark.parametrize("env_name", ["CartPole-v1", "Pendulum-v1"])
def test_one_epoch_one_minibatch_is_the_actor_critic_step(env_name):
    """PPO is the actor-critic with another loss: with E = K = 1 its one Adam step starts at
    r_t(θ') = 1, where ∇_θ' L^CLIP = mean[∇ log π_θ'(a|s) Â], the actor-critic's policy
    gradient. From one state and one key the two updates give the same θ and φ (up to the
    order of a sum: PPO shuffles its one minibatch), for every ε; and after a second epoch
    they differ, so the test can fail."""
    common = dict(env_name=env_name, n_envs=2, n_steps=16, hidden=(8,), learning_rate=1e-2)
    ac_config = actor_critic.Config(**common, n_epochs=1, n_minibatches=1)
    state = actor_critic.init_state(jax.random.PRNGKey(1), ac_config)
    key = jax.random.PRNGKey(2)
    ac_state, _ = jax.jit(actor_critic.make_step(ac_config))(state, key, ac_config.gae_lambda)

    def gap(s1, s2):
        pairs = zip(*(jax.tree_util.tree_leaves(s.params) for s in (s1, s2)), strict=True)
        return max(float(jnp.max(jnp.abs(a - b))) for a, b in pairs)

    moved = gap(ac_state, state)
    assert moved > 1e-4
    for n_epochs, same in ((1, True), (2, False)):
        step = jax.jit(ppo.make_step(ppo.Config(**common, n_epochs=n_epochs, n_minibatches=1)))
        for eps in (0.05, 0.2):  # traced: one compile for both
            ppo_state, _ = step(state, key, jnp.float32(eps))
            apart = gap(ppo_state, ac_state)
            assert (apart < 1e-5) == same, (eps, n_epochs, apart, moved)
