r"""On-policy data: a fixed number of steps from N environments side by side, in one ``lax.scan``.

``init(key, env, env_params, n_envs)`` resets N environments; ``collect`` then
runs ``n_steps`` steps of all of them at once (``jax.vmap`` over environments,
``lax.scan`` over time), acting with ``policy.sample`` (any policy of
``rlbook.policies``). Environments reset themselves when an episode ends
(``env.step`` auto-resets), so the stream of each environment may hold the end
of one episode and the start of the next; the :class:`Trajectory` keeps
``terminated`` and ``truncated`` apart and records ``next_obs`` *before* the
reset, which is everything ``rlbook.returns`` needs to cut returns at episode
boundaries and to bootstrap through truncation only.

Arrays in a :class:`Trajectory` are time-major, ``[T, N, ...]``. The
:class:`RolloutState` carries the environments (and the returns of their
running episodes) from one call of ``collect`` to the next, so an agent may
either continue where it stopped (A2C, PPO) or start fresh episodes every
update (REINFORCE in the chapter ``pg-reinforce``).

All the keys of a call are drawn at once, ``keys = step_keys(key, T, N)`` of
shape [T, 2, N]: environment i acts at step t with ``keys[t, 0, i]`` and steps
with ``keys[t, 1, i]`` (drawing them outside the scan also keeps the compiled
loop small). The readable REINFORCE (``rlbook.agents.reinforce.update_loop``)
draws the same stream, which is how a test can require the two to agree.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rlbook import _checks, envs

__all__ = [
    "RolloutState",
    "Trajectory",
    "Episodes",
    "init",
    "collect",
    "step_keys",
    "mean_episode_return",
    "first_episode_mask",
]


class RolloutState(NamedTuple):
    """The N environments between two calls of :func:`collect`.

    Attributes:
        obs: the observation to act on next, [N, ...].
        env_state: the environments' states, each leaf [N, ...].
        episode_return: undiscounted return of each running episode so far, [N].
        episode_length: steps of each running episode so far, int32 [N].
    """

    obs: jax.Array
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array


class Trajectory(NamedTuple):
    """T steps of N environments, time first: every leaf is [T, N, ...].

    Attributes:
        obs: s_t, the observation acted on.
        action: a_t ∼ π(· | s_t).
        reward: r_t.
        terminated: s_{t+1} is absorbing (do not bootstrap).
        truncated: the time limit ended the episode at s_{t+1} (do bootstrap).
        next_obs: s_{t+1} before any reset (what a critic bootstraps from).
        log_prob: log π(a_t | s_t) under the policy that acted.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    log_prob: jax.Array

    @property
    def done(self) -> jax.Array:
        """terminated | truncated: the episode ended at this step."""
        return self.terminated | self.truncated


class Episodes(NamedTuple):
    """The episodes that ended during a :func:`collect`, for learning curves; leaves [T, N].

    Attributes:
        done: an episode of this environment ended at this step.
        returns: its undiscounted return Σ r (from its first step, possibly in an
            earlier call of ``collect``); 0 where ``done`` is False.
        lengths: its number of steps; 0 where ``done`` is False.
    """

    done: jax.Array
    returns: jax.Array
    lengths: jax.Array


def init(key: jax.Array, env, env_params, n_envs: int) -> RolloutState:
    """Reset ``n_envs`` environments with keys ``jax.random.split(key, n_envs)``."""
    _checks.positive_int("n_envs", n_envs)
    _check_env(env, env_params)
    obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(key, n_envs), env_params)
    zeros = jnp.zeros((n_envs,), jnp.float32)
    return RolloutState(obs, env_state, zeros, jnp.zeros((n_envs,), jnp.int32))


def collect(
    key: jax.Array, policy, params, env, env_params, state: RolloutState, n_steps: int
) -> tuple[RolloutState, Trajectory, Episodes]:
    """Run ``n_steps`` steps of every environment in ``state`` with actions from ``policy``.

    Args:
        key: the randomness of actions and environments.
        policy: any object with ``sample(key, params, obs) -> (action, log_prob)`` for
            one observation (``rlbook.policies``).
        params: the policy's parameters θ.
        env, env_params: an environment of ``rlbook.envs`` and its parameters.
        state: where the environments are (:func:`init`, or a previous ``collect``).
        n_steps: T, the number of steps per environment.

    Returns:
        ``(state, trajectory, episodes)``: the environments after T steps, the
        :class:`Trajectory` with leaves [T, N, ...], and the :class:`Episodes` that
        ended. Pure and jittable (``policy``, ``env`` and ``n_steps`` static).
    """
    _checks.positive_int("n_steps", n_steps)
    _check_env(env, env_params)
    _check_policy_fits_env(policy, env, env_params)
    _checks.finite_tree("params", params)
    if not isinstance(state, RolloutState):
        raise ValueError(
            f"state must be a RolloutState (rollouts.init), got {type(state).__name__}"
        )
    n_envs = state.episode_return.shape[0]
    act = jax.vmap(policy.sample, (0, None, 0))
    step = jax.vmap(env.step, (0, 0, 0, None))

    def one_step(carry: RolloutState, keys):
        action, log_prob = act(keys[0], params, carry.obs)
        obs, env_state, info = step(keys[1], carry.env_state, action, env_params)
        done = info.terminated | info.truncated
        ep_return = carry.episode_return + info.reward.astype(jnp.float32)
        ep_length = carry.episode_length + 1
        traj = Trajectory(
            carry.obs, action, info.reward, info.terminated, info.truncated, info.next_obs, log_prob
        )
        episodes = Episodes(done, jnp.where(done, ep_return, 0.0), jnp.where(done, ep_length, 0))
        carry = RolloutState(
            obs, env_state, jnp.where(done, 0.0, ep_return), jnp.where(done, 0, ep_length)
        )
        return carry, (traj, episodes)

    state, (traj, episodes) = jax.lax.scan(one_step, state, step_keys(key, n_steps, n_envs))
    return state, traj, episodes


# rlbook's own environments, whose parameters get the environment's own checks.
_RLBOOK_ENVS = (envs.CartPole, envs.Pendulum, envs.Tabular)


def _check_env(env, env_params) -> None:
    """``env`` is an environment and ``env_params`` its parameters, refused by name.

    For rlbook's environments the parameters get the environment's own checks (their
    type, then their values where concrete), with the error naming ``env_params``; for
    another environment with ``default_params``, ``env_params`` must be of that type.
    """
    if not (callable(getattr(env, "reset", None)) and callable(getattr(env, "step", None))):
        raise ValueError(
            f"env must be an environment with reset and step methods (rlbook.envs), got {env!r}"
        )
    if env_params is None or isinstance(env_params, (str, bytes)):
        raise ValueError(
            f"env_params must be the parameters of {type(env).__name__}, got {env_params!r}"
        )
    if isinstance(env, _RLBOOK_ENVS):
        try:
            env.check_params(env_params)
        except ValueError as err:
            raise ValueError(f"env_params do not suit {type(env).__name__}: {err}") from None
        return
    default = getattr(env, "default_params", None)
    if default is not None and not isinstance(env_params, type(default)):
        raise ValueError(
            f"env_params must be a {type(default).__name__} (the parameters of "
            f"{type(env).__name__}), got {type(env_params).__name__}"
        )


def _check_policy_fits_env(policy, env, env_params) -> None:
    """The policy's action and observation sizes are the environment's."""
    if not callable(getattr(policy, "sample", None)):
        raise ValueError(
            f"policy must have a sample(key, params, obs) method, got {type(policy).__name__}"
        )
    env_actions = getattr(env, "n_actions", None)
    if env_actions is None and hasattr(env_params, "mdp"):  # a tabular environment
        env_actions = env_params.mdp.n_actions
        env_states = env_params.mdp.n_states
        n_states = getattr(policy, "n_states", None)
        if n_states is not None and n_states != env_states:
            raise ValueError(
                f"policy.n_states ({n_states}) must equal the environment's "
                f"number of states ({env_states})"
            )
    pairs = (
        ("n_actions", env_actions),
        ("action_dim", getattr(env, "action_dim", None)),
        ("obs_dim", getattr(env, "obs_dim", None)),
    )
    for name, want in pairs:
        have = getattr(policy, name, None)
        if have is not None and want is not None and have != want:
            raise ValueError(f"policy.{name} ({have}) must equal the environment's {name} ({want})")
    if hasattr(policy, "n_actions") and env_actions is None:
        raise ValueError(
            f"policy has discrete actions (n_actions={policy.n_actions}) but the "
            f"environment {type(env).__name__} has continuous ones"
        )
    if hasattr(policy, "action_dim") and env_actions is not None:
        raise ValueError(
            f"policy has continuous actions but the environment "
            f"{type(env).__name__} has {env_actions} discrete ones"
        )


def step_keys(key: jax.Array, n_steps: int, n_envs: int) -> jax.Array:
    """The keys :func:`collect` uses, shape [n_steps, 2, n_envs] (action, environment)."""
    _checks.size("n_steps", n_steps)
    _checks.size("n_envs", n_envs)
    return jax.random.split(key, (n_steps, 2, n_envs))


def mean_episode_return(episodes: Episodes) -> tuple[jax.Array, jax.Array]:
    """(mean undiscounted return of the episodes that ended, their number); mean 0 if none."""
    if not isinstance(episodes, Episodes):
        raise ValueError(
            f"episodes must be an Episodes (from rollouts.collect), got {type(episodes).__name__}"
        )
    _checks.real("episodes.done", episodes.done)
    _checks.real("episodes.returns", episodes.returns)
    _checks.finite("episodes.returns", episodes.returns)
    count = jnp.sum(episodes.done)
    total = jnp.sum(jnp.where(episodes.done, episodes.returns, 0.0))
    return total / jnp.maximum(count, 1), count


def first_episode_mask(done: jax.Array) -> jax.Array:
    """True at the steps of each environment's first episode in the stream, its last step
    included: ``mask[t] = no episode ended before t``; ``done`` and the result are [T, ...]."""
    if done is None or isinstance(done, (str, bytes)):
        raise ValueError(f"done must be an array of episode ends [T, ...], got {done!r}")
    _checks.real("done", done)
    done = jnp.asarray(done, bool)
    if done.ndim < 1:
        raise ValueError(f"done must have a time axis first, got shape {done.shape}")
    ended_before = jnp.cumsum(done, axis=0) - done
    return ended_before == 0
