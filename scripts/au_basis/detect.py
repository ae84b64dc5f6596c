"""MediaPipe FaceMesh (legacy solution, refine_landmarks) on renders -> pose-free canonical landmarks (cm).

Uses the runtime's own geometry (rtface.geometry.camera.metric_landmarks + rtface.geometry.pose.PoseSolver) so the
basis is measured through exactly the mapping the runtime applies. Build-time only, single thread.
"""
from __future__ import annotations

import numpy as np

from rtface.geometry.camera import Intrinsics, metric_landmarks
from rtface.geometry.pose import PoseSolver


class Detector:
    """Wraps one FaceMesh instance (static images) and the runtime pose solver."""

    def __init__(self) -> None:
        import mediapipe as mp
        self._fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                   refine_landmarks=True, min_detection_confidence=0.3)
        self._pose = PoseSolver()

    def landmarks_px(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478,3) x px, y px, z = MediaPipe z * width; None when no face is found."""
        res = self._fm.process(rgb)
        if not res.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        lm = res.multi_face_landmarks[0].landmark
        return np.array([[p.x * w, p.y * h, p.z * w] for p in lm], dtype=np.float64)

    def posefree(self, lm_px: np.ndarray, intr: Intrinsics) -> tuple[np.ndarray, float, np.ndarray]:
        """Runtime mapping: px landmarks -> metric camera cm -> canonical frame. Returns (478,3), scale, R."""
        fit = self._pose.fit(metric_landmarks(lm_px, intr))
        return fit.posefree_cm, fit.scale, fit.rotation

    def close(self) -> None:
        self._fm.close()
