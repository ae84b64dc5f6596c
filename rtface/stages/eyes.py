"""Eyes stage: per-eye closure, closure episodes, blinks, blink rate and PERCLOS P80 from the landmarks.

For each ``Face`` it computes the lid ratios (:mod:`rtface.geometry.eyes`) and feeds that face id's
:class:`rtface.signals.eye_state.EyeState` with the frame's media time (``t_media_ns``, so a file gives the same
values offline as played live). Writes per-face extras, which are also the result-table columns
(:attr:`EyeStage.face_columns`; ``AU45_r``/``AU45_c`` sit in OpenFace's AU blocks) and travel in the frame message:
``eye_closure_l``, ``eye_closure_r`` (0 open .. 1 closed, subject's left/right), ``AU45_r`` (5 x mean closure,
OpenFace's 0-5 blink intensity), ``AU45_c`` (1 while the eyes are closed), ``eyes_closed_s`` (s, current closure),
``blink`` (1 on the frame a blink ends), ``blink_duration_ms``, ``perclos`` (0-1), ``blink_rate_min``.
Parameters: :class:`rtface.signals.eye_state.EyeParams`. Needs only the ``landmarks`` stage (no neutral, no AUs).

Thread ownership: the runner's processing thread owns the stage.
"""
from __future__ import annotations

import math

import numpy as np

from rtface.errors import ConfigError
from rtface.geometry.eyes import lid_ratios
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult
from rtface.signals.eye_state import EyeParams, EyeState

EYE_COLUMNS = ("eye_closure_l", "eye_closure_r", "AU45_r", "AU45_c", "eyes_closed_s", "blink", "blink_duration_ms",
               "perclos", "blink_rate_min")


@register_stage
class EyeStage(Stage):
    kind = "eyes"
    inputs = ("landmarks",)
    outputs = ("eyes",)
    Params = EyeParams
    face_columns = EYE_COLUMNS

    def __init__(self, name: str, params: EyeParams) -> None:
        super().__init__(name, params)
        try:
            params.check(f"stage '{name}'")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        self._states: dict[int, EyeState] = {}
        self.skipped_nonfinite = 0

    def state(self, face_id: int) -> EyeState | None:
        """The eye state of a face id (None if unknown); for tools and tests."""
        return self._states.get(face_id)

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        t = int(result.meta.t_media_ns)
        for face in result.faces:
            lm = face.landmarks_px
            if lm is None:
                continue
            rl, rr = lid_ratios(lm)
            if not (math.isfinite(rl) or math.isfinite(rr)):
                self.skipped_nonfinite += 1
                continue
            st = self._states.get(face.face_id)
            if st is None:
                st = self._states[face.face_id] = EyeState(self.params)
            face.extras.update(st.update(t, rl, rr))
        if len(self._states) > len(result.faces):
            horizon = t - int(self.params.forget_after_s * 1e9)
            for fid in [f for f, s in self._states.items() if s.last_seen_ns < horizon]:
                del self._states[fid]

    def summary(self) -> dict:
        """{"faces": {face_id: {"blinks": n}}} for the faces still tracked at the end."""
        return {"faces": {fid: {"blinks": s.blinks_total} for fid, s in self._states.items()}}
