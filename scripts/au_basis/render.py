"""Plain NumPy z-buffer renderer for the MakeHuman hm08 head (build-time only, single thread).

Units: mesh in decimetres (MakeHuman), camera in the same units; images are RGB uint8.
Albedo is procedural: a function of each surface point's *neutral* (reference) position, so paint
(brows, lips, iris) moves with the deformation like a texture would.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MAT_SKIN, MAT_EYE, MAT_TEETH, MAT_TONGUE, MAT_CAVITY = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking down world -z at a head facing +z. Pixels, decimetres, degrees."""
    size: int = 640
    focal: float = 1000.0
    distance: float = 5.0           # camera-to-head-centre distance (dm)
    target: tuple[float, float, float] = (0.0, 7.05, 1.0)   # look-at point (dm, world)
    yaw_deg: float = 0.0            # head yaw about the vertical axis through `target`
    pitch_deg: float = 0.0


@dataclass(frozen=True)
class Paint:
    """Procedural albedo parameters in neutral hm08 coordinates (dm)."""
    eye_centres: np.ndarray          # (2,3)
    eye_radius: float
    brow_x: tuple[float, float] = (0.10, 0.56)
    brow_y0: float = 7.445
    brow_arch: float = 0.05
    brow_half: tuple[float, float] = (0.030, 0.016)
    lip_y: float = 6.622
    lip_halfwidth: float = 0.27
    lip_up: float = 0.075
    lip_down: float = 0.085
    lip_zmin: float = 1.30
    brow_zmin: float = 1.0


SKIN = np.array([0.80, 0.62, 0.52])
BROW = np.array([0.20, 0.14, 0.10])
LIP = np.array([0.62, 0.33, 0.33])
SCLERA = np.array([0.92, 0.90, 0.88])
IRIS = np.array([0.30, 0.20, 0.12])
PUPIL = np.array([0.03, 0.03, 0.03])
TEETH = np.array([0.90, 0.88, 0.80])
TONGUE = np.array([0.55, 0.25, 0.25])
CAVITY = np.array([0.10, 0.04, 0.04])
BACKGROUND = np.array([0.55, 0.57, 0.60])


def _rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    y, p = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return ry @ rx


def world_to_camera(v: np.ndarray, cam: Camera) -> np.ndarray:
    """World (x right = subject's left, y up, z toward camera) -> OpenCV camera (x right, y down, z depth)."""
    t = np.asarray(cam.target)
    p = (v - t) @ _rotation(cam.yaw_deg, cam.pitch_deg).T
    return np.stack([p[:, 0], -p[:, 1], cam.distance - p[:, 2]], axis=1)


def vertex_normals(v: np.ndarray, tris: np.ndarray) -> np.ndarray:
    fn = np.cross(v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, tris[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def albedo(ref: np.ndarray, mat: np.ndarray, paint: Paint) -> np.ndarray:
    """Per-sample RGB albedo from neutral position `ref` (M,3) and material id (M,)."""
    out = np.tile(SKIN, (len(ref), 1))
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    ax = np.abs(x)
    # brows: an arched band above each eye, thinning laterally
    b0, b1 = paint.brow_x
    s = np.clip((ax - b0) / (b1 - b0), 0.0, 1.0)
    yc = paint.brow_y0 + paint.brow_arch * np.sin(np.pi * s * 0.8)
    half = paint.brow_half[0] + (paint.brow_half[1] - paint.brow_half[0]) * s
    inb = (ax >= b0) & (ax <= b1) & (np.abs(y - yc) < half) & (z > paint.brow_zmin)
    soft = np.clip((half - np.abs(y - yc)) / (0.5 * half), 0, 1)[:, None]
    out = np.where(inb[:, None], soft * BROW + (1 - soft) * SKIN, out)
    # lips: vermilion above and below the lip line, tapering to the corners
    u = np.clip(1.0 - (x / paint.lip_halfwidth) ** 2, 0.0, 1.0) ** 0.6
    dy = y - paint.lip_y
    inl = (((dy >= 0) & (dy < paint.lip_up * u)) | ((dy < 0) & (-dy < paint.lip_down * u))) & (z > paint.lip_zmin)
    out = np.where(inl[:, None], LIP, out)
    # eyes: sclera / iris / pupil by angle from the eyeball's forward axis
    eye = mat == MAT_EYE
    if eye.any():
        c = np.where((x[eye] > 0)[:, None], paint.eye_centres[0], paint.eye_centres[1])
        d = ref[eye] - c
        cosang = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-9)
        col = np.where((cosang > np.cos(np.deg2rad(12)))[:, None], PUPIL,
                       np.where((cosang > np.cos(np.deg2rad(30)))[:, None], IRIS, SCLERA))
        out[eye] = col
    out[mat == MAT_TEETH] = TEETH
    out[mat == MAT_TONGUE] = TONGUE
    out[mat == MAT_CAVITY] = CAVITY
    return out


def render(verts: np.ndarray, ref: np.ndarray, tris: np.ndarray, tri_mat: np.ndarray, two_sided: np.ndarray,
           paint: Paint, cam: Camera, light: np.ndarray, supersample: int = 2,
           return_ids: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render deformed `verts` (N,3 dm) -> RGB uint8 (size,size,3).

    `two_sided` (T,) marks triangles whose back faces are drawn (as dark mouth cavity); all other
    back faces are culled. With return_ids, also returns per-pixel (at output resolution, nearest
    sample) triangle id (-1 = background, -2 = back face) and barycentrics (H,W,3).
    """
    ss = supersample
    size = cam.size * ss
    f = cam.focal * ss
    pc = world_to_camera(verts, cam)
    uv = f * pc[:, :2] / pc[:, 2:3] + size / 2.0 - 0.5
    invz = 1.0 / pc[:, 2]
    a, b, c = uv[tris[:, 0]], uv[tris[:, 1]], uv[tris[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    back = area > 0          # image y is down: counter-clockwise in world appears clockwise
    keep = (np.abs(area) > 1e-9) & (~back | two_sided)
    ti = np.nonzero(keep)[0]
    a, b, c, area = a[ti], b[ti], c[ti], area[ti]
    tri_uv = np.stack([a, b, c], 1)
    lo = np.clip(np.ceil(tri_uv.min(1)), 0, size - 1).astype(np.int64)
    hi = np.clip(np.floor(tri_uv.max(1)), 0, size - 1).astype(np.int64)
    nx = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0)
    ny = np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    cnt = nx * ny
    tot = int(cnt.sum())
    k = np.repeat(np.arange(len(ti)), cnt)
    off = np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    px = lo[k, 0] + off % nx[k]
    py = lo[k, 1] + off // nx[k]
    ak, bk, ck = a[k], b[k], c[k]
    w0 = ((bk[:, 0] - px) * (ck[:, 1] - py) - (bk[:, 1] - py) * (ck[:, 0] - px)) / area[k]
    w1 = ((ck[:, 0] - px) * (ak[:, 1] - py) - (ck[:, 1] - py) * (ak[:, 0] - px)) / area[k]
    w2 = 1.0 - w0 - w1
    ins = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
    k, px, py, w0, w1, w2 = k[ins], px[ins], py[ins], w0[ins], w1[ins], w2[ins]
    t = ti[k]
    iz = w0 * invz[tris[t, 0]] + w1 * invz[tris[t, 1]] + w2 * invz[tris[t, 2]]
    order = np.argsort(iz, kind="stable")          # far first; nearest written last wins
    pix = py * size + px
    buf = np.full(size * size, -1, np.int64)
    buf[pix[order]] = order
    hit = buf >= 0
    s = buf[hit]
    ts = t[s]
    bw = np.stack([w0[s], w1[s], w2[s]], 1)
    tv = tris[ts]
    refp = np.einsum("mk,mkd->md", bw, ref[tv])
    nrm = vertex_normals(verts, tris)
    n = np.einsum("mk,mkd->md", bw, nrm[tv])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    rot = _rotation(cam.yaw_deg, cam.pitch_deg)
    n = n @ rot.T                                   # world normals in the rotated head frame
    l = np.asarray(light, float)
    l = l / np.linalg.norm(l)
    shade = 0.35 + 0.65 * np.clip(n @ l, 0.0, 1.0)
    col = albedo(refp, tri_mat[ts], paint) * shade[:, None]
    isback = back[ts]
    col[isback] = CAVITY
    img = np.tile(BACKGROUND, (size * size, 1))
    img[hit] = col
    img = (np.clip(img, 0, 1) * 255.0).reshape(size, size, 3).astype(np.float32)
    if ss > 1:
        img = cv2.resize(img, (cam.size, cam.size), interpolation=cv2.INTER_AREA)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if not return_ids:
        return out
    tid = np.full(size * size, -1, np.int64)
    tid[hit] = np.where(isback, -2, ts)          # -2 = back face (mouth cavity)
    bar = np.zeros((size * size, 3))
    bar[hit] = bw
    # sample the centre sub-pixel of each output pixel
    sel = (np.arange(cam.size) * ss + ss // 2)
    tid = tid.reshape(size, size)[np.ix_(sel, sel)]
    bar = bar.reshape(size, size, 3)[np.ix_(sel, sel)]
    return out, tid, bar
