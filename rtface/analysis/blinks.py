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
