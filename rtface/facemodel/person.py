"""One tracked person's neutral face shape, refined from the frames of a sequence with the expression explained away.

Each observed frame contributes its pose-free shape with the population's pose response removed (``frontal_cm``,
478 x 3 cm: what this face would report frontally) and an expression score (the population-level AU-shaped
displacement of the frame in cm, :class:`rtface.au.solve.ExpressionScorer`). Frames are sampled at most every
``sample_every_s`` seconds of media time, only while the head is within ``max_angle_deg`` of frontal, and kept for
``window_s`` seconds. Every ``update_every`` samples the estimate is recomputed:

1. rest frames = the ``keep_fraction`` lowest-scoring samples (at least ``min_keep``), without those scoring more
   than ``rest_margin`` above the lowest (so a short neutral stretch is not diluted by expressive frames; a pose
   penalty of
   ``pose_penalty`` score points per degree of |yaw| + |pitch| and ``roll_penalty`` per degree of |roll| prefers
   frontal, upright frames). Ranking by the
   *population-level* score (not by distance to the current estimate) is what lets a session that opens with a
   smile converge to the real neutral as soon as neutral frames arrive;
2. their mean ``r`` (relative to the population mean) is observed by n = ``frames_per_sample`` x count frames;
3. the person's shape = population mean + the identity posterior mean given ``r`` and n
   (:class:`rtface.facemodel.identity.IdentityPosterior`), except for the part of that shift a (non-negative)
   expression could explain (``au_part``, given by the canonical stage), which is taken only by
   ``n / (n + au_prior_frames)``: a
   person's rest face may look like an expression, but with few rest frames an expression is the likelier
   reading (a session that opens with a smile keeps reading the smile until neutral frames arrive).

``frames`` says how much the estimate rests on this person's own frames for the AU read-out:
``n * n / (n + au_prior_frames)``; 0 = population only. ``au_share`` (0-1) = ``1 - w``: the share of the AU-shaped
part of the person's rest offset the estimate has not taken, i.e. still reads as expression (1 on the population
mean, 0 for an explicit neutral); the AU floors must cover it (rtface.stages.aus). ``au_untaken_cm`` ((478, 3)
float32 cm, or None before the first estimate and without ``au_part``): that untaken part itself,
``(1 - w) au_part(shift)``: what a rest frame of this person still reads as expression against the estimate, so the
AU stage can cover this person's own offset instead of the population's spread of such offsets.

``rest_pose_deg`` ((3,) yaw, pitch, roll, deg; the head pose each frame was offered with, ``pose_deg``): the pose
the estimate was learned at, as far as it has absorbed that pose: ``w`` x the mean pose of the rest frames
(``w = n / (n + au_prior_frames)``). What the population's pose response gets wrong for this person at that pose
is in the estimate, so what is left at the current pose grows with the pose's distance from it (the face model's
pose residual is linear in the angle), not with its distance from frontal (the AU stage's pose floor,
:mod:`rtface.au.pose_floor`). Zeros on the population mean and for a neutral of unknown pose (a file saved
without one; files saved by this version carry it).
Explicit neutrals (``set_explicit``: calibration, saved files) take precedence: they are used as they are
(``frames`` = inf) and online updates stop until ``unlock``.

Thread ownership: the canonical stage's processing thread owns every PersonShape.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from rtface.facemodel.identity import IdentityPosterior


@dataclass(frozen=True)
class PersonParams:
    sample_every_s: float = 0.1  # keep at most one frame per this much media time
    window_s: float = 30.0  # frames older than this (media time) are forgotten
    keep_fraction: float = 0.3  # share of the lowest-scoring samples used as rest frames
    min_keep: int = 3
    rest_margin: float = 0.3  # cm of expression score above the lowest sample still counted as rest
    update_every: int = 3  # recompute after this many new samples
    max_angle_deg: float = 45.0  # samples only while |yaw| and |pitch| (shape pose, deg) are within this
    pose_penalty: float = 0.003  # score cm per degree of |yaw| + |pitch|
    roll_penalty: float = 0.009  # score cm per degree of |roll|: a real photo tilted in the image plane reads a
    # slightly different shape (scripts/validate_aus.py's tilting neutral sessions, 2026-12-04: the last second's
    # mean AU sum 0.27 with 0.009; a one-off run on the same videos gave 1.33 with no roll penalty, 0.84 with 0.003)
    frames_per_sample: float = 1.0  # effective independent frames per kept sample (consecutive frames correlate)
    au_prior_frames: float = 3.0  # rest frames after which half of an AU-shaped rest offset is taken as shape


class PersonShape:
    """Neutral face shape of one tracked person (module doc)."""

    def __init__(self, mean_cm: np.ndarray, posterior: IdentityPosterior, params: PersonParams | None = None,
                 recent: int = 15, au_part=None):
        """``au_part``: callable (478, 3) -> (478, 3), the AU-explained part of a displacement (None: no split)."""
        self.p = params or PersonParams()
        self._au_part = au_part
        self._recent: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=max(1, int(recent)))  # (frontal, pose)
        self._mean = np.asarray(mean_cm, dtype=np.float64)
        self._post = posterior
        cap = int(math.ceil(self.p.window_s / max(self.p.sample_every_s, 1e-3))) + 1
        self._t: deque[float] = deque(maxlen=cap)
        self._shape: deque[np.ndarray] = deque(maxlen=cap)
        self._score: deque[float] = deque(maxlen=cap)
        self._last_t = -math.inf
        self._new = 0
        self.neutral_cm = self._mean.copy()
        self.frames = 0.0
        self.au_share = 1.0
        self.au_untaken_cm: np.ndarray | None = None
        self.rest_pose_deg = np.zeros(3)
        self.locked = False
        self.samples_seen = 0
        self._pose: deque[np.ndarray] = deque(maxlen=cap)

    def remember(self, frontal_cm: np.ndarray, pose_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> None:
        """Keep the latest frames (every frame, locked or not) and their head poses (deg) for 'calibrate neutral
        now'."""
        self._recent.append((np.asarray(frontal_cm, dtype=np.float32).copy(),
                             np.asarray(pose_deg, dtype=np.float64).reshape(3)))

    def observe(self, t_media_s: float, frontal_cm: np.ndarray, score: float, yaw_deg: float,
                pitch_deg: float, roll_deg: float = 0.0, pose_deg: tuple[float, float, float] | None = None) -> bool:
        """Offer one frame (shape pose in deg; ``pose_deg``: the pose ``rest_pose_deg`` is kept in, default the
        shape pose); returns True when the estimate was recomputed."""
        if self.locked or not math.isfinite(score):
            return False
        if abs(yaw_deg) > self.p.max_angle_deg or abs(pitch_deg) > self.p.max_angle_deg:
            return False
        if t_media_s < self._last_t:  # media time went back (a looped file, a new clip): start again
            self.reset()
        if t_media_s - self._last_t < self.p.sample_every_s:
            return False
        self._last_t = t_media_s
        self._t.append(t_media_s)
        self._shape.append(np.asarray(frontal_cm, dtype=np.float32).copy())
        self._pose.append(np.array([yaw_deg, pitch_deg, roll_deg] if pose_deg is None else pose_deg,
                                   dtype=np.float64))
        self._score.append(float(score) + self.p.pose_penalty * (abs(yaw_deg) + abs(pitch_deg))
                           + self.p.roll_penalty * abs(roll_deg))
        self.samples_seen += 1
        self._new += 1
        while self._t and t_media_s - self._t[0] > self.p.window_s:
            self._t.popleft()
            self._shape.popleft()
            self._pose.popleft()
            self._score.popleft()
        if self._new >= self.p.update_every or self.frames == 0.0:
            self._update()
            return True
        return False

    def _update(self) -> None:
        self._new = 0
        m = len(self._score)
        if m == 0:
            return
        k = min(m, max(self.p.min_keep, int(round(self.p.keep_fraction * m))))
        scores = np.fromiter(self._score, dtype=np.float64, count=m)
        pick = np.argpartition(scores, k - 1)[:k] if k < m else np.arange(m)
        pick = pick[scores[pick] <= scores[pick].min() + self.p.rest_margin]
        k = len(pick)
        obs = np.mean([self._shape[i] for i in pick], axis=0, dtype=np.float64)
        n = self.p.frames_per_sample * k
        shift = self._post.posterior_mean((obs - self._mean).reshape(-1), n).reshape(self._mean.shape)
        w = n / (n + self.p.au_prior_frames)
        if self._au_part is not None:
            untaken = (1.0 - w) * self._au_part(shift)
            shift = shift - untaken
            self.au_untaken_cm = untaken.astype(np.float32)
        self.neutral_cm = self._mean + shift
        self.frames = float(n * w)
        self.au_share = float(1.0 - w) if self._au_part is not None else 0.0
        self.rest_pose_deg = w * np.mean([self._pose[i] for i in pick], axis=0)

    def set_explicit(self, neutral_cm: np.ndarray, pose_deg: np.ndarray | None = None) -> None:
        """Use this neutral as it is (calibration or a saved file) and stop online updates; ``pose_deg``: the
        (mean) head pose it was taken at (None = unknown: treated as frontal)."""
        self.neutral_cm = np.asarray(neutral_cm, dtype=np.float64).copy()
        self.frames = math.inf
        self.au_share = 0.0
        self.au_untaken_cm = None
        self.rest_pose_deg = np.zeros(3) if pose_deg is None else np.asarray(pose_deg, dtype=np.float64).reshape(3)
        self.locked = True

    def unlock(self) -> None:
        """Return to online estimation (keeps the buffered samples)."""
        self.locked = False
        self._update()

    def reset(self) -> None:
        self._t.clear()
        self._shape.clear()
        self._pose.clear()
        self._score.clear()
        self._last_t = -math.inf
        self._new = 0
        self.neutral_cm = self._mean.copy()
        self.frames = 0.0
        self.au_share = 1.0
        self.au_untaken_cm = None
        self.rest_pose_deg = np.zeros(3)
        self.locked = False

    def recent_pose(self, n: int) -> np.ndarray:
        """(3,) mean head pose (deg) of the last n frames given to :meth:`remember` (zeros if none)."""
        poses = [p for _, p in list(self._recent)[-n:]]
        return np.mean(poses, axis=0) if poses else np.zeros(3)

    def recent_frontal(self, n: int) -> list[np.ndarray]:
        """The last n frames given to :meth:`remember` (for 'calibrate neutral now')."""
        return [f.astype(np.float64) for f, _ in list(self._recent)[-n:]]
