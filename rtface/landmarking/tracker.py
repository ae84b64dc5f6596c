"""Face identity tracker: keeps face ids stable while a face stays in view (greedy IoU matching of boxes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes a (n, 4) and b (m, 4), x0 y0 x1 y1."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


@dataclass
class _Track:
    face_id: int
    bbox: np.ndarray
    missing: int = 0
    score: float = float("nan")


class FaceTracker:
    """Assigns ids; a face unseen for more than ``max_missing`` frames is forgotten and a new id is issued.

    Owned by the landmark stage (processing thread). Ids start at 0 and are never reused within a session.
    """

    def __init__(self, *, min_iou: float = 0.3, max_missing: int = 15) -> None:
        self.min_iou = min_iou
        self.max_missing = max_missing
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, boxes: np.ndarray, scores: np.ndarray) -> tuple[list[int], list[float]]:
        """Match this frame's boxes (n, 4) to tracks. Returns (ids, scores) in the order of ``boxes``.

        A NaN score inherits the track's last known score (the legacy mesh reports none while tracking).
        """
        n = len(boxes)
        ids = [-1] * n
        out_scores = [float(s) for s in scores]
        prev = np.array([t.bbox for t in self._tracks]).reshape(-1, 4)
        iou = iou_matrix(np.asarray(boxes, float).reshape(-1, 4), prev)
        used: set[int] = set()
        for flat in np.argsort(-iou, axis=None):
            i, j = divmod(int(flat), max(len(self._tracks), 1))
            if not self._tracks or iou[i, j] < self.min_iou:
                break
            if ids[i] != -1 or j in used:
                continue
            ids[i], used = self._tracks[j].face_id, used | {j}
            tr = self._tracks[j]
            tr.bbox, tr.missing = np.asarray(boxes[i], float), 0
            if np.isnan(out_scores[i]):
                out_scores[i] = tr.score
            else:
                tr.score = out_scores[i]
        for j, tr in enumerate(self._tracks):
            if j not in used:
                tr.missing += 1
        self._tracks = [t for t in self._tracks if t.missing <= self.max_missing]
        for i in range(n):
            if ids[i] == -1:
                tr = _Track(self._next_id, np.asarray(boxes[i], float), 0, out_scores[i])
                self._next_id += 1
                self._tracks.append(tr)
                ids[i] = tr.face_id
        return ids, out_scores

    def reset(self) -> None:
        """Forget every track; ids start at 0 again (independent still images: ids are per image)."""
        self._tracks = []
        self._next_id = 0

    def set_scores(self, ids: list[int], scores: list[float]) -> None:
        for t in self._tracks:
            if t.face_id in ids:
                t.score = scores[ids.index(t.face_id)]
