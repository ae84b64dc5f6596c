"""Emotion-head features: the FACS AU intensity vector, computed exactly like the live pipeline.

Why AU intensities: they are what the live AU stage publishes for every face (no extra cost), they are already
pose- and identity-free (head pose removed by Procrustes, identity by the per-person neutral), they are small
(19 values in FACS 0-5 units) and they are the only feature the shipped default head can be built from (it is
synthesised from EMFACS prototype AU combinations, see ``scripts/build_default_emotion_head.py``). Geometric
features would tie a model to one canonical template and would not exist for prototype data.

Feature spec (stored as JSON in every model's ``feature_spec`` metadata)::

    {"kind": "au_intensity", "names": ["AU01", ...], "order": "names", "units": "FACS 0-5",
     "basis": "<AU basis file name used when the training data was made>", "neutral": "<neutral rule>"}

The model's input column j is the pipeline AU named ``names[j]``; the live stage maps the AU stage's vector onto
that order and refuses a model that needs an AU the pipeline does not provide.

Offline path (training tables and labelled folders), identical to the live stages:
normalised landmarks -> px (x*W, y*H, z*W) -> ``metric_landmarks`` -> ``PoseSolver`` (pose-free) -> neutral ->
``canonicalize`` -> the AU stage's own solver (``rtface.stages.aus.build_solver`` with the stage defaults:
weights, stable-anchor re-alignment, noise floor of a ready neutral; warm start from the previous frame of the
same video) -> FACS intensities.

Neutral rules (``neutral``; :mod:`rtface.emotion.dataset` adds ``auto``, the default: ``video`` for videos of at
least 30 frames, else ``person`` when the person has neutral-labelled frames, else ``template``):
- ``video``: the live ``NeutralEstimator``'s rule (start from the video's first frames, keep the 25 %
  lowest-expression frames, per-landmark median) applied to ALL frames of the video at once
  (:func:`video_neutral`) and used for every frame of that video (offline, so early frames get the settled
  neutral instead of the template). Videos are assumed to start neutral and to be neutral at least a quarter of
  the time; a single image is its own neutral, so use ``person`` or ``template`` for photo sets.
- ``person``: the per-landmark median pose-free face of that person's frames labelled ``neutral`` (photo sets
  such as one neutral + one expressive photo per person). People without a neutral example use the template.
- ``template``: no identity removal (pose-free face minus the canonical template; identity leaks into AUs).

Thread ownership: an :class:`AUFeaturizer` holds one solver; use it from one thread.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rtface.errors import ConfigError, DataError

FEATURE_KIND = "au_intensity"


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


class AUFeaturizer:
    """Landmarks -> FACS AU intensities with the live geometry + AU solver (see module doc)."""

    def __init__(self, basis: Any = None, basis_path: str | Path | None = None) -> None:
        from rtface.geometry.canonical_model import load_canonical_model
        from rtface.geometry.pose import PoseSolver
        from rtface.stages.aus import AUParams, build_solver

        self.basis = basis if basis is not None else load_basis(basis_path)
        self.basis_name = Path(str(basis_path)).name if basis_path else "au_basis.npz (shipped)"
        self.model = load_canonical_model()
        self.template = np.asarray(self.model.vertices_cm, dtype=np.float64)
        # the live AU stage's solver and read-out (re-alignment, noise floor of a ready neutral)
        self.solver, _ = build_solver(AUParams(), self.basis, self.template)
        self.names: tuple[str, ...] = self.solver.names
        self.pose = PoseSolver(self.model)

    def posefree(self, landmarks_px: np.ndarray, width: int, height: int) -> np.ndarray:
        """(478, 3) float64 pose-free landmarks (canonical frame, cm) of one face; landmarks in px units."""
        from rtface.geometry.camera import Intrinsics, metric_landmarks

        metric = metric_landmarks(landmarks_px, Intrinsics.from_config(int(width), int(height)), self.model)
        return self.pose.fit(metric).posefree_cm

    def aus(self, posefree: np.ndarray, neutral: np.ndarray | None) -> np.ndarray:
        """(F, K) float32 FACS intensities of F pose-free frames of ONE video against ``neutral`` (None =
        template), warm-starting each solve from the previous frame like the AU stage."""
        out = np.zeros((len(posefree), len(self.names)), dtype=np.float32)
        prev = None
        for i, pf in enumerate(posefree):
            canon = pf if neutral is None else self.template + (pf - neutral)
            prev = self.solver.solve_activations(canon, self.template, prev)
            out[i] = self.solver.to_facs(prev)
        return out


def video_neutral(posefree: np.ndarray, keep_fraction: float = 0.25, rounds: int = 2,
                  start_frames: int = 10) -> np.ndarray:
    """Neutral (478, 3) cm of one video (frames in time order): the live estimator's rule applied to all its frames
    at once. Start, like the live estimator, from the video's beginning (per-landmark median of the first
    ``start_frames`` frames); then ``rounds`` times keep the ``keep_fraction`` frames with the lowest expression
    energy (RMS distance to the current estimate over the 468 non-iris landmarks) and take their median."""
    stack = np.asarray(posefree, dtype=np.float64)
    if stack.ndim != 3 or len(stack) == 0:
        raise DataError(f"video_neutral: expected (F, 478, 3) frames, got {stack.shape}")
    ref = np.median(stack[:start_frames], axis=0)
    n_keep = max(1, int(round(keep_fraction * len(stack))))
    for _ in range(rounds):
        diff = stack[:, :468] - ref[None, :468]
        energy = np.sqrt((diff ** 2).sum(axis=(1, 2)) / 468)
        ref = np.median(stack[np.argsort(energy, kind="stable")[:n_keep]], axis=0)
    return ref
