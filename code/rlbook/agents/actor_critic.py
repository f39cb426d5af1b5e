r"""Advantage actor-critic with GAE(γ, λ): policy gradient with a learned value baseline.

N environments run side by side for T steps per update (``rlbook.rollouts``);
a critic V_φ gives TD errors δ_t = r_t + γ_t V_φ(s_{t+1}) − V_φ(s_t) and the
advantages Â_t = Σ_l (γλ)^l δ_{t+l} of generalized advantage estimation
(Schulman et al. 2016), cut at episode ends and bootstrapped through truncation
and at the end of the rollout (``rlbook.returns.gae``). The actor descends
−log π_θ(a_t | s_t) Ã_t with Ã the advantages standardized over the minibatch,
the critic regresses on the λ-returns Â_t + V_φ(s_t); one Adam step per
minibatch, E epochs of K minibatches per rollout. With E = K = 1 this is A2C
(Mnih et al. 2016); the baselines chapter states it as the algorithm
``bl-alg-minibatch``, and λ = 0 is the TD(0) actor-critic ``bl-alg-actor-critic``
in batch form.

Two tiers, one algorithm:

* :func:`make_train` wires the module-level pure functions :func:`rollout`,
  :func:`targets`, :func:`loss` and :func:`update` into one ``lax.scan`` over
  updates; ``train(key, gae_lambda=None) -> (state, metrics)`` is pure, and λ may
  be passed as a traced array, so ``jax.vmap`` over λ and over seeds shares one
  compile.
* :func:`update_loop` is the same update as plain Python loops over steps,
  mirroring ``bl-alg-minibatch`` line by line; a test requires it to give the
  same parameters as one step of :func:`make_step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlbook import _checks, envs, nets, policies, returns, rollouts

__all__ = [
    "Config",
    "TrainState",
    "components",
    "value",
    "rollout",
    "targets",
    "loss",
    "update",
    "epochs",
    "make_step",
    "init_state",
    "make_train",
    "update_loop",
]


@dataclass(frozen=True)
class Config:
    """Hyperparameters of the actor-critic; every field is checked by ``__post_init__``."""

    env_name: str = "CartPole-v1"
    """Gymnasium id of the environment (``rlbook.envs.make``)."""
    n_updates: int = 300
    """Number of rollouts, each followed by ``n_epochs × n_minibatches`` gradient steps."""
    n_envs: int = 8
    """N, environments run side by side under ``vmap``."""
    n_steps: int = 32
    """T, steps per environment per rollout; a rollout holds N·T transitions."""
    gamma: float = 0.99
    """Discount γ ∈ [0, 1) of the TD errors."""
    gae_lambda: float = 0.95
    """λ ∈ [0, 1] of GAE: 0 is the TD error, 1 the bootstrapped return minus V_φ(s_t)."""
    learning_rate: float = 3e-3
    """Adam's step size, shared by actor and critic."""
    value_coef: float = 0.5
    """c_V, the weight of the critic's squared error in the joint loss."""
    entropy_coef: float = 0.0
    """Weight of the policy's entropy bonus (0: the plain policy gradient)."""
    n_epochs: int = 1
    """E, passes over each rollout."""
    n_minibatches: int = 1
    """K, minibatches per pass; must divide N·T."""
    normalize_advantages: bool = True
    """Standardize Â over each minibatch (Andrychowicz et al. 2021)."""
    max_grad_norm: float = 0.5
    """Clip the gradient's global norm to this value (``optax.clip_by_global_norm``)."""
    hidden: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers of both the policy and the critic (tanh)."""

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


class TrainState(NamedTuple):
    """Everything carried from one update to the next.

    Attributes:
        params: ``{"policy": θ, "value": φ}``.
        opt_state: Adam's state for both.
        env: the environments between rollouts (``rlbook.rollouts.RolloutState``).
    """

    params: Any
    opt_state: Any
    env: rollouts.RolloutState


def components(config: Config):
    """``(env, env_params, policy, optimizer)`` that a config describes."""
    env, env_params = envs.make(config.env_name)
    policy = policies.for_env(env, config.hidden)
    optimizer = optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate)
    )
    return env, env_params, policy, optimizer


def init_params(key, config: Config, policy, obs_dim: int):
    """θ from the policy's ``init``, φ an MLP ``obs_dim → hidden → 1`` (float32)."""
    k_pi, k_v = jax.random.split(key)
    return {
        "policy": policy.init(k_pi),
        "value": nets.mlp_init(k_v, (obs_dim, *config.hidden, 1), final_scale=1.0),
    }


def value(value_params, obs) -> jax.Array:
    """V_φ(s) for observations of shape [..., obs_dim]; shape [...]."""
    return nets.mlp_apply(value_params, obs)[..., 0]


def rollout(key, policy, params, env, env_params, state, n_steps: int):
    """T steps of the N environments in ``state``: ``(state, trajectory, episodes)``.

    The environments continue from where the previous rollout left them
    (``rlbook.rollouts.collect``); trajectory leaves are [T, N, ...].
    """
    return rollouts.collect(key, policy, params["policy"], env, env_params, state, n_steps)


def targets(value_params, traj, gamma, lam):
    """``(advantages, value_targets)``, each [T, N]: GAE(γ, λ) Â_t and Â_t + V_φ(s_t).

    V_φ(s_{t+1}) is taken at ``traj.next_obs`` (before any reset), so truncated
    episodes and the end of the rollout bootstrap; γ_t = 0 where the episode
    terminated.
    """
    dtype = traj.reward.dtype
    v = value(value_params, traj.obs).astype(dtype)
    v_next = value(value_params, traj.next_obs).astype(dtype)
    discounts = returns.step_discounts(gamma, traj.terminated, dtype)
    adv = returns.gae(traj.reward, discounts, v, v_next, jnp.asarray(lam, dtype), traj.done)
    return adv, adv + v


class Batch(NamedTuple):
    """Flattened transitions for one gradient step; leaves [B, ...]."""

    obs: jax.Array
    action: jax.Array
    advantage: jax.Array
    target: jax.Array


def loss(params, policy, batch: Batch, value_coef, entropy_coef, normalize: bool = True):
    """L(θ, φ) = −mean[log π_θ(a | s) Ã] + c_V mean[(V_φ(s) − Ĝ)²] − c_H mean[H(π_θ(· | s))].

    Ã is Â standardized over the batch when ``normalize`` (a constant baseline and a
    rescaling, both held constant: no gradient flows through Â or Ĝ). Returns
    ``(L, (policy_loss, value_loss, entropy))``.
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
    policy_loss = -jnp.mean(log_prob * adv)
    value_loss = jnp.mean(
        (value(params["value"], batch.obs) - jax.lax.stop_gradient(batch.target)) ** 2
    )
    entropy = jnp.mean(jax.vmap(policy.entropy, (None, 0))(params["policy"], batch.obs))
    total = policy_loss + value_coef * value_loss - entropy_coef * entropy
    return total, (policy_loss, value_loss, entropy)


def update(params, opt_state, optimizer, policy, batch: Batch, config: Config):
    """One optimizer step on :func:`loss`: ``(params, opt_state, (L, aux))``."""
    (total, aux), grads = jax.value_and_grad(loss, has_aux=True)(
        params, policy, batch, config.value_coef, config.entropy_coef, config.normalize_advantages
    )
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, (total, aux)


def _flatten(traj, adv, tgt) -> Batch:
    def flat(x):
        return x.reshape((-1,) + x.shape[2:])

    return Batch(flat(traj.obs), flat(traj.action), flat(adv), flat(tgt))


def epochs(minibatch_step, carry, batch, key, n_epochs: int, n_minibatches: int):
    """E passes over ``batch``, each a fresh permutation cut into K minibatches.

    ``minibatch_step(carry, minibatch) -> (carry, aux)`` is scanned over the K
    minibatches of each pass (leaves of ``batch`` are [B, ...], B divisible by K);
    returns ``(carry, aux)`` with ``aux`` leaves [E, K, ...]. Shared by this agent
    and PPO (``rlbook.agents.ppo``).
    """
    n_batch = jax.tree_util.tree_leaves(batch)[0].shape[0]
    mb = n_batch // n_minibatches

    def epoch(carry, k):
        perm = jax.random.permutation(k, n_batch)
        shuffled = jax.tree_util.tree_map(
            lambda x: x[perm].reshape((n_minibatches, mb) + x.shape[1:]), batch
        )
        return jax.lax.scan(minibatch_step, carry, shuffled)

    return jax.lax.scan(epoch, carry, jax.random.split(key, n_epochs))


def make_step(config: Config):
    """``step(state, key, lam) -> (state, metrics)``: one rollout and its gradient steps.

    Metrics: ``return_sum`` and ``episodes`` (sum of the undiscounted returns of the
    episodes that ended during the rollout, and their number), ``policy_loss``,
    ``value_loss``, ``entropy`` (of the last gradient step).
    """
    env, env_params, policy, optimizer = components(config)

    def step(state: TrainState, key, lam):
        k_roll, k_perm = jax.random.split(key)
        env_state, traj, episodes = rollout(
            k_roll, policy, state.params, env, env_params, state.env, config.n_steps
        )
        adv, tgt = targets(state.params["value"], traj, config.gamma, lam)
        batch = _flatten(traj, adv, tgt)

        def minibatch(carry, b):
            params, opt_state = carry
            params, opt_state, (_, aux) = update(params, opt_state, optimizer, policy, b, config)
            return (params, opt_state), aux

        if config.n_epochs == 1 and config.n_minibatches == 1:  # one step on the whole rollout
            (params, opt_state), aux = minibatch((state.params, state.opt_state), batch)
            aux = jax.tree_util.tree_map(lambda x: x[None, None], aux)
        else:
            (params, opt_state), aux = epochs(
                minibatch,
                (state.params, state.opt_state),
                batch,
                k_perm,
                config.n_epochs,
                config.n_minibatches,
            )
        metrics = {
            "return_sum": jnp.sum(episodes.returns),
            "episodes": jnp.sum(episodes.done),
            "policy_loss": aux[0][-1, -1],
            "value_loss": aux[1][-1, -1],
            "entropy": aux[2][-1, -1],
        }
        return TrainState(params, opt_state, env_state), metrics

    return step


def init_state(key, config: Config) -> TrainState:
    """Fresh parameters, optimizer state and environments."""
    env, env_params, policy, optimizer = components(config)
    k_params, k_env = jax.random.split(key)
    params = init_params(k_params, config, policy, env.obs_dim)
    return TrainState(
        params, optimizer.init(params), rollouts.init(k_env, env, env_params, config.n_envs)
    )


def make_train(config: Config):
    """``train(key, gae_lambda=None) -> (TrainState, metrics)``: all updates in one ``lax.scan``.

    Pure and jittable; ``metrics`` leaves have shape [n_updates]. ``gae_lambda``
    overrides ``config.gae_lambda`` and may be a traced scalar, so

        jax.jit(jax.vmap(jax.vmap(train, (0, None)), (None, 0)))(keys, lambdas)

    trains every (λ, seed) pair for one compile.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be an actor_critic.Config, got {type(config).__name__}")
    step = make_step(config)

    def train(key, gae_lambda=None):
        lam = config.gae_lambda if gae_lambda is None else gae_lambda
        if gae_lambda is not None:
            _checks.discount("gae_lambda", gae_lambda, allow_one=True)
        k_init, k_updates = jax.random.split(key)
        state = init_state(k_init, config)
        return jax.lax.scan(
            lambda s, k: step(s, k, lam), state, jax.random.split(k_updates, config.n_updates)
        )

    return train


def update_loop(key, state: TrainState, config: Config):
    """The update of :func:`make_step` as plain loops, following ``bl-alg-minibatch``.

    Eager and slow, meant to be read. It draws the same random stream as
    :func:`make_step` (the rollout is :func:`rollout` itself; the loops are over the
    advantages and the minibatches), so a test can require the same parameters.
    Returns the new :class:`TrainState`.
    """
    env, env_params, policy, optimizer = components(config)
    k_roll, k_perm = jax.random.split(key)
    # 1. Run the N environments for T steps with π_θ.
    env_state, traj, _ = rollout(
        k_roll, policy, state.params, env, env_params, state.env, config.n_steps
    )
    T, N = traj.reward.shape

    def V(obs):
        return value(state.params["value"], obs)

    # 2–3. TD errors and GAE, backwards in t, cut where an episode ended.
    adv = [[None] * N for _ in range(T)]
    for i in range(N):
        a_next = 0.0
        for t in reversed(range(T)):
            not_terminal = 1.0 - float(traj.terminated[t, i])
            delta = (
                traj.reward[t, i]
                + config.gamma * not_terminal * V(traj.next_obs[t, i])
                - V(traj.obs[t, i])
            )
            if traj.done[t, i] or t == T - 1:
                a_next = 0.0
            adv[t][i] = delta + config.gamma * not_terminal * config.gae_lambda * a_next
            a_next = adv[t][i]
    adv = jnp.asarray([[float(x) for x in row] for row in adv], traj.reward.dtype)
    tgt = adv + V(traj.obs).astype(adv.dtype)
    batch = _flatten(traj, adv, tgt)
    # 4. E epochs of K minibatches, one gradient step on L(θ, φ) each.
    params, opt_state = state.params, state.opt_state
    n_batch = N * T
    mb = n_batch // config.n_minibatches
    for k in jax.random.split(k_perm, config.n_epochs):
        perm = jax.random.permutation(k, n_batch)
        for j in range(config.n_minibatches):
            idx = perm[j * mb : (j + 1) * mb]
            b = jax.tree_util.tree_map(lambda x, idx=idx: x[idx], batch)
            params, opt_state, _ = update(params, opt_state, optimizer, policy, b, config)
    return TrainState(params, opt_state, env_state)
