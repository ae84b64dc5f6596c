"""Eye closure per eye, closure episodes, blinks, blink rate and PERCLOS P80 for one face, on media time.

Closure of one eye (0 = open as usual for this person, 1 = closed)::

    closure = clip((open - ratio) / ((1 - closed_ratio) * open), 0, 1)

``ratio`` is the lid distance / eye width of :func:`rtface.geometry.eyes.lid_ratios`; ``open`` the person's own
open-eye ratio: the ``baseline_percentile`` (90th) of that eye's ratios over the last ``baseline_window_s`` (60 s)
of media time, from samples where that eye was not closed (closure < ``closed_on``), never below ``open_floor``.
Until ``baseline_min_s`` of such samples exist, ``open`` is ``open_prior``. So the baseline is calibrated per person
like the AU neutral, but independently of it, and a long closure does not teach it that closed is normal.
``closed_ratio``: the ratio of a fully closed eye as a fraction of the open one (MediaPipe's lid points never meet).

Measured (2D landmarks, MediaPipe 0.10.21): the 12 London Set neutral photos have open ratios 0.197-0.410 (median
0.306, hence ``open_prior`` 0.30 and ``open_floor`` 0.20); FACSHuman's AU43 at weight 1.0 rendered on the MakeHuman
head reads 0.082 (left) / 0.056 (right) against 0.309 / 0.308 open (ratio 0.27 / 0.18), and the blink in the
sample video bottoms at 0.086 / 0.043 against ~0.35 / 0.33 (0.25 / 0.13), hence ``closed_ratio`` 0.20.

Episodes: the eyes are "closed" (``AU45_c`` = 1) from the frame where the mean closure of both eyes reaches
``closed_on`` (0.5) until it falls below ``closed_off`` (0.3); ``eyes_closed_s`` is the length so far of the
current episode. An episode of at most ``blink_max_s`` (0.5 s) is a blink, reported on the frame it ends
(``blink`` = 1, ``blink_duration_ms``). PERCLOS (P80; Wierwille et al. 1994, Dinges & Grace 1998): the share of
the last ``window_s`` (60 s) of visible time with mean closure >= 0.8; blink rate: blinks per minute of visible
time in that window; both NaN until ``min_window_s`` (30 s) of the face were seen.

Pure logic; one :class:`EyeState` per face id, owned by the eyes stage (processing thread).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtface.signals.window import EventTimes, TrailingWindow

_NS = 1_000_000_000
_BASELINE_CAP = 4096  # samples kept per eye (60 s at up to 68 fps; decimated to >= 1/60 s apart)
_BASELINE_EVERY_NS = 250_000_000  # recompute the percentile every 0.25 s of media time


@dataclass(frozen=True)
class EyeParams:
    baseline_window_s: float = 60.0  # open-eye baseline: trailing window of media time, s
    baseline_percentile: float = 90.0  # ... percentile of the not-closed ratios in it
    baseline_min_s: float = 1.0  # ... needs this much not-closed time, s (before: open_prior)
    open_prior: float = 0.30  # open ratio assumed before the baseline exists (London neutral median 0.306)
    open_floor: float = 0.20  # the baseline never goes below this (lowest London neutral: 0.197)
    closed_ratio: float = 0.20  # fully closed ratio / open ratio (AU43 renders 0.18-0.27, sample blink 0.13-0.25)
    closed_on: float = 0.5  # mean closure at which a closure episode starts (AU45_c = 1)
    closed_off: float = 0.3  # ... and below which it ends
    blink_max_s: float = 0.5  # episodes up to this long are blinks, s
    perclos_level: float = 0.8  # P80: closure counted as closed for PERCLOS
    window_s: float = 60.0  # PERCLOS and blink-rate window, s
    min_window_s: float = 30.0  # visible time needed before PERCLOS / blink rate are reported, s
    forget_after_s: float = 10.0  # drop the state of a face id unseen this long (media time), s

    def check(self, where: str) -> None:
        """Raise ValueError naming the field for values that make no sense."""
        pos = ("baseline_window_s", "open_prior", "open_floor", "blink_max_s", "window_s", "forget_after_s")
        for f in pos:
            v = getattr(self, f)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{where}: field '{f}' must be finite and > 0, got {v}")
        if not 0 < self.baseline_percentile <= 100:
            raise ValueError(f"{where}: field 'baseline_percentile' must be in (0, 100], got "
                             f"{self.baseline_percentile}")
        if not 0 <= self.closed_ratio < 1:
            raise ValueError(f"{where}: field 'closed_ratio' must be in [0, 1), got {self.closed_ratio}")
        if not 0 < self.closed_off <= self.closed_on <= 1:
            raise ValueError(f"{where}: fields 'closed_off' ({self.closed_off}) <= 'closed_on' "
                             f"({self.closed_on}) must lie in (0, 1]")
        if not 0 < self.perclos_level <= 1:
            raise ValueError(f"{where}: field 'perclos_level' must be in (0, 1], got {self.perclos_level}")
        if not 0 <= self.baseline_min_s <= self.baseline_window_s:
            raise ValueError(f"{where}: field 'baseline_min_s' must be in [0, baseline_window_s]")
        if not 0 <= self.min_window_s <= self.window_s:
            raise ValueError(f"{where}: field 'min_window_s' must be in [0, window_s]")


class _Baseline:
    """Open-eye ratio of one eye: percentile of recent not-closed samples (numpy ring)."""

    def __init__(self, p: EyeParams) -> None:
        self.p = p
        self.t = np.zeros(_BASELINE_CAP, np.int64)
        self.r = np.zeros(_BASELINE_CAP, np.float64)
        self.n = 0  # samples written in total
        self.value = p.open_prior
        self.ready = False
        self._next_ns: int | None = None
        self._first_ns: int | None = None  # first sample still in the window (for baseline_min_s)

    def add(self, t_ns: int, ratio: float) -> None:
        if self.n and t_ns - self.t[(self.n - 1) % _BASELINE_CAP] < _NS // 60:
            return
        i = self.n % _BASELINE_CAP
        self.t[i], self.r[i] = t_ns, ratio
        self.n += 1
        if self._first_ns is None:
            self._first_ns = t_ns

    def update(self, now_ns: int) -> None:
        if self._next_ns is not None and now_ns < self._next_ns:
            return
        self._next_ns = now_ns + _BASELINE_EVERY_NS
        m = min(self.n, _BASELINE_CAP)
        if m == 0:
            return
        t = self.t[:m]
        keep = t >= now_ns - int(self.p.baseline_window_s * _NS)
        if not keep.any():
            return  # nothing recent (e.g. eyes closed for a minute): keep the last baseline
        span = (now_ns - int(t[keep].min())) / _NS
        if span < self.p.baseline_min_s:
            return
        self.value = max(float(np.percentile(self.r[:m][keep], self.p.baseline_percentile)), self.p.open_floor)
        self.ready = True


class EyeState:
    """Per-face eye signals. ``update(t_media_ns, ratio_l, ratio_r)`` once per frame the face is seen."""

    def __init__(self, p: EyeParams) -> None:
        self.p = p
        self._base = (_Baseline(p), _Baseline(p))
        self._closed_since: int | None = None  # media ns when the current closure episode started
        self._perclos = TrailingWindow(int(p.window_s * _NS))
        self._blinks = EventTimes(int(p.window_s * _NS))
        self.last_seen_ns = 0
        self.blinks_total = 0

    def _closure(self, ratio: float, base: _Baseline) -> float:
        if not math.isfinite(ratio):
            return float("nan")
        open_ = base.value
        c = (open_ - ratio) / ((1.0 - self.p.closed_ratio) * open_)
        return min(max(c, 0.0), 1.0)

    def update(self, t_ns: int, ratio_l: float, ratio_r: float) -> dict[str, float]:
        """Signals for this frame: eye_closure_l/_r (0-1), AU45_r (0-5), AU45_c (0/1), eyes_closed_s (s),
        blink (0/1), blink_duration_ms (NaN unless a blink ended here), perclos (0-1), blink_rate_min (1/min)."""
        p = self.p
        bl, br = self._base
        cl, cr = self._closure(ratio_l, bl), self._closure(ratio_r, br)
        for c, ratio, base in ((cl, ratio_l, bl), (cr, ratio_r, br)):
            if math.isfinite(c) and c < p.closed_on:
                base.add(t_ns, ratio)
            base.update(t_ns)
        both = [c for c in (cl, cr) if math.isfinite(c)]
        c = sum(both) / len(both) if both else float("nan")
        blink, dur_ms = 0, float("nan")
        if math.isfinite(c):
            if self._closed_since is None and c >= p.closed_on:
                self._closed_since = t_ns
            elif self._closed_since is not None and c < p.closed_off:
                d = t_ns - self._closed_since
                self._closed_since = None
                if d <= p.blink_max_s * _NS:
                    blink, dur_ms = 1, d / 1e6
                    self._blinks.add(t_ns)
                    self.blinks_total += 1
            self._perclos.add(t_ns, 1.0 if c >= p.perclos_level else 0.0)
        closed_s = 0.0 if self._closed_since is None else (t_ns - self._closed_since) / _NS
        cover = self._perclos.coverage_ns()
        enough = cover >= p.min_window_s * _NS and cover > 0
        perclos = self._perclos.mean() if enough else float("nan")
        rate = self._blinks.count(t_ns) / (cover / (60 * _NS)) if enough else float("nan")
        self.last_seen_ns = t_ns
        return {"eye_closure_l": cl, "eye_closure_r": cr, "AU45_r": 5.0 * c if math.isfinite(c) else c,
                "AU45_c": float(self._closed_since is not None), "eyes_closed_s": closed_s, "blink": float(blink),
                "blink_duration_ms": dur_ms, "perclos": perclos, "blink_rate_min": rate}

    @property
    def baseline(self) -> tuple[float, float]:
        """Current open-eye ratios (left, right)."""
        return self._base[0].value, self._base[1].value

    @property
    def baseline_ready(self) -> bool:
        return self._base[0].ready and self._base[1].ready
