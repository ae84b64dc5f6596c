"""Blinks and eye closure: rate, durations, inter-blink intervals, PERCLOS.

Input contract (shared with the eyes/alerts stage of branch ``alerts``, columns of the result table and per-face
extras of the live frame): ``eye_closure_l``, ``eye_closure_r`` (0 open .. 1 closed, subject's left/right),
``blink`` (1 on the frame a blink ends) and ``blink_duration_ms``. When ``blink`` is there its events are used as
they are; otherwise blinks are found here from the closure signal; when no closure signal is there either, a
fallback closure is computed from the mesh (below). The engine's own eye-closure detector is the eyes stage;
the fallback only lets the analyses run on tables written without it.

Fallback closure (analysis only): the lid ratio r = mean distance of three upper/lower lid point pairs / eye width
(corner to corner), on the image-plane mesh points (eye aspect ratio, Soukupova & Cech 2016, MediaPipe points
(160,144) (159,145) (158,153) / (33,133) for the right eye, (387,373) (386,374) (385,380) / (263,362) for the left);
the open-eye level r_open = 90th percentile of the face's ratio over the data available; closure =
clip((r_open - r) / (0.8 r_open), 0, 1) (1 at a ratio of 0.2 r_open: a closed eye reads 0.05-0.08 against an open
0.25-0.35).

Events from a closure signal c = mean of both eyes: a closure starts when c >= 0.5 and ends at the first frame
with c < 0.3 (media time); it is a *blink* if it lasted <= 0.5 s, else a *long closure*.
Session: ``blink_count``; ``mov_blink_count`` = blinks per minute of media time (OpenDBM's derived variable of
the same name); ``blink_dur_mean_ms`` / ``_std_ms`` (closure duration); ``mov_blinkdur_mean`` / ``_std`` = time
between consecutive blinks, s (OpenDBM's ``mov_blinkdur``); ``long_closures``; ``perclos`` = share of media time
with c >= 0.8 (P80, Wierwille et al. 1994; Dinges & Grace 1998), each frame weighted by the time to the next
frame (at most 0.5 s). Pure functions; safe from any thread.
"""
from __future__ import annotations

import math

import numpy as np

RIGHT_LIDS = ((160, 144), (159, 145), (158, 153))
RIGHT_CORNERS = (33, 133)
LEFT_LIDS = ((387, 373), (386, 374), (385, 380))
LEFT_CORNERS = (263, 362)
BLINK_ON, BLINK_OFF, BLINK_MAX_S, PERCLOS_LEVEL = 0.5, 0.3, 0.5, 0.8


def _ratio(xy: np.ndarray, lids, corners) -> np.ndarray:
    up = xy[..., [a for a, _ in lids], :]
    lo = xy[..., [b for _, b in lids], :]
    lid = np.linalg.norm(up - lo, axis=-1).mean(axis=-1)
    width = np.linalg.norm(xy[..., corners[0], :] - xy[..., corners[1], :], axis=-1)
    return np.where(width > 1e-9, lid / np.where(width > 1e-9, width, 1.0), np.nan)


def lid_ratios(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) lid ratio of mesh points (..., 478, 2+) in px (only x, y are used)."""
    p = np.asarray(xy, dtype=np.float64)[..., :2]
    return _ratio(p, LEFT_LIDS, LEFT_CORNERS), _ratio(p, RIGHT_LIDS, RIGHT_CORNERS)


def closure_from_ratio(ratio: np.ndarray) -> np.ndarray:
    """Fallback closure 0-1 of a lid-ratio series (module doc); NaN where the ratio is NaN."""
    r = np.asarray(ratio, dtype=np.float64)
    ok = np.isfinite(r)
    if not ok.any():
        return np.full(r.shape, np.nan)
    r_open = float(np.percentile(r[ok], 90))
    if r_open <= 0:
        return np.full(r.shape, np.nan)
    return np.clip((r_open - r) / (0.8 * r_open), 0.0, 1.0)


def closure_events(t: np.ndarray, c: np.ndarray) -> list[tuple[float, float]]:
    """[(start s, duration s)] closures of a closure signal c (hysteresis 0.5 / 0.3)."""
    out, start = [], None
    for ti, ci in zip(t, c):
        if start is None and math.isfinite(ci) and ci >= BLINK_ON:
            start = float(ti)
        elif start is not None and (not math.isfinite(ci) or ci < BLINK_OFF):
            out.append((start, float(ti) - start))
            start = None
    return out


def frame_weights(t: np.ndarray, max_dt_s: float = 0.5) -> np.ndarray:
    """Time each frame stands for: to the next frame (the last one gets the median step), capped at max_dt_s."""
    if len(t) < 2:
        return np.ones(len(t)) * (1 / 30)
    d = np.diff(t)
    w = np.append(d, np.median(d))
    return np.clip(w, 0.0, max_dt_s)


def blink_stats(t: np.ndarray, closure: np.ndarray, *, blink_flag: np.ndarray | None = None,
                blink_dur_ms: np.ndarray | None = None) -> dict[str, float]:
    """Session blink measures (module doc) of media time t (s), mean closure (N,), optional blink columns."""
    dur_min = max(float(t[-1] - t[0]), 1e-9) / 60.0 if len(t) else math.nan
    if blink_flag is not None and np.any(np.isfinite(blink_flag)):
        ends = np.nonzero(np.nan_to_num(blink_flag) > 0.5)[0]
        times = t[ends]
        durs = (np.nan_to_num(blink_dur_ms[ends], nan=np.nan) / 1e3 if blink_dur_ms is not None
                else np.full(len(ends), np.nan))
        starts = times - np.nan_to_num(durs)
        long_n = 0
    else:
        ev = closure_events(t, closure)
        blinks = [e for e in ev if e[1] <= BLINK_MAX_S]
        long_n = len(ev) - len(blinks)
        starts = np.array([e[0] for e in blinks])
        durs = np.array([e[1] for e in blinks])
    n = len(starts)
    ibi = np.diff(starts) if n > 1 else np.array([])
    c = np.asarray(closure, dtype=np.float64)
    ok = np.isfinite(c)
    w = frame_weights(t)
    perclos = float((w[ok] * (c[ok] >= PERCLOS_LEVEL)).sum() / w[ok].sum()) if ok.any() and w[ok].sum() > 0 \
        else math.nan
    fin = durs[np.isfinite(durs)] if n else durs
    return {
        "blink_count": float(n),
        "mov_blink_count": n / dur_min,
        "blink_dur_mean_ms": float(np.mean(fin) * 1e3) if len(fin) else math.nan,
        "blink_dur_std_ms": float(np.std(fin, ddof=1) * 1e3) if len(fin) > 1 else math.nan,
        "mov_blinkdur_mean": float(np.mean(ibi)) if len(ibi) else math.nan,
        "mov_blinkdur_std": float(np.std(ibi, ddof=1)) if len(ibi) > 1 else math.nan,
        "long_closures": float(long_n),
        "perclos": perclos,
    }


class _Welford:
    """Running mean and sample standard deviation (ddof 1)."""

    def __init__(self) -> None:
        self.n, self.mean, self._m2 = 0, 0.0, 0.0

    def add(self, x: float) -> None:
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self._m2 += d * (x - self.mean)

    def std(self) -> float:
        return math.sqrt(self._m2 / (self.n - 1)) if self.n > 1 else math.nan


class BlinkStream:
    """:func:`blink_stats` over every frame of a face, in O(1) memory (the behaviour stage's bounded history uses
    it once the history was decimated). Fed (media time s, mean closure or NaN, optional (flag, duration ms)).
    Differs from :func:`blink_stats` on the same frames only in PERCLOS's weight of the very last frame (the step
    before it instead of the median step). Owned by the caller's thread."""

    def __init__(self) -> None:
        self.frames = 0
        self.t_first = self.t_last = math.nan
        self.closure_seen = self.flag_seen = False
        # blinks from the eyes stage's flag
        self._f_n, self._f_dur, self._f_ibi, self._f_start = 0, _Welford(), _Welford(), math.nan
        # closures found from the closure signal (hysteresis)
        self._c_open: float | None = None
        self._c_n, self._c_long, self._c_dur, self._c_ibi, self._c_start = 0, 0, _Welford(), _Welford(), math.nan
        # PERCLOS: the previous frame waits for its weight (time to this frame)
        self._prev: tuple[float, float] | None = None
        self._w_all = self._w_closed = 0.0
        self._last_dt = math.nan

    def add(self, t: float, closure: float, blink: tuple[float, float] | None = None) -> None:
        if self.frames == 0:
            self.t_first = t
        self.frames += 1
        self.t_last = t
        if blink is not None and math.isfinite(blink[0]):
            self.flag_seen = True
            if blink[0] > 0.5:
                dur = blink[1] / 1e3 if math.isfinite(blink[1]) else math.nan
                start = t - (dur if math.isfinite(dur) else 0.0)
                if self._f_n:
                    self._f_ibi.add(start - self._f_start)
                self._f_n, self._f_start = self._f_n + 1, start
                if math.isfinite(dur):
                    self._f_dur.add(dur)
        ok = math.isfinite(closure)
        self.closure_seen = self.closure_seen or ok
        if self._c_open is None and ok and closure >= BLINK_ON:
            self._c_open = t
        elif self._c_open is not None and (not ok or closure < BLINK_OFF):
            dur = t - self._c_open
            if dur <= BLINK_MAX_S:
                if self._c_n:
                    self._c_ibi.add(self._c_open - self._c_start)
                self._c_n, self._c_start = self._c_n + 1, self._c_open
                self._c_dur.add(dur)
            else:
                self._c_long += 1
            self._c_open = None
        if self._prev is not None:
            dt = t - self._prev[0]
            self._last_dt = dt
            self._weigh(self._prev[1], min(max(dt, 0.0), 0.5))
        self._prev = (t, closure)

    def _weigh(self, c: float, w: float) -> None:
        if math.isfinite(c):
            self._w_all += w
            self._w_closed += w * (c >= PERCLOS_LEVEL)

    def stats(self) -> dict[str, float]:
        """The keys of :func:`blink_stats` over every frame added (NaN-free counts)."""
        dur_min = max(self.t_last - self.t_first, 1e-9) / 60.0 if self.frames else math.nan
        if self.flag_seen:
            n, dur, ibi, long_n = self._f_n, self._f_dur, self._f_ibi, 0
        else:
            n, dur, ibi, long_n = self._c_n, self._c_dur, self._c_ibi, self._c_long
        w_all, w_closed = self._w_all, self._w_closed
        if self._prev is not None:  # the last frame: the step before it (blink_stats: the median step)
            last_w = min(max(self._last_dt, 0.0), 0.5) if math.isfinite(self._last_dt) else 1 / 30
            c = self._prev[1]
            if math.isfinite(c):
                w_all, w_closed = w_all + last_w, w_closed + last_w * (c >= PERCLOS_LEVEL)
        return {
            "blink_count": float(n),
            "mov_blink_count": n / dur_min,
            "blink_dur_mean_ms": dur.mean * 1e3 if dur.n else math.nan,
            "blink_dur_std_ms": dur.std() * 1e3,
            "mov_blinkdur_mean": ibi.mean if ibi.n else math.nan,
            "mov_blinkdur_std": ibi.std(),
            "long_closures": float(long_n),
            "perclos": w_closed / w_all if w_all > 0 else math.nan,
        }
