"""Head pose and pose-free landmarks from metric landmarks (weighted similarity Procrustes to the canonical model).

Frames
- camera: OpenCV axes, x right, y down, z forward (cm).
- canonical: MediaPipe canonical model axes, x to the subject's left, y UP, z out of the face towards the viewer (cm).

Fit: ``metric_i ~ s * R @ canonical_i + t`` with MediaPipe's 33 rigid landmarks and weights. ``R`` (``HeadPose.
rotation``) maps canonical -> camera; a frontal, upright face has ``R ~ diag(1, -1, -1)``.
Pose-free landmarks: the inverse similarity applied to all metric landmarks, ``(1/s) R^T (metric_i - t)``,
i.e. the face in the canonical frame at canonical scale.

Angle convention (matches OpenFace 2.x ``pose_Rx/Ry/Rz``, reported here in degrees): OpenFace's head frame at zero
rotation coincides with the camera axes (face looking into the camera), and its rotation is ``R = Rx(pitch) @
Ry(yaw) @ Rz(roll)`` (OpenFace source comment: "XYZ convention R = Rx * Ry * Rz, left-handed positive sign",
in ``Euler2RotationMatrix``) with standard rotation matrices in the camera frame. We build that head rotation as
``R_head = R @ diag(1, -1, -1)`` and decompose it the same way. Resulting signs (checked on real photos in
tests/integration/test_canonical_real.py):
- ``pitch_deg`` (pose_Rx) > 0: head tilts DOWN (chin towards chest, nose moves down in the image).
- ``yaw_deg`` (pose_Ry) > 0: head turns towards the SUBJECT'S RIGHT (nose moves to the image left).
- ``roll_deg`` (pose_Rz) > 0: head rolls CLOCKWISE as seen in the image (towards the subject's left shoulder).
So an image rotated counter-clockwise on screen (OpenCV ``getRotationMatrix2D`` with a positive angle) lowers roll.
Radians for OpenFace-compatible CSVs: ``math.radians(yaw_deg)`` etc.

Translation ``tx, ty, tz`` (cm, camera frame) is the camera-frame position of the face centre, defined as the centroid
of the 478 canonical vertices (canonical (0, -0.61, 4.15) cm), mapped by the fitted similarity; OpenFace likewise
reports the centre of its landmark model (in mm).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtface.geometry.camera import CANONICAL_TO_CAMERA_AXES
from rtface.geometry.canonical_model import CanonicalModel, load_canonical_model
from rtface.kernels.face_geometry import pose_fit_kernel
from rtface.records import HeadPose


@dataclass(frozen=True)
class PoseFit:
    """Result of :func:`fit_pose`: the similarity canonical -> camera and what follows from it."""

    pose: HeadPose
    scale: float
    rotation: np.ndarray  # (3, 3) canonical -> camera
    translation_cm: np.ndarray  # (3,) camera position of the canonical origin
    posefree_cm: np.ndarray  # (478, 3) float64 canonical frame
    rms_cm: float  # weighted RMS residual of the rigid landmarks after the fit (canonical scale)


def euler_xyz_from_matrix(r_head: np.ndarray) -> tuple[float, float, float]:
    """Angles (rx, ry, rz) in radians with ``r_head = Rx(rx) @ Ry(ry) @ Rz(rz)`` (OpenFace order)."""
    ry = math.asin(max(-1.0, min(1.0, float(r_head[0, 2]))))
    rx = math.atan2(-float(r_head[1, 2]), float(r_head[2, 2]))
    rz = math.atan2(-float(r_head[0, 1]), float(r_head[0, 0]))
    return rx, ry, rz


def matrix_from_euler_xyz(rx: float, ry: float, rz: float) -> np.ndarray:
    """Inverse of :func:`euler_xyz_from_matrix` (radians): ``Rx(rx) @ Ry(ry) @ Rz(rz)``."""
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    rxm = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rym = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rzm = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rxm @ rym @ rzm


class PoseSolver:
    """Weighted Procrustes of metric landmarks onto the canonical model. Stateless after construction."""

    def __init__(self, model: CanonicalModel | None = None, weights_478: np.ndarray | None = None) -> None:
        """``weights_478``: alignment weights per landmark (default: MediaPipe's 33 Procrustes weights)."""
        self.model = model or load_canonical_model()
        w478 = self.model.weights_478 if weights_478 is None else np.asarray(weights_478, dtype=np.float64)
        if w478.shape != (self.model.vertices_cm.shape[0],) or not (w478 >= 0).all() or not w478.sum() > 0:
            raise ValueError(f"PoseSolver: weights_478 must be ({self.model.vertices_cm.shape[0]},), >= 0, sum > 0")
        ids = np.nonzero(w478)[0]
        self._ids = np.ascontiguousarray(ids)
        self._w = np.ascontiguousarray(w478[ids])
        self._can_rigid = np.ascontiguousarray(self.model.vertices_cm[ids])
        self._centre_can = self.model.vertices_cm.mean(axis=0)

    def fit(self, metric_cm: np.ndarray) -> PoseFit:
        """Pose of one face from its metric landmarks (478, 3) cm camera frame."""
        metric = np.ascontiguousarray(metric_cm, dtype=np.float64)
        s, rot, t, posefree, rms = pose_fit_kernel(metric, self._ids, self._w, self._can_rigid)  # posefree rows:
        # (1/s) R^T (p - t); rms: weighted residual of the rigid points, canonical scale
        rx, ry, rz = euler_xyz_from_matrix(rot @ CANONICAL_TO_CAMERA_AXES)
        centre = s * rot @ self._centre_can + t
        pose = HeadPose(
            yaw_deg=math.degrees(ry), pitch_deg=math.degrees(rx), roll_deg=math.degrees(rz),
            tx_cm=float(centre[0]), ty_cm=float(centre[1]), tz_cm=float(centre[2]),
            scale=float(s), rotation=rot,
        )
        return PoseFit(pose, float(s), rot, t, posefree, rms)
