"""Aggregate throughput over seeds: 1, 5, 16 and 64 vmapped seeds, on one core and on all.

``run() -> dict`` (collected by ``make bench``) starts one subprocess per setup, because
the device count and XLA:CPU's thread count are fixed when JAX starts:

* 1 device, 1 thread: what ``import rlbook`` gives (``PJRT_NPROC=1``, see the README);
* 1 device, one thread per core: XLA's own intra-op threading of each operation;
* one device per core (``XLA_FLAGS=--xla_force_host_platform_device_count=D``), one
  thread per core: :func:`rlbook.parallel.run_seeds` splits the seeds across devices,
  and each device runs its share on its own thread.

In each, short runs of PPO (CartPole, the trust-region chapter's sizes), DQN (CartPole,
the Q-learning chapter's sizes) and SAC (Pendulum, the off-policy chapters' sizes,
threefry keys so that it can be sharded) go through ``run_seeds`` for every seed count.
The report gives, per setup, agent and seed count, the compile time and the aggregate
seed-steps per second (environment steps summed over seeds, per second of the compiled
run), and the speed-up over one seed in the first setup.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

SEED_COUNTS = (1, 5, 16, 64)


def _agents():
    from rlbook.agents import dqn, ppo, sac

    return {
        "ppo": (ppo.make_train(ppo.Config(n_updates=10)), 10 * 8 * 64),
        "dqn": (
            dqn.make_train(dqn.DQNConfig(total_steps=3_000, learning_starts=500, log_every=1_000)),
            3_000,
        ),
        "sac": (
            sac.make_train(
                sac.Config(
                    total_steps=1_500,
                    learning_starts=500,
                    train_every=2,
                    eval_every=1_500,
                    eval_episodes=1,
                    rng_impl="threefry2x32",
                )
            ),
            1_500,
        ),
    }


def worker() -> dict:
    """Time every agent at every seed count on all of this process's devices."""
    import jax

    from rlbook import parallel

    out = {"devices": jax.device_count()}
    for name, (train, steps) in _agents().items():
        rows = {}
        for n in SEED_COUNTS:
            keys = jax.random.split(jax.random.PRNGKey(0), n)
            t0 = time.perf_counter()
            jax.block_until_ready(parallel.run_seeds(train, keys))  # compile + run
            t1 = time.perf_counter()
            jax.block_until_ready(parallel.run_seeds(train, jax.random.split(keys[0], n)))
            t2 = time.perf_counter()
            # compile_s: the first call (compile, then run) less the second (run only, new keys)
            rows[str(n)] = {
                "compile_s": round(max(t1 - t0 - (t2 - t1), 0.0), 2),
                "run_s": round(t2 - t1, 3),
                "seed_steps_per_s": round(n * steps / (t2 - t1)),
            }
            print(
                f"scaleout: {jax.device_count()} device(s), {name}, {n} seeds: {rows[str(n)]}",
                file=sys.stderr,
                flush=True,
            )
        out[name] = rows
    return out


def _setups() -> list[tuple[int, int]]:
    """(devices, XLA:CPU threads) per worker: rlbook's default, then the cores used two ways."""
    cores = os.cpu_count() or 1
    setups = [(1, 1)]
    if cores > 1:
        setups += [(1, cores), (cores, cores)]
    return setups


def run() -> dict:
    """One worker per setup; speed-ups against one seed on one device with one thread."""
    report = {"seed_counts": list(SEED_COUNTS)}
    for d, threads in _setups():
        env = dict(os.environ, PJRT_NPROC=str(threads))
        env["XLA_FLAGS"] = (
            env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={d}"
        ).strip()
        proc = subprocess.run(
            [sys.executable, __file__, "--worker"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode:
            raise RuntimeError(
                f"scaleout worker ({d} devices, {threads} threads) failed:\n{proc.stderr[-3000:]}"
            )
        report[f"{d} device(s), {threads} thread(s)"] = json.loads(
            proc.stdout.strip().splitlines()[-1]
        )
    base = report["1 device(s), 1 thread(s)"]
    for key, res in report.items():
        if not key.endswith("thread(s)"):
            continue
        for name in ("ppo", "dqn", "sac"):
            one = base[name]["1"]["seed_steps_per_s"]
            for row in res[name].values():
                row["speedup_vs_1_seed_1_device"] = round(row["seed_steps_per_s"] / one, 2)
    return report


if __name__ == "__main__":
    if "--worker" in sys.argv:
        print(json.dumps(worker()))
    else:
        print(json.dumps(run(), indent=2))
