"""Left/right asymmetry: of the canonicalized face (mirror pairs of the mesh) and of lateral AU pairs.

Landmark asymmetry (Procrustes "object symmetry", Mardia, Bookstein & Moreton 2000; Klingenberg, Barluenga &
Meyer 2002): reflect the face (x -> -x), relabel every point with its mirror partner (:func:`mesh.mirror_pairs`),
rigidly align the result to the face (rotation + translation, no scale: Kabsch) and take, per point, half the
distance between the face and its aligned mirror image. That is the point's distance from perfect symmetry about
the best-fitting mirror plane, in cm (the canonical landmarks are in cm). A perfectly symmetric face gives 0 at any
position and orientation. Region value = mean over the region's points (:data:`mesh.REPORT_REGIONS`; the mirror
plane is fitted once on the whole face without the iris points).

On rtface's canonical landmarks the person's own face shape is already replaced by the model's (symmetric)
template, so the value measures asymmetry of expression (plus landmark jitter, about 0.02-0.05 cm).

AU asymmetry: for every AU with both lateral columns ``AUxx_L_r`` and ``AUxx_R_r`` (the AU basis has L/R
columns for 12 AUs; the engine's AU stage publishes bilateral AUs only today), ``au_asym_AUxx = L - R`` in FACS
units (positive: stronger on the subject's left). Pure functions; safe from any thread.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from rtface.analysis.mesh import REPORT_REGIONS, mirror_pairs, report_region_means
from rtface.kernels.symmetry import mirror_distance_kernel

_LR = re.compile(r"^(AU\d+)_L_r$")


@lru_cache(maxsize=1)
def _face_pairs() -> np.ndarray:
    """(468,) int64 mirror partner of every mesh point without the iris (the kernel's index type)."""
    return np.ascontiguousarray(mirror_pairs()[:468], dtype=np.int64)


def point_asymmetry(points: np.ndarray) -> np.ndarray:
    """(478,) per-point distance from symmetry, cm, for one face (478, 3) in cm; NaN where points are NaN (the 10
    iris points are always NaN: they move with gaze)."""
    p = np.asarray(points, dtype=np.float64)
    out = np.full(p.shape[0], np.nan)
    face = p[:468]  # regions()["face"]: the mesh without the iris; mirror partners stay inside it
    if not np.isfinite(face).all():
        return out
    out[:468] = mirror_distance_kernel(np.ascontiguousarray(face), _face_pairs())
    return out


def region_asymmetry(points: np.ndarray) -> dict[str, float]:
    """{region: mean distance from symmetry, cm} over :data:`REPORT_REGIONS` for one face (478, 3) cm."""
    a = point_asymmetry(points)
    return dict(zip(REPORT_REGIONS, (report_region_means() @ a[:468]).tolist()))


def lateral_au_pairs(columns) -> list[tuple[str, str, str]]:
    """[(AU name, left column, right column)] for every ``AUxx_L_r`` with a matching ``AUxx_R_r``."""
    cols = set(columns)
    out = []
    for c in sorted(cols):
        m = _LR.match(c)
        if m and f"{m.group(1)}_R_r" in cols:
            out.append((m.group(1), c, f"{m.group(1)}_R_r"))
    return out
