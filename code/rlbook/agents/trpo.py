r"""Trust-region policy optimization (Schulman et al. 2015) with a GAE(γ, λ) critic.

Every update runs N environments for T steps (``rlbook.rollouts``), computes the
advantages Â_t of generalized advantage estimation with a learned V_φ
(``rlbook.agents.actor_critic.targets``, i.e. ``rlbook.returns.gae``), and then
solves the trust-region problem

    max_θ' L_θ(θ') = mean_t[π_θ'(a_t | s_t) / π_θ(a_t | s_t) Â_t]
    subject to D̄(θ, θ') = mean_t KL(π_θ(· | s_t) ‖ π_θ'(· | s_t)) ≤ δ

approximately: the gradient g = ∇L_θ(θ) (the policy gradient), the direction
s ≈ (F + λI)⁻¹ g by conjugate gradient on Fisher-vector products and the maximal
step β = √(2δ / sᵀFs) come from ``rlbook.natural.natural_step``; then
:func:`line_search` shrinks the step θ + bᵏ β s, k = 0, 1, …, until the surrogate
improves and the *true* mean KL is at most δ, and keeps θ if no k works.
The critic takes a few Adam steps on the squared error to the λ-returns.

Two tiers for the line search, the part that is new here: :func:`line_search`
evaluates every candidate at once (a ``vmap`` over k, then the first that
passes), jittable; :func:`line_search_loop` is the same rule as a plain
``while`` loop, mirroring the chapter's algorithm ``tr-alg-trpo``; a test requires
they agree.

``make_train(config)`` returns ``train(key, max_kl=None) -> (TrainState, metrics)``,
one ``lax.scan`` over updates; δ may be passed as a traced array, so several δ and
seeds share one compile. Book chapter: "Trust regions, TRPO and PPO" (labels ``tr-``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from rlbook import _checks, envs, natural, nets, policies, rollouts
from rlbook.agents import actor_critic

__all__ = [
    "Config",
    "TrainState",
    "surrogate",
    "mean_kl",
    "LineSearch",
    "line_search",
    "line_search_loop",
    "update",
    "make_step",
    "make_train",
    "init_state",
]


@dataclass(frozen=True)
class Config:
    """Hyperparameters of TRPO; ``__post_init__`` checks every field."""

    env_name: str = "CartPole-v1"
    """Gymnasium id of the environment (``rlbook.envs.make``)."""
    n_updates: int = 100
    """Number of rollouts, each followed by one trust-region step of the policy."""
    n_envs: int = 8
    """N, environments run side by side under ``vmap``."""
    n_steps: int = 64
    """T, steps per environment per rollout; a rollout holds N·T transitions."""
    gamma: float = 0.99
    """Discount γ ∈ [0, 1) of the TD errors."""
    gae_lambda: float = 0.95
    """λ ∈ [0, 1] of GAE."""
    max_kl: float = 0.01
    """δ > 0, the trust region: the largest mean KL D̄(θ, θ') an accepted step may have."""
    damping: float = 0.1
    """λ_F ≥ 0 added to F in the conjugate-gradient solve."""
    cg_iters: int = 10
    """Largest number of conjugate-gradient iterations per update."""
    backtrack_coef: float = 0.5
    """b ∈ (0, 1): the line search tries the fractions 1, b, b², … of the maximal step."""
    backtrack_iters: int = 10
    """K, the number of fractions tried; with none accepted the policy stays put."""
    value_learning_rate: float = 3e-3
    """Adam's step size for the critic V_φ."""
    value_steps: int = 5
    """Full-batch Adam steps on the critic's squared error per rollout."""
    normalize_advantages: bool = True
    """Standardize Â over the rollout before forming the surrogate."""
    hidden: tuple[int, ...] = (32, 32)
    """Widths of the hidden layers of the policy and of the critic (tanh)."""

    def __post_init__(self):
        names = ("CartPole-v1", "Pendulum-v1")
        _checks.one_of("env_name", self.env_name, names)
        for name in (
            "n_updates",
            "n_envs",
            "n_steps",
            "cg_iters",
            "backtrack_iters",
            "value_steps",
        ):
            _checks.positive_int(name, getattr(self, name))
        _checks.discount("gamma", self.gamma)
        _checks.discount("gae_lambda", self.gae_lambda, allow_one=True)
        _checks.positive("max_kl", self.max_kl)
        _checks.positive("damping", self.damping, strict=False)
        _checks.interval(
            "backtrack_coef", self.backtrack_coef, 0.0, 1.0, low_open=True, high_open=True
        )
        _checks.positive("value_learning_rate", self.value_learning_rate)
        _checks.flag("normalize_advantages", self.normalize_advantages)
        _checks.widths("hidden", self.hidden)
        if self.normalize_advantages and self.n_envs * self.n_steps < 2:
            raise ValueError(
                "n_envs * n_steps must be at least 2 when normalize_advantages is "
                "True (one normalized advantage is always 0)"
            )


class TrainState(NamedTuple):
    """Carried from one update to the next.

    Attributes:
        params: ``{"policy": θ, "value": φ}``.
        value_opt_state: Adam's state for φ (the policy has no optimizer state).
        env: the environments between rollouts (``rlbook.rollouts.RolloutState``).
    """

    params: Any
    value_opt_state: Any
    env: rollouts.RolloutState


# --------------------------------------------------------------------------- surrogate and mean KL


def surrogate(policy, obs, action, old_log_prob, advantage):
    r"""``L(θ') = mean_i[exp(log π_θ'(a_i | s_i) − log π_θ(a_i | s_i)) Â_i]``, a function of θ'.

    The sampled surrogate of the chapter (``tr-def-surrogate``), up to the constant
    J(θ) and the factor 1/(1 − γ). ``obs`` [B, obs_dim], ``action`` [B, ...],
    ``old_log_prob`` and ``advantage`` [B]; returns ``L(params) -> scalar``. At θ' = θ
    its gradient is the policy-gradient estimate mean_i[∇ log π_θ(a_i | s_i) Â_i].
    """
    if np.shape(old_log_prob) != np.shape(advantage) or np.ndim(advantage) != 1:
        raise ValueError(
            f"old_log_prob and advantage must be vectors of one shape [B], got "
            f"{np.shape(old_log_prob)} and {np.shape(advantage)}"
        )
    if np.shape(obs)[0] != np.shape(advantage)[0]:
        raise ValueError(f"obs must have B = {np.shape(advantage)[0]} rows, got {np.shape(obs)}")
    log_prob = jax.vmap(policy.log_prob, (None, 0, 0))

    def L(params):
        return jnp.mean(jnp.exp(log_prob(params, obs, action) - old_log_prob) * advantage)

    return L


def mean_kl(policy, obs):
    """``kl(θ, θ') = mean_i KL(π_θ(·|s_i) ‖ π_θ'(·|s_i))`` over the rows of ``obs`` [B, obs_dim].

    The mean-KL function of ``rlbook.natural``.
    """
    if np.ndim(obs) != 2:
        raise ValueError(f"obs must have shape [B, obs_dim], got {np.shape(obs)}")

    def kl(params_old, params_new):
        return jnp.mean(jax.vmap(policy.kl, (None, None, 0))(params_old, params_new, obs))

    return kl


# --------------------------------------------------------------------------- the line search


class LineSearch(NamedTuple):
    """Output of :func:`line_search`.

    Attributes:
        params: θ + bᵏ β s for the first accepted k, or θ when none is accepted.
        accepted: whether some k was accepted.
        fraction: bᵏ of the accepted step (0 when none).
        kl: the true mean KL D̄(θ, new params) (0 when none).
        improvement: L(new params) − L(θ) (0 when none).
        n_tried: the number of candidates evaluated by the sequential rule: k + 1, or K.
    """

    params: Any
    accepted: jax.Array
    fraction: jax.Array
    kl: jax.Array
    improvement: jax.Array
    n_tried: jax.Array


def _check_line_search(objective, kl, params, full_step, max_kl, backtrack_coef, backtrack_iters):
    """The arguments of :func:`line_search` and :func:`line_search_loop`, refused by name;
    traced values (inside the jitted update) get their shapes checked only."""
    for name, f in (("objective", objective), ("kl", kl)):
        if not callable(f):
            raise TypeError(f"{name} must be a callable of a parameter pytree, got {f!r}")
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError(f"params must be a pytree of parameter arrays, got {params!r}")
    for leaf in leaves:
        _checks.finite("params", leaf)
    _checks.finite("full_step", full_step)
    n = ravel_pytree(params)[0].shape[0]
    if np.shape(full_step) != (n,):
        raise ValueError(
            f"full_step must be a flat vector of shape ({n},), got {np.shape(full_step)}"
        )
    _checks.positive("max_kl", max_kl)
    _checks.interval("backtrack_coef", backtrack_coef, 0.0, 1.0, low_open=True, high_open=True)
    _checks.positive_int("backtrack_iters", backtrack_iters)


def line_search(
    objective, kl, params, full_step, max_kl, *, backtrack_coef=0.5, backtrack_iters: int = 10
) -> LineSearch:
    r"""Backtracking line search on the trust region: the first k = 0, …, K − 1 with

        objective(θ + bᵏ Δ) > objective(θ)   and   kl(θ, θ + bᵏ Δ) ≤ δ,

    Δ = ``full_step`` (flat, in the order of ``ravel_pytree(params)``), b =
    ``backtrack_coef``, K = ``backtrack_iters``, δ = ``max_kl``. Every candidate is
    evaluated at once (``vmap`` over k) and the first that passes is taken, which
    is what the sequential rule of :func:`line_search_loop` returns; when none
    passes, θ is kept. Pure and jittable (``objective`` and ``kl`` are pure
    functions of parameter pytrees; ``kl`` as in ``rlbook.natural``).
    """
    _check_line_search(objective, kl, params, full_step, max_kl, backtrack_coef, backtrack_iters)
    flat, unravel = ravel_pytree(params)
    fractions = jnp.asarray(backtrack_coef, flat.dtype) ** jnp.arange(backtrack_iters)
    base = objective(params)

    def evaluate(f):
        candidate = unravel(flat + f * full_step)
        return objective(candidate) - base, kl(params, candidate)

    improvement, kls = jax.vmap(evaluate)(fractions)
    ok = (improvement > 0) & (kls <= max_kl)
    accepted = jnp.any(ok)
    k = jnp.argmax(ok)
    take = lambda x: jnp.where(accepted, x[k], jnp.zeros((), x.dtype))  # noqa: E731
    new_flat = jnp.where(accepted, flat + fractions[k] * full_step, flat)
    return LineSearch(
        unravel(new_flat),
        accepted,
        take(fractions),
        take(kls),
        take(improvement),
        jnp.where(accepted, k + 1, backtrack_iters),
    )


def line_search_loop(
    objective, kl, params, full_step, max_kl, *, backtrack_coef=0.5, backtrack_iters: int = 10
) -> LineSearch:
    """:func:`line_search` as the plain loop of ``tr-alg-trpo``: try b⁰, b¹, … in turn."""
    _check_line_search(objective, kl, params, full_step, max_kl, backtrack_coef, backtrack_iters)
    flat, unravel = ravel_pytree(params)
    base = objective(params)
    fraction = 1.0
    for k in range(backtrack_iters):
        candidate = unravel(flat + fraction * full_step)
        improvement = objective(candidate) - base
        d = kl(params, candidate)
        if improvement > 0 and d <= max_kl:  # improves L and stays in the region
            return LineSearch(
                candidate,
                jnp.asarray(True),
                jnp.asarray(fraction),
                jnp.asarray(d),
                jnp.asarray(improvement),
                jnp.asarray(k + 1),
            )
        fraction *= backtrack_coef  # shrink and try again
    zero = jnp.zeros((), flat.dtype)
    return LineSearch(params, jnp.asarray(False), zero, zero, zero, jnp.asarray(backtrack_iters))


# --------------------------------------------------------------------------- one update


def components(config: Config):
    """``(env, env_params, policy, value_optimizer)`` that a config describes."""
    env, env_params = envs.make(config.env_name)
    policy = policies.for_env(env, config.hidden)
    return env, env_params, policy, optax.adam(config.value_learning_rate)


def update(params, policy, obs, action, advantage, max_kl, config: Config):
    """One TRPO step of the policy: ``(θ_new, LineSearch, NaturalStep)``.

    ``obs`` [B, obs_dim], ``action`` [B, ...], ``advantage`` [B] (already
    standardized if wanted). g = ∇L(θ); s, β from ``natural.natural_step``; the step
    β s is then cut back by :func:`line_search`.
    """
    old_log_prob = jax.lax.stop_gradient(
        jax.vmap(policy.log_prob, (None, 0, 0))(params, obs, action)
    )
    L = surrogate(policy, obs, action, old_log_prob, advantage)
    kl = mean_kl(policy, obs)
    g = jax.grad(L)(params)
    nat = natural.natural_step(
        kl,
        params,
        g,
        max_kl=max_kl,
        damping=config.damping,
        max_iter=config.cg_iters,
        tol=1e-10,
        on_nonpositive="stop",
    )
    full_step = nat.step_size * nat.direction
    ls = line_search(
        L,
        kl,
        params,
        full_step,
        max_kl,
        backtrack_coef=config.backtrack_coef,
        backtrack_iters=config.backtrack_iters,
    )
    return ls.params, ls, nat


def _value_loss(value_params, obs, target):
    return jnp.mean((actor_critic.value(value_params, obs) - target) ** 2)


def make_step(config: Config):
    """``step(state, key, max_kl) -> (state, metrics)``: one rollout, one TRPO step, the critic.

    Metrics: ``return_sum`` and ``episodes`` (undiscounted returns of the episodes
    that ended in the rollout, summed, and their number), ``kl`` (true mean KL of
    the accepted step over the rollout's states, 0 if rejected), ``accepted``,
    ``fraction``, ``improvement`` (of the surrogate), ``predicted_kl`` (½β²sᵀFs = δ),
    ``value_loss``.
    """
    env, env_params, policy, value_opt = components(config)

    def step(state: TrainState, key, max_kl):
        env_state, traj, episodes = rollouts.collect(
            key, policy, state.params["policy"], env, env_params, state.env, config.n_steps
        )
        adv, target = actor_critic.targets(
            state.params["value"], traj, config.gamma, config.gae_lambda
        )
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        obs, action, adv, target = flat(traj.obs), flat(traj.action), flat(adv), flat(target)
        if config.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        theta = state.params["policy"]
        new_theta, ls, nat = update(theta, policy, obs, action, adv, max_kl, config)

        def critic_step(carry, _):
            phi, opt_state = carry
            loss, grads = jax.value_and_grad(_value_loss)(phi, obs, target)
            updates, opt_state = value_opt.update(grads, opt_state, phi)
            return (optax.apply_updates(phi, updates), opt_state), loss

        (phi, value_opt_state), losses = jax.lax.scan(
            critic_step, (state.params["value"], state.value_opt_state), None, config.value_steps
        )
        metrics = {
            "return_sum": jnp.sum(episodes.returns),
            "episodes": jnp.sum(episodes.done),
            "kl": mean_kl(policy, obs)(theta, new_theta),
            "accepted": ls.accepted,
            "fraction": ls.fraction,
            "improvement": ls.improvement,
            "predicted_kl": nat.predicted_kl,
            "value_loss": losses[0],
        }
        return TrainState({"policy": new_theta, "value": phi}, value_opt_state, env_state), metrics

    return step


def init_state(key, config: Config) -> TrainState:
    """Fresh θ (the policy's ``init``), φ (an MLP ``obs_dim → hidden → 1``), Adam state, envs."""
    env, env_params, policy, value_opt = components(config)
    k_pi, k_v, k_env = jax.random.split(key, 3)
    params = {
        "policy": policy.init(k_pi),
        "value": nets.mlp_init(k_v, (env.obs_dim, *config.hidden, 1), final_scale=1.0),
    }
    return TrainState(
        params,
        value_opt.init(params["value"]),
        rollouts.init(k_env, env, env_params, config.n_envs),
    )


def make_train(config: Config):
    """``train(key, max_kl=None) -> (TrainState, metrics)``: all updates in one ``lax.scan``.

    Pure and jittable; ``metrics`` leaves have shape [n_updates]. ``max_kl``
    overrides ``config.max_kl`` and may be traced, so ``jax.vmap`` over δ and over
    seeds shares one compile.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be a trpo.Config, got {type(config).__name__}")
    step = make_step(config)

    def train(key, max_kl=None):
        delta = config.max_kl if max_kl is None else max_kl
        if max_kl is not None:
            _checks.positive("max_kl", max_kl)
        k_init, k_updates = jax.random.split(key)
        state = init_state(k_init, config)
        return jax.lax.scan(
            lambda s, k: step(s, k, delta), state, jax.random.split(k_updates, config.n_updates)
        )

    return train
