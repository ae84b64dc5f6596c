"""Post-processing of measured AU displacement fields on the 478 canonical landmarks (cm, canonical axes).

- similarity removal: subtract the weighted least-squares infinitesimal similarity (translation, rotation,
  uniform scale about the origin) using the runtime's Procrustes weights, so that p0 + a*b maps to itself under
  the runtime alignment to first order;
- mirror symmetrisation with the canonical left/right landmark map;
- soft far-field mask around the AU's support (no longer used by the build); iris landmarks (468..477) zeroed;
- hybrid column: geometric transfer on skin landmarks, detector-measured field on the lid/inner-lip aperture and
  face-oval landmarks (where a pixel->surface pin is unreliable).
"""
from __future__ import annotations

import numpy as np

from rtface.au.solve import similarity_tangent  # the same generators the runtime solver uses

IRIS_IDS = np.arange(468, 478)
# Lid-margin and inner-lip landmarks (aperture edges) and the face-oval (silhouette) landmarks: their pixel->surface
# pin in the geometric transfer is unreliable (eyeball / mouth cavity / silhouette under them).
APERTURE_IDS = np.array(sorted({159, 158, 157, 160, 161, 386, 385, 384, 387, 388, 246, 466, 173, 398, 13, 82, 81, 80,
                                191, 312, 311, 310, 415, 145, 144, 153, 154, 163, 374, 373, 380, 381, 390, 7, 249,
                                155, 382, 14, 87, 178, 88, 95, 317, 402, 318, 324}))
FACE_OVAL_IDS = np.array([10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176, 234,
                          251, 284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454])


def hybrid(measured: np.ndarray, geometric: np.ndarray) -> np.ndarray:
    """Geometric field with the aperture and face-oval landmarks replaced by the measured field (both (478,3))."""
    out = geometric.copy()
    out[APERTURE_IDS] = measured[APERTURE_IDS]
    out[FACE_OVAL_IDS] = measured[FACE_OVAL_IDS]
    return out


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
