"""numba face-geometry and mirror-symmetry kernels vs their NumPy references (rtface/kernels/face_geometry.py,
rtface/kernels/symmetry.py), on real MediaPipe landmarks of the sample video and on perturbed copies."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SAMPLE_VIDEO, video_landmarks
from rtface.analysis.mesh import mirror_pairs
from rtface.geometry.camera import CANONICAL_TO_CAMERA_AXES, Intrinsics
from rtface.geometry.canonical_model import load_canonical_model
from rtface.kernels import face_geometry as G
from rtface.kernels import jit
from rtface.kernels.symmetry import mirror_distance_kernel, mirror_distance_ref

jit.load()  # these tests check the compiled kernels


def _faces(n: int = 6) -> list[tuple[np.ndarray, tuple[int, int]]]:
    sizes, faces = video_landmarks(str(SAMPLE_VIDEO))
    idx = [i for i, f in enumerate(faces) if f is not None][:: max(1, len(faces) // n)][:n]
    rng = np.random.default_rng(0)
    out = []
    for i in idx:
        lm = np.asarray(faces[i], dtype=np.float64)
        out.append((lm, sizes[i]))
        out.append((lm + rng.normal(scale=2.0, size=lm.shape), sizes[i]))  # noisier than MediaPipe
    return out


@pytest.mark.parametrize("refine", [True, False])
@pytest.mark.parametrize("weak", [True, False])
def test_metric_and_pose_fit_match_reference(refine: bool, weak: bool) -> None:
    model = load_canonical_model()
    ids = np.ascontiguousarray(model.procrustes_ids)
    w = np.ascontiguousarray(model.procrustes_weights, dtype=np.float64)
    cam = np.ascontiguousarray(model.vertices_cm[ids] @ CANONICAL_TO_CAMERA_AXES)
    can = np.ascontiguousarray(model.vertices_cm[ids])
    for lm, (width, height) in _faces():
        intr = Intrinsics.from_config(width, height)
        args = (lm, ids, w, cam, intr.fx, intr.fy, intr.cx, intr.cy, refine, weak)
        m_k, s_k = G.metric_kernel(*args)
        m_r, s_r = G.metric_ref(*args)
        assert s_k == pytest.approx(s_r, rel=1e-12)
        np.testing.assert_allclose(m_k, m_r, rtol=0, atol=1e-9)
        got = G.pose_fit_kernel(m_k, ids, w, can)
        ref = G.pose_fit_ref(m_k, ids, w, can)
        assert got[0] == pytest.approx(ref[0], rel=1e-12)
        for a, b in zip(got[1:4], ref[1:4]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
        assert got[4] == pytest.approx(ref[4], rel=1e-9)


def test_degenerate_landmarks_fail_the_same_way_in_both_bindings() -> None:
    model = load_canonical_model()
    ids = np.ascontiguousarray(model.procrustes_ids)
    w = np.ascontiguousarray(model.procrustes_weights, dtype=np.float64)
    cam = np.ascontiguousarray(model.vertices_cm[ids] @ CANONICAL_TO_CAMERA_AXES)
    same = np.zeros((478, 3))  # every landmark at one point: no scale at all
    outcomes = []
    for fn in (G.metric_kernel, G.metric_ref):
        try:
            outcomes.append(round(float(fn(same, ids, w, cam, 500.0, 500.0, 320.0, 240.0, True, True)[1]), 9))
        except ValueError:
            outcomes.append("ValueError")
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] == "ValueError" or not outcomes[0] > 0.0


def test_mirror_distance_matches_reference() -> None:
    pairs = np.ascontiguousarray(mirror_pairs()[:468], dtype=np.int64)
    rng = np.random.default_rng(1)
    base = load_canonical_model().vertices_cm[:468].astype(np.float64)
    for k in range(6):
        face = base + rng.normal(scale=0.05 * (k + 1), size=base.shape)
        rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        face = np.ascontiguousarray(face @ rot.T + rng.normal(size=3))
        np.testing.assert_allclose(mirror_distance_kernel(face, pairs), mirror_distance_ref(face, pairs),
                                   rtol=0, atol=1e-10)


def test_mirror_distance_of_a_symmetric_face_is_zero_at_any_pose() -> None:
    pairs = np.ascontiguousarray(mirror_pairs()[:468], dtype=np.int64)
    base = load_canonical_model().vertices_cm[:468].astype(np.float64)
    sym = 0.5 * (base + base[pairs] * np.array([-1.0, 1.0, 1.0]))  # exactly mirror-symmetric
    rot, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))
    face = np.ascontiguousarray(sym @ rot.T + np.array([3.0, -2.0, 40.0]))
    assert float(mirror_distance_kernel(face, pairs).max()) < 1e-9
