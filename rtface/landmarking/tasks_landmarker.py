"""Backend: MediaPipe Tasks FaceLandmarker, for users who have a ``face_landmarker.task`` bundle.

The bundle is not shipped in any wheel and cannot be downloaded here, so this is opt-in (``task_file``). It runs in
VIDEO mode with the frame's real media timestamp (ms, strictly increasing as the API requires).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from rtface.errors import ConfigError
from rtface.landmarking.base import RawFace, mp_landmarks_to_px


class _Wrapped:
    """Adapter so Tasks' list-of-landmarks looks like the legacy NormalizedLandmarkList."""

    def __init__(self, pts) -> None:
        self.landmark = pts


class TasksLandmarkerBackend:
    """Owned by the processing thread."""

    def __init__(self, *, task_file: str, max_faces: int, min_detection_confidence: float,
                 min_tracking_confidence: float) -> None:
        if not os.path.isfile(task_file):
            raise ConfigError(f"stage 'landmarks': field 'task_file': no such file: {task_file}")
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=task_file), running_mode=vision.RunningMode.VIDEO,
            num_faces=max_faces, min_face_detection_confidence=min_detection_confidence,
            min_tracking_confidence=min_tracking_confidence)
        self._lm = vision.FaceLandmarker.create_from_options(opts)
        self._last_ms = -1

    def detect(self, image_bgr: np.ndarray, t_media_ns: int) -> list[RawFace]:
        import mediapipe as mp

        h, w = image_bgr.shape[:2]
        ms = max(t_media_ns // 1_000_000, self._last_ms + 1)
        self._last_ms = ms
        img = mp.Image(image_format=mp.ImageFormat.SRGB, data=cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        res = self._lm.detect_for_video(img, ms)
        return [RawFace(mp_landmarks_to_px(_Wrapped(f), w, h), float("nan")) for f in res.face_landmarks]

    def close(self) -> None:
        if self._lm is not None:
            self._lm.close()
            self._lm = None
