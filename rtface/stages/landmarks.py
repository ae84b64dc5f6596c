"""Landmark stage: MediaPipe 478-point face mesh for every face, with stable face ids.

Backends (``backend`` param):
- ``mesh`` (default): legacy FaceMesh on the whole frame, tracking between frames; fastest.
- ``detect``: full-range face detector + FaceMesh per face crop; finds small faces and crowds (slower, per face).
- ``tasks``: MediaPipe Tasks FaceLandmarker from a user-supplied ``task_file``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtface.errors import ConfigError
from rtface.graph.stage import Stage, register_stage
from rtface.landmarking.base import landmarks_bbox
from rtface.landmarking.quiet import NativeLogFilter
from rtface.landmarking.tracker import FaceTracker, iou_matrix
from rtface.records import Face, FrameResult


@dataclass(frozen=True)
class LandmarkParams:
    backend: str = "mesh"  # "mesh" | "detect" | "tasks"
    max_faces: int = 4
    static_image: bool = False  # True: detect from scratch every frame (unrelated images)
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    task_file: str = ""  # path to face_landmarker.task (backend "tasks")
    score_new_faces: bool = True  # mesh backend: score each new face once with the full-range detector
    track_min_iou: float = 0.3  # a face keeps its id if its box overlaps last frame's by at least this
    track_max_missing: int = 15  # frames a face may be missing before its id is retired
    crop_px: int = 256  # detect backend: side of the face crop given to FaceMesh, px
    redetect_every: int = 1  # detect backend: run the detector every N frames (1 = every frame)


_BACKENDS = ("mesh", "detect", "tasks")


@register_stage
class LandmarkStage(Stage):
    kind = "landmarks"
    inputs = ("image",)
    outputs = ("landmarks",)
    Params = LandmarkParams

    def __init__(self, name: str, params: LandmarkParams) -> None:
        super().__init__(name, params)
        p = params
        if p.backend not in _BACKENDS:
            raise ConfigError(f"stage '{name}': field 'backend': {p.backend!r} is not one of {_BACKENDS}")
        if p.backend == "tasks" and not p.task_file:
            raise ConfigError(f"stage '{name}': field 'task_file' is required when backend = 'tasks'")
        if p.max_faces < 1:
            raise ConfigError(f"stage '{name}': field 'max_faces' must be >= 1, got {p.max_faces}")
        for f in ("min_detection_confidence", "min_tracking_confidence"):
            if not 0.0 <= getattr(p, f) <= 1.0:
                raise ConfigError(f"stage '{name}': field '{f}' must be in [0, 1], got {getattr(p, f)}")
        self._backend = None
        self._still_backend = None  # mesh backend in static-image mode, for independent stills
        self._scorer = None
        self._quiet = NativeLogFilter()  # processing thread
        self._quiet_left = 0
        self.stills_only = False  # set by the engine before open() when the source gives only independent stills
        self.tracker = FaceTracker(min_iou=p.track_min_iou, max_missing=p.track_max_missing)

    def _quiet_for(self, frames: int) -> None:
        """Filter MediaPipe's native log lines from now until ``frames`` more frames were processed (its graph
        threads log while they start, after the Python call that created the graph has returned)."""
        self._quiet.start()
        self._quiet_left = max(self._quiet_left, frames)

    def open(self) -> None:
        self._quiet_for(5)
        if self.stills_only and self.params.backend == "mesh" and not self.params.static_image:
            self._backend_for(True)  # photos: only the static-image graph (the tracking graph would go unused)
            return
        self._open_backend()

    def _open_backend(self) -> None:
        p = self.params
        if p.backend == "mesh":
            from rtface.landmarking.legacy_mesh import LegacyMeshBackend

            self._backend = LegacyMeshBackend(
                max_faces=p.max_faces, static_image=p.static_image,
                min_detection_confidence=p.min_detection_confidence,
                min_tracking_confidence=p.min_tracking_confidence)
        elif p.backend == "detect":
            from rtface.landmarking.crop_mesh import CropMeshBackend

            self._backend = CropMeshBackend(max_faces=p.max_faces,
                                            min_detection_confidence=p.min_detection_confidence,
                                            crop_px=p.crop_px, redetect_every=p.redetect_every)
        else:
            from rtface.landmarking.tasks_landmarker import TasksLandmarkerBackend

            self._backend = TasksLandmarkerBackend(
                task_file=p.task_file, max_faces=p.max_faces,
                min_detection_confidence=p.min_detection_confidence,
                min_tracking_confidence=p.min_tracking_confidence)

    def _score(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Full-range detector scores for boxes (NaN where no detection overlaps). Runs only for new faces."""
        import cv2

        from rtface.landmarking.mp_import import solutions

        if self._scorer is None:
            self._quiet_for(3)
            self._scorer = solutions().face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.2)
        h, w = image.shape[:2]
        res = self._scorer.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        dets, scores = [], []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            dets.append([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h])
            scores.append(float(d.score[0]))
        out = np.full(len(boxes), float(self.params.min_detection_confidence))
        if dets:
            iou = iou_matrix(boxes, np.array(dets))
            best = iou.argmax(axis=1)
            ok = iou[np.arange(len(boxes)), best] > 0.2
            out[ok] = np.array(scores)[best[ok]]
        return out

    def _backend_for(self, still: bool):
        """The backend for this frame: independent stills get a static-image FaceMesh (no tracking across
        unrelated images); the detect and tasks backends detect every frame anyway."""
        p = self.params
        if not still or p.backend != "mesh" or p.static_image:
            if self._backend is None:
                self._open_backend()
            return self._backend
        if self._still_backend is None:
            from rtface.landmarking.legacy_mesh import LegacyMeshBackend

            self._quiet_for(5)
            self._still_backend = LegacyMeshBackend(
                max_faces=p.max_faces, static_image=True, min_detection_confidence=p.min_detection_confidence,
                min_tracking_confidence=p.min_tracking_confidence)
        return self._still_backend

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        try:
            self._process(image, result)
        finally:
            if self._quiet_left:
                self._quiet_left -= 1
                if not self._quiet_left:
                    self._quiet.stop()

    def _process(self, image: np.ndarray, result: FrameResult) -> None:
        still = bool(result.meta.still)
        backend = self._backend_for(still)
        if still:
            self.tracker.reset()
        raw = backend.detect(image, result.meta.t_media_ns)
        boxes = np.array([landmarks_bbox(f.landmarks_px) for f in raw], np.float32).reshape(-1, 4)
        scores = np.array([f.confidence for f in raw], float)
        ids, conf = self.tracker.update(boxes, scores)
        if self.params.backend == "mesh" and self.params.score_new_faces and np.isnan(conf).any():
            fresh = self._score(image, boxes)
            conf = [c if not np.isnan(c) else float(s) for c, s in zip(conf, fresh)]
            self.tracker.set_scores(ids, conf)
        result.faces = [Face(face_id=i, confidence=float(c), bbox_px=b, landmarks_px=f.landmarks_px)
                        for i, c, b, f in zip(ids, conf, boxes, raw)]

    def close(self) -> None:
        for obj in (self._backend, self._still_backend, self._scorer):
            if obj is not None:
                obj.close()
        self._backend = self._still_backend = self._scorer = None
        self._quiet.stop()
