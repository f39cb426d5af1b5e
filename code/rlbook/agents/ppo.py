r"""Proximal policy optimization with the clipped surrogate (Schulman et al. 2017) and GAE.

Each update runs N environments for T steps (``rlbook.rollouts``), computes GAE(γ, λ)
advantages Â_t and λ-returns with the critic V_φ (``rlbook.agents.actor_critic.targets``,
i.e. ``rlbook.returns.gae``), and then takes E epochs of K minibatch Adam steps on

    −L^CLIP(θ') + c_V mean[(V_φ(s) − Ĝ)²] − c_H mean[H(π_θ'(· | s))],
    L^CLIP(θ') = mean_t[min(r_t(θ') Â_t, clip(r_t(θ'), 1 − ε, 1 + ε) Â_t)],
    r_t(θ') = π_θ'(a_t | s_t) / π_θ(a_t | s_t),

with θ the parameters that collected the rollout. :func:`clipped_objective` is
L^CLIP as arrays in and out (the chapter's figure of it against the ratio, and a
test against plain numpy); :func:`loss` is the whole minibatch loss.

``make_train(config)`` returns ``train(key, clip_eps=None) -> (TrainState, metrics)``,
one ``lax.scan`` over updates; ε may be traced, so several ε and seeds share one
compile. Book chapter: "Trust regions, TRPO and PPO" (labels ``tr-``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlbook import _checks
from rlbook.agents import actor_critic

__all__ = [
    "Config",
    "TrainState",
    "clipped_objective",
    "Batch",
    "loss",
    "make_step",
    "make_train",
    "init_state",
]


@dataclass(frozen=True)
class Config:
    """Hyperparameters of PPO; ``__post_init__`` checks every field."""

    env_name: str = "CartPole-v1"
    """Gymnasium id of the environment (``rlbook.envs.make``)."""
    n_updates: int = 100
    """Number of rollouts, each followed by ``n_epochs × n_minibatches`` Adam steps."""
    n_envs: int = 8
    """N, environments run side by side under ``vmap``."""
    n_steps: int = 64
    """T, steps per environment per rollout; a rollout holds N·T transitions."""
    gamma: float = 0.99
    """Discount γ ∈ [0, 1) of the TD errors."""
    gae_lambda: float = 0.95
    """λ ∈ [0, 1] of GAE."""
    clip_eps: float = 0.2
    """ε > 0: the ratio r_t(θ') is clipped to [1 − ε, 1 + ε]."""
    learning_rate: float = 3e-3
    """Adam's step size, shared by actor and critic."""
    n_epochs: int = 4
    """E, passes over each rollout."""
    n_minibatches: int = 4
    """K, minibatches per pass; must divide N·T."""
    value_coef: float = 0.5
    """c_V, the weight of the critic's squared error."""
    entropy_coef: float = 0.0
    """c_H, the weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Clip each gradient's global norm to this value (``optax.clip_by_global_norm``)."""
    normalize_advantages: bool = True
    """Standardize Â over each minibatch."""
    hidden: tuple[int, ...] = (32, 32)
    """Widths of the hidden layers of the policy and of the critic (tanh)."""

    def __post_init__(self):
        names = ("CartPole-v1", "Pendulum-v1")
        _checks.one_of("env_name", self.env_name, names)
        for name in ("n_updates", "n_envs", "n_steps", "n_epochs", "n_minibatches"):
            _checks.positive_int(name, getattr(self, name))
        if (self.n_envs * self.n_steps) % self.n_minibatches:
            raise ValueError(
                f"n_minibatches must divide n_envs * n_steps = "
                f"{self.n_envs * self.n_steps}, got {self.n_minibatches}"
            )
        _checks.discount("gamma", self.gamma)
        _checks.discount("gae_lambda", self.gae_lambda, allow_one=True)
        _checks.positive("clip_eps", self.clip_eps)
        _checks.positive("learning_rate", self.learning_rate)
        _checks.positive("value_coef", self.value_coef, strict=False)
        _checks.positive("entropy_coef", self.entropy_coef, strict=False)
        _checks.positive("max_grad_norm", self.max_grad_norm)
        _checks.flag("normalize_advantages", self.normalize_advantages)
        _checks.widths("hidden", self.hidden)
        if self.normalize_advantages and self.n_envs * self.n_steps // self.n_minibatches < 2:
            raise ValueError(
                "n_minibatches must leave at least 2 transitions per minibatch when "
                "normalize_advantages is True (one normalized advantage is always 0, so the "
                f"policy would never move), got n_envs * n_steps = {self.n_envs * self.n_steps} "
                f"and n_minibatches = {self.n_minibatches}"
            )


# The carried state (θ, φ, Adam's state, the environments) and the optimizer are the
# actor-critic's: PPO changes only the loss.
TrainState = actor_critic.TrainState
"""The actor-critic's training state (:class:`rlbook.agents.actor_critic.TrainState`): PPO
trains the same parameters and optimizer state with another loss."""
components = actor_critic.components


def clipped_objective(ratio, advantage, clip_eps) -> jax.Array:
    r"""Per-sample L^CLIP = min(r Â, clip(r, 1 − ε, 1 + ε) Â), elementwise.

    ``ratio`` r = π_θ'(a|s)/π_θ(a|s) > 0 and ``advantage`` Â of one shape; ε =
    ``clip_eps`` > 0. Its derivative in r is Â where the minimum picks the unclipped
    term (Â > 0 and r < 1 + ε, or Â < 0 and r > 1 − ε) and 0 elsewhere (chapter
    ``tr-thm-clip-gradient``).
    """
    _checks.positive("ratio", ratio, strict=False)
    _checks.finite("advantage", advantage)
    if np.shape(ratio) != np.shape(advantage):
        raise ValueError(
            f"ratio and advantage must have one shape, got {np.shape(ratio)} "
            f"and {np.shape(advantage)}"
        )
    _checks.positive("clip_eps", clip_eps)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return jnp.minimum(ratio * advantage, clipped * advantage)


class Batch(NamedTuple):
    """Flattened transitions for one minibatch step; leaves [B, ...]."""

    obs: jax.Array
    action: jax.Array
    old_log_prob: jax.Array
    advantage: jax.Array
    target: jax.Array


def loss(params, policy, batch: Batch, clip_eps, value_coef, entropy_coef, normalize: bool = True):
    """−mean L^CLIP + c_V mean[(V_φ(s) − Ĝ)²] − c_H mean H(π_θ'(· | s)); returns ``(L, aux)``.

    ``aux = (policy_objective, value_loss, entropy, clip_fraction)``, the last the
    fraction of samples whose ratio lies outside [1 − ε, 1 + ε].
    """
    if normalize and np.size(batch.advantage) < 2:
        raise ValueError(
            "batch must hold at least 2 transitions when normalize is True "
            f"(one normalized advantage is always 0), got {np.size(batch.advantage)}"
        )
    adv = jax.lax.stop_gradient(batch.advantage)
    if normalize:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    log_prob = jax.vmap(policy.log_prob, (None, 0, 0))(params["policy"], batch.obs, batch.action)
    ratio = jnp.exp(log_prob - batch.old_log_prob)
    objective = jnp.mean(clipped_objective(ratio, adv, clip_eps))
    value_loss = jnp.mean(
        (actor_critic.value(params["value"], batch.obs) - jax.lax.stop_gradient(batch.target)) ** 2
    )
    entropy = jnp.mean(jax.vmap(policy.entropy, (None, 0))(params["policy"], batch.obs))
    clip_fraction = jnp.mean(jnp.abs(ratio - 1.0) > clip_eps)
    total = -objective + value_coef * value_loss - entropy_coef * entropy
    return total, (objective, value_loss, entropy, clip_fraction)


def make_step(config: Config):
    """``step(state, key, clip_eps) -> (state, metrics)``: one rollout, E·K Adam steps.

    Metrics: ``return_sum`` and ``episodes`` (undiscounted returns of the episodes
    that ended in the rollout, summed, and their number), ``kl`` (the mean KL
    D̄(θ, θ_new) over the rollout's states between the policy that collected it and
    the one after the E epochs), ``clip_fraction`` and ``value_loss`` (last step).
    """
    env, env_params, policy, optimizer = components(config)

    def step(state: TrainState, key, clip_eps):
        k_roll, k_perm = jax.random.split(key)
        theta = state.params["policy"]
        env_state, traj, episodes = actor_critic.rollout(
            k_roll, policy, state.params, env, env_params, state.env, config.n_steps
        )
        adv, target = actor_critic.targets(
            state.params["value"], traj, config.gamma, config.gae_lambda
        )
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        obs, action = flat(traj.obs), flat(traj.action)
        old_log_prob = jax.vmap(policy.log_prob, (None, 0, 0))(theta, obs, action)
        batch = Batch(obs, action, old_log_prob, flat(adv), flat(target))

        def minibatch(carry, b):
            params, opt_state = carry
            (_, aux), grads = jax.value_and_grad(loss, has_aux=True)(
                params,
                policy,
                b,
                clip_eps,
                config.value_coef,
                config.entropy_coef,
                config.normalize_advantages,
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        (params, opt_state), aux = actor_critic.epochs(
            minibatch,
            (state.params, state.opt_state),
            batch,
            k_perm,
            config.n_epochs,
            config.n_minibatches,
        )
        kl = jnp.mean(jax.vmap(policy.kl, (None, None, 0))(theta, params["policy"], obs))
        metrics = {
            "return_sum": jnp.sum(episodes.returns),
            "episodes": jnp.sum(episodes.done),
            "kl": kl,
            "clip_fraction": aux[3][-1, -1],
            "value_loss": aux[1][-1, -1],
        }
        return TrainState(params, opt_state, env_state), metrics

    return step


def init_state(key, config: Config) -> TrainState:
    """Fresh θ, φ, Adam state and environments: the actor-critic's
    (:func:`rlbook.agents.actor_critic.init_state`), from the fields the two configs share
    (``env_name``, ``hidden``, ``learning_rate``, ``max_grad_norm``, ``n_envs``)."""
    return actor_critic.init_state(key, config)


def make_train(config: Config):
    """``train(key, clip_eps=None) -> (TrainState, metrics)``: all updates in one ``lax.scan``.

    Pure and jittable; ``metrics`` leaves have shape [n_updates]. ``clip_eps``
    overrides ``config.clip_eps`` and may be traced.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be a ppo.Config, got {type(config).__name__}")
    step = make_step(config)

    def train(key, clip_eps=None):
        eps = config.clip_eps if clip_eps is None else clip_eps
        if clip_eps is not None:
            _checks.positive("clip_eps", clip_eps)
        k_init, k_updates = jax.random.split(key)
        state = init_state(k_init, config)
        return jax.lax.scan(
            lambda s, k: step(s, k, eps), state, jax.random.split(k_updates, config.n_updates)
        )

    return train
