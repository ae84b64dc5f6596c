"""The population face model: how MediaPipe reports a neutral face across people, head poses and image sizes.

File ``rtface/data/face_model/face_model.npz`` (built by ``scripts/build_face_model.py``; units cm, canonical axes of
``face_model_with_iris.obj``, rows of flattened fields = landmark * 3 + axis):

- ``mean_cm`` (478, 3): the population's mean pose-free neutral face for a frontal, upright face with a 100 px
  eye-corner distance, as ``rtface.geometry`` reports it (weak-perspective camera, weighted Procrustes). Measured on
  real neutral photos (the build says which); it differs from the canonical template by ~0.3 cm RMS per landmark.
- ``pose_fields`` (P, 478, 3): change of the reported neutral shape per unit of each pose feature
  (:mod:`rtface.facemodel.pose_features`), fitted on renders of many faces under many poses. The expected neutral
  shape of a face seen at pose features ``f`` is ``mean_cm + f @ pose_fields``.
- ``identity_modes`` (K, 478, 3): how MediaPipe reports the ICT-FaceKit identity modes (cm per standard deviation of
  the population), fitted on the same renders; ``identity_scale`` (scalar): factor that matches their spread to
  real people (real neutral photos); ``detail_sd_cm`` (478, 3): per-coordinate spread of real people's faces
  that the modes do not explain.
- ``pose_residual_factor`` (R, 478, 3): principal directions (scaled to their standard deviation) of what the pose
  model leaves unexplained when a rendered face turns from frontal; ``pose_residual_gain`` (3,): how that spread
  grows with |yaw|, |pitch|, |roll| (the factor is multiplied by ``gain . |angles| / 30 deg``: zero at frontal).
- ``pose_residual_axis_factor`` (3, R, 478, 3) (optional; the AU floors use it when present): the same residual
  per axis (yaw, pitch, roll), each at 30 deg of its own angle: the residual at a pose is modelled as
  ``sum_a (|angle_a| / 30 deg) z_a``, ``z_a`` independent with factor ``[a]`` (nodding leaves a different and
  larger residual than turning).
- ``single_frame_floor`` (K,) with ``floor_au_names`` (K,): per AU, the 90th percentile of what real neutral photos
  read (FACS) against the population mean with the shipped AU basis and the AU stage's default solver (each photo
  against the mean of the others): the identity part of the single-frame noise floor (rtface.stages.aus).
- ``approach_floor_gain`` (K,) (optional; zeros if absent), same AU order: per AU, FACS per unit of approach rate
  (1/s, minus the rate of change of the log distance to the camera): what a neutral face moving towards the camera
  reads (MediaPipe's tracked landmarks lag a face that grows in the frame), measured on rendered approaches of
  faces outside the validation (``scripts/face_model/approach.py``): the approach part of the AU floors.
- ``turn_floor_gain`` (3, K) (optional; zeros if absent), same AU order, rows yaw / pitch / roll: per AU, FACS per
  deg/s of rotation about that axis: what a neutral face rotating reads (MediaPipe's tracked landmarks lag a turning
  head), measured on rendered rotations of faces outside the validation (``scripts/face_model/turning.py``): the
  turning part of the AU floors.
- ``marginal_sd_cm`` (scalar), ``marginal_single_frame_floor`` (K,) and ``readout_gain`` (2, K) (optional, same
  AU order; the identity-marginalised read-out of rtface.stages.aus is off without them): the residual sd (cm) with
  which the identity modes are integrated out of the AU read-out, that read-out's single-frame floor (as
  ``single_frame_floor``), and per AU the median reading (FACS) of full-weight renders of its morph against the
  same face's neutral render through the plain (row 0) and the marginalised (row 1) read-out.
- ``meta_json``: sources, licences, build date, evaluation numbers.

Loaded once and cached; arrays are read-only, so any thread may read the model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rtface.errors import DataError
from rtface.facemodel.pose_features import FEATURE_NAMES, features

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "face_model" / "face_model.npz"
FORMAT_VERSION = 1
N_LANDMARKS = 478


@dataclass(frozen=True)
class PopulationModel:
    """The loaded population face model (see module doc). Arrays are read-only."""

    mean_cm: np.ndarray  # (478, 3)
    pose_fields: np.ndarray  # (P, 478, 3)
    identity_modes: np.ndarray  # (K, 478, 3) cm per population sd
    identity_scale: float
    detail_sd_cm: np.ndarray  # (478, 3)
    pose_residual_factor: np.ndarray  # (R, 478, 3)
    pose_residual_gain: np.ndarray  # (3,)
    single_frame_floor: np.ndarray  # (K,) FACS
    floor_au_names: tuple[str, ...]
    meta: dict[str, Any]
    path: str
    approach_floor_gain: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) FACS per 1/s of approach
    # rate, order floor_au_names
    pose_residual_axis_factor: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, N_LANDMARKS, 3)))
    # (3, R, 478, 3) cm at 30 deg of yaw / pitch / roll; empty if the file has none
    turn_floor_gain: np.ndarray = field(default_factory=lambda: np.zeros((3, 0)))  # (3, K) FACS per deg/s of
    # yaw / pitch / roll, order floor_au_names
    marginal_sd_cm: float = 0.0  # residual sd of the identity-marginalised read-out (0 = the model has none)
    marginal_single_frame_floor: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) FACS
    readout_gain: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)))  # (2, K) FACS: plain, marginalised

    @staticmethod
    def pose_residual_axis_scales(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
        """(3,) factor on each of ``pose_residual_axis_factor``'s axes at this pose (|angle| / 30 deg)."""
        return np.abs(np.array([yaw_deg, pitch_deg, roll_deg], dtype=np.float64)) / 30.0

    def approach_floor_for(self, names: tuple[str, ...]) -> np.ndarray:
        """The approach-floor gains (FACS per 1/s) in the order of ``names``; 0 for an AU the model has none for."""
        idx = {n: i for i, n in enumerate(self.floor_au_names)}
        g = self.approach_floor_gain
        return np.array([g[idx[n]] if n in idx and idx[n] < len(g) else 0.0 for n in names], dtype=np.float64)

    def turn_floor_for(self, names: tuple[str, ...]) -> np.ndarray:
        """(3, len(names)) the turning-floor gains (FACS per deg/s; rows yaw, pitch, roll) in the order of ``names``;
        0 for an AU the model has none for."""
        idx = {n: i for i, n in enumerate(self.floor_au_names)}
        g = np.c_[self.turn_floor_gain, np.zeros(3)]  # (3, K + 1): the last column for AUs the model lacks
        return g[:, [idx.get(n, g.shape[1] - 1) for n in names]].astype(np.float64)

    def single_frame_floor_for(self, names: tuple[str, ...]) -> np.ndarray | None:
        """The measured single-frame floor in the order of ``names``, or None if the model has no value for one
        of them (another AU basis)."""
        idx = {n: i for i, n in enumerate(self.floor_au_names)}
        if not all(n in idx for n in names):
            return None
        return np.array([self.single_frame_floor[idx[n]] for n in names], dtype=np.float64)

    def marginal_readout_for(self, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        """(single-frame floor (K,), read-out gains (2, K)) of the identity-marginalised read-out in the order of
        ``names``, or None if the model has none or lacks one of the AUs."""
        idx = {n: i for i, n in enumerate(self.floor_au_names)}
        if self.marginal_sd_cm <= 0 or not all(n in idx for n in names):
            return None
        ii = [idx[n] for n in names]
        return self.marginal_single_frame_floor[ii].astype(np.float64), self.readout_gain[:, ii].astype(np.float64)

    def expected_neutral(self, yaw_deg: float, pitch_deg: float, roll_deg: float, iod_px: float) -> np.ndarray:
        """(478, 3) the population's mean neutral as MediaPipe reports it at this pose and face size."""
        f = features(yaw_deg, pitch_deg, roll_deg, iod_px)
        return self.mean_cm + np.tensordot(f, self.pose_fields, axes=1)

    def pose_offset(self, yaw_deg: float, pitch_deg: float, roll_deg: float, iod_px: float) -> np.ndarray:
        """(478, 3) the pose response alone (expected neutral at this pose minus the frontal mean)."""
        f = features(yaw_deg, pitch_deg, roll_deg, iod_px)
        return (f @ self.pose_fields.reshape(len(f), -1)).reshape(-1, 3)

    def pose_residual_scale(self, yaw_deg: float, pitch_deg: float, roll_deg: float) -> float:
        """Factor on ``pose_residual_factor`` at this pose (0 at frontal): ``gain . |angles| / 30 deg``."""
        return float(self.pose_residual_gain @ self.pose_residual_axis_scales(yaw_deg, pitch_deg, roll_deg))

    def identity_factor(self) -> np.ndarray:
        """(K, 1434) identity covariance factor scaled to real people (rows = modes)."""
        return identity_factor(self.identity_modes, self.identity_scale)


def identity_factor(modes: np.ndarray, scale: Any) -> np.ndarray:
    """(K, 1434) cm: identity modes (K, 478, 3) times the scale to real people, one row per mode (the model's
    ``identity_factor``; also what the face-model build integrates out). Keeps the dtype NumPy gives ``modes *
    scale``."""
    return (modes * scale).reshape(modes.shape[0], -1)


def _get(z: Any, key: str, path: Path, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if key not in z.files:
        raise DataError(f"face model {path}: missing field '{key}'")
    arr = np.asarray(z[key])
    if shape is not None and (arr.ndim != len(shape) or any(s != -1 and s != a for s, a in zip(shape, arr.shape))):
        raise DataError(f"face model {path}: field '{key}' has shape {arr.shape}, expected {shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"face model {path}: field '{key}' has non-finite values")
    return arr


def _read(path: Path) -> PopulationModel:
    if not path.is_file():
        raise DataError(f"face model {path}: file not found")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"face model {path}: not a readable .npz: {exc}") from exc
    with z:
        version = int(_get(z, "format_version", path))
        if version != FORMAT_VERSION:
            raise DataError(f"face model {path}: format_version {version} not supported (expected {FORMAT_VERSION})")
        names = tuple(str(n) for n in _get(z, "pose_feature_names", path))
        if names != FEATURE_NAMES:
            raise DataError(f"face model {path}: field 'pose_feature_names' {names} does not match this rtface "
                            f"({FEATURE_NAMES})")
        n = N_LANDMARKS
        arrays = {
            "mean_cm": _get(z, "mean_cm", path, (n, 3)),
            "pose_fields": _get(z, "pose_fields", path, (len(FEATURE_NAMES), n, 3)),
            "identity_modes": _get(z, "identity_modes", path, (-1, n, 3)),
            "detail_sd_cm": _get(z, "detail_sd_cm", path, (n, 3)),
            "pose_residual_factor": _get(z, "pose_residual_factor", path, (-1, n, 3)),
            "pose_residual_gain": _get(z, "pose_residual_gain", path, (3,)),
        }
        if "pose_residual_axis_factor" in z.files:
            arrays["pose_residual_axis_factor"] = _get(z, "pose_residual_axis_factor", path, (3, -1, n, 3))
        scale = float(_get(z, "identity_scale", path))
        floor_names = tuple(str(n) for n in _get(z, "floor_au_names", path)) if "floor_au_names" in z.files else ()
        floor = _get(z, "single_frame_floor", path, (len(floor_names),)) if floor_names else np.zeros(0)
        approach = (_get(z, "approach_floor_gain", path, (len(floor_names),))
                    if floor_names and "approach_floor_gain" in z.files else np.zeros(len(floor_names)))
        turn = (_get(z, "turn_floor_gain", path, (3, len(floor_names)))
                if floor_names and "turn_floor_gain" in z.files else np.zeros((3, len(floor_names))))
        marginal = {}
        if floor_names and "marginal_sd_cm" in z.files:
            k = len(floor_names)
            marginal = {"marginal_sd_cm": float(_get(z, "marginal_sd_cm", path)),
                        "marginal_single_frame_floor": _get(z, "marginal_single_frame_floor", path, (k,)),
                        "readout_gain": _get(z, "readout_gain", path, (2, k))}
            if not marginal["marginal_sd_cm"] > 0:
                raise DataError(f"face model {path}: field 'marginal_sd_cm' must be > 0, got "
                                f"{marginal['marginal_sd_cm']}")
            if (marginal["readout_gain"] < 0).any() or (marginal["marginal_single_frame_floor"] < 0).any():
                raise DataError(f"face model {path}: fields 'readout_gain' / 'marginal_single_frame_floor' have "
                                f"negative values")
        try:
            meta = json.loads(str(_get(z, "meta_json", path)))
        except json.JSONDecodeError as exc:
            raise DataError(f"face model {path}: field 'meta_json' is not valid JSON: {exc}") from exc
    out = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
    for v in out.values():
        v.setflags(write=False)
    floor = np.asarray(floor, dtype=np.float64)
    approach = np.asarray(approach, dtype=np.float64)
    if (approach < 0).any():
        raise DataError(f"face model {path}: field 'approach_floor_gain' has negative values")
    turn = np.asarray(turn, dtype=np.float64)
    if not np.isfinite(turn).all() or (turn < 0).any():
        raise DataError(f"face model {path}: field 'turn_floor_gain' must be finite and >= 0")
    for key in ("marginal_single_frame_floor", "readout_gain"):
        if key in marginal:
            marginal[key] = np.asarray(marginal[key], dtype=np.float64)
            marginal[key].setflags(write=False)
    for v in (floor, approach, turn):
        v.setflags(write=False)
    return PopulationModel(identity_scale=scale, single_frame_floor=floor, floor_au_names=floor_names, meta=meta,
                           path=str(path), approach_floor_gain=approach, turn_floor_gain=turn, **out, **marginal)


@lru_cache(maxsize=4)
def _cached(path: str) -> PopulationModel:
    return _read(Path(path))


def load_population_model(path: str | Path | None = None) -> PopulationModel:
    """Load (cached) the population face model; None = the shipped file. Raises DataError naming file and field."""
    p = DEFAULT_PATH if path is None or str(path) == "" else Path(path)
    return _cached(str(p.resolve()))
