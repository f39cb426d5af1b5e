r"""Deep deterministic policy gradient (Lillicrap et al. 2016), in the ``make_train`` form.

A deterministic actor μ_θ(s) ∈ [−1, 1]^D and a critic Q_φ(s, a), each with a
Polyak-averaged target (θ̄, φ̄). One update on a minibatch B from replay:

    y = r + γ (1 − terminated) Q_φ̄(s', μ_θ̄(s'))                  (:func:`targets`)
    φ ← φ − α_Q ∇_φ ½ mean_B (Q_φ(s, a) − y)²                      (critic step)
    θ ← θ + α_μ mean_B ∇_a Q_φ(s, a)|_{a = μ_θ(s)} ∇_θ μ_θ(s)      (:func:`actor_loss`, DPG)
    φ̄ ← τ φ + (1 − τ) φ̄,  θ̄ ← τ θ + (1 − τ) θ̄

Exploration adds an Ornstein–Uhlenbeck process (:mod:`rlbook.noise`) to μ_θ(s),
reset to 0 at the start of each episode. Chapter label ``cc-ddpg``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rlbook import _checks, nets, noise
from rlbook.agents import offpolicy
from rlbook.agents.offpolicy import actor_apply, critic_apply

__all__ = [
    "Config",
    "State",
    "init",
    "targets",
    "actor_loss",
    "update",
    "explore",
    "agent",
    "make_train",
]


@dataclasses.dataclass(frozen=True)
class Config(offpolicy.Config):
    """DDPG's settings: the shared ones plus the Ornstein–Uhlenbeck exploration noise."""

    ou_theta: float = 0.15
    """Mean-reversion rate θ of the OU noise (Lillicrap et al. 2016: 0.15)."""
    ou_sigma: float = 0.2
    """Diffusion σ of the OU noise (Lillicrap et al. 2016: 0.2)."""
    ou_dt: float = 0.05
    """Euler–Maruyama step of the OU noise, in seconds (Pendulum's own step)."""

    def __post_init__(self):
        validate(self)


def validate(config: Config) -> None:
    offpolicy.validate(config)
    _checks.positive("config.ou_theta", config.ou_theta)
    _checks.positive("config.ou_sigma", config.ou_sigma, strict=False)
    _checks.positive("config.ou_dt", config.ou_dt)
    if config.ou_theta * config.ou_dt >= 1:
        raise ValueError(
            f"config.ou_theta * config.ou_dt must be < 1, got {config.ou_theta * config.ou_dt}"
        )


class State(NamedTuple):
    actor: nets.Params
    critic: nets.Params
    actor_target: nets.Params
    critic_target: nets.Params
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def init(key, obs_dim: int, act_dim: int, config: Config) -> State:
    """Actor ``[obs_dim, *hidden, act_dim]``, critic ``[obs_dim + act_dim, *hidden, 1]``,
    targets = copies."""
    k_a, k_c = jax.random.split(key)
    actor = nets.mlp_init(k_a, [obs_dim, *config.hidden, act_dim], final_scale=0.1)
    critic = nets.mlp_init(k_c, [obs_dim + act_dim, *config.hidden, 1])
    return State(
        actor,
        critic,
        actor,
        critic,
        optax.adam(config.actor_lr).init(actor),
        optax.adam(config.critic_lr).init(critic),
    )


def targets(state: State, batch: offpolicy.Transition, gamma) -> jax.Array:
    """y = r + γ (1 − terminated) Q_φ̄(s', μ_θ̄(s')), shape [B]."""
    next_q = critic_apply(
        state.critic_target, batch.next_obs, actor_apply(state.actor_target, batch.next_obs)
    )
    return offpolicy.td_target(batch.reward, batch.terminated, gamma, next_q)


def actor_loss(actor_params, critic_params, obs):
    """−mean_B Q_φ(s, μ_θ(s)); its gradient in θ is minus the deterministic policy gradient."""
    q = critic_apply(critic_params, obs, actor_apply(actor_params, obs))
    return -jnp.mean(q), {}


def update(key, state: State, batch: offpolicy.Transition, step, config: Config):
    """One DDPG update (critic, then actor on the new critic, then targets); ``key`` is unused."""
    del key, step
    critic_opt, actor_opt = optax.adam(config.critic_lr), optax.adam(config.actor_lr)
    y = targets(state, batch, config.gamma)
    critic, c_opt, c_loss = offpolicy.critic_step(
        critic_opt, state.critic, state.critic_opt, critic_apply, batch, y
    )
    actor, a_opt, a_loss, _ = offpolicy.actor_step(
        actor_opt, state.actor, state.actor_opt, actor_loss, critic, batch.obs
    )
    state = State(
        actor,
        critic,
        offpolicy.soft_update(state.actor_target, actor, config.tau),
        offpolicy.soft_update(state.critic_target, critic, config.tau),
        a_opt,
        c_opt,
    )
    return state, {"critic_loss": c_loss, "actor_loss": a_loss, "q_mean": jnp.mean(y)}


def explore(key, state: State, obs, ou, config: Config):
    """a = clip(μ_θ(s) + x, −1, 1) with x the next step of the OU process."""
    ou = noise.ou_step(key, ou, config.ou_theta, config.ou_sigma, config.ou_dt)
    return jnp.clip(actor_apply(state.actor, obs) + ou, -1.0, 1.0), ou


def agent(config: Config) -> offpolicy.Agent:
    """DDPG's four functions for :func:`rlbook.agents.offpolicy.make_train`."""
    validate(config)
    return offpolicy.Agent(
        init=lambda k, o, a: init(k, o, a, config),
        explore=lambda k, s, o, n: explore(k, s, o, n, config),
        greedy=lambda s, o: actor_apply(s.actor, o),
        q_value=lambda s, o, a: critic_apply(s.critic, o, a),
        update=lambda k, s, b, t: update(k, s, b, t, config),
        noise0=jnp.zeros(offpolicy.ENV.action_dim, jnp.float32),
    )


def make_train(config: Config):
    """``train(key) -> (state, metrics)`` for DDPG on Pendulum (see ``offpolicy.make_train``)."""
    if not isinstance(config, Config):
        raise ValueError(f"config must be a ddpg.Config, got {type(config).__name__}")
    return offpolicy.make_train(config, agent(config))
