"""rlbook.parallel: seeds and hyperparameter grids over devices.

In this process JAX has one CPU device, where the helpers must be exactly the plain
``jit(vmap(...))``. The multi-device path runs in a subprocess with four forced host
devices (``tests/sharded_runs.py``), on tiny runs of every agent and a PPO grid over ε.
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
from sharded_runs import small_trains

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
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)
    values = jnp.asarray([0.1, 1.0, 3.0])
    grid = parallel.run_grid(toy_train, keys, values)
    ref = jax.jit(jax.vmap(jax.vmap(toy_train, (0, None)), (None, 0)))(keys, values)
    assert grid["final"].shape == (3, 5, 3)
    for a, b in zip(jax.tree_util.tree_leaves(grid), jax.tree_util.tree_leaves(ref), strict=True):
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
    for bad in (
        np.zeros((2, 2), np.uint32),
        jnp.zeros((2, 2)),
        jnp.zeros((0, 2), jnp.uint32),
        jax.random.PRNGKey(0),
        jax.random.key(0),
    ):
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
    """The cases of ``sharded_runs.py`` in two subprocesses side by side (one per core)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "sharded_runs.py"), str(i), "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    report = {}
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        report.update(json.loads(out.strip().splitlines()[-1]))
    return report


AGENTS = ["ppo_grid", *small_trains()]


@pytest.mark.parametrize("agent", AGENTS)
def test_sharded_over_four_devices_matches_one(sharded_report, agent):
    """Five keys on four devices: padded to eight, split two per device, sliced back.

    A sharded program is compiled differently from the one-device program, so it rounds
    differently: over short runs (a few on-policy updates, 68 DQN updates, 32 off-policy
    updates) the largest difference measured was about 1e-7 relative for PPO and DQN and
    under 1e-6 for SAC (at 136 SAC updates it grows to 7e-3 in Adam's moments: training
    amplifies rounding, so the runs are kept short). 1e-4 leaves a hundredfold margin; a
    partitioning error (rows mixed, seeds computed twice, a dropped pad) is of order one.
    """
    r = sharded_report
    assert r["devices"] == 4
    rep = r[agent]
    assert rep["rows"] == 5 and rep["shapes_agree"]
    assert rep["max_rel_diff"] <= 1e-4, rep
    assert rep["exact_leaves"] > 0  # the seed-independent leaves agree exactly
    seeds_spec = "P(None, 'seeds')" if agent.endswith("grid") else "P('seeds',)"
    assert seeds_spec in rep["specs"], rep["specs"]
    if rep["collectives"] is not None:
        # each device runs its seeds with no exchange, except NPG's batched CG stop test
        assert rep["collectives"] is (agent == "npg"), rep["collectives"]


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
                found.add(
                    (str(eqn.primitive), aval.shape, source_info_util.summarize(eqn.source_info))
                )
        for p in eqn.params.values():
            for sub in p if isinstance(p, (list, tuple)) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _float64_tensors(inner, found)
    return found


def test_no_float64_tensor_in_any_agent_with_x64_on():
    """The chapters turn x64 on; every agent must still compute its tensors in float32.

    Scalars of one run (Adam's bias correction inside optax, a constant) may be float64; a
    float64 vector would double the memory traffic of a batched run and, on a GPU, run at a
    fraction of float32 speed. One run is traced (unbatched), so a per-run scalar stays a
    scalar.
    """
    key = jax.random.PRNGKey(0)
    with jax.enable_x64(True):
        found = {
            name: sorted(_float64_tensors(jax.make_jaxpr(train)(key).jaxpr, set()))
            for name, train in small_trains().items()
        }
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_every_agent_lowers_for_cuda_without_host_callbacks():
    """What a GPU user runs: the vmapped train lowered for CUDA (no GPU needed to lower)."""
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    for name, train in small_trains().items():
        text = jax.jit(jax.vmap(train)).trace(keys).lower(lowering_platforms=("cuda",)).as_text()
        assert "callback" not in text, name
