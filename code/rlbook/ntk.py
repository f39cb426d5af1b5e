r"""Empirical neural tangent kernels and the linearized picture of TD learning.

After Achiam, Knight & Abbeel (2019), "Towards characterizing divergence in
deep Q-learning" (the chapter ``td_divergence``, labels ``tdd-*``).

A Q-function :math:`Q_\theta` evaluated on n state–action pairs is a vector in
:math:`\R^n`; its Jacobian :math:`J = \partial Q_\theta / \partial\theta` has
shape [n, p]. The semi-gradient update

.. math::
   \theta' = \theta + \alpha J^\top D_\rho\, \delta, \qquad \delta = \T Q_\theta - Q_\theta,

moves the function, to first order in :math:`\theta' - \theta`, by

.. math::
   Q_{\theta'} - Q_\theta \approx \alpha K_\theta D_\rho\, \delta, \qquad K_\theta = J J^\top,

where :math:`K_\theta` is the empirical neural tangent kernel (Jacot, Gabriel &
Hongler 2018) and :math:`D_\rho = \operatorname{diag}(\rho)` the weights of the
data distribution. This module computes those objects and the quantities the
chapter's theorems are stated in:

=============================== ==============================================
``jacobian``, ``empirical_ntk``  J of shape [n, p] and K = J Jᵀ of shape [n, n]
``linearized_step``              α K D_ρ δ, the first-order function-space step
``semi_gradient_step``           θ + α Jᵀ D_ρ δ, by one vector–Jacobian product
``contraction_modulus``          the sup-norm Lipschitz bound of
                                 U(Q) = Q + α K D_ρ (T Q − Q) (theorem tdd-thm-contraction)
``dominance_ratio``              max_i Σ_{j≠i} \|K_ij| ρ_j / (K_ii ρ_i)
``preqn_step``                   θ + α Jᵀ (K + λ I)⁻¹ δ, the preconditioned step (PreQN)
``linear_td``                    A = Φᵀ D (I − γ P_π) Φ and b = Φᵀ D r_π of linear TD(0)
``heavy_ball_rate``              the spectral radius of linearized heavy-ball TD
``heavy_ball_roots``             the characteristic roots of each of its modes
``padded_mlp_init``              an MLP of any width ≤ a maximum, zero-padded, so
                                 widths are a data axis that ``vmap`` can batch
=============================== ==============================================

The chapter's deep example, Q-learning of an MLP on a fixed dataset with the plain or the
preconditioned step, is an agent: :mod:`rlbook.agents.offline_q`.

The parameter-space functions take a model ``f(params, *args) -> array``; its
output is flattened to the vector of n values, and ``params`` to the vector θ of
p scalars (``jax.flatten_util.ravel_pytree``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from rlbook import _checks, nets
from rlbook import mdp as mdp_lib

__all__ = [
    "jacobian",
    "empirical_ntk",
    "linearized_step",
    "semi_gradient_step",
    "contraction_modulus",
    "dominance_ratio",
    "preqn_direction",
    "preqn_step",
    "linear_td",
    "heavy_ball_rate",
    "heavy_ball_roots",
    "padded_mlp_init",
]


# --------------------------------------------------------------------------- kernels


def _flat(f: Callable, params):
    """θ as one vector, and the model as a function of it returning a vector of n values."""
    theta, unravel = ravel_pytree(params)

    def f_flat(t, *args):
        return jnp.ravel(f(unravel(t), *args))

    return theta, unravel, f_flat


def jacobian(f: Callable, params, *args) -> jax.Array:
    r"""J = ∂ vec f(θ, ·) / ∂θ of shape [n, p], by reverse mode (one VJP per output).

    ``f(params, *args)`` may return any shape; its n entries are flattened in
    row-major order, so a Q-network returning [S, A] gives rows indexed s·A + a.
    """
    if not callable(f):
        raise ValueError(f"f must be callable, got {type(f).__name__}")
    theta, _, f_flat = _flat(f, params)
    return jax.jacrev(f_flat)(theta, *args)


def empirical_ntk(f: Callable, params, *args) -> jax.Array:
    r"""The empirical neural tangent kernel K_θ = J Jᵀ of shape [n, n].

    K_θ[i, j] = ∇_θ f_i(θ) · ∇_θ f_j(θ) (Jacot et al. 2018): how much a gradient
    step on output j moves output i. For a linear model f = Φθ it is ΦΦᵀ.
    """
    J = jacobian(f, params, *args)
    return J @ J.T


_ABSENT = object()  # an argument a kernel function does not take (None is a bad value)


def _check_kernel(K, rho=_ABSENT, delta=_ABSENT) -> None:
    _checks.ndim("K", K, 2)
    n = np.shape(K)[0]
    if np.shape(K) != (n, n):
        raise ValueError(f"K must be square, got shape {np.shape(K)}")
    _checks.finite("K", K)
    if rho is not _ABSENT:
        if np.shape(rho) != (n,):
            raise ValueError(f"rho must have shape {(n,)} to match K, got {np.shape(rho)}")
        _checks.positive("rho", rho, strict=False)
    if delta is not _ABSENT:
        if np.shape(delta) != (n,):
            raise ValueError(f"delta must have shape {(n,)} to match K, got {np.shape(delta)}")
        _checks.finite("delta", delta)


def linearized_step(K: jax.Array, rho: jax.Array, delta: jax.Array, alpha) -> jax.Array:
    r"""The first-order change of Q under the semi-gradient step: α K D_ρ δ, shape [n].

    Exact for a model linear in θ; for a network the actual change differs by
    O(‖θ' − θ‖²) = O(α²) (theorem tdd-thm-taylor).
    """
    _check_kernel(K, rho, delta)
    _checks.positive("alpha", alpha)
    return alpha * K @ (rho * delta)


def semi_gradient_step(f: Callable, params, rho: jax.Array, delta: jax.Array, alpha, *args):
    r"""θ' = θ + α Σ_i ρ_i δ_i ∇_θ f_i(θ) = θ + α Jᵀ D_ρ δ, as a pytree like ``params``.

    ``rho`` and ``delta`` have the shape of ``f(params, *args)``; the step is one
    vector–Jacobian product, never forming J. With δ = T Q − Q held fixed (a
    stopped gradient), this is the expected semi-gradient TD / Q-learning update.
    """
    _checks.positive("alpha", alpha)
    out, vjp = jax.vjp(lambda p: f(p, *args), params)
    if np.shape(rho) != np.shape(out) or np.shape(delta) != np.shape(out):
        raise ValueError(
            f"rho and delta must have the output's shape {np.shape(out)}, "
            f"got {np.shape(rho)} and {np.shape(delta)}"
        )
    (g,) = vjp((rho * delta).astype(out.dtype))
    return jax.tree_util.tree_map(lambda p, d: p + alpha * d, params, g)


def contraction_modulus(K: jax.Array, rho: jax.Array, alpha, gamma) -> jax.Array:
    r"""β = max_i Σ_j ( \|δ_ij − M_ij| + γ \|M_ij| ) with M = α K D_ρ (theorem tdd-thm-contraction).

    For any operator T that is a γ-contraction in the sup norm (T^π or T^*),
    U(Q) = Q + α K D_ρ (T Q − Q) satisfies ‖U Q₁ − U Q₂‖∞ ≤ β ‖Q₁ − Q₂‖∞.
    When α K_ii ρ_i ≤ 1 for every i this is
    β = 1 − min_i [ (1 − γ) M_ii − (1 + γ) Σ_{j≠i} \|M_ij| ], and β < 1 exactly when
    (1 + γ) Σ_{j≠i} \|K_ij| ρ_j < (1 − γ) K_ii ρ_i for every i (Achiam et al. 2019).
    A scalar.
    """
    _check_kernel(K, rho)
    _checks.positive("alpha", alpha)
    _checks.discount("gamma", gamma)
    M = alpha * K * rho[None, :]
    eye = jnp.eye(M.shape[0], dtype=M.dtype)
    return jnp.max(jnp.sum(jnp.abs(eye - M) + gamma * jnp.abs(M), axis=1))


def dominance_ratio(K: jax.Array, rho: jax.Array) -> jax.Array:
    r"""max_i Σ_{j≠i} \|K_ij| ρ_j / (K_ii ρ_i): the theorem asks for less than (1 − γ)/(1 + γ).

    A scalar; a row with K_ii ρ_i = 0 (a pair the step never corrects directly)
    makes it ``inf``.
    """
    _check_kernel(K, rho)
    A = jnp.abs(K) * rho[None, :]
    diag = jnp.diag(A)
    off = A.sum(axis=1) - diag
    safe = jnp.where(diag > 0, diag, 1.0)
    return jnp.max(jnp.where(diag > 0, off / safe, jnp.inf))


def _check_solvable(K, damping) -> None:
    """With ``damping`` = 0 a concrete K must be nonsingular (numerical rank n)."""
    if not (_checks.is_concrete(K) and _checks.is_concrete(damping)) or float(damping) > 0:
        return
    k = np.asarray(K)
    if not np.all(np.isfinite(k)):
        raise ValueError("J must be finite: the kernel K = J Jᵀ has non-finite entries")
    s = np.linalg.svd(k.astype(np.float64), compute_uv=False)
    if s.size and s[-1] <= s[0] * k.shape[0] * np.finfo(k.dtype).eps:
        raise ValueError(
            f"damping=0 needs a nonsingular kernel K = J Jᵀ, but K (n = {k.shape[0]}) is "
            f"singular to {k.dtype} precision (rank < n: repeated or collinear batch entries, "
            "or n > p); pass damping > 0"
        )


def preqn_direction(J: jax.Array, delta: jax.Array, damping=0.0) -> jax.Array:
    r"""Jᵀ (K + λ I)⁻¹ δ with K = J Jᵀ and λ = ``damping`` · tr(K)/n, shape [p].

    J has shape [n, p] (n points of a batch), δ shape [n]. With λ = 0 and K
    invertible, J times this direction is δ exactly: the function moves by δ on
    the batch. The damping regularizes an ill-conditioned K (nearly collinear
    gradients, n close to or above p): it is scaled by the mean eigenvalue
    tr(K)/n so that one setting works across network widths, and it shrinks the
    step along K's eigenvectors with eigenvalue κ by κ / (κ + λ). It also makes
    the direction the minimizer of ‖J d − δ‖² + λ ‖d‖² (a damped Gauss–Newton /
    Levenberg–Marquardt step).
    """
    _checks.ndim("J", J, 2)
    _checks.finite("J", J)
    n = np.shape(J)[0]
    if np.shape(delta) != (n,):
        raise ValueError(f"delta must have shape {(n,)} to match J, got {np.shape(delta)}")
    _checks.finite("delta", delta)
    _checks.positive("damping", damping, strict=False)
    K = J @ J.T
    _check_solvable(K, damping)
    lam = damping * jnp.trace(K) / n
    x = jnp.linalg.solve(K + lam * jnp.eye(n, dtype=K.dtype), delta.astype(K.dtype))
    return J.T @ x


def preqn_step(f: Callable, params, delta: jax.Array, alpha, *args, damping=0.0):
    r"""θ' = θ + α Jᵀ (K + λ I)⁻¹ δ: the PreQN update of Achiam et al. (2019), as a pytree.

    ``delta`` has the shape of ``f(params, *args)`` (the batch's TD errors).
    To first order the batch's values move by α K (K + λI)⁻¹ δ, which is α δ
    when λ = 0: relaxed value iteration on the batch, whatever the kernel.
    See :func:`preqn_direction` for the damping.
    """
    _checks.positive("alpha", alpha)
    theta, unravel, f_flat = _flat(f, params)
    J = jax.jacrev(f_flat)(theta, *args)
    d = preqn_direction(J, jnp.ravel(delta), damping)
    return unravel(theta + alpha * d.astype(theta.dtype))


# --------------------------------------------------------------------------- linear TD


def linear_td(mdp: mdp_lib.MDP, pi: jax.Array, phi: jax.Array, d: jax.Array):
    r"""The expected linear TD(0) update w' = w + α (b − A w) in matrix form.

    A = Φᵀ D (I − γ P_π) Φ of shape [k, k] and b = Φᵀ D r_π of shape [k], for
    state features Φ of shape [S, k] and state weights d of shape [S]
    (D = diag d). Off-policy TD(0) with importance ratios π/μ has this expected
    update with d the behaviour's state distribution (Sutton & Barto 2018, §11.2);
    the iteration is stable for small α iff every eigenvalue of A on the range
    of Φᵀ has a positive real part.
    """
    _checks.an_mdp(mdp)
    _checks.policy(mdp, pi)
    _checks.ndim("phi", phi, 2)
    if np.shape(phi)[0] != mdp.n_states:
        raise ValueError(f"phi must have {mdp.n_states} rows (one per state), got {np.shape(phi)}")
    _checks.finite("phi", phi)
    if np.shape(d) != (mdp.n_states,):
        raise ValueError(f"d must have shape {(mdp.n_states,)}, got {np.shape(d)}")
    _checks.positive("d", d, strict=False)
    P_pi = mdp_lib.policy_dynamics(mdp, pi)
    r_pi = mdp_lib.policy_reward(mdp, pi)
    DPhi = d[:, None] * phi
    A = DPhi.T @ (phi - mdp.gamma * P_pi @ phi)
    b = DPhi.T @ r_pi
    return A, b


def heavy_ball_roots(eigs: jax.Array, alpha, beta) -> jax.Array:
    r"""Both roots of z² − (1 + β − α λ) z + β = 0 for each eigenvalue λ.

    The linearized heavy-ball iteration e_{k+1} = ((1 + β) I − α M) e_k − β e_{k−1}
    decouples along the eigenvectors of M; each mode is a scalar second-order
    recurrence whose characteristic roots are these, and the error is a combination
    of their powers z^k. Complex, shape: the broadcast of ``eigs``, ``alpha`` and
    ``beta``, then 2.
    """
    _checks.finite("eigs", eigs, complex_ok=True)
    _checks.positive("alpha", alpha)
    _checks.positive("beta", beta, strict=False)
    lam = jnp.asarray(eigs).astype(jnp.result_type(complex))
    b = 1.0 + beta - alpha * lam
    disc = jnp.sqrt(b * b - 4.0 * beta)
    return jnp.stack([(b + disc) / 2, (b - disc) / 2], axis=-1)


def heavy_ball_rate(eigs: jax.Array, alpha, beta) -> jax.Array:
    r"""Largest root modulus of z² − (1 + β − α λ) z + β = 0 for each eigenvalue λ.

    The larger modulus of :func:`heavy_ball_roots`: the rate of the slowest part of each
    mode. The iteration converges iff every returned value is below 1 (theorem
    tdd-thm-momentum). For Re λ ≤ 0, λ ≠ 0 the value is at least \|1 − αλ| > 1 for every
    α > 0 and 0 ≤ β < 1: momentum never rescues a wrong-signed mode (theorem
    tdd-thm-momentum-wrong-sign). Shape: the broadcast of ``eigs``, ``alpha`` and ``beta``.
    """
    return jnp.abs(heavy_ball_roots(eigs, alpha, beta)).max(axis=-1)


# --------------------------------------------------------------------------- width as data


def padded_mlp_init(
    key: jax.Array,
    in_dim: int,
    out_dim: int,
    depth: int,
    max_width: int,
    width,
    *,
    final_scale: float = 1.0,
    dtype=jnp.float32,
) -> nets.Params:
    r"""An MLP with ``depth`` hidden layers of ``width`` units, zero-padded to ``max_width``.

    Weights are LeCun-normal as in :func:`rlbook.nets.mlp_init` (variance 1 /
    fan-in, with the fan-in of the *unpadded* layer) and the padding is zero.
    Zero units stay zero under gradient steps (their incoming and outgoing
    weights get zero gradients), and contribute nothing to the output or the
    NTK, so the padded net *is* the width-``width`` net. ``width`` may be a
    traced integer: ``vmap`` over widths compiles once. With
    ``width == max_width`` this equals ``nets.mlp_init(key, [in_dim] +
    [max_width] * depth + [out_dim])``.
    """
    _checks.positive_int("in_dim", in_dim)
    _checks.positive_int("out_dim", out_dim)
    _checks.positive_int("depth", depth)
    _checks.positive_int("max_width", max_width)
    if _checks.is_concrete(width):
        if width is None or isinstance(width, (str, bytes, bool, np.bool_)):
            raise ValueError(
                f"width must be an integer in [1, max_width={max_width}], got {width!r}"
            )
        _checks.real("width", width)
        w = np.asarray(width)
        if w.shape != () or not (1 <= w <= max_width) or w != np.floor(w):
            raise ValueError(
                f"width must be an integer in [1, max_width={max_width}], got {width!r}"
            )
    sizes = [in_dim] + [max_width] * depth + [out_dim]
    keys = jax.random.split(key, len(sizes) - 1)
    unit = jnp.arange(max_width) < width
    params = []
    for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:], strict=True)):
        fan_in = n_in if i == 0 else width
        w_ = jax.random.normal(k, (n_in, n_out), dtype) / jnp.sqrt(fan_in).astype(dtype)
        mask_in = jnp.ones(n_in, bool) if i == 0 else unit
        mask_out = jnp.ones(n_out, bool) if i == len(sizes) - 2 else unit
        w_ = jnp.where(mask_in[:, None] & mask_out[None, :], w_, 0.0)
        if i == len(sizes) - 2:
            w_ = w_ * final_scale
        params.append({"w": w_.astype(dtype), "b": jnp.zeros((n_out,), dtype)})
    return params
