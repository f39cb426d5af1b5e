"""Throughput of DDPG, TD3 and SAC on Pendulum, and how close their updates run to a matmul
roofline.

``run() -> dict`` (collected by ``make bench``) measures, for each algorithm at two sizes,

* ``chapter``: the chapter's configuration (64×64 networks, batch 128, one update every
  second step, 20,000 steps with evaluations), run in full: 1 seed, and 5 seeds vmapped;
* ``256x256``: the common library default (256×256 networks, batch 256, one update per
  step), in a short run of ``SHORT_STEPS`` steps: 1 seed, and 5 seeds vmapped;

the environment steps per second (aggregate seed-steps per second for 5 seeds), the
compile time, the final evaluation return (median over seeds; for the short runs it
only says the run did not break), and the achieved GFLOP/s of one seed's update (its
matrix products counted by hand, and XLA's own FLOP count, over the time of a scan of
updates) against a plain JAX roofline: a scan of matmuls of the hidden layer's shape
[B, H] @ [H, H] on the same machine.
Everything runs on one CPU machine in well under ten minutes.
"""

from __future__ import annotations

import time
from itertools import pairwise

import jax
import jax.numpy as jnp
import numpy as np

from rlbook.agents import ddpg, offpolicy, sac, td3

ALGOS = {"ddpg": ddpg, "td3": td3, "sac": sac}
SHORT_STEPS = 600
N_TIMED_UPDATES = 200
OBS, ACT = 3, 1
# matrix products of one seed's update, per critic/actor pass (forward = 1, forward + backward = 3)
# counted in critic-network and actor-network passes: (critic passes, actor passes)
PASSES = {
    # target: actor fwd + critic fwd; critic: fwd + bwd; actor loss: actor and critic fwd + bwd
    "ddpg": (1 + 3 + 3, 1 + 3),
    # twin critics: target 2 fwd, critic 2 × 3; actor every other update on one critic: (3 + 3) / 2
    "td3": (2 + 6 + 1.5, 1 + 1.5),
    # target: actor fwd + 2 critic fwd; critics 2 × 3; actor loss: actor fwd+bwd, 2 critics fwd+bwd
    "sac": (2 + 6 + 6, 1 + 3),
}


def _configs(mod, size):
    if size == "chapter":
        return mod.Config(total_steps=20_000, train_every=2, eval_every=1_000, eval_episodes=5)
    return mod.Config(
        total_steps=SHORT_STEPS,
        learning_starts=100,
        hidden=(256, 256),
        batch_size=256,
        eval_every=SHORT_STEPS,
        eval_episodes=2,
        buffer_size=SHORT_STEPS,
    )


def _time_train(mod, cfg, n_seeds):
    train = mod.make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(0), n_seeds)
    f = jax.jit(jax.vmap(train)) if n_seeds > 1 else jax.jit(train)
    args = keys if n_seeds > 1 else keys[0]
    t0 = time.perf_counter()
    compiled = f.lower(args).compile()
    t1 = time.perf_counter()
    _, metrics = jax.block_until_ready(compiled(args))
    t2 = time.perf_counter()
    final = np.atleast_1d(np.asarray(metrics["eval_return"])[..., -1])
    return {
        "compile_s": t1 - t0,
        "run_s": t2 - t1,
        "steps_per_s": n_seeds * cfg.total_steps / (t2 - t1),
        "final_return_median": float(np.median(final)),
    }


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, list):
        cost = cost[0]
    return float(cost.get("flops", float("nan")))


def _update_gflops(name, mod, cfg):
    """Achieved GFLOP/s of one seed's update, and the matmul roofline of the same shapes."""
    agent = mod.agent(cfg)
    state = agent.init(jax.random.PRNGKey(0), OBS, ACT)
    b = cfg.batch_size
    rng = np.random.default_rng(0)
    batch = offpolicy.Transition(
        jnp.asarray(rng.normal(size=(b, OBS)), jnp.float32),
        jnp.asarray(rng.uniform(-1, 1, (b, ACT)), jnp.float32),
        jnp.asarray(rng.normal(size=b), jnp.float32),
        jnp.asarray(rng.normal(size=(b, OBS)), jnp.float32),
        jnp.zeros(b, bool),
    )
    one = (
        jax.jit(lambda s, k: agent.update(k, s, batch, 0))
        .lower(state, jax.random.PRNGKey(1))
        .compile()
    )
    flops = _flops(one)

    def many(state, key):
        def body(s, xs):
            k, t = xs
            s, m = agent.update(k, s, batch, t)
            return s, m["critic_loss"]

        return jax.lax.scan(
            body, state, (jax.random.split(key, N_TIMED_UPDATES), jnp.arange(N_TIMED_UPDATES))
        )

    f = jax.jit(many).lower(state, jax.random.PRNGKey(1)).compile()
    jax.block_until_ready(f(state, jax.random.PRNGKey(1)))
    t = min(_timed(f, state, jax.random.PRNGKey(2)) for _ in range(3))

    # The update's matrix products, counted by hand: 2·B·n_in·n_out per product, times the
    # passes through each network (a forward pass is one product per layer, a backward pass two).
    h = cfg.hidden
    actor_out = 2 * ACT if name == "sac" else ACT
    c_pass, a_pass = PASSES[name]
    layers = [(n_in, n_out, c_pass) for n_in, n_out in pairwise([OBS + ACT, *h, 1])] + [
        (n_in, n_out, a_pass) for n_in, n_out in pairwise([OBS, *h, actor_out])
    ]
    mm_flops = sum(2 * b * n_in * n_out * p for n_in, n_out, p in layers)

    # Roofline: a plain JAX matmul of the hidden layer's shape [B, H] @ [H, H], chained in a
    # scan of the same length (x ← x W with W = I, so the values stay put and nothing else runs).
    x0, w = jnp.ones((b, h[0]), jnp.float32), jnp.eye(h[0], dtype=jnp.float32)
    g = (
        jax.jit(
            lambda x, w: jax.lax.scan(lambda x, _: (x @ w, None), x, None, length=N_TIMED_UPDATES)[
                0
            ]
        )
        .lower(x0, w)
        .compile()
    )
    jax.block_until_ready(g(x0, w))
    tg = min(_timed(g, x0, w) for _ in range(3))
    roofline = 2 * b * h[0] * h[0] * N_TIMED_UPDATES / tg / 1e9
    return {
        "update_gflop_xla": flops / 1e9,
        "update_gflop_matmul": mm_flops / 1e9,
        "update_ms": 1e3 * t / N_TIMED_UPDATES,
        "achieved_gflops_xla": flops * N_TIMED_UPDATES / t / 1e9,
        "achieved_matmul_gflops": mm_flops * N_TIMED_UPDATES / t / 1e9,
        "matmul_roofline_gflops": roofline,
        "fraction_of_roofline": mm_flops * N_TIMED_UPDATES / t / 1e9 / roofline,
    }


def _timed(f, *args):
    t = time.perf_counter()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - t


def run() -> dict:
    out = {}
    for size in ("chapter", "256x256"):
        for name, mod in ALGOS.items():
            cfg = _configs(mod, size)
            row = {
                "hidden": list(cfg.hidden),
                "batch_size": cfg.batch_size,
                "train_every": cfg.train_every,
                "total_steps": cfg.total_steps,
            }
            row["seed1"] = _time_train(mod, cfg, 1)
            row["seeds5"] = _time_train(mod, cfg, 5)
            row.update(_update_gflops(name, mod, cfg))
            out[f"{name}_{size}"] = row
            print(
                f"{name:4s} {size:8s} 1 seed {row['seed1']['steps_per_s']:8.0f} steps/s "
                f"(compile {row['seed1']['compile_s']:.1f} s) | 5 seeds "
                f"{row['seeds5']['steps_per_s']:8.0f} seed-steps/s "
                f"(compile {row['seeds5']['compile_s']:.1f} s) | final "
                f"{row['seeds5']['final_return_median']:7.1f} | update "
                f"{row['update_ms']:.2f} ms, {row['update_gflop_matmul'] * 1e3:.1f} MFLOP of "
                f"matmuls ({row['update_gflop_xla'] * 1e3:.1f} by XLA's count): "
                f"{row['achieved_matmul_gflops']:.1f} GFLOP/s vs a plain matmul's "
                f"{row['matmul_roofline_gflops']:.1f} ({100 * row['fraction_of_roofline']:.0f}%)",
                flush=True,
            )
    return out


if __name__ == "__main__":
    t = time.perf_counter()
    run()
    print(f"bench/offpolicy.py: {time.perf_counter() - t:.0f} s")
