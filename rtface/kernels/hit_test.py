"""Gaze-point vs AOI hit test: numba kernel ``hit_matrix_nb`` and its NumPy reference ``hit_matrix_np``.

Packed AOI geometry (built by ``rtface.gaze.aoi.build_geometry``; all px, image coords, y down):
- ``kind``  (F, A) int8: 0 absent, 1 polygon, 2 circle, 3 ellipse  (F faces, A AOI names)
- ``params`` (F, A, 6) float64: [cx, cy, p0, p1, p2, margin]: circle p0 = radius; ellipse p0, p1 = semi-axes,
  p2 = rotation (rad, of the p0 axis from +x); polygon uses only ``margin``
- ``vstart``, ``vcount`` (F, A) int64: polygon vertex range in ``verts`` (V, 2) float64 (closed implicitly)

A sample at p hits an AOI when, with tolerance tol = margin + gaze_radius_px:
tol >= 0: p is inside the shape or within tol of its boundary (exactly the Minkowski sum of the shape and a disk of
radius tol: "the gaze circle overlaps the AOI"); tol < 0: p is inside and at least -tol from the boundary (erosion).
Point-in-polygon uses the crossing-number (ray casting) rule; the point-to-ellipse distance is found by bisection on
the closest-point equation (exact to ~1e-9 px). Pure functions: call from any thread.
"""
from __future__ import annotations

import numpy as np
from numba import njit

KIND_NONE, KIND_POLYGON, KIND_CIRCLE, KIND_ELLIPSE = 0, 1, 2, 3
_BISECT_STEPS = 64


@njit(cache=True)
def _seg_dist(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    t = 0.0
    if ll > 0.0:
        t = ((px - ax) * dx + (py - ay) * dy) / ll
        t = min(1.0, max(0.0, t))
    qx, qy = ax + t * dx - px, ay + t * dy - py
    return np.sqrt(qx * qx + qy * qy)


@njit(cache=True)
def _ellipse_outside_dist(x: float, y: float, a: float, b: float) -> float:
    """Distance from (x, y) >= 0 (first quadrant, outside the ellipse) to the ellipse x^2/a^2 + y^2/b^2 = 1."""
    lo, hi = 0.0, np.sqrt(a * a * x * x + b * b * y * y) + 1e-12
    for _ in range(_BISECT_STEPS):
        t = 0.5 * (lo + hi)
        f = (a * x / (t + a * a)) ** 2 + (b * y / (t + b * b)) ** 2 - 1.0
        if f > 0.0:
            lo = t
        else:
            hi = t
    t = 0.5 * (lo + hi)
    qx, qy = a * a * x / (t + a * a) - x, b * b * y / (t + b * b) - y
    return np.sqrt(qx * qx + qy * qy)


@njit(cache=True)
def _hit_one(px: float, py: float, kind: int, prm: np.ndarray, vs: int, vc: int, verts: np.ndarray,
             gaze_r: float) -> bool:
    tol = prm[5] + gaze_r
    if kind == KIND_CIRCLE:
        d = np.sqrt((px - prm[0]) ** 2 + (py - prm[1]) ** 2)
        return d <= prm[2] + tol
    if kind == KIND_ELLIPSE:
        a, b = max(prm[2], 1e-9), max(prm[3], 1e-9)
        c, s = np.cos(prm[4]), np.sin(prm[4])
        dx, dy = px - prm[0], py - prm[1]
        u, v = abs(c * dx + s * dy), abs(-s * dx + c * dy)
        if tol < 0.0:  # erosion: approximated by shrinking both semi-axes
            a2, b2 = a + tol, b + tol
            return a2 > 0.0 and b2 > 0.0 and (u / a2) ** 2 + (v / b2) ** 2 <= 1.0
        if (u / a) ** 2 + (v / b) ** 2 <= 1.0:
            return True
        if np.sqrt(u * u + v * v) > max(a, b) + tol:
            return False
        return _ellipse_outside_dist(u, v, a, b) <= tol
    if kind == KIND_POLYGON:
        if vc < 3:
            return False
        inside = False
        dmin = np.inf
        j = vs + vc - 1
        for i in range(vs, vs + vc):
            xi, yi, xj, yj = verts[i, 0], verts[i, 1], verts[j, 0], verts[j, 1]
            if (yi > py) != (yj > py):
                xc = xi + (py - yi) * (xj - xi) / (yj - yi)
                if px < xc:
                    inside = not inside
            if tol != 0.0:
                dmin = min(dmin, _seg_dist(px, py, xi, yi, xj, yj))
            j = i
        if tol >= 0.0:
            return inside or dmin <= tol
        return inside and dmin >= -tol
    return False


@njit(cache=True)
def hit_matrix_nb(gx: np.ndarray, gy: np.ndarray, kind: np.ndarray, params: np.ndarray, vstart: np.ndarray,
                  vcount: np.ndarray, verts: np.ndarray, gaze_r: float) -> np.ndarray:
    """(N, F, A) bool hit matrix for N gaze points against every AOI of every face (numba)."""
    n, nf, na = gx.shape[0], kind.shape[0], kind.shape[1]
    out = np.zeros((n, nf, na), dtype=np.bool_)
    for f in range(nf):
        for a in range(na):
            k = kind[f, a]
            if k == KIND_NONE:
                continue
            # bounding-box reject (polygons): a point farther than tol outside the box cannot hit
            x0, y0, x1, y1 = -np.inf, -np.inf, np.inf, np.inf
            if k == KIND_POLYGON and vcount[f, a] > 0:
                vs, ve = vstart[f, a], vstart[f, a] + vcount[f, a]
                pad = max(params[f, a, 5] + gaze_r, 0.0)
                x0, x1 = verts[vs:ve, 0].min() - pad, verts[vs:ve, 0].max() + pad
                y0, y1 = verts[vs:ve, 1].min() - pad, verts[vs:ve, 1].max() + pad
            for s in range(n):
                if gx[s] < x0 or gx[s] > x1 or gy[s] < y0 or gy[s] > y1:
                    continue
                out[s, f, a] = _hit_one(gx[s], gy[s], k, params[f, a], vstart[f, a], vcount[f, a], verts, gaze_r)
    return out


# ----------------------------------------------------------------------------------------------- NumPy reference
def _np_polygon(gx: np.ndarray, gy: np.ndarray, poly: np.ndarray, tol: float) -> np.ndarray:
    if poly.shape[0] < 3:
        return np.zeros(gx.shape, dtype=bool)
    a, b = poly, np.roll(poly, 1, axis=0)  # edge from b (previous vertex) to a
    px, py = gx[:, None], gy[:, None]
    straddle = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = a[None, :, 0] + (py - a[None, :, 1]) * (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1])
    inside = (np.sum(straddle & (px < xc), axis=1) % 2) == 1
    if tol == 0.0:
        return inside
    d = b - a
    ll = np.sum(d * d, axis=1)
    t = ((px - a[None, :, 0]) * d[None, :, 0] + (py - a[None, :, 1]) * d[None, :, 1]) / np.where(ll > 0, ll, 1.0)
    t = np.clip(np.where(ll > 0, t, 0.0), 0.0, 1.0)
    dist = np.hypot(a[None, :, 0] + t * d[None, :, 0] - px, a[None, :, 1] + t * d[None, :, 1] - py).min(axis=1)
    return (inside | (dist <= tol)) if tol > 0 else (inside & (dist >= -tol))


def _np_ellipse(gx: np.ndarray, gy: np.ndarray, prm: np.ndarray, tol: float) -> np.ndarray:
    a, b = max(prm[2], 1e-9), max(prm[3], 1e-9)
    c, s = np.cos(prm[4]), np.sin(prm[4])
    dx, dy = gx - prm[0], gy - prm[1]
    u, v = np.abs(c * dx + s * dy), np.abs(-s * dx + c * dy)
    if tol < 0:
        a2, b2 = a + tol, b + tol
        if a2 <= 0 or b2 <= 0:
            return np.zeros(gx.shape, dtype=bool)
        return (u / a2) ** 2 + (v / b2) ** 2 <= 1.0
    inside = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    lo, hi = np.zeros_like(u), np.sqrt(a * a * u * u + b * b * v * v) + 1e-12
    for _ in range(_BISECT_STEPS):
        t = 0.5 * (lo + hi)
        f = (a * u / (t + a * a)) ** 2 + (b * v / (t + b * b)) ** 2 - 1.0
        lo, hi = np.where(f > 0, t, lo), np.where(f > 0, hi, t)
    t = 0.5 * (lo + hi)
    dist = np.hypot(a * a * u / (t + a * a) - u, b * b * v / (t + b * b) - v)
    return inside | (dist <= tol)


def hit_matrix_np(gx: np.ndarray, gy: np.ndarray, kind: np.ndarray, params: np.ndarray, vstart: np.ndarray,
                  vcount: np.ndarray, verts: np.ndarray, gaze_r: float) -> np.ndarray:
    """NumPy reference of ``hit_matrix_nb`` (same arguments, same result)."""
    gx = np.asarray(gx, dtype=np.float64)
    gy = np.asarray(gy, dtype=np.float64)
    nf, na = kind.shape
    out = np.zeros((gx.shape[0], nf, na), dtype=bool)
    for f in range(nf):
        for a in range(na):
            prm = params[f, a]
            tol = prm[5] + gaze_r
            if kind[f, a] == KIND_CIRCLE:
                out[:, f, a] = np.hypot(gx - prm[0], gy - prm[1]) <= prm[2] + tol
            elif kind[f, a] == KIND_ELLIPSE:
                out[:, f, a] = _np_ellipse(gx, gy, prm, tol)
            elif kind[f, a] == KIND_POLYGON:
                vs, vc = int(vstart[f, a]), int(vcount[f, a])
                out[:, f, a] = _np_polygon(gx, gy, verts[vs:vs + vc], tol)
    return out
