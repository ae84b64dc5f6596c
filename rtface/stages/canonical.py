"""Canonicalization stage: metric 3D -> head pose -> pose-free -> per-person neutral -> canonical landmarks.

For each ``Face`` in ``result.faces`` it fills ``metric_cm`` (camera frame), ``pose`` (HeadPose; angle convention in
``rtface.geometry.pose``), ``posefree_cm`` (canonical frame), ``canonical_cm`` (= canonical template +
pose-free - the person's neutral) and ``neutral_ready``. Arrays are written as float32.

Neutral modes (``neutral_mode``):
- ``online``: one ``NeutralEstimator`` per ``face_id`` (warm-up rule in ``rtface.geometry.neutral``); estimators of
  faces unseen for ``forget_after_frames`` frames are dropped.
- ``file``: the neutral in ``neutral_file`` (.npz from ``save_neutral``) is every face's neutral (one-person setups).
- ``none``: no identity removal: ``canonical_cm = posefree_cm`` and ``neutral_ready`` is False.

Cost (measured, 1350x1350 photo landmarks, 2-core machine under load from other jobs): metric + Procrustes + pose
median 52 us per face; the whole stage per face median 61-64 us, plus a neutral re-estimate (0.6-4.7 ms) every
``neutral_update_every`` buffered frames.

Thread ownership: the runner's processing thread owns the stage. The runner's commands (``calibrate_neutral``,
``save_neutral``, ``load_neutral``) must be called from that same thread (between frames); an internal lock also
makes them safe against a concurrent ``process``.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtface.errors import ConfigError, DataError, StageError
from rtface.geometry.camera import DEFAULT_VERTICAL_FOV_DEG, Intrinsics, metric_landmarks
from rtface.geometry.canonical_model import load_canonical_model
from rtface.geometry.neutral import NeutralEstimator, load_neutral
from rtface.geometry.pose import PoseSolver
from rtface.graph.stage import Stage, register_stage
from rtface.records import Face, FrameResult

_MODES = ("online", "none", "file")


@dataclass(frozen=True)
class CanonicalParams:
    fx: float | None = None  # focal length, px (None: from vertical_fov_deg)
    fy: float | None = None  # px (None: = fx, or from vertical_fov_deg)
    cx: float | None = None  # principal point, px (None: image centre)
    cy: float | None = None
    vertical_fov_deg: float = DEFAULT_VERTICAL_FOV_DEG  # used only when fx/fy are not given
    refine_depth: bool = True  # one refinement of the face depth (see rtface.geometry.camera)
    neutral_mode: str = "online"  # "online" | "none" | "file"
    neutral_file: str = ""  # .npz neutral for neutral_mode = "file"
    warmup_frames: int = 30  # online: frames buffered before the neutral may be declared ready
    neutral_buffer: int = 120  # online: pose-free frames kept for the neutral estimate
    neutral_stride: int = 1  # online: buffer every Nth frame
    neutral_update_every: int = 10  # online: recompute the estimate every N buffered frames
    neutral_keep_fraction: float = 0.25  # online: share of lowest-expression frames the median uses
    neutral_max_spread_cm: float = 0.1  # online: ready only if the kept frames' spread is at most this
    calibrate_frames: int = 15  # "calibrate neutral now": median of this many frames
    forget_after_frames: int = 300  # drop a face's estimator after this many frames without it


@register_stage
class CanonicalStage(Stage):
    kind = "canonical"
    inputs = ("landmarks",)
    outputs = ("pose", "canonical")
    Params = CanonicalParams

    def __init__(self, name: str, params: CanonicalParams) -> None:
        super().__init__(name, params)
        p = params
        if p.neutral_mode not in _MODES:
            raise ConfigError(f"stage '{name}': field 'neutral_mode': {p.neutral_mode!r} is not one of {_MODES}")
        if p.neutral_mode == "file" and not p.neutral_file:
            raise ConfigError(f"stage '{name}': field 'neutral_file' is required when neutral_mode = 'file'")
        for f in ("warmup_frames", "neutral_buffer", "neutral_stride", "neutral_update_every", "calibrate_frames",
                  "forget_after_frames"):
            if getattr(p, f) < 1:
                raise ConfigError(f"stage '{name}': field '{f}' must be >= 1, got {getattr(p, f)}")
        if not 0.0 < p.neutral_keep_fraction <= 1.0:
            raise ConfigError(f"stage '{name}': field 'neutral_keep_fraction' must be in (0, 1], "
                              f"got {p.neutral_keep_fraction}")
        self._model = load_canonical_model()
        self._solver = PoseSolver(self._model)
        self._template32 = self._model.vertices_cm.astype(np.float32)
        self._file_neutral: np.ndarray | None = None
        self._estimators: dict[int, NeutralEstimator] = {}
        self._last_seen: dict[int, int] = {}
        self._pending: set[int] = set()  # face ids collecting frames for a deferred calibration
        self._pending_all = False  # calibrate every face seen in the next frame
        self._pending_frames: dict[int, list[np.ndarray]] = {}
        self._intr_cache: tuple[tuple[int, int], Intrinsics] | None = None
        self._frame_no = 0
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        if self.params.neutral_mode == "file":
            neutral, _ = load_neutral(self.params.neutral_file)
            self._file_neutral = neutral

    def warmup(self) -> None:
        """Run metric 3D + Procrustes once on the canonical face seen by a 640x480 camera (compiles the kernels)."""
        intr = Intrinsics.from_config(640, 480, None, None, None, None, self.params.vertical_fov_deg)
        v = np.asarray(load_canonical_model().vertices_cm, dtype=np.float64)
        z = 50.0 - v[:, 2]  # face 50 cm in front of the camera, canonical z towards the viewer
        px = np.stack([intr.fx * v[:, 0] / z + intr.cx, -intr.fy * v[:, 1] / z + intr.cy,
                       -intr.fx * v[:, 2] / 50.0], axis=1).astype(np.float32)
        PoseSolver().fit(metric_landmarks(px, intr))

    def close(self) -> None:
        with self._lock:
            self._estimators.clear()
            self._last_seen.clear()

    def _intrinsics(self, width: int, height: int) -> Intrinsics:
        if self._intr_cache is None or self._intr_cache[0] != (width, height):
            p = self.params
            intr = Intrinsics.from_config(width, height, p.fx, p.fy, p.cx, p.cy, p.vertical_fov_deg)
            self._intr_cache = ((width, height), intr)
        return self._intr_cache[1]

    def _new_estimator(self) -> NeutralEstimator:
        p = self.params
        return NeutralEstimator(warmup_frames=p.warmup_frames, buffer_size=p.neutral_buffer,
                                stride=p.neutral_stride, update_every=p.neutral_update_every,
                                keep_fraction=p.neutral_keep_fraction, max_spread_cm=p.neutral_max_spread_cm,
                                recent_size=p.calibrate_frames)

    # ---- per frame ---------------------------------------------------------------------------------------------
    def process(self, image: np.ndarray, result: FrameResult) -> None:
        if not result.faces:
            self._frame_no += 1
            self._forget()
            return
        h, w = result.meta.height, result.meta.width
        if (w <= 0 or h <= 0) and image is not None:
            h, w = image.shape[:2]
        intr = self._intrinsics(int(w), int(h))
        with self._lock:
            for face in result.faces:
                try:
                    self._process_face(face, intr)
                except DataError as exc:
                    raise StageError(f"stage '{self.name}': face {face.face_id}: {exc}") from exc
            self._pending_all = False
            self._frame_no += 1
            self._forget()

    def _process_face(self, face: Face, intr: Intrinsics) -> None:
        metric = metric_landmarks(face.landmarks_px, intr, self._model, refine=self.params.refine_depth)
        fit = self._solver.fit(metric)
        posefree = fit.posefree_cm
        face.pose = fit.pose
        face.metric_cm = metric.astype(np.float32)
        face.posefree_cm = posefree.astype(np.float32)
        mode = self.params.neutral_mode
        if mode == "none":
            face.canonical_cm = face.posefree_cm
            face.neutral_ready = False
            return
        if mode == "file":
            if self._file_neutral is None:
                raise StageError(f"stage '{self.name}': open() was not called (neutral_file not loaded)")
            face.canonical_cm = (self._model.vertices_cm + posefree - self._file_neutral).astype(np.float32)
            face.neutral_ready = True
            return
        fid = int(face.face_id)
        est = self._estimators.get(fid)
        if est is None:
            est = self._estimators[fid] = self._new_estimator()
        self._last_seen[fid] = self._frame_no
        est.update(posefree)
        self._collect_calibration(fid, est, posefree)
        face.canonical_cm = est.canonicalize(posefree).astype(np.float32)
        face.neutral_ready = bool(est.ready)

    def _collect_calibration(self, fid: int, est: NeutralEstimator, posefree: np.ndarray) -> None:
        if self._pending_all:
            self._pending.add(fid)
        if fid not in self._pending:
            return
        frames = self._pending_frames.setdefault(fid, [])
        frames.append(posefree.copy())
        if len(frames) >= self.params.calibrate_frames:
            est.calibrate_now(frames)
            del self._pending_frames[fid]
            self._pending.discard(fid)

    def _forget(self) -> None:
        limit = self.params.forget_after_frames
        for fid in [f for f, seen in self._last_seen.items() if self._frame_no - seen > limit]:
            self._estimators.pop(fid, None)
            self._last_seen.pop(fid, None)
            self._pending_frames.pop(fid, None)
            self._pending.discard(fid)

    # ---- runner commands ---------------------------------------------------------------------------------------
    def calibrate_neutral(self, face_id: int | None = None, use_recent: bool = True) -> list[int]:
        """"Calibrate neutral now". With ``use_recent`` and enough recent frames (``calibrate_frames``) the face's
        neutral is set at once from its last frames; otherwise (or with ``use_recent=False``) the next
        ``calibrate_frames`` frames are collected and their median becomes the neutral. ``face_id=None`` = every
        face currently tracked (every face in the next frame if none is tracked). Returns the ids calibrated at
        once."""
        if self.params.neutral_mode != "online":
            raise StageError(f"stage '{self.name}': calibrate_neutral needs neutral_mode 'online', "
                             f"not {self.params.neutral_mode!r}")
        done: list[int] = []
        with self._lock:
            ids = list(self._estimators) if face_id is None else [int(face_id)]
            for fid in ids:
                est = self._estimators.get(fid)
                if use_recent and est is not None and est.recent_count >= self.params.calibrate_frames:
                    est.calibrate_now()
                    done.append(fid)
                else:
                    self._pending.add(fid)
                    self._pending_frames.pop(fid, None)
            if not ids:
                self._pending_all = True  # nobody tracked yet: calibrate whoever shows up next
        return done

    def neutral_estimator(self, face_id: int) -> NeutralEstimator | None:
        """The estimator of one tracked face (None if unknown). Read-only use from the processing thread."""
        return self._estimators.get(int(face_id))

    def save_neutral(self, face_id: int, path: str | Path, **metadata: str) -> Path:
        """Write face ``face_id``'s current neutral to ``path`` (.npz)."""
        with self._lock:
            est = self._estimators.get(int(face_id))
            if est is None or est.neutral is None:
                raise StageError(f"stage '{self.name}': save_neutral: no neutral for face {face_id}")
            return est.save(path, face_id=str(face_id), **metadata)

    def load_neutral(self, face_id: int, path: str | Path) -> dict[str, Any]:
        """Use the neutral stored in ``path`` for face ``face_id`` (ready and locked). Returns its metadata."""
        with self._lock:
            fid = int(face_id)
            est = self._estimators.get(fid)
            if est is None:
                est = self._estimators[fid] = self._new_estimator()
                self._last_seen[fid] = self._frame_no
            return est.load(path)
