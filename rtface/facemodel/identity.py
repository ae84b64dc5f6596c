"""Gaussian identity prior and its posterior after n observed rest frames (Woodbury algebra, cached per n).

Model for one person, in the pose-free frame with the pose response removed (flattened, 1434 values, cm):
``rest shape = mean + x``, ``x ~ N(0, C)`` with ``C = F^T F + diag(detail_sd^2)`` (F = identity factor, K x 1434,
real-people scale; detail = what the modes miss). The average of n rest frames observes ``x`` with noise
``N(0, obs_sd^2 / n)`` per coordinate. Then (standard Gaussian conditioning):

- ``posterior_mean(r, n)`` = ``C (C + s I)^-1 r`` with ``s = obs_sd^2 / n``: the person's shape offset from the mean;
- ``posterior_var_along(M, n)`` = ``diag(M C_post M^T)``, ``C_post = C - C (C + s I)^-1 C``: how uncertain a linear
  read-out ``M`` (e.g. the AU solver's rows) of the person's shape still is (n = 0: the prior, ``diag(M C M^T)``).

``(C + s I)^-1 v`` uses ``D = diag(detail_sd^2 + s)`` and the K x K matrix ``I + F D^-1 F^T`` (Cholesky), cached per
quantised n (powers of 2^(1/4)), so each call costs a few K x 1434 products.

Thread ownership: an instance (and its cache) belongs to one stage's processing thread.
"""
from __future__ import annotations

import math

import numpy as np


def quantise_frames(n: float) -> float:
    """n rounded down to the ladder 0, 1, 2^(1/4), 2^(1/2), ... (so the cache stays small)."""
    if not n >= 1.0:
        return 0.0
    if math.isinf(n):
        return math.inf
    return 2.0 ** (math.floor(4.0 * math.log2(n)) / 4.0)


class IdentityPosterior:
    """Identity prior ``N(0, F^T F + diag(detail_sd^2))`` observed through n averaged frames (module doc)."""

    def __init__(self, factor: np.ndarray, detail_sd: np.ndarray, obs_sd_cm: float) -> None:
        self.F = np.ascontiguousarray(factor, dtype=np.float64)  # (K, m)
        self.d2 = np.asarray(detail_sd, dtype=np.float64).reshape(-1) ** 2  # (m,)
        if self.F.ndim != 2 or self.F.shape[1] != self.d2.shape[0]:
            raise ValueError(f"IdentityPosterior: factor {self.F.shape} and detail {self.d2.shape} do not match")
        if not obs_sd_cm > 0:
            raise ValueError(f"IdentityPosterior: obs_sd_cm must be > 0, got {obs_sd_cm}")
        self.obs_var = float(obs_sd_cm) ** 2
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def _terms(self, n: float) -> tuple[np.ndarray, np.ndarray]:
        key = quantise_frames(n)
        t = self._cache.get(key)
        if t is None:
            s = self.obs_var / key if key > 0 else 0.0
            dinv = 1.0 / np.maximum(self.d2 + s, 1e-12)
            inner = np.eye(self.F.shape[0]) + (self.F * dinv) @ self.F.T
            t = (dinv, np.linalg.cholesky(inner))
            self._cache[key] = t
        return t

    def _solve(self, v: np.ndarray, n: float) -> np.ndarray:
        """``(C + s I)^-1 v`` for v (m,) or (m, j)."""
        dinv, chol = self._terms(n)
        u = v * (dinv if v.ndim == 1 else dinv[:, None])
        w = np.linalg.solve(chol.T, np.linalg.solve(chol, self.F @ u))
        corr = self.F.T @ w
        return u - corr * (dinv if v.ndim == 1 else dinv[:, None])

    def _cov(self, v: np.ndarray) -> np.ndarray:
        """``C v``."""
        return self.F.T @ (self.F @ v) + v * (self.d2 if v.ndim == 1 else self.d2[:, None])

    def posterior_mean(self, r: np.ndarray, n: float) -> np.ndarray:
        """E[x | average of n frames = r] (flattened (m,)); zeros for n < 1 (nothing observed)."""
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        if quantise_frames(n) == 0.0:
            return np.zeros_like(r)
        if math.isinf(n):
            return r.copy()
        s = self.obs_var / quantise_frames(n)
        return r - s * self._solve(r, n)

    def posterior_var_along(self, M: np.ndarray, n: float) -> np.ndarray:
        """(j,) variance of ``M x`` given n frames, M (j, m)."""
        M = np.asarray(M, dtype=np.float64)
        cm = self._cov(M.T)  # (m, j)
        prior = np.einsum("jm,mj->j", M, cm)
        q = quantise_frames(n)
        if q == 0.0:
            return prior
        if math.isinf(q):
            return np.zeros(M.shape[0])
        post = prior - np.einsum("mj,mj->j", cm, self._solve(cm, n))
        return np.maximum(post, 0.0)
