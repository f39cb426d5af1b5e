r"""Soft actor-critic (Haarnoja et al. 2018a, b), in the ``make_train`` form.

The now-standard version (Haarnoja et al. 2018b): a tanh-Gaussian actor
π_θ(a | s), a = tanh(μ_θ(s) + σ_θ(s) ε); twin critics with Polyak targets and
no separate value network; a learned temperature β = exp(log β). One update::

    a' ∼ π_θ(· | s'),  y = r + γ (1 − terminated) [min_i Q_φ̄i(s', a') − β log π_θ(a' | s')]
    φ ← φ − α_Q ∇_φ ½ Σ_i mean_B (Q_φi(s, a) − y)²                        (soft policy evaluation)
    θ ← θ − α_π ∇_θ mean_B [β log π_θ(ã | s) − min_i Q_φi(s, ã)],  ã = tanh(μ + σ ε)
                                                                          (reparameterized KL step)
    log β ← log β − α_β ∇ mean_B [−log β · (log π_θ(ã | s) + H̄)]          (entropy target H̄ = −D)
    φ̄ ← τ φ + (1 − τ) φ̄

Chapter label ``cc-sac``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlbook import _checks, distributions, nets
from rlbook.agents import offpolicy
from rlbook.agents.offpolicy import twin_critic_apply

__all__ = [
    "Config",
    "State",
    "init",
    "policy",
    "sample_action",
    "targets",
    "actor_loss",
    "temperature_loss",
    "temperature_step",
    "update",
    "explore",
    "agent",
    "make_train",
    "LOG_STD_MIN",
    "LOG_STD_MAX",
]

LOG_STD_MIN = -5.0
"""Lower bound of the actor's log σ: :func:`policy` squashes its raw output into
[LOG_STD_MIN, LOG_STD_MAX] with a scaled tanh."""
LOG_STD_MAX = 2.0
"""Upper bound of the actor's log σ (see :data:`LOG_STD_MIN`)."""


@dataclasses.dataclass(frozen=True)
class Config(offpolicy.Config):
    """SAC's settings: the shared ones plus the temperature."""

    init_temperature: float = 1.0
    """β at the start of training."""
    learn_temperature: bool = True
    """Adjust β towards the entropy target −D (False: β stays at ``init_temperature``)."""
    temperature_lr: float = 1e-3
    """Adam step size of log β."""

    def __post_init__(self):
        validate(self)


def validate(config: Config) -> None:
    offpolicy.validate(config)
    _checks.positive("config.init_temperature", config.init_temperature)
    _checks.positive("config.temperature_lr", config.temperature_lr)
    if not isinstance(config.learn_temperature, bool):
        raise ValueError(
            f"config.learn_temperature must be a bool, got {config.learn_temperature!r}"
        )


class State(NamedTuple):
    actor: nets.Params
    critic: nets.Params  # two critics stacked on a leading axis
    critic_target: nets.Params
    log_temperature: jax.Array
    actor_opt: optax.OptState
    critic_opt: optax.OptState
    temperature_opt: optax.OptState


def init(key, obs_dim: int, act_dim: int, config: Config) -> State:
    """Actor ``[obs_dim, *hidden, 2·act_dim]`` (mean, log σ), two critics, target = copy, log β."""
    k_a, k_c = jax.random.split(key)
    actor = nets.mlp_init(k_a, [obs_dim, *config.hidden, 2 * act_dim], final_scale=0.1)
    critic = offpolicy.twin_critic_init(k_c, [obs_dim + act_dim, *config.hidden, 1])
    log_t = jnp.log(jnp.asarray(config.init_temperature, jnp.float32))
    return State(
        actor,
        critic,
        critic,
        log_t,
        optax.adam(config.actor_lr).init(actor),
        optax.adam(config.critic_lr).init(critic),
        optax.adam(config.temperature_lr).init(log_t),
    )


def _check_actor(actor_params, obs) -> None:
    """``actor_params`` an actor of :func:`init` (a non-empty list of ``{"w", "b"}`` layers with
    an even output width, mean and log σ) and ``obs`` finite (when concrete) of shape
    [..., obs_dim], refused by their own names (``nets.mlp_apply`` would name them ``params``
    and ``x``). Shapes only on tracers; the parameters' values are not read."""
    if (
        not isinstance(actor_params, (list, tuple))
        or not actor_params
        or not all(
            isinstance(layer, Mapping) and "w" in layer and "b" in layer for layer in actor_params
        )
    ):
        raise ValueError(
            f"actor_params must be a non-empty list of {{'w', 'b'}} layers "
            f"(sac.init), got {type(actor_params).__name__}"
        )
    _checks.finite("obs", obs)
    first, last = np.shape(actor_params[0]["w"]), np.shape(actor_params[-1]["w"])
    obs_dim = first[-2] if len(first) >= 2 else None
    if np.ndim(obs) < 1 or (obs_dim is not None and np.shape(obs)[-1] != obs_dim):
        raise ValueError(
            f"obs must have shape [..., {obs_dim}] (the actor's input size), "
            f"got shape {np.shape(obs)}"
        )
    if len(last) >= 1 and last[-1] % 2:
        raise ValueError(
            f"actor_params must output 2·act_dim values (mean and log σ), got "
            f"an output width of {last[-1]}"
        )


def policy(actor_params, obs):
    """(μ_θ(s), log σ_θ(s)), log σ squashed into [LOG_STD_MIN, LOG_STD_MAX]; shapes [..., D]."""
    _check_actor(actor_params, obs)
    out = offpolicy.mlp(actor_params, obs)
    mean, raw = jnp.split(out, 2, axis=-1)
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)
    return mean, log_std


def sample_action(key, actor_params, obs):
    """(a, log π_θ(a | s)) for a batch of obs [B, obs_dim]: a = tanh(μ + σ ε), one key per row."""
    _check_actor(actor_params, obs)
    _checks.ndim("obs", obs, 2)
    mean, log_std = policy(actor_params, obs)
    keys = jax.random.split(key, mean.shape[0])
    return jax.vmap(distributions.tanh_gaussian_sample_and_log_prob)(keys, mean, log_std)


def targets(key, state: State, batch: offpolicy.Transition, config: Config) -> jax.Array:
    """y = r + γ (1 − terminated) [min_i Q_φ̄i(s', a') − β log π(a' | s')], a' ∼ π(· | s'); [B]."""
    a, logp = sample_action(key, state.actor, batch.next_obs)
    next_q = jnp.min(twin_critic_apply(state.critic_target, batch.next_obs, a), axis=0)
    soft_v = next_q - jnp.exp(state.log_temperature) * logp
    return offpolicy.td_target(batch.reward, batch.terminated, config.gamma, soft_v)


def actor_loss(actor_params, critic_params, log_temperature, key, obs):
    """mean_B [β log π_θ(ã | s) − min_i Q_φi(s, ã)], ã reparameterized; aux: the log π's."""
    a, logp = sample_action(key, actor_params, obs)
    q = jnp.min(twin_critic_apply(critic_params, obs, a), axis=0)
    return jnp.mean(jnp.exp(log_temperature) * logp - q), logp


def temperature_loss(log_temperature, logp, target_entropy):
    """−log β · mean_B (log π + H̄): β rises when the entropy −E log π is below H̄."""
    _checks.finite("log_temperature", log_temperature)
    _checks.finite("logp", logp)
    _checks.finite("target_entropy", target_entropy)
    return -log_temperature * jnp.mean(jax.lax.stop_gradient(logp) + target_entropy)


def temperature_step(log_temperature, opt_state, logp, action_dim: int, learning_rate):
    """One Adam step of log β on :func:`temperature_loss` with the entropy target
    H̄ = −``action_dim``; returns the new log β and Adam state. SAC and SVG(1) share it."""
    grad = jax.grad(temperature_loss)(log_temperature, logp, -float(action_dim))
    upd, opt_state = optax.adam(learning_rate).update(grad, opt_state, log_temperature)
    return optax.apply_updates(log_temperature, upd), opt_state


def update(key, state: State, batch: offpolicy.Transition, step, config: Config):
    """One SAC update: twin critics, actor on the new critics, temperature, critic target."""
    del step
    k_target, k_actor = jax.random.split(key)
    critic_opt = optax.adam(config.critic_lr)
    actor_opt = optax.adam(config.actor_lr)
    y = targets(k_target, state, batch, config)
    critic, c_opt, c_loss = offpolicy.critic_step(
        critic_opt, state.critic, state.critic_opt, twin_critic_apply, batch, y
    )
    actor, a_opt, a_loss, logp = offpolicy.actor_step(
        actor_opt,
        state.actor,
        state.actor_opt,
        actor_loss,
        critic,
        state.log_temperature,
        k_actor,
        batch.obs,
    )
    log_t, t_opt = state.log_temperature, state.temperature_opt
    if config.learn_temperature:
        log_t, t_opt = temperature_step(
            log_t, t_opt, logp, batch.action.shape[-1], config.temperature_lr
        )
    state = State(
        actor,
        critic,
        offpolicy.soft_update(state.critic_target, critic, config.tau),
        log_t,
        a_opt,
        c_opt,
        t_opt,
    )
    return state, {
        "critic_loss": c_loss,
        "actor_loss": a_loss,
        "q_mean": jnp.mean(y),
        "entropy": -jnp.mean(logp),
        "temperature": jnp.exp(log_t),
    }


def explore(key, state: State, obs, noise, config: Config):
    """a ∼ π_θ(· | s)."""
    del config
    mean, log_std = policy(state.actor, obs)
    return distributions.tanh_gaussian_sample(key, mean, log_std), noise


def agent(config: Config) -> offpolicy.Agent:
    """SAC's four functions for :func:`rlbook.agents.offpolicy.make_train`;
    greedy = tanh(μ_θ(s))."""
    validate(config)
    return offpolicy.Agent(
        init=lambda k, o, a: init(k, o, a, config),
        explore=lambda k, s, o, n: explore(k, s, o, n, config),
        greedy=lambda s, o: jnp.tanh(policy(s.actor, o)[0]),
        q_value=lambda s, o, a: jnp.min(twin_critic_apply(s.critic, o, a), axis=0),
        update=lambda k, s, b, t: update(k, s, b, t, config),
    )


def make_train(config: Config):
    """``train(key) -> (state, metrics)`` for SAC on Pendulum (see ``offpolicy.make_train``)."""
    if not isinstance(config, Config):
        raise ValueError(f"config must be a sac.Config, got {type(config).__name__}")
    return offpolicy.make_train(config, agent(config))
