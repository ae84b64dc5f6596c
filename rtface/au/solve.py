"""Per-face Action Unit intensities by bounded ridge NNLS against a 3D AU basis.

Model: ``canonical_cm - template_cm ~ B a`` with ``a >= 0`` (one activation per AU column of the basis), where
``canonical_cm`` (478, 3) is the face with pose and identity removed (geometry stage) and ``template_cm`` is the
canonical template it was built on. Solved with :mod:`rtface.kernels.nnls` on precomputed normal equations::

    min_a  sum_l w_l ||(B a)_l - d_l||^2 + ridge_abs * ||a||^2,   0 <= a <= upper / unit_to_facs

``ridge`` is relative: ``ridge_abs = ridge * mean(diag(B^T W B))`` (dimensionless, so it does not depend on the
basis' cm scale). Activations become FACS intensities ``clip(a * unit_to_facs, 0, 5)``.

Expression re-alignment (``realign_anchors``): the runtime pose-free frame comes from MediaPipe's 33 weighted
Procrustes landmarks, which include points that expressions move (cheeks 205/425, jaw 136/365, nose alae), so an
expression also tilts/shifts the whole face a little (alignment drift). With anchors given (the shipped basis names
them in its meta ``solve_realign_anchors``: forehead, glabella, nasal bridge, eye corners) each frame's displacement
``d`` is first stripped of its infinitesimal similarity motion (translation, rotation, uniform scale) fitted by least
squares on those anchors, ``d <- d - S (S_a^T S_a)^-1 S_a^T d_a`` (S = similarity tangent of the template). The
basis columns were made free of the same motion at build time, so both sides live in the same frame. The projection
is folded into the precomputed ``A^T W``: no per-frame cost.

Landmark weights (w_l): face-oval (silhouette) landmarks are the worst correspondences and are down-weighted
(``weight_contour``); iris landmarks move with gaze, not expression, and default to weight 0 (``weight_iris``).

Thread ownership: an :class:`AUSolver`'s matrices are fixed at construction and ``solve`` allocates its outputs, so
one solver serves all faces of the processing thread (warm starts are kept per face outside, e.g. in the AU stage);
only the diagnostic ``last_rounds`` is written per call, so use one solver per thread.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rtface.errors import ConfigError, DataError
from rtface.kernels.nnls import nnls_kernel, prepare_gram

N_LANDMARKS = 478
FACS_MAX = 5.0

# MediaPipe face-mesh face-oval (silhouette) landmark ids: the vertices of FACEMESH_FACE_OVAL (36 ids).
FACE_OVAL_IDS: tuple[int, ...] = (
    10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176,
    234, 251, 284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454,
)
# Refined iris landmarks (centre + 4 rim points per eye) of the 478-point mesh.
IRIS_IDS: tuple[int, ...] = tuple(range(468, 478))


def similarity_tangent(points: np.ndarray) -> np.ndarray:
    """(N*3, 7) infinitesimal similarity motions of ``points`` (N, 3) cm: tx, ty, tz, rotations about x, y, z, scale."""
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    t = np.zeros((n, 3, 7))
    t[:, 0, 0] = t[:, 1, 1] = t[:, 2, 2] = 1.0
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    t[:, 1, 3], t[:, 2, 3] = -z, y
    t[:, 0, 4], t[:, 2, 4] = z, -x
    t[:, 0, 5], t[:, 1, 5] = -y, x
    t[:, :, 6] = p
    return t.reshape(n * 3, 7)


def realign_projector_terms(template_cm: np.ndarray, anchors: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(S (1434, 7), K (7, 1434)) with ``d - S @ (K @ d)`` = d minus its anchor-fitted similarity motion."""
    ids = np.asarray(sorted({int(i) for i in anchors}), dtype=np.int64)
    if ids.size < 3 or ids.min() < 0 or ids.max() >= N_LANDMARKS:
        raise ConfigError(f"realign anchors must be >= 3 landmark ids in 0..{N_LANDMARKS - 1}, got {list(anchors)}")
    S = similarity_tangent(template_cm)
    rows = (ids[:, None] * 3 + np.arange(3)[None, :]).reshape(-1)
    Sa = S[rows]
    K = np.zeros((7, N_LANDMARKS * 3))
    K[:, rows] = np.linalg.solve(Sa.T @ Sa, Sa.T)
    return S, K


def landmark_weights(weight_contour: float = 0.25, weight_iris: float = 0.0) -> np.ndarray:
    """(478,) float64 per-landmark weights: 1 everywhere, ``weight_contour`` on the face oval, ``weight_iris`` on
    the iris points. Weights must be finite and >= 0."""
    for field, v in (("weight_contour", weight_contour), ("weight_iris", weight_iris)):
        if not np.isfinite(v) or v < 0:
            raise ConfigError(f"landmark_weights: {field} must be finite and >= 0, got {v}")
    w = np.ones(N_LANDMARKS)
    w[list(FACE_OVAL_IDS)] = weight_contour
    w[list(IRIS_IDS)] = weight_iris
    return w


class AUSolver:
    """Bounded ridge NNLS of canonical-face displacements onto an AU basis (see module doc).

    ``basis`` needs ``names`` (K,), ``matrix`` (1434, K) cm per unit activation (rows = landmark*3 + axis) and
    ``unit_to_facs`` (K,) (FACS points per unit activation). ``upper``: FACS upper bound per AU (scalar or (K,);
    None = unbounded). ``landmark_weights``: (478,) >= 0 or None (all ones). ``realign_anchors``: landmark ids for
    the per-frame similarity re-alignment (module doc; None = off); ``template_cm``: the template the tangent is
    taken at (default: the canonical model).
    """

    def __init__(
        self,
        basis: Any,
        *,
        ridge: float = 0.01,
        upper: float | np.ndarray | None = FACS_MAX,
        landmark_weights: np.ndarray | None = None,
        max_iter: int = 50,
        tol: float = 1e-9,
        realign_anchors: Sequence[int] | None = None,
        template_cm: np.ndarray | None = None,
    ) -> None:
        names = tuple(str(n) for n in basis.names)
        matrix = np.asarray(basis.matrix, dtype=np.float64)
        k = len(names)
        if matrix.shape != (N_LANDMARKS * 3, k):
            raise DataError(f"AU basis matrix has shape {matrix.shape}, expected ({N_LANDMARKS * 3}, {k})")
        u2f = np.asarray(basis.unit_to_facs, dtype=np.float64).reshape(-1)
        if u2f.shape != (k,) or not np.all(np.isfinite(u2f)) or np.any(u2f <= 0):
            raise DataError(f"AU basis unit_to_facs must be ({k},) finite and > 0, got {u2f}")
        if not np.all(np.isfinite(matrix)):
            raise DataError("AU basis matrix contains non-finite values")
        if not (np.isfinite(ridge) and ridge >= 0):
            raise ConfigError(f"AUSolver: ridge must be finite and >= 0, got {ridge}")
        if max_iter < 1 or not (tol > 0):
            raise ConfigError(f"AUSolver: need max_iter >= 1 and tol > 0, got {max_iter}, {tol}")
        if landmark_weights is None:
            row_w = None
        else:
            lw = np.asarray(landmark_weights, dtype=np.float64)
            if lw.shape != (N_LANDMARKS,) or not np.all(np.isfinite(lw)) or np.any(lw < 0):
                raise ConfigError(f"AUSolver: landmark_weights must be ({N_LANDMARKS},) finite >= 0, got {lw.shape}")
            row_w = np.repeat(lw, 3)
        G0, AtW = prepare_gram(matrix, 0.0, row_w)
        diag = np.diag(G0)
        if np.any(diag <= 0):
            bad = [names[i] for i in np.flatnonzero(diag <= 0)]
            raise DataError(f"AU basis columns {bad} have no (weighted) displacement")
        if realign_anchors is not None:
            if template_cm is None:
                from rtface.geometry.canonical_model import load_canonical_model

                template_cm = load_canonical_model().vertices_cm
            S, K = realign_projector_terms(np.asarray(template_cm, dtype=np.float64), realign_anchors)
            AtW = np.ascontiguousarray(AtW - (AtW @ S) @ K)
        self.realign_anchors = None if realign_anchors is None else tuple(int(i) for i in realign_anchors)
        self.ridge_abs = float(ridge * diag.mean())
        G = G0.copy()
        G[np.diag_indices_from(G)] += self.ridge_abs
        if upper is None:
            hi_facs = np.full(k, np.inf)
        else:
            hi_facs = np.broadcast_to(np.asarray(upper, dtype=np.float64), (k,)).copy()
            if np.any(~(hi_facs > 0)):
                raise ConfigError(f"AUSolver: upper bound must be > 0 (FACS units), got {upper}")
        self.names = names
        self.unit_to_facs = u2f
        self._G = np.ascontiguousarray(G)
        self._AtW = AtW
        self._lo = np.zeros(k)
        self._hi = hi_facs / u2f
        self._prior = np.zeros(k)
        self._max_iter = int(max_iter)
        self._tol = float(tol)
        self.condition_number = float(np.linalg.cond(G))
        self.last_rounds = 0  # kernel rounds used by the latest solve (diagnostics)

    @property
    def n_aus(self) -> int:
        return len(self.names)

    def solve_activations(
        self, canonical_cm: np.ndarray, template_cm: np.ndarray, prev: np.ndarray | None = None
    ) -> np.ndarray:
        """Raw activations (K,) float64 in basis units; ``prev`` = previous activations of this face (warm start)."""
        d = np.asarray(canonical_cm, dtype=np.float64) - np.asarray(template_cm, dtype=np.float64)
        if d.shape != (N_LANDMARKS, 3):
            raise DataError(f"AUSolver.solve: canonical_cm/template shape {d.shape}, expected ({N_LANDMARKS}, 3)")
        x0 = self._lo if prev is None else np.asarray(prev, dtype=np.float64)
        x, rounds, _ = nnls_kernel(
            self._G, self._AtW, d.reshape(-1), self._prior, self._lo, self._hi, x0, self._max_iter, self._tol
        )
        self.last_rounds = int(rounds)
        return x

    def to_facs(self, activations: np.ndarray) -> np.ndarray:
        """FACS intensities (K,) float32 in [0, 5] from raw activations."""
        return np.clip(activations * self.unit_to_facs, 0.0, FACS_MAX).astype(np.float32)

    def solve(
        self, canonical_cm: np.ndarray, neutral_cm_template: np.ndarray, prev: np.ndarray | None = None
    ) -> np.ndarray:
        """FACS 0-5 intensities (K,) float32 for one face; ``prev`` = previous raw activations (warm start)."""
        return self.to_facs(self.solve_activations(canonical_cm, neutral_cm_template, prev))
