"""Bounded, ridge-regularised, (optionally weighted) linear least squares: numba kernel + NumPy reference.

Problem (all float64)::

    minimise   ||W^(1/2) (A x - b)||^2 + ridge * ||x - prior||^2
    subject to lower <= x <= upper            (per-variable bounds; lower may be -inf, upper +inf)

It is solved on the normal equations: with ``G = A^T W A + ridge I`` and ``c = A^T W b + ridge * prior`` the
problem is the box-constrained quadratic ``min 0.5 x^T G x - c^T x``. ``G`` (K, K) and ``AtW = A^T W`` (K, M) are
built once per basis with :func:`prepare_gram`; per frame only ``c`` changes.

Kernel algorithm (:func:`box_qp_kernel`): rounds of one projected coordinate-descent sweep (which also releases
variables from their bounds) followed by exact Newton steps on the free set (own greedy Cholesky that skips
numerically dependent columns; meant for K up to a few tens). A Newton step is cut by a ratio test at the first
bound it crosses, that variable is fixed there and the step recomputed, until a full step is taken. Every step
decreases the objective. It stops when the KKT violation (largest projected
gradient component) is <= ``tol * |c|_inf`` or after ``max_iter`` rounds.
A warm start close to the answer (previous frame) usually finishes in one or two rounds.

Reference (:func:`nnls_ref`, :func:`box_qp_ref`, :func:`lsq_box_ref`): the primal active-set method (Lawson-Hanson
NNLS generalised to boxes) in plain NumPy, sub-problems solved by ``lstsq`` on the (augmented) design matrix.

Pure functions: any thread may call them. Kernels run as plain Python until numba is loaded (:mod:`rtface.kernels.jit`),
then compile on first call (``cache=True``).
"""
from __future__ import annotations

import numpy as np

from rtface.kernels.jit import Kernel, register


# ----------------------------------------------------------------------------------------------- precompute
def prepare_gram(
    A: np.ndarray, ridge: float = 0.0, row_weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(G, AtW)``: ``G = A^T W A + ridge I`` (K, K) and ``AtW = A^T W`` (K, M), C-contiguous float64.

    ``A`` is (M, K); ``row_weights`` (M,) >= 0 is the diagonal of W (None = all ones); ``ridge`` >= 0.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"prepare_gram: A must be 2-D, got shape {A.shape}")
    if ridge < 0 or not np.isfinite(ridge):
        raise ValueError(f"prepare_gram: ridge must be finite and >= 0, got {ridge}")
    if row_weights is None:
        AtW = A.T.copy()
    else:
        w = np.asarray(row_weights, dtype=np.float64)
        if w.shape != (A.shape[0],) or np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError(f"prepare_gram: row_weights must be ({A.shape[0]},) finite and >= 0")
        AtW = (A * w[:, None]).T.copy()
    G = AtW @ A
    G = 0.5 * (G + G.T)
    G[np.diag_indices_from(G)] += ridge
    return np.ascontiguousarray(G), np.ascontiguousarray(AtW)


def _bounds(k: int, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros(k) if lower is None else np.broadcast_to(np.asarray(lower, dtype=np.float64), (k,)).copy()
    hi = np.full(k, np.inf) if upper is None else np.broadcast_to(np.asarray(upper, dtype=np.float64), (k,)).copy()
    if np.any(lo > hi) or np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
        raise ValueError("bounds: need lower <= upper and no NaN")
    return lo, hi


# ------------------------------------------------------------------------------------------------- kernel
def _kkt_violation(x, g, lo, hi):
    v = 0.0
    for i in range(x.shape[0]):
        if x[i] <= lo[i]:
            e = -g[i]  # at lower bound: may only want to go up
        elif x[i] >= hi[i]:
            e = g[i]  # at upper bound: may only want to go down
        else:
            e = abs(g[i])
        if e > v:
            v = e
    return v


def _newton_free(G, g, x, lo, hi, free, L, d, rel_pivot):
    """Newton direction on the free set: G_FF d = -g_F by a greedy Cholesky that skips (keeps fixed) variables
    whose pivot is <= ``rel_pivot * G_ii`` (numerically dependent columns). Returns the number of variables used
    (their ids in ``free[:n]``, their steps in ``d[:n]``)."""
    k = x.shape[0]
    n = 0
    for i in range(k):
        if not (lo[i] < x[i] < hi[i]):
            continue
        free[n] = i
        for b in range(n):
            s = G[i, free[b]]
            for m in range(b):
                s -= L[n, m] * L[b, m]
            L[n, b] = s / L[b, b]
        s = G[i, i]
        for m in range(n):
            s -= L[n, m] * L[n, m]
        if s > rel_pivot * G[i, i] and s > 0.0:
            L[n, n] = np.sqrt(s)
            n += 1
    for a in range(n):  # forward: L y = -g_F
        s = -g[free[a]]
        for m in range(a):
            s -= L[a, m] * d[m]
        d[a] = s / L[a, a]
    for a in range(n - 1, -1, -1):  # backward: L^T d = y
        s = d[a]
        for m in range(a + 1, n):
            s -= L[m, a] * d[m]
        d[a] = s / L[a, a]
    return n


def _box_qp_kernel(G, c, lo, hi, x0, max_iter, tol):
    """min 0.5 x'Gx - c'x s.t. lo <= x <= hi, warm-started at ``x0``. Returns (x, rounds, kkt_violation).

    G (K, K) symmetric positive semi-definite, c/lo/hi/x0 (K,), all float64. ``max_iter`` >= 1 rounds. One round
    = a projected coordinate-descent sweep, then Newton steps on the free set (a variable that hits a bound is
    fixed there and the step is recomputed) until a full Newton step is taken.
    """
    k = c.shape[0]
    x = np.empty(k)
    for i in range(k):
        xi = x0[i]
        if not (xi == xi):  # NaN warm start -> 0, then clipped
            xi = 0.0
        x[i] = min(max(xi, lo[i]), hi[i])
    g = G @ x - c
    scale = 0.0
    for i in range(k):
        scale = max(scale, abs(c[i]))
    tol_abs = tol * max(scale, 1e-30)
    free = np.empty(k, np.int64)
    L = np.empty((k, k))
    d = np.empty(k)
    viol = 0.0
    it = 0
    for it in range(1, max_iter + 1):
        # 1) projected coordinate-descent sweep (Gauss-Seidel); releases variables from their bounds.
        for i in range(k):
            gii = G[i, i]
            if gii <= 0.0:
                continue
            xn = min(max(x[i] - g[i] / gii, lo[i]), hi[i])
            dx = xn - x[i]
            if dx != 0.0:
                x[i] = xn
                for j in range(k):
                    g[j] += dx * G[j, i]
        viol = _kkt_violation(x, g, lo, hi)
        if viol <= tol_abs:
            break
        # 2) Newton steps on the free set, fixing blocking variables, until one full step (<= k+1 steps).
        for _inner in range(k + 1):
            n = _newton_free(G, g, x, lo, hi, free, L, d, 1e-13)
            if n == 0:
                break
            alpha = 1.0
            block = -1
            for a in range(n):
                i = free[a]
                if d[a] < 0.0:
                    r = (lo[i] - x[i]) / d[a]
                    if r < alpha:
                        alpha = r
                        block = a
                elif d[a] > 0.0:
                    r = (hi[i] - x[i]) / d[a]
                    if r < alpha:
                        alpha = r
                        block = a
            if alpha < 0.0:
                alpha = 0.0
            for a in range(n):
                i = free[a]
                if a == block:
                    xn = lo[i] if d[a] < 0.0 else hi[i]
                else:
                    xn = min(max(x[i] + alpha * d[a], lo[i]), hi[i])
                dx = xn - x[i]
                if dx != 0.0:
                    x[i] = xn
                    for j in range(k):
                        g[j] += dx * G[j, i]
            if block < 0:
                break
        viol = _kkt_violation(x, g, lo, hi)
        if viol <= tol_abs:
            break
    return x, it, viol


def _nnls_kernel(G, AtW, b, ridge_prior, lo, hi, x0, max_iter, tol):
    """Per-frame entry: ``c = AtW @ b + ridge_prior`` then :func:`box_qp_kernel`. Returns (x, rounds, violation).

    ``ridge_prior`` is ``ridge * prior`` (K,) (zeros for shrinkage towards 0); ``b`` (M,) float64.
    """
    c = AtW @ b + ridge_prior  # BLAS gemv
    return _box_qp_kernel(G, c, lo, hi, x0, max_iter, tol)


register(globals(), ("_kkt_violation", "_newton_free", "_box_qp_kernel", "_nnls_kernel"), nogil=True)
box_qp_kernel = Kernel(globals(), "_box_qp_kernel")
nnls_kernel = Kernel(globals(), "_nnls_kernel")


def nnls_solve(
    A: np.ndarray,
    b: np.ndarray,
    *,
    ridge: float = 0.0,
    prior: np.ndarray | None = None,
    lower=None,
    upper=None,
    row_weights: np.ndarray | None = None,
    x0: np.ndarray | None = None,
    max_iter: int = 200,
    tol: float = 1e-10,
) -> np.ndarray:
    """Convenience wrapper around the kernel for one-off problems (precompute with :func:`prepare_gram` in loops)."""
    A = np.asarray(A, dtype=np.float64)
    k = A.shape[1]
    G, AtW = prepare_gram(A, ridge, row_weights)
    lo, hi = _bounds(k, lower, upper)
    rp = np.zeros(k) if prior is None else ridge * np.asarray(prior, dtype=np.float64)
    xs = np.zeros(k) if x0 is None else np.asarray(x0, dtype=np.float64)
    x, _, _ = nnls_kernel(G, AtW, np.ascontiguousarray(b, dtype=np.float64), rp, lo, hi, xs, int(max_iter), float(tol))
    return x


# ---------------------------------------------------------------------------------------------- reference
def lsq_box_ref(
    A: np.ndarray, b: np.ndarray, lower=None, upper=None, x0: np.ndarray | None = None, max_iter: int = 10_000
) -> np.ndarray:
    """Primal active-set reference for ``min ||A x - b||^2, lower <= x <= upper`` (Lawson-Hanson generalised to
    boxes; sub-problems solved by ``lstsq`` on A itself, so the conditioning is not squared). Plain NumPy."""
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    k = A.shape[1]
    lo, hi = _bounds(k, lower, upper)
    x = np.zeros(k) if x0 is None else np.nan_to_num(np.asarray(x0, dtype=np.float64), nan=0.0)
    x = np.clip(x, lo, hi)
    x[~np.isfinite(x)] = 0.0
    x = np.clip(x, lo, hi)
    at_lo = x <= lo
    at_hi = (x >= hi) & ~at_lo
    gscale = max(float(np.abs(A.T @ b).max(initial=0.0)), float(np.abs(A).max(initial=0.0)) ** 2, 1e-30)
    released = -1
    for _ in range(max_iter):
        fixed = at_lo | at_hi
        F = np.flatnonzero(~fixed)
        z = x.copy()
        if F.size:
            rhs = b - A[:, fixed] @ x[fixed]
            z[F] = np.linalg.lstsq(A[:, F], rhs, rcond=None)[0]
        below = (z < lo) & ~fixed
        above = (z > hi) & ~fixed
        if not (below.any() or above.any()):
            x = z  # minimiser on the current face: check the multipliers of the fixed variables
            g = A.T @ (A @ x - b)
            lam = np.where(at_lo, g, np.where(at_hi, -g, np.inf))
            j = int(np.argmin(lam))
            if not lam[j] < -1e-10 * gscale:
                return x
            at_lo[j] = at_hi[j] = False
            released = j
            continue
        # step from x towards z until the first bound is hit
        d = z - x
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(below, (lo - x) / d, np.where(above, (hi - x) / d, np.inf))
        j = int(np.argmin(r))
        if j == released and r[j] <= 1e-12:
            return x  # the variable just released cannot move: its multiplier was rounding noise
        released = -1
        x = np.clip(x + max(r[j], 0.0) * d, lo, hi)
        if below[j]:
            x[j], at_lo[j] = lo[j], True
        else:
            x[j], at_hi[j] = hi[j], True
    raise RuntimeError("lsq_box_ref: no convergence")


def box_qp_ref(G: np.ndarray, c: np.ndarray, lower=None, upper=None, x0: np.ndarray | None = None) -> np.ndarray:
    """Reference for ``min 0.5 x'Gx - c'x, lower <= x <= upper`` (G PSD): factor G = R'R, then :func:`lsq_box_ref`."""
    G = np.asarray(G, dtype=np.float64)
    lam, V = np.linalg.eigh(0.5 * (G + G.T))
    R = np.sqrt(np.clip(lam, 0.0, None))[:, None] * V.T
    d = np.linalg.lstsq(R.T, np.asarray(c, dtype=np.float64), rcond=None)[0]
    return lsq_box_ref(R, d, lower, upper, x0)


def nnls_ref(
    A: np.ndarray,
    b: np.ndarray,
    *,
    ridge: float = 0.0,
    prior: np.ndarray | None = None,
    lower=None,
    upper=None,
    row_weights: np.ndarray | None = None,
    x0: np.ndarray | None = None,
) -> np.ndarray:
    """NumPy reference of :func:`nnls_solve`: weights and ridge folded into an augmented least-squares problem."""
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    k = A.shape[1]
    sw = np.ones(A.shape[0]) if row_weights is None else np.sqrt(np.asarray(row_weights, dtype=np.float64))
    Aa = sw[:, None] * A
    ba = sw * b
    if ridge > 0:
        p = np.zeros(k) if prior is None else np.asarray(prior, dtype=np.float64)
        Aa = np.vstack([Aa, np.sqrt(ridge) * np.eye(k)])
        ba = np.concatenate([ba, np.sqrt(ridge) * p])
    return lsq_box_ref(Aa, ba, lower, upper, x0)
