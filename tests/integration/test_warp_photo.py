"""Mechanism test of the build's photo warp (scripts/face_model/warp.py), real MediaPipe on a real London photo:
a zero field leaves the photo as it is, and moving the mouth corners outwards moves them outwards in what MediaPipe
reports, by part of the applied motion (MediaPipe follows skin motion only partly)."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("scipy")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
from face_model.geometry import posefree_batch  # noqa: E402
from face_model.real_faces import Detector, _lm  # noqa: E402
from face_model.warp import warp_photo  # noqa: E402

PHOTO = REPO / "tests" / "data" / "faces" / "london" / "neutral" / "001_03.jpg"
CORNERS = (61, 291)  # mouth corners; the subject's right one at -x in the canonical frame


def test_warp_moves_what_mediapipe_reports() -> None:
    img = cv2.imread(str(PHOTO))
    det = Detector()
    try:
        lm = _lm(det, img)
        h, w = img.shape[:2]
        pf = posefree_batch(lm[None], w, h)[0][0]
        assert np.array_equal(warp_photo(img, lm, pf, np.zeros((478, 3))), img)
        d = np.zeros((478, 3))
        d[CORNERS[0], 0], d[CORNERS[1], 0] = -0.4, 0.4  # 4 mm outwards each
        out = warp_photo(img, lm, pf, d)
        lw = _lm(det, out)
    finally:
        det.close()
    assert not np.array_equal(out, img)
    moved = posefree_batch(lw[None], w, h)[0][0] - pf
    gain = (moved[CORNERS[1], 0] - moved[CORNERS[0], 0]) / 0.8
    assert 0.1 < gain < 1.5, gain  # outwards, by part of the applied motion
    far = [10, 152, 33, 263]  # forehead, chin, eye corners: barely moved
    assert np.abs(moved[far]).max() < 0.1
