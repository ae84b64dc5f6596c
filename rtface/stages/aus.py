"""Action Unit stage: canonical landmarks -> FACS AU intensities (0-5), presence, PSPI, session summaries.

For each ``Face`` with ``canonical_cm`` set it solves the bounded ridge NNLS of ``canonical_cm - template`` on the
AU basis (:mod:`rtface.au.solve`; re-aligned per frame on the basis' stable anchors when the basis names them and
``realign`` is true), warm-started from that face id's previous activations, and fills
``au_intensity`` ((K,) float32 0-5, order = :attr:`AUStage.names`), ``au_presence`` ((K,) bool, hysteresis,
:mod:`rtface.au.presence`) and ``extras["pspi"]`` (float 0-16, :mod:`rtface.au.session`). Every published face
frame is added to the session accumulators (:meth:`AUStage.summary`).

Before the person's neutral is ready (``face.neutral_ready`` False) AUs are published by default (consumers see
``neutral_ready``); ``min_neutral_ready = true`` skips such faces (no AUs, not accumulated).
Faces whose ``canonical_cm`` has non-finite values are skipped and counted in ``skipped_nonfinite``.

Thread ownership: the runner's processing thread owns the stage (open/process/summary/close).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.au.presence import PresenceTracker
from rtface.au.session import SessionAccumulator
from rtface.au.solve import AUSolver, landmark_weights
from rtface.errors import ConfigError, StageError
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

_FORGET_AFTER_FRAMES = 300  # drop warm-start / presence state of a face id unseen for this many frames


@dataclass(frozen=True)
class AUParams:
    basis_path: str = ""  # AU basis .npz ("" = the shipped rtface/data/au_basis/au_basis.npz)
    ridge: float = 0.01  # relative ridge (fraction of the mean column energy of the weighted basis)
    upper_bound: float = 5.0  # FACS upper bound on each AU during the solve (output is clipped to 0-5 anyway)
    weight_contour: float = 0.25  # landmark weight of the face-oval (silhouette) points (others 1)
    weight_iris: float = 0.0  # landmark weight of the 10 iris points (they move with gaze, not expression)
    presence_on: float = 1.0  # FACS intensity at/above which an AU may switch on
    presence_off: float = 0.5  # FACS intensity below which a present AU may switch off
    n_on: int = 2  # consecutive frames at/above presence_on to switch on
    n_off: int = 2  # consecutive frames below presence_off to switch off
    min_neutral_ready: bool = False  # true: publish/accumulate AUs only once face.neutral_ready is set
    pspi_threshold: float = 1.0  # session fac_pspi_pct counts frames with PSPI >= this
    max_iter: int = 50  # NNLS rounds per solve (warm-started solves typically need 1-3)
    realign: bool = True  # re-align each frame on the basis' stable anchors (meta "solve_realign_anchors"), if any


@register_stage
class AUStage(Stage):
    kind = "aus"
    inputs = ("canonical",)
    outputs = ("aus",)
    Params = AUParams

    def __init__(self, name: str, params: AUParams, *, basis: Any = None, template_cm: np.ndarray | None = None):
        """``basis`` / ``template_cm`` override the basis file and the canonical template (tests, tools)."""
        super().__init__(name, params)
        p = params
        for f in ("ridge", "weight_contour", "weight_iris"):
            v = getattr(p, f)
            if not (np.isfinite(v) and v >= 0):
                raise ConfigError(f"stage '{name}': field '{f}' must be finite and >= 0, got {v}")
        if not (np.isfinite(p.upper_bound) and p.upper_bound > 0):
            raise ConfigError(f"stage '{name}': field 'upper_bound' must be finite and > 0, got {p.upper_bound}")
        if not (np.isfinite(p.presence_on) and np.isfinite(p.presence_off) and p.presence_off <= p.presence_on):
            raise ConfigError(f"stage '{name}': fields 'presence_off' ({p.presence_off}) must be <= "
                              f"'presence_on' ({p.presence_on}), both finite")
        for f in ("n_on", "n_off", "max_iter"):
            if getattr(p, f) < 1:
                raise ConfigError(f"stage '{name}': field '{f}' must be >= 1, got {getattr(p, f)}")
        if not np.isfinite(p.pspi_threshold):
            raise ConfigError(f"stage '{name}': field 'pspi_threshold' must be finite, got {p.pspi_threshold}")
        self._basis_override = basis
        self._template_override = template_cm
        self._solver: AUSolver | None = None
        self._presence: PresenceTracker | None = None
        self._session: SessionAccumulator | None = None
        self._template: np.ndarray | None = None
        self._prev: dict[int, np.ndarray] = {}  # face_id -> raw activations of its last solve
        self._last_seen: dict[int, int] = {}  # face_id -> frame index last seen
        self.names: tuple[str, ...] = ()
        self.skipped_nonfinite = 0
        self.skipped_not_ready = 0

    # ------------------------------------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        p = self.params
        basis = self._basis_override
        if basis is None:
            try:
                from rtface.au.basis import load_au_basis
            except ImportError as exc:
                raise ConfigError(
                    f"stage '{self.name}': AU basis loader rtface.au.basis is unavailable: {exc}"
                ) from exc
            try:
                basis = load_au_basis(p.basis_path or None)
            except OSError as exc:
                raise ConfigError(
                    f"stage '{self.name}': field 'basis_path': cannot load {p.basis_path!r}: {exc}"
                ) from exc
        if self._template_override is not None:
            template = np.asarray(self._template_override, dtype=np.float64)
        else:
            from rtface.geometry.canonical_model import load_canonical_model

            template = np.asarray(load_canonical_model().vertices_cm, dtype=np.float64)
        weights = landmark_weights(p.weight_contour, p.weight_iris)
        meta = getattr(basis, "meta", None) or {}
        anchors = meta.get("solve_realign_anchors") if p.realign else None
        self._solver = AUSolver(basis, ridge=p.ridge, upper=p.upper_bound, landmark_weights=weights,
                                max_iter=p.max_iter, realign_anchors=anchors, template_cm=template)
        self.names = self._solver.names
        self._template = template
        self._presence = PresenceTracker(len(self.names), on_threshold=p.presence_on,
                                         off_threshold=p.presence_off, n_on=p.n_on, n_off=p.n_off)
        self._session = SessionAccumulator(self.names, pspi_threshold=p.pspi_threshold)
        self._prev.clear()
        self._last_seen.clear()

    def close(self) -> None:
        """Nothing to release (the session results stay readable through ``summary``). Safe to call twice."""

    # ------------------------------------------------------------------------------------------------ per frame
    def process(self, image: np.ndarray, result: FrameResult) -> None:
        if self._solver is None or self._presence is None or self._session is None or self._template is None:
            raise StageError(f"stage '{self.name}': process() called before open()")
        frame = result.meta.index
        for face in result.faces:
            if face.canonical_cm is None:
                continue
            if self.params.min_neutral_ready and not face.neutral_ready:
                self.skipped_not_ready += 1
                continue
            fid = face.face_id
            cc = face.canonical_cm
            if cc.shape != self._template.shape:
                raise StageError(f"stage '{self.name}': face {fid}: canonical_cm shape {cc.shape}, "
                                 f"expected {self._template.shape}")
            if not np.isfinite(cc).all():
                self.skipped_nonfinite += 1
                continue
            act = self._solver.solve_activations(cc, self._template, self._prev.get(fid))
            self._prev[fid] = act
            self._last_seen[fid] = frame
            inten = self._solver.to_facs(act)
            pres = self._presence.update(fid, inten)
            face.au_intensity = inten
            face.au_presence = pres
            face.extras["pspi"] = self._session.add(fid, inten, pres)
        self._forget_stale(frame)

    def _forget_stale(self, frame: int) -> None:
        stale = [f for f, seen in self._last_seen.items() if frame - seen > _FORGET_AFTER_FRAMES]
        for f in stale:
            del self._last_seen[f]
            self._prev.pop(f, None)
            if self._presence is not None:
                self._presence.forget(f)

    # ------------------------------------------------------------------------------------------------ session
    def summary(self) -> dict[str, Any]:
        """{"names": [...], "pspi_threshold": x, "faces": {face_id: {OpenDBM-style variable: value}}}."""
        if self._session is None:
            return {}
        return {
            "names": list(self.names),
            "pspi_threshold": self._session.pspi_threshold,
            "faces": self._session.summary(),
        }
