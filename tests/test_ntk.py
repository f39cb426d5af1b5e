"""rlbook.ntk against independent references: explicit Jacobians, plain numpy, np.roots."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlbook import mdp, nets, ntk


def linear_model(params, phi):
    return phi @ params["w"] + params["b"]


def mlp_q(params, x):
    return nets.mlp_apply(params, x)


def small_mlp(seed=0, sizes=(3, 5, 4, 2)):
    return nets.mlp_init(jax.random.PRNGKey(seed), list(sizes), dtype=jnp.float64)


def explicit_jacobian(f, params, *args):
    """Forward mode, one leaf at a time, flattened in ravel_pytree's leaf order."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    blocks = []
    for i, leaf in enumerate(leaves):

        def f_leaf(x, i=i):
            new = list(leaves)
            new[i] = x
            return jnp.ravel(f(jax.tree_util.tree_unflatten(treedef, new), *args))

        J = jax.jacfwd(f_leaf)(leaf)
        blocks.append(np.asarray(J).reshape(J.shape[0], -1))
    return np.concatenate(blocks, axis=1)


def test_ntk_of_a_linear_model_is_phi_phi_transpose():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(6, 3))
    params = {"w": jnp.asarray(rng.normal(size=3)), "b": jnp.zeros(())}
    K = ntk.empirical_ntk(linear_model, params, phi)
    # the bias is a parameter with gradient 1 for every output
    np.testing.assert_allclose(K, phi @ phi.T + 1.0, atol=1e-12)


def test_ntk_equals_an_explicit_jacobian_product():
    params = small_mlp()
    x = np.random.default_rng(1).normal(size=(7, 3))
    J = explicit_jacobian(mlp_q, params, x)
    np.testing.assert_allclose(ntk.jacobian(mlp_q, params, x), J, atol=1e-12)
    np.testing.assert_allclose(ntk.empirical_ntk(mlp_q, params, x), J @ J.T, atol=1e-12)


def test_ntk_against_finite_differences():
    params = small_mlp(2)
    x = np.random.default_rng(2).normal(size=(4, 3))
    theta, unravel = jax.flatten_util.ravel_pytree(params)
    f = lambda t: np.ravel(mlp_q(unravel(t), x))  # noqa: E731
    h = 1e-6
    J = np.stack(
        [(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(theta.size)], axis=1
    )
    np.testing.assert_allclose(ntk.empirical_ntk(mlp_q, params, x), J @ J.T, rtol=1e-6, atol=1e-8)


def test_semi_gradient_step_is_theta_plus_alpha_J_transpose_D_delta():
    params = small_mlp(3)
    x = np.random.default_rng(3).normal(size=(5, 3))
    rng = np.random.default_rng(4)
    rho, delta = rng.dirichlet(np.ones(10)).reshape(5, 2), rng.normal(size=(5, 2))
    new = ntk.semi_gradient_step(mlp_q, params, rho, delta, 0.3, x)
    J = explicit_jacobian(mlp_q, params, x)
    want = jax.flatten_util.ravel_pytree(params)[0] + 0.3 * J.T @ (rho * delta).ravel()
    np.testing.assert_allclose(jax.flatten_util.ravel_pytree(new)[0], want, atol=1e-12)


def test_linearized_step_is_exact_for_linear_models():
    rng = np.random.default_rng(5)
    phi = rng.normal(size=(6, 4))
    params = {"w": jnp.asarray(rng.normal(size=4)), "b": jnp.asarray(0.5)}
    rho, delta = rng.dirichlet(np.ones(6)), rng.normal(size=6)
    K = ntk.empirical_ntk(linear_model, params, phi)
    new = ntk.semi_gradient_step(linear_model, params, rho, delta, 0.7, phi)
    moved = linear_model(new, phi) - linear_model(params, phi)
    np.testing.assert_allclose(moved, ntk.linearized_step(K, rho, delta, 0.7), atol=1e-12)


def np_modulus(K, rho, alpha, gamma):
    M = alpha * K * rho[None, :]
    return max(
        sum(abs((i == j) - M[i, j]) + gamma * abs(M[i, j]) for j in range(len(rho)))
        for i in range(len(rho))
    )


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gamma=st.floats(0.0, 0.99), scale=st.floats(0.05, 1.5))
def test_contraction_modulus_bounds_the_measured_contraction(seed, gamma, scale):
    rng = np.random.default_rng(seed)
    S, A = 4, 2
    n = S * A
    m = mdp.garnet(jax.random.PRNGKey(seed % 1000), S, A, gamma=gamma)
    F = rng.normal(size=(n, 3))
    K = F @ F.T + np.diag(rng.uniform(0.5, 3.0, n))
    rho = rng.dirichlet(np.ones(n))
    alpha = scale / np.max(np.diag(K) * rho)
    beta = float(ntk.contraction_modulus(K, rho, alpha, gamma))
    assert beta == pytest.approx(np_modulus(K, rho, alpha, gamma), rel=1e-12)

    def U(q):
        q = q.reshape(S, A)
        return (
            q + alpha * (K @ (rho * (mdp.bellman_opt_q(m, q) - q).ravel())).reshape(S, A)
        ).ravel()

    for _ in range(20):
        q1, q2 = rng.normal(size=n) * 5, rng.normal(size=n) * 5
        ratio = np.max(np.abs(U(q1) - U(q2))) / np.max(np.abs(q1 - q2))
        assert ratio <= beta * (1 + 1e-10)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gamma=st.floats(0.0, 0.99))
def test_below_unit_step_the_modulus_is_below_one_iff_the_dominance_condition_holds(seed, gamma):
    rng = np.random.default_rng(seed)
    n = 5
    F = rng.normal(size=(n, 2)) * rng.uniform(0, 0.4)
    K = F @ F.T + np.diag(rng.uniform(0.5, 2.0, n))
    rho = rng.dirichlet(np.ones(n) * 5)
    alpha = rng.uniform(0.1, 1.0) / np.max(np.diag(K) * rho)  # α K_ii ρ_i ≤ 1
    beta = float(ntk.contraction_modulus(K, rho, alpha, gamma))
    ratio = float(ntk.dominance_ratio(K, rho))
    M = alpha * K * rho[None, :]
    closed = 1 - np.min((1 - gamma) * np.diag(M) - (1 + gamma) * (np.abs(M).sum(1) - np.diag(M)))
    assert beta == pytest.approx(closed, abs=1e-12)
    assert (beta < 1) == (ratio < (1 - gamma) / (1 + gamma))


def test_dominance_ratio_against_numpy():
    rng = np.random.default_rng(6)
    F = rng.normal(size=(4, 4))
    K, rho = F @ F.T, rng.dirichlet(np.ones(4))
    want = max(
        sum(abs(K[i, j]) * rho[j] for j in range(4) if j != i) / (K[i, i] * rho[i])
        for i in range(4)
    )
    assert float(ntk.dominance_ratio(K, rho)) == pytest.approx(want, rel=1e-12)


def test_preqn_moves_the_batch_by_alpha_delta():
    rng = np.random.default_rng(7)
    # linear model with more parameters than points: the step is exact
    phi = rng.normal(size=(5, 9))
    params = {"w": jnp.asarray(rng.normal(size=9)), "b": jnp.asarray(0.0)}
    delta = rng.normal(size=5)
    new = ntk.preqn_step(linear_model, params, delta, 0.4, phi)
    np.testing.assert_allclose(
        linear_model(new, phi) - linear_model(params, phi), 0.4 * delta, atol=1e-10
    )
    # an MLP: J times the direction is δ exactly; the function moves by αδ + O(α²)
    params = small_mlp(8, (3, 16, 1))
    x = rng.normal(size=(6, 3))
    f = lambda p, x: mlp_q(p, x)[:, 0]  # noqa: E731
    J = np.asarray(ntk.jacobian(f, params, x))
    np.testing.assert_allclose(
        J @ ntk.preqn_direction(J, delta[:5].repeat(2)[:6]), delta[:5].repeat(2)[:6], atol=1e-9
    )
    d6 = rng.normal(size=6)
    errs = []
    for a in (1e-2, 5e-3):
        new = ntk.preqn_step(f, params, d6, a, x)
        errs.append(np.max(np.abs(f(new, x) - f(params, x) - a * d6)))
    assert 3.0 < errs[0] / errs[1] < 5.0  # quadratic remainder


def test_preqn_direction_is_the_pseudoinverse_and_the_damped_least_squares_solution():
    rng = np.random.default_rng(9)
    J, delta = rng.normal(size=(4, 10)), rng.normal(size=4)
    np.testing.assert_allclose(ntk.preqn_direction(J, delta), np.linalg.pinv(J) @ delta, atol=1e-12)
    lam_rel = 0.1
    lam = lam_rel * np.trace(J @ J.T) / 4
    d = ntk.preqn_direction(J, delta, lam_rel)
    # minimizer of ‖J d − δ‖² + λ‖d‖²: (JᵀJ + λI) d = Jᵀ δ
    np.testing.assert_allclose((J.T @ J + lam * np.eye(10)) @ d, J.T @ delta, atol=1e-10)
    K = J @ J.T
    np.testing.assert_allclose(J @ d, K @ np.linalg.solve(K + lam * np.eye(4), delta), atol=1e-10)


def test_linear_td_against_numpy():
    m = mdp.garnet(jax.random.PRNGKey(1), 5, 2, gamma=0.8)
    rng = np.random.default_rng(10)
    pi = rng.dirichlet(np.ones(2), size=5)
    phi, d = rng.normal(size=(5, 3)), rng.dirichlet(np.ones(5))
    A, b = ntk.linear_td(m, pi, phi, d)
    P = np.asarray(m.P)
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = (pi * np.asarray(m.r)).sum(1)
    np.testing.assert_allclose(A, phi.T @ np.diag(d) @ (np.eye(5) - 0.8 * P_pi) @ phi, atol=1e-12)
    np.testing.assert_allclose(b, phi.T @ np.diag(d) @ r_pi, atol=1e-12)


def test_heavy_ball_rate_against_polynomial_roots_and_the_companion_matrix():
    rng = np.random.default_rng(11)
    n = 4
    M = rng.normal(size=(n, n)) * 0.3 + np.eye(n)
    alpha, beta = 0.4, 0.6
    eig = np.linalg.eigvals(M)
    rates = np.asarray(ntk.heavy_ball_rate(eig, alpha, beta))
    for lam, r in zip(eig, rates, strict=True):
        assert r == pytest.approx(np.max(np.abs(np.roots([1, -(1 + beta - alpha * lam), beta]))))
    C = np.block([[(1 + beta) * np.eye(n) - alpha * M, -beta * np.eye(n)], [np.eye(n), 0 * M]])
    assert rates.max() == pytest.approx(np.max(np.abs(np.linalg.eigvals(C))), rel=1e-10)


def test_heavy_ball_roots_are_the_companion_matrix_eigenvalues():
    """Over random M, α, β: the 2n roots are the eigenvalues of the 2n × 2n iteration."""
    rng = np.random.default_rng(12)
    for _ in range(50):
        n = int(rng.integers(1, 7))
        M = rng.normal(size=(n, n)) * rng.uniform(0.1, 1.0) + rng.uniform(0, 2) * np.eye(n)
        alpha, beta = rng.uniform(0.01, 1.0), rng.uniform(0.0, 0.99)
        eig = np.linalg.eigvals(M)
        roots = np.asarray(ntk.heavy_ball_roots(eig, alpha, beta))
        assert roots.shape == (n, 2)
        C = np.block([[(1 + beta) * np.eye(n) - alpha * M, -beta * np.eye(n)], [np.eye(n), 0 * M]])
        companion = np.linalg.eigvals(C)
        # every root is an eigenvalue of C and every eigenvalue of C is a root; 1e-6 because
        # a nearly repeated root of a non-normal C is found only to about √eps ≈ 1e-8 × ‖C‖
        d = np.abs(roots.ravel()[:, None] - companion[None, :])
        assert d.min(1).max() < 1e-6 and d.min(0).max() < 1e-6
        np.testing.assert_allclose(np.prod(roots, -1), beta, atol=1e-12)  # Vieta
        np.testing.assert_allclose(np.sum(roots, -1), 1 + beta - alpha * eig, atol=1e-12)
    # broadcast over eigenvalues, step sizes and momenta
    shape = ntk.heavy_ball_roots(np.ones((3, 1, 4)), np.ones((3, 1, 1)), np.ones((1, 5, 1))).shape
    assert shape == (3, 5, 4, 2)


def test_heavy_ball_never_rescues_a_wrong_signed_eigenvalue():
    """Theorem tdd-thm-momentum-wrong-sign: for Re λ ≤ 0, λ ≠ 0, α > 0, 0 ≤ β < 1 the larger
    root modulus is at least |1 − αλ| (the β = 0 rate), which exceeds 1; np.roots is the
    reference. With Re λ > 0 the same α, β can give a rate below 1 (the bound is specific)."""
    rng = np.random.default_rng(13)
    n = 2000
    lam = -rng.exponential(0.5, n) + 1j * rng.normal(0, 2, n)
    lam[: n // 10] = -rng.exponential(0.5, n // 10)  # real
    lam[n // 10 : n // 5] = 1j * rng.normal(0, 2, n // 10)  # imaginary
    alpha, beta = 10.0 ** rng.uniform(-3, 1, n), rng.uniform(0, 1, n)
    rates = np.asarray(ntk.heavy_ball_rate(lam, alpha, beta))
    ref = np.array(
        [
            np.abs(np.roots([1, -(1 + b - a * x), b])).max()
            for x, a, b in zip(lam, alpha, beta, strict=True)
        ]
    )
    np.testing.assert_allclose(rates, ref, rtol=1e-9)
    plain = np.abs(1 - alpha * lam)
    assert np.all(plain > 1)
    assert np.all(ref >= plain * (1 - 1e-12))
    assert np.all(plain >= 1 + alpha * np.abs(lam.real) - 1e-12)
    flipped = -lam[lam.real < -0.1].conj()  # Re λ ≥ 0.1: a small step converges
    assert np.max(np.asarray(ntk.heavy_ball_rate(flipped, 1e-4, 0.5))) < 1


def test_padded_mlp_is_the_narrow_mlp():
    key = jax.random.PRNGKey(12)
    full = ntk.padded_mlp_init(key, 3, 2, 2, 8, 8, dtype=jnp.float64)
    ref = nets.mlp_init(key, [3, 8, 8, 2], dtype=jnp.float64)
    for a, b in zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(ref), strict=True):
        np.testing.assert_array_equal(a, b)
    padded = jax.jit(ntk.padded_mlp_init, static_argnums=(1, 2, 3, 4), static_argnames="dtype")(
        key, 3, 2, 2, 8, jnp.asarray(5), dtype=jnp.float64
    )
    narrow = [
        {"w": padded[0]["w"][:, :5], "b": padded[0]["b"][:5]},
        {"w": padded[1]["w"][:5, :5], "b": padded[1]["b"][:5]},
        {"w": padded[2]["w"][:5], "b": padded[2]["b"]},
    ]
    x = np.random.default_rng(12).normal(size=(6, 3))
    np.testing.assert_allclose(mlp_q(padded, x), mlp_q(narrow, x), atol=1e-12)
    np.testing.assert_allclose(
        ntk.empirical_ntk(mlp_q, padded, x), ntk.empirical_ntk(mlp_q, narrow, x), atol=1e-12
    )
    # the padding gets zero gradient, so it stays zero under training
    g = jax.grad(lambda p: jnp.sum(mlp_q(p, x) ** 2))(padded)
    assert np.all(np.asarray(g[0]["w"][:, 5:]) == 0) and np.all(np.asarray(g[1]["w"][5:]) == 0)
    assert np.all(np.asarray(g[1]["w"][:, 5:]) == 0) and np.all(np.asarray(g[2]["w"][5:]) == 0)
    # LeCun scaling uses the unpadded fan-in
    assert np.std(np.asarray(narrow[1]["w"])) * np.sqrt(5) == pytest.approx(1.0, abs=0.5)


def test_bad_input_raises_value_error_naming_the_argument():
    K, rho = np.eye(3), np.full(3, 1 / 3)
    with pytest.raises(ValueError, match="f must be callable"):
        ntk.jacobian(3, {"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="K must be square"):
        ntk.contraction_modulus(np.ones((3, 2)), rho, 1.0, 0.9)
    with pytest.raises(ValueError, match="rho must have shape"):
        ntk.contraction_modulus(K, np.ones(2), 1.0, 0.9)
    with pytest.raises(ValueError, match="rho must be finite and >= 0"):
        ntk.dominance_ratio(K, np.array([0.5, -0.1, 0.6]))
    with pytest.raises(ValueError, match="alpha"):
        ntk.linearized_step(K, rho, np.zeros(3), 0.0)
    with pytest.raises(ValueError, match="gamma must lie in"):
        ntk.contraction_modulus(K, rho, 1.0, 1.0)
    with pytest.raises(ValueError, match="delta must have shape"):
        ntk.linearized_step(K, rho, np.zeros(4), 1.0)
    with pytest.raises(ValueError, match="damping"):
        ntk.preqn_direction(np.ones((2, 3)), np.ones(2), -1.0)
    with pytest.raises(ValueError, match="delta must have shape"):
        ntk.preqn_direction(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="rho and delta"):
        ntk.semi_gradient_step(
            linear_model,
            {"w": jnp.ones(2), "b": jnp.zeros(())},
            np.ones(2),
            np.ones(3),
            0.1,
            np.ones((3, 2)),
        )
    with pytest.raises(ValueError, match="width must be an integer"):
        ntk.padded_mlp_init(jax.random.PRNGKey(0), 2, 1, 1, 4, 5)
    with pytest.raises(ValueError, match="beta"):
        ntk.heavy_ball_rate(np.ones(2), 0.1, -0.5)
    m = mdp.garnet(jax.random.PRNGKey(0), 3, 2)
    with pytest.raises(ValueError, match="phi must have 3 rows"):
        ntk.linear_td(m, mdp.uniform_policy(m), np.ones((4, 2)), np.full(3, 1 / 3))
    with pytest.raises(ValueError, match="d must have shape"):
        ntk.linear_td(m, mdp.uniform_policy(m), np.ones((3, 2)), np.full(4, 1 / 4))
