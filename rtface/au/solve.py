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

Face regions (``regions``, the shipped basis' meta ``solve_regions``): AUs may be solved in groups, each on its own
landmarks and re-aligned on its own anchors; the shipped basis solves the brow AUs (AU01/AU02/AU04) on the landmarks
above the nasal root, re-aligned on the nose and eye corners (not the forehead: MediaPipe moves the forehead points
with the brows, so re-aligning on them takes brow lowering out of the displacement), and every other AU below it as
before. Each group's columns are re-projected on its anchors and its normal equations built on its landmarks; the
groups form one block-diagonal system, so one kernel call solves them all (independently) and the read-out, noise
and floor machinery is unchanged. Without regions the whole basis is one region on all landmarks.

Noise-aware read-out (``noise``, ``noise_t``, ``noise_z``): MediaPipe's landmark jitter (measured in the canonical
frame by ``scripts/measure_au_noise.py`` into ``rtface/data/au_basis/noise.json``; covariance
``Sigma ~= U^T U + diag(r)``, strongly correlated across landmarks) is propagated analytically through the normal
equations at construction. With ``M`` = the re-aligned, weighted ``A^T W`` (so ``c = M d``) and ``G`` as above:

- ``noise_facs`` (K,): FACS std of each AU's unconstrained estimate ``G^-1 M n`` under noise n ~ (0, Sigma):
  ``sqrt(diag(G^-1 M Sigma M^T G^-1)) * unit_to_facs``.
- Soft threshold (``noise_t``, default read-out): FACS = ``clip(a * unit_to_facs - t * noise_facs, 0, 5)``: an AU
  reads above 0 only once its estimate exceeds ``t`` noise standard deviations (all readings shift down by that
  floor; presence thresholds thus act ``t`` sigma above each AU's noise).
- Optional per-AU L1 term (``noise_z``): ``sum_k lambda_k a_k`` with ``lambda_k = 2 z sigma_c,k``,
  ``sigma_c = sqrt(diag(M Sigma M^T))``; by the KKT conditions an AU that is off stays off while
  ``c_k - (G a)_k <= z sigma_c,k`` (it must correlate with the displacement more than z noise std would). It goes
  into the kernel's ``ridge_prior`` argument (``c = A^T W d - z sigma_c``): no kernel change. Measured drawback:
  with coherent columns the L1 hands shared displacement to the cheaper AU (real smiles lose AU06 to AU12), so the
  AU stage uses it only during warm-up.

Identity-marginalised read-out (``marginal``): with the person's face shape unknown (a single photo), the
displacement also holds the person's offset from the population mean, ``d = B a + F^T b + e`` with ``b ~ N(0, I)``
along the face model's identity factor F and residual ``e`` of sd ``sd``. Integrating b out (generalised least
squares) gives the same NNLS form with ``G = B^T W B - B^T W Z H^-1 Z^T W B`` and ``A^T W`` likewise, ``Z = F^T``
re-aligned like the columns, ``H = Z^T W Z + sd^2 I``: one more pair of precomputed matrices, no per-frame cost.
Such a read-out is blind to what face shapes also do (it reads an AU only where it differs from every plausible
face shape): the AU stage uses it per AU where it detects better than the plain one (:mod:`rtface.stages.aus`).

Landmark weights (w_l): face-oval (silhouette) landmarks are the worst correspondences and are down-weighted
(``weight_contour``); iris landmarks move with gaze, not expression, and default to weight 0 (``weight_iris``).

Thread ownership: an :class:`AUSolver`'s matrices are fixed at construction and ``solve`` allocates its outputs, so
one solver serves all faces of the processing thread (warm starts are kept per face outside, e.g. in the AU stage);
only the diagnostic ``last_rounds`` is written per call, so use one solver per thread.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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
DEFAULT_NOISE_PATH = Path(__file__).resolve().parent.parent / "data" / "au_basis" / "noise.json"


@dataclass(frozen=True)
class NoiseModel:
    """Landmark noise covariance in the canonical frame, ``Sigma = factor^T factor + diag(resid_var)``.

    ``factor`` (r, 1434) cm (rows = principal noise directions scaled by their std; column = landmark*3 + axis),
    ``resid_var`` (1434,) cm^2; ``meta``: the rest of the file (sources, per-landmark std summaries)."""

    factor: np.ndarray
    resid_var: np.ndarray
    meta: dict[str, Any]

    def sigma_c(self, M: np.ndarray) -> np.ndarray:
        """(K,) std of ``M @ n`` for noise n ~ (0, Sigma); ``M`` (K, 1434)."""
        return np.sqrt(((M @ self.factor.T) ** 2).sum(1) + (M ** 2) @ self.resid_var)


def load_noise_model(path: str | Path | None = None) -> NoiseModel:
    """Read a noise model written by ``scripts/measure_au_noise.py`` (None = the shipped ``noise.json``)."""
    p = DEFAULT_NOISE_PATH if path is None else Path(path)
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"AU noise model {p}: cannot read: {exc}") from exc
    try:
        factor = np.asarray(d.pop("factor_cm"), dtype=np.float64)
        resid = np.asarray(d.pop("resid_var_cm2"), dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"AU noise model {p}: field 'factor_cm'/'resid_var_cm2' missing or malformed: {exc}") from exc
    m = N_LANDMARKS * 3
    if factor.ndim != 2 or factor.shape[1] != m or resid.shape != (m,):
        raise DataError(f"AU noise model {p}: 'factor_cm' must be (r, {m}) and 'resid_var_cm2' ({m},), "
                        f"got {factor.shape} and {resid.shape}")
    if not (np.isfinite(factor).all() and np.isfinite(resid).all() and (resid >= 0).all()):
        raise DataError(f"AU noise model {p}: non-finite values or negative 'resid_var_cm2'")
    for a in (factor, resid):
        a.setflags(write=False)
    return NoiseModel(factor, resid, d)


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


def parse_regions(regions: Any, names: Sequence[str], template_cm: np.ndarray) -> list[tuple[list[int], np.ndarray,
                                                                                           tuple[int, ...] | None]]:
    """Validate ``regions`` (list of {"aus": [...], "anchors": [...] (optional), "above_landmark": id (optional),
    "below_landmark": id (optional)}) against the basis ``names``; every AU in exactly one region. Returns per region
    (column indices, (478,) 0/1 landmark mask: template y above / below the named landmarks' y, anchors or None)."""
    if not isinstance(regions, (list, tuple)) or not regions:
        raise DataError(f"AU basis solve_regions must be a non-empty list, got {regions!r}")
    out, seen = [], set()
    for k, r in enumerate(regions):
        if not isinstance(r, dict) or not isinstance(r.get("aus"), (list, tuple)) or not r["aus"]:
            raise DataError(f"AU basis solve_regions[{k}] needs a non-empty 'aus' list, got {r!r}")
        idx = []
        for a in r["aus"]:
            if a not in names or a in seen:
                raise DataError(f"AU basis solve_regions[{k}]: AU {a!r} is not in the basis or in two regions")
            seen.add(a)
            idx.append(list(names).index(a))
        mask = np.ones(N_LANDMARKS)
        for key, keep in (("above_landmark", np.greater), ("below_landmark", np.less)):
            if r.get(key) is not None:
                i = int(r[key])
                if not 0 <= i < N_LANDMARKS:
                    raise DataError(f"AU basis solve_regions[{k}]: {key} {i} is not a landmark id")
                y = np.asarray(template_cm, dtype=np.float64)[:, 1]
                mask = mask * keep(y, y[i])
        anchors = r.get("anchors")
        out.append((idx, mask, None if anchors is None else tuple(int(i) for i in anchors)))
    missing = [a for a in names if a not in seen]
    if missing:
        raise DataError(f"AU basis solve_regions leave AUs {missing} out")
    return out


def _marginalise(g: np.ndarray, atw: np.ndarray, sub: np.ndarray, rw: np.ndarray, marginal: tuple[np.ndarray, float],
                 realign: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """One region's normal equations with the ``marginal`` directions (factor F (r, 1434) cm per unit, unit-normal
    coefficients, isotropic residual sd cm) eliminated: the least squares of ``d ~ B a + F^T b`` with prior
    ``b ~ N(0, I)`` and residual sd ``sd``, b integrated out (generalised least squares). ``atw`` is returned before
    the region's re-alignment projection (the caller applies it); the directions are re-aligned like the columns."""
    f, sd = marginal
    z = f.T
    if realign is not None:
        S, K = realign
        z = z - S @ (K @ z)
    w = np.sqrt(rw)
    zw = z * w[:, None]
    xz = (sub * rw[:, None]).T @ z  # B^T W Z  (k, r)
    h = zw.T @ zw + sd * sd * np.eye(z.shape[1])
    corr = np.linalg.solve(h, xz.T)  # (r, k)
    g = g - xz @ corr
    atw = atw - corr.T @ (z * rw[:, None]).T
    return 0.5 * (g + g.T), atw


class AUSolver:
    """Bounded ridge NNLS of canonical-face displacements onto an AU basis (see module doc).

    ``basis`` needs ``names`` (K,), ``matrix`` (1434, K) cm per unit activation (rows = landmark*3 + axis) and
    ``unit_to_facs`` (K,) (FACS points per unit activation). ``upper``: FACS upper bound per AU (scalar or (K,);
    None = unbounded). ``landmark_weights``: (478,) >= 0 or None (all ones). ``realign_anchors``: landmark ids for
    the per-frame similarity re-alignment (module doc; None = off); ``template_cm``: the template the tangent is
    taken at (default: the canonical model). ``noise``: landmark noise model (None = no noise-aware term);
    ``noise_z``: default L1 strength in noise standard deviations (module doc; 0 = plain ridge NNLS; needs
    ``noise``). A per-call ``noise_z`` may be given to :meth:`solve_activations`. ``regions``: AU groups solved on
    their own landmarks and anchors (module doc; :func:`parse_regions`); they replace ``realign_anchors``.
    ``marginal``: (factor (r, 1434) cm, sd cm): directions whose coefficients are unknown nuisances (the identity
    read-out of :mod:`rtface.stages.aus`: the population's face-shape modes), integrated out of every region's
    normal equations (module doc, "Identity-marginalised read-out"); None = the plain read-out.
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
        noise: NoiseModel | None = None,
        noise_z: float = 0.0,
        noise_t: float = 0.0,
        regions: Any = None,
        marginal: tuple[np.ndarray, float] | None = None,
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
        for field, v in (("noise_z", noise_z), ("noise_t", noise_t)):
            if not (np.isfinite(v) and v >= 0) or (v > 0 and noise is None):
                raise ConfigError(f"AUSolver: {field} must be finite, >= 0 and needs a noise model, got {v}")
        if marginal is not None:
            mf = np.asarray(marginal[0], dtype=np.float64)
            if mf.ndim != 2 or mf.shape[1] != N_LANDMARKS * 3 or not np.isfinite(mf).all():
                raise ConfigError(f"AUSolver: marginal factor must be (r, {N_LANDMARKS * 3}) finite, got {mf.shape}")
            if not (np.isfinite(marginal[1]) and marginal[1] > 0):
                raise ConfigError(f"AUSolver: marginal sd must be finite and > 0 cm, got {marginal[1]}")
            marginal = (mf, float(marginal[1]))
        if max_iter < 1 or not (tol > 0):
            raise ConfigError(f"AUSolver: need max_iter >= 1 and tol > 0, got {max_iter}, {tol}")
        if landmark_weights is None:
            row_w = None
        else:
            lw = np.asarray(landmark_weights, dtype=np.float64)
            if lw.shape != (N_LANDMARKS,) or not np.all(np.isfinite(lw)) or np.any(lw < 0):
                raise ConfigError(f"AUSolver: landmark_weights must be ({N_LANDMARKS},) finite >= 0, got {lw.shape}")
            row_w = np.repeat(lw, 3)
        if template_cm is None and (realign_anchors is not None or regions is not None):
            from rtface.geometry.canonical_model import load_canonical_model

            template_cm = load_canonical_model().vertices_cm
        if regions is None:  # one region: every AU on every landmark, re-aligned on realign_anchors (if any)
            regions = [{"aus": list(names), "anchors": realign_anchors}]
        G0, AtW, ridge_diag = np.zeros((k, k)), np.zeros((k, N_LANDMARKS * 3)), np.zeros(k)
        base_w = np.ones(N_LANDMARKS * 3) if row_w is None else row_w
        for idx, mask, anchors in parse_regions(regions, names, template_cm):
            sub = matrix[:, idx]
            if anchors is not None:
                S, K = realign_projector_terms(np.asarray(template_cm, dtype=np.float64), anchors)
                sub = sub - S @ (K @ sub)  # the region's columns, free of its anchors' similarity motion
            rw = base_w * np.repeat(mask, 3)
            g, atw = prepare_gram(sub, 0.0, rw)
            if marginal is not None:
                g, atw = _marginalise(g, atw, sub, rw, marginal, None if anchors is None else (S, K))
            if anchors is not None:
                atw = atw - (atw @ S) @ K
            G0[np.ix_(idx, idx)] = g
            AtW[idx] = atw
            ridge_diag[idx] = ridge * np.diag(g).mean()
        AtW = np.ascontiguousarray(AtW)
        diag = np.diag(G0)
        if np.any(diag <= 0):
            bad = [names[i] for i in np.flatnonzero(diag <= 0)]
            raise DataError(f"AU basis columns {bad} have no (weighted) displacement")
        self.realign_anchors = None if realign_anchors is None else tuple(int(i) for i in realign_anchors)
        self.ridge_abs = float(ridge_diag.mean())
        G = G0.copy()
        G[np.diag_indices_from(G)] += ridge_diag
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
        self.noise = noise
        self.noise_z = float(noise_z)
        self.noise_t = float(noise_t)
        # per-AU noise std of c = M d and of the unconstrained estimate G^-1 M d in FACS (zeros without a model)
        self.noise_sigma_c = np.zeros(k) if noise is None else noise.sigma_c(AtW)
        self.noise_facs = np.zeros(k) if noise is None else noise.sigma_c(np.linalg.solve(G, AtW)) * u2f
        self.last_rounds = 0  # kernel rounds used by the latest solve (diagnostics)

    @property
    def n_aus(self) -> int:
        return len(self.names)

    def fingerprint(self) -> str:
        """sha256 hex of everything that decides a solve's result (matrices, bounds, units, iteration limits)."""
        import hashlib

        h = hashlib.sha256()
        for a in (self._G, self._AtW, self._lo, self._hi, self.unit_to_facs):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        h.update(f"{self._max_iter}|{self._tol!r}".encode())
        return h.hexdigest()

    def readout_facs(self) -> np.ndarray:
        """(K, 1434) linear read-out of the unconstrained estimate in FACS points per cm of displacement
        (``unit_to_facs * G^-1 M``); propagates a displacement covariance to per-AU variances."""
        return np.linalg.solve(self._G, self._AtW) * self.unit_to_facs[:, None]

    def solve_activations(
        self, canonical_cm: np.ndarray, template_cm: np.ndarray, prev: np.ndarray | None = None,
        noise_z: float | None = None,
    ) -> np.ndarray:
        """Raw activations (K,) float64 in basis units; ``prev`` = previous activations of this face (warm start);
        ``noise_z`` overrides the solver's L1 strength for this call (None = ``self.noise_z``)."""
        d = np.asarray(canonical_cm, dtype=np.float64) - np.asarray(template_cm, dtype=np.float64)
        if d.shape != (N_LANDMARKS, 3):
            raise DataError(f"AUSolver.solve: canonical_cm/template shape {d.shape}, expected ({N_LANDMARKS}, 3)")
        x0 = self._lo if prev is None else np.asarray(prev, dtype=np.float64)
        z = self.noise_z if noise_z is None else float(noise_z)
        lin = self._prior if z == 0.0 else self.noise_sigma_c * -z  # = -lambda / 2 (module doc)
        x, rounds, _ = nnls_kernel(
            self._G, self._AtW, d.reshape(-1), lin, self._lo, self._hi, x0, self._max_iter, self._tol
        )
        self.last_rounds = int(rounds)
        return x

    def to_facs(self, activations: np.ndarray, noise_t: float | None = None) -> np.ndarray:
        """FACS intensities (K,) float32 in [0, 5] from raw activations, minus ``noise_t`` (None = ``self.noise_t``)
        noise std per AU (soft threshold, module doc)."""
        t = self.noise_t if noise_t is None else float(noise_t)
        facs = activations * self.unit_to_facs
        if t != 0.0:
            facs = facs - t * self.noise_facs
        return np.clip(facs, 0.0, FACS_MAX).astype(np.float32)

    def solve(
        self, canonical_cm: np.ndarray, neutral_cm_template: np.ndarray, prev: np.ndarray | None = None,
        noise_z: float | None = None, noise_t: float | None = None,
    ) -> np.ndarray:
        """FACS 0-5 intensities (K,) float32 for one face; ``prev`` = previous raw activations (warm start)."""
        return self.to_facs(self.solve_activations(canonical_cm, neutral_cm_template, prev, noise_z), noise_t)


class ExpressionScorer:
    """How much AU-shaped displacement a face shows, in cm: ``sum_k a_k |b_k|`` with ``a`` the unbounded NNLS
    activations (the AU stage's default weights and re-alignment, no noise terms) and ``|b_k|`` each column's RMS
    over the face landmarks. Unbounded and in cm (not FACS points) so a person's own face shape, which adds a
    roughly constant offset, neither saturates it nor lets AUs with tiny fields dominate: the canonical stage ranks
    a person's frames by it to find their rest frames."""

    def __init__(self, basis: Any, template_cm: np.ndarray) -> None:
        meta = getattr(basis, "meta", None) or {}
        self._solver = AUSolver(basis, ridge=0.01, upper=None, landmark_weights=landmark_weights(),
                                realign_anchors=meta.get("solve_realign_anchors"), template_cm=template_cm,
                                regions=meta.get("solve_regions"))
        m = np.asarray(basis.matrix, dtype=np.float64)[: 468 * 3]
        self._norm = np.sqrt((m ** 2).sum(0) / 468.0)
        self._template = np.asarray(template_cm, dtype=np.float64)
        self._B = np.asarray(basis.matrix, dtype=np.float64)

    def score(self, displacement_cm: np.ndarray) -> float:
        """Expression displacement (cm) of ``displacement_cm`` (478, 3) from the reference neutral."""
        a = self._solver.solve_activations(self._template + displacement_cm, self._template)
        return float(a @ self._norm)

    def au_part(self, displacement_cm: np.ndarray) -> np.ndarray:
        """(478, 3) the part of a displacement that an expression could explain: the AU columns at their
        non-negative activations (the scorer's NNLS). What a person model must not take for face shape too quickly.
        Non-negative because faces do not make negative AUs: an offset only a negative activation explains (mouth
        corners lower than the population's, say) is face shape, taken at once. Against the signed least-squares
        split this made, on the 12 London people read as a 2-frame sequence (neutral photo, then smiling photo):
        AU06 higher when smiling 2/12 -> 5/12, AU12 9/12 -> 10/12, with the opening-smile test unchanged."""
        a = self._solver.solve_activations(self._template + np.asarray(displacement_cm, dtype=np.float64),
                                           self._template)
        return (self._B @ a).reshape(-1, 3)
