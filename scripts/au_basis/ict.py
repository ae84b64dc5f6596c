"""Load the ICT-FaceKit head (MIT) + its ARKit-named expression deltas for rendering (cm; x = subject's left,
y up, z toward the viewer). Used for the cross-source check and (optionally) AU06. Build-time only."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .hm08 import Hm08Head, SourceMissing
from .render import MAT_CAVITY, MAT_EYE, MAT_SKIN, MAT_TEETH, MAT_TONGUE, Paint

# vertex ranges from ICT-FaceKit's README (geometry table)
RANGES = {"skin": (0, 11247), "socket": (11248, 13293), "eye_socket": (13294, 14061), "gums": (14062, 17038),
          "teeth": (17039, 21450), "eyes": (21451, 24590)}
MATS = {"skin": MAT_SKIN, "socket": MAT_CAVITY, "eye_socket": MAT_CAVITY, "gums": MAT_TONGUE,
        "teeth": MAT_TEETH, "eyes": MAT_EYE}
# Multi-PIE 68-point landmark vertex ids (ICT README)
LM68 = [1225, 1888, 1052, 367, 1719, 1722, 2199, 1447, 966, 3661, 4390, 3927, 3924, 2608, 3272, 4088, 3443, 268,
        493, 1914, 2044, 1401, 3615, 4240, 4114, 2734, 2509, 978, 4527, 4942, 4857, 1140, 2075, 1147, 4269, 3360,
        1507, 1542, 1537, 1528, 1518, 1511, 3742, 3751, 3756, 3721, 3725, 3732, 5708, 5695, 2081, 0, 4275, 6200,
        6213, 6346, 6461, 5518, 5957, 5841, 5702, 5711, 5533, 6216, 6207, 6470, 5517, 5966]


def _sphere_centre(p: np.ndarray) -> np.ndarray:
    a = np.c_[2 * p, np.ones(len(p))]
    sol = np.linalg.lstsq(a, (p ** 2).sum(1), rcond=None)[0]
    return sol[:3]


def load_ict(ict_dir: Path) -> Hm08Head:
    npz = ict_dir / "ict_expression_deltas.npz"
    if not npz.is_file():
        raise SourceMissing(f"missing source file {npz}")
    d = np.load(npz, allow_pickle=False)
    base = d["neutral"].astype(np.float64)
    tris = d["triangles"].astype(np.int64)
    names = [str(n) for n in d["names"]]
    deltas = d["deltas"].astype(np.float32)
    # bilateral sums of the _L/_R shapes, named without the suffix
    extra_n, extra_d = [], []
    for n in names:
        if n.endswith("_L") and n[:-2] + "_R" in names:
            extra_n.append(n[:-2])
            extra_d.append(deltas[names.index(n)] + deltas[names.index(n[:-2] + "_R")])
    names += extra_n
    deltas = np.concatenate([deltas, np.stack(extra_d)])
    vmat = np.full(len(base), -1)
    for k, (a, b) in RANGES.items():
        vmat[a:b + 1] = MATS[k]
    keep = (vmat[tris] >= 0).all(1)
    tris = tris[keep]
    tri_mat = vmat[tris[:, 0]]
    lm = base[LM68]
    brows = lm[17:27]
    ax = np.abs(brows[:, 0])
    inner_y = brows[np.argmin(ax), 1]
    lip_y = lm[60:68, 1].mean()
    centres = [_sphere_centre(base[21451:22221]), _sphere_centre(base[23021:23791])]
    centres.sort(key=lambda c: -c[0])
    paint = Paint(eye_centres=np.array(centres), eye_radius=1.2, brow_x=(float(ax.min()) - 0.2, float(ax.max())),
                  brow_y0=float(inner_y), brow_arch=float(brows[:, 1].max() - inner_y), brow_half=(0.30, 0.16),
                  lip_y=float(lip_y), lip_halfwidth=float(abs(lm[54, 0] - lm[48, 0]) / 2),
                  lip_up=float(lm[51, 1] - lip_y), lip_down=float(lip_y - lm[57, 1]),
                  lip_zmin=float(lm[48, 2] - 1.0), brow_zmin=float(lm[39, 2] - 1.0))
    two = np.zeros(len(tris), bool)
    face_c = lm[27:36].mean(0)
    return Hm08Head(base=base, names=names, deltas=deltas, tris=tris, tri_mat=tri_mat, two_sided=two, paint=paint,
                    cam_distance=50.0, cam_target=(0.0, float(face_c[1]), float(face_c[2] - 6.0)))
