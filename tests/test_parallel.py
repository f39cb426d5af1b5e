"""rlbook.parallel: seeds and hyperparameter grids over devices.

In this process JAX has one CPU device, where the helpers must be exactly the plain
``jit(vmap(...))``. The multi-device path runs in a subprocess with four forced host
devices (``tests/sharded_runs.py``), on small PPO (a grid over ε), DQN and SAC runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlbook import parallel
from rlbook.agents import ddpg, offpolicy, svg

HERE = Path(__file__).parent


def toy_train(key, scale=1.0):
    """A stand-in for an agent's train: a short scan of random draws, scaled."""
    def body(x, k):
        return x + scale * jax.random.normal(k, (3,)), x
    x, xs = jax.lax.scan(body, jnp.zeros(3), jax.random.split(key, 7))
    return {"final": x, "path": xs}


def test_one_device_is_plain_vmap_exactly():
    keys = jax.random.split(jax.random.PRNGKey(3), 5)
    out = parallel.run_seeds(toy_train, keys, jnp.asarray(0.5))
    ref = jax.jit(jax.vmap(toy_train, (0, None)))(keys, jnp.asarray(0.5))
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_array_equal(a, b)
    values = jnp.asarray([0.1, 1.0, 3.0])
    grid = parallel.run_grid(toy_train, keys, values)
    ref = jax.jit(jax.vmap(jax.vmap(toy_train, (0, None)), (None, 0)))(keys, values)
    assert grid["final"].shape == (3, 5, 3)
    for a, b in zip(jax.tree_util.tree_leaves(grid), jax.tree_util.tree_leaves(ref)):
        np.testing.assert_array_equal(a, b)
    # row i of the grid is seed i's run at that setting
    np.testing.assert_allclose(grid["final"][2, 4], toy_train(keys[4], 3.0)["final"], rtol=1e-6)


def test_typed_keys_and_no_recompile():
    keys = jax.random.split(jax.random.key(0), 4)
    first = parallel.run_seeds(toy_train, keys)
    n = parallel._compiled.cache_info().hits
    second = parallel.run_seeds(toy_train, jax.random.split(jax.random.key(1), 4))
    assert parallel._compiled.cache_info().hits == n + 1
    assert first["final"].shape == (4, 3)
    assert not np.array_equal(first["final"], second["final"])


def test_padding():
    assert [parallel.pad_to(n, 4) for n in (1, 4, 5, 8, 9)] == [4, 4, 8, 8, 12]
    x = jnp.arange(10).reshape(5, 2)
    padded = parallel._pad(x, 8)
    np.testing.assert_array_equal(padded[:5], x)
    np.testing.assert_array_equal(padded[5:], np.repeat(np.asarray(x[-1:]), 3, axis=0))
    assert parallel.n_devices() == len(jax.devices())
    assert parallel.mesh().axis_names == (parallel.AXIS,)


def test_value_errors():
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    with pytest.raises(ValueError, match="train"):
        parallel.run_seeds("not a function", keys)
    for bad in (np.zeros((2, 2), np.uint32), jnp.zeros((2, 2)), jnp.zeros((0, 2), jnp.uint32),
                jax.random.PRNGKey(0), jax.random.key(0)):
        with pytest.raises(ValueError, match="keys"):
            parallel.run_seeds(toy_train, bad)
    for bad in ([], [0], "cpu", (jax.devices()[0],) * 2):
        with pytest.raises(ValueError, match="devices"):
            parallel.run_seeds(toy_train, keys, devices=bad)
    for bad in (1.0, jnp.asarray(1.0), jnp.zeros(0), {"a": jnp.zeros(2), "b": jnp.zeros(3)}):
        with pytest.raises(ValueError, match="values"):
            parallel.run_grid(toy_train, keys, bad)
    for n, m, name in ((0, 4, "n"), (4, 0, "multiple"), (2.0, 1, "n"), (2, True, "multiple")):
        with pytest.raises(ValueError, match=f"^{name} must"):
            parallel.pad_to(n, m)


def test_rng_impl_choice():
    key = jax.random.PRNGKey(0)
    assert offpolicy.philox_key(key, "threefry2x32") is key
    philox = offpolicy.philox_key(key)
    assert "philox4x32" in str(jax.random.key_impl(philox))
    with pytest.raises(ValueError, match="impl"):
        offpolicy.philox_key(key, "rbg")
    with pytest.raises(ValueError, match="rng_impl"):
        ddpg.make_train(ddpg.Config(rng_impl="mt19937"))
    with pytest.raises(ValueError, match="rng_impl"):
        svg.make_train(svg.InfinityConfig(rng_impl="mt19937"))


@pytest.fixture(scope="module")
def sharded_report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    proc = subprocess.run([sys.executable, str(HERE / "sharded_runs.py")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("agent", ["ppo_grid", "dqn", "sac"])
def test_sharded_over_four_devices_matches_one(sharded_report, agent):
    """Five keys on four devices: padded to eight, split two per device, sliced back.

    A sharded program is compiled differently from the one-device program, so it rounds
    differently: over these short runs (3 PPO updates, 84 DQN steps × 2 envs, 36 SAC
    updates) the largest difference measured was 1e-7 relative for PPO and DQN and under
    1e-6 for SAC (at 136 SAC updates it grows to 7e-3 in Adam's moments: training
    amplifies rounding). 1e-4 leaves a hundredfold margin; a partitioning error (rows
    mixed, seeds computed twice, a dropped pad) is of order one.
    """
    r = sharded_report
    assert r["devices"] == 4
    rep = r[agent]
    assert rep["rows"] == 5 and rep["shapes_agree"]
    assert rep["max_rel_diff"] <= 1e-4, rep
    assert rep["exact_leaves"] > 0          # the seed-independent leaves agree exactly
    seeds_spec = "P(None, 'seeds')" if agent.endswith("grid") else "P('seeds',)"
    assert seeds_spec in rep["specs"], rep["specs"]
    if rep["collectives"] is not None:      # each device runs its seeds with no exchange
        assert rep["collectives"] is False


def test_philox_still_unshardable(sharded_report):
    """The reason off-policy agents need ``rng_impl="threefry2x32"`` to shard. When a JAX
    upgrade compiles ``lax.mulhi`` under Shardy this fails, and the option can go."""
    assert "MHLO to StableHLO" in sharded_report["philox_error"]


def _float64_tensors(jaxpr, found):
    """(primitive, shape, source) of every non-scalar float64 value computed in ``jaxpr``."""
    from jax._src import source_info_util
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            aval = v.aval
            if getattr(aval, "dtype", None) == jnp.float64 and aval.ndim > 0:
                found.add((str(eqn.primitive), aval.shape,
                           source_info_util.summarize(eqn.source_info)))
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (list, tuple)) else [p]):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _float64_tensors(inner, found)
    return found


def _small_trains():
    from rlbook import mdp, ntk
    from rlbook.agents import actor_critic, dqn, fqi, npg, ppo, reinforce, sac, td3, trpo
    off = dict(total_steps=200, learning_starts=64, batch_size=16, buffer_size=200,
               hidden=(8,), eval_every=100, eval_episodes=1, train_every=2)
    m = mdp.garnet(jax.random.PRNGKey(5), 4, 2, branching=1, gamma=0.5, dtype=jnp.float32)
    data = ntk.sample_dataset(jax.random.PRNGKey(6), m, jnp.full((4, 2), 1 / 8), 64)
    fqi_data = fqi.random_dataset(jax.random.PRNGKey(1), 64)
    trains = {
        "reinforce": reinforce.make_train(reinforce.Config(n_updates=2, n_episodes=2, horizon=12,
                                                           hidden=(8,))),
        "reinforce-pendulum": reinforce.make_train(reinforce.Config(
            env_name="Pendulum-v1", n_updates=2, n_episodes=2, horizon=12, hidden=(8,))),
        "npg": npg.make_train(npg.Config(n_episodes=2, horizon=12, hidden=(4,), n_updates=2)),
        "actor_critic": actor_critic.make_train(actor_critic.Config(
            n_updates=2, n_envs=2, n_steps=8, hidden=(8,))),
        "trpo": trpo.make_train(trpo.Config(n_updates=2, n_envs=2, n_steps=16, hidden=(4,))),
        "ppo": ppo.make_train(ppo.Config(n_updates=2, n_envs=2, n_steps=16, n_minibatches=2,
                                         hidden=(8,))),
        "dqn": dqn.make_train(dqn.DQNConfig(total_steps=200, n_envs=2, hidden=(8,),
                                            learning_starts=64, buffer_size=128, batch_size=16,
                                            log_every=100, target_period=10)),
        "ddpg": ddpg.make_train(ddpg.Config(**off)),
        "td3": td3.make_train(td3.Config(**off)),
        "sac": sac.make_train(sac.Config(**off)),
        "svg1": svg.make_train(svg.Config(**off)),
        "svg_infinity": svg.make_train(svg.InfinityConfig(total_steps=400, hidden=(8,),
                                                                updates_per_iteration=2,
                                                                eval_every=200,
                                                                eval_episodes=1)),
        "ntk": ntk.make_train(ntk.OfflineQConfig(hidden=(8,), batch_size=8, n_steps=20,
                                                 log_every=10), m, jnp.eye(4, dtype=jnp.float32),
                              data),
    }
    trains["fqi"] = lambda key: fqi.run(key, fqi_data, fqi.Config(
        iterations=2, fit_steps=3, batch_size=16, hidden=(8,), n_maximized=16, actor_steps=2))
    return trains


def test_no_float64_tensor_in_any_agent_with_x64_on():
    """The chapters turn x64 on; every agent must still compute its tensors in float32.

    Scalars of one run (Adam's bias correction inside optax, a constant) may be float64; a
    float64 vector would double the memory traffic of a batched run and, on a GPU, run at a
    fraction of float32 speed. One run is traced (unbatched), so a per-run scalar stays a
    scalar.
    """
    key = jax.random.PRNGKey(0)
    with jax.enable_x64(True):
        found = {name: sorted(_float64_tensors(jax.make_jaxpr(train)(key).jaxpr, set()))
                 for name, train in _small_trains().items()}
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_every_agent_lowers_for_cuda_without_host_callbacks():
    """What a GPU user runs: the vmapped train lowered for CUDA (no GPU needed to lower)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    for name, train in _small_trains().items():
        text = jax.jit(jax.vmap(train)).trace(keys).lower(
            lowering_platforms=("cuda",)).as_text()
        assert "callback" not in text, name
