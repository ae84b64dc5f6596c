"""NNLS / box-QP kernel vs its NumPy reference vs SciPy on random problems (pure math, no data)."""
from __future__ import annotations

import numpy as np
import pytest

from rtface.kernels.nnls import (
    box_qp_kernel,
    box_qp_ref,
    lsq_box_ref,
    nnls_kernel,
    nnls_ref,
    nnls_solve,
    prepare_gram,
)

scipy_opt = pytest.importorskip("scipy.optimize")
from rtface.kernels import jit

jit.load()  # these tests check the numba kernels (a stills run uses the same code as plain Python)


def _ill(rng: np.random.Generator, m: int, k: int, cond: float) -> np.ndarray:
    u, _, vt = np.linalg.svd(rng.normal(size=(m, k)), full_matrices=False)
    return (u * np.logspace(0, -np.log10(cond), min(m, k))) @ vt


def _augmented(A, b, ridge, prior, w):
    k = A.shape[1]
    sw = np.sqrt(w)
    Aa = np.vstack([sw[:, None] * A, np.sqrt(ridge) * np.eye(k)])
    ba = np.concatenate([sw * b, np.sqrt(ridge) * prior])
    return Aa, ba


@pytest.mark.parametrize("case", ["over", "over_ill", "square", "under"])
def test_nonneg_matches_scipy_nnls(case: str) -> None:
    rng = np.random.default_rng({"over": 1, "over_ill": 2, "square": 3, "under": 4}[case])
    for _ in range(40):
        k = int(rng.integers(2, 41))
        m = {"over": 3 * k, "over_ill": 3 * k, "square": k, "under": max(2, k // 2)}[case]
        A = _ill(rng, m, k, 1e5) if case == "over_ill" else rng.normal(size=(m, k))
        b = rng.normal(size=m)
        xs, _ = scipy_opt.nnls(A, b, maxiter=20 * k + 100)
        xk = nnls_solve(A, b, max_iter=500)
        xr = nnls_ref(A, b)
        for x in (xk, xr):
            assert np.all(x >= 0)
        f = lambda x: float(np.sum((A @ x - b) ** 2))  # noqa: E731
        bb = float(b @ b)
        # objective equal to SciPy's within a tiny fraction of ||b||^2 (solutions of under-determined cases differ)
        assert f(xk) <= f(xs) + 1e-8 * bb
        assert f(xr) <= f(xs) + 1e-8 * bb
        if case in ("over", "square"):  # unique solution: compare x
            np.testing.assert_allclose(xk, xs, atol=1e-7 * max(1.0, np.abs(xs).max()))
            np.testing.assert_allclose(xr, xs, atol=1e-7 * max(1.0, np.abs(xs).max()))


def test_bounds_ridge_prior_weights_match_bvls() -> None:
    rng = np.random.default_rng(5)
    for t in range(60):
        k = int(rng.integers(1, 41))
        m = int(rng.integers(max(2, k // 2), 3 * k + 3))
        A = rng.normal(size=(m, k)) if t % 2 else _ill(rng, m, k, 1e4)
        b = 3 * rng.normal(size=m)
        lo = np.zeros(k) if t % 3 else rng.uniform(-1.0, 0.2, k)
        hi = lo + rng.uniform(0.1, 2.0, k)
        if t % 4 == 0:
            hi[rng.random(k) < 0.5] = np.inf
        ridge = (1e-3, 0.1, 1.0)[t % 3]
        prior = rng.uniform(0, 1, k)
        w = rng.uniform(0.1, 2.0, m)
        kw = dict(ridge=ridge, prior=prior, lower=lo, upper=hi, row_weights=w)
        xk = nnls_solve(A, b, **kw)
        xr = nnls_ref(A, b, **kw)
        Aa, ba = _augmented(A, b, ridge, prior, w)
        xs = scipy_opt.lsq_linear(Aa, ba, bounds=(lo, hi), method="bvls", tol=1e-14).x
        assert np.all(xk >= lo) and np.all(xk <= hi)
        np.testing.assert_allclose(xk, xs, atol=1e-6)
        np.testing.assert_allclose(xr, xs, atol=1e-6)


def test_warm_start_gives_same_answer() -> None:
    rng = np.random.default_rng(6)
    A = rng.normal(size=(200, 30))
    b = A @ np.where(rng.random(30) < 0.4, rng.uniform(0, 2, 30), 0.0) + 0.05 * rng.normal(size=200)
    G, AtW = prepare_gram(A, 1e-3)
    lo, hi = np.zeros(30), np.full(30, 1.5)
    zero = np.zeros(30)
    cold, it_cold, _ = nnls_kernel(G, AtW, b, zero, lo, hi, zero, 200, 1e-12)
    for x0 in (cold, cold + 0.3 * rng.normal(size=30), np.full(30, 10.0), np.full(30, np.nan)):
        warm, it_warm, _ = nnls_kernel(G, AtW, b, zero, lo, hi, x0, 200, 1e-12)
        np.testing.assert_allclose(warm, cold, atol=1e-9)
    warm, it_warm, _ = nnls_kernel(G, AtW, b, zero, lo, hi, cold, 200, 1e-12)
    assert it_warm <= it_cold
    np.testing.assert_allclose(nnls_ref(A, b, ridge=1e-3, upper=hi, x0=cold), cold, atol=1e-8)


def test_box_qp_kernel_matches_reference_on_gram() -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        k = int(rng.integers(1, 30))
        M = rng.normal(size=(k + 5, k))
        G = M.T @ M + 0.01 * np.eye(k)
        c = rng.normal(size=k) * 5
        lo = rng.uniform(-1, 0, k)
        hi = lo + rng.uniform(0.5, 3, k)
        xk, _, viol = box_qp_kernel(G, c, lo, hi, np.zeros(k), 200, 1e-12)
        xr = box_qp_ref(G, c, lo, hi)
        np.testing.assert_allclose(xk, xr, atol=1e-7)
        assert viol <= 1e-9 * max(np.abs(c).max(), 1.0)


def test_degenerate_inputs() -> None:
    # zero target -> zero solution; a zero column stays at its lower bound; K = 1
    A = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(nnls_solve(A, np.zeros(3)), [0.0, 0.0])
    x = nnls_solve(A, np.array([2.0, 5.0, 4.0]))
    np.testing.assert_allclose(x, [3.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(nnls_solve(np.ones((4, 1)), -np.ones(4)), [0.0])
    np.testing.assert_allclose(nnls_solve(np.ones((4, 1)), np.ones(4), upper=0.5), [0.5])
    with pytest.raises(ValueError):
        nnls_solve(A, np.ones(3), lower=1.0, upper=0.0)
    with pytest.raises(ValueError):
        prepare_gram(A, ridge=-1.0)
    np.testing.assert_allclose(lsq_box_ref(A, np.array([2.0, 5.0, 4.0])), [3.0, 0.0], atol=1e-12)
