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


@dataclass(frozen=True)
class AOIConfig:
    shape: str = "pupil"  # "pupil" | "mesh"
    mode: str = "exclusive"  # "exclusive" | "multi"
    gaze_radius_px: float = 20.0  # gaze circle radius; 0 = the gaze point must be inside
    eye_radius_px: float = 30.0  # pupil shape
    nose_radius_px: float = 30.0  # pupil shape
    mouth_margin_px: float = 10.0  # pupil shape: added to both mouth-ellipse semi-axes
    dilation_px: float = 0.0  # mesh shape: offset of every polygon (negative = erosion)
    dilation_by_aoi: tuple[tuple[str, float], ...] = ()  # mesh shape: per-AOI override, e.g. (("left_eye", 6.0),)
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    use_numba: bool = True

    def __post_init__(self) -> None:
        if self.shape not in ("pupil", "mesh"):
            raise ConfigError(f"gaze_aoi: aoi_shape '{self.shape}' must be 'pupil' or 'mesh'")
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


def build_geometry(faces: list[tuple[int, np.ndarray]], cfg: AOIConfig) -> PackedAOIs:
    """Pack the AOIs of every face. ``faces``: (face_id, landmarks_px (478|468, >=2) float) per face."""
    names = cfg.names
    nf, na = len(faces), len(names)
    kind = np.zeros((nf, na), dtype=np.int8)
    params = np.zeros((nf, na, 6), dtype=np.float64)
    vstart = np.zeros((nf, na), dtype=np.int64)
    vcount = np.zeros((nf, na), dtype=np.int64)
    verts: list[np.ndarray] = []
    nv = 0
    dil = dict(cfg.dilation_by_aoi)
    for f, (_, lm) in enumerate(faces):
        xy = np.asarray(lm, dtype=np.float64)[:, :2]
        for a, name in enumerate(names):
            if cfg.shape == "pupil" and name != "face":
                if name in IRIS_CENTRE or name == "nose":
                    c = _eye_centre(xy, name) if name in IRIS_CENTRE else xy[NOSE_TIP]
                    r = cfg.eye_radius_px if name in IRIS_CENTRE else cfg.nose_radius_px
                    kind[f, a] = KIND_CIRCLE
                    params[f, a, :3] = (c[0], c[1], r)
                else:  # mouth
                    kind[f, a] = KIND_ELLIPSE
                    params[f, a, :5] = _mouth_ellipse(xy, cfg.mouth_margin_px)
                continue
            if cfg.shape == "pupil":  # face = landmark bounding box
                x0, y0 = xy[:468].min(axis=0)
                x1, y1 = xy[:468].max(axis=0)
                poly = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
                margin = 0.0
            else:
                poly = xy[list(RINGS[name])]
                margin = float(dil.get(name, cfg.dilation_px))
            kind[f, a] = KIND_POLYGON
            params[f, a, 5] = margin
            vstart[f, a], vcount[f, a] = nv, poly.shape[0]
            verts.append(poly)
            nv += poly.shape[0]
    packed_verts = np.concatenate(verts, axis=0) if verts else np.zeros((0, 2))
    face_ids = np.array([fid for fid, _ in faces], dtype=np.int64)
    return PackedAOIs(names, face_ids, kind, params, vstart, vcount, np.ascontiguousarray(packed_verts))


def hit_matrix(gx: np.ndarray, gy: np.ndarray, geo: PackedAOIs, gaze_radius_px: float,
               use_numba: bool = True) -> np.ndarray:
    """(N, F, A) bool: sample n's gaze circle overlaps AOI a of face f."""
    fn = hit_matrix_nb if use_numba else hit_matrix_np
    return fn(np.ascontiguousarray(gx, dtype=np.float64), np.ascontiguousarray(gy, dtype=np.float64), geo.kind,
              geo.params, geo.vstart, geo.vcount, geo.verts, float(gaze_radius_px))


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
    hits = hit_matrix(x, y, geo, cfg.gaze_radius_px, cfg.use_numba)
    off = None
    if image_size is not None:
        w, h = image_size
        off = ~((x >= 0) & (x < w) & (y >= 0) & (y < h))
    face_id, labels, _ = label_hits(hits, geo, cfg.mode, off)
    return FrameGaze(np.asarray(t_ns, dtype=np.int64), x, y, face_id, labels, hits, geo.names)
