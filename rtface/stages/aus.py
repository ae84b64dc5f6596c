"""Action Unit stage: canonical landmarks -> FACS AU intensities (0-5), presence, PSPI, session summaries.

For each ``Face`` with ``canonical_cm`` set it solves the bounded ridge NNLS of ``canonical_cm - template`` on the
AU basis (:mod:`rtface.au.solve`; re-aligned per frame on the basis' stable anchors when the basis names them and
``realign`` is true), warm-started from that face id's previous activations, and fills
``au_intensity`` ((K,) float32 0-5, order = :attr:`AUStage.names`), ``au_presence`` ((K,) bool, hysteresis,
:mod:`rtface.au.presence`) and ``extras["pspi"]`` (float 0-16, :mod:`rtface.au.session`). Every published face
frame is added to the session accumulators (:meth:`AUStage.summary`).

Noise-aware read-out (defaults; :mod:`rtface.au.solve`, noise model ``noise_path`` = ``rtface/data/au_basis/
noise.json`` from ``scripts/measure_au_noise.py``): each AU's FACS reading is its estimate minus ``noise_t`` (1.0)
standard deviations of MediaPipe's landmark noise propagated to that AU (soft threshold), so a still neutral face
reads ~0 and an AU reads above 0 only once it exceeds its own noise. Presence (``presence_on``/``presence_off``)
acts on that reading, i.e. ``t`` sigma above each AU's noise. An optional per-AU L1 term (``noise_z``, default 0
once the neutral is ready) makes an AU turn on only when it explains more displacement than noise would.

Warm-up: before the person's neutral is ready (``face.neutral_ready`` False) the neutral is provisional (the first
frame, then the median of a few frames), so the displacement carries the noise of two detections (std x sqrt 2)
plus MediaPipe's detection-to-tracking settling. AUs are still published by default, but with the stronger
``noise_t_warmup`` (3.0; 2.0 left phantoms of 0.19 FACS on the sample video's frames 8-16, 3.0 gave <= 0.01) and
``noise_z_warmup`` (0); every published face gets ``extras["au_noise_t"]`` and
``extras["au_noise_z"]`` (the values used) and ``neutral_ready`` says which regime it is.
``min_neutral_ready = true`` skips such faces (no AUs, not accumulated).
Faces whose ``canonical_cm`` has non-finite values are skipped and counted in ``skipped_nonfinite``.

Thread ownership: the runner's processing thread owns the stage (open/process/summary/close).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.au.presence import PresenceTracker
from rtface.au.session import SessionAccumulator
from rtface.au.solve import AUSolver, NoiseModel, landmark_weights, load_noise_model
from rtface.errors import ConfigError, DataError, StageError
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

WARMUP_T = 3.0
WARMUP_Z = 0.0
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
    noise_path: str = ""  # landmark noise model .json ("" = shipped rtface/data/au_basis/noise.json; "none" = off)
    noise_t: float = 1.0  # soft threshold: FACS reading = estimate - noise_t x the AU's noise std (0 = off)
    noise_z: float = 0.0  # per-AU L1 strength in noise std once the neutral is ready (0 = plain ridge NNLS)
    noise_t_warmup: float = WARMUP_T  # soft threshold before the neutral is ready
    noise_z_warmup: float = WARMUP_Z  # L1 strength before the neutral is ready


def build_solver(p: "AUParams", basis: Any, template: np.ndarray,
                 noise: NoiseModel | None = None) -> tuple[AUSolver, NoiseModel | None]:
    """The AU solver exactly as the live stage configures it (also used to compute emotion-training features,
    so training and live read-outs match): weights, stable-anchor re-alignment, noise model and soft threshold
    of the ready regime. Returns (solver, noise model or None)."""
    weights = landmark_weights(p.weight_contour, p.weight_iris)
    meta = getattr(basis, "meta", None) or {}
    anchors = meta.get("solve_realign_anchors") if p.realign else None
    if noise is None and p.noise_path.lower() != "none" and max(p.noise_t, p.noise_t_warmup, p.noise_z,
                                                                 p.noise_z_warmup) > 0:
        noise = load_noise_model(p.noise_path or None)
    solver = AUSolver(basis, ridge=p.ridge, upper=p.upper_bound, landmark_weights=weights,
                      max_iter=p.max_iter, realign_anchors=anchors, template_cm=template, noise=noise,
                      noise_z=p.noise_z if noise is not None else 0.0,
                      noise_t=p.noise_t if noise is not None else 0.0)
    return solver, noise


@register_stage
class AUStage(Stage):
    kind = "aus"
    inputs = ("canonical",)
    outputs = ("aus",)
    Params = AUParams

    def __init__(self, name: str, params: AUParams, *, basis: Any = None, template_cm: np.ndarray | None = None,
                 noise: NoiseModel | None = None):
        """``basis`` / ``template_cm`` / ``noise`` override the basis file, the canonical template and the noise
        model file (tests, tools)."""
        super().__init__(name, params)
        p = params
        for f in ("ridge", "weight_contour", "weight_iris", "noise_z", "noise_z_warmup", "noise_t",
                  "noise_t_warmup"):
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
        self._noise_override = noise
        self._solver: AUSolver | None = None
        self._presence: PresenceTracker | None = None
        self._session: SessionAccumulator | None = None
        self._template: np.ndarray | None = None
        self._prev: dict[int, np.ndarray] = {}  # face_id -> raw activations of its last solve
        self._last_seen: dict[int, int] = {}  # face_id -> frame index last seen
        self.names: tuple[str, ...] = ()
        self.skipped_nonfinite = 0
        self.skipped_not_ready = 0
        self._zt_ready = self._zt_warmup = (0.0, 0.0)  # (noise_z, noise_t) in use, set at open

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
        try:
            self._solver, noise = build_solver(p, basis, template, self._noise_override)
        except DataError as exc:
            raise ConfigError(f"stage '{self.name}': field 'noise_path': {exc}") from exc
        on = noise is not None
        self._zt_ready = (p.noise_z, p.noise_t) if on else (0.0, 0.0)
        self._zt_warmup = (p.noise_z_warmup, p.noise_t_warmup) if on else (0.0, 0.0)
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
    def warmup(self) -> None:
        """Compile the NNLS kernel (numba) with one state-free solve of the template against itself."""
        if self._solver is not None:
            self._solver.solve(self._template, self._template)

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
            z, t = self._zt_ready if face.neutral_ready else self._zt_warmup
            act = self._solver.solve_activations(cc, self._template, self._prev.get(fid), z)
            self._prev[fid] = act
            self._last_seen[fid] = frame
            inten = self._solver.to_facs(act, t)
            pres = self._presence.update(fid, inten)
            face.au_intensity = inten
            face.au_presence = pres
            face.extras["pspi"] = self._session.add(fid, inten, pres)
            face.extras["au_noise_z"] = float(z)
            face.extras["au_noise_t"] = float(t)
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
