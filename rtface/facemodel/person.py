"""One tracked person's neutral face shape, refined from the frames of a sequence with the expression explained away.

Each observed frame contributes its pose-free shape with the population's pose response removed (``frontal_cm``,
478 x 3 cm: what this face would report frontally) and an expression score (the population-level AU-shaped
displacement of the frame in cm, :class:`rtface.au.solve.ExpressionScorer`). Frames are sampled at most every
``sample_every_s`` seconds of media time, only while the head is within ``max_angle_deg`` of frontal, and kept for
``window_s`` seconds. Every ``update_every`` samples the estimate is recomputed:

1. rest frames = the ``keep_fraction`` lowest-scoring samples (at least ``min_keep``; a pose penalty of
   ``pose_penalty`` score points per degree of |yaw| + |pitch| prefers frontal frames). Ranking by the
   *population-level* score (not by distance to the current estimate) is what lets a session that opens with a
   smile converge to the real neutral as soon as neutral frames arrive;
2. their mean ``r`` (relative to the population mean) is observed by n = ``frames_per_sample`` x count frames;
3. the person's shape = population mean + the identity posterior mean given ``r`` and n
   (:class:`rtface.facemodel.identity.IdentityPosterior`: identity modes adapt quickly, detail slowly).

``frames`` (= n) says how much the estimate rests on this person's own frames; 0 = population only.
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
    update_every: int = 3  # recompute after this many new samples
    max_angle_deg: float = 30.0  # samples only while |yaw| and |pitch| are within this
    pose_penalty: float = 0.003  # score cm per degree of |yaw| + |pitch|
    frames_per_sample: float = 1.0  # effective independent frames per kept sample (consecutive frames correlate)


class PersonShape:
    """Neutral face shape of one tracked person (module doc)."""

    def __init__(self, mean_cm: np.ndarray, posterior: IdentityPosterior, params: PersonParams | None = None):
        self.p = params or PersonParams()
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
        self.locked = False
        self.samples_seen = 0

    def observe(self, t_media_s: float, frontal_cm: np.ndarray, score: float, yaw_deg: float,
                pitch_deg: float) -> bool:
        """Offer one frame; returns True when the estimate was recomputed."""
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
        self._score.append(float(score) + self.p.pose_penalty * (abs(yaw_deg) + abs(pitch_deg)))
        self.samples_seen += 1
        self._new += 1
        while self._t and t_media_s - self._t[0] > self.p.window_s:
            self._t.popleft()
            self._shape.popleft()
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
        obs = np.mean([self._shape[i] for i in pick], axis=0, dtype=np.float64)
        n = self.p.frames_per_sample * k
        shift = self._post.posterior_mean((obs - self._mean).reshape(-1), n)
        self.neutral_cm = self._mean + shift.reshape(self._mean.shape)
        self.frames = float(n)

    def set_explicit(self, neutral_cm: np.ndarray) -> None:
        """Use this neutral as it is (calibration or a saved file) and stop online updates."""
        self.neutral_cm = np.asarray(neutral_cm, dtype=np.float64).copy()
        self.frames = math.inf
        self.locked = True

    def unlock(self) -> None:
        """Return to online estimation (keeps the buffered samples)."""
        self.locked = False
        self._update()

    def reset(self) -> None:
        self._t.clear()
        self._shape.clear()
        self._score.clear()
        self._last_t = -math.inf
        self._new = 0
        self.neutral_cm = self._mean.copy()
        self.frames = 0.0
        self.locked = False

    def recent_frontal(self, n: int) -> list[np.ndarray]:
        """The last n buffered frontal shapes (for 'calibrate neutral now')."""
        return [s.astype(np.float64) for s in list(self._shape)[-n:]]
