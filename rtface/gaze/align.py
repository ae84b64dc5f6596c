"""Gaze-sample -> scene-frame time alignment (vectorised with ``np.searchsorted``; pure functions, any thread).

Rule (default ``mode="nearest"``): a sample belongs to the scene frame whose timestamp is nearest to the sample's
time on the scene clock (``t_gaze + offset_ns``); ties go to the earlier frame. This is Pupil Player's
``world_index`` rule: on the real gazeclassify export every one of the 145 samples agrees with its world_index
(after removing the export's constant index offset of the trimmed section), see tests/integration.
``mode="interval"`` instead assigns the frame whose interval [t_k, t_k+1) contains the sample (the frame that was
on screen when the eye sample was taken).

Samples farther than ``max_dist_ns`` from their frame (default: one median frame interval) get frame -1: they lie
outside the recorded scene span (e.g. Neon gaze continues ~60 ms after the last scene frame).
"""
from __future__ import annotations

import numpy as np

from rtface.errors import DataError


def median_interval_ns(frame_t_ns: np.ndarray) -> int:
    """Median spacing of the frame timestamps (ns); 0 for fewer than two frames."""
    ft = np.sort(np.asarray(frame_t_ns, dtype=np.int64))
    return int(np.median(np.diff(ft))) if ft.size > 1 else 0


def assign_frames(gaze_t_ns: np.ndarray, frame_t_ns: np.ndarray, offset_ns: int = 0, mode: str = "nearest",
                  max_dist_ns: int | None = None) -> np.ndarray:
    """(N,) int64 index into ``frame_t_ns`` for each gaze sample, -1 when outside the scene span.

    ``offset_ns`` maps the gaze clock to the scene clock: t_scene = t_gaze + offset_ns.
    ``frame_t_ns`` need not be sorted; the returned index refers to its original order.
    """
    if mode not in ("nearest", "interval"):
        raise DataError(f"gaze alignment: unknown mode '{mode}' (expected 'nearest' or 'interval')")
    ft_raw = np.asarray(frame_t_ns, dtype=np.int64)
    t = np.asarray(gaze_t_ns, dtype=np.int64) + np.int64(offset_ns)
    out = np.full(t.shape[0], -1, dtype=np.int64)
    if ft_raw.size == 0 or t.size == 0:
        return out
    order = np.argsort(ft_raw, kind="stable")
    ft = ft_raw[order]
    if max_dist_ns is None:
        max_dist_ns = median_interval_ns(ft) if ft.size > 1 else np.iinfo(np.int64).max
    right = np.searchsorted(ft, t, side="left")  # first frame >= t
    if mode == "nearest":
        lo = np.clip(right - 1, 0, ft.size - 1)
        hi = np.clip(right, 0, ft.size - 1)
        d_lo = np.abs(t - ft[lo])
        d_hi = np.abs(ft[hi] - t)
        k = np.where(d_hi < d_lo, hi, lo)
        dist = np.minimum(d_lo, d_hi)
        ok = dist <= max_dist_ns
    else:
        k = np.searchsorted(ft, t, side="right") - 1  # last frame <= t
        ok = k >= 0
        kc = np.clip(k, 0, ft.size - 1)
        ok &= (t - ft[kc]) <= max_dist_ns
        k = kc
    out[ok] = order[k[ok]]
    return out


def estimate_offset_ns(gaze_clock_ns: np.ndarray, scene_clock_ns: np.ndarray) -> int:
    """Offset (ns) mapping the gaze clock to the scene clock from paired timestamps of the same events.

    ``gaze_clock_ns[i]`` and ``scene_clock_ns[i]`` are one event seen on both clocks (e.g. a sync flash, or the
    request/reply midpoint of a clock query). Returns the median of the differences (robust to a few outliers).
    """
    g = np.asarray(gaze_clock_ns, dtype=np.int64)
    s = np.asarray(scene_clock_ns, dtype=np.int64)
    if g.shape != s.shape or g.size == 0:
        raise DataError(f"estimate_offset_ns: need equal, non-empty pairs (got {g.shape} and {s.shape})")
    return int(np.median(s - g))


def neighbour_weights(t_ns: np.ndarray, frame_idx: np.ndarray, frame_t_ns: np.ndarray, offset_ns: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """For landmark interpolation: the other frame bracketing each sample and the linear weight on it.

    Returns (other_idx, alpha): landmarks(t) = (1 - alpha) * L[frame_idx] + alpha * L[other_idx]; other_idx is -1
    (alpha 0) when there is no bracketing neighbour. Assumes ``frame_t_ns`` sorted increasing (true of the
    supported recording formats).
    """
    t = np.asarray(t_ns, dtype=np.int64) + np.int64(offset_ns)
    ft = np.asarray(frame_t_ns, dtype=np.int64)
    k = np.asarray(frame_idx, dtype=np.int64)
    other = np.full(k.shape, -1, dtype=np.int64)
    alpha = np.zeros(k.shape, dtype=np.float64)
    valid = k >= 0
    kc = np.where(valid, k, 0)
    after = t >= ft[kc]
    cand = np.where(after, kc + 1, kc - 1)
    ok = valid & (cand >= 0) & (cand < ft.size)
    cc = np.clip(cand, 0, ft.size - 1)
    span = (ft[cc] - ft[kc]).astype(np.float64)
    ok &= span != 0
    a = np.zeros_like(alpha)
    np.divide((t - ft[kc]).astype(np.float64), span, out=a, where=ok)
    ok &= (a >= 0) & (a <= 1)
    other[ok] = cand[ok]
    alpha[ok] = a[ok]
    return other, alpha


def interpolate_landmarks(lm_a: np.ndarray, lm_b: np.ndarray, alpha: float) -> np.ndarray:
    """Linear blend of one face's landmarks between two frames (caller checks both are the same face id)."""
    return (1.0 - alpha) * np.asarray(lm_a, dtype=np.float64) + alpha * np.asarray(lm_b, dtype=np.float64)
