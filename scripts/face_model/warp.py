"""Real photos made to show a FACS morph (validation-time, scripts/validate_aus.py): an image-space texture warp of a
real neutral photo by the morph's geometric field, read back through MediaPipe.

MediaPipe on untextured renders does not follow most lower-face and lid morphs (rtface's AU basis build: their
perceived render fields are collinear with AU12), so those columns were the morphs' geometry. On a real photo whose
skin is moved by the same geometry MediaPipe does follow, but only partly: measured on the 12 London neutral photos
at full weight, the perceived displacement is 0.06-0.65 of the applied one (cosine 0.13-0.84) depending on the AU.
What MediaPipe reports on a warp is what it reports for that motion on real skin, without wrinkles, bulges or
shading changes (a warp moves texture, it does not deform it like a muscle).

The warp: the morph's geometric field (canonical cm, :func:`build_face_model.geometric_fields`) is mapped to image
pixels by the least-squares affine map from the photo's pose-free shape (cm) to its landmarks (px); the landmark
displacements (iris 0) are interpolated linearly over the image (zero on a ring 1.35x the face oval and at the image
corners) and the photo is resampled with the inverse map (two fixed-point steps). Open-mouth and lid-closing morphs
cannot be made this way (a warp shows no mouth cavity and no lid covering the eye).
"""
from __future__ import annotations

import cv2
import numpy as np

from au_basis.postprocess import FACE_OVAL_IDS

IRIS = tuple(range(468, 478))
RING = 1.35  # zero-displacement ring, x the face oval's distance from the face centre


def warp_photo(img: np.ndarray, lm_px: np.ndarray, pf_cm: np.ndarray, d_cm: np.ndarray) -> np.ndarray:
    """``img`` (H, W, 3) with its landmarks ``lm_px`` (478, >=2) and pose-free shape ``pf_cm`` (478, 3), warped by
    the canonical displacement ``d_cm`` (478, 3) (module doc)."""
    from scipy.interpolate import LinearNDInterpolator

    x = np.c_[pf_cm[:468], np.ones(468)]
    a, *_ = np.linalg.lstsq(x, lm_px[:468, :2], rcond=None)  # px = [cm 1] a
    disp = np.asarray(d_cm, dtype=np.float64) @ a[:3]
    disp[list(IRIS)] = 0.0
    c = lm_px[:468, :2].mean(0)
    ring = c + (lm_px[list(FACE_OVAL_IDS), :2] - c) * RING
    h, w = img.shape[:2]
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64)
    interp = LinearNDInterpolator(np.r_[lm_px[:, :2], ring, corners],
                                  np.r_[disp, np.zeros((len(ring) + 4, 2))], fill_value=0.0)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    dd = interp(np.c_[gx.ravel(), gy.ravel()]).reshape(h, w, 2).astype(np.float32)
    mx, my = gx - dd[..., 0], gy - dd[..., 1]
    d2 = np.stack([cv2.remap(dd[..., k], mx, my, cv2.INTER_LINEAR) for k in range(2)], -1)
    return cv2.remap(img, gx - d2[..., 0], gy - d2[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
