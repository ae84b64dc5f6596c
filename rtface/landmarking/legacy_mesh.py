"""Backend: MediaPipe legacy FaceMesh on the whole frame (the model ships in the mediapipe 0.10.21 wheel).

Fastest path and the default. In tracking mode MediaPipe runs its short-range face detector only when it has lost a
face, so faces far from the camera (smaller than ~1/8 of the frame) may be missed: use the ``detect`` backend for
those. The legacy API reports no per-face score; when ``score_new_faces`` is on, a full-range detector run scores
each frame in which the face count changes, and the score is kept while the track lasts (see tracker).
"""
from __future__ import annotations

import cv2
import numpy as np

from rtface.landmarking.base import RawFace, mp_landmarks_to_px


class LegacyMeshBackend:
    """Owned by the processing thread (MediaPipe graphs are not shared between threads)."""

    def __init__(self, *, max_faces: int, static_image: bool, min_detection_confidence: float,
                 min_tracking_confidence: float) -> None:
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static_image, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_detection_confidence, min_tracking_confidence=min_tracking_confidence)
        self._min_det = min_detection_confidence

    def detect(self, image_bgr: np.ndarray, t_media_ns: int) -> list[RawFace]:
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        res = self._mesh.process(rgb)
        faces = res.multi_face_landmarks or []
        return [RawFace(mp_landmarks_to_px(f, w, h), float("nan")) for f in faces]

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
