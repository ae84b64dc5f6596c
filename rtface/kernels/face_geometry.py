"""Per-frame face geometry in one pass each: metric landmarks from image landmarks, and the pose fit that maps them
to the canonical frame (numba kernels with their NumPy references).

- :data:`metric_kernel` ``(lm, ids, w, cam_pts, fx, fy, cx, cy, refine, weak) -> (metric (N, 3) cm, s_px)``: the
  method of :mod:`rtface.geometry.camera` (weighted similarity of the rigid canonical points onto the px
  landmarks, back-projection, one scale refinement). ``s_px <= 0`` means a degenerate fit (the caller raises).
- :data:`pose_fit_kernel` ``(metric, ids, w, can_rigid) -> (s, R (3, 3), t (3,), posefree (N, 3), rms cm)``: the
  weighted similarity canonical -> camera on the rigid points, the inverse similarity of every point and the
  weighted RMS residual of the rigid points (canonical scale), as :class:`rtface.geometry.pose.PoseSolver`.

Both run without the GIL once compiled (``nogil``): the front thread's MediaPipe call keeps running while the
processing thread is in here. Units: px in, cm out. Pure functions, safe from any thread.
"""
from __future__ import annotations

import math

import numpy as np

from rtface.kernels import procrustes as _procrustes
from rtface.kernels.jit import Kernel, register
from rtface.kernels.procrustes import weighted_similarity_ref

# this module's own binding of the similarity kernel (compiled with the kernels below; the plain function even if
# procrustes' binding is already compiled)
_weighted_similarity = getattr(_procrustes._weighted_similarity, "py_func", _procrustes._weighted_similarity)


# ---------------------------------------------------------------------------------------------- NumPy references
def _backproject_ref(lm: np.ndarray, fx: float, fy: float, cx: float, cy: float, z0: float, zbar: float,
                     s_px: float, weak: bool) -> np.ndarray:
    depth = z0 + (lm[:, 2] - zbar) / s_px
    lateral = z0 if weak else depth
    return np.stack([(lm[:, 0] - cx) * lateral / fx, (lm[:, 1] - cy) * lateral / fy, depth], axis=1)


def metric_ref(lm: np.ndarray, ids: np.ndarray, w: np.ndarray, cam_pts: np.ndarray, fx: float, fy: float,
               cx: float, cy: float, refine: bool, weak: bool) -> tuple[np.ndarray, float]:
    """NumPy reference of :data:`metric_kernel`."""
    sub = lm[ids]
    s_px = weighted_similarity_ref(cam_pts, sub, w, True)[0]
    if not s_px > 0.0:
        return np.zeros_like(lm), s_px
    zbar = float(w @ sub[:, 2] / w.sum())
    z0 = fx / s_px
    metric = _backproject_ref(lm, fx, fy, cx, cy, z0, zbar, s_px, weak)
    if refine:
        s_m = weighted_similarity_ref(cam_pts, metric[ids], w, True)[0]
        if s_m > 0.0:
            metric = _backproject_ref(lm, fx, fy, cx, cy, z0 / s_m, zbar, s_px * s_m, weak)
    return metric, s_px


def pose_fit_ref(metric: np.ndarray, ids: np.ndarray, w: np.ndarray, can_rigid: np.ndarray
                 ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
    """NumPy reference of :data:`pose_fit_kernel`."""
    s, rot, t = weighted_similarity_ref(can_rigid, metric[ids], w, True)
    posefree = ((metric - t) @ rot) / s
    resid = posefree[ids] - can_rigid
    rms = math.sqrt(float(w @ (resid * resid).sum(axis=1)) / float(w.sum()))
    return s, rot, t, posefree, rms


# ---------------------------------------------------------------------------------------------- numba kernels
def _backproject(lm, fx, fy, cx, cy, z0, zbar, s_px, weak, out):
    for i in range(lm.shape[0]):
        depth = z0 + (lm[i, 2] - zbar) / s_px
        lateral = z0 if weak else depth
        out[i, 0] = (lm[i, 0] - cx) * lateral / fx
        out[i, 1] = (lm[i, 1] - cy) * lateral / fy
        out[i, 2] = depth


def _metric(lm, ids, w, cam_pts, fx, fy, cx, cy, refine, weak):
    n = ids.shape[0]
    sub = np.empty((n, 3))
    zbar = 0.0
    wsum = 0.0
    for k in range(n):
        for a in range(3):
            sub[k, a] = lm[ids[k], a]
        zbar += w[k] * sub[k, 2]
        wsum += w[k]
    out = np.zeros((lm.shape[0], 3))
    s_px = _weighted_similarity(cam_pts, sub, w, True)[0]
    if not s_px > 0.0:
        return out, s_px
    zbar /= wsum
    z0 = fx / s_px
    _backproject(lm, fx, fy, cx, cy, z0, zbar, s_px, weak, out)
    if refine:  # a face reconstructed s_m times too big is s_m times too far: move it (and its depth relief) closer
        for k in range(n):
            for a in range(3):
                sub[k, a] = out[ids[k], a]
        s_m = _weighted_similarity(cam_pts, sub, w, True)[0]
        if s_m > 0.0:
            _backproject(lm, fx, fy, cx, cy, z0 / s_m, zbar, s_px * s_m, weak, out)
    return out, s_px


def _pose_fit(metric, ids, w, can_rigid):
    n = ids.shape[0]
    dst = np.empty((n, 3))
    for k in range(n):
        for a in range(3):
            dst[k, a] = metric[ids[k], a]
    s, rot, t = _weighted_similarity(can_rigid, dst, w, True)
    m = metric.shape[0]
    posefree = np.empty((m, 3))
    for i in range(m):
        d0 = metric[i, 0] - t[0]
        d1 = metric[i, 1] - t[1]
        d2 = metric[i, 2] - t[2]
        for b in range(3):
            posefree[i, b] = (d0 * rot[0, b] + d1 * rot[1, b] + d2 * rot[2, b]) / s
    acc = 0.0
    wsum = 0.0
    for k in range(n):
        r2 = 0.0
        for a in range(3):
            e = posefree[ids[k], a] - can_rigid[k, a]
            r2 += e * e
        acc += w[k] * r2
        wsum += w[k]
    return s, rot, t, posefree, math.sqrt(acc / wsum)


register(globals(), ("_weighted_similarity", "_backproject", "_metric", "_pose_fit"), fastmath=False, nogil=True)
metric_kernel = Kernel(globals(), "_metric")
pose_fit_kernel = Kernel(globals(), "_pose_fit")
