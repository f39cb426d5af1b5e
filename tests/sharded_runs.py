"""Run small agents with :mod:`rlbook.parallel` on forced host devices; print a JSON report.

Started by ``tests/test_parallel.py`` in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag must be set before JAX
starts, so it cannot run inside the pytest process). For each agent it runs the same
five keys (a number the four devices do not divide) through ``run_seeds`` / ``run_grid``
on all devices and on one device, and reports the shapes, the output sharding, the
largest difference between the two, and whether the sharded program holds collectives.
"""

from __future__ import annotations

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import parallel
from rlbook.agents import dqn, ppo, sac

N_KEYS = 5


def _compare(sharded, single) -> dict:
    """Largest |a − b| / (1 + |b|) over every leaf, and whether the leaf shapes agree."""
    a_leaves, b_leaves = jax.tree_util.tree_leaves(sharded), jax.tree_util.tree_leaves(single)
    worst, exact = 0.0, 0
    for a, b in zip(a_leaves, b_leaves):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return {"shapes_agree": False}
        d = float(np.max(np.abs(a - b) / (1.0 + np.abs(b)), initial=0.0))
        worst = max(worst, d)
        exact += bool(np.array_equal(a, b))
    return {"shapes_agree": len(a_leaves) == len(b_leaves), "max_rel_diff": worst,
            "exact_leaves": exact, "leaves": len(a_leaves)}


def _collectives(train, keys, args, grid) -> bool:
    f = parallel._compiled(train, len(args), grid, tuple(jax.devices()))
    padded = parallel._pad(keys, parallel.pad_to(len(keys), jax.device_count()))
    text = f.lower(padded, *args).compile().as_text()
    return any(op in text for op in ("all-reduce", "all-gather", "all-to-all",
                                     "collective-permute"))


def case(name, train, args=(), grid=False, collectives=True) -> dict:
    keys = jax.random.split(jax.random.PRNGKey(0), N_KEYS)
    one = (jax.devices()[0],)
    if grid:
        sharded = parallel.run_grid(train, keys, *args)
        single = parallel.run_grid(train, keys, *args, devices=one)
    else:
        sharded = parallel.run_seeds(train, keys, *args)
        single = parallel.run_seeds(train, keys, *args, devices=one)
    leaf = jax.tree_util.tree_leaves(sharded)[0]
    report = {"rows": int(leaf.shape[1] if grid else leaf.shape[0]),
              "collectives": _collectives(train, keys, args, grid) if collectives else None}
    report.update(_compare(sharded, single))
    # the unsharded program before slicing: every leaf laid out along the seeds axis
    padded = parallel._pad(keys, parallel.pad_to(N_KEYS, jax.device_count()))
    full = parallel._compiled(train, len(args), grid, tuple(jax.devices()))(padded, *args)
    specs = {str(x.sharding.spec) for x in jax.tree_util.tree_leaves(full)
             if x.ndim > (1 if grid else 0)}
    report["specs"] = sorted(specs)
    print(f"{name}: {report}", file=sys.stderr, flush=True)
    return report


def philox_fails() -> str:
    """What sharding a Philox-keyed SAC run does with the locked JAX ("" if it works)."""
    cfg = sac.Config(total_steps=200, learning_starts=64, batch_size=16, buffer_size=200,
                     hidden=(8,), eval_every=200, eval_episodes=1)
    try:
        parallel.run_seeds(sac.make_train(cfg), jax.random.split(jax.random.PRNGKey(0), 4))
    except Exception as e:  # noqa: BLE001 — the message is the report
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return ""


def main() -> dict:
    ppo_cfg = ppo.Config(n_updates=3, n_envs=2, n_steps=16, n_minibatches=2, n_epochs=2,
                         hidden=(8,))
    dqn_cfg = dqn.DQNConfig(total_steps=400, n_envs=2, hidden=(16,), learning_starts=64,
                            buffer_size=256, batch_size=32, log_every=200, train_every=2,
                            target_period=10)
    sac_cfg = sac.Config(total_steps=200, learning_starts=128, batch_size=32, buffer_size=200,
                         hidden=(16,), eval_every=100, eval_episodes=2, train_every=2,
                         rng_impl="threefry2x32")
    return {
        "devices": jax.device_count(),
        "ppo_grid": case("ppo_grid", ppo.make_train(ppo_cfg),
                         (jnp.asarray([0.1, 0.2, 0.3]),), grid=True),
        "dqn": case("dqn", dqn.make_train(dqn_cfg)),
        "sac": case("sac", sac.make_train(sac_cfg), collectives=False),
        "philox_error": philox_fails(),
    }


if __name__ == "__main__":
    print(json.dumps(main()))
