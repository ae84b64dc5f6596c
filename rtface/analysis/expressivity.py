"""Expressivity: OpenDBM's composite variables and Bitbox-style activation statistics and diversity of AUs.

OpenDBM (AiCure open_dbm; "Emotional expressivity" and "Overall expressivity" pages), per frame, from AU
intensities x (0-5) and presence p (0/1); the per-emotion values are those of :mod:`rtface.au.session`
(``fac_<emo>intsoft = sum of present members' x / (6 * number present)``, ``inthard`` = soft if all members are
present, else 0, emotions hap sad sur fea ang dis con):

- ``fac_comintsoft`` / ``fac_cominthard``: mean over the emotions of ``fac_<emo>intsoft`` / ``inthard`` (OpenDBM:
  "the average of all fac_EMOintsoft variables");
- ``fac_comuppintsoft`` / ``fac_comlowintsoft``: the soft formula over the upper-face AUs (1, 2, 4, 5, 6, 7, 43,
  45, 46) / the lower-face AUs (all others). OpenDBM names these without a formula; this split is ours;
- ``fac_posintsoft`` = ``fac_hapintsoft``; ``fac_negintsoft`` = mean of sad, ang, dis and fea soft values (OpenDBM
  lists them as "not in documentation"; our definition); ``_hard`` likewise.

Session variables as OpenDBM's ``derive.py``: ``_mean``, ``_std`` (ddof 1) and ``_pct`` = fraction of frames > 0.
``expressivity`` (ours) = mean AU intensity over all AUs, 0-5: the continuous per-frame signal used for plots,
windows and two-person coordination (the soft values are 0 whenever no member is present).

Bitbox-style (Bitbox ``expressions.expressivity`` / ``diversity`` at the finest temporal scale, on AU intensities
instead of Bitbox's expression coefficients): an *activation* of an AU is an episode with x >= ``on`` (default 1.0,
the AU stage's presence threshold) that ends when x < ``off`` (0.5); its magnitude is the episode's peak. Per
AU: ``bbx_<AU>_count``, ``bbx_<AU>_rate_min`` (activations per minute of media time), ``bbx_<AU>_peak_mean``.
Overall: ``bbx_activations``, ``bbx_rate_min``, ``bbx_peak_mean``, ``bbx_peak_std``, ``bbx_density`` (sum of
peak magnitudes per minute; Bitbox divides by the signal length in frames). Diversity: ``bbx_diversity`` =
entropy of the distribution of activations over AUs, -sum p_k ln p_k / ln K (0: one AU only, 1: all equally);
``bbx_diversity_frame`` = mean over frames (with any intensity) of the entropy of x_k / sum x, / ln K.
Pure functions; safe from any thread.
"""
from __future__ import annotations

import math

import numpy as np

from rtface.au.session import EMOTIONS, OPENDBM_SOFT_DIVISOR, au_number

UPPER_FACE = frozenset({1, 2, 4, 5, 6, 7, 43, 45, 46})
NEGATIVE = ("sad", "ang", "dis", "fea")


class Composites:
    """Per-frame OpenDBM composites for a fixed AU name order (vectorised over frames)."""

    def __init__(self, au_names: tuple[str, ...]) -> None:
        self.au_names = tuple(au_names)
        nums = [au_number(n) for n in self.au_names]
        index = {}
        for i, n in enumerate(nums):
            if n is not None and n not in index:
                index[n] = i
        self.emotions = {k: [index[a] for a in aus if a in index] for k, aus in EMOTIONS.items()}
        self.emotions = {k: v for k, v in self.emotions.items() if v}
        self.upper = [i for i, n in enumerate(nums) if n is not None and n in UPPER_FACE]
        self.lower = [i for i, n in enumerate(nums) if n is not None and n not in UPPER_FACE]

    def names(self) -> list[str]:
        out = []
        for k in self.emotions:
            out += [f"fac_{k}intsoft", f"fac_{k}inthard", f"fac_{k}pres"]
        out += ["fac_comintsoft", "fac_cominthard", "fac_comuppintsoft", "fac_comlowintsoft"]
        if "hap" in self.emotions:
            out += ["fac_posintsoft", "fac_posinthard"]
        if any(k in self.emotions for k in NEGATIVE):
            out += ["fac_negintsoft", "fac_neginthard"]
        return out

    @staticmethod
    def _soft(x: np.ndarray, p: np.ndarray, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
        xs, ps = x[:, idx], p[:, idx]
        cnt = ps.sum(axis=1)
        num = (xs * ps).sum(axis=1)
        soft = np.divide(num, OPENDBM_SOFT_DIVISOR * cnt, out=np.zeros_like(num), where=cnt > 0)
        return soft, cnt == len(idx)

    def compute(self, x: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
        """x, p: (N, K) intensities 0-5 and presence 0/1 -> {variable: (N,)} (NaN rows stay NaN)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        p = np.atleast_2d(np.asarray(p, dtype=np.float64) > 0.5).astype(np.float64)
        bad = ~np.all(np.isfinite(x), axis=1)
        x = np.nan_to_num(x)
        out: dict[str, np.ndarray] = {}
        soft_all, hard_all = {}, {}
        for k, idx in self.emotions.items():
            s, allp = self._soft(x, p, idx)
            soft_all[k], hard_all[k] = s, s * allp
            out[f"fac_{k}intsoft"], out[f"fac_{k}inthard"], out[f"fac_{k}pres"] = s, s * allp, allp.astype(float)
        n = x.shape[0]
        zero = np.zeros(n)
        out["fac_comintsoft"] = np.mean(list(soft_all.values()), axis=0) if soft_all else zero
        out["fac_cominthard"] = np.mean(list(hard_all.values()), axis=0) if hard_all else zero
        out["fac_comuppintsoft"] = self._soft(x, p, self.upper)[0] if self.upper else zero
        out["fac_comlowintsoft"] = self._soft(x, p, self.lower)[0] if self.lower else zero
        if "hap" in soft_all:
            out["fac_posintsoft"], out["fac_posinthard"] = soft_all["hap"], hard_all["hap"]
        neg = [k for k in NEGATIVE if k in soft_all]
        if neg:
            out["fac_negintsoft"] = np.mean([soft_all[k] for k in neg], axis=0)
            out["fac_neginthard"] = np.mean([hard_all[k] for k in neg], axis=0)
        for v in out.values():
            v[bad] = np.nan
        return out


def activations(t: np.ndarray, x: np.ndarray, on: float = 1.0, off: float = 0.5) -> list[tuple[float, float, float]]:
    """[(start s, end s, peak)] episodes with x >= on until x < off (hysteresis); NaN frames end an episode."""
    out = []
    active, start, peak = False, 0.0, 0.0
    for ti, xi in zip(t, x):
        if active and (not math.isfinite(xi) or xi < off):
            out.append((start, float(ti), peak))
            active = False
        elif active:
            peak = max(peak, float(xi))
        elif math.isfinite(xi) and xi >= on:
            active, start, peak = True, float(ti), float(xi)
    if active:
        out.append((start, float(t[-1]), peak))
    return out


def _entropy(p: np.ndarray, k: int) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / math.log(k)) if k > 1 else 0.0


def bitbox_stats(t: np.ndarray, x: np.ndarray, au_names: tuple[str, ...], *, on: float = 1.0,
                 off: float = 0.5) -> dict[str, float]:
    """Activation statistics and diversity (module doc) of (N, K) AU intensities over media time t (s)."""
    dur_min = max(float(t[-1] - t[0]), 1e-9) / 60.0 if len(t) else math.nan
    d: dict[str, float] = {}
    counts, peaks = [], []
    for k, name in enumerate(au_names):
        acts = activations(t, x[:, k], on, off)
        pk = [a[2] for a in acts]
        counts.append(len(acts))
        peaks += pk
        d[f"bbx_{name}_count"] = float(len(acts))
        d[f"bbx_{name}_rate_min"] = len(acts) / dur_min
        d[f"bbx_{name}_peak_mean"] = float(np.mean(pk)) if pk else math.nan
    total = float(sum(counts))
    d["bbx_activations"] = total
    d["bbx_rate_min"] = total / dur_min
    d["bbx_peak_mean"] = float(np.mean(peaks)) if peaks else math.nan
    d["bbx_peak_std"] = float(np.std(peaks, ddof=1)) if len(peaks) > 1 else math.nan
    d["bbx_density"] = float(np.sum(peaks)) / dur_min if len(t) else math.nan
    kk = len(au_names)
    d["bbx_diversity"] = _entropy(np.asarray(counts, float) / total, kk) if total > 0 else math.nan
    xs = np.clip(np.nan_to_num(x), 0, None)
    s = xs.sum(axis=1)
    rows = xs[s > 0] / s[s > 0, None]
    d["bbx_diversity_frame"] = float(np.mean([_entropy(r, kk) for r in rows])) if len(rows) else math.nan
    return d
