"""Eye opening from MediaPipe face-mesh landmarks: lid distance normalised by eye width, per eye.

The ratio is the eye aspect ratio of Soukupova & Cech (2016) with three lid pairs: the mean distance between the
upper and lower lid at three points along the eye, divided by the corner-to-corner width, both measured on the
image-plane landmarks (x, y in px; MediaPipe's z is left out: on the rendered AU43 sequence it raised the ratio
of a fully closed eye from 0.05-0.08 to 0.09-0.11). The ratio needs no head pose and no neutral face; it is
scale-free but foreshortened by head pitch (about cos(pitch)) and widened by yaw (about 1 / cos(yaw)), which the
per-person open-eye baseline in :mod:`rtface.signals.eye_state` partly absorbs.

"Left" and "right" are the subject's own (OpenFace / FACS convention): the left eye is on the image's right in a
non-mirrored camera image (MediaPipe landmarks 263/362; checked with FACSHuman's left-only AU43 render).
Pure functions; safe from any thread.
"""
from __future__ import annotations

import numpy as np

# (upper lid, lower lid) pairs from the outer to the inner part of the eye, and (corner, corner)
LEFT_LIDS = ((387, 373), (386, 374), (385, 380))
LEFT_CORNERS = (263, 362)
RIGHT_LIDS = ((160, 144), (159, 145), (158, 153))
RIGHT_CORNERS = (33, 133)

_LU = np.array([a for a, _ in LEFT_LIDS])
_LL = np.array([b for _, b in LEFT_LIDS])
_RU = np.array([a for a, _ in RIGHT_LIDS])
_RL = np.array([b for _, b in RIGHT_LIDS])


def _ratio(p: np.ndarray, upper: np.ndarray, lower: np.ndarray, corners: tuple[int, int]) -> float:
    d = p[upper] - p[lower]
    lid = float(np.mean(np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])))
    w = p[corners[0]] - p[corners[1]]
    width = float(np.sqrt(w[0] * w[0] + w[1] * w[1]))
    return lid / width if width > 1e-6 else float("nan")


def lid_ratios(landmarks_px: np.ndarray) -> tuple[float, float]:
    """(left, right) lid distance / eye width from (478, 2+) landmarks in px. NaN for a degenerate eye."""
    p = np.asarray(landmarks_px)
    if p.ndim != 2 or p.shape[0] < 468 or p.shape[1] < 2:
        raise ValueError(f"landmarks must be (478, 3) or (468, 2+), got shape {p.shape}")
    return _ratio(p, _LU, _LL, LEFT_CORNERS), _ratio(p, _RU, _RL, RIGHT_CORNERS)
