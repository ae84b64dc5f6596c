"""Facial areas of interest (AOIs) from MediaPipe-478 landmarks, and per-sample labels from the hit matrix.

Left/right are the SUBJECT's (MediaPipe's convention): ``left_eye`` is the eye around landmarks 362-263 (iris
centre 473), which appears on the image's right side in an unmirrored camera image.

Two AOI shape sets (``AOIConfig.shape``):
- "pupil": Pupil Labs gaze-on-face style: circles (``eye_radius_px``, ``nose_radius_px``) on the iris centres and the
  nose tip (landmark 1), an ellipse on the mouth (major axis along the corners 61-291, minor axis from the outer-lip
  midline 0-17, both halves plus ``mouth_margin_px``), and "face" = the landmark bounding box.
- "mesh": polygons on landmark rings of the MediaPipe mesh (``RINGS``), each dilated by ``dilation_px`` (exact
  Minkowski offset, applied by the hit test as a boundary tolerance).
A sample hits an AOI when its gaze circle (``gaze_radius_px``; 0 = point) overlaps it (see rtface.kernels.hit_test).

Sizes (``AOIConfig.radius_mode``):
- "iod" (default): every size is a fraction of the face's inter-ocular distance (IOD: iris centre 468 to 473, 3D
  when landmarks carry z, so it shrinks less with yaw): ``eye_radius_iod``, ``nose_radius_iod``,
  ``mouth_margin_iod``, ``dilation_iod`` and the gaze circle ``gaze_radius_iod`` (0 = use the fixed
  ``gaze_radius_px``). The shapes keep their proportions on a face of any size; per-face sizes are folded into each
  AOI's margin, so one frame may hold faces of different sizes.
- "px": Pupil Labs-style fixed pixel sizes (the ``*_px`` fields; 30 px circles, 10 px mouth margin, 20 px gaze
  circle), kept for compatibility. On small faces they overlap: on the 150 x 194 px face of the sample video (IOD
  69 px) the nose circle covers the mouth centre (29 px below the nose tip).

Modes: "multi" (every AOI hit, joined with "|") or "exclusive" (first hit in ``priority``); no hit -> "off_face",
gaze outside the scene image -> "off_image". Everything here is pure; the stage calls it from its thread.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtface.errors import ConfigError
from rtface.kernels.hit_test import KIND_CIRCLE, KIND_ELLIPSE, KIND_POLYGON, hit_matrix_nb, hit_matrix_np

OFF_FACE, OFF_IMAGE = "off_face", "off_image"

# Landmark id rings (closed polygons, frontal-view simple) on MediaPipe's face mesh topology. Eyes, brows, outer lips
# and face oval follow the mesh's own contour edges; nose, forehead, cheeks and chin are rings chosen on the canonical
# mesh, left = mirror image of right (checked with the canonical model's x -> -x vertex map).
RINGS: dict[str, tuple[int, ...]] = {
    "left_eye": (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398),
    "right_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    "left_brow": (300, 293, 334, 296, 336, 285, 295, 282, 283, 276),
    "right_brow": (70, 63, 105, 66, 107, 55, 65, 52, 53, 46),
    "nose": (168, 417, 351, 412, 343, 437, 420, 360, 279, 358, 327, 326, 2, 97, 98, 129, 49, 131, 198, 217, 114,
             188, 122, 193),
    "mouth": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185),
    "forehead": (10, 338, 297, 332, 284, 251, 301, 300, 293, 334, 296, 336, 9, 107, 66, 105, 63, 70, 71, 21, 54,
                 103, 67, 109),
    "left_cheek": (454, 447, 345, 346, 347, 348, 349, 350, 343, 437, 420, 360, 279, 358, 327, 391, 322, 410, 287,
                   273, 422, 430, 394, 379, 365, 397, 288, 361, 323),
    "right_cheek": (234, 227, 116, 117, 118, 119, 120, 121, 114, 217, 198, 131, 49, 129, 98, 165, 92, 186, 57, 43,
                    202, 210, 169, 150, 136, 172, 58, 132, 93),
    "chin": (91, 181, 84, 17, 314, 405, 321, 406, 418, 262, 369, 400, 377, 152, 148, 176, 140, 32, 194, 182),
    "face": (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109),
}
MESH_AOIS = ("left_eye", "right_eye", "left_brow", "right_brow", "nose", "mouth", "forehead", "left_cheek",
             "right_cheek", "chin", "face")
PUPIL_AOIS = ("left_eye", "right_eye", "nose", "mouth", "face")
DEFAULT_PRIORITY = ("left_eye", "right_eye", "left_brow", "right_brow", "nose", "mouth", "left_cheek",
                    "right_cheek", "forehead", "chin", "face")
IRIS_CENTRE = {"left_eye": 473, "right_eye": 468}
NOSE_TIP, MOUTH_CORNERS, LIP_MIDLINE = 1, (61, 291), (0, 17)


RADIUS_MODES = ("iod", "px")


@dataclass(frozen=True)
class AOIConfig:
    shape: str = "pupil"  # "pupil" | "mesh"
    mode: str = "exclusive"  # "exclusive" | "multi"
    radius_mode: str = "iod"  # "iod" (fractions of inter-ocular distance) | "px" (fixed pixels, Pupil-style)
    gaze_radius_px: float = 20.0  # px mode (and iod mode when gaze_radius_iod == 0): gaze circle; 0 = point
    eye_radius_px: float = 30.0  # pupil shape, px mode
    nose_radius_px: float = 30.0  # pupil shape, px mode
    mouth_margin_px: float = 10.0  # pupil shape, px mode: added to both mouth-ellipse semi-axes
    dilation_px: float = 0.0  # mesh shape, px mode: offset of every polygon (negative = erosion)
    dilation_by_aoi: tuple[tuple[str, float], ...] = ()  # mesh: per-AOI override (px or IOD fraction, per mode)
    eye_radius_iod: float = 0.3  # iod mode: eye circles, fraction of IOD
    nose_radius_iod: float = 0.25  # iod mode: nose circle
    mouth_margin_iod: float = 0.07  # iod mode: added to both mouth-ellipse semi-axes
    dilation_iod: float = 0.0  # iod mode: mesh polygon offset
    gaze_radius_iod: float = 0.1  # iod mode: gaze circle (0 = fixed gaze_radius_px)
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    use_numba: bool = True

    def __post_init__(self) -> None:
        if self.shape not in ("pupil", "mesh"):
            raise ConfigError(f"gaze_aoi: aoi_shape '{self.shape}' must be 'pupil' or 'mesh'")
        if self.radius_mode not in RADIUS_MODES:
            raise ConfigError(f"gaze_aoi: radius_mode '{self.radius_mode}' must be 'iod' or 'px'")
        for f in ("gaze_radius_px", "eye_radius_px", "nose_radius_px", "eye_radius_iod", "nose_radius_iod",
                  "gaze_radius_iod"):
            if getattr(self, f) < 0:
                raise ConfigError(f"gaze_aoi: {f} must be >= 0, got {getattr(self, f)}")
        if self.mode not in ("exclusive", "multi"):
            raise ConfigError(f"gaze_aoi: mode '{self.mode}' must be 'exclusive' or 'multi'")
        unknown = [n for n in self.priority if n not in RINGS]
        if unknown:
            raise ConfigError(f"gaze_aoi: priority names unknown AOIs {unknown} (known: {', '.join(RINGS)})")

    @property
    def names(self) -> tuple[str, ...]:
        """AOI names in priority order (those of this shape set)."""
        pool = PUPIL_AOIS if self.shape == "pupil" else MESH_AOIS
        ordered = [n for n in self.priority if n in pool]
        return tuple(ordered + [n for n in pool if n not in ordered])


@dataclass
class PackedAOIs:
    """AOI geometry of all faces of one frame, in the hit-test kernel's packed layout (see hit_test)."""

    names: tuple[str, ...]
    face_ids: np.ndarray  # (F,) int64
    kind: np.ndarray  # (F, A) int8
    params: np.ndarray  # (F, A, 6) float64
    vstart: np.ndarray  # (F, A) int64
    vcount: np.ndarray  # (F, A) int64
    verts: np.ndarray  # (V, 2) float64
    gaze_radius_px: float = 0.0  # radius to pass to the kernel (0 when folded per face into the margins)
    face_gaze_radius_px: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (F,) effective gaze radius
    iod_px: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (F,) inter-ocular distance, px


def _mouth_ellipse(xy: np.ndarray, margin: float) -> tuple[float, float, float, float, float]:
    c0, c1 = xy[MOUTH_CORNERS[0]], xy[MOUTH_CORNERS[1]]
    top, bottom = xy[LIP_MIDLINE[0]], xy[LIP_MIDLINE[1]]
    axis = c1 - c0
    half_w = 0.5 * float(np.hypot(*axis))
    theta = float(np.arctan2(axis[1], axis[0]))
    normal = np.array([-np.sin(theta), np.cos(theta)])
    mid_c, mid_l = 0.5 * (c0 + c1), 0.5 * (top + bottom)
    centre = mid_c + normal * float(np.dot(mid_l - mid_c, normal))
    half_h = 0.5 * abs(float(np.dot(bottom - top, normal)))
    return float(centre[0]), float(centre[1]), half_w + margin, half_h + margin, theta


def _eye_centre(xy: np.ndarray, name: str) -> np.ndarray:
    iris = IRIS_CENTRE[name]
    return xy[iris] if xy.shape[0] > iris else xy[list(RINGS[name])].mean(axis=0)


def face_iod_px(landmarks: np.ndarray) -> float:
    """Inter-ocular distance (px) of one face: iris centres 468-473 (eye-ring centroids for 468-point meshes),
    using x, y and, when present, z (MediaPipe depth in px units) so that it shrinks less when the head turns."""
    lm = np.asarray(landmarks, dtype=np.float64)
    d = lm.shape[1] if lm.ndim == 2 else 2
    pts = lm[:, :min(d, 3)]
    left = pts[IRIS_CENTRE["left_eye"]] if pts.shape[0] > 473 else pts[list(RINGS["left_eye"])].mean(axis=0)
    right = pts[IRIS_CENTRE["right_eye"]] if pts.shape[0] > 473 else pts[list(RINGS["right_eye"])].mean(axis=0)
    return float(np.linalg.norm(left - right))


def _sizes(cfg: AOIConfig, iod: float) -> tuple[float, float, float, float, float, dict[str, float]]:
    """(eye r, nose r, mouth margin, mesh dilation, gaze r, per-AOI dilation) in px for a face of this IOD."""
    if cfg.radius_mode == "px":
        return (cfg.eye_radius_px, cfg.nose_radius_px, cfg.mouth_margin_px, cfg.dilation_px, cfg.gaze_radius_px,
                {k: float(v) for k, v in cfg.dilation_by_aoi})
    gaze = cfg.gaze_radius_iod * iod if cfg.gaze_radius_iod > 0 else cfg.gaze_radius_px
    return (cfg.eye_radius_iod * iod, cfg.nose_radius_iod * iod, cfg.mouth_margin_iod * iod, cfg.dilation_iod * iod,
            gaze, {k: float(v) * iod for k, v in cfg.dilation_by_aoi})


def build_geometry(faces: list[tuple[int, np.ndarray]], cfg: AOIConfig) -> PackedAOIs:
    """Pack the AOIs of every face. ``faces``: (face_id, landmarks_px (478|468, >=2) float) per face.

    px mode: the kernel gets ``cfg.gaze_radius_px``. iod mode: each face's gaze radius is added to the margin of
    each of its AOIs (exact: the kernel's tolerance is margin + gaze radius) and the kernel gets 0.
    """
    names = cfg.names
    nf, na = len(faces), len(names)
    kind = np.zeros((nf, na), dtype=np.int8)
    params = np.zeros((nf, na, 6), dtype=np.float64)
    vstart = np.zeros((nf, na), dtype=np.int64)
    vcount = np.zeros((nf, na), dtype=np.int64)
    iods = np.zeros(nf)
    gaze_r = np.zeros(nf)
    verts: list[np.ndarray] = []
    nv = 0
    per_face = cfg.radius_mode == "iod"
    for f, (_, lm) in enumerate(faces):
        xy = np.asarray(lm, dtype=np.float64)[:, :2]
        iods[f] = face_iod_px(lm)
        eye_r, nose_r, mouth_m, dil_all, g, dil = _sizes(cfg, iods[f])
        gaze_r[f] = g
        fold = g if per_face else 0.0  # gaze radius carried by the AOI margin
        for a, name in enumerate(names):
            if cfg.shape == "pupil" and name != "face":
                if name in IRIS_CENTRE or name == "nose":
                    c = _eye_centre(xy, name) if name in IRIS_CENTRE else xy[NOSE_TIP]
                    kind[f, a] = KIND_CIRCLE
                    params[f, a, :3] = (c[0], c[1], eye_r if name in IRIS_CENTRE else nose_r)
                else:  # mouth
                    kind[f, a] = KIND_ELLIPSE
                    params[f, a, :5] = _mouth_ellipse(xy, mouth_m)
                params[f, a, 5] = fold
                continue
            if cfg.shape == "pupil":  # face = landmark bounding box
                x0, y0 = xy[:468].min(axis=0)
                x1, y1 = xy[:468].max(axis=0)
                poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
                margin = 0.0
            else:
                poly = xy[list(RINGS[name])]
                margin = float(dil.get(name, dil_all))
            kind[f, a] = KIND_POLYGON
            params[f, a, 5] = margin + fold
            vstart[f, a], vcount[f, a] = nv, poly.shape[0]
            verts.append(poly)
            nv += poly.shape[0]
    packed_verts = np.concatenate(verts, axis=0) if verts else np.zeros((0, 2))
    face_ids = np.array([fid for fid, _ in faces], dtype=np.int64)
    kernel_r = 0.0 if per_face else float(cfg.gaze_radius_px)
    if not per_face:
        gaze_r[:] = kernel_r
    return PackedAOIs(names, face_ids, kind, params, vstart, vcount, np.ascontiguousarray(packed_verts),
                      kernel_r, gaze_r, iods)


def hit_matrix(gx: np.ndarray, gy: np.ndarray, geo: PackedAOIs, gaze_radius_px: float | None = None,
               use_numba: bool = True) -> np.ndarray:
    """(N, F, A) bool: sample n's gaze circle overlaps AOI a of face f.

    ``gaze_radius_px`` None = the radius ``build_geometry`` chose (``geo.gaze_radius_px``).
    """
    fn = hit_matrix_nb if use_numba else hit_matrix_np
    r = geo.gaze_radius_px if gaze_radius_px is None else gaze_radius_px
    return fn(np.ascontiguousarray(gx, dtype=np.float64), np.ascontiguousarray(gy, dtype=np.float64), geo.kind,
              geo.params, geo.vstart, geo.vcount, geo.verts, float(r))


def label_hits(hits: np.ndarray, geo: PackedAOIs, mode: str, off_image: np.ndarray | None = None
               ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Per-sample (face_id (N,) int64 -1 = none, label strings, exclusive AOI index (N,) int64 -1 = none).

    The chosen face is the one whose best hit comes first in the AOI (priority) order; ties -> first face.
    "exclusive": the label is that AOI's name. "multi": all AOIs hit on the chosen face joined with "|".
    """
    n, nf, na = hits.shape
    names = geo.names
    big = na  # rank of "no hit"
    if nf:
        first = np.where(hits.any(axis=2), hits.argmax(axis=2), big)  # (N, F) best AOI rank per face
        best_face = first.argmin(axis=1)
        best_rank = first[np.arange(n), best_face]
    else:
        best_face = np.zeros(n, dtype=np.int64)
        best_rank = np.full(n, big)
    hit_any = best_rank < big
    face_id = np.where(hit_any, geo.face_ids[best_face] if nf else -1, -1).astype(np.int64)
    aoi_idx = np.where(hit_any, best_rank, -1).astype(np.int64)
    off = np.zeros(n, dtype=bool) if off_image is None else np.asarray(off_image, dtype=bool)
    face_id[off] = -1
    aoi_idx[off] = -1
    labels: list[str] = []
    for i in range(n):
        if off[i]:
            labels.append(OFF_IMAGE)
        elif not hit_any[i]:
            labels.append(OFF_FACE)
        elif mode == "exclusive":
            labels.append(names[aoi_idx[i]])
        else:
            row = hits[i, best_face[i]]
            labels.append("|".join(names[a] for a in range(na) if row[a]))
    return face_id, labels, aoi_idx


@dataclass
class FrameGaze:
    """Gaze results of one frame (what the stage stores in ``FrameResult.extras['gaze']``)."""

    t_ns: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    face_id: np.ndarray
    aoi: list[str]
    hits: np.ndarray  # (N, F, A) bool
    names: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        return {"t_ns": self.t_ns, "x_px": self.x_px, "y_px": self.y_px, "face_id": self.face_id,
                "aoi": self.aoi, "aoi_names": list(self.names)}


def map_frame(t_ns: np.ndarray, x_px: np.ndarray, y_px: np.ndarray, faces: list[tuple[int, np.ndarray]],
              cfg: AOIConfig, image_size: tuple[int, int] | None = None) -> FrameGaze:
    """Hit-test and label the gaze samples of one frame. ``image_size`` (w, h) enables the off_image label."""
    x = np.asarray(x_px, dtype=np.float64)
    y = np.asarray(y_px, dtype=np.float64)
    geo = build_geometry(faces, cfg)
    hits = hit_matrix(x, y, geo, None, cfg.use_numba)
    off = None
    if image_size is not None:
        w, h = image_size
        off = ~((x >= 0) & (x < w) & (y >= 0) & (y < h))
    face_id, labels, _ = label_hits(hits, geo, cfg.mode, off)
    return FrameGaze(np.asarray(t_ns, dtype=np.int64), x, y, face_id, labels, hits, geo.names)
