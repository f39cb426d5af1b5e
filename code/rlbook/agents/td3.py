r"""Twin delayed DDPG, TD3 (Fujimoto, van Hoof & Meger 2018), in the ``make_train`` form.

DDPG with three changes, each against the critic's overestimation:

1. *clipped double Q*: two critics Q_φ1, Q_φ2 regress on one target built from
   the smaller of their targets, y = r + γ (1 − terminated) min_i Q_φ̄i(s', ã');
2. *target-policy smoothing*: ã' = clip(μ_θ̄(s') + clip(ε, −c, c), −1, 1),
   ε ∼ N(0, σ̃²), so the target averages Q over a small neighbourhood of the action;
3. *delayed policy updates*: the actor and all targets move once every
   ``policy_delay`` critic updates, the actor ascending Q_φ1 as in DDPG.

Exploration is Gaussian, a = clip(μ_θ(s) + N(0, σ²), −1, 1). Chapter label ``cc-td3``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rlbook import _checks, nets
from rlbook.agents import offpolicy
from rlbook.agents.offpolicy import actor_apply, critic_apply, twin_critic_apply

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
    """TD3's settings: the shared ones plus its three changes and Gaussian exploration."""

    policy_delay: int = 2
    """Critic updates per actor (and target) update."""
    target_noise: float = 0.2
    """Standard deviation σ̃ of the target-policy smoothing noise (normalized actions)."""
    noise_clip: float = 0.5
    """The smoothing noise is clipped to [−c, c]."""
    explore_noise: float = 0.1
    """Standard deviation σ of the Gaussian exploration noise (normalized actions)."""

    def __post_init__(self):
        validate(self)


def validate(config: Config) -> None:
    offpolicy.validate(config)
    _checks.positive_int("config.policy_delay", config.policy_delay)
    _checks.positive("config.target_noise", config.target_noise, strict=False)
    _checks.positive("config.noise_clip", config.noise_clip, strict=False)
    _checks.positive("config.explore_noise", config.explore_noise, strict=False)


class State(NamedTuple):
    actor: nets.Params
    critic: nets.Params  # two critics stacked on a leading axis
    actor_target: nets.Params
    critic_target: nets.Params
    actor_opt: optax.OptState
    critic_opt: optax.OptState


def init(key, obs_dim: int, act_dim: int, config: Config) -> State:
    """Actor as DDPG's; two independent critics stacked; targets = copies."""
    k_a, k_c = jax.random.split(key)
    actor = nets.mlp_init(k_a, [obs_dim, *config.hidden, act_dim], final_scale=0.1)
    critic = offpolicy.twin_critic_init(k_c, [obs_dim + act_dim, *config.hidden, 1])
    return State(
        actor,
        critic,
        actor,
        critic,
        optax.adam(config.actor_lr).init(actor),
        optax.adam(config.critic_lr).init(critic),
    )


def targets(key, state: State, batch: offpolicy.Transition, config: Config) -> jax.Array:
    """y = r + γ (1 − terminated) min_i Q_φ̄i(s', ã'), ã' the smoothed target action; shape [B]."""
    a = actor_apply(state.actor_target, batch.next_obs)
    eps = config.target_noise * jax.random.normal(key, a.shape, a.dtype)
    a = jnp.clip(a + jnp.clip(eps, -config.noise_clip, config.noise_clip), -1.0, 1.0)
    next_q = jnp.min(twin_critic_apply(state.critic_target, batch.next_obs, a), axis=0)
    return offpolicy.td_target(batch.reward, batch.terminated, config.gamma, next_q)


def actor_loss(actor_params, critic_params, obs):
    """−mean_B Q_φ1(s, μ_θ(s)): the deterministic policy gradient on the first critic."""
    first = jax.tree_util.tree_map(lambda p: p[0], critic_params)
    q = critic_apply(first, obs, actor_apply(actor_params, obs))
    return -jnp.mean(q), {}


def update(key, state: State, batch: offpolicy.Transition, step, config: Config):
    """One TD3 update: both critics every call, actor and targets when
    ``step % policy_delay == 0``."""
    critic_opt, actor_opt = optax.adam(config.critic_lr), optax.adam(config.actor_lr)
    y = targets(key, state, batch, config)
    critic, c_opt, c_loss = offpolicy.critic_step(
        critic_opt, state.critic, state.critic_opt, twin_critic_apply, batch, y
    )
    state = state._replace(critic=critic, critic_opt=c_opt)

    def delayed(state):
        actor, a_opt, a_loss, _ = offpolicy.actor_step(
            actor_opt, state.actor, state.actor_opt, actor_loss, state.critic, batch.obs
        )
        return state._replace(
            actor=actor,
            actor_opt=a_opt,
            actor_target=offpolicy.soft_update(state.actor_target, actor, config.tau),
            critic_target=offpolicy.soft_update(state.critic_target, state.critic, config.tau),
        ), a_loss

    def skip(state):
        return state, jnp.zeros((), jnp.float32)

    state, a_loss = jax.lax.cond(step % config.policy_delay == 0, delayed, skip, state)
    return state, {"critic_loss": c_loss, "actor_loss": a_loss, "q_mean": jnp.mean(y)}


def explore(key, state: State, obs, noise, config: Config):
    """a = clip(μ_θ(s) + σ ε, −1, 1), ε ∼ N(0, I)."""
    a = actor_apply(state.actor, obs)
    return jnp.clip(
        a + config.explore_noise * jax.random.normal(key, a.shape, a.dtype), -1.0, 1.0
    ), noise


def agent(config: Config) -> offpolicy.Agent:
    """TD3's four functions for :func:`rlbook.agents.offpolicy.make_train`."""
    validate(config)
    return offpolicy.Agent(
        init=lambda k, o, a: init(k, o, a, config),
        explore=lambda k, s, o, n: explore(k, s, o, n, config),
        greedy=lambda s, o: actor_apply(s.actor, o),
        q_value=lambda s, o, a: critic_apply(
            jax.tree_util.tree_map(lambda p: p[0], s.critic), o, a
        ),
        update=lambda k, s, b, t: update(k, s, b, t, config),
    )


def make_train(config: Config):
    """``train(key) -> (state, metrics)`` for TD3 on Pendulum (see ``offpolicy.make_train``)."""
    if not isinstance(config, Config):
        raise ValueError(f"config must be a td3.Config, got {type(config).__name__}")
    return offpolicy.make_train(config, agent(config))
