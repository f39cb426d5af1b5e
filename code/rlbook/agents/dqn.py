r"""Deep Q-networks (Mnih et al. 2015): Q-learning with a replay buffer and a target network.

A network Q_φ(s, ·) maps an observation to one value per action. Transitions
(s, a, r, s', terminated) gathered by an ε-greedy policy go into a replay
buffer; each update samples a minibatch and descends

    L(φ) = mean_i ℓ(Q_φ(s_i, a_i) − y_i),
    y_i  = r_i + γ (1 − terminated_i) max_a' Q_φ̄(s'_i, a'),

where ℓ is the Huber loss (or ½ x²) and φ̄ are the parameters of the target
network, a lagged copy of φ (φ̄ ← τ φ + (1 − τ) φ̄ every ``target_period``
updates; τ = 1 is the periodic copy of Mnih et al.). ``s'`` is the observation
*before* any reset, and only termination stops the bootstrap: an episode cut
by the time limit (truncation) still bootstraps from s' (Pardo et al. 2018).

``make_train(config)`` returns a pure ``train(key) -> (state, metrics)``: the
whole run (collection, replay, updates, target moves) is one ``lax.scan``
inside ``jit``, and ``jax.vmap(train)`` runs several seeds for one compile.
Snapshots of φ at each log point come back in the metrics, so that one compiled
:func:`evaluate` serves every run. The pieces are module-level pure functions that a
chapter can show on their own: :func:`q_values`, :func:`epsilon_greedy`, :func:`rollout`,
:func:`targets`, :func:`loss`, :func:`update`, :func:`evaluate`, and
:func:`readable_update`, the plain-loop version of :func:`update`.
Used by the Q-learning chapter (``q-dqn``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlbook import _checks, envs, nets, replay

__all__ = [
    "DQNConfig",
    "Transition",
    "Learner",
    "Actor",
    "make_optimizer",
    "q_values",
    "epsilon",
    "epsilon_greedy",
    "rollout",
    "targets",
    "loss",
    "update",
    "readable_update",
    "evaluate",
    "make_train",
]


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Hyperparameters of DQN. Step counts are environment steps summed over ``n_envs``."""

    total_steps: int = 50_000
    """Environment steps per seed, warm-up included."""
    n_envs: int = 1
    """Environments stepped in parallel per seed (each collection step adds ``n_envs``
    transitions)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden-layer widths of the Q-network (ReLU activations)."""
    learning_rate: float = 1e-3
    """Adam's step size."""
    gamma: float = 0.99
    """Discount γ of the TD target."""
    buffer_size: int = 50_000
    """Capacity of the replay buffer, in transitions."""
    batch_size: int = 64
    """Transitions per minibatch, drawn uniformly with replacement from the buffer."""
    learning_starts: int = 1_000
    """Environment steps collected before the first update (at least ``batch_size``)."""
    train_every: int = 1
    """Collection steps (of ``n_envs`` transitions each) between two gradient updates."""
    use_target: bool = True
    """Bootstrap from the target network φ̄; ``False`` bootstraps from φ itself (the ablation)."""
    target_period: int = 500
    """Gradient updates between two moves of the target network."""
    target_tau: float = 1.0
    """Step τ of the target move φ̄ ← τ φ + (1 − τ) φ̄ (1.0: a copy)."""
    epsilon_start: float = 1.0
    """Exploration rate ε at step 0."""
    epsilon_end: float = 0.05
    """Exploration rate after ``epsilon_steps``."""
    epsilon_steps: int = 10_000
    """Environment steps over which ε decays linearly."""
    huber_delta: float | None = 1.0
    """Threshold κ of the Huber loss; ``None`` uses the squared loss ½ x²."""
    max_grad_norm: float = 10.0
    """Gradients are clipped to this global norm before Adam."""
    log_every: int = 2_000
    """Environment steps between two log points (metrics and a snapshot of φ)."""

    def __post_init__(self):
        for name in (
            "total_steps",
            "n_envs",
            "buffer_size",
            "batch_size",
            "train_every",
            "target_period",
            "epsilon_steps",
            "log_every",
        ):
            _checks.positive_int(name, getattr(self, name))
        if self.batch_size > self.buffer_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be at most buffer_size ({self.buffer_size})"
            )
        if not isinstance(self.hidden, tuple) or not self.hidden:
            raise ValueError(f"hidden must be a non-empty tuple of widths, got {self.hidden!r}")
        for i, n in enumerate(self.hidden):
            _checks.positive_int(f"hidden[{i}]", n)
        _checks.flag("use_target", self.use_target)
        _checks.positive("learning_rate", self.learning_rate)
        _checks.discount("gamma", self.gamma)
        _checks.positive("max_grad_norm", self.max_grad_norm)
        if self.huber_delta is not None:
            _checks.positive("huber_delta", self.huber_delta)
        _checks.interval("target_tau", self.target_tau, 0.0, 1.0, low_open=True)
        for name in ("epsilon_start", "epsilon_end"):
            _checks.interval(name, getattr(self, name), 0.0, 1.0)
        if not isinstance(self.learning_starts, int) or self.learning_starts < self.batch_size:
            raise ValueError(
                f"learning_starts must be an integer >= batch_size="
                f"{self.batch_size}, got {self.learning_starts!r}"
            )
        per_update = self.train_every * self.n_envs
        if self.log_every % per_update:
            raise ValueError(
                f"log_every must be a multiple of train_every * n_envs = "
                f"{per_update}, got {self.log_every}"
            )
        if self.total_steps % self.log_every:
            raise ValueError(
                f"total_steps must be a multiple of log_every={self.log_every}, "
                f"got {self.total_steps}"
            )
        if self.learning_starts >= self.total_steps:
            raise ValueError(
                f"learning_starts must be less than total_steps={self.total_steps}, "
                f"got {self.learning_starts}"
            )

    @property
    def n_logs(self) -> int:
        """Log points in a run, one every ``log_every`` environment steps."""
        return self.total_steps // self.log_every

    @property
    def iterations_per_log(self) -> int:
        """Iterations of the scan (``train_every`` collection steps, then an update) per log."""
        return self.log_every // (self.train_every * self.n_envs)

    @property
    def log_steps(self) -> np.ndarray:
        """Environment steps at the log points, shape [n_logs]."""
        return self.log_every * np.arange(1, self.n_logs + 1)


class Transition(NamedTuple):
    """One stored transition; ``next_obs`` is s' before any reset."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array


class Learner(NamedTuple):
    """What the updates change: online and target parameters, optimizer state, update count."""

    params: Any
    target_params: Any
    opt_state: Any
    n_updates: jax.Array


class Actor(NamedTuple):
    """What collection changes: the environments, the step count and the episode bookkeeping."""

    env_state: Any
    obs: jax.Array  # [n_envs, obs_dim], the observation to act on
    t: jax.Array  # environment steps so far (all envs)
    episode_return: jax.Array  # [n_envs], return of the running episodes
    finished_return: jax.Array  # sum of the returns of episodes finished since the last log
    finished_count: jax.Array  # how many episodes finished since the last log


def make_optimizer(config: DQNConfig) -> optax.GradientTransformation:
    """Adam after clipping the global gradient norm to ``config.max_grad_norm``."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate)
    )


def q_values(params, obs: jax.Array) -> jax.Array:
    """Q_φ(s, ·) for observations of shape [..., obs_dim]; shape [..., n_actions]."""
    return nets.mlp_apply(params, obs, activation=jax.nn.relu, input_name="obs")


def epsilon(config: DQNConfig, t: jax.Array) -> jax.Array:
    """ε_t, decaying linearly from ``epsilon_start`` to ``epsilon_end`` over ``epsilon_steps``."""
    if not isinstance(config, DQNConfig):
        raise ValueError(f"config must be a DQNConfig, got {type(config).__name__}")
    _checks.positive("t", t, strict=False)
    frac = jnp.minimum(jnp.asarray(t, jnp.float32) / config.epsilon_steps, 1.0)
    return config.epsilon_start + frac * (config.epsilon_end - config.epsilon_start)


def epsilon_greedy(key: jax.Array, q: jax.Array, eps: jax.Array) -> jax.Array:
    """With probability ε a uniform action, else argmax_a q[..., a]; q of shape [..., A]."""
    _checks.finite("q", q)
    if not hasattr(q, "shape") or np.ndim(q) < 1 or np.shape(q)[-1] < 1:
        raise ValueError(
            f"q must be an array of shape [..., n_actions] with n_actions >= 1, "
            f"got {type(q).__name__} of shape {np.shape(q)}"
        )
    _checks.interval("eps", eps, 0.0, 1.0, scalar=False)
    u = jax.random.uniform(key, (2,) + q.shape[:-1], jnp.float32)
    random_action = jnp.minimum(jnp.floor(u[1] * q.shape[-1]), q.shape[-1] - 1)
    return jnp.where(
        u[0] < eps, random_action.astype(jnp.int32), jnp.argmax(q, axis=-1).astype(jnp.int32)
    )


def rollout(
    key: jax.Array, params, actor: Actor, config: DQNConfig, env, env_params
) -> tuple[Actor, Transition]:
    """One ε-greedy step in each of the ``n_envs`` environments; the transitions to store."""
    keys = jax.random.split(key, actor.obs.shape[0] + 1)
    action = epsilon_greedy(keys[0], q_values(params, actor.obs), epsilon(config, actor.t))
    obs, env_state, step = jax.vmap(env.step, (0, 0, 0, None))(
        keys[1:], actor.env_state, action, env_params
    )
    transition = Transition(actor.obs, action, step.reward, step.next_obs, step.terminated)
    done = step.terminated | step.truncated
    episode_return = actor.episode_return + step.reward
    actor = Actor(
        env_state,
        obs,
        actor.t + actor.obs.shape[0],
        jnp.where(done, 0.0, episode_return),
        actor.finished_return + jnp.sum(jnp.where(done, episode_return, 0.0)),
        actor.finished_count + jnp.sum(done, dtype=jnp.int32),
    )
    return actor, transition


def targets(q_next: jax.Array, reward: jax.Array, terminated: jax.Array, gamma) -> jax.Array:
    """y = r + γ (1 − terminated) max_a' Q_φ̄(s', a'); q_next of shape [B, A], the rest [B].

    Only termination masks the bootstrap; truncation does not appear here at all.
    """
    for name, x in (("q_next", q_next), ("reward", reward), ("terminated", terminated)):
        _checks.finite(name, x)
        if not hasattr(x, "dtype"):
            raise ValueError(f"{name} must be an array (jax or numpy), got {type(x).__name__}")
    if np.ndim(q_next) < 1:
        raise ValueError(f"q_next must have shape [B, A], got shape {np.shape(q_next)}")
    try:
        np.broadcast_shapes(np.shape(reward), np.shape(terminated), np.shape(q_next)[:-1])
    except ValueError:
        raise ValueError(
            f"reward {np.shape(reward)}, terminated {np.shape(terminated)} and "
            f"q_next {np.shape(q_next)} must have matching batch shapes ([B], [B] "
            f"and [B, A])"
        ) from None
    _checks.discount("gamma", gamma, allow_one=True)
    return reward + gamma * (1.0 - terminated.astype(reward.dtype)) * jnp.max(q_next, axis=-1)


def loss(params, target_params, batch: Transition, gamma, huber_delta=1.0):
    """Mean Huber (or ½ x²) TD error of Q_φ(s, a) against the stopped targets y.

    Returns ``(loss, q_sa)`` with ``q_sa`` = Q_φ(s_i, a_i), shape [B].
    """
    q = q_values(params, batch.obs)
    q_sa = jnp.take_along_axis(q, batch.action[:, None], axis=-1)[:, 0]
    q_next = q_values(jax.lax.stop_gradient(target_params), batch.next_obs)
    y = jax.lax.stop_gradient(targets(q_next, batch.reward, batch.terminated, gamma))
    td = q_sa - y
    if huber_delta is None:
        per = 0.5 * td**2
    else:
        per = optax.huber_loss(td, delta=huber_delta)
    return jnp.mean(per), q_sa


def update(
    learner: Learner, batch: Transition, config: DQNConfig, optimizer: optax.GradientTransformation
) -> tuple[Learner, dict]:
    """One gradient step on :func:`loss`, then the target move every ``target_period`` updates.

    Without a target network (``use_target=False``) the bootstrap uses φ itself.
    """
    bootstrap = learner.target_params if config.use_target else learner.params
    (value, q_sa), grads = jax.value_and_grad(loss, has_aux=True)(
        learner.params, bootstrap, batch, config.gamma, config.huber_delta
    )
    updates, opt_state = optimizer.update(grads, learner.opt_state, learner.params)
    params = optax.apply_updates(learner.params, updates)
    n = learner.n_updates + 1
    if config.use_target:
        moved = optax.incremental_update(params, learner.target_params, config.target_tau)
        target = optax.periodic_update(moved, learner.target_params, n, config.target_period)
    else:
        target = params
    return Learner(params, target, opt_state, n), {"loss": value, "q": jnp.mean(q_sa)}


def readable_update(
    learner: Learner, batch: Transition, config: DQNConfig, optimizer: optax.GradientTransformation
) -> Learner:
    """:func:`update` written as the algorithm reads, one transition at a time (slow; for tests).

    ``batch`` must hold concrete arrays.
    """
    bootstrap = learner.target_params if config.use_target else learner.params

    def minibatch_loss(params):
        total = 0.0
        for i in range(len(batch.reward)):
            q_next = q_values(bootstrap, batch.next_obs[i])  # Q_φ̄(s', ·)
            if batch.terminated[i]:
                y = batch.reward[i]  # no bootstrap from an absorbing state
            else:
                y = batch.reward[i] + config.gamma * jnp.max(q_next)
            delta = q_values(params, batch.obs[i])[batch.action[i]] - y
            if config.huber_delta is None:
                total += 0.5 * delta**2
            else:
                kappa = config.huber_delta
                total += jnp.where(
                    jnp.abs(delta) <= kappa, 0.5 * delta**2, kappa * (jnp.abs(delta) - 0.5 * kappa)
                )
        return total / len(batch.reward)

    grads = jax.grad(minibatch_loss)(learner.params)
    updates, opt_state = optimizer.update(grads, learner.opt_state, learner.params)
    params = optax.apply_updates(learner.params, updates)
    n = learner.n_updates + 1
    target = learner.target_params
    if not config.use_target:
        target = params
    elif int(n) % config.target_period == 0:
        target = jax.tree_util.tree_map(
            lambda p, t: config.target_tau * p + (1.0 - config.target_tau) * t, params, target
        )
    return Learner(params, target, opt_state, n)


def evaluate(key: jax.Array, params, env, env_params, n_episodes: int) -> jax.Array:
    """Returns of ``n_episodes`` episodes of the greedy policy argmax_a Q_φ(s, a), shape
    [n_episodes].

    Each episode runs to termination or to the time limit ``env_params.max_steps``.
    """
    _checks.size("n_episodes", n_episodes)
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(key, n_episodes), env_params)

    def step(carry, _):
        state, obs, alive, ret = carry
        action = jnp.argmax(q_values(params, obs), axis=-1)
        state, obs, reward, terminated = jax.vmap(env.step_env, (0, 0, None))(
            state, action, env_params
        )
        ret = ret + jnp.where(alive, reward, 0.0)
        return (state, obs, alive & ~terminated, ret), None

    init = (state, obs, jnp.ones(n_episodes, bool), jnp.zeros(n_episodes, jnp.float32))
    (_, _, _, ret), _ = jax.lax.scan(step, init, None, length=env_params.max_steps)
    return ret


def make_train(config: DQNConfig, env=None, env_params=None):
    """``train(key) -> (state, metrics)`` running DQN for ``config.total_steps`` steps.

    ``env`` defaults to CartPole-v1. Each iteration of the scan collects
    ``train_every`` steps in each of the ``n_envs`` environments, then makes one
    update once ``learning_starts`` transitions are stored. ``state`` is
    ``(learner, actor, buffer)``. ``metrics`` has one entry per log point (L =
    ``config.n_logs``, at ``config.log_steps``): ``train_return`` [L], the mean
    return of the ε-greedy episodes finished since the last log (NaN if none);
    ``loss`` and ``q`` [L], the mean TD loss and mean Q_φ(s, a) over the updates
    since the last log (NaN before the first update); and ``params``, the online
    parameters φ at each log point (leaves with a leading axis L), for a greedy
    evaluation with :func:`evaluate` after training.
    """
    if not isinstance(config, DQNConfig):
        raise ValueError(f"config must be a DQNConfig, got {type(config).__name__}")
    if env is None:
        env, env_params = envs.make("CartPole-v1")
    elif env_params is None:
        env_params = env.default_params
    if not isinstance(getattr(env, "n_actions", None), int) or not hasattr(env, "obs_dim"):
        raise ValueError(
            f"env must have discrete actions (an int n_actions) and an obs_dim "
            f"for DQN, got {type(env).__name__}"
        )
    optimizer = make_optimizer(config)

    def train_iteration(carry, keys):
        """``train_every`` collection steps, then one update; ``keys`` [train_every + 1]."""
        learner, actor, buffer = carry

        def collect(c, k):
            actor, buffer = c
            actor, transition = rollout(k, learner.params, actor, config, env, env_params)
            return (actor, replay.add_batch(buffer, transition)), None

        (actor, buffer), _ = jax.lax.scan(collect, (actor, buffer), keys[:-1])

        def learn(learner):
            batch = replay.sample(keys[-1], buffer, config.batch_size)
            return update(learner, batch, config, optimizer)

        def wait(learner):
            nan = jnp.asarray(jnp.nan, jnp.float32)
            return learner, {"loss": nan, "q": nan}

        learner, info = jax.lax.cond(actor.t >= config.learning_starts, learn, wait, learner)
        return (learner, actor, buffer), info

    def stretch(carry, keys):
        """The iterations between two log points; ``keys`` [iterations, train_every + 1]."""
        carry, info = jax.lax.scan(train_iteration, carry, keys)
        learner, actor, buffer = carry
        done = actor.finished_count
        train_return = jnp.where(done > 0, actor.finished_return / jnp.maximum(done, 1), jnp.nan)
        actor = actor._replace(
            finished_return=jnp.zeros_like(actor.finished_return),
            finished_count=jnp.zeros_like(done),
        )
        out = {
            "train_return": train_return,
            "loss": jnp.nanmean(info["loss"]),
            "q": jnp.nanmean(info["q"]),
            "params": learner.params,
        }
        return (learner, actor, buffer), out

    def train(key):
        k_init, k_reset, k_run = jax.random.split(key, 3)
        params = nets.mlp_init(k_init, [env.obs_dim, *config.hidden, env.n_actions])
        learner = Learner(params, params, optimizer.init(params), jnp.asarray(0, jnp.int32))
        obs, env_state = jax.vmap(env.reset, (0, None))(
            jax.random.split(k_reset, config.n_envs), env_params
        )
        actor = Actor(
            env_state,
            obs,
            jnp.asarray(0, jnp.int32),
            jnp.zeros(config.n_envs, jnp.float32),
            jnp.asarray(0.0, jnp.float32),
            jnp.asarray(0, jnp.int32),
        )
        example = Transition(
            obs[0],
            jnp.asarray(0, jnp.int32),
            jnp.asarray(0.0, jnp.float32),
            obs[0],
            jnp.asarray(False),
        )
        buffer = replay.init(config.buffer_size, example)
        # Every key of the run, split once: [log point, iteration, collection steps + sample].
        keys = jax.random.split(
            k_run, (config.n_logs, config.iterations_per_log, config.train_every + 1)
        )
        return jax.lax.scan(stretch, (learner, actor, buffer), keys)

    return train
