"""Runtime geometry applied to cached render landmarks (build-time): px landmarks -> weak-perspective metric 3D ->
weighted Procrustes -> pose-free shape, pose and eye-corner distance, exactly as rtface's canonical stage does."""
from __future__ import annotations

import numpy as np

from rtface.facemodel.pose_features import eye_corner_distance_px
from rtface.geometry.camera import Intrinsics, metric_landmarks
from rtface.geometry.pose import PoseSolver


def posefree_batch(lm_px: np.ndarray, width: np.ndarray | int, height: np.ndarray | int,
                   projection: str = "weak") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, 478, 3) px -> (posefree (N, 478, 3) cm, pose (N, 3) yaw/pitch/roll deg, iod (N,) px); NaN rows where the
    landmarks are missing."""
    solver = PoseSolver()
    n = len(lm_px)
    pf = np.full((n, 478, 3), np.nan)
    pose = np.full((n, 3), np.nan)
    iod = np.full(n, np.nan)
    w = np.broadcast_to(np.asarray(width), (n,))
    h = np.broadcast_to(np.asarray(height), (n,))
    for i in range(n):
        lm = np.asarray(lm_px[i], dtype=np.float64)
        if not np.isfinite(lm).all():
            continue
        fit = solver.fit(metric_landmarks(lm, Intrinsics.from_config(int(w[i]), int(h[i])), projection=projection))
        pf[i] = fit.posefree_cm
        pose[i] = (fit.pose.yaw_deg, fit.pose.pitch_deg, fit.pose.roll_deg)
        iod[i] = eye_corner_distance_px(lm)
    return pf, pose, iod
