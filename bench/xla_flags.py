"""XLA:CPU optimization flags: what each costs in compiling and gains in running an agent.

``run()`` is collected by ``make bench`` (``python -m bookbuild --bench``). For each flag
setting below and for SAC (the off-policy chapter's five seeds × 20,000 steps) and PPO
(its default configuration, five seeds), a fresh process with that ``XLA_FLAGS`` and no
compilation cache compiles the vmapped ``train`` and runs it once. It reports CPU
seconds (less sensitive than wall time to whatever else the machine runs) for the
compile and the run, and whether the run's metrics are bit-for-bit those of XLA's default
(backend optimization level 3): a flag that changes them changes the book's numbers in
their last bits, as another CPU would. ``import rlbook`` sets level 1 (rlbook/__init__.py)
unless XLA_FLAGS names a level, so every setting here names one.

``python bench/xla_flags.py`` prints the same table on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

SETTINGS = {
    "default": "--xla_backend_optimization_level=3",
    "O1 (rlbook's)": "--xla_backend_optimization_level=1",
    "no expensive LLVM passes": "--xla_backend_optimization_level=3 "
    "--xla_llvm_disable_expensive_passes=true",
    "both": "--xla_backend_optimization_level=1 --xla_llvm_disable_expensive_passes=true",
}

_ONE = r"""
import hashlib, json, sys, time
import jax, numpy as np
import rlbook
from rlbook import seeds
from rlbook.agents import ppo, sac

if sys.argv[1] == "sac":
    config = sac.Config(total_steps=20_000, learning_starts=1_000, buffer_size=20_000,
                        batch_size=128, train_every=2, hidden=(64, 64), gamma=0.99, tau=0.005,
                        actor_lr=1e-3, critic_lr=1e-3, eval_every=1_000, eval_episodes=5)
    train = jax.vmap(sac.make_train(config))
else:
    train = jax.vmap(ppo.make_train(ppo.Config()))
keys = seeds.train_keys(8, 5)
c0 = time.process_time()
compiled = jax.jit(train).lower(keys).compile()
c1 = time.process_time()
out = jax.block_until_ready(compiled(keys))
c2 = time.process_time()
digest = hashlib.sha256()
for leaf in jax.tree_util.tree_leaves(out[1]):
    digest.update(np.asarray(leaf).tobytes())
print(json.dumps({"compile_cpu_s": round(c1 - c0, 2), "run_cpu_s": round(c2 - c1, 2),
                  "metrics_sha256": digest.hexdigest()[:16]}))
"""


def _measure(agent: str, flags: str) -> dict:
    env = dict(os.environ, XLA_FLAGS=flags, PJRT_NPROC="1")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # every compile is a real one
    out = subprocess.run(
        [sys.executable, "-c", _ONE, agent], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> dict:
    report = {}
    for agent in ("sac", "ppo"):
        rows = {name: _measure(agent, flags) for name, flags in SETTINGS.items()}
        base = rows["default"]
        for row in rows.values():
            row["same_metrics_as_default"] = row["metrics_sha256"] == base["metrics_sha256"]
            row["compile_vs_default"] = round(row["compile_cpu_s"] / base["compile_cpu_s"], 2)
            row["run_vs_default"] = round(row["run_cpu_s"] / base["run_cpu_s"], 2)
        report[agent] = rows
    return report


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
