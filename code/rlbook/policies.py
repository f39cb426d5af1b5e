r"""Stochastic policies π_θ(a | s) for the policy-gradient chapters.

A policy is a small frozen dataclass that holds only its *architecture* (sizes),
so it is hashable and can be closed over, or passed as a static argument, inside
``jit``; its parameters θ are a separate pytree made by ``init``. Every method is
a pure function of ``(params, obs, …)`` for **one** observation, batched by the
caller with ``jax.vmap`` (``jax.vmap(policy.log_prob, (None, 0, 0))``):

``init(key) -> params``
``sample(key, params, obs) -> (action, log_prob)``   a ∼ π_θ(· | s) and log π_θ(a | s)
``log_prob(params, obs, action) -> scalar``          log π_θ(a | s), differentiable in θ
``entropy(params, obs) -> scalar``                   H(π_θ(· | s))
``kl(params_p, params_q, obs) -> scalar``            KL(π_p(· | s) ‖ π_q(· | s))
``mode(params, obs) -> action``                      the most likely action (for evaluation)

:class:`SoftmaxPolicy` (discrete actions, logits from an MLP),
:class:`GaussianPolicy` (continuous actions, mean from an MLP and a
state-independent log standard deviation, as in Schulman et al. 2015 and
Andrychowicz et al. 2021) and :class:`TabularSoftmax` (one logit per state and
action, θ of shape [S, A], the parametrization of ``rlbook.mdp.softmax_policy``)
share this interface, so rollouts and agents take any of them. The networks are
``rlbook.nets`` MLPs and the distributions are ``rlbook.distributions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks, nets
from rlbook import distributions as D

__all__ = ["SoftmaxPolicy", "GaussianPolicy", "TabularSoftmax", "for_env"]


def _check_hidden(hidden) -> None:
    if not isinstance(hidden, tuple):
        raise ValueError(f"hidden must be a tuple of layer widths, got {hidden!r}")
    for i, n in enumerate(hidden):
        _checks.positive_int(f"hidden[{i}]", n)


def _check_obs(obs, obs_dim: int) -> None:
    if obs is None or isinstance(obs, (str, bytes)):
        raise ValueError(f"obs must be an observation of shape ({obs_dim},), got {obs!r}")
    _checks.real("obs", obs)
    _checks.finite("obs", obs)
    if jnp.shape(obs) != (obs_dim,):
        raise ValueError(
            f"obs must have shape ({obs_dim},) (one observation; batch with "
            f"jax.vmap), got {jnp.shape(obs)}"
        )


class _Categorical:
    """Sampling, log-probability, entropy and KL from a ``logits(params, obs)`` method."""

    def logits(self, params, obs) -> jax.Array:  # pragma: no cover - overridden
        raise NotImplementedError

    def sample(self, key, params, obs):
        """a ∼ softmax(logits(s)) as int32, and log π_θ(a | s)."""
        logits = self.logits(params, obs)
        a = D.categorical_sample(key, logits).astype(jnp.int32)
        return a, D.categorical_log_prob(logits, a)

    def log_prob(self, params, obs, action) -> jax.Array:
        """log π_θ(a | s) = log softmax(logits(s))[a]."""
        if action is None or isinstance(action, (str, bytes)):
            raise ValueError(f"action must be a scalar action index, got {action!r}")
        if jnp.shape(action) != ():
            raise ValueError(f"action must be a scalar index, got shape {jnp.shape(action)}")
        try:
            _checks.index("a", action, self.n_actions, what="a category index")
        except ValueError as err:
            raise ValueError(
                f"action must be an action index in [0, {self.n_actions}): {err}"
            ) from None
        return D.categorical_log_prob(self.logits(params, obs), action)

    def entropy(self, params, obs) -> jax.Array:
        """H(π_θ(· | s)) = −Σ_a π_θ(a | s) log π_θ(a | s)."""
        return D.categorical_entropy(self.logits(params, obs))

    def kl(self, params_p, params_q, obs) -> jax.Array:
        """KL(π_p(· | s) ‖ π_q(· | s)) for two parameter sets of this policy."""
        _checks.finite_tree("params_p", params_p)
        _checks.finite_tree("params_q", params_q)
        return D.categorical_kl(self.logits(params_p, obs), self.logits(params_q, obs))

    def mode(self, params, obs) -> jax.Array:
        """argmax_a π_θ(a | s), int32."""
        return jnp.argmax(self.logits(params, obs)).astype(jnp.int32)

    def probs(self, params, obs) -> jax.Array:
        """π_θ(· | s), shape [n_actions]."""
        return jax.nn.softmax(self.logits(params, obs))


@dataclass(frozen=True)
class SoftmaxPolicy(_Categorical):
    """π_θ(a | s) = softmax(f_θ(s))_a, with f_θ an MLP ``obs_dim → hidden → n_actions`` (tanh).

    ``final_scale`` shrinks the last layer so that the initial policy is close to
    uniform (Andrychowicz et al. 2021). Parameters are float32.
    """

    obs_dim: int
    n_actions: int
    hidden: tuple[int, ...] = (64, 64)
    final_scale: float = 0.01

    def __post_init__(self):
        _checks.positive_int("obs_dim", self.obs_dim)
        _checks.positive_int("n_actions", self.n_actions)
        _check_hidden(self.hidden)
        _checks.positive("final_scale", self.final_scale, strict=False)

    def init(self, key):
        """MLP weights (a list of ``{"w", "b"}`` dicts, ``rlbook.nets``)."""
        return nets.mlp_init(
            key, (self.obs_dim, *self.hidden, self.n_actions), final_scale=self.final_scale
        )

    def logits(self, params, obs) -> jax.Array:
        """f_θ(s), shape [n_actions]."""
        _checks.finite_tree("params", params)
        _check_obs(obs, self.obs_dim)
        return nets.mlp_apply(params, obs)


@dataclass(frozen=True)
class TabularSoftmax(_Categorical):
    """π_θ(a | s) = exp θ[s, a] / Σ_b exp θ[s, b]: θ of shape [S, A], the observation an int state.

    ``probs_table(θ)`` is the whole [S, A] policy array that ``rlbook.mdp`` takes,
    identical to ``rlbook.mdp.softmax_policy(θ)``.
    """

    n_states: int
    n_actions: int

    def __post_init__(self):
        _checks.positive_int("n_states", self.n_states)
        _checks.positive_int("n_actions", self.n_actions)

    def init(self, key, scale: float = 0.0, dtype=jnp.float32):
        """θ = scale · ε with ε ∼ N(0, 1) of shape [S, A]; ``scale=0`` is the uniform policy."""
        _checks.positive("scale", scale, strict=False)
        return scale * jax.random.normal(key, (self.n_states, self.n_actions), dtype)

    def logits(self, params, obs) -> jax.Array:
        """θ[s], shape [n_actions]."""
        _checks.finite_tree("params", params)
        if obs is None or isinstance(obs, (str, bytes)):
            raise ValueError(f"obs must be a scalar state index, got {obs!r}")
        if jnp.shape(params) != (self.n_states, self.n_actions):
            raise ValueError(
                f"params must have shape {(self.n_states, self.n_actions)}, got {jnp.shape(params)}"
            )
        if jnp.shape(obs) != ():
            raise ValueError(f"obs must be a scalar state index, got shape {jnp.shape(obs)}")
        _checks.index("obs", obs, self.n_states, what="a state index")
        return params[obs]

    def probs_table(self, params) -> jax.Array:
        """π_θ as an [S, A] array."""
        _checks.finite_tree("params", params)
        return jax.nn.softmax(params, axis=-1)


@dataclass(frozen=True)
class GaussianPolicy:
    """π_θ(a | s) = N(a; μ_θ(s), diag σ²): μ_θ an MLP ``obs_dim → hidden → action_dim``,
    log σ a learned vector independent of the state.

    Actions are not squashed; the environment clips them (Pendulum-v1 does).
    Parameters: ``{"mean": MLP weights, "log_std": [action_dim]}``, float32.
    """

    obs_dim: int
    action_dim: int
    hidden: tuple[int, ...] = (64, 64)
    final_scale: float = 0.01
    init_log_std: float = 0.0

    def __post_init__(self):
        _checks.positive_int("obs_dim", self.obs_dim)
        _checks.positive_int("action_dim", self.action_dim)
        _check_hidden(self.hidden)
        _checks.positive("final_scale", self.final_scale, strict=False)
        if not np.isfinite(self.init_log_std):
            raise ValueError(f"init_log_std must be finite, got {self.init_log_std}")

    def init(self, key):
        mean = nets.mlp_init(
            key, (self.obs_dim, *self.hidden, self.action_dim), final_scale=self.final_scale
        )
        return {
            "mean": mean,
            "log_std": jnp.full((self.action_dim,), self.init_log_std, jnp.float32),
        }

    def mean_and_log_std(self, params, obs):
        """(μ_θ(s), log σ), each of shape [action_dim]."""
        _check_gaussian_params("params", params)
        _check_obs(obs, self.obs_dim)
        return nets.mlp_apply(params["mean"], obs), params["log_std"]

    def sample(self, key, params, obs):
        """a = μ_θ(s) + σ ⊙ ε, ε ∼ N(0, I), and log π_θ(a | s)."""
        mean, log_std = self.mean_and_log_std(params, obs)
        a = D.gaussian_sample(key, mean, log_std)
        return a, D.gaussian_log_prob(mean, log_std, a)

    def log_prob(self, params, obs, action) -> jax.Array:
        """log N(a; μ_θ(s), diag σ²)."""
        if action is None or isinstance(action, (str, bytes)):
            raise ValueError(
                f"action must be an array of shape ({self.action_dim},), got {action!r}"
            )
        _checks.real("action", action)
        _checks.finite("action", action)
        if jnp.shape(action) != (self.action_dim,):
            raise ValueError(
                f"action must have shape ({self.action_dim},), got {jnp.shape(action)}"
            )
        mean, log_std = self.mean_and_log_std(params, obs)
        return D.gaussian_log_prob(mean, log_std, action)

    def entropy(self, params, obs) -> jax.Array:
        mean, log_std = self.mean_and_log_std(params, obs)
        return D.gaussian_entropy(mean, log_std)

    def kl(self, params_p, params_q, obs) -> jax.Array:
        """KL(π_p(· | s) ‖ π_q(· | s)) between the Gaussians of two parameter sets."""
        _check_gaussian_params("params_p", params_p)
        _check_gaussian_params("params_q", params_q)
        mp, lp = self.mean_and_log_std(params_p, obs)
        mq, lq = self.mean_and_log_std(params_q, obs)
        return D.gaussian_kl(mp, lp, mq, lq)

    def mode(self, params, obs) -> jax.Array:
        """μ_θ(s)."""
        return self.mean_and_log_std(params, obs)[0]


def _check_gaussian_params(name: str, params) -> None:
    """A :class:`GaussianPolicy`'s parameters: a dict with ``"mean"`` and ``"log_std"``."""
    if not (isinstance(params, Mapping) and "mean" in params and "log_std" in params):
        raise ValueError(
            f"{name} must be a GaussianPolicy's parameters (a dict with 'mean' "
            f"and 'log_std', from init), got {type(params).__name__}"
        )
    _checks.finite_tree(name, params)


def for_env(env, hidden: tuple[int, ...] = (64, 64), **kwargs):
    """The policy family an environment calls for: softmax for discrete actions
    (``env.n_actions``), Gaussian for continuous ones (``env.action_dim``)."""
    if hasattr(env, "n_actions"):
        return SoftmaxPolicy(env.obs_dim, env.n_actions, hidden, **kwargs)
    if hasattr(env, "action_dim"):
        return GaussianPolicy(env.obs_dim, env.action_dim, hidden, **kwargs)
    raise ValueError(f"env must have n_actions or action_dim, got {type(env).__name__}")
