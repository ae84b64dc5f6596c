"""Two faces in one recording: windowed cross-correlation and lag of a signal (who follows whom).

Windowed cross-lagged correlation (Boker, Rotondo, Xu & King 2002, Psychological Methods 7:338; Bitbox's
interpersonal coordination measures are of this kind): both faces' signals are put on one uniform media-time grid
(step = median frame step; linear interpolation, never across a gap longer than ``max_gap_s``), cut into windows
of ``window_s`` (default 4 s) every ``step_s`` (1 s); within each window the Pearson correlation
r(tau) = corr(a(t), b(t + tau)) is computed for lags tau in [-``max_lag_s``, +``max_lag_s``] (2 s). Positive tau:
b repeats a later, so **b follows a**. Per window: the peak r and its lag.

Session values per pair and signal: ``xc_peak_r_mean`` (mean of the windows' peak r), ``xc_lag_median_s`` (median
lag at the peak over windows whose peak r >= ``min_r``, default 0.5), ``xc_a_leads_frac`` (share of those windows
with lag > 0), ``xc_windows`` (windows used), and the whole-session cross-correlation ``xc_global_r`` /
``xc_global_lag_s``; ``leader`` names the face that leads by the median lag (or "none" within one grid step).
Pure functions; safe from any thread.
"""
from __future__ import annotations

import math

import numpy as np


def common_grid(ta: np.ndarray, xa: np.ndarray, tb: np.ndarray, xb: np.ndarray,
                max_gap_s: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, a, b) on one uniform grid over the overlap of both series (NaN across gaps)."""
    def clean(t, x):
        ok = np.isfinite(t) & np.isfinite(x)
        t, x = t[ok], x[ok]
        o = np.argsort(t, kind="stable")
        return t[o], x[o]

    ta, xa = clean(np.asarray(ta, float), np.asarray(xa, float))
    tb, xb = clean(np.asarray(tb, float), np.asarray(xb, float))
    if len(ta) < 2 or len(tb) < 2:
        return np.array([]), np.array([]), np.array([])
    dt = float(np.median(np.diff(np.union1d(ta, tb))))
    t0, t1 = max(ta[0], tb[0]), min(ta[-1], tb[-1])
    if not dt > 0 or t1 <= t0:
        return np.array([]), np.array([]), np.array([])
    t = np.arange(t0, t1 + dt / 2, dt)

    def interp(ts, xs):
        y = np.interp(t, ts, xs)
        j = np.clip(np.searchsorted(ts, t), 1, len(ts) - 1)
        gap = (ts[j] - ts[j - 1]) > max_gap_s
        y[gap] = np.nan
        return y

    return t, interp(ta, xa), interp(tb, xb)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 4:
        return math.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else math.nan


def lagged_r(a: np.ndarray, b: np.ndarray, i0: int, n: int, lags: np.ndarray) -> np.ndarray:
    """r(tau) for a[i0:i0+n] against b shifted by each lag (in grid steps); NaN where b runs out."""
    out = np.full(len(lags), np.nan)
    for k, lag in enumerate(lags):
        j0 = i0 + int(lag)
        if j0 < 0 or j0 + n > len(b):
            continue
        out[k] = _corr(a[i0:i0 + n], b[j0:j0 + n])
    return out


def windowed_xcorr(t: np.ndarray, a: np.ndarray, b: np.ndarray, *, window_s: float = 4.0, step_s: float = 1.0,
                   max_lag_s: float = 2.0) -> dict[str, np.ndarray]:
    """Per-window start time, peak r and lag at the peak (s), and the r(tau) matrix (windows x lags)."""
    empty = {"t": np.array([]), "peak_r": np.array([]), "lag_s": np.array([]), "lags_s": np.array([]),
             "r": np.zeros((0, 0))}
    if len(t) < 4:
        return empty
    dt = float(t[1] - t[0])
    n, step, ml = max(4, int(round(window_s / dt))), max(1, int(round(step_s / dt))), int(round(max_lag_s / dt))
    lags = np.arange(-ml, ml + 1)
    starts = list(range(ml, len(t) - n - ml + 1, step)) or ([0] if len(t) >= n else [])
    if not starts:
        return empty
    rows = np.array([lagged_r(a, b, i, n, lags) for i in starts])
    peak = np.full(len(starts), np.nan)
    lag = np.full(len(starts), np.nan)
    for k, row in enumerate(rows):
        if np.any(np.isfinite(row)):
            j = int(np.nanargmax(row))
            peak[k], lag[k] = row[j], lags[j] * dt
    return {"t": t[starts], "peak_r": peak, "lag_s": lag, "lags_s": lags * dt, "r": rows}


def dyad_stats(ta, xa, tb, xb, *, window_s: float = 4.0, step_s: float = 1.0, max_lag_s: float = 2.0,
               min_r: float = 0.5, names: tuple[str, str] = ("a", "b")) -> dict:
    """Session coordination values (module doc) of signal a (face names[0]) and b (names[1])."""
    t, a, b = common_grid(ta, xa, tb, xb)
    w = windowed_xcorr(t, a, b, window_s=window_s, step_s=step_s, max_lag_s=max_lag_s)
    good = np.isfinite(w["peak_r"]) & (w["peak_r"] >= min_r)
    d: dict = {"xc_windows": int(good.sum()), "xc_windows_total": int(len(w["t"])),
               "xc_peak_r_mean": float(np.nanmean(w["peak_r"])) if np.any(np.isfinite(w["peak_r"])) else math.nan,
               "xc_lag_median_s": float(np.median(w["lag_s"][good])) if good.any() else math.nan,
               "xc_a_leads_frac": float(np.mean(w["lag_s"][good] > 0)) if good.any() else math.nan}
    if len(t) >= 8:
        ml = int(round(max_lag_s / (t[1] - t[0])))
        lags = np.arange(-ml, ml + 1)
        n = len(t) - 2 * ml
        r = lagged_r(a, b, ml, n, lags) if n >= 4 else np.full(len(lags), np.nan)
        if np.any(np.isfinite(r)):
            j = int(np.nanargmax(r))
            d["xc_global_r"], d["xc_global_lag_s"] = float(r[j]), float(lags[j] * (t[1] - t[0]))
    d.setdefault("xc_global_r", math.nan)
    d.setdefault("xc_global_lag_s", math.nan)
    lag = d["xc_lag_median_s"]
    step = float(t[1] - t[0]) if len(t) > 1 else math.inf
    d["leader"] = ("none" if not math.isfinite(lag) or abs(lag) < step else names[0] if lag > 0 else names[1])
    d["_windows"] = w
    return d
