"""numba hit-test kernel vs its NumPy reference, exact geometric cases, and label rules."""
from __future__ import annotations

import numpy as np
import pytest

from rtface.gaze.aoi import OFF_FACE, OFF_IMAGE, AOIConfig, PackedAOIs, build_geometry, label_hits
from rtface.kernels.hit_test import (KIND_CIRCLE, KIND_ELLIPSE, KIND_NONE, KIND_POLYGON, hit_matrix_nb,
                                     hit_matrix_np)


def _random_geometry(rng: np.random.Generator, nf: int, na: int):
    kind = rng.choice([KIND_NONE, KIND_POLYGON, KIND_CIRCLE, KIND_ELLIPSE], size=(nf, na)).astype(np.int8)
    params = np.zeros((nf, na, 6))
    vstart = np.zeros((nf, na), np.int64)
    vcount = np.zeros((nf, na), np.int64)
    verts = []
    nv = 0
    for f in range(nf):
        for a in range(na):
            c = rng.uniform(50, 250, 2)
            params[f, a, :2] = c
            params[f, a, 5] = rng.uniform(-3, 6)
            if kind[f, a] == KIND_CIRCLE:
                params[f, a, 2] = rng.uniform(5, 40)
            elif kind[f, a] == KIND_ELLIPSE:
                params[f, a, 2:5] = rng.uniform(5, 50), rng.uniform(3, 30), rng.uniform(-np.pi, np.pi)
            elif kind[f, a] == KIND_POLYGON:
                m = int(rng.integers(3, 30))  # star-shaped (possibly non-convex) polygon
                ang = np.sort(rng.uniform(0, 2 * np.pi, m))
                rad = rng.uniform(10, 60, m)
                verts.append(c + np.c_[rad * np.cos(ang), rad * np.sin(ang)])
                vstart[f, a], vcount[f, a] = nv, m
                nv += m
    return kind, params, vstart, vcount, np.concatenate(verts) if verts else np.zeros((0, 2))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("gaze_r", [0.0, 7.5, 20.0])
def test_numba_matches_numpy_reference(seed, gaze_r):
    rng = np.random.default_rng(seed)
    geo = _random_geometry(rng, nf=2, na=12)
    gx, gy = rng.uniform(0, 300, 500), rng.uniform(0, 300, 500)
    a = hit_matrix_nb(gx, gy, *geo, gaze_r)
    b = hit_matrix_np(gx, gy, *geo, gaze_r)
    assert a.shape == (500, 2, 12) and a.dtype == np.bool_
    assert np.array_equal(a, b)
    assert 0 < a.sum() < a.size


def _one(kind, prm, poly=None):
    k = np.array([[kind]], np.int8)
    p = np.zeros((1, 1, 6))
    p[0, 0, :len(prm)] = prm
    verts = np.asarray(poly, float) if poly is not None else np.zeros((0, 2))
    return k, p, np.zeros((1, 1), np.int64), np.array([[len(verts)]], np.int64), verts


@pytest.mark.parametrize("fn", [hit_matrix_nb, hit_matrix_np])
def test_exact_shapes(fn):
    xs = np.array([0.0, 29.9, 30.1, 49.9, 50.1])
    hit = fn(xs, np.zeros(5), *_one(KIND_CIRCLE, (0, 0, 30)), 20.0)[:, 0, 0]
    assert hit.tolist() == [True, True, True, True, False]  # circles overlap when d <= 30 + 20
    # ellipse a=40 along x rotated by 90 deg -> long axis along y; the nearest boundary point of (0, 50) is (0, 40)
    e = _one(KIND_ELLIPSE, (0, 0, 40, 10, np.pi / 2))
    assert fn(np.array([0.0, 0.0]), np.array([49.0, 51.0]), *e, 10.0)[:, 0, 0].tolist() == [True, False]
    assert fn(np.array([19.0, 21.0]), np.array([0.0, 0.0]), *e, 10.0)[:, 0, 0].tolist() == [True, False]
    # concave L-shaped polygon: the notch is outside; margin 2 px acts as an exact offset
    L = [(0, 0), (40, 0), (40, 10), (10, 10), (10, 40), (0, 40)]
    poly = _one(KIND_POLYGON, (0, 0, 0, 0, 0, 2.0), L)
    pts = np.array([[5, 5], [30, 30], [11.5, 11.5], [13, 13], [-1.9, 20], [-2.1, 20]], float)
    assert fn(pts[:, 0], pts[:, 1], *poly, 0.0)[:, 0, 0].tolist() == [True, False, True, False, True, False]
    ero = _one(KIND_POLYGON, (0, 0, 0, 0, 0, -3.0), L)  # erosion: at least 3 px inside
    assert fn(np.array([5.0, 1.0]), np.array([5.0, 5.0]), *ero, 0.0)[:, 0, 0].tolist() == [True, False]


def _geo(n_faces: int, names=("left_eye", "nose", "face")) -> PackedAOIs:
    z = np.zeros((n_faces, len(names)))
    return PackedAOIs(tuple(names), np.arange(10, 10 + n_faces), z.astype(np.int8), np.zeros(z.shape + (6,)),
                      z.astype(np.int64), z.astype(np.int64), np.zeros((0, 2)))


def test_label_rules():
    geo = _geo(2)
    hits = np.zeros((5, 2, 3), bool)
    hits[0, 0, [1, 2]] = True  # nose + face of face 10
    hits[1, 0, 2] = True
    hits[1, 1, [0, 2]] = True  # face 11 has the eye: eye wins over face 10's face
    hits[3, 1, 2] = True  # would be face, but the sample is off-image
    off = np.array([False, False, False, True, False])
    fid, labs, aidx = label_hits(hits, geo, "exclusive", off)
    assert labs == ["nose", "left_eye", OFF_FACE, OFF_IMAGE, OFF_FACE]
    assert fid.tolist() == [10, 11, -1, -1, -1] and aidx.tolist() == [1, 0, -1, -1, -1]
    _, labs, _ = label_hits(hits, geo, "multi", off)
    assert labs == ["nose|face", "left_eye|face", OFF_FACE, OFF_IMAGE, OFF_FACE]
    fid, labs, _ = label_hits(np.zeros((2, 0, 3), bool), _geo(0), "exclusive")
    assert labs == [OFF_FACE, OFF_FACE] and fid.tolist() == [-1, -1]


def test_build_geometry_empty_and_priority():
    cfg = AOIConfig(shape="mesh", priority=("nose", "face"))
    assert cfg.names[:2] == ("nose", "face") and len(cfg.names) == 11
    geo = build_geometry([], cfg)
    assert geo.kind.shape == (0, 11) and geo.verts.shape == (0, 2)
    assert hit_matrix_nb(np.zeros(3), np.zeros(3), geo.kind, geo.params, geo.vstart, geo.vcount, geo.verts,
                         5.0).shape == (3, 0, 11)
