r"""REINFORCE (Williams 1992): Monte-Carlo policy gradient from whole episodes.

Every update samples N fresh episodes with π_θ, weights each score
∇_θ log π_θ(a_t | s_t) by a return Ψ_t, and takes an ascent step along

    ĝ = (1/N) Σ_i Σ_t Ψ_t^i ∇_θ log π_θ(a_t^i | s_t^i),

with Ψ_t the reward-to-go G_t (``reward_to_go=True``) or the whole return
G_0 = R(τ) (``False``), multiplied by γᵗ when ``discount_states=True`` (the
gradient of the discounted objective) and not otherwise (the common practice
whose bias Thomas (2014) pointed out; see the chapter, label ``pg-thomas``).

Two tiers, one algorithm:

* :func:`make_train` wires the module-level pure functions :func:`rollout`,
  :func:`targets`, :func:`loss` and :func:`update` into one ``lax.scan`` over
  updates; ``train(key) -> (state, metrics)`` is pure, so
  ``jax.jit(jax.vmap(train))(keys)`` trains several seeds for one compile.
* :func:`update_loop` is the same update as plain Python loops over episodes and
  steps, following the chapter's algorithm block ``pg-alg-reinforce`` line by
  line; a test requires it to give the same parameters as :func:`make_step`
  from the same key.

An update runs each of the N environments for ``horizon`` steps from a fresh
reset and keeps each one's *first* episode (:func:`rlbook.rollouts.first_episode_mask`):
N independent episodes, so ĝ is exactly the Monte-Carlo estimator of the
chapter. Steps after an episode's end are simulated (shapes are fixed under
``jit``) but carry zero weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from rlbook import _checks, envs, policies, returns, rollouts

__all__ = [
    "Config",
    "TrainState",
    "components",
    "rollout",
    "targets",
    "loss",
    "update",
    "make_step",
    "make_train",
    "update_loop",
]


@dataclass(frozen=True)
class Config:
    """Hyperparameters of REINFORCE; every field is checked by ``__post_init__``."""

    env_name: str = "CartPole-v1"
    """Gymnasium id of the environment (``rlbook.envs.make``)."""
    n_updates: int = 100
    """Number of policy-gradient steps (iterations of the outer ``lax.scan``)."""
    n_episodes: int = 16
    """N, episodes per update (environments run side by side under ``vmap``)."""
    horizon: int | None = None
    """Steps simulated per episode; ``None`` is the environment's time limit (500 for CartPole)."""
    gamma: float = 0.99
    """Discount γ ∈ [0, 1] of the returns G_t."""
    learning_rate: float = 0.005
    """Adam's initial step size α."""
    anneal_lr: bool = True
    """Decay α linearly to 0 over the ``n_updates`` updates (steadies the last updates)."""
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
        _checks.positive("learning_rate", self.learning_rate)
        _checks.widths("hidden", self.hidden)
        for name in ("anneal_lr", "reward_to_go", "discount_states"):
            _checks.flag(name, getattr(self, name))


class TrainState(NamedTuple):
    """Parameters θ of the policy and the optimizer's state."""

    params: object
    opt_state: object


def components(config: Config):
    """``(env, env_params, policy, optimizer, horizon)`` that a config describes."""
    env, env_params = envs.make(config.env_name)
    policy = policies.for_env(env, config.hidden)
    horizon = config.horizon or int(env_params.max_steps)
    lr = config.learning_rate
    if config.anneal_lr:
        lr = optax.linear_schedule(lr, 0.0, config.n_updates)
    return env, env_params, policy, optax.adam(lr), horizon


def rollout(key, policy, params, env, env_params, n_episodes: int, horizon: int):
    """N fresh episodes of at most ``horizon`` steps: ``(trajectory, mask)``.

    ``trajectory`` is a :class:`rlbook.rollouts.Trajectory` with leaves [horizon, N, ...];
    ``mask`` [horizon, N] is True on each environment's first episode. The key is split
    into a reset key and a step key (:func:`update_loop` draws the same stream).
    """
    k_reset, k_steps = jax.random.split(key)
    state = rollouts.init(k_reset, env, env_params, n_episodes)
    _, traj, _ = rollouts.collect(k_steps, policy, params, env, env_params, state, horizon)
    return traj, rollouts.first_episode_mask(traj.done)


def targets(
    traj, mask, gamma: float, reward_to_go: bool = True, discount_states: bool = False
) -> jax.Array:
    """Ψ_t for every step, zero outside ``mask``; shape [T, N].

    Ψ_t = G_t = Σ_{k ≥ t} γ^{k−t} r_k (reward-to-go) or G_0 (whole return), each
    cut at the episode's end (``rlbook.returns``, bootstrap 0), times γᵗ if
    ``discount_states``.
    """
    discounts = returns.step_discounts(gamma, traj.terminated, traj.reward.dtype)
    if reward_to_go:
        psi = returns.discounted_returns(traj.reward, discounts, done=traj.done)
    else:
        psi = returns.episode_returns(traj.reward, discounts, done=traj.done)
    if discount_states:
        t = jnp.arange(traj.reward.shape[0], dtype=psi.dtype)
        psi = psi * (jnp.asarray(gamma, psi.dtype) ** t)[:, None]
    return jnp.where(mask, psi, 0.0)


def loss(params, policy, traj, weights) -> jax.Array:
    """Surrogate L(θ) = −(1/N) Σ_{t,i} Ψ_t^i log π_θ(a_t^i | s_t^i), so −∇L = ĝ.

    ``weights`` are the Ψ_t of :func:`targets` (constants: no gradient flows
    through them); leaves of ``traj`` are [T, N, ...].
    """
    log_prob = jax.vmap(jax.vmap(policy.log_prob, (None, 0, 0)), (None, 0, 0))(
        params, traj.obs, traj.action
    )
    n = weights.shape[1]
    return -jnp.sum(jax.lax.stop_gradient(weights) * log_prob) / n


def update(params, opt_state, optimizer, policy, traj, weights):
    """One optimizer step on :func:`loss`: ``(params, opt_state, (loss, ‖ĝ‖))``."""
    value, grads = jax.value_and_grad(loss)(params, policy, traj, weights)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, (value, optax.tree.norm(grads))


def make_step(config: Config):
    """``step(params, opt_state, key) -> (params, opt_state, metrics)``: one REINFORCE update.

    Metrics: ``return`` (mean undiscounted return of the N episodes), ``steps``
    (their total length), ``loss`` and ``grad_norm``.
    """
    env, env_params, policy, optimizer, horizon = components(config)

    def step(params, opt_state, key):
        traj, mask = rollout(key, policy, params, env, env_params, config.n_episodes, horizon)
        weights = targets(traj, mask, config.gamma, config.reward_to_go, config.discount_states)
        params, opt_state, (value, gnorm) = update(
            params, opt_state, optimizer, policy, traj, weights
        )
        metrics = {
            "return": jnp.sum(jnp.where(mask, traj.reward, 0.0)) / config.n_episodes,
            "steps": jnp.sum(mask),
            "loss": value,
            "grad_norm": gnorm,
        }
        return params, opt_state, metrics

    return step


def make_train(config: Config):
    """``train(key) -> (TrainState, metrics)``: ``config.n_updates`` updates in one ``lax.scan``.

    Pure and jittable; ``metrics`` holds one entry per update (leaves [n_updates]).
    Several seeds: ``jax.jit(jax.vmap(make_train(config)))(jax.random.split(key, 5))``.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be a reinforce.Config, got {type(config).__name__}")
    _, _, policy, optimizer, _ = components(config)
    step = make_step(config)

    def train(key):
        k_init, k_updates = jax.random.split(key)
        params = policy.init(k_init)
        opt_state = optimizer.init(params)

        def body(carry, k):
            params, opt_state, metrics = step(*carry, k)
            return (params, opt_state), metrics

        (params, opt_state), metrics = jax.lax.scan(
            body, (params, opt_state), jax.random.split(k_updates, config.n_updates)
        )
        return TrainState(params, opt_state), metrics

    return train


def update_loop(key, params, opt_state, config: Config):
    """The update of :func:`make_step` as plain loops, following ``pg-alg-reinforce``.

    Slow (eager, one step at a time) and meant to be read; it draws the same random
    stream as :func:`rollout`, so a test can require the same new parameters.
    Returns ``(params, opt_state, ĝ)``.
    """
    env, env_params, policy, optimizer, horizon = components(config)
    N = config.n_episodes
    # The random stream of rollout(): reset keys, then one key per time step.
    k_reset, k_steps = jax.random.split(key)
    reset_keys, keys = jax.random.split(k_reset, N), rollouts.step_keys(k_steps, horizon, N)

    # 1. Sample N episodes τ_i = (s_0, a_0, r_0, s_1, …) with π_θ.
    episodes = []
    for i in range(N):
        obs, state = env.reset(reset_keys[i], env_params)
        episode = []
        for t in range(horizon):
            action, _ = policy.sample(keys[t, 0, i], params, obs)
            next_obs, state, info = env.step(keys[t, 1, i], state, action, env_params)
            episode.append((obs, action, info.reward))
            obs = next_obs
            if info.terminated or info.truncated:
                break
        episodes.append(episode)

    # 2. For every step, the weight Ψ_t: G_t = r_t + γ G_{t+1} backwards (or G_0), times γᵗ.
    # 3. ĝ = (1/N) Σ_i Σ_t Ψ_t ∇_θ log π_θ(a_t | s_t).
    score = jax.grad(policy.log_prob)
    g_hat = jax.tree_util.tree_map(jnp.zeros_like, params)
    for episode in episodes:
        G, rewards_to_go = 0.0, []
        for _, _, r in reversed(episode):
            G = r + config.gamma * G
            rewards_to_go.insert(0, G)
        for t, (obs, action, _) in enumerate(episode):
            psi = rewards_to_go[t] if config.reward_to_go else rewards_to_go[0]
            if config.discount_states:
                psi = psi * config.gamma**t
            g_hat = jax.tree_util.tree_map(
                lambda g, s, psi=psi: g + psi * s / N, g_hat, score(params, obs, action)
            )

    # 4. Ascent step θ ← θ + α ĝ (Adam: the optimizer minimizes, so it is given −ĝ).
    minus_g = jax.tree_util.tree_map(jnp.negative, g_hat)
    updates, opt_state = optimizer.update(minus_g, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, g_hat
