"""Throughput of the trust-region chapter's agents: environment steps per second.

``run()`` returns a dict for ``make bench`` (``bookbuild.bench`` collects it into
``_build/bench.json``); ``python bench/trust_regions.py`` prints it. For each of the
policy gradient with GAE (``rlbook.agents.actor_critic``), TRPO and PPO it trains
5 vmapped seeds on CartPole-v1 with the chapter's networks and rollout sizes and a
shorter run, timing compile and training apart; steps per second count every
environment step of every seed (N environments × T steps × updates × seeds).
"""

from __future__ import annotations

import json
import os
import time

import jax

from rlbook.agents import actor_critic, ppo, trpo

COMMON = dict(env_name="CartPole-v1", n_updates=40, n_envs=8, n_steps=64, gamma=0.99)
AGENTS = {
    "pg_gae": (actor_critic, actor_critic.Config(hidden=(32, 32), learning_rate=3e-3, **COMMON)),
    "trpo": (trpo, trpo.Config(max_kl=0.02, **COMMON)),
    "ppo": (
        ppo,
        ppo.Config(clip_eps=0.2, learning_rate=3e-3, n_epochs=4, n_minibatches=4, **COMMON),
    ),
}
N_SEEDS = 5


def _measure(module, config, repeats: int = 2) -> dict:
    keys = jax.random.split(jax.random.PRNGKey(0), N_SEEDS)
    fn = jax.jit(jax.vmap(module.make_train(config)))
    t0 = time.perf_counter()
    compiled = fn.lower(keys).compile()
    compile_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        best = min(best, time.perf_counter() - t0)
    steps = N_SEEDS * config.n_updates * config.n_envs * config.n_steps
    return {
        "compile_s": round(compile_s, 2),
        "train_s": round(best, 3),
        "env_steps": steps,
        "env_steps_per_s": round(steps / best),
    }


def run() -> dict:
    """Environment steps per second of PG + GAE, TRPO and PPO on CartPole-v1, 5 vmapped seeds."""
    return {
        "device": str(jax.devices()[0]),
        "cpus": os.cpu_count(),
        "seeds": N_SEEDS,
        **{name: _measure(module, config) for name, (module, config) in AGENTS.items()},
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
