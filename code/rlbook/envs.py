r"""Small JAX environments with a functional API, faithful to Gymnasium.

Each environment is a stateless object; its state and parameters are frozen
pytrees (``NamedTuple``), so ``reset`` and ``step`` are pure functions that
``jit`` and ``vmap`` without ceremony (Gymnax's contract, Lange 2022):

``reset(key, params) -> (obs, state)``
    a fresh episode.
``step(key, state, action, params) -> (obs, state, step)``
    one transition with auto-reset. ``step`` is a :class:`Step` holding the
    reward, ``terminated`` (the MDP reached an absorbing state: do not
    bootstrap) and ``truncated`` (the time limit cut the episode: do bootstrap),
    and ``next_obs``, the observation of s' *before* any reset, which is the one
    a critic bootstraps from. ``obs`` is the observation to act on next: the
    reset observation when the episode ended, ``next_obs`` otherwise.
``step_env(state, action, params) -> (state, obs, reward, terminated)``
    the raw dynamics with no time limit and no reset, for derivations.
    Pendulum's is differentiable in state and action.

States and observations are float32 from ``reset`` (as Gymnasium's observations),
whatever ``jax_enable_x64`` says; ``step_env`` keeps the dtype of the state it is given,
so derivations can step float64 states.

``CartPole`` is Gymnasium's ``CartPole-v1`` and ``Pendulum`` its ``Pendulum-v1``
(tests step both against Gymnasium from the same states and actions).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rlbook import _checks

__all__ = [
    "Step",
    "CartPole",
    "CartPoleParams",
    "CartPoleState",
    "Pendulum",
    "PendulumParams",
    "PendulumState",
    "angle_normalize",
    "make",
]


class Step(NamedTuple):
    """What one call of ``step`` reports besides the new state."""

    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array


def _check_params(params, cls, positive=(), non_negative=(), finite=()) -> None:
    """Validate an environment's parameters by field name (concrete values only).

    Under ``jit`` with traced parameters nothing is checked: the dynamics then
    follow the arithmetic (a zero mass divides by zero and gives inf/NaN).
    """
    if not isinstance(params, cls):
        raise ValueError(f"params must be a {cls.__name__}, got {type(params).__name__}")
    for name in positive:
        _checks.positive(f"params.{name}", getattr(params, name))
    for name in non_negative:
        _checks.positive(f"params.{name}", getattr(params, name), strict=False)
    for name in finite:
        _checks.finite(f"params.{name}", getattr(params, name))
    steps = params.max_steps
    if _checks.is_concrete(steps):
        a = _checks._numeric("params.max_steps", steps)
        if a.shape != () or a.dtype.kind not in "iu" or a <= 0:
            raise ValueError(f"params.max_steps must be a positive integer, got {steps!r}")


def _check_state(state, cls) -> None:
    """``state`` is a ``cls`` (the environment's state, as ``reset`` returns it)."""
    if not isinstance(state, cls):
        raise ValueError(f"state must be a {cls.__name__} (from reset), got {type(state).__name__}")


def _auto_reset(env, key, state, action, params):
    """Shared body of ``step``: raw dynamics, time limit, then reset when done."""
    k_reset, _ = jax.random.split(key)
    next_state, next_obs, reward, terminated = env.step_env(state, action, params)
    next_state = next_state._replace(t=state.t + 1)
    truncated = (next_state.t >= params.max_steps) & ~terminated
    done = terminated | truncated
    reset_obs, reset_state = env.reset(k_reset, params)
    state_out = jax.tree_util.tree_map(lambda r, n: jnp.where(done, r, n), reset_state, next_state)
    obs = jnp.where(done, reset_obs, next_obs)
    return obs, state_out, Step(reward, terminated, truncated, next_obs)


# --------------------------------------------------------------------------- CartPole


class CartPoleParams(NamedTuple):
    """Physical constants of CartPole-v1 (Barto, Sutton & Anderson 1983), SI units."""

    gravity: float = 9.8
    masscart: float = 1.0
    masspole: float = 0.1
    length: float = 0.5  # half the pole's length
    force_mag: float = 10.0
    tau: float = 0.02  # seconds per step
    theta_threshold: float = 12 * 2 * math.pi / 360
    x_threshold: float = 2.4
    max_steps: int = 500


class CartPoleState(NamedTuple):
    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array
    theta_dot: jax.Array
    t: jax.Array


class CartPole:
    """CartPole-v1: push a cart left (action 0) or right (action 1) to keep a pole up.

    Observation (x, ẋ, θ, θ̇), reward 1 every step including the terminal one,
    termination when :math:`|x| > 2.4` or :math:`|θ| > 12°`, truncation at 500 steps.
    """

    obs_dim = 4
    n_actions = 2

    @property
    def default_params(self) -> CartPoleParams:
        return CartPoleParams()

    def check_params(self, params) -> None:
        """Raise a ValueError naming what in ``params`` does not suit this environment
        (its type, then its values where they are concrete)."""
        _check_cartpole(params)

    def reset(self, key, params: CartPoleParams):
        _check_cartpole(params)
        s = jax.random.uniform(key, (4,), jnp.float32, minval=-0.05, maxval=0.05)
        state = CartPoleState(s[0], s[1], s[2], s[3], jnp.asarray(0, jnp.int32))
        return self.observe(state), state

    def observe(self, state: CartPoleState) -> jax.Array:
        return jnp.stack([state.x, state.x_dot, state.theta, state.theta_dot])

    def step_env(self, state: CartPoleState, action, params: CartPoleParams):
        """One Euler step; ``action`` must be 0 (push left) or 1 (push right).

        A concrete action outside {0, 1} raises ``ValueError``; under ``jit`` (a
        traced action) it cannot, and any other action makes the next state, the
        observation and the reward NaN (never a push to the left).
        """
        _check_cartpole(params)
        _check_state(state, CartPoleState)
        if np.ndim(action) != 0:
            raise ValueError(
                f"action must be a scalar (one CartPole action, 0 or 1), got shape "
                f"{np.shape(action)}"
            )
        _checks.index("action", action, 2, what="a CartPole action, 0 or 1", allow_float=True)
        total_mass = params.masscart + params.masspole
        polemass_length = params.masspole * params.length
        # In the state's dtype: two Python floats would make a float64 vector with x64 on.
        force_mag = jnp.asarray(params.force_mag, jnp.result_type(state.theta))
        force = jnp.where(action == 1, force_mag, -force_mag)
        cos, sin = jnp.cos(state.theta), jnp.sin(state.theta)
        temp = (force + polemass_length * state.theta_dot**2 * sin) / total_mass
        thetaacc = (params.gravity * sin - cos * temp) / (
            params.length * (4.0 / 3.0 - params.masspole * cos**2 / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * cos / total_mass
        # Explicit Euler, as Gymnasium's default kinematics_integrator="euler".
        new = state._replace(
            x=state.x + params.tau * state.x_dot,
            x_dot=state.x_dot + params.tau * xacc,
            theta=state.theta + params.tau * state.theta_dot,
            theta_dot=state.theta_dot + params.tau * thetaacc,
        )
        terminated = (jnp.abs(new.x) > params.x_threshold) | (
            jnp.abs(new.theta) > params.theta_threshold
        )
        reward = jnp.ones_like(new.x)
        new, reward = _checks.nan_unless((action == 0) | (action == 1), (new, reward))
        return new, self.observe(new), reward, terminated

    def step(self, key, state: CartPoleState, action, params: CartPoleParams):
        return _auto_reset(self, key, state, action, params)


def _check_cartpole(params) -> None:
    _check_params(
        params,
        CartPoleParams,
        positive=("masscart", "masspole", "length", "tau", "theta_threshold", "x_threshold"),
        non_negative=("force_mag",),
        finite=("gravity",),
    )


# --------------------------------------------------------------------------- Pendulum


def angle_normalize(x: jax.Array) -> jax.Array:
    """Wrap an angle to [−π, π), as Gymnasium's Pendulum does.

    A concrete ``x`` must be finite (an infinite angle has no direction); traced ones
    are not checked.
    """
    _checks.real("x", x)
    _checks.finite("x", x)
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


class PendulumParams(NamedTuple):
    """Constants of Pendulum-v1, SI units."""

    max_speed: float = 8.0
    max_torque: float = 2.0
    dt: float = 0.05
    g: float = 10.0
    m: float = 1.0
    l: float = 1.0  # noqa: E741 (Gymnasium's name)
    max_steps: int = 200


class PendulumState(NamedTuple):
    theta: jax.Array
    theta_dot: jax.Array
    t: jax.Array


class Pendulum:
    """Pendulum-v1: swing a pendulum up and hold it, torque u ∈ [−2, 2].

    Observation (cos θ, sin θ, θ̇); reward −(θ² + 0.1 θ̇² + 0.001 u²) with θ
    wrapped to [−π, π); it never terminates and is truncated at 200 steps.
    ``step_env`` is differentiable in state and action (zero where clipped).
    """

    obs_dim = 3
    action_dim = 1
    action_low = -2.0
    action_high = 2.0

    @property
    def default_params(self) -> PendulumParams:
        return PendulumParams()

    def check_params(self, params) -> None:
        """Raise a ValueError naming what in ``params`` does not suit this environment
        (its type, then its values where they are concrete)."""
        _check_pendulum(params)

    def reset(self, key, params: PendulumParams):
        _check_pendulum(params)
        high = jnp.array([jnp.pi, 1.0], jnp.float32)
        s = jax.random.uniform(key, (2,), jnp.float32, minval=-high, maxval=high)
        state = PendulumState(s[0], s[1], jnp.asarray(0, jnp.int32))
        return self.observe(state), state

    def observe(self, state: PendulumState) -> jax.Array:
        return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot])

    def step_env(self, state: PendulumState, action, params: PendulumParams):
        _check_pendulum(params)
        _check_state(state, PendulumState)
        if np.size(action) != 1:
            raise ValueError(f"action must hold one torque, got shape {np.shape(action)}")
        _checks.real("action", action)
        _checks.finite("action", action)
        u = jnp.clip(jnp.reshape(action, ()), -params.max_torque, params.max_torque)
        th, thdot = state.theta, state.theta_dot
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        newthdot = (
            thdot
            + (3 * params.g / (2 * params.l) * jnp.sin(th) + 3.0 / (params.m * params.l**2) * u)
            * params.dt
        )
        newthdot = jnp.clip(newthdot, -params.max_speed, params.max_speed)
        newth = th + newthdot * params.dt
        new = state._replace(theta=newth, theta_dot=newthdot)
        return new, self.observe(new), -cost, jnp.zeros((), dtype=bool)

    def step(self, key, state: PendulumState, action, params: PendulumParams):
        return _auto_reset(self, key, state, action, params)


def _check_pendulum(params) -> None:
    _check_params(
        params,
        PendulumParams,
        positive=("max_speed", "dt", "m", "l"),
        non_negative=("max_torque",),
        finite=("g",),
    )


def make(name: str):
    """The environment and its default parameters by Gymnasium id:
    ``env, params = make("CartPole-v1")``."""
    envs = {"CartPole-v1": CartPole, "Pendulum-v1": Pendulum}
    if name not in envs:
        raise ValueError(f"name must be one of {sorted(envs)}, got {name!r}")
    env = envs[name]()
    return env, env.default_params


# --------------------------------------------------------------------------- tabular MDPs


class TabularParams(NamedTuple):
    """A finite MDP (``rlbook.mdp.MDP``) and a time limit; its γ is not used by the environment."""

    mdp: object  # an rlbook.mdp.MDP
    max_steps: int = 100


class TabularState(NamedTuple):
    s: jax.Array  # int32 state index
    t: jax.Array
    key: jax.Array  # the transition noise, carried so that step_env keeps its signature


class Tabular:
    """An ``rlbook.mdp.MDP`` as an environment: s₀ ∼ ρ₀, s' ∼ P(· | s, a), reward r(s, a).

    The observation is the state index (int32). It never terminates (absorbing
    states simply loop) and is truncated at ``params.max_steps``, so rollouts on a
    small MDP run through exactly the code that trains on CartPole, and the
    Monte-Carlo estimates they give can be checked against ``rlbook.mdp``'s exact
    values. ``step_env`` draws s' with a key carried in the state, so it keeps
    the raw ``(state, action, params)`` signature of the other environments.
    """

    def check_params(self, params) -> None:
        """Raise a ValueError naming what in ``params`` does not suit this environment
        (its type, then its values where they are concrete)."""
        _check_tabular(params)

    def reset(self, key, params: TabularParams):
        _check_tabular(params)
        k_s, k_next = jax.random.split(key)
        s = jax.random.categorical(k_s, jnp.log(params.mdp.rho0)).astype(jnp.int32)
        state = TabularState(s, jnp.asarray(0, jnp.int32), k_next)
        return s, state

    def step_env(self, state: TabularState, action, params: TabularParams):
        """s' ∼ P(· | s, a); a concrete ``action`` outside [0, A) raises ``ValueError``.

        Under ``jit`` a traced action cannot be checked: one outside [0, A) makes the
        reward NaN (s', an integer, is drawn from the row of the nearest action, to
        which JAX's indexing clamps it; the NaN reward marks the step).
        """
        if not isinstance(params, TabularParams):
            raise ValueError(f"params must be a TabularParams, got {type(params).__name__}")
        _check_state(state, TabularState)
        _checks.index("action", action, params.mdp.n_actions, what="an action index")
        _checks.index("state.s", state.s, params.mdp.n_states, what="a state index")
        k_s, k_next = jax.random.split(state.key)
        p = params.mdp.P[state.s, action]
        s_next = jax.random.categorical(k_s, jnp.log(p)).astype(jnp.int32)
        reward = params.mdp.r[state.s, action]
        reward = _checks.nan_unless((action >= 0) & (action < params.mdp.n_actions), reward)
        new = state._replace(s=s_next, key=k_next)
        return new, s_next, reward, jnp.zeros((), dtype=bool)

    def step(self, key, state: TabularState, action, params: TabularParams):
        return _auto_reset(self, key, state, action, params)


def _check_tabular(params) -> None:
    if not isinstance(params, TabularParams):
        raise ValueError(f"params must be a TabularParams, got {type(params).__name__}")
    if not _mdp_is_traced(params.mdp):
        _checks.an_mdp(params.mdp)
    steps = params.max_steps
    if _checks.is_concrete(steps):
        a = _checks._numeric("params.max_steps", steps)
        if a.shape != () or a.dtype.kind not in "iu" or a <= 0:
            raise ValueError(f"params.max_steps must be a positive integer, got {steps!r}")


def _mdp_is_traced(m) -> bool:
    return any(not _checks.is_concrete(x) for x in jax.tree_util.tree_leaves(m))


__all__ += ["Tabular", "TabularParams", "TabularState"]
