r"""Q-learning of an MLP on a fixed off-policy dataset of a tabular MDP.

The deep example of the chapter ``td_divergence`` (labels ``tdd-*``): the plain
semi-gradient step, DQN's step with SGD, against PreQN, the step preconditioned by the
inverse of the empirical NTK on the minibatch (Achiam, Knight & Abbeel 2019), whose
kernel objects are in :mod:`rlbook.ntk`.

=================================  ============================================================
``Config``, ``make_train``         the agent: ``make_train(config, mdp, obs, dataset)`` returns
                                   ``train(key, learning_rate=None) -> (params, metrics)``
``sample_dataset``                 transitions (s, a, r, s') with (s, a) ∼ ρ
``q_values``                       Q_θ(s, ·) of the tanh MLP
``targets``, ``loss``, ``update``  the target, the semi-gradient loss and one step
=================================  ============================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from rlbook import _checks, nets, ntk
from rlbook import mdp as mdp_lib

__all__ = ["Config", "make_train", "q_values", "sample_dataset", "targets", "loss", "update"]


@dataclass(frozen=True)
class Config:
    """Q-learning of an MLP on a fixed dataset of a tabular MDP (the chapter's deep example)."""

    method: str = "semi-gradient"
    """"semi-gradient": θ += α Σ_b ∇Q_b δ_b / B (DQN's step with plain SGD);
    "preqn": θ += α Jᵀ (K + λI)⁻¹ δ on the minibatch (Achiam et al. 2019)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the tanh MLP mapping state features to :math:`|A|` values."""
    learning_rate: float = 0.1
    """Step size α."""
    batch_size: int = 32
    """Transitions per minibatch, drawn uniformly from the dataset."""
    n_steps: int = 2000
    """Number of updates."""
    target_period: int = 1
    """Steps between copies of the online into the target network (1: no target network)."""
    damping: float = 1e-3
    """PreQN's λ relative to tr(K)/B (see ``rlbook.ntk.preqn_direction``); unused by
    "semi-gradient"."""
    log_every: int = 20
    """Record metrics every this many updates."""

    def __post_init__(self):
        if self.method not in ("semi-gradient", "preqn"):
            raise ValueError(f"method must be 'semi-gradient' or 'preqn', got {self.method!r}")
        _checks.nonempty_widths("hidden", self.hidden)
        _checks.positive("learning_rate", self.learning_rate)
        for name in ("batch_size", "n_steps", "target_period", "log_every"):
            _checks.positive_int(name, getattr(self, name))
        if self.n_steps % self.log_every:
            raise ValueError(f"log_every must divide n_steps={self.n_steps}, got {self.log_every}")
        _checks.positive("damping", self.damping, strict=False)


def q_values(params, obs: jax.Array) -> jax.Array:
    """Q_θ(s, ·) for state features ``obs`` of shape [..., d]: shape [..., A]."""
    return nets.mlp_apply(params, obs, activation=jnp.tanh, input_name="obs")


def sample_dataset(key: jax.Array, mdp: mdp_lib.MDP, rho: jax.Array, size: int):
    r"""``size`` transitions (s, a, r, s') with (s, a) ∼ ρ (shape [S, A]) and s' ∼ P(· | s, a).

    Returns a dict of int32 ``s``, ``a``, ``s_next`` and float32 ``r``, each of shape [size].
    """
    _checks.an_mdp(mdp)
    S, A = mdp.n_states, mdp.n_actions
    if np.shape(rho) != (S, A):
        raise ValueError(
            f"rho must have shape {(S, A)} (a distribution over pairs), got {np.shape(rho)}"
        )
    _checks.probabilities("rho", np.ravel(rho) if _checks.is_concrete(rho) else rho)
    _checks.positive_int("size", size)
    k_sa, k_next = jax.random.split(key)
    sa = jax.random.choice(k_sa, S * A, (size,), p=jnp.ravel(rho))
    s, a = sa // A, sa % A
    s_next = jax.random.categorical(k_next, jnp.log(mdp.P[s, a]))
    return {
        "s": s.astype(jnp.int32),
        "a": a.astype(jnp.int32),
        "r": mdp.r[s, a].astype(jnp.float32),
        "s_next": s_next.astype(jnp.int32),
    }


def targets(params_target, batch, obs: jax.Array, gamma) -> jax.Array:
    r"""y = r + γ max_a' Q_θ̄(s', a') for a batch, shape [B] (no terminal states here)."""
    return batch["r"] + gamma * jnp.max(q_values(params_target, obs[batch["s_next"]]), axis=-1)


def loss(params, params_target, batch, obs: jax.Array, gamma) -> jax.Array:
    r"""½ mean_b (Q_θ(s_b, a_b) − stop_gradient(y_b))²; its negative gradient is the
    semi-gradient step."""
    y = jax.lax.stop_gradient(targets(params_target, batch, obs, gamma))
    q = q_values(params, obs[batch["s"]])[jnp.arange(batch["s"].shape[0]), batch["a"]]
    return 0.5 * jnp.mean((q - y) ** 2)


def update(config: Config, params, params_target, batch, obs: jax.Array, gamma, learning_rate=None):
    """One step of ``config.method`` on a minibatch with step ``learning_rate``
    (default ``config.learning_rate``)."""
    lr = config.learning_rate if learning_rate is None else learning_rate
    if config.method == "semi-gradient":
        g = jax.grad(loss)(params, params_target, batch, obs, gamma)
        return jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g)
    y = targets(params_target, batch, obs, gamma)
    idx = jnp.arange(batch["s"].shape[0])

    def q_batch(p):
        return q_values(p, obs[batch["s"]])[idx, batch["a"]]

    delta = y - q_batch(params)
    theta, unravel = ravel_pytree(params)
    J = jax.jacrev(lambda t: q_batch(unravel(t)))(theta)
    return unravel(theta + lr * ntk.preqn_direction(J, delta, config.damping))


def _check_dataset(dataset, mdp: mdp_lib.MDP) -> None:
    """The dict of :func:`sample_dataset`: keys s, a, r, s_next of one length, indices in range."""
    keys = ("s", "a", "r", "s_next")
    if not isinstance(dataset, dict) or any(k not in dataset for k in keys):
        have = sorted(dataset) if isinstance(dataset, dict) else type(dataset).__name__
        raise ValueError(
            f"dataset must be a dict with keys {keys} (offline_q.sample_dataset), got {have}"
        )
    n = np.shape(dataset["s"])
    if len(n) != 1 or n[0] == 0:
        raise ValueError(f"dataset['s'] must have shape [N] with N >= 1, got {n}")
    for k in keys:
        if np.shape(dataset[k]) != n:
            raise ValueError(
                f"dataset['{k}'] must have the shape of dataset['s'] {n}, "
                f"got {np.shape(dataset[k])}"
            )
    _checks.index("dataset['s']", dataset["s"], mdp.n_states, what="a state index")
    _checks.index("dataset['s_next']", dataset["s_next"], mdp.n_states, what="a state index")
    _checks.index("dataset['a']", dataset["a"], mdp.n_actions, what="an action index")
    _checks.finite("dataset['r']", dataset["r"])


def make_train(config: Config, mdp: mdp_lib.MDP, obs: jax.Array, dataset: dict):
    r"""``train(key, learning_rate=None) -> (params, metrics)``: Q-learning from ``dataset``
    on a tabular MDP.

    ``obs`` [S, d] are the network's inputs per state; ``dataset`` comes from
    :func:`sample_dataset`. The metrics, every ``log_every`` steps, are
    ``q_max`` = max_{s,a} \|Q_θ(s, a)| and ``error`` = ‖Q_θ − Q*‖∞ over all pairs.
    The whole run is one ``lax.scan``; ``jax.vmap(train)`` runs seeds at once,
    and since ``learning_rate`` (overriding ``config.learning_rate``) may be
    traced, a vmap over step
    sizes compiles once too.

    ``method="preqn"`` with ``damping=0`` is refused: minibatches are drawn with
    replacement, so a batch that repeats a pair has a singular kernel K, which the
    traced training loop could not detect.
    """
    if not isinstance(config, Config):
        raise ValueError(f"config must be an Config, got {type(config).__name__}")
    if config.method == "preqn" and config.damping == 0:
        raise ValueError(
            "config.damping must be > 0 with method='preqn' in make_train: "
            "minibatches drawn with replacement repeat pairs, so K = J Jᵀ "
            "can be singular"
        )
    _checks.an_mdp(mdp)
    _checks.ndim("obs", obs, 2)
    if np.shape(obs)[0] != mdp.n_states:
        raise ValueError(f"obs must have one row per state ({mdp.n_states}), got {np.shape(obs)}")
    _checks.finite("obs", obs)
    _check_dataset(dataset, mdp)
    obs = jnp.asarray(obs, jnp.float32)
    gamma = jnp.float32(mdp.gamma)
    q_star = mdp_lib.value_iteration(mdp, tol=1e-6).q.astype(jnp.float32)
    n_data = dataset["s"].shape[0]
    sizes = [obs.shape[1], *config.hidden, mdp.n_actions]

    def train(key, learning_rate=None):
        lr = config.learning_rate if learning_rate is None else learning_rate
        lr = jnp.asarray(lr, jnp.float32)  # training is float32
        k_init, k_steps = jax.random.split(key)
        params = nets.mlp_init(k_init, sizes)

        def step(carry, inp):
            params, target = carry
            t, k = inp
            idx = jax.random.randint(k, (config.batch_size,), 0, n_data)
            batch = jax.tree_util.tree_map(lambda x: x[idx], dataset)
            params = update(config, params, target, batch, obs, gamma, lr)
            target = jax.tree_util.tree_map(
                lambda a, b: jnp.where((t + 1) % config.target_period == 0, a, b), params, target
            )
            return (params, target), None

        def block(carry, keys):
            carry, _ = jax.lax.scan(step, carry, keys)
            q = q_values(carry[0], obs)
            metrics = {"q_max": jnp.max(jnp.abs(q)), "error": jnp.max(jnp.abs(q - q_star))}
            return carry, metrics

        n_blocks = config.n_steps // config.log_every
        keys = jax.random.split(k_steps, config.n_steps)
        ts = jnp.arange(config.n_steps)
        inputs = (
            ts.reshape(n_blocks, config.log_every),
            keys.reshape(n_blocks, config.log_every, -1),
        )
        (params, _), metrics = jax.lax.scan(block, (params, params), inputs)
        return params, metrics

    return train
