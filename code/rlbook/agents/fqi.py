r"""Fitted Q-iteration over continuous actions: explicit maximization, and its amortization.

Fitted Q-iteration (Ernst et al. 2005; Riedmiller 2005) on a fixed batch
D = {(s, a, r, s')} repeats, for k = 0, 1, …,

    y_i = r_i + γ max_{a'} Q_k(s'_i, a'),     Q_{k+1} = argmin_Q Σ_i (Q(s_i, a_i) − y_i)².

With continuous actions the max is itself an optimization per sample
(:func:`maximize`, or the gradient-free :func:`cem_maximize`). The amortized version
replaces it by a policy network:
``actor="regression"`` fits μ_w to the maximizers a*(s) = argmax_a Q_k(s, a)
of the last ``window`` iterations (stale ones included: the sliding window),
and ``actor="gradient"`` is NFQCA (Hafner & Riedmiller 2011), ascending
Q_{k+1}(s, μ_w(s)) by the chain rule, with no maximization at all. Both
bootstrap from y_i = r_i + γ Q_k(s'_i, μ_w(s'_i)). Chapter labels ``cc-alg-fqi``,
``cc-alg-afqi``, ``cc-alg-nfqca``. Actions are normalized to [−1, 1]^D.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlbook import _checks, nets
from rlbook.agents.offpolicy import ENV, PARAMS, Transition, actor_apply, critic_apply

__all__ = ["Config", "maximize", "cem_maximize", "random_dataset", "fit", "run"]


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings of fitted Q-iteration on Pendulum."""

    iterations: int = 25
    """Outer iterations k (each one fit of Q_{k+1})."""
    fit_steps: int = 100
    """Adam minibatch steps per fit of Q (warm-started from Q_k)."""
    batch_size: int = 256
    """Minibatch size of every fit."""
    hidden: tuple[int, ...] = (32, 32)
    """Hidden widths of the critic and the policy."""
    gamma: float = 0.95
    """Discount γ."""
    lr: float = 3e-3
    """Adam step size."""
    actor: str = "explicit"
    """"explicit" (maximize per sample), "regression" (fit μ_w to maximizers), "gradient"
    (NFQCA)."""
    window: int = 5
    """Iterations of maximizers kept for the regression actor (the sliding window)."""
    n_maximized: int = 256
    """States per iteration whose maximizers enter the window."""
    actor_steps: int = 50
    """Adam steps of the policy per iteration."""

    def __post_init__(self):
        validate(self)


def validate(config: Config) -> None:
    for name in ("iterations", "fit_steps", "batch_size", "window", "n_maximized", "actor_steps"):
        _checks.positive_int(f"config.{name}", getattr(config, name))
    _checks.nonempty_widths("config.hidden", config.hidden)
    _checks.discount("config.gamma", config.gamma)
    _checks.positive("config.lr", config.lr)
    if config.actor not in ("explicit", "regression", "gradient"):
        raise ValueError(
            f"config.actor must be 'explicit', 'regression' or 'gradient', got {config.actor!r}"
        )


def maximize(
    q, dim: int = 1, n_starts: int = 3, n_steps: int = 15, step0: float = 0.5, decay: float = 0.7
):
    """argmax_{a ∈ [−1, 1]^D} q(a) by projected sign-gradient ascent, best of ``n_starts`` starts.

    a ← clip(a + η_j sign ∇q(a), −1, 1) with η_j = step0 · decay^j: insensitive to the
    scale of q, resolution step0 · decay^(n_steps−1). Returns (a*, q(a*)). Costs
    n_starts · n_steps evaluations of q and its gradient: the price of the explicit max.
    """
    if not callable(q):
        raise ValueError(f"q must be callable (a -> q(a), a scalar), got {q!r}")
    for name, n in (("dim", dim), ("n_starts", n_starts), ("n_steps", n_steps)):
        _checks.positive_int(name, n)
    _checks.positive("step0", step0)
    _checks.interval("decay", decay, 0.0, 1.0, low_open=True)
    f32 = jnp.float32
    starts = jnp.linspace(-0.6, 0.6, n_starts, dtype=f32)[:, None] * jnp.ones((1, dim), f32)
    grad = jax.grad(q)

    def ascend(a):
        def body(a, eta):
            return jnp.clip(a + eta * jnp.sign(grad(a)).astype(f32), -1.0, 1.0), None

        a, _ = jax.lax.scan(body, a, step0 * decay ** jnp.arange(n_steps, dtype=f32))
        return a

    a = jax.vmap(ascend)(starts)
    v = jax.vmap(q)(a)
    return a[jnp.argmax(v)], jnp.max(v)


def cem_maximize(
    key,
    f,
    mean,
    std,
    *,
    n_samples: int = 64,
    n_elite: int = 8,
    n_iters: int = 10,
    low: float = -1.0,
    high: float = 1.0,
    min_std: float = 1e-3,
):
    """argmax_{a ∈ [low, high]^D} f(a) by the cross-entropy method (Rubinstein 1999).

    Each of ``n_iters`` rounds draws ``n_samples`` actions a ~ N(μ, diag σ²) clipped to
    the box, keeps the ``n_elite`` with the largest f(a), and refits μ and σ to them (their
    mean and standard deviation, σ floored at ``min_std``). It starts from ``mean`` and
    ``std`` (shape [D], or a scalar std), uses no gradient of f, and returns (a*, f(a*)),
    the best sample of all rounds. Costs n_iters · n_samples evaluations of f. Jittable
    with the sizes static; ``key`` is a JAX PRNG key.
    """
    if not callable(f):
        raise ValueError(f"f must be callable (a -> f(a), a scalar), got {f!r}")
    for name, n in (("n_samples", n_samples), ("n_elite", n_elite), ("n_iters", n_iters)):
        _checks.positive_int(name, n)
    if n_elite > n_samples:
        raise ValueError(f"n_elite must be at most n_samples = {n_samples}, got {n_elite}")
    if np.shape(key) != (2,) and not (
        hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    ):
        raise ValueError(f"key must be a JAX PRNG key, got shape {np.shape(key)}")
    _checks.ndim("mean", mean, 1)
    if np.ndim(std) > 1 or (np.ndim(std) == 1 and np.shape(std) != np.shape(mean)):
        raise ValueError(f"std must be a scalar or of shape {np.shape(mean)}, got {np.shape(std)}")
    _checks.finite("mean", mean)
    _checks.positive("std", std)
    _checks.positive("min_std", min_std, strict=False)
    for name, x in (("low", low), ("high", high)):
        _checks.finite(name, x)
        if np.ndim(x) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {np.shape(x)}")
    if _checks.is_concrete(low) and _checks.is_concrete(high) and not low < high:
        raise ValueError(f"low must be below high, got low = {low}, high = {high}")
    dtype = jnp.result_type(jnp.asarray(mean).dtype, jnp.float32)
    mean = jnp.asarray(mean, dtype)
    std = jnp.broadcast_to(jnp.asarray(std, dtype), mean.shape)

    def round_(carry, eps):
        mu, sigma, best_a, best_v = carry
        a = jnp.clip(mu + sigma * eps, low, high)
        v = jax.vmap(f)(a)
        top, idx = jax.lax.top_k(v, n_elite)
        elite = a[idx]
        better = top[0] > best_v
        best_a = jnp.where(better, elite[0], best_a)
        best_v = jnp.where(better, top[0], best_v)
        return (elite.mean(0), jnp.maximum(elite.std(0), min_std), best_a, best_v), None

    a0 = jnp.clip(mean, low, high)
    noise = jax.random.normal(key, (n_iters, n_samples, *mean.shape), dtype)  # drawn at once
    (_, _, a, v), _ = jax.lax.scan(round_, (mean, std, a0, jnp.asarray(f(a0))), noise)
    return a, v


def random_dataset(key, n: int) -> Transition:
    """n transitions of Pendulum from uniform states (θ ∈ [−π, π), θ̇ ∈ [−8, 8]) and actions."""
    _checks.positive_int("n", n)
    k1, k2, k3 = jax.random.split(key, 3)
    th = jax.random.uniform(k1, (n,), jnp.float32, -jnp.pi, jnp.pi)
    thdot = jax.random.uniform(k2, (n,), jnp.float32, -8.0, 8.0)
    a = jax.random.uniform(k3, (n, ENV.action_dim), jnp.float32, -1.0, 1.0)

    def one(th, thdot, a):
        state = ENV.reset(jax.random.PRNGKey(0), PARAMS)[1]._replace(theta=th, theta_dot=thdot)
        _, next_obs, r, term = ENV.step_env(state, a * ENV.action_high, PARAMS)
        return Transition(ENV.observe(state), a, r, next_obs, term)

    return jax.vmap(one)(th, thdot, a)


def fit(key, params, opt_state, optimizer, loss, n_steps: int, batch_size: int, n: int, *args):
    """``n_steps`` Adam steps of ``loss(params, idx, *args)`` on minibatches idx of range(n)."""

    def step(carry, k):
        params, opt_state = carry
        idx = jax.random.randint(k, (batch_size,), 0, n)
        g = jax.grad(loss)(params, idx, *args)
        updates, opt_state = optimizer.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), jax.random.split(key, n_steps))
    return params, opt_state


class Result(NamedTuple):
    critic: nets.Params
    actor: nets.Params  # unused (initial) for the explicit version
    mean_target: jax.Array  # [iterations], the mean of y_i at each iteration


def run(key, data: Transition, config: Config) -> Result:
    """Fitted Q-iteration on ``data`` (pure and jittable with ``config`` static)."""
    validate(config)
    n, obs_dim = data.obs.shape
    act_dim = data.action.shape[-1]
    k_c, k_a, key = jax.random.split(key, 3)
    critic = nets.mlp_init(k_c, [obs_dim + act_dim, *config.hidden, 1])
    actor = nets.mlp_init(k_a, [obs_dim, *config.hidden, act_dim], final_scale=0.1)
    opt = optax.adam(config.lr)
    window = Transition(
        jnp.zeros((config.window * config.n_maximized, obs_dim), jnp.float32),
        jnp.zeros((config.window * config.n_maximized, act_dim), jnp.float32),
        None,
        None,
        None,
    )

    def q_loss(critic, idx, y):
        q = critic_apply(critic, data.obs[idx], data.action[idx])
        return 0.5 * jnp.mean((q - y[idx]) ** 2)

    def regression_loss(actor, idx, obs, a_star):
        return 0.5 * jnp.mean(jnp.sum((actor_apply(actor, obs[idx]) - a_star[idx]) ** 2, -1))

    def ascent_loss(actor, idx, critic):
        obs = data.obs[idx]
        return -jnp.mean(critic_apply(critic, obs, actor_apply(actor, obs)))

    def argmax_all(critic, obs):
        return jax.vmap(lambda s: maximize(lambda a: critic_apply(critic, s, a), act_dim))(obs)

    def iteration(carry, inputs):
        critic, c_opt, actor, a_opt, window = carry
        k, it = inputs
        k_fit, k_sub, k_act = jax.random.split(k, 3)
        if config.actor == "explicit":
            _, v_next = argmax_all(critic, data.next_obs)
        else:
            v_next = critic_apply(critic, data.next_obs, actor_apply(actor, data.next_obs))
        # In float32 throughout (``terminated`` is a bool: ``1.0 - terminated`` would be a
        # float64 vector when x64 is on).
        y = (
            data.reward + config.gamma * (1.0 - data.terminated.astype(jnp.float32)) * v_next
        ).astype(jnp.float32)
        critic, c_opt = fit(
            k_fit, critic, c_opt, opt, q_loss, config.fit_steps, config.batch_size, n, y
        )
        if config.actor == "regression":
            obs = data.obs[jax.random.randint(k_sub, (config.n_maximized,), 0, n)]
            a_star, _ = argmax_all(critic, obs)
            slot = (it % config.window) * config.n_maximized
            window = window._replace(
                obs=jax.lax.dynamic_update_slice_in_dim(window.obs, obs, slot, 0),
                action=jax.lax.dynamic_update_slice_in_dim(window.action, a_star, slot, 0),
            )
            filled = jnp.minimum(it + 1, config.window) * config.n_maximized  # slots in use
            actor, a_opt = fit(
                k_act,
                actor,
                a_opt,
                opt,
                regression_loss,
                config.actor_steps,
                config.batch_size,
                filled,
                window.obs,
                window.action,
            )
        elif config.actor == "gradient":
            actor, a_opt = fit(
                k_act,
                actor,
                a_opt,
                opt,
                ascent_loss,
                config.actor_steps,
                config.batch_size,
                n,
                critic,
            )
        return (critic, c_opt, actor, a_opt, window), jnp.mean(y)

    carry = (critic, opt.init(critic), actor, opt.init(actor), window)
    xs = (jax.random.split(key, config.iterations), jnp.arange(config.iterations))
    (critic, _, actor, _, _), mean_y = jax.lax.scan(iteration, carry, xs)
    return Result(critic, actor, mean_y)
