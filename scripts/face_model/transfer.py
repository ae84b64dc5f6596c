"""Transfer the ICT identity modes onto the MakeHuman hm08 head (build-time only), so FACSHuman's FACS AU targets
can be rendered on many face shapes.

Correspondence: both neutral heads are rendered frontally and detected with MediaPipe; every landmark that lands on
skin is pinned to the surface point under it (z-buffer triangle + barycentrics). The ICT head is mapped into hm08
space by a weighted similarity of those pinned points followed by a thin-plate-spline (3-D, kernel r) warp through
them. Every hm08 skin vertex then takes the identity displacement of the nearest warped ICT face vertices (inverse
squared distance over 8 neighbours), scaled by the similarity (cm -> dm and head size); vertices far from the ICT
face area fade out over 0.3 dm; the eyes move rigidly with the displacement at their centres and the teeth/tongue
with the nearest skin. Identity fields are smooth, so nearest-vertex sampling is adequate.
"""
from __future__ import annotations

import numpy as np

from au_basis.detect import Detector
from au_basis.hm08 import Hm08Head
from au_basis.render import MAT_EYE, MAT_SKIN

from .heads import N_FACE, IdentityModel, _idw_weights
from .scene import Scene, render_scene


def pinned_surface(head: Hm08Head, scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """(478, 3) mesh-space surface points under the detected landmarks of the neutral head, valid mask (478,)."""
    from .scene import place
    img, tid, bar = render_scene(head, head.base, scene, return_ids=True)
    det = Detector()
    try:
        lm = det.landmarks_px(img)
    finally:
        det.close()
    if lm is None:
        raise RuntimeError("MediaPipe found no face in the frontal neutral render")
    size = tid.shape[0]
    px = np.clip(np.round(lm[:, 0] - 0.5).astype(int), 0, size - 1)
    py = np.clip(np.round(lm[:, 1] - 0.5).astype(int), 0, size - 1)
    t = tid[py, px]
    valid = t >= 0
    valid[valid] = head.tri_mat[t[valid]] == MAT_SKIN
    valid[468:] = False
    bw = bar[py, px]
    tv = head.tris[np.where(valid, t, 0)]
    surf = np.einsum("mk,mkd->md", bw, head.base[tv])
    del place
    return surf, valid


def _tps_fit(src: np.ndarray, dst: np.ndarray, reg: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    n = len(src)
    k = np.linalg.norm(src[:, None] - src[None], axis=2)
    p = np.c_[np.ones(n), src]
    a = np.zeros((n + 4, n + 4))
    a[:n, :n] = k + reg * np.eye(n)
    a[:n, n:] = p
    a[n:, :n] = p.T
    rhs = np.zeros((n + 4, 3))
    rhs[:n] = dst
    sol = np.linalg.solve(a, rhs)
    return sol[:n], sol[n:]


def _tps_apply(src: np.ndarray, w: np.ndarray, aff: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.c_[np.ones(len(x)), x] @ aff
    for i in range(0, len(x), 4096):
        k = np.linalg.norm(x[i:i + 4096, None] - src[None], axis=2)
        out[i:i + 4096] += k @ w
    return out


def transfer_identity(ict: Hm08Head, ident: IdentityModel, hm: Hm08Head) -> IdentityModel:
    """ICT identity modes as displacement fields on every hm08 vertex (hm08 units, dm)."""
    from rtface.kernels.procrustes import weighted_similarity_ref
    s_ict, v_ict = pinned_surface(ict, Scene(distance=ict.cam_distance, focal_px=1000.0))
    s_hm, v_hm = pinned_surface(hm, Scene(distance=hm.cam_distance, focal_px=1000.0))
    ok = v_ict & v_hm
    sc, rot, t = weighted_similarity_ref(s_ict[ok], s_hm[ok], np.ones(int(ok.sum())))
    src = s_ict[ok] * sc @ rot.T + t
    w, aff = _tps_fit(src, s_hm[ok])
    face_ict = ict.base[:N_FACE] * sc @ rot.T + t
    warped = _tps_apply(src, w, aff, face_ict)
    skin_v = np.unique(hm.tris[hm.tri_mat == MAT_SKIN])
    idx, wt = _idw_weights(warped, hm.base[skin_v], k=8)
    from scipy.spatial import cKDTree
    dist = cKDTree(warped).query(hm.base[skin_v])[0]
    fade = np.clip(1.0 - (dist - 0.05) / 0.3, 0.0, 1.0)
    modes_ict = ident.modes[:, :N_FACE].astype(np.float64) * sc  # cm -> hm08 units, size-matched
    m = modes_ict.shape[0]
    out = np.zeros((m, len(hm.base), 3))
    out[:, skin_v] = np.einsum("vk,mvkd->mvd", wt, modes_ict[:, idx] @ rot.T) * fade[None, :, None]
    eye_v = np.unique(hm.tris[hm.tri_mat == MAT_EYE])
    other = np.setdiff1d(np.unique(hm.tris), np.r_[skin_v, eye_v])
    if len(other):
        oi, ow = _idw_weights(hm.base[skin_v], hm.base[other], k=16)
        out[:, other] = np.einsum("vk,mvkd->mvd", ow, out[:, skin_v][:, oi])
    for c in hm.paint.eye_centres:
        mine = eye_v[np.linalg.norm(hm.base[eye_v] - c, axis=1) < 2.0 * hm.paint.eye_radius]
        ci, cw = _idw_weights(hm.base[skin_v], c[None], k=32)
        out[:, mine] = np.einsum("k,mkd->md", cw[0], out[:, skin_v][:, ci[0]])[:, None, :]
    return IdentityModel(out.astype(np.float32))
