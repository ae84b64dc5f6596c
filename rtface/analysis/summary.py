"""Session and rolling-window measures of one face (and of face pairs) from its frame table.

Every variable, its formula, unit and source: ``docs/behaviour-analyses.md``; the per-measure modules
(:mod:`expressivity`, :mod:`asymmetry`, :mod:`kinematics`, :mod:`blinks`, :mod:`dyads`) hold the definitions.
Pure functions; safe from any thread.
"""
from __future__ import annotations

import math

import numpy as np

from rtface.analysis import blinks, dyads, kinematics
from rtface.analysis.expressivity import bitbox_stats
from rtface.analysis.features import nanmean
from rtface.analysis.mesh import REPORT_REGIONS

# per-frame signals that get OpenDBM-style _mean / _std / _pct session variables
_DERIVED_PCT = ("fac_comintsoft", "fac_cominthard", "fac_comuppintsoft", "fac_comlowintsoft", "fac_posintsoft",
                "fac_posinthard", "fac_negintsoft", "fac_neginthard")


def _mean(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def _std(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.std(ddof=1)) if x.size > 1 else math.nan


def _pct(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float((x > 0).mean()) if x.size else math.nan


def _q(x: np.ndarray, q: float) -> float:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if x.size else math.nan


def session_measures(ft: dict[str, np.ndarray], au_names=(), lr_aus=(), *, smooth_window_s: float = 2.0,
                     activation_on: float = 1.0, activation_off: float = 0.5) -> dict[str, float]:
    """Every session measure of one face (docs/behaviour-analyses.md) from its frame table."""
    t = ft["t"]
    n = len(t)
    d: dict[str, float] = {"n_frames": float(n), "duration_s": float(t[-1] - t[0]) if n else 0.0}
    if n == 0:
        return d
    d["confidence_mean"] = _mean(ft["confidence"])
    d["neutral_ready_frac"] = _mean(ft["neutral_ready"])
    # expressivity
    d["expressivity_mean"], d["expressivity_std"] = _mean(ft["expressivity"]), _std(ft["expressivity"])
    for c in ft:
        if c.startswith("fac_") and (c.endswith("intsoft") or c.endswith("inthard")):
            d[f"{c}_mean"], d[f"{c}_std"] = _mean(ft[c]), _std(ft[c])
            if c in _DERIVED_PCT:
                d[f"{c}_pct"] = _pct(ft[c])
        elif c.startswith("fac_") and c.endswith("pres"):
            d[f"{c}_pct"] = _pct(ft[c])
    if au_names:
        x = np.stack([ft[f"{a}_r"] for a in au_names], 1)
        d.update(bitbox_stats(t, x, tuple(au_names), on=activation_on, off=activation_off))
    # asymmetry
    for r in REPORT_REGIONS:
        d[f"asym_{r}_mean"] = _mean(ft[f"asym_{r}"])
    for a in lr_aus:
        v = ft[f"au_asym_{a}"]
        d[f"au_asym_{a}_mean"], d[f"au_asym_{a}_absmean"] = _mean(v), _mean(np.abs(v))
    # kinematics
    for r in REPORT_REGIONS:
        d[f"speed_{r}_mean"], d[f"speed_{r}_p95"] = _mean(ft[f"speed_{r}"]), _q(ft[f"speed_{r}"], 95)
        d[f"acc_{r}_mean"] = _mean(ft[f"acc_{r}"])
        j = ft[f"jerk_{r}"]
        d[f"jerk_{r}_rms"] = float(math.sqrt(_mean(j * j))) if np.any(np.isfinite(j)) else math.nan
        d[f"ldlj_{r}"] = kinematics.windowed_ldlj(t, ft[f"speed_{r}"], j, smooth_window_s)
    d["head_angspeed_mean"], d["head_angspeed_p95"] = _mean(ft["head_angspeed"]), _q(ft["head_angspeed"], 95)
    d["head_speed_mean"] = _mean(ft["head_speed"])
    for a in ("yaw", "pitch", "roll"):
        d[f"head_{a}_mean"], d[f"head_{a}_std"] = _mean(ft[a]), _std(ft[a])
        d[f"head_{a}_range"] = kinematics.angle_range(ft[a])
    # blinks
    flag = ft["blink"] if np.any(np.isfinite(ft["blink"])) else None
    d.update(blinks.blink_stats(t, ft["closure"], blink_flag=flag, blink_dur_ms=ft["blink_duration_ms"]))
    return d


WINDOW_MEASURES = ("expressivity", "fac_comintsoft", "asym_face", "speed_face", "speed_mouth", "head_angspeed")


def window_measures(ft: dict[str, np.ndarray], t_end: float, window_s: float) -> dict[str, float]:
    """Rolling values over media time (t_end - window_s, t_end]: means of :data:`WINDOW_MEASURES`, blink rate
    (per minute) and PERCLOS of the frames in the window."""
    t = ft["t"]
    m = (t > t_end - window_s) & (t <= t_end)
    d: dict[str, float] = {"t_end": float(t_end), "window_s": float(window_s), "frames": float(m.sum())}
    for c in WINDOW_MEASURES:
        if c in ft:
            d[c] = _mean(ft[c][m])
    if m.sum() >= 2:
        sub = blinks.blink_stats(t[m], ft["closure"][m])
        d["blink_rate_min"], d["perclos"] = sub["mov_blink_count"], sub["perclos"]
    else:
        d["blink_rate_min"] = d["perclos"] = math.nan
    return d


def windows_table(ft: dict[str, np.ndarray], window_s: float = 10.0, step_s: float = 1.0) -> list[dict]:
    """Rolling-window rows every ``step_s`` of media time (first at one window after the start)."""
    t = ft["t"]
    if len(t) == 0:
        return []
    ends = np.arange(t[0] + min(window_s, t[-1] - t[0]), t[-1] + 1e-9, step_s)
    return [window_measures(ft, float(e), window_s) for e in ends]


DYAD_SIGNALS = ("expressivity", "AU12_r", "AU06_r", "AU04_r", "speed_mouth")


def dyad_measures(tables: dict[int, dict[str, np.ndarray]], signals=DYAD_SIGNALS, **kw) -> list[dict]:
    """[{face_a, face_b, signal, xc_*...}] for every pair of faces (a < b) and signal both have."""
    out = []
    ids = sorted(tables)
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            for s in signals:
                if s not in tables[a] or s not in tables[b]:
                    continue
                r = dyads.dyad_stats(tables[a]["t"], tables[a][s], tables[b]["t"], tables[b][s],
                                     names=(str(a), str(b)), **kw)
                out.append({"face_a": a, "face_b": b, "signal": s, **r})
    return out


def session_frame_means(ft: dict[str, np.ndarray], cols) -> dict[str, float]:
    return {c: float(nanmean(ft[c])) for c in cols if c in ft}
