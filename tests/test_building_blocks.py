"""nets, replay, distributions (the foundation's part) and plotting against plain-numpy
references."""

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from scipy import stats

from rlbook import distributions as D
from rlbook import nets, plotting, replay

matplotlib.use("Agg")


def test_mlp_matches_a_numpy_forward_pass():
    params = nets.mlp_init(jax.random.PRNGKey(0), [3, 8, 8, 2], final_scale=0.1)
    x = np.random.default_rng(0).normal(size=(5, 3))
    h = x
    for layer in params[:-1]:
        h = np.tanh(h @ np.asarray(layer["w"]) + np.asarray(layer["b"]))
    want = h @ np.asarray(params[-1]["w"]) + np.asarray(params[-1]["b"])
    np.testing.assert_allclose(nets.mlp_apply(params, x), want, rtol=1e-5, atol=1e-6)
    assert nets.n_params(params) == 3 * 8 + 8 + 8 * 8 + 8 + 8 * 2 + 2


def test_mlp_init_scales_weights_by_fan_in():
    params = nets.mlp_init(jax.random.PRNGKey(1), [400, 300, 1], final_scale=0.5)
    np.testing.assert_allclose(np.std(params[0]["w"]), 1 / np.sqrt(400), rtol=0.02)
    np.testing.assert_allclose(np.std(params[1]["w"]), 0.5 / np.sqrt(300), rtol=0.1)
    with pytest.raises(ValueError, match="sizes"):
        nets.mlp_init(jax.random.PRNGKey(0), [3])
    with pytest.raises(ValueError, match=r"sizes\[1\]"):
        nets.mlp_init(jax.random.PRNGKey(0), [3, 0, 1])


def test_replay_buffer_is_a_ring_and_samples_only_filled_slots():
    buf = replay.init(4, {"x": jnp.zeros(2), "a": jnp.asarray(0)})
    for i in range(6):
        buf = replay.add(buf, {"x": jnp.full(2, float(i)), "a": jnp.asarray(i)})
    # Ring of 4 after 6 writes: slots hold 4, 5, 2, 3.
    np.testing.assert_array_equal(buf.data["a"], [4, 5, 2, 3])
    assert int(buf.size) == 4 and int(buf.pointer) == 2
    fresh = replay.add(replay.init(10, {"a": jnp.asarray(0)}), {"a": jnp.asarray(7)})
    batch = replay.sample(jax.random.PRNGKey(0), fresh, 64)
    np.testing.assert_array_equal(batch["a"], 7)  # only the one filled slot is drawn
    many = replay.add_batch(replay.init(5, {"a": jnp.asarray(0)}), {"a": jnp.arange(7)})
    np.testing.assert_array_equal(many.data["a"], [5, 6, 2, 3, 4])
    with pytest.raises(ValueError, match="capacity"):
        replay.init(0, {"a": jnp.asarray(0)})
    with pytest.raises(ValueError, match="batch_size"):
        replay.sample(jax.random.PRNGKey(0), buf, 0)


def test_replay_sampling_is_uniform():
    buf = replay.add_batch(replay.init(8, {"a": jnp.asarray(0)}), {"a": jnp.arange(8)})
    n = 80_000
    counts = np.bincount(np.asarray(replay.sample(jax.random.PRNGKey(3), buf, n)["a"]), minlength=8)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_categorical_against_numpy():
    logits = jnp.array([0.3, -1.0, 2.0])
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(D.categorical_log_prob(logits, 2), np.log(p[2]), rtol=1e-12)
    np.testing.assert_allclose(D.categorical_entropy(logits), -(p * np.log(p)).sum(), rtol=1e-12)
    q_logits = jnp.array([1.0, 0.0, -0.5])
    q = np.exp(q_logits) / np.exp(q_logits).sum()
    np.testing.assert_allclose(
        D.categorical_kl(logits, q_logits), (p * np.log(p / q)).sum(), rtol=1e-12
    )
    keys = jax.random.split(jax.random.PRNGKey(0), 60_000)
    draws = jax.vmap(D.categorical_sample, (0, None))(keys, logits)
    counts = np.bincount(np.asarray(draws), minlength=3)
    assert stats.chisquare(counts, 60_000 * p).pvalue > 1e-3
    with pytest.raises(ValueError, match="logits_q"):
        D.categorical_kl(logits, q_logits[:2])


def test_gaussian_against_scipy():
    mean, log_std = jnp.array([0.5, -1.0]), jnp.array([0.2, -0.3])
    x = jnp.array([0.1, -0.4])
    want = stats.norm.logpdf(np.asarray(x), np.asarray(mean), np.exp(np.asarray(log_std))).sum()
    np.testing.assert_allclose(D.gaussian_log_prob(mean, log_std, x), want, rtol=1e-12)
    np.testing.assert_allclose(
        D.gaussian_entropy(mean, log_std),
        stats.norm.entropy(0, np.exp(np.asarray(log_std))).sum(),
        rtol=1e-12,
    )
    # KL against numerical integration in one dimension.
    grid = np.linspace(-12, 12, 200_001)
    p = stats.norm.pdf(grid, 0.5, 1.3)
    q = stats.norm.pdf(grid, -0.2, 0.7)
    want_kl = np.trapezoid(p * (np.log(p + 1e-300) - np.log(q + 1e-300)), grid)
    got = D.gaussian_kl(
        jnp.array([0.5]), jnp.log(jnp.array([1.3])), jnp.array([-0.2]), jnp.log(jnp.array([0.7]))
    )
    np.testing.assert_allclose(got, want_kl, rtol=1e-7)
    draws = jax.vmap(D.gaussian_sample, (0, None, None))(
        jax.random.split(jax.random.PRNGKey(1), 20_000), mean, log_std
    )
    for i in range(2):
        ks = stats.kstest(
            np.asarray(draws[:, i]), "norm", (float(mean[i]), float(np.exp(log_std[i])))
        )
        assert ks.pvalue > 1e-3
    with pytest.raises(ValueError, match="log_std"):
        D.gaussian_sample(jax.random.PRNGKey(0), mean, jnp.zeros(3))
    with pytest.raises(ValueError, match="x must have"):
        D.gaussian_log_prob(mean, log_std, jnp.zeros(3))


def test_gaussian_sample_is_reparameterized():
    """d/dμ E[x²] = 2μ and d/dσ E[x²] = 2σ, estimated through the sampler."""
    keys = jax.random.split(jax.random.PRNGKey(2), 100_000)

    def objective(mean, log_std):
        xs = jax.vmap(D.gaussian_sample, (0, None, None))(keys, mean, log_std)
        return jnp.mean(xs**2)

    g_mu, g_ls = jax.grad(objective, (0, 1))(jnp.array([0.7]), jnp.log(jnp.array([0.5])))
    # Standard errors: d/dμ of x² is 2x (sd 2σ = 1.0), d/dlogσ is 2σ²ε² (sd 2σ²√2 ≈ 0.71);
    # over 1e5 draws both are < 0.004, so 0.02 is five standard errors.
    np.testing.assert_allclose(g_mu, 2 * 0.7, atol=0.02)
    np.testing.assert_allclose(g_ls, 2 * 0.5**2, atol=0.02)


def test_plotting_band_is_a_t_interval():
    y = np.random.default_rng(0).normal(size=(5, 7))
    mean, low, high = plotting.mean_and_band(y, 0.95)
    half = stats.t.ppf(0.975, 4) * y.std(0, ddof=1) / np.sqrt(5)
    np.testing.assert_allclose(mean, y.mean(0))
    np.testing.assert_allclose(high - mean, half)
    np.testing.assert_allclose(mean - low, half)
    fig, ax = plotting.learning_curve(np.arange(7), y, label="agent")
    assert (
        ax.get_xlabel() == "environment steps" and "5 seeds" in ax.get_legend().texts[0].get_text()
    )
    fig, ax = plotting.violin({"a": y[0], "b": y[1]}, reference=0.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    with pytest.raises(ValueError, match="y must have shape"):
        plotting.learning_curve(np.arange(3), y)
    with pytest.raises(ValueError, match="seed axis"):
        plotting.mean_and_band(y[:0])
    one = plotting.mean_and_band(y[:1])  # a single seed: a band of zero width
    for part in one:
        np.testing.assert_array_equal(part, y[0])
    with pytest.raises(ValueError, match="confidence"):
        plotting.mean_and_band(y, 1.0)
    with pytest.raises(ValueError, match="samples"):
        plotting.violin({})


@pytest.mark.parametrize("agent", ["reinforce", "npg", "actor_critic", "trpo", "ppo"])
@pytest.mark.parametrize(
    "field, bad",
    [
        ("env_name", "MountainCar-v0"),
        ("hidden", (64, 0)),
        ("hidden", [64, 64]),
        ("hidden", (64, True)),
    ],
)
def test_every_on_policy_config_names_its_bad_field(agent, field, bad):
    import importlib

    config = importlib.import_module(f"rlbook.agents.{agent}").Config
    config()  # the defaults are valid
    with pytest.raises(ValueError, match=f"^{field} must"):
        config(**{field: bad})


@pytest.mark.parametrize(
    "agent, field",
    [
        ("reinforce", "reward_to_go"),
        ("npg", "discount_states"),
        ("actor_critic", "normalize_advantages"),
        ("trpo", "normalize_advantages"),
        ("ppo", "normalize_advantages"),
    ],
)
def test_a_flag_must_be_a_bool_not_merely_truthy(agent, field):
    import importlib

    config = importlib.import_module(f"rlbook.agents.{agent}").Config
    with pytest.raises(ValueError, match=f"^{field} must be a bool, got 1"):
        config(**{field: 1})
