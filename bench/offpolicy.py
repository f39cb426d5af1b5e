"""Throughput of DDPG, TD3 and SAC on Pendulum, and how close their updates run to a matmul roofline.

``run() -> dict`` (collected by ``make bench``) measures, for each algorithm at two sizes,

* ``chapter``: the chapter's configuration (64×64 networks, batch 128, one update every
  second step, 20,000 steps with evaluations), run in full: 1 seed, and 5 seeds vmapped;
* ``256x256``: the common library default (256×256 networks, batch 256, one update per
  step), in a short run of ``SHORT_STEPS`` steps: 1 seed, and 5 seeds vmapped;

the environment steps per second (aggregate seed-steps per second for 5 seeds), the
compile time, the final evaluation return (median over seeds; for the short runs it
only says the run did not break), and the achieved GFLOP/s of one seed's update
(XLA's own FLOP count of one update, timed over a scan of updates) against a plain JAX
roofline: the same update's matrix products alone (forward, input-gradient and
weight-gradient products of every layer, same shapes, same count), timed the same way.
Everything runs on one CPU machine in well under ten minutes.
"""

from __future__ import annotations

import time

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
        return mod.Config(total_steps=20_000, train_every=2, eval_every=1_000, eval_episodes=10)
    return mod.Config(total_steps=SHORT_STEPS, learning_starts=100, hidden=(256, 256),
                      batch_size=256, eval_every=SHORT_STEPS, eval_episodes=2,
                      buffer_size=SHORT_STEPS)


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
    return {"compile_s": t1 - t0, "run_s": t2 - t1,
            "steps_per_s": n_seeds * cfg.total_steps / (t2 - t1),
            "final_return_median": float(np.median(final))}


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
        jnp.asarray(rng.normal(size=(b, OBS)), jnp.float32), jnp.zeros(b, bool))
    one = jax.jit(lambda s, k: agent.update(k, s, batch, 0)).lower(
        state, jax.random.PRNGKey(1)).compile()
    flops = _flops(one)

    def many(state, key):
        def body(s, xs):
            k, t = xs
            s, m = agent.update(k, s, batch, t)
            return s, m["critic_loss"]
        return jax.lax.scan(body, state, (jax.random.split(key, N_TIMED_UPDATES),
                                          jnp.arange(N_TIMED_UPDATES)))

    f = jax.jit(many).lower(state, jax.random.PRNGKey(1)).compile()
    jax.block_until_ready(f(state, jax.random.PRNGKey(1)))
    t = min(_timed(f, state, jax.random.PRNGKey(2)) for _ in range(2))
    achieved = flops * N_TIMED_UPDATES / t / 1e9

    # Roofline: the same matrix products with nothing else, as a scan of the same length.
    h = cfg.hidden
    critic_shapes = list(zip([OBS + ACT, *h], [*h, 1]))
    actor_out = 2 * ACT if name == "sac" else ACT
    actor_shapes = list(zip([OBS, *h], [*h, actor_out]))
    c_pass, a_pass = PASSES[name]
    per_layer = [(n_in, n_out, c_pass) for n_in, n_out in critic_shapes] + \
                [(n_in, n_out, a_pass) for n_in, n_out in actor_shapes]
    mats = [(jnp.ones((b, n_in), jnp.float32) * 0.01, jnp.ones((n_in, n_out), jnp.float32) * 0.01)
            for n_in, n_out, _ in per_layer]
    reps = [int(np.ceil(p)) for _, _, p in per_layer]
    mm_flops = sum(2 * b * n_in * n_out * r for (n_in, n_out, _), r in zip(per_layer, reps))

    def products(carry, _):
        acc = carry
        for (x, w), r in zip(mats, reps):
            for j in range(r):
                acc = acc + jnp.sum((x + acc) @ w)
        return acc, None

    g = jax.jit(lambda a: jax.lax.scan(products, a, None, length=N_TIMED_UPDATES)[0])
    g = g.lower(jnp.zeros((), jnp.float32)).compile()
    jax.block_until_ready(g(jnp.zeros((), jnp.float32)))
    tg = min(_timed(g, jnp.zeros((), jnp.float32)) for _ in range(2))
    roofline = mm_flops * N_TIMED_UPDATES / tg / 1e9
    return {"update_gflop": flops / 1e9, "update_ms": 1e3 * t / N_TIMED_UPDATES,
            "achieved_gflops": achieved, "matmul_roofline_gflops": roofline,
            "fraction_of_roofline": achieved / roofline}


def _timed(f, *args):
    t = time.perf_counter()
    jax.block_until_ready(f(*args))
    return time.perf_counter() - t


def run() -> dict:
    out = {}
    for size in ("chapter", "256x256"):
        for name, mod in ALGOS.items():
            cfg = _configs(mod, size)
            row = {"hidden": list(cfg.hidden), "batch_size": cfg.batch_size,
                   "train_every": cfg.train_every, "total_steps": cfg.total_steps}
            row["seed1"] = _time_train(mod, cfg, 1)
            row["seeds5"] = _time_train(mod, cfg, 5)
            row.update(_update_gflops(name, mod, cfg))
            out[f"{name}_{size}"] = row
            print(f"{name:4s} {size:8s} 1 seed {row['seed1']['steps_per_s']:8.0f} steps/s "
                  f"(compile {row['seed1']['compile_s']:.1f} s) | 5 seeds "
                  f"{row['seeds5']['steps_per_s']:8.0f} seed-steps/s "
                  f"(compile {row['seeds5']['compile_s']:.1f} s) | final "
                  f"{row['seeds5']['final_return_median']:7.1f} | update "
                  f"{row['update_gflop'] * 1e3:.1f} MFLOP, {row['achieved_gflops']:.1f} GFLOP/s "
                  f"vs matmul {row['matmul_roofline_gflops']:.1f} GFLOP/s", flush=True)
    return out


if __name__ == "__main__":
    t = time.perf_counter()
    run()
    print(f"bench/offpolicy.py: {time.perf_counter() - t:.0f} s")
