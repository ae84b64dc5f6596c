"""Weighted similarity Procrustes (Umeyama 1991 with per-point weights), NumPy reference + numba kernel.

Finds scale s > 0, proper rotation R (det = +1) and translation t minimising
``sum_i w_i * || s * R @ src_i + t - dst_i ||^2``. Points are rows ``(N, 3)`` float64; weights ``(N,)`` >= 0
(only their ratios matter). ``with_scale=False`` fixes s = 1 (rigid fit).

Degenerate input (weight sum <= 0, or all weighted source points coincide) raises ``ValueError``. Collinear
weighted points leave the rotation about that line undetermined; the result is still a proper rotation that
maps the points exactly (noise-free case).

Pure functions: safe to call from any thread. The kernel runs as plain Python until numba is loaded
(:mod:`rtface.kernels.jit`), then compiled on first call (``cache=True``).
"""
from __future__ import annotations

import numpy as np

from rtface.kernels.jit import Kernel, register

_EPS = 1e-12


def weighted_similarity_ref(
    src: np.ndarray, dst: np.ndarray, w: np.ndarray, with_scale: bool = True
) -> tuple[float, np.ndarray, np.ndarray]:
    """NumPy reference. Returns (scale, R (3, 3), t (3,)) with dst ~ scale * R @ src + t."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    wsum = w.sum()
    if not wsum > _EPS:
        raise ValueError("weighted_similarity: weight sum must be > 0")
    wn = w / wsum
    mu_s = wn @ src
    mu_d = wn @ dst
    xs = src - mu_s
    xd = dst - mu_d
    var_s = float(wn @ (xs * xs).sum(axis=1))
    if not var_s > _EPS:
        raise ValueError("weighted_similarity: weighted source points are all identical")
    cov = (xd * wn[:, None]).T @ xs  # (3, 3) = sum_i w_i xd_i xs_i^T
    u, sv, vt = np.linalg.svd(cov)
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0.0:
        d[2] = -1.0
    rot = (u * d) @ vt
    scale = float((sv * d).sum() / var_s) if with_scale else 1.0
    t = mu_d - scale * rot @ mu_s
    return scale, rot, t


def _weighted_similarity(
    src: np.ndarray, dst: np.ndarray, w: np.ndarray, with_scale: bool = True
) -> tuple[float, np.ndarray, np.ndarray]:
    """numba kernel, same contract and result as :func:`weighted_similarity_ref` (float64 inputs)."""
    n = src.shape[0]
    wsum = 0.0
    for i in range(n):
        wsum += w[i]
    if not wsum > _EPS:
        raise ValueError("weighted_similarity: weight sum must be > 0")
    mu_s = np.zeros(3)
    mu_d = np.zeros(3)
    for i in range(n):
        wi = w[i] / wsum
        for k in range(3):
            mu_s[k] += wi * src[i, k]
            mu_d[k] += wi * dst[i, k]
    cov = np.zeros((3, 3))
    var_s = 0.0
    for i in range(n):
        wi = w[i] / wsum
        if wi == 0.0:
            continue
        for a in range(3):
            xa = src[i, a] - mu_s[a]
            var_s += wi * xa * xa
            da = dst[i, a] - mu_d[a]
            for b in range(3):
                cov[a, b] += wi * da * (src[i, b] - mu_s[b])
    if not var_s > _EPS:
        raise ValueError("weighted_similarity: weighted source points are all identical")
    u, sv, vt = np.linalg.svd(cov)
    d2 = 1.0
    if np.linalg.det(u) * np.linalg.det(vt) < 0.0:
        d2 = -1.0
    rot = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            rot[a, b] = u[a, 0] * vt[0, b] + u[a, 1] * vt[1, b] + d2 * u[a, 2] * vt[2, b]
    scale = 1.0
    if with_scale:
        scale = (sv[0] + sv[1] + d2 * sv[2]) / var_s
    t = np.zeros(3)
    for a in range(3):
        acc = 0.0
        for b in range(3):
            acc += rot[a, b] * mu_s[b]
        t[a] = mu_d[a] - scale * acc
    return scale, rot, t


register(globals(), ("_weighted_similarity",), fastmath=False, nogil=True)
weighted_similarity = Kernel(globals(), "_weighted_similarity")


def apply_similarity(points: np.ndarray, scale: float, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Map rows: ``scale * R @ p + t`` for each row p of ``points`` (N, 3)."""
    return scale * (np.asarray(points, dtype=np.float64) @ rot.T) + t


def invert_similarity(scale: float, rot: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Inverse transform: if y = s R x + t then x = (1/s) R^T y - (1/s) R^T t."""
    inv_s = 1.0 / scale
    rt = rot.T
    return inv_s, rt, -inv_s * (rt @ t)


# Short alias used by callers that say "invert".
invert = invert_similarity
