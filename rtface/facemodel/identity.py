"""Gaussian identity prior and its posterior after n observed rest frames (closed form, one SVD at construction).

Model for one person, in the pose-free frame with the pose response removed (flattened, 1434 values, cm):
``rest shape = mean + x``, ``x ~ N(0, C)`` with ``C = F^T F + delta^2 I`` (F = identity factor, K x 1434, real-people
scale; ``delta`` = the isotropic detail sd: what the modes miss). The average of n rest frames observes ``x`` with
noise ``N(0, obs_sd^2 / n)`` per coordinate. With ``F = U S V^T`` (V: 1434 x K orthonormal), C has eigenvalues
``l_k = S_k^2 + delta^2`` along V and ``delta^2`` elsewhere, so with ``s = obs_sd^2 / n``:

- ``posterior_mean(r, n)`` = ``C (C + s I)^-1 r`` = ``V (l / (l + s) * V^T r) + delta^2 / (delta^2 + s) (r - V V^T r)``;
- ``posterior_var_along(M, n)`` = ``diag(M C_post M^T)`` with ``C_post`` eigenvalues ``l s / (l + s)`` (and
  ``delta^2 s / (delta^2 + s)``): how uncertain a linear read-out ``M`` (e.g. the AU solver's rows) of the person's
  shape still is (n = 0: the prior ``diag(M C M^T)``).

Each call costs two K x 1434 products. Pure after construction; any thread may use an instance.
"""
from __future__ import annotations

import math

import numpy as np


def quantise_frames(n: float) -> float:
    """n rounded down to the ladder 0, 1, 2^(1/4), 2^(1/2), ... (so per-level caches stay small)."""
    if not n >= 1.0:
        return 0.0
    if math.isinf(n):
        return math.inf
    return 2.0 ** (math.floor(4.0 * math.log2(n)) / 4.0)


class IdentityPosterior:
    """Identity prior ``N(0, F^T F + delta^2 I)`` observed through n averaged frames (module doc)."""

    def __init__(self, factor: np.ndarray, detail_sd: float | np.ndarray, obs_sd_cm: float) -> None:
        f = np.ascontiguousarray(factor, dtype=np.float64)
        if f.ndim != 2:
            raise ValueError(f"IdentityPosterior: factor must be 2-D (K, m), got {f.shape}")
        d = np.asarray(detail_sd, dtype=np.float64)
        if d.size not in (1, f.shape[1]) or not np.all(np.isfinite(d)) or np.any(d < 0):
            raise ValueError(f"IdentityPosterior: detail_sd must be a scalar or ({f.shape[1]},) >= 0")
        if not obs_sd_cm > 0:
            raise ValueError(f"IdentityPosterior: obs_sd_cm must be > 0, got {obs_sd_cm}")
        self.F = f
        self.delta2 = float(np.mean(d.reshape(-1) ** 2))  # isotropic detail (RMS of a per-coordinate field)
        self.obs_var = float(obs_sd_cm) ** 2
        _, sv, vt = np.linalg.svd(f, full_matrices=False)
        keep = sv > 1e-12
        self.V = np.ascontiguousarray(vt[keep].T)  # (m, K')
        self.lam = sv[keep] ** 2 + self.delta2  # (K',)

    def _s(self, n: float) -> float:
        q = quantise_frames(n)
        return math.inf if q == 0.0 else (0.0 if math.isinf(q) else self.obs_var / q)

    def posterior_mean(self, r: np.ndarray, n: float) -> np.ndarray:
        """E[x | average of n frames = r] (flattened (m,)); zeros for n < 1 (nothing observed)."""
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        s = self._s(n)
        if math.isinf(s):
            return np.zeros_like(r)
        p = self.V.T @ r
        rest = r - self.V @ p
        return self.V @ (self.lam / (self.lam + s) * p) + (self.delta2 / (self.delta2 + s) if s > 0 else 1.0) * rest

    def posterior_var_along(self, M: np.ndarray, n: float) -> np.ndarray:
        """(j,) variance of ``M x`` given n frames, M (j, m)."""
        M = np.asarray(M, dtype=np.float64)
        s = self._s(n)
        mv = M @ self.V  # (j, K')
        out_sq = np.maximum((M * M).sum(1) - (mv * mv).sum(1), 0.0)
        if math.isinf(s):
            return (mv * mv) @ self.lam + out_sq * self.delta2
        if s == 0.0:
            return np.zeros(M.shape[0])
        return (mv * mv) @ (self.lam * s / (self.lam + s)) + out_sq * (self.delta2 * s / (self.delta2 + s))
