"""rlbook.natural against independent references: the explicit Fisher matrix
E[∇ log π ∇ log πᵀ], closed-form Gaussian Fisher matrices, jax.scipy's CG and dense solves."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

from rlbook import distributions as D
from rlbook import natural, nets

# ----------------------------------------------------------------------------- fixtures


def softmax_setup(seed=0, n_states=7, obs_dim=3, n_actions=4):
    """A small softmax MLP policy and a batch of states, float64."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    params = nets.mlp_init(k1, [obs_dim, 5, n_actions], dtype=jnp.float64)
    params[-1]["w"] = params[-1]["w"] + 0.3  # away from uniform
    obs = jax.random.normal(k2, (n_states, obs_dim), jnp.float64)

    def kl(p_old, p_new):
        lo, ln = nets.mlp_apply(p_old, obs), nets.mlp_apply(p_new, obs)
        return jnp.mean(jax.vmap(D.categorical_kl)(lo, ln))

    return params, obs, kl


def explicit_softmax_fisher(params, obs):
    """E_s E_{a∼π} [∇ log π(a|s) ∇ log π(a|s)ᵀ], the mean over actions done exactly, in numpy."""
    scores, logp = _scores(params, obs)  # [S, A, n], [S, A]
    scores, probs = np.asarray(scores), np.exp(np.asarray(logp))
    return np.einsum("sai,sa,saj->ij", scores, probs, scores) / len(obs)


@jax.jit
def _scores(params, obs):
    flat, unravel = ravel_pytree(params)

    def logp(x, o):
        return jax.nn.log_softmax(nets.mlp_apply(unravel(x), o))

    return jax.vmap(jax.jacobian(logp), (None, 0))(flat, obs), jax.vmap(logp, (None, 0))(flat, obs)


def random_spd(key, n, cond):
    """Q diag(λ) Qᵀ with λ log-spaced in [1, cond]."""
    q, _ = jnp.linalg.qr(jax.random.normal(key, (n, n)))
    lam = jnp.logspace(0.0, jnp.log10(cond), n)
    return (q * lam) @ q.T


# ----------------------------------------------------------------------------- Fisher products


def test_fvp_equals_explicit_fisher_times_v():
    params, obs, kl = softmax_setup()
    F = explicit_softmax_fisher(params, obs)
    v = np.random.default_rng(0).normal(size=F.shape[0])

    @jax.jit
    def products(p, v):
        return (
            natural.fisher_vector_product(kl, p, v),
            natural.fisher_operator(kl, p)(v),
            natural.fisher_matrix(kl, p),
            natural.fisher_vector_product(kl, p, v, damping=0.5),
            natural.fisher_operator(kl, p, damping=0.5)(v),
        )

    fvp, op, matrix, damped_fvp, damped_op = products(params, v)
    np.testing.assert_allclose(fvp, F @ v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(op, F @ v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(matrix, F, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(damped_fvp, F @ v + 0.5 * v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(damped_op, F @ v + 0.5 * v, rtol=1e-10, atol=1e-12)


def test_fvp_of_a_gaussian_policy_matches_its_closed_form_fisher():
    # Mean μ(s) = W s + c, a free log σ vector: F = E_s[J_μᵀ diag(σ⁻²) J_μ] ⊕ 2 I on log σ.
    rng = np.random.default_rng(1)
    obs = jnp.asarray(rng.normal(size=(6, 3)))
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 2))),
        "c": jnp.asarray(rng.normal(size=2)),
        "log_std": jnp.asarray([-0.3, 0.4]),
    }

    def kl(p, q):
        def one(o):
            return D.gaussian_kl(
                o @ p["w"] + p["c"], p["log_std"], o @ q["w"] + q["c"], q["log_std"]
            )

        return jnp.mean(jax.vmap(one)(obs))

    # ravel_pytree orders the leaves by key: c (2), log_std (2), w (3 × 2, row-major).
    prec = np.exp(-2 * np.asarray(params["log_std"]))
    F = np.zeros((10, 10))
    for o in np.asarray(obs):
        J = np.zeros((2, 10))  # ∂μ / ∂θ
        J[:, 0:2] = np.eye(2)
        for i in range(3):
            for j in range(2):
                J[j, 4 + 2 * i + j] = o[i]
        F += J.T @ (prec[:, None] * J) / len(obs)
    F[2:4, 2:4] += 2 * np.eye(2)
    v = rng.normal(size=10)
    fvp = jax.jit(lambda p, v: natural.fisher_vector_product(kl, p, v))(params, v)
    np.testing.assert_allclose(fvp, F @ v, rtol=1e-10)


def test_fvp_works_under_jit_with_float32_parameters():
    params, obs, kl = softmax_setup()
    params32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), params)
    obs32 = obs.astype(jnp.float32)

    def kl32(p, q):
        logits_p, logits_q = nets.mlp_apply(p, obs32), nets.mlp_apply(q, obs32)
        return jnp.mean(jax.vmap(D.categorical_kl)(logits_p, logits_q))

    v = jnp.ones(ravel_pytree(params)[0].size, jnp.float32)
    out = jax.jit(lambda p, v: natural.fisher_vector_product(kl32, p, v))(params32, v)
    assert out.dtype == jnp.float32
    want = explicit_softmax_fisher(params, obs) @ np.ones(v.size)
    np.testing.assert_allclose(out, want, rtol=2e-4, atol=1e-6)


# ----------------------------------------------------------------------------- conjugate gradient


def test_cg_matches_jax_scipy_cg_and_a_dense_solve():
    A = random_spd(jax.random.PRNGKey(2), 30, 1e3)
    b = jax.random.normal(jax.random.PRNGKey(3), (30,))
    ours = natural.conjugate_gradient(lambda v: A @ v, b, tol=1e-12, max_iter=200)
    ref, _ = jax.scipy.sparse.linalg.cg(lambda v: A @ v, b, tol=1e-12, maxiter=200)
    np.testing.assert_allclose(ours.x, np.linalg.solve(np.asarray(A), np.asarray(b)), rtol=1e-8)
    np.testing.assert_allclose(ours.x, ref, rtol=1e-8)
    assert not bool(ours.nonpositive_curvature)
    assert ours.residual_norm <= 1e-12 * jnp.linalg.norm(b)
    np.testing.assert_allclose(jnp.linalg.norm(b - A @ ours.x), ours.residual_norm, atol=1e-9)
    # The matrix itself and a starting point are accepted too.
    from_matrix = natural.conjugate_gradient(A, b, tol=1e-12, max_iter=200, x0=jnp.ones(30))
    np.testing.assert_allclose(from_matrix.x, ours.x, rtol=1e-8)


def test_readable_loop_and_while_loop_agree_iterate_by_iterate():
    A = random_spd(jax.random.PRNGKey(4), 12, 50.0)
    b = jax.random.normal(jax.random.PRNGKey(5), (12,))
    for k in (1, 3, 12):
        fast = natural.conjugate_gradient(A, b, tol=0.0, max_iter=k)
        slow, iterates = natural.conjugate_gradient_loop(A, b, tol=0.0, max_iter=k)
        assert int(fast.iterations) == int(slow.iterations) == k == len(iterates) - 1
        # fused against op-by-op rounding
        np.testing.assert_allclose(fast.x, slow.x, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(fast.residual_norm, slow.residual_norm, rtol=1e-6, atol=1e-7)
    # and they stop at the same iteration under a tolerance
    fast = natural.conjugate_gradient(A, b, tol=1e-3, max_iter=100)
    slow, _ = natural.conjugate_gradient_loop(A, b, tol=1e-3, max_iter=100)
    assert int(fast.iterations) == int(slow.iterations) < 12


def test_cg_error_meets_the_condition_number_bound():
    kappa = 400.0
    A = random_spd(jax.random.PRNGKey(6), 40, kappa)
    b = jax.random.normal(jax.random.PRNGKey(7), (40,))
    x_star = jnp.linalg.solve(A, b)
    _, iterates = natural.conjugate_gradient_loop(A, b, tol=1e-13, max_iter=60)
    rate = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    e0 = float(jnp.sqrt(x_star @ A @ x_star))
    for k, x in enumerate(iterates):
        e = x - x_star
        assert float(jnp.sqrt(e @ A @ e)) <= 2 * rate**k * e0 * (1 + 1e-9) + 1e-12


def test_cg_finishes_in_as_many_iterations_as_distinct_eigenvalues():
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.PRNGKey(8), (50, 50)))
    lam = jnp.repeat(jnp.array([1.0, 3.0, 10.0]), jnp.array([20, 20, 10]), total_repeat_length=50)
    A = (q * lam) @ q.T
    b = jax.random.normal(jax.random.PRNGKey(9), (50,))
    res = natural.conjugate_gradient(A, b, tol=1e-10, max_iter=50)
    assert int(res.iterations) == 3
    np.testing.assert_allclose(res.x, jnp.linalg.solve(A, b), rtol=1e-9)


def test_cg_on_a_singular_psd_matrix_returns_the_minimum_norm_solution():
    rng = np.random.default_rng(10)
    B = rng.normal(size=(8, 5))
    A = B @ B.T  # rank 5
    b = A @ rng.normal(size=8)  # in the range
    res = natural.conjugate_gradient(jnp.asarray(A), jnp.asarray(b), tol=1e-12, max_iter=50)
    np.testing.assert_allclose(res.x, np.linalg.pinv(A) @ b, rtol=1e-7, atol=1e-9)


def test_cg_on_an_indefinite_matrix_raises_or_stops_as_documented():
    A = jnp.diag(jnp.array([2.0, 1.0, -1.0]))
    b = jnp.array([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="not positive definite"):
        natural.conjugate_gradient(A, b)
    with pytest.raises(ValueError, match="not positive definite"):
        natural.conjugate_gradient_loop(A, b)
    stopped = natural.conjugate_gradient(A, b, on_nonpositive="stop")
    assert bool(stopped.nonpositive_curvature)
    slow, _ = natural.conjugate_gradient_loop(A, b, on_nonpositive="stop")
    np.testing.assert_allclose(stopped.x, slow.x)
    # under jit no Python error can be raised: the flag reports it
    flag = jax.jit(lambda A, b: natural.conjugate_gradient(A, b).nonpositive_curvature)(A, b)
    assert bool(flag)
    # A negative-definite matrix stops before the first step: x stays at x₀ = 0.
    neg = natural.conjugate_gradient(-jnp.eye(3), b, on_nonpositive="stop")
    np.testing.assert_array_equal(neg.x, 0.0)


_solve8 = jax.jit(lambda A, b: natural.conjugate_gradient(A, b, tol=1e-12, max_iter=40))


@settings(max_examples=25, deadline=None)
@given(eigs=st.lists(st.floats(1e-3, 1e3), min_size=8, max_size=8), seed=st.integers(0, 2**16))
def test_cg_solves_every_spd_system(eigs, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    A, b = (q * np.asarray(eigs)) @ q.T, rng.normal(size=8)
    res = _solve8(A, b)
    assert not bool(res.nonpositive_curvature)
    np.testing.assert_allclose(
        res.x, np.linalg.solve(A, b), rtol=1e-6, atol=1e-6 * np.abs(res.x).max()
    )


# ----------------------------------------------------------------------------- natural steps


def gaussian_bandit(param):
    """One Gaussian policy N(μ, σ²) under two parameterizations: θ = (μ, log σ) and φ = (μ, σ).

    J = E[−(a − 1)²] = −(μ − 1)² − σ²."""
    to_ms = {"log": lambda p: (p[0], jnp.exp(p[1])), "std": lambda p: (p[0], p[1])}[param]

    def J(p):
        mu, sigma = to_ms(p)
        return -((mu - 1.0) ** 2) - sigma**2

    def kl(p, q):
        (mp, sp), (mq, sq) = to_ms(p), to_ms(q)
        return D.gaussian_kl(mp, jnp.log(sp), mq, jnp.log(sq))

    return to_ms, J, kl


def test_natural_direction_is_invariant_to_the_parameterization():
    mu, sigma = 0.3, 0.7
    moves = {}
    for param, p in (("log", jnp.array([mu, np.log(sigma)])), ("std", jnp.array([mu, sigma]))):
        to_ms, J, kl = gaussian_bandit(param)
        # jacobian and jit call these lambdas at once, with this iteration's to_ms, J and kl
        jac = jax.jacobian(lambda p: jnp.stack(to_ms(p)))(p)  # noqa: B023  d(μ, σ)/dp
        s, cg = jax.jit(
            lambda p: natural.natural_direction(kl, p, jax.grad(J)(p), max_iter=5)  # noqa: B023
        )(p)
        assert not bool(cg.nonpositive_curvature)
        moves[param] = (jac @ s, jac @ jax.grad(J)(p))  # tangent in (μ, σ) space
    np.testing.assert_allclose(moves["log"][0], moves["std"][0], rtol=1e-12)
    # closed form: F⁻¹ in (μ, σ) is diag(σ², σ²/2); ∇J = (−2(μ − 1), −2σ)
    np.testing.assert_allclose(
        moves["std"][0], [sigma**2 * -2 * (mu - 1), sigma**2 / 2 * -2 * sigma], rtol=1e-12
    )
    assert not np.allclose(moves["log"][1], moves["std"][1], rtol=0.1)  # vanilla steps differ


def test_natural_step_fixed_and_adaptive():
    params, obs, kl = softmax_setup(seed=3)
    flat, unravel = ravel_pytree(params)
    # a policy gradient (it lies in the range of F): J = E_s Σ_a π(a|s) R(s, a)
    R = jnp.asarray(np.random.default_rng(3).normal(size=(obs.shape[0], 4)))
    g = jax.grad(lambda p: jnp.mean(jnp.sum(jax.nn.softmax(nets.mlp_apply(p, obs)) * R, -1)))(
        params
    )
    F = explicit_softmax_fisher(params, obs)
    lam = 0.1
    s_dense = np.linalg.solve(F + lam * np.eye(flat.size), np.asarray(ravel_pytree(g)[0]))

    def step(p, g, **kw):
        return natural.natural_step(kl, p, g, damping=lam, max_iter=200, tol=1e-12, **kw)

    fixed = jax.jit(partial(step, step_size=0.1))(params, g)
    np.testing.assert_allclose(fixed.direction, s_dense, rtol=1e-6)
    np.testing.assert_allclose(ravel_pytree(fixed.params)[0], flat + 0.1 * s_dense, rtol=1e-6)
    adaptive = jax.jit(lambda p, g, delta: step(p, g, max_kl=delta))
    for delta in (1e-2, 1e-4):  # measured |KL/δ − 1| ≈ 0.4 √δ
        out = adaptive(params, g, delta)
        np.testing.assert_allclose(out.predicted_kl, delta, rtol=1e-10)
        beta = np.sqrt(2 * delta / (s_dense @ F @ s_dense))
        np.testing.assert_allclose(out.step_size, beta, rtol=1e-6)
        # the true KL agrees with its quadratic model up to O(δ^{3/2})
        actual = kl(params, out.params)
        assert abs(actual / delta - 1) < np.sqrt(delta), (delta, actual)
    # a zero gradient takes no step
    zero = adaptive(params, jax.tree_util.tree_map(jnp.zeros_like, params), 0.01)
    np.testing.assert_array_equal(ravel_pytree(zero.params)[0], flat)


def test_kl_step_size_closed_form():
    s, Fs = jnp.array([1.0, 2.0]), jnp.array([3.0, 1.0])  # sᵀFs = 5
    np.testing.assert_allclose(natural.kl_step_size(s, Fs, 0.1), np.sqrt(0.2 / 5))
    assert natural.kl_step_size(jnp.zeros(2), jnp.zeros(2), 0.1) == 0.0


# ----------------------------------------------------------------------------- input errors


def test_bad_inputs_raise_value_errors_naming_the_argument():
    params = [{"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}]  # a tiny linear softmax policy

    def kl(p, q):
        return D.categorical_kl(p[0]["w"][0] + p[0]["b"], q[0]["w"][0] + q[0]["b"])

    n = 6
    A, b = jnp.eye(3), jnp.ones(3)
    cases = [
        (lambda: natural.fisher_vector_product(kl, params, jnp.ones(n + 1)), "v"),
        (lambda: natural.fisher_vector_product(kl, params, jnp.ones((n, 1))), "v"),
        (lambda: natural.fisher_vector_product(kl, params, jnp.ones(n), damping=-1.0), "damping"),
        (lambda: natural.fisher_vector_product("kl", params, jnp.ones(n)), "kl"),
        (lambda: natural.fisher_operator(kl, params)(jnp.ones(n - 1)), "v"),
        (lambda: natural.fisher_matrix(None, params), "kl"),
        (lambda: natural.conjugate_gradient(jnp.ones((3, 2)), b), "matvec"),
        (
            lambda: natural.conjugate_gradient(jnp.array([[1.0, 2.0], [0.0, 1.0]]), jnp.ones(2)),
            "symmetric",
        ),
        (lambda: natural.conjugate_gradient("A", b), "matvec"),
        (lambda: natural.conjugate_gradient(A, jnp.ones(4)), "b"),
        (lambda: natural.conjugate_gradient(A, jnp.ones((3, 1))), "b"),
        (lambda: natural.conjugate_gradient(A, b, x0=jnp.ones(2)), "x0"),
        (lambda: natural.conjugate_gradient(A, b, tol=-1.0), "tol"),
        (lambda: natural.conjugate_gradient(A, b, atol=np.nan), "atol"),
        (lambda: natural.conjugate_gradient(A, b, max_iter=0), "max_iter"),
        (lambda: natural.conjugate_gradient(A, b, on_nonpositive="ignore"), "on_nonpositive"),
        (lambda: natural.conjugate_gradient_loop(A, b, max_iter=2.5), "max_iter"),
        (lambda: natural.kl_step_size(jnp.ones(2), jnp.ones(3), 0.1), "fisher_direction"),
        (lambda: natural.kl_step_size(jnp.ones(2), jnp.ones(2), 0.0), "max_kl"),
        (lambda: natural.natural_direction(kl, params, params[:1]), "grad"),
        (
            lambda: natural.natural_direction(
                kl, params, [{"w": layer["w"][:1], "b": layer["b"]} for layer in params]
            ),
            "grad",
        ),
        (lambda: natural.natural_step(kl, params, params), "step_size"),
        (lambda: natural.natural_step(kl, params, params, step_size=0.1, max_kl=0.1), "max_kl"),
        (lambda: natural.natural_step(kl, params, params, step_size=-0.1), "step_size"),
        (lambda: natural.natural_step(kl, params, params, max_kl=-0.1), "max_kl"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()
