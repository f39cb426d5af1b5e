r"""Natural gradients: Fisher-vector products, conjugate gradient, the natural step.

The natural gradient (Amari 1998; Kakade 2001) is the steepest-ascent direction of
J(θ) when step lengths are measured by the Fisher information of the policy,

    F(θ) = E_{s ∼ d, a ∼ π_θ}[∇ log π_θ(a | s) ∇ log π_θ(a | s)ᵀ],

which is the Hessian at θ' = θ of the mean KL divergence
θ' ↦ E_s[KL(π_θ(· | s) ‖ π_θ'(· | s))]. This module never forms F for a network:

* :func:`fisher_vector_product` computes F v as a forward-mode derivative (``jvp``)
  of the gradient of the mean KL, on the parameters flattened by ``ravel_pytree``
  (Pearlmutter 1994's Hessian-vector product; Schulman et al. 2015, appendix C);
  :func:`fisher_operator` is the same product with the linearization computed once,
  for the repeated products of conjugate gradient.
* :func:`conjugate_gradient` solves (F + λI) x = g from such products in a
  ``lax.while_loop`` stopping on a residual tolerance (Hestenes & Stiefel 1952);
  :func:`conjugate_gradient_loop` is the readable plain-Python version of the same
  algorithm, which the tests require to agree with it.
* :func:`natural_direction` and :func:`natural_step` take the step
  θ ← θ + α F⁻¹ g, either with a fixed α or with the adaptive α = √(2δ / gᵀF⁻¹g)
  that puts the second-order KL of the step at δ (the step TRPO builds on).

A mean-KL function is the argument every function here shares: a pure function
``kl(params_old, params_new) -> scalar`` returning E_s[KL(π_old(· | s) ‖ π_new(· | s))]
over whatever batch of states it closes over, for two parameter pytrees of the
same structure. The Fisher matrix of :doc:`/book/natural_gradient` is its
Hessian in ``params_new`` at ``params_new = params_old``.

Derived in :doc:`/book/natural_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from rlbook import _checks

__all__ = [
    "CGResult",
    "conjugate_gradient",
    "conjugate_gradient_loop",
    "fisher_vector_product",
    "fisher_operator",
    "fisher_matrix",
    "kl_step_size",
    "NaturalStep",
    "natural_direction",
    "natural_step",
]

KLFn = Callable[[object, object], jax.Array]


# --------------------------------------------------------------------------- validation


def _check_kl(kl) -> None:
    if not callable(kl):
        raise ValueError(f"kl must be a callable kl(params_old, params_new) -> scalar, got {kl!r}")


def _check_flat(name: str, v, n: int) -> None:
    if np.shape(v) != (n,):
        raise ValueError(
            f"{name} must be a flat vector of shape ({n},) (the number of "
            f"parameters), got shape {np.shape(v)}"
        )


def _check_nonneg(name: str, x) -> None:
    if _checks.is_concrete(x) and np.shape(x) != ():
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(x)}")
    _checks.positive(name, x, strict=False)


def _check_like(name: str, tree, params) -> None:
    if jax.tree_util.tree_structure(tree) != jax.tree_util.tree_structure(params):
        raise ValueError(f"{name} must be a pytree of the structure of params")
    for a, b in zip(
        jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(params), strict=True
    ):
        if np.shape(a) != np.shape(b):
            raise ValueError(
                f"{name} must have the shapes of params: a leaf of shape "
                f"{np.shape(a)} faces one of shape {np.shape(b)}"
            )


# --------------------------------------------------------------------------- Fisher products


def _flat_kl(kl: KLFn, params):
    """θ' ↦ kl(θ, unravel(θ')) on the flat parameter vector, with θ held fixed."""
    flat, unravel = ravel_pytree(params)
    old = jax.lax.stop_gradient(params)
    return (lambda x: kl(old, unravel(x))), flat


def fisher_vector_product(kl: KLFn, params, v: jax.Array, *, damping=0.0) -> jax.Array:
    r"""(F(θ) + λI) v with F(θ) = ∇²_θ' E_s[KL(π_θ ‖ π_θ')] at θ' = θ, never forming F.

    F v is the directional derivative of the KL gradient along v,
    F v = d/dε ∇_θ' KL(θ, θ + ε v)|_{ε=0}, one ``jax.jvp`` of ``jax.grad`` (a
    forward-over-reverse Hessian-vector product, Pearlmutter 1994), costing a small
    multiple of one gradient evaluation.

    Args:
        kl: the mean KL, ``kl(params_old, params_new) -> scalar`` (module docstring).
        params: the parameter pytree θ at which F is taken.
        v: a flat vector of shape [n], n the number of parameters, in the order of
            ``jax.flatten_util.ravel_pytree(params)``.
        damping: λ ≥ 0, added as λ v (Tikhonov damping; Martens 2010).

    Returns:
        the flat vector (F + λI) v, shape [n].
    """
    _check_kl(kl)
    _checks.finite_tree("params", params)
    n = ravel_pytree(params)[0].shape[0]
    _check_flat("v", v, n)
    _checks.finite("v", v)
    _check_nonneg("damping", damping)
    kl_flat, flat = _flat_kl(kl, params)
    v = jnp.asarray(v, flat.dtype)
    return jax.jvp(jax.grad(kl_flat), (flat,), (v,))[1] + damping * v


def fisher_operator(kl: KLFn, params, *, damping=0.0) -> Callable[[jax.Array], jax.Array]:
    r"""The linear map v ↦ (F(θ) + λI) v of :func:`fisher_vector_product`, linearized once.

    ``jax.linearize`` evaluates the forward pass of ∇ KL once and returns the ``jvp``
    as a linear function, so the k products of k conjugate-gradient iterations pay
    the primal computation only once. Same arguments as
    :func:`fisher_vector_product`; the returned function maps shape [n] to [n].
    """
    _check_kl(kl)
    _checks.finite_tree("params", params)
    _check_nonneg("damping", damping)
    kl_flat, flat = _flat_kl(kl, params)
    _, jvp = jax.linearize(jax.grad(kl_flat), flat)
    n = flat.shape[0]

    def fvp(v):
        _check_flat("v", v, n)
        _checks.finite("v", v)
        v = jnp.asarray(v, flat.dtype)
        return jvp(v) + damping * v

    return fvp


def fisher_matrix(kl: KLFn, params) -> jax.Array:
    r"""The dense F(θ) = ∇²_θ' E_s[KL(π_θ ‖ π_θ')] at θ' = θ, shape [n, n].

    Only for small n (tabular policies, checks): it costs n Fisher-vector products.
    Rows and columns follow ``ravel_pytree(params)``.
    """
    _check_kl(kl)
    _checks.finite_tree("params", params)
    kl_flat, flat = _flat_kl(kl, params)
    return jax.hessian(kl_flat)(flat)


# --------------------------------------------------------------------------- conjugate gradient


class CGResult(NamedTuple):
    """Output of :func:`conjugate_gradient`.

    Attributes:
        x: the last iterate x_k ≈ A⁻¹ b, shape [n].
        iterations: k, the number of matrix-vector products taken.
        residual_norm: ‖b − A x_k‖₂ as carried by the recursion r_{k+1} = r_k − α_k A p_k.
        nonpositive_curvature: True when some search direction had pᵀ A p ≤ 0 (or NaN: a
            matvec that returned NaN stops here too), so that A is not positive definite;
            the iteration stopped there and ``x`` is the iterate before that direction.
    """

    x: jax.Array
    iterations: jax.Array
    residual_norm: jax.Array
    nonpositive_curvature: jax.Array


def _cg_inputs(matvec, b, x0, tol, atol, max_iter):
    if isinstance(matvec, (jax.Array, np.ndarray)):
        A = matvec
        if np.ndim(A) != 2 or np.shape(A)[0] != np.shape(A)[1]:
            raise ValueError(
                f"matvec must be a callable or a square matrix, got shape {np.shape(A)}"
            )
        a_np = np.asarray(A) if _checks.is_concrete(A) else None  # numpy: no tracing under jit
        if a_np is not None and not np.allclose(
            a_np, a_np.T, rtol=1e-6, atol=1e-12 * float(np.max(np.abs(a_np)))
        ):
            raise ValueError("matvec must be symmetric: conjugate gradient needs A = Aᵀ")
        matvec = lambda v: A @ v  # noqa: E731
        n_expected = np.shape(A)[0]
    elif callable(matvec):
        n_expected = None
    else:
        raise ValueError(
            f"matvec must be a callable or a square matrix, got {type(matvec).__name__}"
        )
    _checks.ndim("b", b, 1)
    _checks.real("b", b)
    _checks.finite("b", b)
    if x0 is not None:
        _checks.real("x0", x0)
        _checks.finite("x0", x0)
    if n_expected is not None and np.shape(b)[0] != n_expected:
        raise ValueError(
            f"b must have shape ({n_expected},) to match the matrix, got {np.shape(b)}"
        )
    if x0 is not None and np.shape(x0) != np.shape(b):
        raise ValueError(f"x0 must have the shape of b {np.shape(b)}, got {np.shape(x0)}")
    _checks.positive("tol", tol, strict=False)
    _checks.positive("atol", atol, strict=False)
    _checks.positive_int("max_iter", max_iter)
    b = jnp.asarray(b)
    if not jnp.issubdtype(b.dtype, jnp.floating):
        b = b.astype(jnp.result_type(float))
    x = jnp.zeros_like(b) if x0 is None else jnp.asarray(x0, b.dtype)
    return matvec, b, x


def _raise_if_not_pd(result: CGResult, on_nonpositive: str) -> CGResult:
    flag = result.nonpositive_curvature
    if on_nonpositive == "raise" and _checks.is_concrete(flag) and bool(flag):
        raise ValueError(
            "matvec is not positive definite, or returned a non-finite value: conjugate "
            "gradient met a direction p with pᵀAp ≤ 0 or NaN at iteration "
            f"{int(result.iterations)} (add damping, check matvec for NaN, or pass "
            "on_nonpositive='stop' to keep the iterate reached so far)"
        )
    return result


def _check_on_nonpositive(on_nonpositive):
    if on_nonpositive not in ("raise", "stop"):
        raise ValueError(f"on_nonpositive must be 'raise' or 'stop', got {on_nonpositive!r}")


def _cg_converged(result: CGResult, b, tol, atol, max_iter, insist, return_info):
    """``result`` (and whether ‖r‖ ≤ max(tol ‖b‖, atol) without bad curvature); raise if
    ``insist``."""
    if not (insist or return_info):
        return result
    threshold = jnp.maximum(tol * jnp.linalg.norm(b), atol)
    converged = (result.residual_norm <= threshold) & ~result.nonpositive_curvature
    if insist and _checks.is_concrete(converged) and not bool(converged):
        raise ValueError(
            f"conjugate gradient did not converge within max_iter={max_iter}: residual "
            f"{float(result.residual_norm):.3g} > {float(threshold):.3g} (raise max_iter, tol "
            "or atol)"
        )
    return (result, converged) if return_info else result


def conjugate_gradient(
    matvec,
    b: jax.Array,
    *,
    tol=1e-10,
    atol=0.0,
    max_iter: int = 10,
    x0: jax.Array | None = None,
    on_nonpositive: str = "raise",
    insist: bool = False,
    return_info: bool = False,
) -> CGResult:
    r"""Solve A x = b for symmetric positive-definite A from products v ↦ A v.

    Conjugate gradient (Hestenes & Stiefel 1952; Nocedal & Wright 2006, Algorithm 5.2),
    from r₀ = b − A x₀ and p₀ = r₀, repeats

        α_k = r_kᵀ r_k / p_kᵀ A p_k,   x_{k+1} = x_k + α_k p_k,   r_{k+1} = r_k − α_k A p_k,
        β_k = r_{k+1}ᵀ r_{k+1} / r_kᵀ r_k,   p_{k+1} = r_{k+1} + β_k p_k,

    in one ``lax.while_loop`` until ‖r_k‖ ≤ max(tol ‖b‖, atol) or k = ``max_iter``.
    In exact arithmetic it terminates in at most n iterations, and
    ‖x_k − x*‖_A ≤ 2 ((√κ − 1)/(√κ + 1))^k ‖x₀ − x*‖_A with κ the condition number.

    Non-positive-definite input. Each iteration checks the curvature pᵀAp of its
    direction; at the first pᵀAp ≤ 0 the loop stops, keeps the iterate reached so far
    and sets ``nonpositive_curvature`` (the truncated-CG rule of Steihaug 1983). When
    the result is concrete (called outside ``jit``) and ``on_nonpositive="raise"``
    (the default), that raises a ``ValueError`` instead. Under ``jit``/``vmap`` no
    Python error can be raised: the documented fallback is the stopped iterate with the
    flag set, which callers should inspect. A singular positive semi-definite A with b
    in its range (a softmax Fisher) is fine: from x₀ = 0 the iterates stay in the range
    and converge to the minimum-norm solution A⁺ b.

    Args:
        matvec: a function v ↦ A v on shape [n], or the matrix A itself (shape [n, n],
            checked for symmetry when concrete).
        b: right-hand side, shape [n].
        tol: relative residual tolerance (≥ 0).
        atol: absolute residual tolerance (≥ 0).
        max_iter: the largest number of iterations (matrix-vector products).
        x0: starting point, shape [n]; zeros by default.
        on_nonpositive: ``"raise"`` or ``"stop"`` (see above).
        insist: raise ``ValueError`` when a concrete result did not converge (the
            residual is above the tolerance after ``max_iter`` iterations).
        return_info: return ``(result, converged)``, ``converged`` the bool array
            ‖r_k‖ ≤ max(tol ‖b‖, atol) and no non-positive curvature (usable under ``jit``).

    Returns:
        a :class:`CGResult` (or ``(CGResult, converged)`` with ``return_info``).

    A non-finite ``b`` or ``x0`` is refused when concrete; under ``jit`` a NaN in ``b``
    stops the loop at once with ``x = x0`` and ``converged`` False.
    """
    _check_on_nonpositive(on_nonpositive)
    _checks.flag("insist", insist)
    _checks.flag("return_info", return_info)
    matvec, b, x = _cg_inputs(matvec, b, x0, tol, atol, max_iter)
    r = b - matvec(x) if x0 is not None else b
    rs = r @ r
    threshold = jnp.maximum(tol * jnp.linalg.norm(b), atol) ** 2

    def cond(carry):
        _, _, _, rs, k, bad = carry
        return (k < max_iter) & (rs > threshold) & ~bad

    def body(carry):
        x, r, p, rs, k, _ = carry
        Ap = matvec(p)
        pAp = p @ Ap
        bad = ~(pAp > 0)
        alpha = jnp.where(bad, 0.0, rs / jnp.where(bad, 1.0, pAp))
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = jnp.where(bad, rs, r @ r)
        p = r + (rs_new / rs) * p
        return x, r, p, rs_new, k + 1, bad

    init = (x, r, r, rs, jnp.asarray(0), jnp.asarray(False))
    x, r, _, rs, k, bad = jax.lax.while_loop(cond, body, init)
    result = _raise_if_not_pd(CGResult(x, k, jnp.sqrt(rs), bad), on_nonpositive)
    return _cg_converged(result, b, tol, atol, max_iter, insist, return_info)


def conjugate_gradient_loop(
    matvec, b, *, tol=1e-10, atol=0.0, max_iter: int = 10, x0=None, on_nonpositive: str = "raise"
) -> tuple[CGResult, list[jax.Array]]:
    """The readable version of :func:`conjugate_gradient`: the same algorithm as a Python loop.

    Mirrors the chapter's algorithm block line by line; slow (one dispatch per
    operation), for reading and for tests. Same arguments and result, plus the list
    of iterates [x₀, x₁, …, x_k].
    """
    _check_on_nonpositive(on_nonpositive)
    matvec, b, x = _cg_inputs(matvec, b, x0, tol, atol, max_iter)
    r = b - matvec(x)  # residual r₀ = b − A x₀
    p = r  # first direction: steepest descent
    rs = r @ r
    threshold = max(tol * float(jnp.linalg.norm(b)), atol)
    iterates, k, bad = [x], 0, False
    while k < max_iter and float(jnp.sqrt(rs)) > threshold:
        Ap = matvec(p)
        pAp = p @ Ap
        k += 1
        if not pAp > 0:  # A is not positive definite along p
            bad = True
            break
        alpha = rs / pAp  # exact line search along p
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = r @ r
        p = r + (rs_new / rs) * p  # A-conjugate to every earlier direction
        rs = rs_new
        iterates.append(x)
    result = CGResult(x, jnp.asarray(k), jnp.sqrt(rs), jnp.asarray(bad))
    return _raise_if_not_pd(result, on_nonpositive), iterates


# --------------------------------------------------------------------------- the natural step


def kl_step_size(direction: jax.Array, fisher_direction: jax.Array, max_kl) -> jax.Array:
    r"""α = √(2δ / sᵀ F s): the step length whose second-order KL ½ (α s)ᵀ F (α s) is δ.

    With s = F⁻¹ g this is α = √(2δ / gᵀ F⁻¹ g) (Schulman et al. 2015, appendix C).
    Returns 0 when sᵀ F s = 0 (a zero gradient: no step). ``direction`` and
    ``fisher_direction`` = F s have shape [n]; ``max_kl`` is δ > 0.
    """
    _checks.ndim("direction", direction, 1)
    _checks.finite("direction", direction)
    if np.shape(fisher_direction) != np.shape(direction):
        raise ValueError(
            f"fisher_direction must have the shape of direction "
            f"{np.shape(direction)}, got {np.shape(fisher_direction)}"
        )
    _checks.finite("fisher_direction", fisher_direction)
    _checks.positive("max_kl", max_kl)
    sFs = direction @ fisher_direction
    return jnp.where(sFs > 0, jnp.sqrt(2.0 * max_kl / jnp.where(sFs > 0, sFs, 1.0)), 0.0)


def natural_direction(
    kl: KLFn,
    params,
    grad,
    *,
    damping=0.0,
    tol=1e-10,
    max_iter: int = 10,
    on_nonpositive: str = "raise",
    insist: bool = False,
):
    r"""The natural gradient (F(θ) + λI)⁻¹ ∇J(θ) by conjugate gradient on Fisher-vector products.

    Args:
        kl: the mean KL, ``kl(params_old, params_new) -> scalar``.
        params: θ, a pytree.
        grad: ∇J(θ), a pytree of the structure and shapes of ``params`` (the gradient
            of the objective to *maximize*).
        damping, tol, max_iter, on_nonpositive, insist: as in
            :func:`fisher_vector_product` and :func:`conjugate_gradient` (``insist``: raise
            ``ValueError`` when a concrete solve stopped above the tolerance; under ``jit``
            the returned ``cg`` says whether it converged, by its ``residual_norm``,
            ``iterations`` and ``nonpositive_curvature``).

    Returns:
        ``(direction, cg)``: the natural gradient as a pytree like ``params``, and the
        :class:`CGResult` of the solve (its ``x`` is the flat direction).
    """
    _check_kl(kl)
    _checks.finite_tree("params", params)
    _checks.finite_tree("grad", grad)
    _check_like("grad", grad, params)
    _check_nonneg("damping", damping)
    _check_on_nonpositive(on_nonpositive)
    flat_g, unravel = ravel_pytree(grad)
    fvp = fisher_operator(kl, params, damping=damping)
    cg = conjugate_gradient(
        fvp, flat_g, tol=tol, max_iter=max_iter, on_nonpositive=on_nonpositive, insist=insist
    )
    return unravel(cg.x), cg


class NaturalStep(NamedTuple):
    """Output of :func:`natural_step`.

    Attributes:
        params: the new parameters θ + α s, a pytree like the old ones.
        direction: s ≈ (F + λI)⁻¹ ∇J(θ), flat, shape [n].
        step_size: α, a scalar.
        predicted_kl: ½ α² sᵀ F s, the second-order model of the KL of the step
            (F without damping).
        cg: the :class:`CGResult` of the solve.
    """

    params: object
    direction: jax.Array
    step_size: jax.Array
    predicted_kl: jax.Array
    cg: CGResult


def natural_step(
    kl: KLFn,
    params,
    grad,
    *,
    step_size=None,
    max_kl=None,
    damping=0.0,
    tol=1e-10,
    max_iter: int = 10,
    on_nonpositive: str = "raise",
    insist: bool = False,
) -> NaturalStep:
    r"""One natural-gradient ascent step θ ← θ + α s, s = (F(θ) + λI)⁻¹ ∇J(θ).

    Give exactly one of ``step_size`` (a fixed α > 0: Kakade 2001's natural policy
    gradient) or ``max_kl`` (δ > 0: the adaptive α = √(2δ / sᵀFs) of
    :func:`kl_step_size`, so that the second-order KL of every step is δ, the step
    TRPO refines with a line search; Schulman et al. 2015). Pure and jittable.

    Args:
        kl, params, grad, damping, tol, max_iter, on_nonpositive, insist: as in
            :func:`natural_direction`.
        step_size: α, or None.
        max_kl: δ, or None.

    Returns:
        a :class:`NaturalStep`.
    """
    if (step_size is None) == (max_kl is None):
        raise ValueError(
            "give exactly one of step_size (a fixed α) and max_kl (the KL δ of "
            f"each step), got step_size={step_size!r}, max_kl={max_kl!r}"
        )
    if step_size is not None:
        _checks.positive("step_size", step_size)
    else:
        _checks.positive("max_kl", max_kl)
    _check_kl(kl)
    _checks.finite_tree("params", params)
    _checks.finite_tree("grad", grad)
    _check_like("grad", grad, params)
    _check_nonneg("damping", damping)
    _check_on_nonpositive(on_nonpositive)
    flat_g, unravel_g = ravel_pytree(grad)
    flat, unravel = ravel_pytree(params)
    fisher = fisher_operator(kl, params)
    damped = lambda v: fisher(v) + damping * v  # noqa: E731
    cg = conjugate_gradient(
        damped,
        flat_g.astype(flat.dtype),
        tol=tol,
        max_iter=max_iter,
        on_nonpositive=on_nonpositive,
        insist=insist,
    )
    s = cg.x
    Fs = fisher(s)
    alpha = kl_step_size(s, Fs, max_kl) if step_size is None else jnp.asarray(step_size, s.dtype)
    predicted = 0.5 * alpha**2 * (s @ Fs)
    return NaturalStep(unravel(flat + alpha * s), s, alpha, predicted, cg)
