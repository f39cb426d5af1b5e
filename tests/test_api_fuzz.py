"""A fuzz over the whole public API (issue 19): every bad argument is refused by name.

Each public function of ``rlbook`` has one valid call below. The test replaces one
argument at a time by a bad value (NaN or ±inf in one entry, a string, ``None``, a
negative or fractional size, a non-key, a wrong length) and asks that the call either

* raises a ``ValueError`` or ``TypeError`` whose message names that argument (for a wrong
  length, a mismatch between arguments, naming any argument of the call), or
* returns, with every floating leaf free of NaN, of the valid call's structure and
  shapes, and — where the bad value was NaN or ±inf in a numeric input — never
  silently (a non-finite input is refused; the only non-finite outputs allowed are a
  log-density's −∞ and the ±∞ bounds a truncated normal takes as its support).

``test_every_public_name_is_fuzzed`` holds the registry against every module's
``__all__``: a public name is either fuzzed here or listed in ``EXEMPT`` with the
reason (classes and constants, an agent's internals that take its private state, the
build driver, which issue 20 moves out of the package). Hypothesis draws which
function, which argument and which bad value; ``test_exhaustive`` runs every triple
once, so nothing rests on the draw.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlbook import (
    claims,
    counterexamples,
    envs,
    estimators,
    mdp,
    natural,
    nets,
    noise,
    ntk,
    parallel,
    plotting,
    policies,
    replay,
    returns,
    rollouts,
    seeds,
    text,
)
from rlbook import distributions as D
from rlbook.agents import (
    actor_critic,
    ddpg,
    dqn,
    fqi,
    npg,
    offline_q,
    offpolicy,
    ppo,
    qlearning,
    reinforce,
    sac,
    svg,
    td3,
    trpo,
)

MODULES = [
    "counterexamples",
    "distributions",
    "estimators",
    "mdp",
    "natural",
    "noise",
    "ntk",
    "returns",
    "replay",
    "nets",
    "envs",
    "policies",
    "rollouts",
    "seeds",
    "claims",
    "parallel",
    "text",
    "timing",
    "plotting",
    "agents.qlearning",
    "agents.actor_critic",
    "agents.ddpg",
    "agents.dqn",
    "agents.fqi",
    "agents.npg",
    "agents.offline_q",
    "agents.offpolicy",
    "agents.ppo",
    "agents.reinforce",
    "agents.sac",
    "agents.svg",
    "agents.td3",
    "agents.trpo",
]

K = jax.random.PRNGKey(0)


@dataclass
class Case:
    fn: Callable
    kwargs: dict[str, Any]
    args: tuple = ()  # leading positional arguments, never mutated
    inf_ok: tuple[str, ...] = ()  # arguments for which ±inf is a valid value
    neg_inf_out: bool = False  # a log-density: −inf is a valid output
    skip: tuple[str, ...] = ()  # arguments not mutated (with the reason in a comment)
    extra: dict[str, list] = field(default_factory=dict)  # more bad values per argument


# --------------------------------------------------------------------------- valid calls

_m = mdp.garnet(K, 3, 2, gamma=0.9)
_pi = mdp.uniform_policy(_m)
_q = jnp.ones((3, 2))
_v = jnp.ones(3)
_logits = jnp.array([0.5, 0.0, -0.5])
_mean = jnp.array([0.1, -0.2])
_log_std = jnp.array([-0.3, 0.2])
_tril = jnp.array([[1.0, 0.0], [0.3, 0.8]])
_feat = jnp.eye(3)[:, :2] + 0.1
_phi = (jnp.eye(6)[:, :4] + 0.1).reshape(3, 2, 4)  # features of the 6 state-action pairs
_K = jnp.eye(3) + 0.1
_rho = jnp.full(3, 1 / 3)
_delta = jnp.array([0.1, -0.2, 0.3])
_params = nets.mlp_init(K, (2, 4, 1))
_f1 = lambda p, x: nets.mlp_apply(p, x)[..., 0]  # noqa: E731
_x3 = jnp.array([[0.1, 0.2], [0.3, -0.1], [0.0, 0.5]])
_kl = lambda p, q: jnp.sum((p - q) ** 2)  # noqa: E731
_th = jnp.array([0.3, -0.2])
_g = jnp.array([1.0, 0.5])
_buf = replay.add(replay.init(4, {"x": jnp.zeros(2)}), {"x": jnp.ones(2)})
_cp = envs.CartPole()
_cpp = _cp.default_params
_pd = envs.Pendulum()
_sp = policies.SoftmaxPolicy(4, 2, (8,))
_sp_params = _sp.init(K)
_rs = rollouts.init(K, _cp, _cpp, 2)
_, _traj, _eps = rollouts.collect(K, _sp, _sp_params, _cp, _cpp, _rs, 3)
_f_est = lambda x, th: jnp.sum(th * x)  # noqa: E731
_sample = lambda key, th: th + jax.random.normal(key, (2,))  # noqa: E731
_log_prob = lambda th, x: -0.5 * jnp.sum((x - th) ** 2, -1)  # noqa: E731
_log_q = lambda x: -0.5 * jnp.sum(x**2, -1)  # noqa: E731
_rsample = lambda key, th: th + jax.random.normal(key, (2,))  # noqa: E731
_r = jnp.array([1.0, 0.0, 2.0])
_obs3 = jnp.array([[1.0, 0.0, 0.1], [0.6, 0.8, -0.3]])  # two Pendulum observations
_disc = jnp.full(3, 0.9)
_done = jnp.array([False, True, False])

CASES: dict[str, Case] = {
    # distributions
    "distributions.categorical_sample": Case(D.categorical_sample, dict(key=K, logits=_logits)),
    "distributions.categorical_log_prob": Case(
        D.categorical_log_prob, dict(logits=_logits, a=1), neg_inf_out=True
    ),
    "distributions.categorical_entropy": Case(D.categorical_entropy, dict(logits=_logits)),
    "distributions.categorical_kl": Case(
        D.categorical_kl, dict(logits_p=_logits, logits_q=-_logits)
    ),
    "distributions.gaussian_sample": Case(
        D.gaussian_sample, dict(key=K, mean=_mean, log_std=_log_std)
    ),
    "distributions.gaussian_log_prob": Case(
        D.gaussian_log_prob, dict(mean=_mean, log_std=_log_std, x=_mean + 0.1), neg_inf_out=True
    ),
    "distributions.gaussian_entropy": Case(D.gaussian_entropy, dict(mean=_mean, log_std=_log_std)),
    "distributions.gaussian_kl": Case(
        D.gaussian_kl, dict(mean_p=_mean, log_std_p=_log_std, mean_q=-_mean, log_std_q=_log_std)
    ),
    "distributions.logits_from_probs": Case(
        D.logits_from_probs, dict(probs=jnp.array([0.2, 0.3, 0.5])), neg_inf_out=True
    ),
    "distributions.mvn_sample": Case(D.mvn_sample, dict(key=K, mean=_mean, scale_tril=_tril)),
    "distributions.mvn_log_prob": Case(
        D.mvn_log_prob, dict(mean=_mean, scale_tril=_tril, x=-_mean), neg_inf_out=True
    ),
    "distributions.mvn_entropy": Case(D.mvn_entropy, dict(mean=_mean, scale_tril=_tril)),
    "distributions.mvn_kl": Case(
        D.mvn_kl, dict(mean_p=_mean, scale_tril_p=_tril, mean_q=-_mean, scale_tril_q=2 * _tril)
    ),
    "distributions.truncated_normal_icdf": Case(
        D.truncated_normal_icdf,
        dict(loc=0.1, scale=1.2, low=-1.0, high=2.0, u=0.3),
        inf_ok=("low", "high"),
    ),
    "distributions.truncated_normal_sample": Case(
        D.truncated_normal_sample,
        dict(key=K, loc=0.1, scale=1.2, low=-1.0, high=2.0),
        inf_ok=("low", "high"),
    ),
    "distributions.truncated_normal_log_prob": Case(
        D.truncated_normal_log_prob,
        dict(loc=0.1, scale=1.2, low=-1.0, high=2.0, x=0.5),
        inf_ok=("low", "high"),
        neg_inf_out=True,
    ),
    "distributions.truncated_normal_entropy": Case(
        D.truncated_normal_entropy,
        dict(loc=0.1, scale=1.2, low=-1.0, high=2.0),
        inf_ok=("low", "high"),
    ),
    "distributions.kumaraswamy_icdf": Case(D.kumaraswamy_icdf, dict(a=2.0, b=3.0, u=0.4)),
    "distributions.kumaraswamy_sample": Case(D.kumaraswamy_sample, dict(key=K, a=2.0, b=3.0)),
    "distributions.kumaraswamy_log_prob": Case(
        D.kumaraswamy_log_prob, dict(a=2.0, b=3.0, x=0.4), neg_inf_out=True
    ),
    "distributions.kumaraswamy_entropy": Case(D.kumaraswamy_entropy, dict(a=2.0, b=3.0)),
    "distributions.gumbel_max_sample": Case(D.gumbel_max_sample, dict(key=K, logits=_logits)),
    "distributions.gumbel_softmax_sample": Case(
        D.gumbel_softmax_sample, dict(key=K, logits=_logits, temperature=0.5)
    ),
    "distributions.gumbel_softmax_log_prob": Case(
        D.gumbel_softmax_log_prob,
        dict(logits=_logits, temperature=0.5, y=jnp.array([0.2, 0.3, 0.5])),
        neg_inf_out=True,
    ),
    "distributions.tanh_log_det_jacobian": Case(D.tanh_log_det_jacobian, dict(u=_mean)),
    "distributions.tanh_gaussian_sample": Case(
        D.tanh_gaussian_sample, dict(key=K, mean=_mean, log_std=_log_std)
    ),
    "distributions.tanh_gaussian_sample_and_log_prob": Case(
        D.tanh_gaussian_sample_and_log_prob, dict(key=K, mean=_mean, log_std=_log_std)
    ),
    "distributions.tanh_gaussian_log_prob": Case(
        D.tanh_gaussian_log_prob,
        dict(mean=_mean, log_std=_log_std, a=jnp.array([0.2, -0.5]), eps=1e-6),
        neg_inf_out=True,
    ),
    # estimators
    "estimators.naive_term": Case(estimators.naive_term, dict(f=_f_est, theta=_th, x=_g)),
    "estimators.score_function_term": Case(
        estimators.score_function_term,
        dict(f=_f_est, log_prob=_log_prob, theta=_th, x=_g, baseline=0.5),
    ),
    "estimators.importance_term": Case(
        estimators.importance_term,
        dict(f=_f_est, log_prob=_log_prob, log_q=_log_q, theta=_th, x=_g),
    ),
    "estimators.reparameterization_term": Case(
        estimators.reparameterization_term, dict(key=K, f=_f_est, rsample=_rsample, theta=_th)
    ),
    "estimators.naive": Case(
        estimators.naive, dict(key=K, f=_f_est, sample=_sample, theta=_th, n=4)
    ),
    "estimators.score_function": Case(
        estimators.score_function,
        dict(key=K, f=_f_est, sample=_sample, log_prob=_log_prob, theta=_th, n=4, baseline=0.5),
    ),
    "estimators.importance": Case(
        estimators.importance,
        dict(
            key=K,
            f=_f_est,
            log_prob=_log_prob,
            sample_q=lambda key: jax.random.normal(key, (2,)),
            log_q=_log_q,
            theta=_th,
            n=4,
        ),
    ),
    "estimators.reparameterization": Case(
        estimators.reparameterization, dict(key=K, f=_f_est, rsample=_rsample, theta=_th, n=4)
    ),
    "estimators.control_variate": Case(
        estimators.control_variate,
        dict(estimate=_r, control=_r * 2, control_mean=1.0, coefficient=0.5),
    ),
    "estimators.optimal_coefficient": Case(
        estimators.optimal_coefficient, dict(estimates=_r, controls=jnp.array([1.0, 0.5, 3.0]))
    ),
    # mdp
    "mdp.make_mdp": Case(mdp.make_mdp, dict(P=_m.P, r=_m.r, rho0=_m.rho0, gamma=0.9)),
    "mdp.garnet": Case(
        mdp.garnet, dict(key=K, n_states=3, n_actions=2, branching=2, gamma=0.9, reward_scale=1.0)
    ),
    "mdp.softmax_policy": Case(mdp.softmax_policy, dict(logits=_q, temperature=0.5)),
    "mdp.greedy_policy": Case(mdp.greedy_policy, dict(q=_q + jnp.eye(3, 2))),
    "mdp.uniform_policy": Case(mdp.uniform_policy, dict(mdp=_m)),
    "mdp.policy_dynamics": Case(mdp.policy_dynamics, dict(mdp=_m, pi=_pi)),
    "mdp.policy_reward": Case(mdp.policy_reward, dict(mdp=_m, pi=_pi)),
    "mdp.bellman_v": Case(mdp.bellman_v, dict(mdp=_m, pi=_pi, v=_v)),
    "mdp.bellman_q": Case(mdp.bellman_q, dict(mdp=_m, pi=_pi, q=_q)),
    "mdp.bellman_opt_v": Case(mdp.bellman_opt_v, dict(mdp=_m, v=_v)),
    "mdp.bellman_opt_q": Case(mdp.bellman_opt_q, dict(mdp=_m, q=_q)),
    "mdp.evaluate_v": Case(mdp.evaluate_v, dict(mdp=_m, pi=_pi)),
    "mdp.evaluate_q": Case(mdp.evaluate_q, dict(mdp=_m, pi=_pi)),
    "mdp.advantage": Case(mdp.advantage, dict(mdp=_m, pi=_pi)),
    "mdp.return_second_moment": Case(mdp.return_second_moment, dict(mdp=_m, pi=_pi)),
    "mdp.gae_moments": Case(mdp.gae_moments, dict(mdp=_m, pi=_pi, v=_v, lam=0.5)),
    "mdp.value_iteration": Case(
        mdp.value_iteration,
        dict(mdp=_m, tol=1e-6, max_iter=500, q0=_q, insist=False, return_info=True),
    ),
    "mdp.visitation": Case(mdp.visitation, dict(mdp=_m, pi=_pi)),
    "mdp.occupancy": Case(mdp.occupancy, dict(mdp=_m, pi=_pi)),
    "mdp.expected_return": Case(mdp.expected_return, dict(mdp=_m, pi=_pi)),
    "mdp.soft_value": Case(mdp.soft_value, dict(q=_q, temperature=0.5)),
    "mdp.soft_bellman_opt_q": Case(mdp.soft_bellman_opt_q, dict(mdp=_m, q=_q, temperature=0.5)),
    "mdp.soft_value_iteration": Case(
        mdp.soft_value_iteration,
        dict(
            mdp=_m, temperature=0.5, tol=1e-6, max_iter=500, q0=_q, insist=False, return_info=True
        ),
    ),
    "mdp.projected_value_iteration": Case(
        mdp.projected_value_iteration,
        dict(mdp=_m, features=_phi, weights=jnp.full((3, 2), 1 / 6), w0=jnp.zeros(4), n_iter=3),
    ),
    # natural
    "natural.conjugate_gradient": Case(
        natural.conjugate_gradient,
        dict(
            matvec=lambda x: 2.0 * x,
            b=_g,
            tol=1e-8,
            atol=0.0,
            max_iter=5,
            x0=jnp.zeros(2),
            insist=False,
            return_info=True,
        ),
    ),
    "natural.conjugate_gradient_loop": Case(
        natural.conjugate_gradient_loop,
        dict(matvec=lambda x: 2.0 * x, b=_g, tol=1e-8, atol=0.0, max_iter=5, x0=jnp.zeros(2)),
    ),
    "natural.fisher_vector_product": Case(
        natural.fisher_vector_product, dict(kl=_kl, params=_th, v=_g, damping=0.1)
    ),
    "natural.fisher_operator": Case(natural.fisher_operator, dict(kl=_kl, params=_th, damping=0.1)),
    "natural.fisher_matrix": Case(natural.fisher_matrix, dict(kl=_kl, params=_th)),
    "natural.kl_step_size": Case(
        natural.kl_step_size, dict(direction=_g, fisher_direction=2 * _g, max_kl=0.01)
    ),
    "natural.natural_direction": Case(
        natural.natural_direction,
        dict(kl=_kl, params=_th, grad=_g, damping=0.1, tol=1e-8, max_iter=5),
    ),
    "natural.natural_step": Case(
        natural.natural_step,
        dict(kl=_kl, params=_th, grad=_g, max_kl=0.01, damping=0.1, tol=1e-8, max_iter=5),
    ),
    # noise
    "noise.ou_step": Case(
        noise.ou_step, dict(key=K, x=_mean, theta=0.15, sigma=0.2, dt=0.01, mu=0.0)
    ),
    "noise.ou_path": Case(
        noise.ou_path, dict(key=K, x0=_mean, n_steps=5, theta=0.15, sigma=0.2, dt=0.01, mu=0.0)
    ),
    "noise.ou_stationary_variance": Case(
        noise.ou_stationary_variance, dict(theta=0.15, sigma=0.2, dt=0.01)
    ),
    # ntk
    "ntk.jacobian": Case(ntk.jacobian, dict(), args=(_f1, _params, _x3)),
    "ntk.empirical_ntk": Case(ntk.empirical_ntk, dict(), args=(_f1, _params, _x3)),
    "ntk.linearized_step": Case(ntk.linearized_step, dict(K=_K, rho=_rho, delta=_delta, alpha=0.1)),
    "ntk.semi_gradient_step": Case(
        ntk.semi_gradient_step, dict(), args=(_f1, _params, _rho, _delta, 0.1, _x3)
    ),
    "ntk.contraction_modulus": Case(
        ntk.contraction_modulus, dict(K=_K, rho=_rho, alpha=0.1, gamma=0.9)
    ),
    "ntk.dominance_ratio": Case(ntk.dominance_ratio, dict(K=_K, rho=_rho)),
    "ntk.preqn_direction": Case(
        ntk.preqn_direction, dict(J=jnp.eye(3, 4) + 0.1, delta=_delta, damping=0.1)
    ),
    "ntk.linear_td": Case(ntk.linear_td, dict(mdp=_m, pi=_pi, phi=_phi[:, 0, :2], d=_rho)),
    "ntk.heavy_ball_rate": Case(
        ntk.heavy_ball_rate, dict(eigs=jnp.array([0.5, 1.0]), alpha=0.1, beta=0.5)
    ),
    "ntk.heavy_ball_roots": Case(
        ntk.heavy_ball_roots, dict(eigs=jnp.array([0.5, 1.0]), alpha=0.1, beta=0.5)
    ),
    "ntk.padded_mlp_init": Case(
        ntk.padded_mlp_init, dict(key=K, in_dim=2, out_dim=1, depth=2, max_width=8, width=4)
    ),
    "agents.offline_q.q_values": Case(
        offline_q.q_values, dict(params=nets.mlp_init(K, (2, 4, 2)), obs=_x3)
    ),
    "agents.offline_q.sample_dataset": Case(
        offline_q.sample_dataset, dict(key=K, mdp=_m, rho=jnp.full((3, 2), 1 / 6), size=4)
    ),
    # returns
    "returns.step_discounts": Case(returns.step_discounts, dict(gamma=0.9, terminated=_done)),
    **{
        f"returns.{n}": Case(
            getattr(returns, n), dict(rewards=_r, discounts=_disc, bootstrap=_v, done=_done)
        )
        for n in (
            "discounted_returns",
            "discounted_returns_loop",
            "episode_returns",
            "episode_returns_loop",
        )
    },
    "returns.td_errors": Case(
        returns.td_errors, dict(rewards=_r, discounts=_disc, values=_v, next_values=_v)
    ),
    **{
        f"returns.{n}": Case(
            getattr(returns, n),
            dict(rewards=_r, discounts=_disc, values=_v, next_values=_v, lam=0.5, done=_done),
        )
        for n in ("gae", "gae_loop")
    },
    # replay
    "replay.init": Case(replay.init, dict(capacity=4, example={"x": jnp.zeros(2)})),
    "replay.add": Case(replay.add, dict(buffer=_buf, transition={"x": jnp.ones(2)})),
    "replay.add_batch": Case(
        replay.add_batch, dict(buffer=_buf, transitions={"x": jnp.ones((2, 2))})
    ),
    "replay.sample": Case(replay.sample, dict(key=K, buffer=_buf, batch_size=3)),
    # nets
    "nets.mlp_init": Case(nets.mlp_init, dict(key=K, sizes=(2, 4, 1), final_scale=1.0)),
    "nets.mlp_apply": Case(nets.mlp_apply, dict(params=_params, x=_x3)),
    "nets.n_params": Case(nets.n_params, dict(params=_params)),
    # envs
    "envs.angle_normalize": Case(envs.angle_normalize, dict(x=_mean * 10)),
    "envs.make": Case(envs.make, dict(name="CartPole-v1")),
    "counterexamples.baird_star": Case(counterexamples.baird_star, dict(gamma=0.99)),
    "counterexamples.two_state": Case(counterexamples.two_state, dict(gamma=0.9, epsilon=0.1)),
    "envs.CartPole.reset": Case(_cp.reset, dict(key=K, params=_cpp)),
    "envs.CartPole.step": Case(
        _cp.step, dict(key=K, state=_cp.reset(K, _cpp)[1], action=1, params=_cpp)
    ),
    "envs.Pendulum.reset": Case(_pd.reset, dict(key=K, params=_pd.default_params)),
    "envs.Pendulum.step": Case(
        _pd.step,
        dict(
            key=K,
            state=_pd.reset(K, _pd.default_params)[1],
            action=jnp.array([0.5]),
            params=_pd.default_params,
        ),
    ),
    # policies
    "policies.for_env": Case(policies.for_env, dict(env=_cp, hidden=(8,))),
    "policies.SoftmaxPolicy.log_prob": Case(
        _sp.log_prob, dict(params=_sp_params, obs=jnp.ones(4) * 0.1, action=1)
    ),
    "policies.SoftmaxPolicy.sample": Case(
        _sp.sample, dict(key=K, params=_sp_params, obs=jnp.ones(4) * 0.1)
    ),
    # rollouts
    "rollouts.init": Case(rollouts.init, dict(key=K, env=_cp, env_params=_cpp, n_envs=2)),
    "rollouts.collect": Case(
        rollouts.collect,
        dict(key=K, policy=_sp, params=_sp_params, env=_cp, env_params=_cpp, state=_rs, n_steps=3),
    ),
    "rollouts.step_keys": Case(rollouts.step_keys, dict(key=K, n_steps=3, n_envs=2)),
    "rollouts.mean_episode_return": Case(rollouts.mean_episode_return, dict(episodes=_eps)),
    "rollouts.first_episode_mask": Case(
        rollouts.first_episode_mask, dict(done=jnp.array([[False], [True], [False]]))
    ),
    # seeds, claims, parallel, text, plotting
    "seeds.key": Case(seeds.key, dict(n=3)),
    "seeds.keys": Case(seeds.keys, dict(n=3, count=2)),
    "seeds.rng": Case(seeds.rng, dict(n=3)),
    "seeds.train_keys": Case(seeds.train_keys, dict(n=3, count=2)),
    "claims.per_set": Case(claims.per_set, dict(values=np.arange(6.0))),
    "claims.margin": Case(claims.margin, dict(values=np.arange(6.0), threshold=-1.0, above=True)),
    "claims.worst": Case(claims.worst, dict(values=np.arange(6.0), above=True)),
    "claims.z_bound": Case(claims.z_bound, dict(count=3, p=1e-4)),
    "parallel.pad_to": Case(parallel.pad_to, dict(n=5, multiple=2)),
    "parallel.run_seeds": Case(
        parallel.run_seeds,
        dict(train=lambda k: jnp.sum(jax.random.normal(k, (2,))), keys=jax.random.split(K, 3)),
    ),
    "parallel.run_grid": Case(
        parallel.run_grid,
        dict(
            train=lambda k, c: c * jnp.sum(jax.random.normal(k, (2,))),
            keys=jax.random.split(K, 3),
            values=jnp.array([0.5, 1.0]),
        ),
    ),
    "parallel.n_devices": Case(parallel.n_devices, dict(devices=jax.devices())),
    "parallel.mesh": Case(parallel.mesh, dict(devices=jax.devices())),
    "agents.qlearning.step_size": Case(
        qlearning.step_size, dict(count=jnp.array(3), omega=0.8, scale=1.0)
    ),
    "agents.qlearning.q_learning_update": Case(
        qlearning.q_learning_update, dict(q=_q, s=0, a=1, r=1.0, s_next=2, alpha=0.5, gamma=0.9)
    ),
    "agents.qlearning.q_learning": Case(
        qlearning.q_learning, dict(key=K, mdp=_m, n_steps=20, omega=0.8, log_every=10)
    ),
    "ntk.preqn_step": Case(
        ntk.preqn_step, dict(damping=0.1), args=(_f1, _params, _delta, 0.1, _x3)
    ),
    "agents.offline_q.make_train": Case(
        offline_q.make_train,
        dict(
            config=offline_q.Config(hidden=(8,), n_steps=10, batch_size=4, log_every=5),
            mdp=_m,
            obs=jnp.eye(3),
            dataset=offline_q.sample_dataset(K, _m, jnp.full((3, 2), 1 / 6), 8),
        ),
    ),
    **{
        f"agents.{mod.__name__.rsplit('.', 1)[1]}.make_train": Case(
            mod.make_train, dict(config=cfg)
        )
        for mod, cfg in (
            (actor_critic, actor_critic.Config()),
            (ddpg, ddpg.Config()),
            (npg, npg.Config()),
            (ppo, ppo.Config()),
            (reinforce, reinforce.Config()),
            (sac, sac.Config()),
            (svg, svg.Config()),
            (td3, td3.Config()),
            (trpo, trpo.Config()),
        )
    },
    "agents.svg.make_train[infinity]": Case(svg.make_train, dict(config=svg.InfinityConfig())),
    "agents.dqn.make_train": Case(
        dqn.make_train, dict(config=dqn.DQNConfig(), env=_cp, env_params=_cpp)
    ),
    "agents.offpolicy.make_train": Case(
        offpolicy.make_train, dict(config=sac.Config(), agent=sac.agent(sac.Config()))
    ),
    # the agents' building blocks that take arrays (not an agent's state)
    "agents.dqn.q_values": Case(
        dqn.q_values, dict(params=nets.mlp_init(K, (4, 8, 2)), obs=jnp.ones(4) * 0.1)
    ),
    "agents.dqn.epsilon_greedy": Case(dqn.epsilon_greedy, dict(key=K, q=_q, eps=0.1)),
    "agents.dqn.targets": Case(
        dqn.targets, dict(q_next=_q, reward=_r, terminated=_done, gamma=0.9)
    ),
    "agents.dqn.epsilon": Case(dqn.epsilon, dict(config=dqn.DQNConfig(), t=jnp.array(5))),
    "agents.offpolicy.td_target": Case(
        offpolicy.td_target, dict(reward=_r, terminated=_done, gamma=0.9, next_value=_v)
    ),
    "agents.offpolicy.soft_update": Case(
        offpolicy.soft_update, dict(target=_params, online=_params, tau=0.05)
    ),
    "agents.offpolicy.mlp": Case(offpolicy.mlp, dict(params=_params, x=_x3)),
    "agents.offpolicy.actor_apply": Case(offpolicy.actor_apply, dict(params=_params, obs=_x3)),
    "agents.offpolicy.critic_apply": Case(
        offpolicy.critic_apply, dict(params=nets.mlp_init(K, (3, 4, 1)), obs=_x3, action=_x3[:, :1])
    ),
    "agents.offpolicy.twin_critic_init": Case(
        offpolicy.twin_critic_init, dict(key=K, sizes=(3, 4, 1))
    ),
    "agents.offpolicy.twin_critic_apply": Case(
        offpolicy.twin_critic_apply,
        dict(params=offpolicy.twin_critic_init(K, (3, 4, 1)), obs=_x3, action=_x3[:, :1]),
    ),
    "agents.offpolicy.discounted_return": Case(
        offpolicy.discounted_return,
        dict(policy=lambda o: jnp.zeros(1), obs=jnp.array([1.0, 0.0, 0.1]), gamma=0.9, horizon=5),
    ),
    "agents.offpolicy.evaluate": Case(
        offpolicy.evaluate, dict(key=K, policy=lambda o: jnp.zeros(1, o.dtype), n_episodes=1)
    ),
    "agents.ppo.clipped_objective": Case(
        ppo.clipped_objective,
        dict(ratio=jnp.array([0.8, 1.0, 1.3]), advantage=_r - 1.0, clip_eps=0.2),
    ),
    "agents.sac.policy": Case(
        sac.policy, dict(actor_params=nets.mlp_init(K, (3, 4, 2)), obs=_obs3)
    ),
    "agents.sac.sample_action": Case(
        sac.sample_action, dict(key=K, actor_params=nets.mlp_init(K, (3, 4, 2)), obs=_obs3)
    ),
    "agents.sac.temperature_loss": Case(
        sac.temperature_loss, dict(log_temperature=jnp.array(0.1), logp=_r, target_entropy=-1.0)
    ),
    "agents.svg.policy_action": Case(svg.policy_action, dict(mean=_mean, log_std=_log_std, eta=_g)),
    "agents.svg.infer_policy_noise": Case(
        svg.infer_policy_noise, dict(mean=_mean, log_std=_log_std, action=jnp.array([0.2, -0.5]))
    ),
    "agents.svg.dynamics_sample": Case(svg.dynamics_sample, dict(mean_next=_mean, std=0.1, xi=_g)),
    "agents.svg.infer_dynamics_noise": Case(
        svg.infer_dynamics_noise, dict(mean_next=_mean, std=0.1, next_obs=-_mean)
    ),
    "agents.svg.pendulum_model": Case(
        svg.pendulum_model, dict(obs=jnp.array([1.0, 0.0, 0.1]), action=jnp.array([0.3]))
    ),
    "agents.trpo.line_search": Case(
        trpo.line_search,
        dict(
            objective=lambda p: -jnp.sum(p**2),
            kl=_kl,
            params=_th,
            full_step=-_th,
            max_kl=0.5,
            backtrack_coef=0.5,
            backtrack_iters=5,
        ),
    ),
    "agents.fqi.maximize": Case(
        fqi.maximize, dict(q=lambda a: -jnp.sum((a - 0.3) ** 2), dim=1, n_starts=3, n_steps=5)
    ),
    "agents.fqi.cem_maximize": Case(
        fqi.cem_maximize,
        dict(
            key=K,
            f=lambda a: -jnp.sum((a - 0.3) ** 2),
            mean=jnp.zeros(1),
            std=1.0,
            n_samples=8,
            n_elite=2,
            n_iters=3,
            low=-1.0,
            high=1.0,
            min_std=1e-3,
        ),
    ),
    "text.plain": Case(text.plain, dict(value=np.float32(0.5))),
    "plotting.mean_and_band": Case(
        plotting.mean_and_band, dict(y=np.arange(12.0).reshape(3, 4), confidence=0.95)
    ),
}

# --------------------------------------------------------------------------- what is not fuzzed

_CLASS = (
    "a class or constant (a NamedTuple of arrays, a config, an environment, a policy "
    "family); configs and environment parameters are fuzzed field by field below"
)
_INTERNAL = (
    "an agent's building block, called inside its jitted train on the agent's own "
    "state; the agent is validated where it is built (Config and make_train)"
)
_PLOT = "draws a figure; its data goes through mean_and_band, which is fuzzed"

EXEMPT: dict[str, str] = {
    "plotting.learning_curve": _PLOT,
    "plotting.violin": _PLOT,
    "plotting.axes": _PLOT,
    "seeds.build_seed": "no arguments; reads RLBOOK_SEED, checked in test_seeds.py",
    "seeds.seed_sets": "no arguments; reads RLBOOK_SEED_SETS, checked in test_seeds.py",
    "claims.calibrating": "no arguments",
    "claims.check": "asserts a calibrated claim; its refusals are tested in test_book.py",
    "claims.load": "reads calibration.json; tested in test_book.py",
    "text.glue": "stores a value for myst-nb; needs a notebook kernel, tested in test_text.py",
    "agents.offpolicy.philox_key": "a key constructor; tested in test_offpolicy.py",
    "timing.compile_and_run": "times f on the caller's own positional arguments, which it "
    "passes on unread; its refusal of a bad f is tested in test_timing.py",
    "timing.best_time": "times f on the caller's own positional arguments, which it passes "
    "on unread; its refusals of a bad f and a bad repeats are tested in test_timing.py",
}


def _exempt_module_names():
    """Classes, constants and agents' internals, read from each module."""
    out = {}
    for mod_name in MODULES:
        mod = importlib.import_module(f"rlbook.{mod_name}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            key = f"{mod_name}.{name}"
            if inspect.isclass(obj) or not callable(obj):
                out[key] = _CLASS
            elif (
                mod_name.startswith("agents.")
                and mod_name != "agents.qlearning"
                and name != "make_train"
                and key not in CASES
            ):
                out[key] = _INTERNAL
    return out


# --------------------------------------------------------------------------- bad values


def _bad_values(name: str, value, default) -> dict[str, Any]:
    """Named bad replacements for an argument, by the kind of its valid value."""
    bad: dict[str, Any] = {"str": "x"}
    if default is not None:
        bad["none"] = None
    if name == "key":
        bad["float-key"] = jnp.zeros(3)
        return bad
    if isinstance(value, bool):
        bad["int-for-bool"] = 2
        return bad
    if isinstance(value, (int, np.integer)):
        bad.update({"negative": -1, "fraction": 2.5, "bool": True})
        return bad
    if isinstance(value, str):
        bad.update({"unknown": "no-such-name", "number": 3})
        return bad
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        bad.update({"empty": (), "zero": (0,), "bool-width": (True,)})
        return bad
    if isinstance(value, (float, np.floating)) or (
        isinstance(value, (np.ndarray, jax.Array)) and jnp.issubdtype(value.dtype, jnp.floating)
    ):
        a = np.array(value, dtype=np.float64)
        for tag, v in (("nan", np.nan), ("inf", np.inf), ("-inf", -np.inf)):
            b = a.copy()
            b.reshape(-1)[0] = v
            bad[tag] = b.astype(np.asarray(value).dtype) if a.ndim else v
        bad["negative"] = -np.abs(a) - 1 if a.ndim else -abs(float(value)) - 1
        if a.ndim >= 1 and a.shape[-1] >= 2:
            bad["short"] = np.asarray(value)[..., :-1]
    return bad


def _triples():
    for fname, case in CASES.items():
        sig_defaults = _defaults(case.fn)
        for arg, value in case.kwargs.items():
            if arg in case.skip:
                continue
            bads = _bad_values(arg, value, sig_defaults.get(arg, inspect.Parameter.empty))
            bads.update({f"extra{i}": v for i, v in enumerate(case.extra.get(arg, []))})
            for tag in bads:
                yield fname, arg, tag


def _defaults(fn):
    try:
        return {k: p.default for k, p in inspect.signature(fn).parameters.items()}
    except (TypeError, ValueError):
        return {}


def _shapes(out):
    if callable(out):
        return "callable"
    leaves, tree = jax.tree_util.tree_flatten(out)
    return tree, [np.shape(x) for x in leaves]


def _leaves(out):
    return [
        x
        for x in jax.tree_util.tree_leaves(out)
        if isinstance(x, (np.ndarray, jax.Array, float, np.floating))
    ]


def _run(fname, arg, tag):
    case = CASES[fname]
    value = case.kwargs[arg]
    bads = _bad_values(arg, value, _defaults(case.fn).get(arg, inspect.Parameter.empty))
    bads.update({f"extra{i}": v for i, v in enumerate(case.extra.get(arg, []))})
    kwargs = dict(case.kwargs, **{arg: bads[tag]})
    try:
        out = case.fn(*case.args, **kwargs)
        out = jax.block_until_ready(out) if not callable(out) else out
    except (ValueError, TypeError) as err:
        # a wrong length is a mismatch between arguments: naming either side is right
        names = [arg] if tag != "short" else list(kwargs) + list(_defaults(case.fn))
        assert any(n in str(err) for n in names), (
            f"{fname}({arg}={tag}): {type(err).__name__} names no {arg!r}: {err}"
        )
        return
    except Exception as err:  # any other error: the point of the test
        raise AssertionError(f"{fname}({arg}={tag}): {type(err).__name__}: {err}") from err
    if tag in ("str", "float-key", "number", "int-for-bool") or (
        tag == "negative" and not isinstance(value, (int, np.integer))
    ):
        valid = case.fn(*case.args, **case.kwargs)
        assert _shapes(out) == _shapes(valid), f"{fname}({arg}={tag}) changed the result's shape"
    nonfinite_input = tag in ("nan", "inf", "-inf") and not (tag != "nan" and arg in case.inf_ok)
    assert not nonfinite_input, f"{fname}({arg}={tag}) returned silently: {out!r}"[:300]
    for leaf in _leaves(out):
        x = np.asarray(leaf)
        if x.dtype.kind != "f":
            continue
        assert not np.any(np.isnan(x)), f"{fname}({arg}={tag}) returned NaN"
        if not (case.neg_inf_out or arg in case.inf_ok):
            assert np.all(np.isfinite(x)), f"{fname}({arg}={tag}) returned ±inf"


# --------------------------------------------------------------------------- tests


def test_every_module_is_listed():
    """MODULES is every public module of rlbook (the private _checks is what they call)."""
    import pkgutil

    import rlbook

    found = {
        m.name.removeprefix("rlbook.")
        for m in pkgutil.walk_packages(rlbook.__path__, "rlbook.")
        if not m.ispkg and not m.name.rsplit(".", 1)[-1].startswith("_")
    }
    assert found == set(MODULES)


def test_every_public_name_is_fuzzed():
    exempt = {**_exempt_module_names(), **EXEMPT}
    public = {f"{m}.{n}" for m in MODULES for n in importlib.import_module(f"rlbook.{m}").__all__}
    covered = {k.split("[")[0] for k in CASES} | set(exempt)
    missing = sorted(public - covered)
    assert not missing, f"public names neither fuzzed nor exempt: {missing}"
    stale = sorted(k for k in EXEMPT if k not in public)
    assert not stale, stale


@pytest.mark.parametrize("fname", sorted(CASES))
def test_valid_call_is_finite(fname):
    case = CASES[fname]
    out = case.fn(*case.args, **case.kwargs)
    for leaf in _leaves(out):
        x = np.asarray(leaf)
        assert x.dtype.kind != "f" or np.all(np.isfinite(x)), fname


TRIPLES = sorted(set(_triples()))


@pytest.mark.parametrize("fname", sorted(CASES))
def test_exhaustive(fname):
    failures = []
    for f, arg, tag in TRIPLES:
        if f != fname:
            continue
        try:
            _run(f, arg, tag)
        except AssertionError as err:
            failures.append(str(err).splitlines()[0][:300])
    assert not failures, "\n".join(failures)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(triple=st.sampled_from(TRIPLES))
def test_fuzz(triple):
    _run(*triple)


# --------------------------------------------------------------------------- configs

CONFIGS = {
    "actor_critic.Config": actor_critic.Config,
    "ddpg.Config": ddpg.Config,
    "dqn.DQNConfig": dqn.DQNConfig,
    "fqi.Config": fqi.Config,
    "npg.Config": npg.Config,
    "offpolicy.Config": offpolicy.Config,
    "ppo.Config": ppo.Config,
    "reinforce.Config": reinforce.Config,
    "sac.Config": sac.Config,
    "svg.Config": svg.Config,
    "svg.InfinityConfig": svg.InfinityConfig,
    "td3.Config": td3.Config,
    "trpo.Config": trpo.Config,
    "agents.offline_q.Config": offline_q.Config,
}
ENV_PARAMS = {
    "CartPoleParams": (_cp, envs.CartPoleParams),
    "PendulumParams": (_pd, envs.PendulumParams),
}


def _config_triples():
    for cname, cls in CONFIGS.items():
        for f in dataclasses.fields(cls):
            optional = "None" in str(f.type)  # ``float | None``: None is legal
            for tag in _bad_values(f.name, f.default, None if optional else f.default):
                yield cname, f.name, tag


def _config_run(cname, fname, tag):
    """A config built with one bad field is refused by a ValueError naming the field, unless
    the value is a legal one (a negative number or a zero may be); NaN, ±inf, strings and
    None (where the default is not None) are never legal."""
    cls = CONFIGS[cname]
    default = {f.name: f.default for f in dataclasses.fields(cls)}[fname]
    bad = _bad_values(fname, default, None)[tag] if tag != "none" else None
    try:
        cls(**{fname: bad})
    except (ValueError, TypeError) as err:
        assert fname in str(err), f"{cname}({fname}={tag}): {type(err).__name__}: {err}"
        return
    except Exception as err:
        raise AssertionError(f"{cname}({fname}={tag}): {type(err).__name__}: {err}") from err
    assert tag not in (
        "nan",
        "inf",
        "-inf",
        "str",
        "none",
        "unknown",
        "number",
        "int-for-bool",
        "bool",
        "fraction",
        "zero",
        "bool-width",
    ), f"{cname}({fname}={tag}) was accepted"


CONFIG_TRIPLES = sorted(set(_config_triples()))


@pytest.mark.parametrize("cname", sorted(CONFIGS))
def test_configs_exhaustive(cname):
    failures = []
    for c, f, tag in CONFIG_TRIPLES:
        if c == cname:
            try:
                _config_run(c, f, tag)
            except AssertionError as err:
                failures.append(str(err).splitlines()[0][:300])
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("pname", sorted(ENV_PARAMS))
def test_env_params_exhaustive(pname):
    """Environment parameters are checked when the environment is reset with them."""
    env, cls = ENV_PARAMS[pname]
    failures = []
    for name, default in cls._field_defaults.items():
        for tag, bad in _bad_values(name, default, default).items():
            try:
                env.reset(K, cls(**{name: bad}))
            except (ValueError, TypeError) as err:
                if name not in str(err):
                    failures.append(f"{pname}({name}={tag}): {err}")
                continue
            except Exception as err:
                failures.append(f"{pname}({name}={tag}): {type(err).__name__}: {err}")
                continue
            if tag in ("nan", "inf", "-inf", "str", "none"):
                failures.append(f"{pname}({name}={tag}) was accepted")
    assert not failures, "\n".join(failures)
