"""Backend: MediaPipe legacy FaceMesh on the whole frame (the model ships in the mediapipe 0.10.21 wheel).

Fastest path and the default. In tracking mode MediaPipe runs its short-range face detector only when it has lost a
face, so faces far from the camera (smaller than ~1/8 of the frame) may be missed: use the ``detect`` backend for
those. The legacy API reports no per-face score; the landmark stage scores each new face once with the full-range
detector and keeps the score while the track lasts (see tracker).

Timestamps: ``SolutionBase.process`` stamps every frame +33.3 ms, whatever the real frame rate, and builds a new
namedtuple class per call. With the pinned mediapipe we feed the graph directly instead: the frame's real media
time goes in (so MediaPipe's landmark smoothing sees true time steps) and only the landmark stream is read back.
If the private graph attributes are missing (another mediapipe version), it falls back to ``process``.
"""
from __future__ import annotations

import cv2
import numpy as np

from rtface.landmarking.base import RawFace, mp_landmarks_to_px

_OUT = "multi_face_landmarks"


class LegacyMeshBackend:
    """Owned by the processing thread (MediaPipe graphs are not shared between threads)."""

    def __init__(self, *, max_faces: int, static_image: bool, min_detection_confidence: float,
                 min_tracking_confidence: float) -> None:
        from rtface.landmarking.mp_import import solutions

        self._mesh = solutions().face_mesh.FaceMesh(
            static_image_mode=static_image, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_detection_confidence, min_tracking_confidence=min_tracking_confidence)
        self._last_ts_us = 0
        m = self._mesh
        try:
            self._in_type = m._input_stream_type_info["image"]
            self._out_type = m._output_stream_type_info[_OUT]
            self._direct = callable(m._graph.add_packet_to_input_stream) and isinstance(m._graph_outputs, dict)
        except (AttributeError, KeyError, TypeError):
            self._direct = False

    def _landmark_lists(self, rgb: np.ndarray, t_media_ns: int) -> list:
        if not self._direct:
            return list(self._mesh.process(rgb).multi_face_landmarks or [])
        m = self._mesh
        ts = max(t_media_ns // 1000, self._last_ts_us + 1)  # graph timestamps must increase strictly (us)
        self._last_ts_us = ts
        m._graph_outputs.clear()
        m._graph.add_packet_to_input_stream(stream="image", packet=m._make_packet(self._in_type, rgb).at(ts))
        m._graph.wait_until_idle()
        pkt = m._graph_outputs.get(_OUT)
        return [] if pkt is None else list(m._get_packet_content(self._out_type, pkt) or [])

    def detect(self, image_bgr: np.ndarray, t_media_ns: int) -> list[RawFace]:
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        return [RawFace(mp_landmarks_to_px(f, w, h), float("nan")) for f in self._landmark_lists(rgb, t_media_ns)]

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
