"""Backend: full-range face detector + FaceMesh on a crop around each face (small and many faces).

The full-range BlazeFace model finds faces down to ~40 px (multi_face.jpg: 5 of 5 where whole-frame FaceMesh finds
1). Each face is cropped square around its detection box (or around last frame's landmarks while it is tracked),
scaled so the crop is ``crop_px`` wide, and meshed with a static FaceMesh. Cost grows with the number of faces.
"""
from __future__ import annotations

import cv2
import numpy as np

from rtface.landmarking.base import RawFace, landmarks_bbox, mp_landmarks_to_px
from rtface.landmarking.tracker import iou_matrix


class CropMeshBackend:
    """Owned by the processing thread."""

    def __init__(self, *, max_faces: int, min_detection_confidence: float, crop_scale: float = 1.8,
                 crop_px: int = 256, redetect_every: int = 1) -> None:
        from rtface.landmarking.mp_import import solutions

        sol = solutions()
        self._det = sol.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_detection_confidence)
        self._mesh = sol.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3)
        self.max_faces = max_faces
        self.crop_scale = crop_scale
        self.crop_px = crop_px
        self.redetect_every = max(1, redetect_every)
        self._frame = 0
        self._prev: list[tuple[np.ndarray, float]] = []  # (bbox from landmarks, score) of last frame

    def _detections(self, rgb: np.ndarray) -> list[tuple[np.ndarray, float]]:
        h, w = rgb.shape[:2]
        res = self._det.process(rgb)
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h], np.float32)
            out.append((box, float(d.score[0])))
        out.sort(key=lambda t: -t[1])
        return out

    def _mesh_in(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        h, w = rgb.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1]) * self.crop_scale
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        s = int(round(side))
        if s < 8:
            return None
        # pad by copying into a black square so crops at the border keep their geometry
        crop = np.zeros((s, s, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + s), min(h, y0 + s)
        if sx1 <= sx0 or sy1 <= sy0:
            return None
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
        scaled = cv2.resize(crop, (self.crop_px, self.crop_px), interpolation=cv2.INTER_LINEAR)
        res = self._mesh.process(scaled)
        if not res.multi_face_landmarks:
            return None
        return mp_landmarks_to_px(res.multi_face_landmarks[0], s, s, x0, y0)

    def detect(self, image_bgr: np.ndarray, t_media_ns: int) -> list[RawFace]:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        boxes: list[tuple[np.ndarray, float]] = list(self._prev)
        if self._frame % self.redetect_every == 0 or not boxes:
            for box, score in self._detections(rgb):
                if not boxes or iou_matrix(box[None], np.array([b for b, _ in boxes])).max() < 0.3:
                    boxes.append((box, score))
        self._frame += 1
        faces: list[RawFace] = []
        kept: list[tuple[np.ndarray, float]] = []
        for box, score in boxes:
            if len(faces) >= self.max_faces:
                break
            lm = self._mesh_in(rgb, box)
            if lm is None:
                continue
            lb = landmarks_bbox(lm)
            if kept and iou_matrix(lb[None], np.array([k for k, _ in kept])).max() > 0.5:  # two boxes converged on the same face
                continue
            kept.append((lb, score))
            faces.append(RawFace(lm, score))
        self._prev = kept
        return faces

    def close(self) -> None:
        for obj in (self._det, self._mesh):
            obj.close()
        self._prev = []
