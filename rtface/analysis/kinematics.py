"""Kinematics of the canonicalized landmarks (pose removed) and of the head, on media time.

Per face, frame by frame (:class:`LandmarkKinematics`, the same code for a live stream and a result table):

1. smoothing: a one-pole low-pass on media time, s_t = s_{t-1} + (1 - exp(-dt/tau)) (x_t - s_{t-1}) per
   coordinate (``tau_s`` default 0.05 s, -3 dB near 1/(2 pi tau) = 3.2 Hz), so that MediaPipe's frame-to-frame
   jitter is not differentiated three times;
2. backward differences on media time: v_t = (s_t - s_{t-1}) / dt (cm/s), a_t = (v_t - v_{t-1}) / dt (cm/s^2),
   j_t = (a_t - a_{t-1}) / dt (cm/s^3), per point (3-vectors);
3. region value = mean over the region's points of |v|, |a|, |j| (``speed_<region>``, ``acc_<region>``,
   ``jerk_<region>``; regions :data:`rtface.analysis.mesh.REPORT_REGIONS`).

A gap in media time longer than ``max_gap_s`` (default 0.5 s), a repeated or backwards timestamp, or a frame
without landmarks restarts the chain (NaN until enough frames follow). The canonical landmarks have head pose (and
the person's face shape) removed by the engine, so rigid head motion alone gives zero.

Smoothness: log dimensionless jerk (LDLJ, Balasubramanian, Melendez-Calderon, Roby-Brami & Burdet 2015, J
NeuroEng Rehabil 12:112; the speed-profile form) over a window of duration T = t_end - t_start:
``LDLJ = -ln( T^3 / max(v)^2 * sum(j^2 dt) )`` with v = region speed and j = region jerk: dimensionless, higher
(less negative) is smoother. Facial behaviour is continuous rather than one reach, so it is computed on fixed
windows (``smooth_window_s``, default 2 s) and the session value is their median.

Head: angular speed = angle of the relative rotation between consecutive frames / dt (deg/s), rotations built from
pitch, yaw, roll (OpenFace's order, R = Rx(pitch) Ry(yaw) Rz(roll)); translation speed from the head translation
(cm/s); range = 95th - 5th percentile of each angle (deg). Thread ownership: a state object belongs to its caller.
"""
from __future__ import annotations

import math

import numpy as np

from rtface.analysis.mesh import REPORT_REGIONS, report_region_means


class LandmarkKinematics:
    """Streaming per-region speed / acceleration / jerk of one face's landmarks (478, 3) cm."""

    def __init__(self, tau_s: float = 0.05, max_gap_s: float = 0.5) -> None:
        if not tau_s >= 0 or not max_gap_s > 0:
            raise ValueError(f"kinematics: tau_s must be >= 0 and max_gap_s > 0, got {tau_s}, {max_gap_s}")
        self.tau_s, self.max_gap_s = float(tau_s), float(max_gap_s)
        self._means = report_region_means()
        self._keys = {k: [f"{k}_{r}" for r in REPORT_REGIONS] for k in ("speed", "acc", "jerk")}
        self.reset()

    def reset(self) -> None:
        self._t: float | None = None
        self._s = self._v = self._a = None

    def update(self, t_s: float, points: np.ndarray | None) -> dict[str, float]:
        """Add one frame (media time s, points (478, 3) cm or None); {speed_/acc_/jerk_<region>: value}."""
        out = {key: math.nan for keys in self._keys.values() for key in keys}
        if points is None or not np.all(np.isfinite(points[:468])):
            self.reset()
            return out
        x = np.asarray(points[:468], dtype=np.float64)
        dt = None if self._t is None else t_s - self._t
        if dt is None or not 0 < dt <= self.max_gap_s:
            self.reset()
            self._t, self._s = t_s, x.copy()
            return out
        alpha = 1.0 if self.tau_s == 0 else 1.0 - math.exp(-dt / self.tau_s)
        s = self._s + alpha * (x - self._s)
        v = (s - self._s) / dt
        a = None if self._v is None else (v - self._v) / dt
        j = None if (a is None or self._a is None) else (a - self._a) / dt
        self._t, self._s, self._v, self._a = t_s, s, v, a
        for name, vec in (("speed", v), ("acc", a), ("jerk", j)):
            if vec is None:
                continue
            out.update(zip(self._keys[name], (self._means @ np.sqrt(np.einsum("ij,ij->i", vec, vec))).tolist()))
        return out


def _rot(pitch: float, yaw: float, roll: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = (math.cos(pitch), math.sin(pitch), math.cos(yaw), math.sin(yaw), math.cos(roll),
                              math.sin(roll))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


class HeadKinematics:
    """Streaming head angular speed (deg/s) and translation speed (cm/s)."""

    def __init__(self, max_gap_s: float = 0.5) -> None:
        self.max_gap_s = float(max_gap_s)
        self._t: float | None = None
        self._r = self._tr = None

    def update(self, t_s: float, pitch_deg: float, yaw_deg: float, roll_deg: float,
               t_cm: np.ndarray | None) -> tuple[float, float]:
        """(angular speed deg/s, translation speed cm/s) of this frame; NaN at a (re)start."""
        if not all(map(math.isfinite, (pitch_deg, yaw_deg, roll_deg))):
            self._t = None
            return math.nan, math.nan
        r = _rot(*map(math.radians, (pitch_deg, yaw_deg, roll_deg)))
        tr = None if t_cm is None else np.asarray(t_cm, dtype=np.float64)
        dt = None if self._t is None else t_s - self._t
        ang = lin = math.nan
        if dt is not None and 0 < dt <= self.max_gap_s:
            c = (np.trace(r @ self._r.T) - 1.0) / 2.0
            ang = math.degrees(math.acos(min(1.0, max(-1.0, c)))) / dt
            if tr is not None and self._tr is not None and np.all(np.isfinite(tr)) and np.all(np.isfinite(self._tr)):
                lin = float(np.linalg.norm(tr - self._tr)) / dt
        self._t, self._r, self._tr = t_s, r, tr
        return ang, lin


def ldlj(t: np.ndarray, speed: np.ndarray, jerk: np.ndarray) -> float:
    """Log dimensionless jerk of one window (see module doc); NaN if fewer than 4 valid samples or no motion."""
    ok = np.isfinite(speed) & np.isfinite(jerk)
    if ok.sum() < 4:
        return math.nan
    t, v, j = t[ok], speed[ok], jerk[ok]
    dur = float(t[-1] - t[0])
    vmax = float(v.max())
    if dur <= 0 or vmax <= 0:
        return math.nan
    dt = np.diff(t, prepend=t[0] - np.median(np.diff(t)))
    integral = float(np.sum(j * j * dt))
    if integral <= 0:
        return math.nan
    return -math.log(dur ** 3 / vmax ** 2 * integral)


def windowed_ldlj(t: np.ndarray, speed: np.ndarray, jerk: np.ndarray, window_s: float = 2.0) -> float:
    """Median LDLJ over consecutive windows of ``window_s`` (NaN if none is valid)."""
    if len(t) == 0:
        return math.nan
    edges = np.arange(t[0], t[-1] + window_s, window_s)
    vals = []
    for a, b in zip(edges[:-1], edges[1:]):
        m = (t >= a) & (t < b)
        if m.sum() >= 4:
            v = ldlj(t[m], speed[m], jerk[m])
            if math.isfinite(v):
                vals.append(v)
    return float(np.median(vals)) if vals else math.nan


def angle_range(x: np.ndarray) -> float:
    """95th - 5th percentile (robust range) of the finite values, NaN if none."""
    x = x[np.isfinite(x)]
    return float(np.percentile(x, 95) - np.percentile(x, 5)) if x.size else math.nan
