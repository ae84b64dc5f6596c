"""Validation numbers for the AU basis (build-time): conditioning, coherence, NNLS recovery, photo checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.optimize import nnls


def cosine(a: np.ndarray, b: np.ndarray, rows: np.ndarray | None = None) -> float:
    a = a if rows is None else a[rows]
    b = b if rows is None else b[rows]
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float((a.reshape(-1) @ b.reshape(-1)) / (na * nb)) if na > 0 and nb > 0 else float("nan")


def condition_number(m: np.ndarray) -> float:
    s = np.linalg.svd(m, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else float("inf")


def coherence(m: np.ndarray, names: list[str], worst: int = 8) -> tuple[float, list[tuple[str, str, float]]]:
    u = m / np.linalg.norm(m, axis=0, keepdims=True)
    g = np.abs(u.T @ u)
    np.fill_diagonal(g, 0.0)
    iu = np.triu_indices(len(names), 1)
    order = np.argsort(-g[iu])[:worst]
    pairs = [(names[iu[0][k]], names[iu[1][k]], float(g[iu][k])) for k in order]
    return float(g.max()), pairs


def nnls_recovery(m: np.ndarray, trials: int, rng: np.random.Generator, noise_cm: float = 0.0
                  ) -> tuple[float, float]:
    """Random sparse non-negative activations (each AU on with p=0.4, U(0.1,1)); returns (median, max) of
    max |a_hat - a| over AUs."""
    errs = []
    k = m.shape[1]
    for _ in range(trials):
        a = np.where(rng.random(k) < 0.4, rng.uniform(0.1, 1.0, k), 0.0)
        y = m @ a + noise_cm * rng.standard_normal(m.shape[0])
        errs.append(float(np.abs(nnls(m, y)[0] - a).max()))
    return float(np.median(errs)), float(np.max(errs))


def solve(m: np.ndarray, disp: np.ndarray, row_w: np.ndarray | None = None) -> np.ndarray:
    """NNLS activations of a (478,3) displacement (optionally with per-landmark weights)."""
    y = disp.reshape(-1)
    if row_w is not None:
        rw = np.sqrt(np.repeat(row_w, 3))
        return nnls(m * rw[:, None], y * rw)[0]
    return nnls(m, y)[0]


def london_photos(root: Path, m: np.ndarray, row_w: np.ndarray, c: np.ndarray, w_align: np.ndarray
                  ) -> list[tuple[str, np.ndarray]] | None:
    """Neutral vs smiling photos of the London set through the runtime geometry; per person the NNLS activations
    of (smile - neutral), re-aligned on the anchors (w_align) like the runtime solver. None if the photos are
    not there."""
    from .postprocess import remove_similarity
    import cv2

    from rtface.geometry.camera import Intrinsics

    from .detect import Detector
    nd, sd = root / "neutral", root / "smiling"
    if not nd.is_dir() or not sd.is_dir():
        return None
    det = Detector()
    out = []
    try:
        for npath in sorted(nd.glob("*.jpg")):
            pid = npath.stem.split("_")[0]
            spaths = sorted(sd.glob(f"{pid}_*.jpg"))
            if not spaths:
                continue
            pf = []
            for p in (npath, spaths[0]):
                img = cv2.imread(str(p))[:, :, ::-1].copy()
                lm = det.landmarks_px(img)
                if lm is None:
                    break
                h, w = img.shape[:2]
                pf.append(det.posefree(lm, Intrinsics.from_config(w, h))[0])
            if len(pf) == 2:
                out.append((pid, solve(m, remove_similarity(pf[1] - pf[0], c, w_align)[0], row_w)))
    finally:
        det.close()
    return out


def landmark_label(i: int, c: np.ndarray, sets: dict[str, set[int]]) -> str:
    """Rough anatomical reading of canonical landmark i (subject's L/R) from MediaPipe's connection sets and
    the canonical position."""
    x, y, z = c[i]
    side = "" if abs(x) < 0.3 else ("L " if x > 0 else "R ")
    if i >= 468:
        return side + "iris"
    for name in ("lips_inner", "lips_outer"):
        if i in sets[name]:
            part = "corner" if abs(x) > 2.0 else ("upper" if y > -4.4 else "lower")
            return f"{side}{'inner' if name == 'lips_inner' else 'outer'} lip {part}"
    for name in ("eye", "brow"):
        if i in sets[name]:
            if name == "brow":
                return side + ("inner brow" if abs(x) < 3.0 else "outer brow")
            yc = 2.6
            return side + ("upper lid" if y > yc else "lower lid")
    if i in sets["oval"]:
        return side + ("jaw/chin contour" if y < -3 else "face contour")
    if y > 4.5:
        return side + "forehead/glabella"
    if abs(x) < 1.8 and -3.0 < y < 3.5 and z > 5.0:
        return side + "nose"
    if y < -6.0:
        return side + "chin"
    if -6.0 <= y < -3.0:
        return side + "perioral/lower face"
    return side + "cheek"


def connection_sets() -> dict[str, set[int]]:
    """Landmark sets from MediaPipe's own connection lists (build-time dependency on mediapipe)."""
    from mediapipe.python.solutions import face_mesh_connections as fc

    def ids(conns) -> set[int]:
        return {int(a) for e in conns for a in e}
    lips = ids(fc.FACEMESH_LIPS)
    inner = {78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191}
    return {"lips_inner": lips & inner, "lips_outer": lips - inner,
            "eye": ids(fc.FACEMESH_LEFT_EYE) | ids(fc.FACEMESH_RIGHT_EYE),
            "brow": ids(fc.FACEMESH_LEFT_EYEBROW) | ids(fc.FACEMESH_RIGHT_EYEBROW),
            "oval": ids(fc.FACEMESH_FACE_OVAL)}
