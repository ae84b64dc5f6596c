"""Typed per-frame records. Units are in field names; the processing thread owns every record it builds.

Timestamps
- ``t_capture_ns``: UTC wall clock (``time.time_ns()``) when the grabber received the frame from the device or
  decoder. Used for end-to-end latency.
- ``t_media_ns``: the source's own presentation time: video PTS for files, ns since open for cameras, index / fps
  for image folders. Written to files as ``timestamp`` (seconds), like OpenFace.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

N_LANDMARKS = 478


@dataclass(slots=True)
class FrameMeta:
    index: int  # 0-based frame index within the source
    t_capture_ns: int  # UTC ns when grabbed (see module doc)
    t_media_ns: int  # source presentation time, ns
    width: int  # px
    height: int  # px
    source: str = ""  # human-readable source name (file name, "camera:0", ...)
    still: bool = False  # an independent still image (not part of a sequence): no state carries across frames


@dataclass(slots=True)
class HeadPose:
    """Rigid head pose of a face relative to the camera (OpenCV camera axes: x right, y down, z forward)."""

    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    tx_cm: float
    ty_cm: float
    tz_cm: float
    scale: float  # similarity scale of canonical model to this face (1.0 = canonical size)
    rotation: np.ndarray  # (3, 3) float64 rotation canonical -> camera


@dataclass(slots=True)
class Face:
    """One face in one frame. Core fields are set by the landmark stage; later stages fill the optional ones."""

    face_id: int  # stable while the face stays in view
    confidence: float  # detection / presence confidence 0..1
    bbox_px: np.ndarray  # (4,) float32 x0, y0, x1, y1 in image pixels
    landmarks_px: np.ndarray  # (478, 3) float32: x, y in image px; z relative depth in px units (MediaPipe z * width)
    pose: HeadPose | None = None
    metric_cm: np.ndarray | None = None  # (478, 3) float32 metric 3D in camera frame, cm
    posefree_cm: np.ndarray | None = None  # (478, 3) float32 pose removed (canonical frame, cm)
    canonical_cm: np.ndarray | None = None  # (478, 3) float32 pose and identity removed, expression kept
    neutral_ready: bool = False  # the person's own neutral shape is reliable (refined from frames or explicit)
    shape_frames: float = 0.0  # effective frames behind the person's shape (0 = population prior; inf = explicit)
    rest_au_offset_cm: np.ndarray | None = None  # (478, 3) float32 cm: the AU-shaped part of the person's rest
    # offset their neutral has not taken yet (canonical stage, online person model; None = unknown or none), for
    # the AU stage's floors. Not published or written
    au_intensity: np.ndarray | None = None  # (K,) float32 FACS 0-5 scale, order = AU stage's names
    au_presence: np.ndarray | None = None  # (K,) bool
    emotion: np.ndarray | None = None  # (C,) float32 probabilities, order = emotion stage's class names
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FrameResult:
    """Everything computed for one frame; what the publisher and file writers consume."""

    meta: FrameMeta
    faces: list[Face] = field(default_factory=list)
    stage_ms: dict[str, float] = field(default_factory=dict)  # per-stage wall time for this frame
    extras: dict[str, Any] = field(default_factory=dict)  # stage outputs that are per frame (gaze hits, alerts)
