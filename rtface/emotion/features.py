"""Emotion-head features: the FACS AU intensity vector, produced by the live stages themselves.

Why AU intensities: they are what the live AU stage publishes for every face (no extra cost), they are already
pose- and identity-free (pose and the person's face shape removed by the canonical stage's face model), they are
small (19 values in FACS 0-5 units) and they are the only feature the shipped default head can be built from (it is
synthesised from EMFACS prototype AU combinations, see ``scripts/build_default_emotion_head.py``).

Feature spec (stored as JSON in every model's ``feature_spec`` metadata)::

    {"kind": "au_intensity", "names": ["AU01", ...], "order": "names", "units": "FACS 0-5",
     "basis": "<AU basis file name used when the training data was made>", "neutral": "<neutral rule>"}

The model's input column j is the pipeline AU named ``names[j]``; the live stage maps the AU stage's vector onto
that order and refuses a model that needs an AU the pipeline does not provide.

One pipeline: :class:`AUFeaturizer` instantiates :class:`rtface.stages.canonical.CanonicalStage` and
:class:`rtface.stages.aus.AUStage` with the packaged default config's parameters (or those of a loaded config) and
calls their ``process`` on :class:`rtface.records.FrameResult` s built from landmarks, exactly as the engine does.
Nothing of canonicalization or the AU solve is re-implemented here. How a group of frames is run (the neutral
rule; :mod:`rtface.emotion.dataset` picks one per video or photo):

- ``video``: a sequence (``FrameMeta.still`` false, media time = frame index / fps): the canonical stage's online
  person model refines the face shape from the video's rest frames, as live (``Face.shape_frames`` grows);
- ``still``: each frame an independent still image (``FrameMeta.still`` true): the population mean is the
  reference (``shape_frames`` 0) and the AU stage uses its single-photo floors, as ``rtface run`` on a photo folder;
- ``person``: an explicit neutral for the person, the per-landmark median frontal shape of their neutral-labelled
  frames (:meth:`CanonicalStage.set_neutral_from_faces`, the same explicit path as ``load_neutral``), then the
  frames as a sequence against it (``shape_frames`` inf), as a live session with a saved neutral.

Each video / photo group gets a fresh face id; between groups the featurizer lets more media time pass than the
stages' forget intervals (an empty frame), so no person model, warm start or presence state carries over.

The stages are imported inside :class:`AUFeaturizer` only: ``rtface.stages.emotion`` imports this module for the
feature spec, and the trainer is a tool that drives the stages, not a part of them.

Thread ownership: an :class:`AUFeaturizer` owns its two stages; use it from one thread.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rtface.errors import ConfigError, DataError

FEATURE_KIND = "au_intensity"
_AU_FORGET_S = 10.0  # the AU stage forgets a face id's warm start / presence after this much media time


@dataclass(frozen=True)
class FeatureSpec:
    """What a model's input columns are (stored in the ONNX metadata as JSON)."""

    names: tuple[str, ...]
    kind: str = FEATURE_KIND
    basis: str = ""
    neutral: str = ""

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "names": list(self.names), "order": "names",
                           "units": "FACS 0-5", "basis": self.basis, "neutral": self.neutral})

    @staticmethod
    def from_json(text: str, where: str) -> "FeatureSpec":
        try:
            d = json.loads(text)
            names = tuple(str(n) for n in d["names"])
            kind = str(d["kind"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where}: metadata 'feature_spec' is not valid JSON with 'kind' and 'names': "
                              f"{exc}") from exc
        return FeatureSpec(names=names, kind=kind, basis=str(d.get("basis", "")), neutral=str(d.get("neutral", "")))


def load_basis(path: str | Path | None = None) -> Any:
    """The AU basis (``rtface.au.basis.AUBasis``: names, matrix (1434, K), unit_to_facs); None = the shipped one.
    A missing or malformed file is a DataError naming it."""
    from rtface.au.basis import load_au_basis

    return load_au_basis(str(path) if path else None)


def basis_names(path: str | Path | None = None) -> tuple[str, ...]:
    """AU names (in the AU stage's output order) of a basis file ("" / None = the shipped basis)."""
    return tuple(str(n) for n in load_basis(path).names)


def feature_index(model_names: Sequence[str], pipeline_names: Sequence[str], where: str) -> np.ndarray:
    """Indices into the pipeline's AU vector for each model input column; ConfigError naming missing AUs."""
    pos = {n: i for i, n in enumerate(pipeline_names)}
    missing = [n for n in model_names if n not in pos]
    if missing:
        raise ConfigError(f"{where}: the model needs AU feature(s) {missing} that the pipeline's AU stage does not "
                          f"provide (it provides {list(pipeline_names)})")
    return np.array([pos[n] for n in model_names], dtype=np.intp)


def _stage_params(config: Any, kind: str, default: Any) -> Any:
    for sc in getattr(config, "stages", ()):
        if sc.kind == kind:
            return sc.params
    return default


Frame = tuple[np.ndarray, int, int]  # (landmarks_px (478, 3), image width px, image height px)


class AUFeaturizer:
    """Landmarks -> FACS AU intensities through the live canonical and AU stages (module doc).

    ``config``: an :class:`rtface.config.EngineConfig` whose ``canonical`` and ``aus`` stage parameters are used
    (None = the packaged default config); ``basis_path`` replaces the AU stage's ``basis_path``."""

    def __init__(self, config: Any = None, basis_path: str | Path | None = None) -> None:
        from rtface.config import load_config
        from rtface.geometry.canonical_model import load_canonical_model
        from rtface.stages.aus import AUParams, AUStage
        from rtface.stages.canonical import CanonicalParams, CanonicalStage

        cfg = config if config is not None else load_config()
        canon_p = _stage_params(cfg, "canonical", CanonicalParams())
        au_p = _stage_params(cfg, "aus", AUParams())
        if basis_path:
            au_p = dataclasses.replace(au_p, basis_path=str(basis_path))
        self.canonical = CanonicalStage("canonical", canon_p)
        self.aus = AUStage("aus", au_p)
        self.canonical.open()
        self.aus.open()
        self.names: tuple[str, ...] = tuple(self.aus.names)
        self.basis = load_basis(au_p.basis_path or None)
        self.template = np.asarray(load_canonical_model().vertices_cm, dtype=np.float64)  # (478, 3) cm
        self.basis_name = Path(au_p.basis_path).name if au_p.basis_path else "au_basis.npz (shipped)"
        self.config_origin = str(getattr(cfg, "origin", ""))
        self._next_id = 0
        self._t_end_s = 0.0  # media time of the last frame run, s
        self._gap_s = max(float(canon_p.forget_after_s), _AU_FORGET_S) + 1.0  # between groups (module doc)

    def close(self) -> None:
        self.canonical.close()
        self.aus.close()

    # ---- running frames through the stages ------------------------------------------------------------------------
    def _new_group(self) -> int:
        """A fresh face id, after an empty frame far enough in media time that the stages forget the last group."""
        from rtface.records import FrameMeta, FrameResult

        flush = FrameResult(FrameMeta(0, 0, int((self._t_end_s + self._gap_s) * 1e9), 1, 1, "flush"))
        self.canonical.process(None, flush)
        self.aus.process(None, flush)
        self._next_id += 1
        return self._next_id

    def _run(self, face_id: int, frame: Frame, index: int, t_s: float, still: bool) -> Any:
        from rtface.errors import StageError
        from rtface.records import Face, FrameMeta, FrameResult

        lm, w, h = frame
        lm = np.asarray(lm, dtype=np.float32)
        face = Face(face_id, 1.0, np.zeros(4, np.float32), lm)
        res = FrameResult(FrameMeta(index, 0, int(round(t_s * 1e9)), int(w), int(h), "features", still),
                          faces=[face])
        try:
            self.canonical.process(None, res)
            self.aus.process(None, res)
        except StageError as exc:
            raise DataError(str(exc)) from exc
        self._t_end_s = t_s
        if face.au_intensity is None:
            raise DataError(f"frame {index}: the AU stage gave no AUs (non-finite canonical landmarks)")
        return face

    def still_faces(self, frames: Sequence[Frame]) -> list[Any]:
        """Each frame an independent still image (rule ``still``); the processed ``Face`` records."""
        out = []
        for i, fr in enumerate(frames):
            out.append(self._run(self._new_group(), fr, i, 0.0, True))
        return out

    def sequence_faces(self, frames: Sequence[Frame], fps: float = 30.0, frame_index: Sequence[int] | None = None,
                       neutral: Sequence[Frame] | None = None, times_s: Sequence[float] | None = None) -> list[Any]:
        """One face's frames in time order as a sequence (rule ``video``; with ``neutral`` frames: rule ``person``,
        their median frontal shape is the explicit neutral). Media time = frame index / ``fps``, or ``times_s``
        (s) when given. Returns the processed ``Face`` records."""
        if not fps > 0:
            raise ConfigError(f"fps must be > 0, got {fps}")
        idx = list(range(len(frames))) if frame_index is None else [int(i) for i in frame_index]
        times = [i / fps for i in idx] if times_s is None else [float(t) for t in times_s]
        if len(idx) != len(frames) or len(times) != len(frames):
            raise ConfigError(f"{len(frames)} frames but {len(idx)} frame indices and {len(times)} times")
        fid = self._new_group()
        if neutral:
            refs = [self._run(fid, fr, i, 0.0, True) for i, fr in enumerate(neutral)]
            self.canonical.set_neutral_from_faces(fid, refs)
        return [self._run(fid, fr, i, t, False) for fr, i, t in zip(frames, idx, times)]

    def frontal_shape(self, frames: Sequence[Frame]) -> np.ndarray:
        """(478, 3) cm: the neutral the ``person`` rule would use for these frames (the canonical stage's explicit
        path: median frontal shape, pose response removed); e.g. a real neutral face for synthetic data."""
        fid = self._new_group()
        faces = [self._run(fid, fr, i, 0.0, True) for i, fr in enumerate(frames)]
        return self.canonical.set_neutral_from_faces(fid, faces)

    def stills(self, frames: Sequence[Frame]) -> np.ndarray:
        """(N, K) float32 FACS intensities, each frame a still."""
        return _stack(self.still_faces(frames), len(self.names))

    def sequence(self, frames: Sequence[Frame], fps: float = 30.0, frame_index: Sequence[int] | None = None,
                 neutral: Sequence[Frame] | None = None, times_s: Sequence[float] | None = None) -> np.ndarray:
        """(F, K) float32 FACS intensities of one face's sequence (see :meth:`sequence_faces`)."""
        return _stack(self.sequence_faces(frames, fps, frame_index, neutral, times_s), len(self.names))


def _stack(faces: list[Any], k: int) -> np.ndarray:
    if not faces:
        return np.zeros((0, k), dtype=np.float32)
    return np.stack([f.au_intensity for f in faces]).astype(np.float32)
