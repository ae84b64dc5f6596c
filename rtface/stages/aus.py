"""Action Unit stage: canonical landmarks -> FACS AU intensities (0-5), presence, PSPI, session summaries.

For each ``Face`` with ``canonical_cm`` set it solves the bounded ridge NNLS of ``canonical_cm - template`` on the
AU basis (:mod:`rtface.au.solve`; re-aligned per frame on the basis' stable anchors when the basis names them and
``realign`` is true), warm-started from that face id's previous activations in a sequence, and fills
``au_intensity`` ((K,) float32 0-5, order = :attr:`AUStage.names`), ``au_presence`` ((K,) bool,
:mod:`rtface.au.presence`) and ``extras["pspi"]`` (float 0-16, :mod:`rtface.au.session`). Every published face
frame is added to the session accumulators (:meth:`AUStage.summary`).

Read-out that knows its own uncertainty: each AU's FACS reading is its estimate minus ``noise_t`` standard
deviations of what, besides expression, moves that AU's estimate (a soft threshold; 0 until the evidence exceeds it):

- the person's face shape: the population's identity spread (face model, :mod:`rtface.facemodel.population`)
  still left after ``face.shape_frames`` rest frames of this person (:class:`rtface.facemodel.identity.
  IdentityPosterior`), plus the AU-shaped part of the person's rest offset the canonical stage's neutral has not
  taken yet (``extras["neutral_au_share"]`` s: a share s of the known part is still read as expression, so it
  adds s^2 x the known share; per AU at most what this person's own untaken offset reads, ``Face.rest_au_offset_cm``
  through the same read-out, while the head holds still: a person whose rest face looks neutral has little to
  cover, one whose rest face looks like an expression, or a session that opens with one, keeps the population's
  term, and so does a moving head): wide on a single photo, shrinking as the canonical stage refines the person's
  shape, zero with an explicit neutral. (Without the second term one rest frame pinned the identity to 2-14 % of its
  variance while the neutral had taken half of its AU-shaped part: a real neutral photo played as a video read an AU
  sum of 1.5 on average in its first 3 s, 3.6 for one person who reads 0 as a still);
- the head pose: what the face model's pose response leaves unexplained, growing with |yaw|, |pitch|, |roll|; in a
  sequence, while the head holds still, with the distance from the pose the person's neutral was learned at
  (``rest_pose_floor``, :mod:`rtface.au.pose_floor`: a face held turned towards a bedside camera);
- MediaPipe's landmark jitter (``noise_path``, ``rtface/data/au_basis/noise.json``), x (1 + 1/n) in variance while
  the person's neutral rests on n frames (the neutral carries jitter too);
- in a sequence, the face moving towards the camera: MediaPipe's tracked landmarks lag a face that grows in the
  frame and read as AU05/AU07 (and AU01, AU15 ...) on a neutral face; the face model's per-AU
  ``approach_floor_gain`` (FACS per 1/s) x the approach rate (1/s: minus the rate of change of ln distance, from
  the head pose's ``tz_cm``, low-passed over ``approach_tau_s``), x ``approach_floor_scale``. Moving away and
  holding still add nothing;
- in a sequence, the head rotating: the lag of MediaPipe's tracked landmarks behind a turning, nodding or tilting
  head reads as AUs most where the pose floor is smallest (crossing frontal at full speed); the face model's per-AU
  and per-axis ``turn_floor_gain`` (FACS per deg/s) x the low-passed rotation speed on that axis
  (:func:`rtface.au.pose_floor.turning_speeds`), x ``turn_floor_scale``.

Each is a covariance in landmark space propagated through the solver's linear read-out. Presence acts on the
reading.

Two read-outs, chosen per AU: the plain one above, and (with a face model that has its fields, ``marginal_readout``)
one with the population's face-shape modes integrated out (:class:`rtface.au.solve.AUSolver` ``marginal``: it reads
an AU only as far as no plausible face shape explains the displacement). On a single photo the plain read-out's
identity floor is at or near the top of the scale for AU05, AU06, AU07, AU17, AU24 and AU28 (people's eyes, chins
and lips differ more than those AUs move them); the marginalised one has small floors but also reads less of some
AUs (AU04 brow lowering lies inside the face-shape spread and reads ~0 through it). Each has its own floors
(the same three parts, its own measured single-frame floor); on a still (``meta.still``: measured on its own
against the population mean, which is what its floors were measured for) the stage uses per AU the read-out with
the larger full-weight reading per unit of floor (the face model's ``readout_gain``, measured on renders of each AU
against the same face's neutral render; AU06 on the real smile it was made from). In a sequence the person model
has already taken the shape-like part of the face out of ``canonical_cm`` from the first frame on, what is left is
what looks like expression, and the marginalised floors do not describe it (tried: the neutral frames of the
validation's sequences and moving faces read AU05/AU07/AU15 ~1 through it): sequences use the plain read-out.
``extras["au_marginal"]`` (with ``publish_floor``) says which AUs used the marginalised read-out.

AU06 where it cannot be measured: on a face whose shape is unknown neither read-out sees AU06 (plain: floor ~4.8 on a
still; marginalised: a real smile's lid and cheek motion reads as face shape). There AU06 is raised to
``au06_smile_prior`` x AU12 x the share of the identity variance along AU06 still unknown (1 on a still, shrinking
with the person's rest frames), where that exceeds the measurement: the basis' own AU06 unit (the smile it was made
from reads AU06 = 0.8 x AU12). Inferred, not measured: ``extras["au06_inferred"]`` (with ``publish_floor``) is the
inferred amount (FACS).

Sequences vs stills: a frame with ``meta.still`` (an independent image) is measured on its own (no warm start, the
single-frame presence rule); in a sequence presence has timed hysteresis and the NNLS is warm-started.
``min_neutral_ready = true`` skips faces whose neutral is not ready. Faces whose ``canonical_cm`` has non-finite
values are skipped and counted in ``skipped_nonfinite``.

Thread ownership: the runner's processing thread owns the stage (open/process/summary/close).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.au.pose_floor import floor_pose, steady_share, turning_speeds
from rtface.au.presence import PresenceTracker
from rtface.au.session import SessionAccumulator
from rtface.au.solve import AUSolver, NoiseModel, landmark_weights, load_noise_model
from rtface.errors import ConfigError, DataError, StageError
from rtface.facemodel.identity import IdentityPosterior, quantise_frames
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

N_COORDS = 478 * 3
_FORGET_AFTER_S = 10.0  # drop warm-start / presence state of a face id unseen for this much media time
_POSE_UNIT_AMP = 0.25  # the pose floor's unit is simulated at this scale and divided by it (FloorModel doc)


def _quantise_share(s: float) -> float:
    """A share in [0, 1] rounded to steps of 0.05 (floor cache keys); non-finite or negative -> 0."""
    return min(1.0, round(max(float(s), 0.0) * 20.0) / 20.0) if math.isfinite(s) else 0.0


@dataclass(frozen=True)
class AUParams:
    basis_path: str = ""  # AU basis .npz ("" = the shipped rtface/data/au_basis/au_basis.npz)
    face_model_path: str = ""  # population face model ("" = shipped; "none" = no identity/pose terms)
    ridge: float = 0.01  # relative ridge (fraction of the mean column energy of the weighted basis)
    upper_bound: float = 5.0  # FACS upper bound on each AU during the solve (output is clipped to 0-5 anyway)
    weight_contour: float = 0.25  # landmark weight of the face-oval (silhouette) points (others 1)
    weight_iris: float = 0.0  # landmark weight of the 10 iris points (they move with gaze, not expression)
    presence_on: float = 1.0  # FACS intensity at/above which an AU may switch on
    presence_off: float = 0.5  # FACS intensity below which a present AU may switch off
    presence_clear: float = 2.0  # FACS intensity at which an AU is present at once (first frame of a face too)
    presence_on_s: float = 0.03  # media time above presence_on before an AU switches on
    presence_off_s: float = 0.03  # media time below presence_off before it switches off
    min_neutral_ready: bool = False  # true: publish/accumulate AUs only once face.neutral_ready is set
    pspi_threshold: float = 1.0  # session fac_pspi_pct counts frames with PSPI >= this
    max_iter: int = 50  # NNLS rounds per solve (warm-started solves typically need 1-3)
    realign: bool = True  # re-align each frame on the basis' stable anchors / per-region anchors (meta
    # "solve_realign_anchors" / "solve_regions"), if any
    noise_path: str = ""  # landmark jitter model .json ("" = shipped rtface/data/au_basis/noise.json; "none" = off)
    floor_quantile: float = 0.9  # floor = this quantile of what expressionless faces read (0 = no floor)
    floor_samples: int = 300  # Monte Carlo faces per floor level
    noise_z: float = 0.0  # per-AU L1 strength in jitter sd (0 = plain ridge NNLS)
    obs_sd_cm: float = 0.06  # spread of one rest frame around the person's neutral (as the canonical stage's)
    publish_floor: bool = False  # true: extras["au_floor"] = the per-AU floor subtracted for this face (and
    # extras["approach_rate"], 1/s)
    approach_floor_scale: float = 1.0  # x the face model's approach-floor gains (sequences; 0 = no approach floor)
    approach_tau_s: float = 0.15  # low-pass time constant of the approach rate, s of media time
    turn_floor_scale: float = 1.0  # x the face model's turning-floor gains (sequences; 0 = no turning floor;
    # with publish_floor, extras["turn_speed_deg_s"] = the low-passed yaw / pitch / roll speeds, deg/s)
    au06_smile_prior: float = 0.8  # AU06 per AU12 expected where AU06 cannot be measured (module doc; the basis'
    # AU06 unit: the smile it was made from reads AU06 = 0.8 x AU12); 0 = off
    rest_pose_floor: bool = True  # sequences: while the head holds still, the pose floor counts from the pose the
    # person's neutral was learned at, not from frontal (rtface.au.pose_floor); false = always from frontal
    marginal_readout: bool = True  # per AU, the identity-marginalised read-out where it detects better (module
    # doc; needs a face model that has it)


def build_solver(p: "AUParams", basis: Any, template: np.ndarray, noise: NoiseModel | None = None,
                 marginal: tuple[np.ndarray, float] | None = None) -> tuple[AUSolver, NoiseModel | None]:
    """The AU solver exactly as the live stage configures it:
    weights, stable-anchor re-alignment, jitter model; ``marginal`` = (identity factor, sd cm) for the
    identity-marginalised read-out. Returns (solver, jitter model or None)."""
    weights = landmark_weights(p.weight_contour, p.weight_iris)
    meta = getattr(basis, "meta", None) or {}
    anchors = meta.get("solve_realign_anchors") if p.realign else None
    regions = meta.get("solve_regions") if p.realign else None
    if noise is None and p.noise_path.lower() != "none":
        noise = load_noise_model(p.noise_path or None)
    solver = AUSolver(basis, ridge=p.ridge, upper=p.upper_bound, landmark_weights=weights,
                      max_iter=p.max_iter, realign_anchors=anchors, template_cm=template, noise=noise,
                      noise_z=p.noise_z if noise is not None else 0.0, regions=regions, marginal=marginal)
    return solver, noise


class FloorModel:
    """Per-AU floors (FACS): what a face with no expression reads, given its shape frames and pose.

    Three parts, combined in quadrature (each a ``quantile`` of readings of expressionless faces):

    - identity: on a single frame, the readings of real neutral photos against the population mean, measured by
      the face-model build (``PopulationModel.single_frame_floor``); after n rest frames of this person it shrinks
      by the share of the identity variance still unknown along each AU's read-out
      (:class:`IdentityPosterior`, analytic); zero for an explicit neutral;
    - landmark jitter (noise model), x sqrt(1 + 1/n) while the neutral rests on n frames;
    - head pose: the face model's pose residual, scaled for the pose; when the model has
      ``pose_residual_axis_factor``, per AU the larger of that and the per-axis residuals in quadrature (each axis
      scaled by its own angle: nodding leaves more than turning).

    Jitter and pose parts are Monte Carlo through the solver itself (non-negativity included), ``n_samples`` faces,
    seeded, simulated once each (the read-out scales exactly with their amplitude while the solver's 0-5 bound does
    not bind, so the pose unit is simulated at ``_POSE_UNIT_AMP`` of its amplitude and divided by it: simulated at
    full amplitude, AU05's, AU07's and AU17's 90 % quantile was clipped to 5 and their floors at smaller angles came
    out too low); levels (quantised frames x pose
    scale in steps of 0.1) are combined on first use and cached; each simulated part is also cached on disk
    (:mod:`rtface.au.floor_cache`), so later runs skip the solves.
    Without a measured single-frame floor the identity part is Monte Carlo from the identity prior too.
    """

    def __init__(self, solver: AUSolver, population: Any, obs_sd_cm: float, noise: NoiseModel | None,
                 quantile: float = 0.9, n_samples: int = 300, seed: int = 0,
                 single_frame_floor: np.ndarray | None = None) -> None:
        """``single_frame_floor`` (K,): the measured identity part for this solver's read-out (None = the face
        model's ``single_frame_floor``, which belongs to the plain read-out)."""
        self._solver = solver
        self._pop = population
        self._noise = noise
        self._q = float(quantile)
        self._n = int(n_samples)
        self._seed = int(seed)
        self._id: IdentityPosterior | None = None
        self._real: np.ndarray | None = None
        self._axis_f: np.ndarray | None = None  # (3, R, 1434) per-axis pose residual factors, if the model has them
        if population is not None:
            self._id = IdentityPosterior(population.identity_factor(), population.detail_sd_cm, obs_sd_cm)
            self._pose_f = population.pose_residual_factor.reshape(population.pose_residual_factor.shape[0], -1)
            ax = population.pose_residual_axis_factor
            self._axis_f = ax.reshape(3, ax.shape[1], -1) if ax.size else None
            self._real = (population.single_frame_floor_for(solver.names) if single_frame_floor is None
                          else np.asarray(single_frame_floor, dtype=np.float64))
            self._R = solver.readout_facs()
            self._prior = np.maximum(self._id.posterior_var_along(self._R, 0.0), 1e-12)
        self._cache: dict[tuple[float, ...], np.ndarray] = {}
        self._share: dict[float, np.ndarray] = {}
        self._jit: np.ndarray | None = None
        self._pose1: np.ndarray | None = None
        self._axis1: list[np.ndarray | None] = [None, None, None]

    def _scales(self, yaw_deg: float, pitch_deg: float, roll_deg: float) -> tuple[float, ...]:
        """The pose part's scales in steps of 0.1: the combined residual's, then (with the per-axis residual) one per
        axis."""
        if self._pop is None:
            return (0.0,)
        axes = self._pop.pose_residual_axis_scales(yaw_deg, pitch_deg, roll_deg)
        comb = (round(float(self._pop.pose_residual_gain @ axes), 1),)
        return comb if self._axis_f is None else comb + tuple(round(float(v), 1) for v in axes)

    def floors(self, frames: float, yaw_deg: float, pitch_deg: float, roll_deg: float,
               au_share: float = 0.0, offset_reading: np.ndarray | None = None, steady: float = 1.0) -> np.ndarray:
        """(K,) FACS floor for a face whose neutral rests on ``frames`` frames and has not taken ``au_share`` (0-1)
        of its AU-shaped rest offset, at this pose. ``offset_reading`` (K,) FACS: what that untaken offset itself
        reads (the person's own, :meth:`AUStage` computes it); per AU the share term covers at most that much, as
        far as the head holds still (``steady`` 0-1, :func:`rtface.au.pose_floor.steady_share`)."""
        if offset_reading is not None and self._real is not None and _quantise_share(au_share) > 0.0:
            base = self.floors(frames, yaw_deg, pitch_deg, roll_deg)
            extra = self._share_var(frames, au_share, offset_reading, steady)
            return np.minimum(np.sqrt(base ** 2 + extra), 5.0)
        key = (quantise_frames(frames), _quantise_share(au_share)) + self._scales(yaw_deg, pitch_deg, roll_deg)
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = self._combine(key[0], key[2:], key[1])
        return v

    def unknown_share(self, frames: float, au_share: float = 0.0,
                      offset_reading: np.ndarray | None = None, steady: float = 1.0) -> np.ndarray:
        """(K,) share (0-1) of the identity variance along each AU's read-out that can still read as that AU: the
        part the identity posterior has not pinned down, plus ``au_share``^2 x the part it has (module doc), or
        with ``offset_reading`` per AU at most the share that the person's own untaken offset reads."""
        s = self.identity_share(frames)
        r = _quantise_share(au_share)
        if r == 0.0:
            return s
        if offset_reading is None or self._real is None:
            return s + r * r * (1.0 - s)
        real2 = self._real ** 2
        var = self._share_var(frames, au_share, offset_reading, steady)
        return s + np.where(real2 > 0, var / np.maximum(real2, 1e-12), 0.0)

    def _share_var(self, frames: float, au_share: float, offset_reading: np.ndarray, steady: float) -> np.ndarray:
        """(K,) FACS^2: the untaken-offset part of the floor, the population's (``au_share``^2 x the known identity
        variance) but, as far as the head holds still (``steady``), at most what this person's untaken offset reads.
        While the head moves the population's term stays: measured (scripts/validate_aus.py, 2026-12-04), the bound
        at all times raised rendered neutral faces' mean AU sum while turning / nodding / tilting / moving in depth
        (4-s videos, a young person model throughout) from 0.08 / 0.48 / 0.09 / 0.88 to 0.19 / 0.89 / 0.16 / 1.37."""
        s = self.identity_share(frames)
        r = _quantise_share(au_share)
        assert self._real is not None
        pop = self._real ** 2 * (r * r * (1.0 - s))
        own = np.minimum(pop, np.asarray(offset_reading, dtype=np.float64) ** 2)
        g = min(1.0, max(0.0, float(steady)))
        return own + (1.0 - g) * (pop - own)

    def _combine(self, frames: float, pose_scales: tuple[float, ...], au_share: float = 0.0) -> np.ndarray:
        # the NNLS read-out is positively homogeneous (reading(c d) = c reading(d) for c > 0), so the jitter and pose
        # floors scale exactly with their amplitude: each is simulated once. Pose: the combined residual's part, or
        # (per AU) the per-axis residuals' parts in quadrature where that is larger
        if self._jit is None:
            self._jit = self._simulate(jitter=1.0)
        jf = 1.0 + (1.0 / frames if 1.0 <= frames < math.inf else 0.0)
        total = jf * self._jit ** 2
        if any(sc > 0 for sc in pose_scales):
            pose_var = (pose_scales[0] * self._pose_unit(None)) ** 2
            axis_var = sum(((sc * self._pose_unit(a)) ** 2 for a, sc in enumerate(pose_scales[1:]) if sc > 0),
                           np.zeros_like(total))
            total = total + np.maximum(pose_var, axis_var)
        if self._id is not None and not math.isinf(frames):
            if self._real is not None:
                total = total + self._real ** 2 * self.unknown_share(frames, au_share)
            else:
                sim = self._simulate(identity_frames=frames) ** 2
                total = total + sim + au_share ** 2 * np.maximum(self._simulate(identity_frames=0.0) ** 2 - sim, 0)
        return np.minimum(np.sqrt(total), 5.0)

    def identity_share(self, frames: float) -> np.ndarray:
        """(K,) share (0-1) of the identity variance along each AU's read-out still unknown after ``frames`` rest
        frames: 1 on a single frame, 0 with an explicit neutral or without a face model."""
        q = quantise_frames(frames)
        got = self._share.get(q)
        if got is None:
            if self._id is None or math.isinf(q):
                got = np.zeros(self._solver.n_aus)
            else:
                got = np.clip(self._id.posterior_var_along(self._R, q) / self._prior, 0.0, 1.0)
            self._share[q] = got
        return got

    def _pose_unit(self, axis: int | None) -> np.ndarray:
        """The pose floor at scale 1: of the combined residual (``axis`` None) or of one axis' residual."""
        if axis is None or self._axis_f is None:
            if self._pose1 is None:
                self._pose1 = self._simulate(pose=_POSE_UNIT_AMP) / _POSE_UNIT_AMP
            return self._pose1
        got = self._axis1[axis]
        if got is None:
            got = self._axis1[axis] = self._simulate(pose=_POSE_UNIT_AMP, axis=axis) / _POSE_UNIT_AMP
        return got

    def _simulate(self, jitter: float = 0.0, pose: float = 0.0, identity_frames: float | None = None,
                  axis: int | None = None) -> np.ndarray:
        """One floor part: the quantile of ``n_samples`` seeded solves (on-disk cache, :mod:`rtface.au.floor_cache`)."""
        from rtface.au import floor_cache

        parts: list[object] = [self._solver.fingerprint(), self._n, self._seed, self._q, jitter, pose, identity_frames]
        if jitter > 0 and self._noise is not None:
            parts += [self._noise.factor, self._noise.resid_var]
        if pose > 0 and self._pop is not None:
            parts.append(self._pose_factor(axis))
        if identity_frames is not None and self._id is not None:
            parts += [self._id.F, self._id.delta2, self._id.obs_var]
        key = floor_cache.make_key(*parts)
        hit = floor_cache.load(key, self._solver.n_aus)
        if hit is not None:
            return hit
        floor = self._simulate_now(jitter, pose, identity_frames, axis)
        floor_cache.store(key, floor)
        return floor

    def _pose_factor(self, axis: int | None) -> np.ndarray:
        """(R, 1434) the combined pose residual factor (``axis`` None) or one axis' factor."""
        return self._pose_f if axis is None or self._axis_f is None else self._axis_f[axis]

    def _simulate_now(self, jitter: float, pose: float, identity_frames: float | None,
                      axis: int | None = None) -> np.ndarray:
        rng = np.random.default_rng(self._seed)
        m = N_COORDS
        d = np.zeros((self._n, m))
        if identity_frames is not None and self._id is not None:
            f, dsd = self._id.F, math.sqrt(self._id.delta2)
            x0 = rng.standard_normal((self._n, f.shape[0])) @ f + rng.standard_normal((self._n, m)) * dsd
            if identity_frames >= 1.0:
                e = rng.standard_normal((self._n, m)) * math.sqrt(self._id.obs_var / identity_frames)
                x0 = x0 - np.stack([self._id.posterior_mean(x + ee, identity_frames) for x, ee in zip(x0, e)])
            d += x0
        if pose > 0 and self._pop is not None:
            pf = self._pose_factor(axis)
            d += pose * (rng.standard_normal((self._n, pf.shape[0])) @ pf)
        if jitter > 0 and self._noise is not None:
            nz = self._noise
            d += jitter * (rng.standard_normal((self._n, nz.factor.shape[0])) @ nz.factor
                           + rng.standard_normal((self._n, m)) * np.sqrt(nz.resid_var))
        t = np.zeros((478, 3))
        s = self._solver
        reads = np.stack([s.solve_activations(t + x.reshape(478, 3), t) for x in d]) * s.unit_to_facs
        return np.quantile(np.minimum(reads, 5.0), self._q, axis=0)


@register_stage
class AUStage(Stage):
    kind = "aus"
    inputs = ("canonical",)
    outputs = ("aus",)
    Params = AUParams

    def __init__(self, name: str, params: AUParams, *, basis: Any = None, template_cm: np.ndarray | None = None,
                 noise: NoiseModel | None = None, population: Any = None):
        """``basis`` / ``template_cm`` / ``noise`` / ``population`` override the basis file, the canonical
        template, the jitter model file and the face model file (tests, tools)."""
        super().__init__(name, params)
        p = params
        if not 0.0 <= p.floor_quantile < 1.0:
            raise ConfigError(f"stage '{name}': field 'floor_quantile' must be in [0, 1), got {p.floor_quantile}")
        if p.floor_samples < 10:
            raise ConfigError(f"stage '{name}': field 'floor_samples' must be >= 10, got {p.floor_samples}")
        for f in ("ridge", "weight_contour", "weight_iris", "noise_z", "presence_on_s",
                  "presence_off_s", "obs_sd_cm", "approach_floor_scale", "approach_tau_s", "au06_smile_prior",
                  "turn_floor_scale"):
            v = getattr(p, f)
            if not (np.isfinite(v) and v >= 0):
                raise ConfigError(f"stage '{name}': field '{f}' must be finite and >= 0, got {v}")
        if not (np.isfinite(p.upper_bound) and p.upper_bound > 0):
            raise ConfigError(f"stage '{name}': field 'upper_bound' must be finite and > 0, got {p.upper_bound}")
        if not (np.isfinite(p.presence_on) and np.isfinite(p.presence_off) and np.isfinite(p.presence_clear)
                and p.presence_off <= p.presence_on <= p.presence_clear):
            raise ConfigError(f"stage '{name}': fields 'presence_off' ({p.presence_off}) <= 'presence_on' "
                              f"({p.presence_on}) <= 'presence_clear' ({p.presence_clear}) must hold, all finite")
        if p.max_iter < 1:
            raise ConfigError(f"stage '{name}': field 'max_iter' must be >= 1, got {p.max_iter}")
        if not np.isfinite(p.pspi_threshold):
            raise ConfigError(f"stage '{name}': field 'pspi_threshold' must be finite, got {p.pspi_threshold}")
        self._basis_override = basis
        self._template_override = template_cm
        self._noise_override = noise
        self._population_override = population
        self._solver: AUSolver | None = None
        self._floors: FloorModel | None = None
        self._msolver: AUSolver | None = None  # identity-marginalised read-out (None: off or no model for it)
        self._mfloors: FloorModel | None = None
        self._gain = np.zeros((2, 0))  # (2, K) FACS at full weight: plain, marginalised read-out
        self._k06 = self._k12 = -1  # indices of AU06 / AU12 for the smile prior (-1: the basis lacks one)
        self._presence: PresenceTracker | None = None
        self._session: SessionAccumulator | None = None
        self._template: np.ndarray | None = None
        self._prev: dict[int, np.ndarray] = {}  # face_id -> raw activations of its last solve
        self._last_seen: dict[int, float] = {}  # face_id -> media time last seen, s
        self._approach: dict[int, tuple[float, float, float]] = {}  # face_id -> (t s, ln tz, low-passed rate 1/s)
        self._offset: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # face_id -> (rest offset handed over, its
        # reading FACS (K,))
        self._turn: dict[int, tuple[float, tuple[float, float, float], tuple[float, float, float]]] = {}
        # face_id -> (t s, pose deg, low-passed yaw / pitch / roll speeds deg/s)
        self._approach_gain = np.zeros(0)  # (K,) FACS per 1/s (face model x approach_floor_scale)
        self._approach_on = False  # any approach gain > 0
        self._turn_gain = np.zeros((3, 0))  # (3, K) FACS per deg/s of yaw / pitch / roll (face model x scale)
        self._turn_on = False  # any turning gain > 0
        self.names: tuple[str, ...] = ()
        self.skipped_nonfinite = 0
        self.skipped_not_ready = 0

    # ------------------------------------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        p = self.params
        basis = self._basis_override
        if basis is None:
            from rtface.au.basis import load_au_basis

            try:
                basis = load_au_basis(p.basis_path or None)
            except (OSError, DataError) as exc:
                raise ConfigError(f"stage '{self.name}': field 'basis_path': cannot load {p.basis_path!r}: "
                                  f"{exc}") from exc
        if self._template_override is not None:
            template = np.asarray(self._template_override, dtype=np.float64)
        else:
            from rtface.geometry.canonical_model import load_canonical_model

            template = np.asarray(load_canonical_model().vertices_cm, dtype=np.float64)
        try:
            self._solver, noise = build_solver(p, basis, template, self._noise_override)
        except DataError as exc:
            raise ConfigError(f"stage '{self.name}': field 'noise_path': {exc}") from exc
        population = self._population_override
        if population is None and p.face_model_path.lower() != "none":
            from rtface.facemodel.population import load_population_model

            try:
                population = load_population_model(p.face_model_path or None)
            except DataError as exc:
                raise ConfigError(f"stage '{self.name}': field 'face_model_path': {exc}") from exc
        self._floors = None if p.floor_quantile == 0 else FloorModel(
            self._solver, population, p.obs_sd_cm, noise, p.floor_quantile, p.floor_samples)
        self.names = self._solver.names
        self._msolver = self._mfloors = None
        marg = (population.marginal_readout_for(self.names)
                if population is not None and p.marginal_readout and self._floors is not None else None)
        if marg is not None:
            self._msolver, _ = build_solver(p, basis, template, noise,
                                            marginal=(population.identity_factor(), population.marginal_sd_cm))
            self._mfloors = FloorModel(self._msolver, population, p.obs_sd_cm, noise, p.floor_quantile,
                                       p.floor_samples, single_frame_floor=marg[0])
            self._gain = marg[1]
        self._approach_gain = (population.approach_floor_for(self.names) * p.approach_floor_scale
                               if population is not None else np.zeros(len(self.names)))
        self._approach_on = bool(self._approach_gain.any())
        self._turn_gain = (population.turn_floor_for(self.names) * p.turn_floor_scale
                           if population is not None else np.zeros((3, len(self.names))))
        self._turn_on = bool(self._turn_gain.any())
        self._k06 = self.names.index("AU06") if {"AU06", "AU12"} <= set(self.names) else -1
        self._k12 = self.names.index("AU12") if self._k06 >= 0 else -1
        self._template = template
        self._presence = PresenceTracker(len(self.names), on_threshold=p.presence_on, off_threshold=p.presence_off,
                                         clear_threshold=p.presence_clear, on_s=p.presence_on_s,
                                         off_s=p.presence_off_s)
        self._session = SessionAccumulator(self.names, pspi_threshold=p.pspi_threshold)
        self._prev.clear()
        self._last_seen.clear()
        self._approach.clear()
        self._turn.clear()
        self._offset.clear()

    def close(self) -> None:
        """Nothing to release (the session results stay readable through ``summary``). Safe to call twice."""

    # ------------------------------------------------------------------------------------------------ per frame
    def warmup(self) -> None:
        """Run the NNLS kernel once (compiled once the engine has loaded numba, :mod:`rtface.kernels.jit`) and fill
        the floor cache for the first frames."""
        if self._solver is not None:
            self._solver.solve(self._template, self._template)
        for fm in (self._floors, self._mfloors):  # the marginalised floors serve stills (frames 0) only
            if fm is not None:
                fm.floors(0.0, 0.0, 0.0, 0.0)
                for pose in ((20.0, 0.0, 0.0), (0.0, 20.0, 0.0), (0.0, 0.0, 20.0)):
                    fm.floors(0.0, *pose)

    def floors_for(self, frames: float, yaw_deg: float = 0.0, pitch_deg: float = 0.0, roll_deg: float = 0.0,
                   still: bool = False, au_share: float = 0.0, offset_reading: np.ndarray | None = None
                   ) -> np.ndarray:
        """(K,) per-AU floor (FACS) the read-out subtracts for such a face, not moving (diagnostics, tools): per AU
        that of the read-out chosen for it (the marginalised one only on stills); ``au_share``: the face's
        ``extras["neutral_au_share"]``; ``offset_reading``: what its untaken rest offset reads (FACS, K)."""
        if self._solver is None:
            raise StageError(f"stage '{self.name}': floors_for() called before open()")
        floor, mfloor, use_m = self._floor_pair(frames, yaw_deg, pitch_deg, roll_deg, 0.0, still, au_share=au_share,
                                                offset_reading=offset_reading)
        return floor if use_m is None else np.where(use_m, mfloor, floor)

    def _floor_pair(self, frames: float, yaw: float, pitch: float, roll: float, rate: float, still: bool,
                    speeds: tuple[float, float, float] = (0.0, 0.0, 0.0), au_share: float = 0.0,
                    offset_reading: np.ndarray | None = None, steady: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(plain read-out's floor, marginalised read-out's floor or None, per AU whether the marginalised one is
        used or None): on a still, the read-out that detects better, i.e. the larger full-weight reading per unit of
        floor; in a sequence the plain one."""
        if self._floors is None:
            return np.zeros(len(self.names)), None, None
        floor = self._with_motion(self._floors.floors(frames, yaw, pitch, roll, au_share, offset_reading, steady),
                                  rate, speeds)
        if self._mfloors is None or not still:
            return floor, None, None
        mfloor = self._with_motion(self._mfloors.floors(frames, yaw, pitch, roll, au_share), rate, speeds)
        return floor, mfloor, self._gain[1] * floor > self._gain[0] * mfloor

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        if self._solver is None or self._presence is None or self._session is None:
            raise StageError(f"stage '{self.name}': process() called before open()")
        still = bool(result.meta.still)
        t_s = result.meta.t_media_ns / 1e9
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
            pose = face.pose
            yaw, pitch, roll = (pose.yaw_deg, pose.pitch_deg, pose.roll_deg) if pose is not None else (0.0, 0.0, 0.0)
            rate = self._approach_rate(fid, t_s, pose.tz_cm) if not still and pose is not None else 0.0
            rest = face.extras.get("rest_pose_deg") if not still and self.params.rest_pose_floor else None
            speeds = (0.0, 0.0, 0.0)
            if not still and pose is not None and (rest is not None or self._turn_on or self.params.publish_floor):
                speeds = turning_speeds(self._turn.get(fid), t_s, (yaw, pitch, roll))
                self._turn[fid] = (t_s, (yaw, pitch, roll), speeds)
            steady = 1.0 if still else steady_share(max(speeds), rate)
            if rest is not None:  # the pose floor counts from the pose the person's neutral was learned at
                yaw, pitch, roll = floor_pose((yaw, pitch, roll), rest, steady)
            frames = float(face.shape_frames)
            share = 0.0 if still else float(face.extras.get("neutral_au_share", 0.0))
            offset = None if still or share <= 0.0 else self._offset_reading(fid, face.rest_au_offset_cm)
            act = self._solver.solve_activations(cc, self._template, None if still else self._prev.get(fid))
            floor, mfloor, use_m = self._floor_pair(frames, yaw, pitch, roll, rate, still, speeds, share, offset,
                                                    steady)
            reading = act * self._solver.unit_to_facs - floor
            if use_m is not None and self._msolver is not None:
                mact = self._msolver.solve_activations(cc, self._template)
                reading = np.where(use_m, mact * self._msolver.unit_to_facs - mfloor, reading)
                floor = np.where(use_m, mfloor, floor)
            inten = np.clip(reading, 0.0, 5.0).astype(np.float32)
            inferred = self._smile_prior(inten, frames, share, offset, steady)
            if not still:
                self._prev[fid] = act
                self._last_seen[fid] = t_s
            pres = self._presence.update(fid, inten, t_s, still)
            face.au_intensity = inten
            face.au_presence = pres
            face.extras["pspi"] = self._session.add(fid, inten, pres)
            if self.params.publish_floor:
                face.extras["au_floor"] = floor.astype(np.float32)
                face.extras["approach_rate"] = rate
                face.extras["turn_speed_deg_s"] = speeds
                face.extras["au_marginal"] = (np.zeros(len(self.names), dtype=bool) if use_m is None
                                              else use_m.astype(bool))
                face.extras["au06_inferred"] = inferred
        self._forget_stale(t_s)

    def _smile_prior(self, inten: np.ndarray, frames: float, au_share: float = 0.0,
                     offset_reading: np.ndarray | None = None, steady: float = 1.0) -> float:
        """AU06 where it cannot be measured (module doc): raise it in place to ``au06_smile_prior`` x AU12 x the
        share of the identity variance along AU06 that can still read as AU06 (:meth:`FloorModel.unknown_share`);
        returns the FACS amount that is inferred (0 when the measurement is at least as large)."""
        rho = self.params.au06_smile_prior
        if rho <= 0 or self._k06 < 0 or self._floors is None:
            return 0.0
        prior = rho * float(inten[self._k12]) * float(
            self._floors.unknown_share(frames, au_share, offset_reading, steady)[self._k06])
        if prior <= inten[self._k06]:
            return 0.0
        inferred = prior - float(inten[self._k06])
        inten[self._k06] = min(prior, 5.0)
        return inferred

    def _offset_reading(self, fid: int, offset_cm: np.ndarray | None) -> np.ndarray | None:
        """(K,) FACS: what the face's untaken rest offset (``Face.rest_au_offset_cm``) reads through the plain
        read-out, recomputed only when the canonical stage hands over a new one (it changes when the person model
        updates); None without one."""
        if offset_cm is None or self._solver is None:
            self._offset.pop(fid, None)
            return None
        got = self._offset.get(fid)
        if got is None or got[0] is not offset_cm:
            u = np.asarray(offset_cm, dtype=np.float64)
            if u.shape != self._template.shape or not np.isfinite(u).all():
                return None
            reading = np.clip(self._solver.solve_activations(self._template + u, self._template)
                              * self._solver.unit_to_facs, 0.0, 5.0)
            got = self._offset[fid] = (offset_cm, reading)
        return got[1]

    def _with_motion(self, floor: np.ndarray, rate: float, speeds: tuple[float, float, float]) -> np.ndarray:
        """The floor with the approach part (``rate`` 1/s towards the camera) and the turning part (``speeds``
        deg/s per axis, each x its gain) added in quadrature."""
        extra = None
        if rate > 0.0 and self._approach_on:
            extra = (self._approach_gain * rate) ** 2
        if self._turn_on and any(v > 0.0 for v in speeds):
            t = ((self._turn_gain * np.asarray(speeds, dtype=np.float64)[:, None]) ** 2).sum(0)
            extra = t if extra is None else extra + t
        return floor if extra is None else np.minimum(np.sqrt(floor ** 2 + extra), 5.0)

    def _approach_rate(self, fid: int, t_s: float, tz_cm: float) -> float:
        """Low-passed approach rate of a face (1/s, > 0 towards the camera); 0 at the start of a track, after a
        gap of more than 0.5 s or for a non-positive distance."""
        if not (math.isfinite(tz_cm) and tz_cm > 0):
            self._approach.pop(fid, None)
            return 0.0
        lz = math.log(tz_cm)
        prev = self._approach.get(fid)
        rate = 0.0
        if prev is not None and 0.0 < t_s - prev[0] <= 0.5:
            dt = t_s - prev[0]
            tau = self.params.approach_tau_s
            a = 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)
            rate = prev[2] + a * ((prev[1] - lz) / dt - prev[2])
        self._approach[fid] = (t_s, lz, rate)
        return rate

    def _forget_stale(self, t_s: float) -> None:
        stale = [f for f, seen in self._last_seen.items() if abs(t_s - seen) > _FORGET_AFTER_S]
        for f in stale:
            del self._last_seen[f]
            self._prev.pop(f, None)
            self._approach.pop(f, None)
            self._turn.pop(f, None)
            self._offset.pop(f, None)
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
