"""Pose features of the population face model's pose response (what MediaPipe's reported face shape does as the
head turns, pitches, rolls and shrinks in the image).

``features(yaw_deg, pitch_deg, roll_deg, iod_px)`` -> (P,) float64 in the order of ``FEATURE_NAMES``, polynomials of
the angles in radians; 0 for a frontal, upright face. The face size in the image (``iod_px``, the distance between
the outer eye corners 33 and 263) is accepted but not a feature: MediaPipe reads every face from a fixed-size crop,
and size terms fitted on renders picked up the renders' perspective instead (a 2x scaled photo then read AUs).
Pure functions.
"""
from __future__ import annotations

import math

import numpy as np

FEATURE_NAMES = ("yaw", "pitch", "roll", "yaw2", "pitch2", "roll2", "yaw_pitch", "yaw3", "pitch3", "yaw_roll",
                 "pitch_roll")
N_FEATURES = len(FEATURE_NAMES)
EYE_CORNERS = (33, 263)


def features(yaw_deg: float, pitch_deg: float, roll_deg: float, iod_px: float) -> np.ndarray:
    """(P,) pose features (module doc)."""
    y, p, r = math.radians(yaw_deg), math.radians(pitch_deg), math.radians(roll_deg)
    return np.array([y, p, r, y * y, p * p, r * r, y * p, y * y * y, p * p * p, y * r, p * r])


def features_batch(pose_deg: np.ndarray, iod_px: np.ndarray) -> np.ndarray:
    """(N, P) features for (N, 3) yaw, pitch, roll degrees and (N,) eye-corner distances in px."""
    y, p, r = np.deg2rad(np.asarray(pose_deg, dtype=np.float64)).T
    return np.stack([y, p, r, y * y, p * p, r * r, y * p, y * y * y, p * p * p, y * r, p * r], axis=1)


def eye_corner_distance_px(landmarks_px: np.ndarray) -> float:
    """Distance between the outer eye corners (33, 263) in image px (x, y only)."""
    a, b = landmarks_px[EYE_CORNERS[0], :2], landmarks_px[EYE_CORNERS[1], :2]
    return float(math.hypot(float(a[0] - b[0]), float(a[1] - b[1])))
