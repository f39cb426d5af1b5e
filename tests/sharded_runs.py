"""Run small agents with :mod:`rlbook.parallel` on forced host devices; print a JSON report.

Started by ``tests/test_parallel.py`` in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag must be set before JAX
starts, so it cannot run inside the pytest process). For every agent (tiny
configurations, :func:`small_trains`; the off-policy agents and SVG with threefry keys),
and for a PPO grid over ε, it runs the same five keys (a number the four devices do not
divide) through ``run_seeds`` / ``run_grid`` on all devices and on one device, and
reports the shapes, the output sharding, the largest difference between the two, and
whether the sharded program holds collectives.
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
    for a, b in zip(a_leaves, b_leaves, strict=False):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            return {"shapes_agree": False}
        d = float(np.max(np.abs(a - b) / (1.0 + np.abs(b)), initial=0.0))
        worst = max(worst, d)
        exact += bool(np.array_equal(a, b))
    return {
        "shapes_agree": len(a_leaves) == len(b_leaves),
        "max_rel_diff": worst,
        "exact_leaves": exact,
        "leaves": len(a_leaves),
    }


def _collectives(train, keys, args, grid) -> bool:
    f = parallel._compiled(train, len(args), grid, tuple(jax.devices()))
    padded = parallel._pad(keys, parallel.pad_to(len(keys), jax.device_count()))
    text = f.lower(padded, *args).compile().as_text()
    return any(
        op in text for op in ("all-reduce", "all-gather", "all-to-all", "collective-permute")
    )


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
    report = {
        "rows": int(leaf.shape[1] if grid else leaf.shape[0]),
        "collectives": _collectives(train, keys, args, grid) if collectives else None,
    }
    report.update(_compare(sharded, single))
    # the unsharded program before slicing: every leaf laid out along the seeds axis
    padded = parallel._pad(keys, parallel.pad_to(N_KEYS, jax.device_count()))
    full = parallel._compiled(train, len(args), grid, tuple(jax.devices()))(padded, *args)
    specs = {
        str(x.sharding.spec) for x in jax.tree_util.tree_leaves(full) if x.ndim > (1 if grid else 0)
    }
    report["specs"] = sorted(specs)
    print(f"{name}: {report}", file=sys.stderr, flush=True)
    return report


def philox_fails() -> str:
    """What sharding a Philox-keyed SAC run does with the locked JAX ("" if it works)."""
    cfg = sac.Config(
        total_steps=200,
        learning_starts=64,
        batch_size=16,
        buffer_size=200,
        hidden=(8,),
        eval_every=200,
        eval_episodes=1,
    )
    try:
        parallel.run_seeds(sac.make_train(cfg), jax.random.split(jax.random.PRNGKey(0), 4))
    except Exception as e:  # any error: the message is the report
        return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return ""


def small_trains(rng_impl: str = "philox4x32") -> dict:
    """Every agent's ``train(key)`` at a tiny size (a few updates), by name.

    ``rng_impl`` is given to the agents that take it (the off-policy agents and SVG);
    ``"threefry2x32"`` makes them shardable. Shared with ``tests/test_parallel.py``.
    """
    from rlbook import mdp
    from rlbook.agents import actor_critic, ddpg, fqi, npg, offline_q, reinforce, svg, td3, trpo

    off = dict(
        total_steps=160,
        learning_starts=96,
        batch_size=16,
        buffer_size=160,
        hidden=(8,),
        eval_every=80,
        eval_episodes=1,
        train_every=2,
        rng_impl=rng_impl,
    )
    m = mdp.garnet(jax.random.PRNGKey(5), 4, 2, branching=1, gamma=0.5, dtype=jnp.float32)
    data = offline_q.sample_dataset(jax.random.PRNGKey(6), m, jnp.full((4, 2), 1 / 8), 64)
    fqi_data = fqi.random_dataset(jax.random.PRNGKey(1), 64)
    fqi_cfg = fqi.Config(
        iterations=2, fit_steps=3, batch_size=16, hidden=(8,), n_maximized=16, actor_steps=2
    )
    return {
        "reinforce": reinforce.make_train(
            reinforce.Config(n_updates=2, n_episodes=2, horizon=12, hidden=(8,))
        ),
        "reinforce_pendulum": reinforce.make_train(
            reinforce.Config(
                env_name="Pendulum-v1", n_updates=2, n_episodes=2, horizon=12, hidden=(8,)
            )
        ),
        "npg": npg.make_train(npg.Config(n_episodes=2, horizon=12, hidden=(4,), n_updates=2)),
        "actor_critic": actor_critic.make_train(
            actor_critic.Config(n_updates=2, n_envs=2, n_steps=8, hidden=(8,))
        ),
        "trpo": trpo.make_train(trpo.Config(n_updates=2, n_envs=2, n_steps=16, hidden=(4,))),
        "ppo": ppo.make_train(
            ppo.Config(n_updates=2, n_envs=2, n_steps=16, n_minibatches=2, hidden=(8,))
        ),
        "dqn": dqn.make_train(
            dqn.DQNConfig(
                total_steps=200,
                n_envs=2,
                hidden=(8,),
                learning_starts=64,
                buffer_size=128,
                batch_size=16,
                log_every=100,
                target_period=10,
            )
        ),
        "ddpg": ddpg.make_train(ddpg.Config(**off)),
        "td3": td3.make_train(td3.Config(**off)),
        "sac": sac.make_train(sac.Config(**off)),
        "svg1": svg.make_train(svg.Config(**off)),
        "svg_infinity": svg.make_train(
            svg.InfinityConfig(
                total_steps=400,
                hidden=(8,),
                updates_per_iteration=2,
                eval_every=200,
                eval_episodes=1,
                rng_impl=rng_impl,
            )
        ),
        "offline_q": offline_q.make_train(
            offline_q.Config(hidden=(8,), batch_size=8, n_steps=20, log_every=10),
            m,
            jnp.eye(4, dtype=jnp.float32),
            data,
        ),
        "fqi": lambda key: fqi.run(key, fqi_data, fqi_cfg),
    }


def main(part: int = 0, parts: int = 1) -> dict:
    """Every ``parts``-th case starting at ``part`` (so that parts can run side by side)."""
    ppo_cfg = ppo.Config(
        n_updates=3, n_envs=2, n_steps=16, n_minibatches=2, n_epochs=2, hidden=(8,)
    )
    # The compiled program is inspected for collectives (a second compile) for one agent
    # of each family; NPG and TRPO hold one all-reduce by design (the batched CG stop test).
    inspect = ("reinforce", "npg", "ppo", "dqn", "sac")
    cases = {
        "ppo_grid": lambda: case(
            "ppo_grid", ppo.make_train(ppo_cfg), (jnp.asarray([0.1, 0.2, 0.3]),), grid=True
        )
    }
    for name, train in small_trains("threefry2x32").items():
        cases[name] = lambda name=name, train=train: case(name, train, collectives=name in inspect)
    cases["philox_error"] = philox_fails
    report = {"devices": jax.device_count()}
    for i, (name, run) in enumerate(cases.items()):
        if i % parts == part:
            report[name] = run()
    return report


if __name__ == "__main__":
    part, parts = (int(a) for a in sys.argv[1:3]) if len(sys.argv) > 2 else (0, 1)
    print(json.dumps(main(part, parts)))
