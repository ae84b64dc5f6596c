"""AOI geometry on MediaPipe's canonical face (the mesh the landmark ids refer to): rings, regions, shapes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rtface.gaze.aoi import MESH_AOIS, RINGS, AOIConfig, build_geometry, hit_matrix, map_frame

OBJ = Path(__file__).resolve().parents[2] / "rtface" / "data" / "mediapipe" / "face_model_with_iris.obj"


@pytest.fixture(scope="module")
def canon_px() -> np.ndarray:
    """The 478-vertex canonical model seen frontally as a 640x480 image: 15 px per cm, y down."""
    v = np.array([[float(t) for t in ln.split()[1:4]] for ln in OBJ.read_text().splitlines() if ln.startswith("v ")])
    assert v.shape == (478, 3)
    return np.c_[v[:, 0] * 15 + 320, -v[:, 1] * 15 + 240, v[:, 2] * 15]


def _segments_cross(p1, p2, p3, p4) -> bool:
    d = lambda a, b, c: (c[0] - a[0]) * (b[1] - a[1]) - (c[1] - a[1]) * (b[0] - a[0])  # noqa: E731
    d1, d2, d3, d4 = d(p3, p4, p1), d(p3, p4, p2), d(p1, p2, p3), d(p1, p2, p4)
    return (d1 * d2 < 0) and (d3 * d4 < 0)


@pytest.mark.parametrize("name", list(RINGS))
def test_rings_are_simple_polygons(canon_px, name):
    ring = RINGS[name]
    assert len(set(ring)) == len(ring) and max(ring) < 468
    P = canon_px[list(ring), :2]
    n = len(P)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            assert not _segments_cross(P[i], P[(i + 1) % n], P[j], P[(j + 1) % n]), (name, i, j)


def test_left_right_rings_mirror(canon_px):
    x = canon_px[:, 0] - 320
    for side in ("eye", "brow", "cheek"):
        left, right = canon_px[list(RINGS[f"left_{side}"]), :2], canon_px[list(RINGS[f"right_{side}"]), :2]
        assert left[:, 0].mean() > 320 > right[:, 0].mean()  # subject's left appears on the image right
        assert np.isclose(x[list(RINGS[f"left_{side}"])].mean(), -x[list(RINGS[f"right_{side}"])].mean(), atol=1e-6)


PROBES = {  # landmark (or midpoint) -> the mesh AOI it must fall in
    "left_eye": (473,), "right_eye": (468,), "nose": (1,), "mouth": (13, 14), "forehead": (151,),
    "chin": (199,), "left_cheek": (280,), "right_cheek": (50,), "left_brow": (334, 282), "right_brow": (105, 52),
}


def test_mesh_regions_contain_their_landmarks(canon_px):
    cfg = AOIConfig(shape="mesh", mode="exclusive", radius_mode="px", gaze_radius_px=0.0)
    pts = np.array([canon_px[list(ids), :2].mean(axis=0) for ids in PROBES.values()])
    fg = map_frame(np.arange(len(pts)), pts[:, 0], pts[:, 1], [(3, canon_px)], cfg, (640, 480))
    assert fg.aoi == list(PROBES)
    assert fg.face_id.tolist() == [3] * len(PROBES)
    assert fg.hits[:, 0, cfg.names.index("face")].all()


def test_mesh_regions_barely_overlap(canon_px):
    cfg = AOIConfig(shape="mesh", radius_mode="px", gaze_radius_px=0.0)
    geo = build_geometry([(0, canon_px)], cfg)
    gx, gy = np.meshgrid(np.arange(150, 490, 2.0), np.arange(60, 420, 2.0))
    hits = hit_matrix(gx.ravel(), gy.ravel(), geo, 0.0)[:, 0, :]
    parts = hits[:, [cfg.names.index(n) for n in MESH_AOIS if n != "face"]]
    in_face = hits[:, cfg.names.index("face")]
    assert (parts.sum(axis=1) > 1).sum() <= 0.01 * in_face.sum()  # shared borders only
    assert (parts.any(axis=1) & ~in_face).sum() <= 0.01 * in_face.sum()  # regions stay inside the face oval
    assert parts.any(axis=1)[in_face].mean() > 0.65  # and cover most of it (69 %; the rest is "face")


def test_pupil_shapes(canon_px):
    cfg = AOIConfig(shape="pupil", radius_mode="px", eye_radius_px=12, nose_radius_px=9, mouth_margin_px=3,
                    gaze_radius_px=0)
    geo = build_geometry([(0, canon_px)], cfg)
    assert geo.names == ("left_eye", "right_eye", "nose", "mouth", "face")
    p = geo.params[0]
    assert np.allclose(p[0, :3], [*canon_px[473, :2], 12]) and np.allclose(p[2, :3], [*canon_px[1, :2], 9])
    half_w = np.hypot(*(canon_px[291, :2] - canon_px[61, :2])) / 2
    assert p[3, 2] == pytest.approx(half_w + 3) and abs(p[3, 4]) < 1e-6  # level mouth: no rotation
    cx, cy = p[3, :2]
    fg = map_frame(np.arange(4), [cx, cx + half_w + 2, cx + half_w + 4, 5.0], [cy, cy, cy, 5.0], [(0, canon_px)],
                   cfg, (640, 480))
    assert fg.aoi == ["mouth", "mouth", "face", "off_face"]
    multi = AOIConfig(shape="pupil", mode="multi", radius_mode="px", eye_radius_px=12, gaze_radius_px=30)
    fg = map_frame(np.arange(2), [canon_px[473, 0], -10.0], [canon_px[473, 1], 5.0], [(0, canon_px)], multi,
                   (640, 480))
    assert fg.aoi[0].split("|")[0] == "left_eye" and fg.aoi[0].endswith("face")
    assert fg.aoi[1] == "off_image" and fg.face_id[1] == -1


def test_iod_radii_scale_with_the_face(canon_px):
    """iod mode: labels do not change when face and gaze are scaled together; px mode does change."""
    from rtface.gaze.aoi import face_iod_px

    iod = face_iod_px(canon_px)
    assert iod == pytest.approx(np.linalg.norm(canon_px[468] - canon_px[473]))
    rng = np.random.default_rng(3)
    centre = canon_px[1, :2]
    pts = centre + rng.uniform(-1.2, 1.2, (400, 2)) * iod  # the whole face and some background
    iod_cfg = AOIConfig(shape="pupil", radius_mode="iod")
    px_cfg = AOIConfig(shape="pupil", radius_mode="px")
    labels = {}
    for scale in (0.25, 1.0, 3.0):
        lm = canon_px.copy()
        lm[:, :2] = centre + (canon_px[:, :2] - centre) * scale
        lm[:, 2] *= scale
        p = centre + (pts - centre) * scale
        labels[("iod", scale)] = map_frame(np.arange(400), p[:, 0], p[:, 1], [(0, lm)], iod_cfg).aoi
        labels[("px", scale)] = map_frame(np.arange(400), p[:, 0], p[:, 1], [(0, lm)], px_cfg).aoi
        geo = build_geometry([(0, lm)], iod_cfg)
        assert geo.iod_px[0] == pytest.approx(iod * scale)
        assert geo.params[0, 0, 2] == pytest.approx(0.3 * iod * scale)  # eye circle
        assert geo.params[0, 0, 5] == pytest.approx(0.1 * iod * scale) and geo.gaze_radius_px == 0.0
    assert labels[("iod", 0.25)] == labels[("iod", 1.0)] == labels[("iod", 3.0)]
    assert len(set(labels[("iod", 1.0)])) >= 5  # eyes, nose, mouth, face, off_face all occur
    assert labels[("px", 0.25)] != labels[("px", 3.0)]


def test_iod_sizes_per_face_in_one_frame(canon_px):
    """Two faces of different size in one frame: each gets its own radii (folded into its margins)."""
    small = canon_px.copy()
    small[:, :2] = canon_px[:, :2] * 0.3 + 5.0
    small[:, 2] *= 0.3
    cfg = AOIConfig(shape="pupil", radius_mode="iod", gaze_radius_iod=0.0, gaze_radius_px=2.0)
    geo = build_geometry([(1, canon_px), (2, small)], cfg)
    assert geo.iod_px[1] == pytest.approx(0.3 * geo.iod_px[0])
    assert geo.params[1, 2, 2] == pytest.approx(0.3 * geo.params[0, 2, 2])  # nose circles
    assert np.allclose(geo.face_gaze_radius_px, 2.0) and np.allclose(geo.params[:, :, 5], 2.0)
    mouth_small = 0.5 * (small[13, :2] + small[14, :2])
    mouth_big = 0.5 * (canon_px[13, :2] + canon_px[14, :2])
    fg = map_frame(np.arange(2), [mouth_small[0], mouth_big[0]], [mouth_small[1], mouth_big[1]],
                   [(1, canon_px), (2, small)], cfg)
    assert fg.aoi == ["mouth", "mouth"] and fg.face_id.tolist() == [2, 1]
    with pytest.raises(Exception, match="radius_mode"):
        AOIConfig(radius_mode="mm")
