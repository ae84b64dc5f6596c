"""Behaviour stage: per-face behaviour measures live (rolling window) and per session.

Reads what earlier stages wrote on each ``Face`` (AU intensities/presence, emotions, pose, ``canonical_cm``, image
landmarks, and the eyes stage's ``eye_closure_l`` / ``eye_closure_r`` / ``blink`` / ``blink_duration_ms`` extras
when that stage runs) and feeds one :class:`rtface.analysis.features.FaceAccumulator` per face id: the same code
``rtface analyze`` runs on a result table, so the session values agree with it.

Live: ``face.extras["behaviour"]`` = the rolling-window values over the last ``window_s`` of media time
(:func:`rtface.analysis.summary.window_measures`: expressivity, fac_comintsoft, asym_face (cm), speed_face and
speed_mouth (cm/s), head_angspeed (deg/s), blink_rate_min, perclos, frames), at most every ``publish_every_s``
(0 = every frame). Session: :meth:`summary` -> ``{"faces": {id: measures}, "dyads": [...]}`` (in
``_session.json/.csv`` and the ``rtface.v1.session`` message). The AU and emotion names come from the engine
(:meth:`bind_names`, called by the runner once every stage is open).

Memory is bounded in long live runs: the rolling values come from a buffer of the last ``window_s`` only, and the
session history of each face holds at most ``history_max_frames`` rows (default 18000, 10 min at 30 fps, 12.4 MiB
per face); beyond that it is decimated to every 2nd, 4th ... frame (:class:`FaceAccumulator`; counted in
``history_decimations`` of the summary and ``decimated_history`` of the analysis quality), while ``n_frames``,
``duration_s`` and the blink measures stay exact. ``history_max_frames = 0``: no cap (memory grows ~0.8 kB per
face per frame). ``rtface analyze`` on the result table always uses every frame.

Thread ownership: the runner's processing thread owns the stage; :meth:`analysis` is called from it at close.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.analysis.features import FaceAccumulator
from rtface.analysis.session import Analysis, AnalysisSettings, analyze_accumulators, dyads_plain
from rtface.analysis.summary import window_measures
from rtface.errors import ConfigError
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

_EYE = ("eye_closure_l", "eye_closure_r")


@dataclass(frozen=True)
class BehaviourParams:
    window_s: float = 10.0  # rolling window on the stream and in the windows table, s of media time
    publish_every_s: float = 0.0  # media time between two rolling values of one face (0 = every frame)
    update_every_s: float = 0.2  # media time between two recomputations of a face's rolling values (0 = every frame)
    tau_s: float = 0.05  # landmark low-pass before differentiation (kinematics), s
    max_faces: int = 16  # faces tracked at once; further ids are counted in skipped_faces, not analysed
    history_max_frames: int = 18000  # session history cap per face (10 min at 30 fps); then decimated; 0 = no cap

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and self.publish_every_s >= 0 and self.tau_s >= 0 and self.max_faces >= 1):
            raise ConfigError(f"behaviour stage: window_s > 0, publish_every_s >= 0, tau_s >= 0, max_faces >= 1 "
                              f"(got {self.window_s}, {self.publish_every_s}, {self.tau_s}, {self.max_faces})")
        if not 0.0 <= self.update_every_s <= self.window_s:
            raise ConfigError(f"behaviour stage: field 'update_every_s' must be in [0, window_s], got "
                              f"{self.update_every_s}")
        if not (self.history_max_frames == 0 or self.history_max_frames >= 100):
            raise ConfigError(f"behaviour stage: field 'history_max_frames' must be 0 (no cap) or >= 100, got "
                              f"{self.history_max_frames}")


@register_stage
class BehaviourStage(Stage):
    kind = "behaviour"
    inputs = ("landmarks",)
    outputs = ("behaviour",)
    Params = BehaviourParams

    def __init__(self, name: str, params: BehaviourParams) -> None:
        super().__init__(name, params)
        self.au_names: tuple[str, ...] = ()
        self.emotion_names: tuple[str, ...] = ()
        self._accs: dict[int, FaceAccumulator] = {}
        self._last_pub: dict[int, float] = {}
        self._rolling_cache: dict[int, tuple[float, dict[str, float]]] = {}  # face id -> (t computed, values)
        self.skipped_faces = 0
        self.frames_without_face = 0
        self.frames = 0

    def bind_names(self, *, aus: tuple[str, ...] = (), emotion: tuple[str, ...] = ()) -> None:
        """AU and emotion names of this pipeline (the runner calls it once every stage is open)."""
        self.au_names, self.emotion_names = tuple(aus), tuple(emotion)

    def warmup(self) -> None:
        """Load the mesh regions / mirror pairs and run the per-frame code once, before the first frame."""
        from rtface.analysis.mesh import mirror_pairs, regions

        regions()
        mirror_pairs()
        acc = FaceAccumulator(-1, self.au_names, self.emotion_names)
        pts = np.zeros((478, 3))
        pts[:, 0] = np.arange(478) * 0.01
        for k in range(3):
            acc.add(k / 30, k, canonical=pts, mesh_px=pts, pose=(0, 0, 0, 0, 0, 60))
        window_measures(acc.frame_table(), 2 / 30, self.params.window_s)

    def _acc(self, fid: int) -> FaceAccumulator | None:
        acc = self._accs.get(fid)
        if acc is None:
            if len(self._accs) >= self.params.max_faces:
                self.skipped_faces += 1
                return None
            acc = self._accs[fid] = FaceAccumulator(fid, self.au_names, self.emotion_names,
                                                    tau_s=self.params.tau_s,
                                                    max_frames=self.params.history_max_frames,
                                                    recent_s=self.params.window_s)
        return acc

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        m = result.meta
        t = m.t_media_ns / 1e9
        self.frames += 1
        if not result.faces:
            self.frames_without_face += 1
        for face in result.faces:
            acc = self._acc(int(face.face_id))
            if acc is None:
                continue
            p = face.pose
            pose = None if p is None else (p.pitch_deg, p.yaw_deg, p.roll_deg, p.tx_cm, p.ty_cm, p.tz_cm)
            ex = face.extras
            closure = (float(ex[_EYE[0]]), float(ex[_EYE[1]])) if all(k in ex for k in _EYE) else None
            blink = (float(ex["blink"]), float(ex.get("blink_duration_ms", math.nan))) if "blink" in ex else None
            k = len(self.au_names)
            au_r = face.au_intensity if face.au_intensity is not None and len(face.au_intensity) == k else None
            au_c = None
            if au_r is not None and face.au_presence is not None:
                au_c = np.asarray(face.au_presence, dtype=np.float64)
            emo = face.emotion if face.emotion is not None and len(face.emotion) == len(self.emotion_names) else None
            acc.add(t, m.index, confidence=float(face.confidence), neutral_ready=float(face.neutral_ready),
                    au_r=au_r, au_c=au_c, emotion=emo, pose=pose, canonical=face.canonical_cm,
                    mesh_px=face.landmarks_px if closure is None else None, closure=closure, blink=blink)
            last = self._last_pub.get(acc.face_id, -math.inf)
            if t - last >= self.params.publish_every_s:
                self._last_pub[acc.face_id] = t
                face.extras["behaviour"] = self._rolling(acc, t)

    def _rolling(self, acc: FaceAccumulator, t: float) -> dict[str, float]:
        """The face's rolling values at media time ``t`` (recomputed if older than ``update_every_s``)."""
        cached = self._rolling_cache.get(acc.face_id)
        if cached is not None and 0.0 <= t - cached[0] < self.params.update_every_s:
            return dict(cached[1])
        vals = window_measures(acc.recent_table(t - self.params.window_s), t, self.params.window_s)
        out = {k: float(v) for k, v in vals.items() if k != "t_end"}
        self._rolling_cache[acc.face_id] = (t, out)
        return dict(out)

    def analysis(self, quality: dict | None = None) -> Analysis:
        """The full analysis (measures, windows, pairs, frame tables) of every face seen so far."""
        q = {"frames": self.frames, "frames_without_face": self.frames_without_face, "landmarks": "canonical",
             "skipped_faces": self.skipped_faces, **(quality or {})}
        return analyze_accumulators(self._accs, q, AnalysisSettings(window_s=self.params.window_s))

    def summary(self) -> dict[str, Any]:
        a = self.analysis()
        return {"faces": a.faces, "dyads": dyads_plain(a.dyads), "window_s": self.params.window_s,
                "skipped_faces": self.skipped_faces, **self.history_stats()}

    def history_stats(self) -> dict[str, Any]:
        """Memory bound of the session history: the cap, faces whose history was decimated, bytes held now."""
        return {"history_max_frames": self.params.history_max_frames,
                "history_decimated_faces": sum(1 for a in self._accs.values() if a.decimations),
                "history_decimations": sum(a.decimations for a in self._accs.values()),
                "history_bytes": sum(a.nbytes for a in self._accs.values())}
