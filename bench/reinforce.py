"""REINFORCE's throughput on CartPole-v1: environment steps per second, 1 seed and 5 vmapped seeds.

``run()`` returns a dict for ``make bench`` (``bookbuild.bench`` collects it into
``_build/bench.json``); ``python bench/reinforce.py`` prints it. Compile time is
measured apart from training time. "Simulated" steps are every step the scan
executes (N environments × the 500-step horizon per update, including the steps
after an episode ended, which carry zero weight); "episode" steps are those
inside the episodes REINFORCE learns from.
"""

from __future__ import annotations

import json
import os
import time

import jax

from rlbook.agents import reinforce

CONFIG = reinforce.Config(
    env_name="CartPole-v1",
    n_updates=100,
    n_episodes=16,
    learning_rate=0.005,
    hidden=(32, 32),
    gamma=0.99,
)


def _measure(n_seeds: int, repeats: int = 2) -> dict:
    train = reinforce.make_train(CONFIG)
    keys = jax.random.split(jax.random.PRNGKey(0), n_seeds)
    fn = jax.jit(jax.vmap(train)) if n_seeds > 1 else jax.jit(train)
    args = keys if n_seeds > 1 else keys[0]
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = fn.lower(args).compile()
    compile_s, compile_cpu = time.perf_counter() - t0, time.process_time() - c0
    best, best_cpu, metrics = float("inf"), float("inf"), None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        _, metrics = jax.block_until_ready(compiled(args))
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    horizon = reinforce.components(CONFIG)[-1]
    simulated = n_seeds * CONFIG.n_updates * CONFIG.n_episodes * horizon
    episode_steps = int(metrics["steps"].sum())
    return {
        "compile_s": round(compile_s, 2),
        "compile_cpu_s": round(compile_cpu, 2),
        "train_s": round(best, 3),
        "train_cpu_s": round(best_cpu, 3),
        "simulated_steps": simulated,
        "simulated_steps_per_s": round(simulated / best),
        "episode_steps": episode_steps,
        "episode_steps_per_s": round(episode_steps / best),
    }


def run() -> dict:
    """Steps per second of the chapter's REINFORCE configuration, 1 seed and 5 vmapped seeds."""
    return {
        "config": repr(CONFIG),
        "device": str(jax.devices()[0]),
        "cpus": os.cpu_count(),
        "1_seed": _measure(1),
        "5_seeds_vmapped": _measure(5),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
