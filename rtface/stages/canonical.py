"""Canonicalization stage: metric 3D -> head pose -> pose-free -> face model -> canonical landmarks.

For each ``Face`` in ``result.faces`` it fills ``metric_cm`` (camera frame), ``pose`` (HeadPose; angle convention in
``rtface.geometry.pose``), ``posefree_cm`` (canonical frame), ``canonical_cm`` and ``shape_frames`` /
``neutral_ready``. Arrays are written as float32.

Every face is explained by the population face model (:mod:`rtface.facemodel.population`): the shape MediaPipe
reports = the person's neutral face + the population's pose response at this head pose and face size + expression.
``canonical_cm = template + (posefree - pose response) - person's neutral``: pose, the camera and the person's face
shape removed, expression kept. The person's neutral:

- a single frame, a still image (``FrameMeta.still``) or ``neutral_mode = "population"``: the population mean
  (``shape_frames`` = 0); the AU stage then uses the population's identity spread for its noise floors;
- ``online`` (default) in a sequence: refined per tracked face from its rest frames (:mod:`rtface.facemodel.person`);
  ``shape_frames`` = effective frames behind the estimate; ``neutral_ready`` once it reaches ``ready_frames``;
- explicit neutrals take precedence: ``rtface ctl calibrate-neutral`` (median of ``calibrate_frames`` frames),
  ``load_neutral``, or ``neutral_mode = "file"`` (``neutral_file``, every face); ``shape_frames`` = inf;
- ``none``: no face model (``canonical_cm = posefree_cm``).

Frames are ranked for the person model by their population-level expression displacement
(``extras["expression_score"]``, cm; :class:`rtface.au.solve.ExpressionScorer`). ``extras["rest_pose_deg"]``
(online and explicit neutrals of a tracked face): the head pose (camera yaw, pitch, roll, deg) the person's neutral
was learned at, as far as it has absorbed it (:attr:`rtface.facemodel.person.PersonShape.rest_pose_deg`); the AU
stage's pose floor counts from it while the head holds still. ``extras["neutral_au_share"]`` (0-1, same faces):
the share of the AU-shaped part of the person's rest offset the neutral has not taken yet
(:attr:`rtface.facemodel.person.PersonShape.au_share`), which the AU stage's floors cover; ``Face.rest_au_offset_cm``
(online person model, once it has an estimate): that untaken part itself (cm), so the floors can cover this
person's own offset.

Camera: the head pose, translation and ``metric_cm`` are in camera coordinates from the pinhole model (fx/fy or
vertical_fov_deg; OpenFace's convention). The face shape (``posefree_cm``) comes from ``projection``: weak
perspective by default, so it does not depend on the focal length or the distance (``rtface.geometry.camera``);
the pose that projection gives (``extras["shape_pose_deg"]``: yaw, pitch, roll) indexes the pose response.

Thread ownership: the runner's processing thread owns the stage. The runner's commands (``calibrate_neutral``,
``save_neutral``, ``load_neutral``) must be called from that same thread (between frames); an internal lock also
makes them safe against a concurrent ``process``.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtface.errors import ConfigError, DataError, StageError
from rtface.facemodel.identity import IdentityPosterior
from rtface.facemodel.person import PersonParams, PersonShape
from rtface.facemodel.pose_features import eye_corner_distance_px
from rtface.facemodel.population import PopulationModel, load_population_model
from rtface.geometry.camera import DEFAULT_VERTICAL_FOV_DEG, PROJECTIONS, Intrinsics, metric_landmarks
from rtface.geometry.canonical_model import load_canonical_model
from rtface.geometry.neutral import load_neutral, median0, save_neutral
from rtface.geometry.pose import PoseSolver
from rtface.graph.stage import Stage, register_stage
from rtface.records import Face, FrameResult

_MODES = ("online", "population", "file", "none")


@dataclass(frozen=True)
class CanonicalParams:
    fx: float | None = None  # focal length, px (None: from vertical_fov_deg)
    fy: float | None = None  # px (None: = fx, or from vertical_fov_deg)
    cx: float | None = None  # principal point, px (None: image centre)
    cy: float | None = None
    vertical_fov_deg: float = DEFAULT_VERTICAL_FOV_DEG  # used only when fx/fy are not given
    projection: str = "weak"  # "weak" | "perspective" (rtface.geometry.camera)
    refine_depth: bool = True  # one refinement of the face depth (see rtface.geometry.camera)
    face_model_path: str = ""  # population face model .npz ("" = shipped rtface/data/face_model/face_model.npz)
    neutral_mode: str = "online"  # "online" | "population" | "file" | "none"
    neutral_file: str = ""  # .npz neutral for neutral_mode = "file"
    ready_frames: float = 4.0  # online: neutral_ready once the person's shape rests on this many effective frames
    au_prior_frames: float = 3.0  # online: rest frames after which half of an AU-shaped rest offset is shape
    sample_every_s: float = 0.1  # online: person model keeps at most one frame per this much media time
    window_s: float = 30.0  # online: and forgets frames older than this
    keep_fraction: float = 0.3  # online: share of lowest-activity frames used as rest frames
    max_angle_deg: float = 45.0  # online: frames with |yaw| or |pitch| beyond this do not refine the shape (the face
    # model's pose response spans yaw +/-45, pitch +/-25, roll +/-35 deg of the shape pose)
    obs_sd_cm: float = 0.06  # spread of one rest frame's shape around the person's neutral (cm per coordinate)
    calibrate_frames: int = 15  # "calibrate neutral now": median of this many frames
    forget_after_s: float = 10.0  # drop a face's person model after this much media time without it


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
        if p.projection not in PROJECTIONS:
            raise ConfigError(f"stage '{name}': field 'projection': {p.projection!r} is not one of {PROJECTIONS}")
        if p.neutral_mode == "file" and not p.neutral_file:
            raise ConfigError(f"stage '{name}': field 'neutral_file' is required when neutral_mode = 'file'")
        if p.calibrate_frames < 1:
            raise ConfigError(f"stage '{name}': field 'calibrate_frames' must be >= 1, got {p.calibrate_frames}")
        for f in ("sample_every_s", "window_s", "obs_sd_cm", "forget_after_s", "max_angle_deg"):
            v = getattr(p, f)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"stage '{name}': field '{f}' must be finite and > 0, got {v}")
        if not 0.0 < p.keep_fraction <= 1.0:
            raise ConfigError(f"stage '{name}': field 'keep_fraction' must be in (0, 1], got {p.keep_fraction}")
        if not (math.isfinite(p.ready_frames) and p.ready_frames >= 0):
            raise ConfigError(f"stage '{name}': field 'ready_frames' must be finite and >= 0, got {p.ready_frames}")
        self._model = load_canonical_model()
        self._solver = PoseSolver(self._model)
        self._template = np.asarray(self._model.vertices_cm, dtype=np.float64)
        self._pop: PopulationModel | None = None
        self._posterior: IdentityPosterior | None = None
        self._scorer: Any = None
        self._file_neutral: np.ndarray | None = None
        self._file_pose: tuple[float, float, float] | None = None  # deg, the pose the neutral_file was taken at
        self._persons: dict[int, PersonShape] = {}
        self._last_seen_s: dict[int, float] = {}
        self._pending: set[int] = set()  # face ids collecting frames for a deferred calibration
        self._pending_all = False  # calibrate every face seen in the next frame
        self._pending_frames: dict[int, list[tuple[np.ndarray, tuple[float, float, float]]]] = {}  # (frontal, pose)
        self._intr_cache: tuple[tuple[int, int], Intrinsics] | None = None
        self._t_now = 0.0  # media time of the latest frame, s
        self._person_params = PersonParams(sample_every_s=p.sample_every_s, window_s=p.window_s,
                                           keep_fraction=p.keep_fraction, max_angle_deg=p.max_angle_deg,
                                           au_prior_frames=p.au_prior_frames)
        self._lock = threading.Lock()

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        p = self.params
        if p.neutral_mode == "none":
            return
        try:
            self._pop = load_population_model(p.face_model_path or None)
        except DataError as exc:
            raise ConfigError(f"stage '{self.name}': field 'face_model_path': {exc}") from exc
        self._posterior = IdentityPosterior(self._pop.identity_factor(), self._pop.detail_sd_cm, p.obs_sd_cm)
        if p.neutral_mode == "online":
            from rtface.au.basis import load_au_basis
            from rtface.au.solve import ExpressionScorer

            self._scorer = ExpressionScorer(load_au_basis(), self._template)
        if p.neutral_mode == "file":
            neutral, meta = load_neutral(p.neutral_file)
            self._file_neutral = neutral
            self._file_pose = meta.get("rest_pose_deg")  # type: ignore[assignment]

    def warmup(self) -> None:
        """Run metric 3D + Procrustes (and the scoring solve) once on the canonical face (compiles the kernels once
        the engine has loaded numba, :mod:`rtface.kernels.jit`)."""
        intr = Intrinsics.from_config(640, 480, None, None, None, None, self.params.vertical_fov_deg)
        v = np.asarray(self._template, dtype=np.float64)
        z = 50.0 - v[:, 2]  # face 50 cm in front of the camera, canonical z towards the viewer
        px = np.stack([intr.fx * v[:, 0] / z + intr.cx, -intr.fy * v[:, 1] / z + intr.cy,
                       -intr.fx * v[:, 2] / 50.0], axis=1).astype(np.float32)
        PoseSolver().fit(metric_landmarks(px, intr, projection=self.params.projection))
        if self._scorer is not None:
            self._scorer.score(np.zeros_like(self._template))
        if self._posterior is not None:
            self._posterior.posterior_mean(np.zeros(self._template.size), 1.0)

    def close(self) -> None:
        with self._lock:
            self._persons.clear()
            self._last_seen_s.clear()

    def _intrinsics(self, width: int, height: int) -> Intrinsics:
        if self._intr_cache is None or self._intr_cache[0] != (width, height):
            p = self.params
            intr = Intrinsics.from_config(width, height, p.fx, p.fy, p.cx, p.cy, p.vertical_fov_deg)
            self._intr_cache = ((width, height), intr)
        return self._intr_cache[1]

    def _new_person(self) -> PersonShape:
        assert self._pop is not None and self._posterior is not None
        return PersonShape(self._pop.mean_cm, self._posterior, self._person_params, self.params.calibrate_frames,
                           au_part=self._scorer.au_part if self._scorer is not None else None)

    # ---- per frame ---------------------------------------------------------------------------------------------
    def process(self, image: np.ndarray, result: FrameResult) -> None:
        t_s = result.meta.t_media_ns / 1e9
        self._t_now = t_s
        if not result.faces:
            self._forget(t_s)
            return
        h, w = result.meta.height, result.meta.width
        if (w <= 0 or h <= 0) and image is not None:
            h, w = image.shape[:2]
        intr = self._intrinsics(int(w), int(h))
        with self._lock:
            for face in result.faces:
                try:
                    self._process_face(face, intr, t_s, bool(result.meta.still))
                except DataError as exc:
                    raise StageError(f"stage '{self.name}': face {face.face_id}: {exc}") from exc
            self._pending_all = False
            self._forget(t_s)

    def _process_face(self, face: Face, intr: Intrinsics, t_s: float, still: bool) -> None:
        p = self.params
        # head pose and metric 3D in camera coordinates come from the pinhole model (OpenFace's convention: an
        # off-centre face's pose includes its viewing angle); the face shape and the pose the face model's pose
        # response is indexed by come from the chosen projection (weak perspective by default, rtface.geometry.camera)
        metric = metric_landmarks(face.landmarks_px, intr, self._model, refine=p.refine_depth,
                                  projection="perspective")
        fit = self._solver.fit(metric)
        shape_fit = fit if p.projection == "perspective" else self._solver.fit(
            metric_landmarks(face.landmarks_px, intr, self._model, refine=p.refine_depth, projection=p.projection))
        posefree = shape_fit.posefree_cm
        face.pose = fit.pose
        face.metric_cm = metric.astype(np.float32)
        face.posefree_cm = posefree.astype(np.float32)
        if p.neutral_mode == "none" or self._pop is None:
            face.canonical_cm = face.posefree_cm
            face.shape_frames = 0.0
            face.neutral_ready = False
            return
        pose = shape_fit.pose
        face.extras["shape_pose_deg"] = (pose.yaw_deg, pose.pitch_deg, pose.roll_deg)
        offset = self._pop.pose_offset(pose.yaw_deg, pose.pitch_deg, pose.roll_deg,
                                       eye_corner_distance_px(face.landmarks_px))
        frontal = posefree - offset
        neutral, frames = self._neutral_for(face, frontal, t_s, still)
        face.canonical_cm = (self._template + frontal - neutral).astype(np.float32)
        face.shape_frames = float(frames)
        face.neutral_ready = bool(frames >= p.ready_frames and frames > 0)

    def _neutral_for(self, face: Face, frontal: np.ndarray, t_s: float, still: bool) -> tuple[np.ndarray, float]:
        assert self._pop is not None
        mode = self.params.neutral_mode
        if mode == "file":
            if self._file_neutral is None:
                raise StageError(f"stage '{self.name}': open() was not called (neutral_file not loaded)")
            if self._file_pose is not None:
                face.extras["rest_pose_deg"] = self._file_pose
            face.extras["neutral_au_share"] = 0.0
            return self._file_neutral, math.inf
        if mode == "population" or still:
            return self._pop.mean_cm, 0.0
        fid = int(face.face_id)
        person = self._persons.get(fid)
        if person is None:
            person = self._persons[fid] = self._new_person()
        self._last_seen_s[fid] = t_s
        cam = (face.pose.yaw_deg, face.pose.pitch_deg, face.pose.roll_deg)  # the pose the AU floors are indexed by
        person.remember(frontal, cam)
        if not self._collect_calibration(fid, person, frontal, cam) and not person.locked:
            score = self._scorer.score(frontal - self._pop.mean_cm)
            face.extras["expression_score"] = score
            person.observe(t_s, frontal, score, *face.extras["shape_pose_deg"], pose_deg=cam)
        face.extras["rest_pose_deg"] = tuple(float(v) for v in person.rest_pose_deg)
        face.extras["neutral_au_share"] = person.au_share
        face.rest_au_offset_cm = person.au_untaken_cm
        return person.neutral_cm, person.frames

    def _collect_calibration(self, fid: int, person: PersonShape, frontal: np.ndarray,
                             pose_deg: tuple[float, float, float]) -> bool:
        """Collect frames (and their camera poses, deg) for a pending calibration; True when this frame completed
        one."""
        if self._pending_all:
            self._pending.add(fid)
        if fid not in self._pending:
            return False
        frames = self._pending_frames.setdefault(fid, [])
        frames.append((frontal.copy(), pose_deg))
        if len(frames) >= self.params.calibrate_frames:
            person.set_explicit(median0(np.stack([f for f, _ in frames])), np.mean([p for _, p in frames], axis=0))
            del self._pending_frames[fid]
            self._pending.discard(fid)
            return True
        return False

    def _forget(self, t_s: float) -> None:
        limit = self.params.forget_after_s
        for fid in [f for f, seen in self._last_seen_s.items() if t_s - seen > limit or t_s < seen - limit]:
            self._persons.pop(fid, None)
            self._last_seen_s.pop(fid, None)
            self._pending_frames.pop(fid, None)
            self._pending.discard(fid)

    # ---- runner commands ---------------------------------------------------------------------------------------
    def calibrate_neutral(self, face_id: int | None = None, use_recent: bool = True) -> list[int]:
        """"Calibrate neutral now". With ``use_recent`` and enough recent frames the face's neutral is set at once
        from its last frames; otherwise the next ``calibrate_frames`` frames are collected and their median becomes
        the neutral. ``face_id=None`` = every face currently tracked (every face in the next frame if none is
        tracked). Returns the ids calibrated at once."""
        if self.params.neutral_mode != "online":
            raise StageError(f"stage '{self.name}': calibrate_neutral needs neutral_mode 'online', "
                             f"not {self.params.neutral_mode!r}")
        done: list[int] = []
        need = self.params.calibrate_frames
        with self._lock:
            ids = list(self._persons) if face_id is None else [int(face_id)]
            for fid in ids:
                person = self._persons.get(fid)
                recent = person.recent_frontal(need) if person is not None else []
                if use_recent and len(recent) >= need:
                    person.set_explicit(median0(np.stack(recent)), person.recent_pose(need))
                    done.append(fid)
                else:
                    self._pending.add(fid)
                    self._pending_frames.pop(fid, None)
            if not ids:
                self._pending_all = True  # nobody tracked yet: calibrate whoever shows up next
        return done

    def person_shape(self, face_id: int) -> PersonShape | None:
        """The person model of one tracked face (None if unknown). Read-only use from the processing thread."""
        return self._persons.get(int(face_id))

    def set_neutral_from_faces(self, face_id: int, faces: list[Face]) -> np.ndarray:
        """Use, for face ``face_id``, the per-landmark median of the frontal shapes (pose-free minus the population
        pose response at the shape pose, as in ``process``) of ``faces``, faces this stage has already processed (pose and posefree set), e.g. a
        person's neutral-labelled photos: explicit, ready and locked like ``load_neutral``. Offline tools (the
        emotion trainer's ``person`` rule). Returns the neutral (478, 3) cm."""
        if self._pop is None:
            raise StageError(f"stage '{self.name}': set_neutral_from_faces needs the face model (open() first, "
                             f"neutral_mode not 'none')")
        shapes, poses = [], []
        for f in faces:
            if f.pose is None or f.posefree_cm is None:
                raise StageError(f"stage '{self.name}': set_neutral_from_faces: face {f.face_id} was not processed")
            yaw, pitch, roll = f.extras.get("shape_pose_deg", (f.pose.yaw_deg, f.pose.pitch_deg, f.pose.roll_deg))
            shapes.append(np.asarray(f.posefree_cm, dtype=np.float64) - self._pop.pose_offset(
                yaw, pitch, roll, eye_corner_distance_px(f.landmarks_px)))
            poses.append((f.pose.yaw_deg, f.pose.pitch_deg, f.pose.roll_deg))
        if not shapes:
            raise StageError(f"stage '{self.name}': set_neutral_from_faces: no faces for face {face_id}")
        neutral = median0(np.stack(shapes))
        with self._lock:
            fid = int(face_id)
            person = self._persons.get(fid)
            if person is None:
                person = self._persons[fid] = self._new_person()
                self._last_seen_s[fid] = self._t_now
            person.set_explicit(neutral, np.mean(poses, axis=0))
        return neutral

    def save_neutral(self, face_id: int, path: str | Path, **metadata: str) -> Path:
        """Write face ``face_id``'s current neutral (frontal pose-free shape, cm) to ``path`` (.npz)."""
        with self._lock:
            person = self._persons.get(int(face_id))
            if person is None:
                raise StageError(f"stage '{self.name}': save_neutral: no neutral for face {face_id}")
            n = person.frames
            return save_neutral(path, person.neutral_cm, int(n) if math.isfinite(n) else 0,
                                rest_pose_deg=person.rest_pose_deg, face_id=str(face_id), **metadata)

    def load_neutral(self, face_id: int, path: str | Path) -> dict[str, Any]:
        """Use the neutral stored in ``path`` for face ``face_id`` (explicit: ready and locked; at the pose it was saved
        with, frontal if the file does not say). Returns its metadata."""
        neutral, meta = load_neutral(path)
        with self._lock:
            fid = int(face_id)
            person = self._persons.get(fid)
            if person is None:
                if self._pop is None:
                    raise StageError(f"stage '{self.name}': load_neutral needs the face model "
                                     f"(neutral_mode 'online')")
                person = self._persons[fid] = self._new_person()
                self._last_seen_s[fid] = self._t_now
            person.set_explicit(neutral, meta.get("rest_pose_deg"))
            return meta
