"""Post-processing of measured AU displacement fields on the 478 canonical landmarks (cm, canonical axes).

- similarity removal: subtract the weighted least-squares infinitesimal similarity (translation, rotation,
  uniform scale about the origin) using the runtime's Procrustes weights, so that p0 + a*b maps to itself under
  the runtime alignment to first order;
- mirror symmetrisation with the canonical left/right landmark map;
- soft far-field mask around the AU's support; iris landmarks (468..477) zeroed.
"""
from __future__ import annotations

import numpy as np

IRIS_IDS = np.arange(468, 478)


def similarity_tangent(c: np.ndarray) -> np.ndarray:
    """(478*3, 7) basis of infinitesimal similarity motions of the point set c (N,3): tx,ty,tz, wx,wy,wz, scale."""
    n = len(c)
    a = np.zeros((n, 3, 7))
    a[:, 0, 0] = a[:, 1, 1] = a[:, 2, 2] = 1.0
    x, y, z = c[:, 0], c[:, 1], c[:, 2]
    # omega x c
    a[:, 1, 3], a[:, 2, 3] = -z, y
    a[:, 0, 4], a[:, 2, 4] = z, -x
    a[:, 0, 5], a[:, 1, 5] = -y, x
    a[:, :, 6] = c
    return a.reshape(n * 3, 7)


def remove_similarity(b: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Subtract the w-weighted LS similarity component of field b (N,3). Returns (cleaned, removed fraction of
    the weighted energy)."""
    a = similarity_tangent(c)
    ww = np.repeat(w, 3)
    aw = a * ww[:, None]
    coef = np.linalg.lstsq(aw.T @ a, aw.T @ b.reshape(-1), rcond=None)[0]
    fit = (a @ coef).reshape(b.shape)
    e = float((ww * b.reshape(-1) ** 2).sum())
    return b - fit, float((ww * fit.reshape(-1) ** 2).sum()) / max(e, 1e-30)


def similarity_fraction(b: np.ndarray, c: np.ndarray, w: np.ndarray | None = None) -> float:
    """Fraction of the (w-weighted; unweighted if None) energy of b explained by a similarity motion."""
    return remove_similarity(b, c, np.ones(len(c)) if w is None else w)[1]


def mirror(b: np.ndarray, mirror_index: np.ndarray) -> np.ndarray:
    """Field of the mirror image: (M b)_i = diag(-1,1,1) b_{mirror(i)}."""
    return b[mirror_index] * np.array([-1.0, 1.0, 1.0])


def soft_mask(support_field: np.ndarray, measured: np.ndarray, c: np.ndarray, rel: float = 0.1,
              top: int = 10, inner_cm: float = 1.0, sigma_cm: float = 1.5) -> np.ndarray:
    """(N,) weights in [0,1]: 1 within inner_cm of the support, Gaussian fall-off beyond.

    Support = landmarks where |support_field| > rel * max, plus the `top` largest measured displacements."""
    g = np.linalg.norm(support_field, axis=1)
    m = np.linalg.norm(measured, axis=1)
    sup = g > rel * g.max() if g.max() > 0 else np.zeros(len(c), bool)
    sup[np.argsort(-m)[:top]] = True
    d = np.linalg.norm(c[:, None, :] - c[None, sup, :], axis=2).min(1)
    return np.exp(-0.5 * (np.maximum(d - inner_cm, 0.0) / sigma_cm) ** 2)


def finish(b: np.ndarray, mask: np.ndarray, c: np.ndarray, w: np.ndarray) -> np.ndarray:
    """mask -> zero iris -> remove weighted similarity (zero iris again: they carry no AU information)."""
    out = b * mask[:, None]
    out[IRIS_IDS] = 0.0
    out = remove_similarity(out, c, w)[0]
    out[IRIS_IDS] = 0.0
    return out
