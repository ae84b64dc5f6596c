"""Render hm08 + FACSHuman AU deltas, detect with MediaPipe, and measure per-target landmark slopes (build-time).

A job is (view index, {target: weight}); the neutral of each view is the job with an empty dict. Rendering can run
in a small process pool (fork) while the parent process runs MediaPipe on the images in order.
"""
from __future__ import annotations

import multiprocessing as mp_proc
from dataclasses import dataclass

import numpy as np

from rtface.geometry.camera import Intrinsics

from .detect import Detector
from .hm08 import Hm08Head
from .render import Camera, render


@dataclass(frozen=True)
class View:
    """One camera/light condition: head yaw/pitch (deg) and a light direction (x right, y up, z to camera)."""
    yaw_deg: float
    pitch_deg: float
    light: tuple[float, float, float]


VIEWS = (View(0.0, 0.0, (0.3, 0.4, 1.0)), View(-8.0, 4.0, (-0.5, 0.5, 1.0)), View(8.0, -4.0, (0.6, 0.1, 1.0)))
Job = tuple[int, tuple[tuple[str, float], ...]]

_HEAD: Hm08Head | None = None
_VIEWS: tuple[View, ...] = VIEWS


def camera_for(view: View, head: Hm08Head | None = None) -> Camera:
    if head is None:
        return Camera(yaw_deg=view.yaw_deg, pitch_deg=view.pitch_deg)
    return Camera(yaw_deg=view.yaw_deg, pitch_deg=view.pitch_deg, distance=head.cam_distance,
                  target=head.cam_target)


def render_job(job: Job, head: Hm08Head | None = None, return_ids: bool = False):
    """Render one job -> RGB uint8 (and ids when asked)."""
    h = head if head is not None else _HEAD
    assert h is not None
    vi, combo = job
    v = h.base.copy()
    for name, w in combo:
        v += w * h.delta(name)
    view = _VIEWS[vi]
    return render(v, h.base, h.tris, h.tri_mat, h.two_sided, h.paint, camera_for(view, h),
                  np.asarray(view.light), return_ids=return_ids)


def _init(head: Hm08Head, views: tuple[View, ...]) -> None:
    global _HEAD, _VIEWS
    _HEAD, _VIEWS = head, views


def run_jobs(head: Hm08Head, jobs: list[Job], workers: int, views: tuple[View, ...] = VIEWS,
             log=print) -> tuple[dict[Job, np.ndarray], dict[Job, np.ndarray]]:
    """Render + detect every job. Returns (posefree canonical cm (478,3), raw px landmarks) keyed by job.
    Raises RuntimeError naming the job when MediaPipe finds no face."""
    _init(head, views)
    det = Detector()
    cam = Camera()
    intr = Intrinsics(cam.focal, cam.focal, cam.size / 2.0, cam.size / 2.0)
    out: dict[Job, np.ndarray] = {}
    raw: dict[Job, np.ndarray] = {}
    pool = None
    if workers > 1:
        pool = mp_proc.get_context("fork").Pool(workers, initializer=_init, initargs=(head, views))
        images = pool.imap(render_job, jobs, chunksize=2)
    else:
        images = map(render_job, jobs)
    try:
        for n, (job, img) in enumerate(zip(jobs, images)):
            lm = det.landmarks_px(img)
            if lm is None:
                raise RuntimeError(f"MediaPipe found no face in render job {job}")
            raw[job] = lm
            out[job] = det.posefree(lm, intr)[0]
            if (n + 1) % 50 == 0:
                log(f"  {n + 1}/{len(jobs)} renders detected")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        det.close()
    return out, raw


def slopes(meas: dict[Job, np.ndarray], target: str, weights: tuple[float, ...], n_views: int
           ) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Least-squares slope through the origin of displacement vs weight, per view, then averaged.

    Returns (mean slope (478,3) cm/unit, per-view slopes (V,478,3), pooled linearity R^2 (fraction of the
    displacement variance the linear model explains, over all views/landmarks/coords), the w=1 mean displacement)."""
    w = np.asarray(weights)
    per_view, res, tot = [], 0.0, 0.0
    full = []
    for vi in range(n_views):
        n0 = meas[(vi, ())]
        d = np.stack([meas[(vi, ((target, float(wk)),))] - n0 for wk in w])      # (W,478,3)
        b = np.tensordot(w, d, axes=1) / float(w @ w)
        per_view.append(b)
        res += float(((d - w[:, None, None] * b) ** 2).sum())
        tot += float((d ** 2).sum())
        full.append(d[int(np.argmax(w))])
    return np.mean(per_view, 0), np.stack(per_view), 1.0 - res / max(tot, 1e-30), np.mean(full, 0)


# Landmarks on the lid margins and the inner lip line sit on an aperture edge: the pixel under them may show the
# eyeball or the mouth cavity. They are snapped to the nearest skin pixel searching up (upper lid / upper lip) or
# down (lower lid / lower lip) in the image.
SNAP_UP = (159, 158, 157, 160, 161, 386, 385, 384, 387, 388, 246, 466, 173, 398,
           13, 82, 81, 80, 191, 312, 311, 310, 415)
SNAP_DOWN = (145, 144, 153, 154, 163, 374, 373, 380, 381, 390, 7, 249, 155, 382,
             14, 87, 178, 88, 95, 317, 402, 318, 324)


def _surface_pixels(lm_px: np.ndarray, tid: np.ndarray, skin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    size = tid.shape[0]
    px = np.clip(np.round(lm_px[:, 0] - 0.5).astype(int), 0, size - 1)
    py = np.clip(np.round(lm_px[:, 1] - 0.5).astype(int), 0, size - 1)
    for ids, step in ((SNAP_UP, -1), (SNAP_DOWN, 1)):
        for i in ids:
            for k in range(0, 12):
                y = int(np.clip(py[i] + step * k, 0, size - 1))
                if skin[y, px[i]]:
                    py[i] = y
                    break
    return px, py


def geometric_transfer(head: Hm08Head, lm_px: np.ndarray, posefree: np.ndarray, w478: np.ndarray,
                       targets: list[str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Transfer source deltas to the 478 landmarks through the frontal neutral render's pixel->surface map.

    Each detected landmark is pinned to the visible hm08 surface point under it (triangle + barycentrics of the
    z-buffer; aperture landmarks snapped to the lid/lip skin, see SNAP_UP/SNAP_DOWN); its delta is interpolated
    there and mapped to the canonical frame by the weighted similarity between those surface points (dm) and the
    detected pose-free landmarks (cm). Returns ({target: (478,3)}, valid mask (478,) = landmark lies on a front
    surface, not background/cavity)."""
    from rtface.kernels.procrustes import weighted_similarity_ref

    from .render import MAT_SKIN
    _, tid, bar = render_job((0, ()), head, return_ids=True)
    skin = tid >= 0
    skin[skin] = head.tri_mat[tid[skin]] == MAT_SKIN
    px, py = _surface_pixels(lm_px, tid, skin)
    t = tid[py, px]
    valid = t >= 0
    bw = bar[py, px]
    tv = head.tris[np.where(valid, t, 0)]
    surf = np.einsum("mk,mkd->md", bw, head.base[tv])
    s, rot, _ = weighted_similarity_ref(surf, posefree, w478 * valid)
    out = {}
    for name in targets:
        dl = np.einsum("mk,mkd->md", bw, head.delta(name)[tv])
        out[name] = np.where(valid[:, None], s * dl @ rot.T, 0.0)
    return out, valid
