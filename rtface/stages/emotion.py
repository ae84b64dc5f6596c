"""Emotion stage: FACS AU intensities -> class probabilities with an ONNX head (onnxruntime, CPU).

For each ``Face`` with ``au_intensity`` set it fills ``emotion`` ((C,) float32 probabilities summing to 1, order =
:attr:`EmotionStage.names`). All faces of a frame go through one ``session.run``.

Model: ``model_path`` ("" = the shipped ``rtface/data/emotion/emotion_head.onnx``, see its MODEL_CARD.md). Its
metadata must hold ``class_names`` and ``feature_spec`` (kind ``au_intensity`` + AU names); at ``open`` the stage
maps the spec's AU names onto the AU stage's output order, taken from the AU basis file ``au_basis_path`` ("" =
shipped basis; set it to the AU stage's ``basis_path`` when that is not the default). A model that needs an AU the
pipeline lacks, or another feature kind, is a ConfigError naming the model file.

Smoothing (``smoothing``): ``none``, or ``ema`` per face id on media time: ``p <- a * p_new + (1 - a) * p`` with
``a = 1 - exp(-dt / ema_tau_s)`` (dt = media time since the face's previous frame), so the same time constant holds
at any frame rate; a face's first frame, a gap longer than 1 s and independent still images (``meta.still``) are
not smoothed. State is dropped for face ids unseen for 10 s. ``min_neutral_ready = true`` leaves ``emotion`` unset
for faces whose neutral is not ready yet.

Cost (measured on this 2-core machine, shipped 19-feature MLP head): see MODEL_CARD.md ("Speed").

Thread ownership: the runner's processing thread owns the stage and its onnxruntime session.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtface.errors import ConfigError, StageError
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "emotion" / "emotion_head.onnx"
_SMOOTHING = ("none", "ema")
_FORGET_AFTER_S = 10.0
_MAX_GAP_S = 1.0


@dataclass(frozen=True)
class EmotionParams:
    model_path: str = ""  # ONNX emotion head ("" = shipped default head)
    smoothing: str = "none"  # "none" | "ema" (per face id)
    ema_tau_s: float = 0.1  # time constant of smoothing = "ema", seconds of media time (> 0)
    min_neutral_ready: bool = False  # true: no emotion for faces whose per-person neutral is not ready
    au_basis_path: str = ""  # AU basis the AU stage uses ("" = shipped); gives the AU order the model is mapped to


@register_stage
class EmotionStage(Stage):
    kind = "emotion"
    inputs = ("aus",)
    outputs = ("emotion",)
    Params = EmotionParams

    def __init__(self, name: str, params: EmotionParams, *, au_names: tuple[str, ...] | None = None) -> None:
        """``au_names`` overrides the AU order read from the basis file (tests, tools)."""
        super().__init__(name, params)
        p = params
        if p.smoothing not in _SMOOTHING:
            raise ConfigError(f"stage '{name}': field 'smoothing': {p.smoothing!r} is not one of {_SMOOTHING}")
        if not (np.isfinite(p.ema_tau_s) and p.ema_tau_s > 0.0):
            raise ConfigError(f"stage '{name}': field 'ema_tau_s' must be finite and > 0, got {p.ema_tau_s}")
        self._au_names_override = au_names
        self._head = None
        self._index: np.ndarray | None = None
        self._n_aus = 0
        self._ema: dict[int, np.ndarray] = {}
        self._last_seen: dict[int, float] = {}  # face id -> media time of its last smoothed frame, s
        self.names: tuple[str, ...] = ()
        self.model_file: Path = Path(p.model_path) if p.model_path else DEFAULT_MODEL
        self.skipped_not_ready = 0
        self.skipped_nonfinite = 0

    def open(self) -> None:
        from rtface.emotion.features import FEATURE_KIND, basis_names, feature_index
        from rtface.emotion.onnx_export import load_head

        where = f"stage '{self.name}': field 'model_path': emotion model {self.model_file}"
        head = load_head(self.model_file)
        if head.spec.kind != FEATURE_KIND:
            raise ConfigError(f"{where}: feature kind {head.spec.kind!r} is not supported (this stage provides "
                              f"{FEATURE_KIND!r})")
        if self._au_names_override is not None:
            au_names = tuple(self._au_names_override)
        else:
            au_names = basis_names(self.params.au_basis_path or None)
        self._index = feature_index(head.spec.names, au_names, where)
        self._n_aus = len(au_names)
        self._head = head
        self.names = head.classes
        self._ema.clear()
        self._last_seen.clear()

    @property
    def head(self):
        """The loaded :class:`rtface.emotion.onnx_export.OnnxHead` (None before ``open``)."""
        return self._head

    def close(self) -> None:
        """Drop the session. Safe to call twice."""
        self._head = None

    def warmup(self) -> None:
        """One inference on zeros, so ONNX Runtime's first-run set-up is not paid on a live frame."""
        if self._head is not None:
            self._head.run(np.zeros((1, len(self._head.spec.names)), np.float32))

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        if self._head is None or self._index is None:
            raise StageError(f"stage '{self.name}': process() called before open()")
        faces = []
        for face in result.faces:
            au = face.au_intensity
            if au is None:
                continue
            if self.params.min_neutral_ready and not face.neutral_ready:
                self.skipped_not_ready += 1
                continue
            if au.shape != (self._n_aus,):
                raise StageError(f"stage '{self.name}': face {face.face_id}: au_intensity has shape {au.shape}, "
                                 f"expected ({self._n_aus},) (is 'au_basis_path' the AU stage's basis?)")
            if not np.isfinite(au).all():
                self.skipped_nonfinite += 1
                continue
            faces.append(face)
        t_s = result.meta.t_media_ns / 1e9
        if faces:
            x = np.stack([f.au_intensity for f in faces])[:, self._index]
            probs = self._head.run(x)
            ema = self.params.smoothing == "ema" and not result.meta.still
            for face, p in zip(faces, probs):
                fid = int(face.face_id)
                if ema:
                    prev, seen = self._ema.get(fid), self._last_seen.get(fid)
                    if prev is not None and seen is not None and 0.0 <= t_s - seen <= _MAX_GAP_S:
                        a = 1.0 - float(np.exp(-(t_s - seen) / self.params.ema_tau_s))
                        p = (a * p + (1.0 - a) * prev).astype(np.float32)
                    self._ema[fid] = p
                    self._last_seen[fid] = t_s
                face.emotion = np.array(p, dtype=np.float32)
        if self._last_seen:
            for fid in [f for f, s in self._last_seen.items() if abs(t_s - s) > _FORGET_AFTER_S]:
                del self._last_seen[fid]
                self._ema.pop(fid, None)
