"""Inline SVG plots for the HTML report: line charts and heat maps, no scripts, no external resources.

Every chart is an ``<svg class="plot" data-plot="...">`` element with axes, tick labels and a legend; long
series are reduced to at most ``max_points`` by bucket means (min/max kept as a band). Pure functions.
"""
from __future__ import annotations

import math
from html import escape

import numpy as np

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22")


def _reduce(t: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Bucket means of t and of the finite y values (NaN for a bucket without any), at most ``max_points``."""
    if len(t) <= max_points:
        return t, y
    starts = np.linspace(0, len(t), max_points + 1).astype(int)[:-1]  # every bucket holds >= 1 sample
    counts = np.diff(np.append(starts, len(t)))
    tt = np.add.reduceat(t, starts) / counts
    ok = np.isfinite(y)
    n_ok = np.add.reduceat(ok.astype(np.int64), starts)
    sums = np.add.reduceat(np.where(ok, y, 0.0), starts)
    with np.errstate(all="ignore"):
        yy = np.where(n_ok > 0, sums / np.maximum(n_ok, 1), np.nan)
    return tt, yy


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"


def line_chart(series: list[tuple[str, np.ndarray, np.ndarray]], *, title: str, ylabel: str, key: str,
               width: int = 920, height: int = 190, max_points: int = 700, markers: np.ndarray | None = None,
               marker_label: str = "") -> str:
    """Lines of (name, t s, y); optional vertical event markers at times ``markers``."""
    ml, mr, mt, mb = 58, 150, 22, 30
    pw, ph = width - ml - mr, height - mt - mb
    pts = [(n, *_reduce(np.asarray(t, float), np.asarray(y, float), max_points)) for n, t, y in series]
    allt = np.concatenate([p[1] for p in pts]) if pts else np.array([])
    ally = np.concatenate([p[2] for p in pts]) if pts else np.array([])
    ally = ally[np.isfinite(ally)]
    allt = allt[np.isfinite(allt)]
    parts = [f'<svg class="plot" data-plot="{escape(key)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{ml}" y="14" class="ptitle">{escape(title)}</text>']
    if not len(ally) or not len(allt):
        parts.append(f'<text x="{ml + 10}" y="{mt + ph / 2}" class="empty">no data</text></svg>')
        return "".join(parts)
    x0, x1 = float(allt.min()), float(allt.max())
    y0, y1 = float(ally.min()), float(ally.max())
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 - x0 < 1e-12:
        x1 = x0 + 1.0
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def sx(v):
        return ml + (v - x0) / (x1 - x0) * pw

    def sy(v):
        return mt + ph - (v - y0) / (y1 - y0) * ph

    parts.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" class="frame"/>')
    for v in _ticks(y0, y1):
        parts.append(f'<line x1="{ml}" x2="{ml + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" class="grid"/>'
                     f'<text x="{ml - 4}" y="{sy(v) + 3:.1f}" class="ytick">{_fmt(v)}</text>')
    for v in _ticks(x0, x1, 8):
        parts.append(f'<text x="{sx(v):.1f}" y="{mt + ph + 13}" class="xtick">{_fmt(v)}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 2}" class="xlabel">media time (s)</text>'
                 f'<text x="12" y="{mt + ph / 2}" class="ylabel" transform="rotate(-90 12 {mt + ph / 2})">'
                 f'{escape(ylabel)}</text>')
    if markers is not None and len(markers):
        for m in markers:
            parts.append(f'<line x1="{sx(m):.1f}" x2="{sx(m):.1f}" y1="{mt}" y2="{mt + ph}" class="marker">'
                         f'<title>{escape(marker_label)} {m:.2f} s</title></line>')
    for k, (name, t, y) in enumerate(pts):
        color = PALETTE[k % len(PALETTE)]
        segs, cur = [], []
        for ti, yi in zip(t, y):
            if math.isfinite(yi):
                cur.append(f"{sx(ti):.1f},{sy(yi):.1f}")
            elif cur:
                segs.append(cur)
                cur = []
        if cur:
            segs.append(cur)
        for s in segs:
            parts.append(f'<polyline points="{" ".join(s)}" fill="none" stroke="{color}" stroke-width="1.4">'
                         f'<title>{escape(name)}</title></polyline>')
        ly = mt + 12 + 14 * k
        parts.append(f'<line x1="{ml + pw + 10}" x2="{ml + pw + 26}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" '
                     f'stroke-width="2"/><text x="{ml + pw + 30}" y="{ly}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap(rows: list[str], t: np.ndarray, z: np.ndarray, *, title: str, key: str, zmax: float | None = None,
            width: int = 920, row_h: int = 12, max_cols: int = 400, xlabel: str = "media time (s)") -> str:
    """Heat map of z (rows x len(t)), white (0) to dark blue (zmax)."""
    ml, mr, mt, mb = 58, 150, 22, 30
    pw = width - ml - mr
    height = mt + mb + row_h * len(rows)
    parts = [f'<svg class="plot" data-plot="{escape(key)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{ml}" y="14" class="ptitle">{escape(title)}</text>']
    if z.size == 0 or len(t) == 0:
        parts.append(f'<text x="{ml + 10}" y="{mt + 12}" class="empty">no data</text></svg>')
        return "".join(parts)
    cols = min(max_cols, z.shape[1])
    edges = np.linspace(0, z.shape[1], cols + 1).astype(int)
    with np.errstate(all="ignore"):
        zz = np.stack([np.nanmean(z[:, a:b], axis=1) if b > a else np.full(z.shape[0], np.nan)
                       for a, b in zip(edges[:-1], edges[1:])], 1)
    top = zmax if zmax else float(np.nanmax(zz)) if np.any(np.isfinite(zz)) else 1.0
    top = top if top > 0 else 1.0
    cw = pw / cols
    for i, name in enumerate(rows):
        y = mt + i * row_h
        parts.append(f'<text x="{ml - 4}" y="{y + row_h - 2}" class="ytick">{escape(name)}</text>')
        for j in range(cols):
            v = zz[i, j]
            if not math.isfinite(v):
                continue
            a = min(1.0, max(0.0, v / top))
            if a < 0.02:
                continue
            parts.append(f'<rect x="{ml + j * cw:.1f}" y="{y}" width="{cw + 0.3:.1f}" height="{row_h}" '
                         f'fill="#08306b" fill-opacity="{a:.2f}"/>')
    parts.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{row_h * len(rows)}" class="frame"/>')
    x0, x1 = float(t[0]), float(t[-1]) if float(t[-1]) > float(t[0]) else float(t[0]) + 1
    for v in _ticks(x0, x1, 8):
        parts.append(f'<text x="{ml + (v - x0) / (x1 - x0) * pw:.1f}" y="{height - mb + 13}" class="xtick">'
                     f'{_fmt(v)}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 2}" class="xlabel">{escape(xlabel)}</text>'
                 f'<text x="{ml + pw + 10}" y="{mt + 10}" class="legend">0 .. {_fmt(top)}</text></svg>')
    return "".join(parts)
