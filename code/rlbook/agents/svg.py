r"""Policy optimization through a model: BPO and stochastic value gradients (Heess et al. 2015).

With a differentiable model s' = f(s, a) + σ ξ of the dynamics and a differentiable
reward r(s, a), the policy's objective can be unrolled through the model and
differentiated by the chain rule. This module holds the pieces of
:doc:`/book/model_based`:

* the one-step gradient of r(s, μ_θ(s)) + γ E[V(s')] through a reparameterized model
  (:func:`one_step_pathwise`) and through its density (:func:`one_step_score`);
* the n-step objective of backpropagation policy optimization (BPO) with a critic at
  step n (:func:`bpo_objective`) and its gradient by the forward recursion
  ∇_θ s_{t+1} = ∇_s f ∇_θ s_t + ∇_a f ∇_θ a_t, ∇_θ a_t = ∂_θ μ + ∂_s μ ∇_θ s_t
  (:func:`bpo_gradient_recursion`, the readable tier; ``jax.grad`` of the objective
  is the fast one);
* SVG's sampled return v(θ, s₀; η, ξ) with the policy noise η and the model noise ξ held
  fixed (:func:`svg_sampled_return`) and its gradient by the backward recursion for
  (V_s, V_θ) of Heess et al. (2015) (:func:`svg_gradient_recursion`, one step's Jacobians
  at a time);
* noise inference: the policy noise η and the dynamics noise ξ that reproduce an
  observed transition (:func:`infer_policy_noise`, :func:`infer_dynamics_noise`);
* Pendulum-v1's true dynamics on observations as the model (:func:`pendulum_model`);
* two agents in the ``make_train`` form: SVG(1) (a tanh-Gaussian policy, a value
  function V_φ and the one-step model, on the off-policy loop of
  :mod:`rlbook.agents.offpolicy` with SAC's entropy term; :class:`Config`) and SVG(∞)
  (backpropagation through whole episodes with inferred noise, no critic;
  :class:`InfinityConfig`). SVG(0), the reparameterized actor on a learned Q, is the
  actor step of :mod:`rlbook.agents.sac`.

Actions are normalized to [−1, 1] (torque = 2a), as in :mod:`rlbook.agents.offpolicy`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from rlbook import _checks, distributions, envs, nets
from rlbook.agents import offpolicy, sac

__all__ = [
    "one_step_pathwise",
    "one_step_score",
    "bpo_objective",
    "bpo_gradient_recursion",
    "svg_sampled_return",
    "svg_gradient_recursion",
    "policy_action",
    "infer_policy_noise",
    "dynamics_sample",
    "infer_dynamics_noise",
    "pendulum_model",
    "Config",
    "init",
    "value_apply",
    "targets",
    "actor_loss",
    "update",
    "agent",
    "InfinityConfig",
    "InfinityState",
    "collect_episode",
    "infer_episode",
    "episode_loss",
    "make_train",
]


# --------------------------------------------------------------------------- one step


def one_step_pathwise(
    theta,
    s,
    xi,
    policy: Callable,
    model_mean: Callable,
    model_std,
    reward: Callable,
    value: Callable,
    gamma,
):
    """One pathwise sample of ∇_θ [r(s, μ_θ(s)) + γ E V(s')], s' = f(s, a) + σ ξ.

    Chapter equation ``mb-eq-pathwise``.

    ∇_θ [r(s, μ_θ(s)) + γ V(f(s, μ_θ(s)) + σ ξ)] for one ξ ∼ N(0, I): the gradient flows
    through the sample s'. ``policy(theta, s) -> a``, ``model_mean(s, a) -> f(s, a)``,
    ``reward(s, a)`` and ``value(s')`` scalars. Returns a pytree like ``theta``.
    """

    def objective(th):
        a = policy(th, s)
        return reward(s, a) + gamma * value(model_mean(s, a) + model_std * xi)

    return jax.grad(objective)(theta)


def one_step_score(
    theta,
    s,
    s_next,
    policy: Callable,
    model_mean: Callable,
    model_std,
    reward: Callable,
    value: Callable,
    gamma,
):
    """One score-function sample of the same gradient (``mb-eq-score``).

    ∇_a r(s, a) ∇_θ μ_θ(s) + γ V(s') ∇_θ log N(s'; f(s, μ_θ(s)), σ²) for one observed
    s' ∼ p(· | s, μ_θ(s)): the first term is the product-rule term (the integrand depends on
    θ directly through r), the second differentiates the density and never V.
    """

    def surrogate(th):
        a = policy(th, s)
        log_p = distributions.gaussian_log_prob(model_mean(s, a), jnp.log(model_std), s_next)
        return reward(s, a) + gamma * jax.lax.stop_gradient(value(s_next)) * jnp.sum(log_p)

    return jax.grad(surrogate)(theta)


# --------------------------------------------------------------------------- n steps (BPO)


def _check_horizon(n):
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")


def bpo_objective(
    theta,
    s0,
    policy: Callable,
    model: Callable,
    critic: Callable | None,
    n,
    gamma,
    max_n: int | None = None,
):
    """J_n(θ; s₀) = Σ_{t<n} γ^t r(s_t, a_t) + γ^n Q(s_n, a_n), a_t = μ_θ(s_t), s_{t+1} = f(s_t, a_t)

    ``model(s, a) -> (r, s')``; ``critic(s, a) -> Q`` or None for the model-only objective
    (no terminal term). n = 0 is Q(s₀, μ_θ(s₀)), the objective of DDPG's actor
    (``mb-eq-bpo``). One ``lax.scan``: of n steps when ``max_n`` is None (n a Python int),
    else of ``max_n`` + 1 steps with the terms masked by t < n and t = n, so that n may be
    a traced integer in [0, max_n] (one compile for every horizon).
    """
    if max_n is None:
        _check_horizon(n)
        length = n
    else:
        _check_horizon(max_n)
        if _checks.is_concrete(n) and not 0 <= int(n) <= max_n:
            raise ValueError(f"n must lie in [0, max_n] = [0, {max_n}], got {n}")
        length = max_n + 1
    _checks.discount("gamma", gamma, allow_one=True)

    def body(carry, t):
        s, disc, total = carry
        a = policy(theta, s)
        r, s_next = model(s, a)
        if max_n is None:
            total = total + disc * r
        else:
            total = total + jnp.where(t < n, disc * r, 0.0)
            if critic is not None:
                total = total + jnp.where(t == n, disc * critic(s, a), 0.0)
        return (s_next, disc * gamma, total), None

    one = jnp.ones((), jnp.result_type(s0))
    (s, disc, total), _ = jax.lax.scan(body, (s0, one, 0.0 * one), jnp.arange(length))
    if critic is None or max_n is not None:
        return total
    return total + disc * critic(s, policy(theta, s))


def bpo_gradient_recursion(
    theta, s0, policy: Callable, model: Callable, critic: Callable | None, n: int, gamma
):
    """∇_θ J_n(θ; s₀) by the forward recursion, one step at a time (the readable tier).

    With G_t = ∇_θ s_t [d_s, p] (G_0 = 0) and the total derivative of the action
    A_t = ∂_θ μ(s_t) + ∂_s μ(s_t) G_t [d_a, p]:

        ∇_θ J_n = Σ_{t<n} γ^t (∂_s r G_t + ∂_a r A_t) + γ^n (∂_s Q G_n + ∂_a Q A_n),
        G_{t+1} = ∂_s f G_t + ∂_a f A_t.

    Jacobians by ``jax.jacfwd`` at each step. Returns a pytree like ``theta`` (``mb-eq-recursion``).
    """
    _check_horizon(n)
    _checks.discount("gamma", gamma, allow_one=True)
    flat, unravel = ravel_pytree(theta)

    def mu(th, s):
        return jnp.atleast_1d(policy(unravel(th), s))

    def total_action_derivative(s, G):
        d_theta, d_s = jax.jacfwd(mu, (0, 1))(flat, s)
        return d_theta + d_s @ G

    G = jnp.zeros((s0.shape[0], flat.shape[0]), flat.dtype)
    grad = jnp.zeros_like(flat)
    s, disc = s0, 1.0
    for _ in range(n):
        a = mu(flat, s)
        A = total_action_derivative(s, G)
        (dr_ds, dr_da), (df_ds, df_da) = (
            jax.grad(lambda s_, a_: model(s_, a_)[0], (0, 1))(s, a),
            jax.jacfwd(lambda s_, a_: model(s_, a_)[1], (0, 1))(s, a),
        )
        grad = grad + disc * (dr_ds @ G + dr_da @ A)
        G = df_ds @ G + df_da @ A
        s = model(s, a)[1]
        disc = disc * gamma
    if critic is not None:
        a = mu(flat, s)
        A = total_action_derivative(s, G)
        dq_ds, dq_da = jax.grad(critic, (0, 1))(s, a)
        grad = grad + disc * (dq_ds @ G + dq_da @ A)
    return unravel(grad)


# --------------------------------------------------------------------------- n steps (SVG)


def _check_svg_inputs(s0, eta, xi, gamma, n):
    """Shapes of the noise sequences and the horizon of the two SVG functions; returns T."""
    _checks.finite("s0", s0)
    _checks.ndim("s0", s0, 1)
    _checks.finite("eta", eta)
    _checks.finite("xi", xi)
    if jnp.ndim(eta) < 1 or jnp.ndim(xi) < 1:
        raise ValueError(
            f"eta and xi must be sequences [T, ...], got shapes {jnp.shape(eta)}, {jnp.shape(xi)}"
        )
    T = jnp.shape(eta)[0]
    if jnp.shape(xi)[0] != T:
        raise ValueError(f"xi must have eta's length T = {T} along axis 0, got {jnp.shape(xi)[0]}")
    _checks.discount("gamma", gamma, allow_one=True)
    if n is not None:
        _checks.ndim("n", n, 0)
        _checks.index("n", n, T + 1, what="a horizon in [0, T]", allow_float=True)
    return T


def _svg_forward(theta, s0, eta, xi, policy, dynamics):
    """States s_0..s_T [T + 1, d_s] and actions a_0..a_{T−1} of the noise-fixed trajectory."""

    def body(s, noise):
        eta_t, xi_t = noise
        a = policy(theta, s, eta_t)
        return dynamics(s, a, xi_t), (s, a)

    s_T, (states, actions) = jax.lax.scan(body, s0, (eta, xi))
    return jnp.concatenate([states, s_T[None]]), actions


def svg_sampled_return(
    theta,
    s0,
    eta,
    xi,
    policy: Callable,
    dynamics: Callable,
    reward: Callable,
    gamma,
    value: Callable | None = None,
    n=None,
):
    """v(θ, s₀; η, ξ) = Σ_{t<n} γ^t r(s_t, a_t) + γ^n V(s_n), with the noise held fixed.

    a_t = ``policy(theta, s_t, eta[t])``, s_{t+1} = ``dynamics(s_t, a_t, xi[t])``,
    ``reward(s, a)`` and ``value(s)`` scalars (``value`` None: no terminal term). ``eta``
    [T, ...] and ``xi`` [T, ...] are the policy and model noises of T steps; n defaults to
    T and may be a traced integer in [0, T] (the steps from n on are masked, one compile for
    every horizon). Its expectation over the noise is the SVG(n) objective
    (``mb-eq-svg-recursion``); ``jax.grad`` of it is what :func:`svg_gradient_recursion`
    computes step by step.
    """
    T = _check_svg_inputs(s0, eta, xi, gamma, n)
    n = T if n is None else n
    states, actions = _svg_forward(theta, s0, eta, xi, policy, dynamics)
    t = jnp.arange(T)
    rewards = jax.vmap(reward)(states[:-1], actions)
    disc = jnp.asarray(gamma, rewards.dtype) ** jnp.arange(T + 1)
    total = jnp.sum(jnp.where(t < n, disc[:-1] * rewards, 0.0))
    if value is not None:
        total = total + disc[n] * value(states[n])
    return total


def svg_gradient_recursion(
    theta,
    s0,
    eta,
    xi,
    policy: Callable,
    dynamics: Callable,
    reward: Callable,
    gamma,
    value: Callable | None = None,
    n=None,
):
    """(V_s, V_θ) = (∇_{s₀} v, ∇_θ v) of :func:`svg_sampled_return` by the backward recursion.

    Along the trajectory of the fixed noise, from V_s = ∇V(s_n) (0 without ``value``) and
    V_θ = 0 at step n, for t = n − 1, …, 0 with the one-step Jacobians at (s_t, a_t):

        V_s ← r_s + r_a π_s + γ V_s (f_s + f_a π_s),
        V_θ ← r_a π_θ + γ V_s f_a π_θ + γ V_θ

    (``mb-eq-svg-recursion`` without the expectation; on the right V_s and V_θ are the next
    step's). The Jacobians are ``jax.jacobian`` of the policy, dynamics and reward at
    one step each, never of the whole trajectory. Returns V_s [d_s] and V_θ, a pytree like
    ``theta``; arguments as in :func:`svg_sampled_return`.
    """
    T = _check_svg_inputs(s0, eta, xi, gamma, n)
    n = T if n is None else n
    flat, unravel = ravel_pytree(theta)
    states, actions = _svg_forward(theta, s0, eta, xi, policy, dynamics)

    def pi(th, s, eta_t):
        return jnp.atleast_1d(policy(unravel(th), s, eta_t))

    def f(s, a, xi_t):
        return dynamics(s, a.reshape(jnp.shape(actions)[1:]), xi_t)

    def r(s, a):
        return reward(s, a.reshape(jnp.shape(actions)[1:]))

    if value is None:
        v_s = jnp.zeros_like(s0)
    else:
        v_s = jax.grad(value)(states[n])
    v_theta = jnp.zeros_like(flat)

    def backward(carry, step):
        v_s, v_theta = carry
        t, s, a, eta_t, xi_t = step
        a = jnp.atleast_1d(a)
        pi_theta, pi_s = jax.jacobian(pi, (0, 1))(flat, s, eta_t)  # [d_a, p], [d_a, d_s]
        f_s, f_a = jax.jacobian(f, (0, 1))(s, a, xi_t)  # [d_s, d_s], [d_s, d_a]
        r_s, r_a = jax.grad(r, (0, 1))(s, a)  # [d_s], [d_a]
        q_a = r_a + gamma * v_s @ f_a  # the action's total derivative of r + γ v'
        new_s = r_s + q_a @ pi_s + gamma * v_s @ f_s  # total: s moves the action (π_s)
        new_theta = q_a @ pi_theta + gamma * v_theta  # + γ V'_θ: θ in the later actions
        keep = t < n
        return (jnp.where(keep, new_s, v_s), jnp.where(keep, new_theta, v_theta)), None

    steps = (jnp.arange(T), states[:-1], actions, eta, xi)
    (v_s, v_theta), _ = jax.lax.scan(backward, (v_s, v_theta), steps, reverse=True)
    return v_s, unravel(v_theta)


# --------------------------------------------------------------------------- noise inference


def policy_action(mean, log_std, eta):
    """a = tanh(μ + σ ⊙ η): the tanh-Gaussian policy as a function of its noise η."""
    _checks.finite("mean", mean)
    _checks.finite("log_std", log_std)
    _checks.finite("eta", eta)
    if jnp.shape(eta) != jnp.shape(mean):
        raise ValueError(f"eta must have the shape of mean {jnp.shape(mean)}, got {jnp.shape(eta)}")
    return jnp.tanh(mean + jnp.exp(log_std) * eta)


def infer_policy_noise(mean, log_std, action, eps: float = 1e-6):
    """η = (atanh a − μ) / σ, the noise for which :func:`policy_action` returns ``action``.

    ``action`` is clipped to ±(1 − eps) first, where atanh is finite (``mb-eq-inference``).
    """
    _checks.finite("mean", mean)
    _checks.finite("log_std", log_std)
    _checks.finite("action", action)
    _checks.interval("eps", eps, 0.0, 1.0, high_open=True)
    if jnp.shape(action) != jnp.shape(mean):
        raise ValueError(
            f"action must have the shape of mean {jnp.shape(mean)}, got {jnp.shape(action)}"
        )
    u = jnp.arctanh(jnp.clip(action, -1.0 + eps, 1.0 - eps))
    return (u - mean) / jnp.exp(log_std)


def dynamics_sample(mean_next, std, xi):
    """s' = f(s, a) + σ ⊙ ξ: the Gaussian model as a function of its noise ξ."""
    _checks.finite("mean_next", mean_next)
    _checks.positive("std", std, strict=False)
    _checks.finite("xi", xi)
    if jnp.shape(xi) != jnp.shape(mean_next):
        raise ValueError(
            f"xi must have the shape of mean_next {jnp.shape(mean_next)}, got {jnp.shape(xi)}"
        )
    return mean_next + std * xi


def infer_dynamics_noise(mean_next, std, next_obs):
    """ξ = (s' − f(s, a)) / σ, the noise for which :func:`dynamics_sample` returns s'."""
    _checks.finite("mean_next", mean_next)
    _checks.finite("next_obs", next_obs)
    if jnp.shape(next_obs) != jnp.shape(mean_next):
        raise ValueError(
            f"next_obs must have the shape of mean_next {jnp.shape(mean_next)}, "
            f"got {jnp.shape(next_obs)}"
        )
    _checks.positive("std", std)
    return (next_obs - mean_next) / std


# --------------------------------------------------------------------------- the model


ENV, PARAMS = offpolicy.ENV, offpolicy.PARAMS


def pendulum_model(obs, action):
    """(r(s, a), f(s, a)): Pendulum-v1's true dynamics on observations, differentiable.

    obs = (cos θ, sin θ, θ̇) [3], action a ∈ [−1, 1] [1] (torque 2a). θ is recovered with
    atan2 and the step is ``envs.Pendulum.step_env``, so f is the environment's own
    dynamics and keeps the dtype of ``obs``.
    """
    _checks.finite("obs", obs)
    if jnp.shape(obs) != (3,):
        raise ValueError(
            f"obs must be one Pendulum observation (cos θ, sin θ, θ̇) of shape (3,), "
            f"got shape {jnp.shape(obs)}"
        )
    _checks.finite("action", action)
    if jnp.size(action) != 1:
        raise ValueError(f"action must hold one normalized torque, got shape {jnp.shape(action)}")
    state = envs.PendulumState(jnp.arctan2(obs[1], obs[0]), obs[2], jnp.asarray(0, jnp.int32))
    _, next_obs, reward, _ = ENV.step_env(state, action * ENV.action_high, PARAMS)
    return reward, next_obs


# --------------------------------------------------------------------------- SVG(1)


@dataclasses.dataclass(frozen=True)
class Config(sac.Config):
    """SVG(1)'s settings: those of SAC (the shared off-policy ones and the temperature).

    The critic is a twin value function V_φ(s) instead of SAC's Q_φ(s, a); the model is
    Pendulum's true dynamics, with the dynamics noise inferred from each replayed
    transition.
    """


def init(key, obs_dim: int, act_dim: int, config: Config) -> sac.State:
    """Actor ``[obs_dim, *hidden, 2·act_dim]`` (mean, log σ), two value nets
    ``[obs_dim, *hidden, 1]``.
    """
    k_a, k_c = jax.random.split(key)
    actor = nets.mlp_init(k_a, [obs_dim, *config.hidden, 2 * act_dim], final_scale=0.1)
    critic = offpolicy.twin_critic_init(k_c, [obs_dim, *config.hidden, 1])
    log_t = jnp.log(jnp.asarray(config.init_temperature, jnp.float32))
    return sac.State(
        actor,
        critic,
        critic,
        log_t,
        optax.adam(config.actor_lr).init(actor),
        optax.adam(config.critic_lr).init(critic),
        optax.adam(config.temperature_lr).init(log_t),
    )


def value_apply(params, obs, action=None):
    """(V_φ1(s), V_φ2(s)) stacked, shape [2, ...]; ``action`` is ignored (a critic's signature)."""
    del action
    return offpolicy.twin_critic_apply(params, obs, obs[..., :0])


def _model_step(obs, action, residual):
    """(r(s, a), f(s, a) + σξ) for a batch, σξ = the inferred dynamics noise ``residual``."""
    r, next_obs = jax.vmap(pendulum_model)(obs, action)
    return r, next_obs + residual


def _residual(batch: offpolicy.Transition):
    """σξ = s' − f(s, a) of each replayed transition (σ cancels: ξ is re-added as σξ)."""
    return batch.next_obs - jax.vmap(pendulum_model)(batch.obs, batch.action)[1]


def targets(key, state: sac.State, batch: offpolicy.Transition, config: Config) -> jax.Array:
    """y = r(s, ã) − β log π(ã | s) + γ (1 − terminated) min_i V_φ̄i(f(s, ã) + σξ); shape [B].

    ã ∼ π_θ(· | s) is drawn afresh; σξ = s' − f(s, a) is inferred from the replayed transition.
    """
    a, logp = sac.sample_action(key, state.actor, batch.obs)
    r, next_obs = _model_step(batch.obs, a, _residual(batch))
    v_next = jnp.min(value_apply(state.critic_target, next_obs), axis=0)
    return offpolicy.td_target(
        r - jnp.exp(state.log_temperature) * logp, batch.terminated, config.gamma, v_next
    )


def actor_loss(actor_params, critic_params, log_temperature, key, obs, residual, not_done, gamma):
    """−mean_B [r(s, ã) − β log π_θ(ã | s) + γ min_i V_φi(f(s, ã) + σξ)], ã = tanh(μ + σ η).

    The SVG(1) objective: the gradient flows through the action into the reward and,
    through the model, into the value of the next state. Aux: the log π's.
    """
    a, logp = sac.sample_action(key, actor_params, obs)
    r, next_obs = _model_step(obs, a, residual)
    v = jnp.min(value_apply(critic_params, next_obs), axis=0)
    return -jnp.mean(r - jnp.exp(log_temperature) * logp + gamma * not_done * v), logp


def update(key, state: sac.State, batch: offpolicy.Transition, step, config: Config):
    """One SVG(1) update: twin V on model targets, actor through the model, temperature, target."""
    del step
    k_target, k_actor = jax.random.split(key)
    y = targets(k_target, state, batch, config)
    critic, c_opt, c_loss = offpolicy.critic_step(
        optax.adam(config.critic_lr), state.critic, state.critic_opt, value_apply, batch, y
    )
    not_done = 1.0 - batch.terminated.astype(y.dtype)
    actor, a_opt, a_loss, logp = offpolicy.actor_step(
        optax.adam(config.actor_lr),
        state.actor,
        state.actor_opt,
        actor_loss,
        critic,
        state.log_temperature,
        k_actor,
        batch.obs,
        _residual(batch),
        not_done,
        config.gamma,
    )
    log_t, t_opt = state.log_temperature, state.temperature_opt
    if config.learn_temperature:
        log_t, t_opt = sac.temperature_step(
            log_t, t_opt, logp, batch.action.shape[-1], config.temperature_lr
        )
    state = sac.State(
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
        "v_mean": jnp.mean(y),
        "entropy": -jnp.mean(logp),
        "temperature": jnp.exp(log_t),
    }


def agent(config: Config) -> offpolicy.Agent:
    """SVG(1)'s functions for ``offpolicy.make_train``.

    Its ``q_value`` is the model-implied Q(s, a) = r(s, a) + γ min_i V_φi(f(s, a)).
    """
    sac.validate(config)

    def q_value(s, o, a):
        r, nxt = pendulum_model(o, a)
        return r + config.gamma * jnp.min(value_apply(s.critic, nxt), axis=0)

    return offpolicy.Agent(
        init=lambda k, o, a: init(k, o, a, config),
        explore=lambda k, s, o, n: sac.explore(k, s, o, n, config),
        greedy=lambda s, o: jnp.tanh(sac.policy(s.actor, o)[0]),
        q_value=q_value,
        update=lambda k, s, b, t: update(k, s, b, t, config),
    )


# --------------------------------------------------------------------------- SVG(∞)


@dataclasses.dataclass(frozen=True)
class InfinityConfig:
    """SVG(∞)'s settings: whole episodes, backpropagation through the model, no critic."""

    total_steps: int = 6_000
    """Environment steps in the whole run (a multiple of ``episodes`` · 200)."""
    episodes: int = 1
    """Episodes collected (side by side) per iteration."""
    updates_per_iteration: int = 50
    """Adam steps per iteration on the collected episodes, their noise held fixed."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the actor (ReLU)."""
    gamma: float = 0.95
    """Discount γ of the objective Σ_t γ^t r_t (it also bounds how far gradients reach back)."""
    lr: float = 1e-3
    """Adam step size."""
    max_grad_norm: float = 1.0
    """Global-norm clip of each gradient (the gradient through 200 steps can be huge)."""
    eval_every: int = 1_000
    """Environment steps between evaluations (a multiple of ``episodes`` · 200)."""
    eval_episodes: int = 5
    """Greedy episodes per evaluation."""
    rng_impl: str = "philox4x32"
    """The run's random-number generator, as :attr:`rlbook.agents.offpolicy.Config.rng_impl`."""

    def __post_init__(self):
        _validate_infinity(self)


def _validate_infinity(config: InfinityConfig) -> None:
    for name in ("total_steps", "episodes", "updates_per_iteration", "eval_every", "eval_episodes"):
        _checks.positive_int(f"config.{name}", getattr(config, name))
    per_iteration = config.episodes * PARAMS.max_steps
    for name in ("total_steps", "eval_every"):
        if getattr(config, name) % per_iteration:
            raise ValueError(
                f"config.{name} must be a multiple of episodes · {PARAMS.max_steps}"
                f" = {per_iteration}, got {getattr(config, name)}"
            )
    if config.total_steps % config.eval_every:
        raise ValueError(
            f"config.eval_every ({config.eval_every}) must divide "
            f"config.total_steps ({config.total_steps})"
        )
    _checks.nonempty_widths("config.hidden", config.hidden)
    _checks.discount("config.gamma", config.gamma, allow_one=True)
    _checks.positive("config.lr", config.lr)
    _checks.positive("config.max_grad_norm", config.max_grad_norm)
    _checks.one_of("config.rng_impl", config.rng_impl, offpolicy.RNG_IMPLS)


class InfinityState(NamedTuple):
    actor: nets.Params
    opt: optax.OptState


def collect_episode(key, actor, n_steps: int):
    """One episode of π_θ on Pendulum: obs [T, 3], actions [T, 1], rewards [T], next obs [T, 3]."""
    _checks.size("n_steps", n_steps)
    k_reset, k_run = jax.random.split(key)
    obs, state = ENV.reset(k_reset, PARAMS)

    def body(carry, k):
        obs, state = carry
        mean, log_std = sac.policy(actor, obs)
        a = distributions.tanh_gaussian_sample(k, mean, log_std)
        state, next_obs, reward, _ = ENV.step_env(state, a * ENV.action_high, PARAMS)
        return (next_obs, state), (obs, a, reward, next_obs)

    _, out = jax.lax.scan(body, (obs, state), jax.random.split(k_run, n_steps))
    return out


def episode_loss(actor, obs0, eta, residual, gamma, model: Callable = pendulum_model):
    """−Σ_t γ^t r(ŝ_t, â_t): the episode re-simulated in the model with its noise held fixed.

    ŝ₀ = s₀, â_t = tanh(μ_θ(ŝ_t) + σ_θ(ŝ_t) η_t), ŝ_{t+1} = f(ŝ_t, â_t) + σξ_t, with
    η [T, 1] and σξ = ``residual`` [T, 3] inferred from the real episode; at the θ that
    collected it the re-simulation is the real episode (``mb-alg-svg``).
    """

    def body(carry, noise):
        s, disc = carry
        eta_t, res_t = noise
        mean, log_std = sac.policy(actor, s)
        r, s_next = model(s, policy_action(mean, log_std, eta_t))
        return (s_next + res_t, disc * gamma), disc * r

    one = jnp.ones((), obs0.dtype)
    _, rewards = jax.lax.scan(body, (obs0, one), (eta, residual))
    return -jnp.sum(rewards)


def infer_episode(actor, obs, actions, next_obs, model: Callable = pendulum_model):
    """(η [T, 1], σξ [T, 3]) of a real episode under the current policy and the model.

    σξ_t = s'_t − f(s_t, a_t) absorbs whatever the model gets wrong, so the re-simulation of
    :func:`episode_loss` at the collecting θ is the real episode even for a wrong model.
    """
    mean, log_std = sac.policy(actor, obs)
    eta = infer_policy_noise(mean, log_std, actions)
    residual = next_obs - jax.vmap(model)(obs, actions)[1]
    return eta, residual


def _make_train_infinity(config: InfinityConfig):
    _validate_infinity(config)
    T = PARAMS.max_steps
    per_iteration = config.episodes * T
    iters_per_eval = config.eval_every // per_iteration
    n_evals = config.total_steps // config.eval_every
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.lr))

    def loss(actor, episodes):
        obs, eta, residual = episodes
        losses = jax.vmap(episode_loss, (None, 0, 0, 0, None))(
            actor, obs[:, 0], eta, residual, config.gamma
        )
        return jnp.mean(losses)

    def iteration(carry, _):
        state, key = carry
        key, k_col = jax.random.split(key)
        obs, actions, _, next_obs = jax.vmap(collect_episode, (0, None, None))(
            jax.random.split(k_col, config.episodes), state.actor, T
        )
        eta, residual = jax.vmap(infer_episode, (None, 0, 0, 0))(
            state.actor, obs, actions, next_obs
        )
        episodes = (obs, eta, residual)

        def step(state, _):
            value, grad = jax.value_and_grad(loss)(state.actor, episodes)
            upd, opt = optimizer.update(grad, state.opt, state.actor)
            new = InfinityState(optax.apply_updates(state.actor, upd), opt)
            # A gradient through 200 steps can overflow float32: such a step is skipped.
            norm = optax.tree.norm(grad)
            finite = jnp.isfinite(norm)
            state = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), new, state)
            return state, (value, norm, ~finite)

        state, (values, norms, skipped) = jax.lax.scan(
            step, state, None, length=config.updates_per_iteration
        )
        return (state, key), (values[0], norms[0], jnp.sum(skipped))

    def period(carry, _):
        carry, (values, norms, skipped) = jax.lax.scan(
            iteration, carry, None, length=iters_per_eval
        )
        state, key = carry
        key, k_eval = jax.random.split(key)
        ret = offpolicy.evaluate(
            k_eval, lambda o: jnp.tanh(sac.policy(state.actor, o)[0]), config.eval_episodes
        )
        return (state, key), {
            "eval_return": ret,
            "loss": jnp.mean(values),
            "grad_norm": jnp.mean(norms),
            "skipped": jnp.sum(skipped),
        }

    def train(key):
        key = offpolicy.philox_key(key, config.rng_impl)
        k_init, key = jax.random.split(key)
        actor = nets.mlp_init(
            k_init, [ENV.obs_dim, *config.hidden, 2 * ENV.action_dim], final_scale=0.1
        )
        state = InfinityState(actor, optimizer.init(actor))
        (state, _), metrics = jax.lax.scan(period, (state, key), None, length=n_evals)
        metrics["step"] = jnp.arange(1, n_evals + 1, dtype=jnp.int32) * config.eval_every
        return state, metrics

    return train


def make_train(config: Config | InfinityConfig):
    """``train(key) -> (state, metrics)`` for SVG(1) (a :class:`Config`) or SVG(∞) (an
    :class:`InfinityConfig`) on Pendulum; ``metrics["eval_return"]`` [E] per evaluation.

    SVG(∞)'s metrics also hold, per evaluation period, the mean ``loss`` and ``grad_norm``
    of the first step on each episode and the number of ``skipped`` steps, whose gradient
    was not finite in float32.
    """
    if isinstance(config, InfinityConfig):
        return _make_train_infinity(config)
    if isinstance(config, Config):
        return offpolicy.make_train(config, agent(config))
    raise ValueError(f"config must be an svg.Config or svg.InfinityConfig, got {type(config)}")
