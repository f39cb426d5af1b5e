r"""What DDPG, TD3 and SAC share: the transition, the TD target, the critic step,
the target update, and the training loop as one ``lax.scan``.

An off-policy actor-critic is four pure functions bundled in an :class:`Agent`:
``init`` (parameters, targets, optimizer states), ``explore`` (the behaviour
action, with noise keyed explicitly), ``greedy`` (the evaluation action) and
``update`` (one gradient step on a minibatch from replay). :func:`make_train`
wires them to the Pendulum environment and :mod:`rlbook.replay`:

1. for ``learning_starts`` steps act uniformly at random and store transitions;
2. then, every environment step: act with ``explore``, store
   (s, a, r, s', terminated) — s' the observation *before* any reset, so the
   target bootstraps through a time-limit truncation and never through a
   termination — and every ``train_every`` steps draw a minibatch uniformly
   from the buffer and ``update``;
3. every ``eval_every`` steps, the undiscounted return of ``greedy`` over
   ``eval_episodes`` fresh episodes, and optionally the critic's estimate
   Q_φ(s, μ(s)) against the true discounted return of μ from ``value_states``
   visited states (Fujimoto et al. 2018, figure 1).

The whole run is one jitted ``lax.scan`` (nested: an outer scan over
evaluation periods, an inner one over steps); ``jax.vmap(train)`` over keys
runs several seeds for the price of one compile (Lu et al. 2022). Actions are
normalized to [−1, 1]^D inside the agent and scaled to the torque range when
the environment is stepped. Derived in :doc:`/book/ddpg_td3_sac`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlbook import _checks, envs, nets, replay

__all__ = [
    "Config",
    "Transition",
    "Agent",
    "validate",
    "td_target",
    "critic_loss",
    "critic_step",
    "actor_step",
    "soft_update",
    "mlp",
    "actor_apply",
    "critic_apply",
    "twin_critic_init",
    "twin_critic_apply",
    "evaluate",
    "discounted_return",
    "philox_key",
    "make_train",
]


@dataclasses.dataclass(frozen=True)
class Config:
    """Settings every off-policy agent of the chapter shares (defaults: the chapter's size)."""

    total_steps: int = 20_000
    """Environment steps in the whole run, random warm-up included."""
    learning_starts: int = 1_000
    """Steps of uniformly random actions before the first update."""
    buffer_size: int = 20_000
    """Capacity of the replay ring; the oldest transitions are overwritten."""
    batch_size: int = 128
    """Transitions per minibatch, drawn uniformly with replacement."""
    train_every: int = 1
    """Environment steps per update (1: one update per step; 2: every other step)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden-layer widths of the actor and of each critic (ReLU)."""
    gamma: float = 0.99
    """Discount γ of the critic's target."""
    tau: float = 0.005
    """Polyak rate of the target networks: φ̄ ← τ φ + (1 − τ) φ̄."""
    actor_lr: float = 1e-3
    """Adam step size of the actor."""
    critic_lr: float = 1e-3
    """Adam step size of the critic(s)."""
    eval_every: int = 1_000
    """Environment steps between evaluations; must divide ``total_steps``."""
    eval_episodes: int = 5
    """Episodes of the greedy policy per evaluation (vmapped)."""
    value_states: int = 0
    """Visited states at which each evaluation compares Q_φ(s, μ(s)) with the true return
    (0: off)."""
    value_horizon: int = 600
    """Rollout length of that true discounted return (γ^H of the tail is neglected)."""
    rng_impl: str = "philox4x32"
    """The run's random-number generator (see :func:`philox_key`): ``"philox4x32"`` compiles
    faster on CPU; ``"threefry2x32"`` (JAX's default) is the one that shards across devices."""

    def __post_init__(self):
        validate(self)


def validate(config: Config) -> None:
    """Raise ``ValueError`` naming the first invalid field of a shared config."""
    for name in (
        "total_steps",
        "buffer_size",
        "batch_size",
        "train_every",
        "eval_every",
        "eval_episodes",
        "value_horizon",
    ):
        _checks.positive_int(f"config.{name}", getattr(config, name))
    for name in ("learning_starts", "value_states"):
        n = getattr(config, name)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"config.{name} must be a non-negative integer, got {n!r}")
    if config.total_steps % config.eval_every:
        raise ValueError(
            f"config.eval_every ({config.eval_every}) must divide "
            f"config.total_steps ({config.total_steps})"
        )
    if config.learning_starts >= config.total_steps:
        raise ValueError(
            f"config.learning_starts must be < config.total_steps, got {config.learning_starts}"
        )
    if config.batch_size > config.buffer_size:
        raise ValueError(
            f"config.batch_size ({config.batch_size}) must be at most "
            f"config.buffer_size ({config.buffer_size})"
        )
    if config.learning_starts < config.batch_size:
        raise ValueError(
            f"config.learning_starts must be >= config.batch_size="
            f"{config.batch_size} (the first minibatch would repeat a few "
            f"transitions), got {config.learning_starts}"
        )
    _checks.nonempty_widths("config.hidden", config.hidden)
    _checks.discount("config.gamma", config.gamma)
    _checks.interval("config.tau", config.tau, 0.0, 1.0, low_open=True)
    _checks.positive("config.actor_lr", config.actor_lr)
    _checks.positive("config.critic_lr", config.critic_lr)
    _checks.one_of("config.rng_impl", config.rng_impl, RNG_IMPLS)


class Transition(NamedTuple):
    """One stored step: s, a ∈ [−1, 1]^D, r, s' (before any reset), and whether s' is terminal."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array


class Agent(NamedTuple):
    """The four pure functions an off-policy actor-critic consists of.

    ``init(key, obs_dim, act_dim) -> state``;
    ``explore(key, state, obs, noise) -> (action, noise)`` with action in [−1, 1]^D
    (``noise`` is exploration state carried across steps, reset to ``noise0``
    when an episode ends; ``()`` when there is none);
    ``greedy(state, obs) -> action``;
    ``q_value(state, obs, action) -> Q_φ(s, a)``;
    ``update(key, state, batch, step) -> (state, metrics)`` with ``step`` the
    (unbatched) index of the update.
    """

    init: Callable
    explore: Callable
    greedy: Callable
    q_value: Callable
    update: Callable
    noise0: Any = ()


# --------------------------------------------------------------------------- shared pieces


def td_target(reward: jax.Array, terminated: jax.Array, gamma, next_value: jax.Array):
    """y = r + γ (1 − terminated) v(s'): bootstrap unless s' is terminal.

    ``terminated`` marks an absorbing state; a time-limit truncation is *not* a
    termination and must not be passed here (Pardo et al. 2018). Shapes [B].
    """
    for name, x in (("reward", reward), ("terminated", terminated), ("next_value", next_value)):
        _checks.finite(name, x)
        if not (hasattr(x, "dtype") or (name == "next_value" and isinstance(x, (int, float)))):
            raise ValueError(f"{name} must be an array (jax or numpy), got {type(x).__name__}")
    try:
        np.broadcast_shapes(np.shape(reward), np.shape(terminated), np.shape(next_value))
    except ValueError:
        raise ValueError(
            f"reward {np.shape(reward)}, terminated {np.shape(terminated)} and "
            f"next_value {np.shape(next_value)} must have matching shapes "
            f"([B] each)"
        ) from None
    _checks.discount("gamma", gamma, allow_one=True)
    return reward + gamma * (1.0 - terminated.astype(reward.dtype)) * next_value


def mlp(params, x, input_name="x"):
    """The ReLU network of :mod:`rlbook.nets` that every actor and critic here is."""
    return nets.mlp_apply(params, x, activation=jax.nn.relu, input_name=input_name)


def actor_apply(params, obs):
    """μ_θ(s) = tanh(MLP(s)) ∈ [−1, 1]^D, for obs [..., obs_dim]."""
    return jnp.tanh(mlp(params, obs, "obs"))


def critic_apply(params, obs, action):
    """Q_φ(s, a) = MLP([s, a]), shape [...] for obs [..., obs_dim] and action [..., D]."""
    _check_critic_inputs(params, obs, action, twin=False)
    return mlp(params, jnp.concatenate([obs, action], axis=-1))[..., 0]


def twin_critic_init(key, sizes):
    """Two independent critics stacked on a leading axis of size 2 (applied with one vmap)."""
    return jax.vmap(lambda k: nets.mlp_init(k, sizes))(jax.random.split(key, 2))


def twin_critic_apply(params, obs, action):
    """(Q_φ1(s, a), Q_φ2(s, a)) stacked: shape [2, ...]."""
    _check_critic_inputs(params, obs, action, twin=True)
    return jax.vmap(critic_apply, (0, None, None))(params, obs, action)


def _check_critic_inputs(params, obs, action, *, twin: bool) -> None:
    """``params`` a critic's layers (stacked on a leading axis of 2 when ``twin``), ``obs``
    [..., obs_dim] and ``action`` [..., D] finite (when concrete) with the same leading axes
    and obs_dim + D the first layer's fan-in. Shapes only on tracers."""
    what = "twin_critic_init" if twin else "nets.mlp_init"
    if (
        not isinstance(params, (list, tuple))
        or not params
        or not all(isinstance(layer, Mapping) and "w" in layer and "b" in layer for layer in params)
    ):
        raise ValueError(
            f"params must be a non-empty list of {{'w', 'b'}} layers ({what}), "
            f"got {type(params).__name__}"
        )
    w_shape = np.shape(params[0]["w"])
    if len(w_shape) != (3 if twin else 2) or (twin and w_shape[0] != 2):
        raise ValueError(
            f"params must be {'two stacked critics' if twin else 'one critic'} "
            f"({what}): the first weight has shape {w_shape}"
        )
    for name, x in (("obs", obs), ("action", action)):
        _checks.finite(name, x)
        if np.ndim(x) < 1:
            raise ValueError(f"{name} must have shape [..., {name}_dim], got shape {np.shape(x)}")
    if np.shape(obs)[:-1] != np.shape(action)[:-1]:
        raise ValueError(
            f"obs {np.shape(obs)} and action {np.shape(action)} must have the same leading axes"
        )
    if np.shape(obs)[-1] + np.shape(action)[-1] != w_shape[-2]:
        raise ValueError(
            f"obs [..., {np.shape(obs)[-1]}] and action [..., "
            f"{np.shape(action)[-1]}] must together have the first layer's input "
            f"size {w_shape[-2]}"
        )


def critic_loss(critic_params, apply: Callable, batch: Transition, target: jax.Array):
    """½ mean over the batch of (Q_φ(s, a) − y)², summed over critics when ``apply`` stacks them."""
    q = apply(critic_params, batch.obs, batch.action)
    return 0.5 * jnp.sum(jnp.mean((q - jax.lax.stop_gradient(target)) ** 2, axis=-1))


def critic_step(optimizer, critic_params, opt_state, apply, batch, target):
    """One optimizer step on :func:`critic_loss`; returns (params, opt_state, loss)."""
    loss, grad = jax.value_and_grad(critic_loss)(critic_params, apply, batch, target)
    updates, opt_state = optimizer.update(grad, opt_state, critic_params)
    return optax.apply_updates(critic_params, updates), opt_state, loss


def actor_step(optimizer, actor_params, opt_state, loss_fn, *args):
    """One optimizer step on ``loss_fn(actor_params, *args)``; returns
    (params, opt_state, loss, aux)."""
    (loss, aux), grad = jax.value_and_grad(loss_fn, has_aux=True)(actor_params, *args)
    updates, opt_state = optimizer.update(grad, opt_state, actor_params)
    return optax.apply_updates(actor_params, updates), opt_state, loss, aux


def soft_update(target, online, tau):
    """φ̄ ← τ φ + (1 − τ) φ̄ (Polyak averaging; ``optax.incremental_update``)."""
    _checks.interval("tau", tau, 0.0, 1.0)
    target_leaves, target_def = jax.tree_util.tree_flatten(target)
    online_leaves, online_def = jax.tree_util.tree_flatten(online)
    if target_def != online_def:
        raise ValueError(
            f"target and online must be pytrees of the same structure, got "
            f"{type(target).__name__} with {len(target_leaves)} leaves and "
            f"{type(online).__name__} with {len(online_leaves)}"
        )
    for name, leaves in (("target", target_leaves), ("online", online_leaves)):
        for leaf in leaves:
            dtype = getattr(leaf, "dtype", None)
            dtype = np.asarray(leaf).dtype if dtype is None else np.dtype(dtype)
            if dtype.kind not in "biuf":
                raise ValueError(f"{name} must hold real-valued arrays, got a leaf {leaf!r}")
    for t, o in zip(target_leaves, online_leaves, strict=True):
        if np.shape(t) != np.shape(o):
            raise ValueError(
                f"target and online must have the same shapes, got {np.shape(t)} and {np.shape(o)}"
            )
    return optax.incremental_update(online, target, tau)


# --------------------------------------------------------------------------- environment side

ENV = envs.Pendulum()
PARAMS = ENV.default_params


def _env_step(key, env_state, action):
    """Step Pendulum with a normalized action a ∈ [−1, 1]^D (torque = 2a)."""
    return ENV.step(key, env_state, action * ENV.action_high, PARAMS)


def evaluate(key, policy: Callable, n_episodes: int):
    """Mean undiscounted return of the deterministic ``policy(obs) -> a`` over fresh episodes."""
    _check_policy(policy)
    _checks.size("n_episodes", n_episodes)

    def episode(k):
        k_reset, k_run = jax.random.split(k)
        obs, state = ENV.reset(k_reset, PARAMS)

        def body(carry, k_step):
            obs, state = carry
            action = policy(obs)
            obs, state, step = _env_step(k_step, state, action)
            _check_policy_step(carry, (obs, state), action, carry[0].dtype)
            return (obs, state), step.reward

        _, rewards = jax.lax.scan(body, (obs, state), jax.random.split(k_run, PARAMS.max_steps))
        return jnp.sum(rewards)

    return jnp.mean(jax.vmap(episode)(jax.random.split(key, n_episodes)))


def discounted_return(policy: Callable, obs: jax.Array, gamma, horizon: int):
    """Σ_{t<H} γ^t r_t of the deterministic ``policy`` from the Pendulum state behind ``obs``.

    The state (θ, θ̇) is recovered from obs = (cos θ, sin θ, θ̇); the rollout uses the
    raw dynamics ``step_env`` with no time limit, the infinite-horizon return that a
    critic bootstrapped through truncation estimates (up to γ^H).
    """
    _check_policy(policy)
    _checks.finite("obs", obs)
    if not (
        hasattr(obs, "dtype")
        and jnp.issubdtype(obs.dtype, jnp.floating)
        and np.shape(obs) == (ENV.obs_dim,)
    ):
        raise ValueError(
            f"obs must be one Pendulum observation (cos θ, sin θ, θ̇), a float array "
            f"of shape ({ENV.obs_dim},), got {type(obs).__name__} of shape "
            f"{np.shape(obs)}"
        )
    _checks.discount("gamma", gamma, allow_one=True)
    _checks.size("horizon", horizon)
    state = envs.PendulumState(jnp.arctan2(obs[1], obs[0]), obs[2], jnp.asarray(0, jnp.int32))

    def body(carry, _):
        state, obs, disc = carry
        action = policy(obs)
        state, obs, reward, _ = ENV.step_env(state, action * ENV.action_high, PARAMS)
        _check_policy_step(carry[:2], (state, obs), action, carry[1].dtype)
        next_disc = disc * gamma
        if np.shape(next_disc) != np.shape(disc) or next_disc.dtype != disc.dtype:
            raise ValueError(
                f"gamma must be a scalar that keeps obs's dtype {disc.dtype}, got {gamma!r}"
            )
        return (state, obs, next_disc), disc * reward

    _, rewards = jax.lax.scan(body, (state, obs, jnp.asarray(1.0, obs.dtype)), None, length=horizon)
    return jnp.sum(rewards)


def _check_policy(policy) -> None:
    if not callable(policy):
        raise ValueError(f"policy must be callable (obs -> action), got {policy!r}")


def _check_policy_step(before, after, action, obs_dtype) -> None:
    """At trace time, in a rollout's scan body: the environment state and observation after a
    step have the types they had before, else the policy's action changed them (a float64
    action under x64 promotes the float32 state), which ``lax.scan`` would refuse obscurely."""

    def types(tree):
        return [
            (np.shape(x), getattr(x, "dtype", type(x))) for x in jax.tree_util.tree_leaves(tree)
        ]

    if types(before) != types(after):
        raise TypeError(
            f"policy must return actions of dtype {obs_dtype} (the observations') "
            f"and shape ({ENV.action_dim},), got dtype "
            f"{getattr(action, 'dtype', type(action).__name__)} and shape "
            f"{np.shape(action)}"
        )


# --------------------------------------------------------------------------- the training loop


RNG_IMPLS = ("philox4x32", "threefry2x32")


def philox_key(key: jax.Array, impl: str = "philox4x32") -> jax.Array:
    """The run's key: by default a Philox-4x32 key (Salmon et al. 2011) drawn
    deterministically from ``key``; with ``impl="threefry2x32"``, ``key`` itself.

    A training step draws a dozen random arrays; with JAX's default Threefry each
    draw is a loop of hash rounds that XLA compiles separately, and on CPU the
    run's compile time nearly halves with Philox, a counter-based generator of the
    same family. The run stays a pure function of ``key`` either way.

    Philox's rounds multiply with ``lax.mulhi``, which the Shardy partitioner of the
    locked JAX (0.10.2) cannot compile: a run sharded across devices
    (:func:`rlbook.parallel.run_seeds` with several devices) fails with "Unable to
    convert MHLO to StableHLO". Such runs use ``rng_impl="threefry2x32"``.
    """
    _checks.one_of("impl", impl, RNG_IMPLS)
    if impl == "threefry2x32":
        return key
    return jax.random.wrap_key_data(jax.random.bits(key, (2,), jnp.uint32), impl="philox4x32")


def make_train(config: Config, agent: Agent):
    """``train(key) -> (state, metrics)``: the whole run as one ``lax.scan``, jittable and
    vmappable.

    ``metrics`` holds, per evaluation (E = ``total_steps // eval_every`` of them, after
    ``eval_every``, 2 ``eval_every``, … steps): ``step`` [E], ``eval_return`` [E], the
    per-period means of the agent's update metrics [E] (zero before the first update),
    and with ``value_states > 0`` ``q_estimate`` and ``true_return`` [E, value_states].
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be an offpolicy.Config, got {type(config).__name__}")
    if not isinstance(agent, Agent):
        raise ValueError(
            f"agent must be an offpolicy.Agent (e.g. sac.agent(config)), got {type(agent).__name__}"
        )
    validate(config)
    obs_dim, act_dim = ENV.obs_dim, ENV.action_dim
    n_periods = config.total_steps // config.eval_every
    f32 = jnp.float32
    example = Transition(
        jnp.zeros(obs_dim, f32),
        jnp.zeros(act_dim, f32),
        jnp.zeros((), f32),
        jnp.zeros(obs_dim, f32),
        jnp.zeros((), bool),
    )

    def evaluation(key, state, buffer):
        k_eval, k_idx = jax.random.split(key)
        out = {
            "eval_return": evaluate(k_eval, lambda o: agent.greedy(state, o), config.eval_episodes)
        }
        if config.value_states:
            idx = jax.random.randint(k_idx, (config.value_states,), 0, jnp.maximum(buffer.size, 1))
            obs = buffer.data.obs[idx]
            out["q_estimate"] = jax.vmap(lambda o: agent.q_value(state, o, agent.greedy(state, o)))(
                obs
            )
            out["true_return"] = jax.vmap(
                lambda o: discounted_return(
                    lambda x: agent.greedy(state, x), o, config.gamma, config.value_horizon
                )
            )(obs)
        return out

    def train(key):
        key = philox_key(key, config.rng_impl)
        k_init, k_reset, key = jax.random.split(key, 3)
        state = agent.init(k_init, obs_dim, act_dim)
        obs, env_state = ENV.reset(k_reset, PARAMS)
        buffer = replay.init(config.buffer_size, example)
        # The structure of the update's metrics, for the branch that does not update.
        _, metrics0 = jax.eval_shape(
            agent.update,
            k_init,
            state,
            jax.tree_util.tree_map(
                lambda x: jnp.zeros((config.batch_size,) + x.shape, x.dtype), example
            ),
            jnp.asarray(0, jnp.int32),
        )
        zero_metrics = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), metrics0)

        def env_step(carry, t):
            state, buffer, env_state, obs, noise, key = carry
            key, k_act, k_rand, k_env, k_upd = jax.random.split(key, 5)
            action, noise = agent.explore(k_act, state, obs, noise)
            random_action = jax.random.uniform(k_rand, (act_dim,), f32, -1.0, 1.0)
            action = jnp.where(t < config.learning_starts, random_action, action)
            next_obs, env_state, step = _env_step(k_env, env_state, action)
            buffer = replay.add(
                buffer, Transition(obs, action, step.reward, step.next_obs, step.terminated)
            )
            done = step.terminated | step.truncated
            noise = jax.tree_util.tree_map(
                lambda n0, n: jnp.where(done, n0, n), agent.noise0, noise
            )
            # ``t`` is unbatched under vmap, so this stays a real branch: no update is computed
            # during the warm-up or between updates.
            k = t - config.learning_starts
            do_update = (k >= 0) & (k % config.train_every == 0)

            def learn(s):
                k_batch, k_agent = jax.random.split(k_upd)
                batch = replay.sample(k_batch, buffer, config.batch_size)
                return agent.update(k_agent, s, batch, k // config.train_every)

            state, metrics = jax.lax.cond(do_update, learn, lambda s: (s, zero_metrics), state)
            return (state, buffer, env_state, next_obs, noise, key), (metrics, do_update)

        def period(carry, ts):
            carry, (metrics, updated) = jax.lax.scan(env_step, carry, ts)
            state, buffer, key = carry[0], carry[1], carry[5]
            key, k_eval = jax.random.split(key)
            carry = carry[:5] + (key,)
            out = evaluation(k_eval, state, buffer)
            n = jnp.maximum(jnp.sum(updated), 1)  # means over the steps that updated
            out.update(
                jax.tree_util.tree_map(
                    lambda m: jnp.sum(jnp.where(updated, m, 0), axis=0) / n, metrics
                )
            )
            return carry, out

        carry = (state, buffer, env_state, obs, agent.noise0, key)
        ts = jnp.arange(config.total_steps, dtype=jnp.int32).reshape(n_periods, config.eval_every)
        carry, metrics = jax.lax.scan(period, carry, ts)
        metrics["step"] = jnp.arange(1, n_periods + 1, dtype=jnp.int32) * config.eval_every
        return carry[0], metrics

    return train
