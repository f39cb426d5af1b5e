r"""Natural policy gradient with a KL-sized step (Kakade 2001; Schulman et al. 2015, §C).

Every update samples N fresh episodes with π_θ exactly as REINFORCE does, and
estimates the same vanilla gradient ĝ (``rlbook.agents.reinforce``:
:func:`~rlbook.agents.reinforce.rollout`, :func:`~rlbook.agents.reinforce.targets` and
the surrogate :func:`~rlbook.agents.reinforce.loss` are that module's). Instead of an
optimizer step it then solves (F̂ + λI) s = ĝ by conjugate gradient on
Fisher-vector products of the mean KL over the visited states, and steps

    θ ← θ + β s,   β = √(2δ / sᵀF̂s),

so that the second-order KL of every update is δ (``rlbook.natural.natural_step``;
the book's chapter "Natural policy gradient", algorithm ``npg-alg-npg``). Without a
line search this is the step TRPO refines.

``make_train(config)`` returns a pure ``train(key) -> (TrainState, metrics)`` that
runs ``config.n_updates`` updates in one ``lax.scan``; ``jax.vmap`` over keys runs
several seeds for one compile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlbook import _checks, envs, natural, policies
from rlbook.agents import reinforce

__all__ = ["Config", "TrainState", "mean_kl", "update", "make_step", "make_train"]


@dataclass(frozen=True)
class Config:
    """Hyperparameters of the natural policy gradient; ``__post_init__`` checks every field."""

    env_name: str = "CartPole-v1"
    """Gymnasium id of the environment (``rlbook.envs.make``)."""
    n_updates: int = 100
    """Number of natural-gradient steps (iterations of the outer ``lax.scan``)."""
    n_episodes: int = 16
    """N, episodes per update (environments run side by side under ``vmap``)."""
    horizon: int | None = None
    """Steps simulated per episode; ``None`` is the environment's time limit (500 for CartPole)."""
    gamma: float = 0.99
    """Discount γ ∈ [0, 1] of the returns G_t."""
    max_kl: float = 0.01
    """δ > 0, the second-order mean KL ½ βsᵀF̂βs of every step."""
    damping: float = 0.1
    """λ ≥ 0 added to F̂ in the conjugate-gradient solve (caps its condition number)."""
    cg_iters: int = 10
    """Largest number of conjugate-gradient iterations (Fisher-vector products) per update."""
    cg_tol: float = 1e-8
    """Relative residual at which conjugate gradient stops early."""
    hidden: tuple[int, ...] = (32, 32)
    """Widths of the policy MLP's hidden layers (tanh)."""
    reward_to_go: bool = True
    """Ψ_t = G_t (reward-to-go) if True, the whole return G_0 if False."""
    discount_states: bool = False
    """Multiply Ψ_t by γᵗ (the exact gradient of J) if True; drop γᵗ (common practice) if False."""

    def __post_init__(self):
        names = ("CartPole-v1", "Pendulum-v1")
        _checks.one_of("env_name", self.env_name, names)
        _checks.positive_int("n_updates", self.n_updates)
        _checks.positive_int("n_episodes", self.n_episodes)
        if self.horizon is not None:
            _checks.positive_int("horizon", self.horizon)
        _checks.discount("gamma", self.gamma, allow_one=True)
        _checks.positive("max_kl", self.max_kl)
        _checks.positive("damping", self.damping, strict=False)
        _checks.positive_int("cg_iters", self.cg_iters)
        _checks.positive("cg_tol", self.cg_tol, strict=False)
        _checks.widths("hidden", self.hidden)
        for name in ("reward_to_go", "discount_states"):
            _checks.flag(name, getattr(self, name))


class TrainState(NamedTuple):
    """Parameters θ of the policy (a natural step keeps no optimizer state)."""

    params: object


def mean_kl(policy, obs, mask):
    """``kl(params_old, params_new)``: E_s KL(π_old(· | s) ‖ π_new(· | s)) over the visited states.

    ``obs`` has leaves [T, N, obs_dim] and ``mask`` [T, N] marks the states that count
    (the first episode of each environment); the result is the masked mean, the
    mean-KL function of ``rlbook.natural``.
    """
    weights = mask / jnp.maximum(jnp.sum(mask), 1)

    def kl(params_old, params_new):
        per_state = jax.vmap(jax.vmap(policy.kl, (None, None, 0)), (None, None, 0))(
            params_old, params_new, obs
        )
        return jnp.sum(weights * per_state)

    return kl


def update(params, policy, traj, mask, weights, config: Config):
    """One natural step from a batch: ``(params, natural.NaturalStep, ĝ)``.

    ĝ = −∇L(θ) for REINFORCE's surrogate L (``reinforce.loss``); the step solves
    (F̂ + λI) s = ĝ with F̂ the Hessian of :func:`mean_kl` and moves by β s with
    ½ β² sᵀF̂s = δ. Conjugate gradient cannot raise under ``jit``: a non-positive
    curvature (impossible for λ > 0) would stop it early, and the step's ``cg`` reports it.
    """
    grads = jax.grad(reinforce.loss)(params, policy, traj, weights)
    g_hat = jax.tree_util.tree_map(jnp.negative, grads)
    kl = mean_kl(policy, traj.obs, mask.astype(traj.reward.dtype))
    step = natural.natural_step(
        kl,
        params,
        g_hat,
        max_kl=config.max_kl,
        damping=config.damping,
        max_iter=config.cg_iters,
        tol=config.cg_tol,
        on_nonpositive="stop",
    )
    return step.params, step, g_hat


def make_step(config: Config):
    """``step(params, key) -> (params, metrics)``: one natural-gradient update.

    Metrics: ``return`` (mean undiscounted return of the N episodes), ``steps``
    (their total length), ``kl`` (the true mean KL of the step on the batch),
    ``predicted_kl`` (½β²sᵀF̂s = δ), ``cg_iterations`` and ``grad_norm`` (‖ĝ‖).
    """
    env, env_params = envs.make(config.env_name)
    policy = policies.for_env(env, config.hidden)
    horizon = config.horizon or int(env_params.max_steps)

    def step(params, key):
        traj, mask = reinforce.rollout(
            key, policy, params, env, env_params, config.n_episodes, horizon
        )
        weights = reinforce.targets(
            traj, mask, config.gamma, config.reward_to_go, config.discount_states
        )
        new_params, nat, g_hat = update(params, policy, traj, mask, weights, config)
        kl = mean_kl(policy, traj.obs, mask.astype(traj.reward.dtype))
        metrics = {
            "return": jnp.sum(jnp.where(mask, traj.reward, 0.0)) / config.n_episodes,
            "steps": jnp.sum(mask),
            "kl": kl(params, new_params),
            "predicted_kl": nat.predicted_kl,
            "cg_iterations": nat.cg.iterations,
            "grad_norm": jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(g_hat))),
        }
        return new_params, metrics

    return step


def make_train(config: Config):
    """``train(key) -> (TrainState, metrics)``: ``config.n_updates`` updates in one ``lax.scan``.

    Pure and jittable; ``metrics`` holds one entry per update (leaves [n_updates]).
    The policy's initialization draws the same key as REINFORCE's ``make_train``, so
    the two start from the same θ₀ for the same seed.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be a npg.Config, got {type(config).__name__}")
    env, _ = envs.make(config.env_name)
    policy = policies.for_env(env, config.hidden)
    step = make_step(config)

    def train(key):
        k_init, k_updates = jax.random.split(key)
        params = policy.init(k_init)
        params, metrics = jax.lax.scan(step, params, jax.random.split(k_updates, config.n_updates))
        return TrainState(params), metrics

    return train
