"""DQN throughput on CartPole-v1: environment steps per second, one seed and five vmapped seeds.

``run()`` is collected by ``make bench`` (``python -m bookbuild --bench``). It times the
configuration of the Q-learning chapter, shortened, and reports compile time separately
from the run, so the figures measure the training loop, not XLA.
"""

from __future__ import annotations

import dataclasses
import resource
import time

import jax

from rlbook.agents import dqn

CONFIG = dqn.DQNConfig(
    total_steps=10_000,
    hidden=(64, 64),
    learning_rate=5e-4,
    gamma=0.99,
    buffer_size=10_000,
    batch_size=64,
    learning_starts=1_000,
    train_every=1,
    target_period=250,
    huber_delta=None,
    epsilon_end=0.02,
    epsilon_steps=5_000,
    log_every=2_000,
)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _time(train, keys, n_seeds: int, total_steps: int) -> dict:
    t0, c0 = time.perf_counter(), _cpu_seconds()
    compiled = jax.jit(train).lower(keys).compile()
    t1, c1 = time.perf_counter(), _cpu_seconds()
    jax.block_until_ready(compiled(keys))
    t2, c2 = time.perf_counter(), _cpu_seconds()
    steps = n_seeds * total_steps
    return {
        "compile_s": round(t1 - t0, 2),
        "compile_cpu_s": round(c1 - c0, 2),
        "run_s": round(t2 - t1, 2),
        "run_cpu_s": round(c2 - c1, 2),
        "env_steps_per_s": round(steps / (t2 - t1)),
        "updates_per_s": round(
            n_seeds * (total_steps - CONFIG.learning_starts) / CONFIG.train_every / (t2 - t1)
        ),
    }


def run(config: dqn.DQNConfig = CONFIG) -> dict:
    """Steps per second of ``dqn.make_train(config)`` for 1 seed and 5 vmapped seeds."""
    train = dqn.make_train(config)
    key = jax.random.PRNGKey(0)
    out = {
        "config": {
            k: v
            for k, v in dataclasses.asdict(config).items()
            if k in ("total_steps", "hidden", "batch_size", "train_every", "n_envs")
        }
    }
    out["1 seed"] = _time(train, key, 1, config.total_steps)
    out["5 seeds (vmap)"] = _time(jax.vmap(train), jax.random.split(key, 5), 5, config.total_steps)
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
