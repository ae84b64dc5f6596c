"""What every landmark backend returns: raw faces in image pixels, before tracking assigns ids."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class RawFace:
    """One detected face. Owned by the caller once returned."""

    landmarks_px: np.ndarray  # (478, 3) float32: x, y px; z = MediaPipe z * (width of the region it was solved in)
    confidence: float  # detection score 0..1 (NaN where the backend does not report one)


def landmarks_bbox(landmarks_px: np.ndarray) -> np.ndarray:
    """Tight (x0, y0, x1, y1) box of the x, y landmark columns, float32 px."""
    xy = landmarks_px[:, :2]
    return np.array([xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()], dtype=np.float32)


# Wire layout of one NormalizedLandmark holding exactly x, y, z (what FaceMesh emits): tag+len, then 3 x (tag, f32).
_PB_LANDMARK = np.dtype([("t", "u1"), ("n", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"),
                         ("tz", "u1"), ("z", "<f4")])
_PB_TAGS = (("t", 0x0A), ("n", 15), ("tx", 0x0D), ("ty", 0x15), ("tz", 0x1D))


def _fast_xyz(landmark_list, n: int) -> np.ndarray | None:
    """x, y, z of a NormalizedLandmarkList read straight from its protobuf bytes (about 10x faster than
    iterating the Python objects); None when the bytes are not in the plain x/y/z layout."""
    ser = getattr(landmark_list, "SerializeToString", None)
    if ser is None:
        return None
    raw = ser()
    if len(raw) != n * _PB_LANDMARK.itemsize:
        return None
    rec = np.frombuffer(raw, dtype=_PB_LANDMARK)
    if any((rec[f] != v).any() for f, v in _PB_TAGS):
        return None
    return np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)


def mp_landmarks_to_px(landmark_list, width: float, height: float, x0: float = 0.0, y0: float = 0.0,
                       n: int = 478) -> np.ndarray:
    """Convert a MediaPipe NormalizedLandmarkList of a (width x height) region at (x0, y0) to (n, 3) float32 px."""
    arr = _fast_xyz(landmark_list, n)
    if arr is None:
        arr = np.array([(p.x, p.y, p.z) for p in landmark_list.landmark[:n]], dtype=np.float32)
    if arr.shape[0] != n:
        raise ValueError(f"expected {n} landmarks, got {arr.shape[0]} (is refine_landmarks on?)")
    arr[:, 0] = arr[:, 0] * width + x0
    arr[:, 1] = arr[:, 1] * height + y0
    arr[:, 2] = arr[:, 2] * width
    return arr
