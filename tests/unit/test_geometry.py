"""Canonical model, metric back-projection, pose convention, neutral estimator and the canonical stage's logic.

Synthetic faces here are the real canonical model projected through a pinhole with a known pose (pure geometry);
real MediaPipe on real photos is in tests/integration/test_canonical_real.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rtface.errors import ConfigError, DataError, StageError
from rtface.geometry.camera import CANONICAL_TO_CAMERA_AXES, Intrinsics, metric_landmarks
from rtface.geometry.canonical_model import load_canonical_model
from rtface.geometry.neutral import canonicalize, load_neutral, save_neutral
from rtface.geometry.pose import PoseSolver, euler_xyz_from_matrix, matrix_from_euler_xyz
from rtface.graph.stage import stage_class
from rtface.records import Face, FrameMeta, FrameResult
from rtface.stages.canonical import CanonicalParams, CanonicalStage

MODEL = load_canonical_model()
INTR = Intrinsics.from_config(640, 480)


def synth_landmarks(pitch: float, yaw: float, roll: float, t_cm, verts: np.ndarray | None = None,
                    intr: Intrinsics = INTR) -> tuple[np.ndarray, np.ndarray]:
    """Project canonical vertices posed by (pitch, yaw, roll) deg and t (cm) -> MediaPipe-like landmarks_px."""
    v = MODEL.vertices_cm if verts is None else verts
    rot = matrix_from_euler_xyz(*np.radians([pitch, yaw, roll])) @ CANONICAL_TO_CAMERA_AXES
    cam = v @ rot.T + np.asarray(t_cm, dtype=float)
    zc = cam[:, 2].mean()
    lm = np.stack([intr.fx * cam[:, 0] / cam[:, 2] + intr.cx, intr.fy * cam[:, 1] / cam[:, 2] + intr.cy,
                   (cam[:, 2] - zc) * intr.fx / zc], axis=1)
    return lm.astype(np.float32), cam


# ---- canonical model ----------------------------------------------------------------------------------------------
def test_canonical_model_fields() -> None:
    m = MODEL
    assert m.vertices_cm.shape == (478, 3) and m.vertices_cm.dtype == np.float64
    assert m.procrustes_ids.size == 33 and m.procrustes_weights.size == 33
    assert m.weights_478.shape == (478,)
    assert np.count_nonzero(m.weights_478) == 33
    assert m.weights_478[4] == pytest.approx(0.070909939706326)
    assert load_canonical_model() is m  # cached
    assert m.vertices_cm[33, 0] < 0 < m.vertices_cm[263, 0]  # x points to the subject's left
    assert m.vertices_cm[10, 1] > m.vertices_cm[152, 1]  # y up: forehead above chin
    assert m.vertices_cm[4, 2] > m.vertices_cm[234, 2]  # z towards the viewer: nose tip in front of the cheek edge


def test_mirror_index() -> None:
    mi = MODEL.mirror_index
    np.testing.assert_array_equal(mi[mi], np.arange(478))  # an involution
    for a, b in [(33, 263), (61, 291), (133, 362), (468, 473), (234, 454)]:
        assert mi[a] == b and mi[b] == a
    for mid in (1, 4, 10, 152, 13, 14):
        assert mi[mid] == mid
    np.testing.assert_allclose(MODEL.vertices_cm[mi] * [-1, 1, 1], MODEL.vertices_cm, atol=1e-5)


# ---- camera -------------------------------------------------------------------------------------------------------
def test_intrinsics_from_fov_and_overrides() -> None:
    intr = Intrinsics.from_config(640, 480, vertical_fov_deg=90.0)
    assert intr.fy == pytest.approx(240.0) and intr.fx == pytest.approx(240.0)
    assert (intr.cx, intr.cy) == (320.0, 240.0)
    intr = Intrinsics.from_config(640, 480, fx=500.0, cy=100.0)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (500.0, 500.0, 320.0, 100.0)
    with pytest.raises(ConfigError):
        Intrinsics.from_config(0, 480)
    with pytest.raises(ConfigError):
        Intrinsics.from_config(640, 480, vertical_fov_deg=0.0)


def test_metric_landmarks_bad_input() -> None:
    with pytest.raises(DataError):
        metric_landmarks(np.zeros((468, 3)), INTR)
    lm, _ = synth_landmarks(0, 0, 0, [0, 0, 40])
    lm[5, 0] = np.nan
    with pytest.raises(DataError):
        metric_landmarks(lm, INTR)


@pytest.mark.parametrize("angles", [(0, 0, 0), (10, -20, 5), (-15, 30, -10), (5, 45, 20)])
@pytest.mark.parametrize("t", [(0, 0, 40), (8, -5, 60), (0, 0, 25)])
def test_pose_recovered_from_synthetic_projection(angles, t) -> None:
    lm, cam = synth_landmarks(*angles, t)
    metric = metric_landmarks(lm, INTR, projection="perspective")
    assert np.abs(metric - cam).max() < 0.25  # cm; the MediaPipe-like z is an approximation of true depth
    fit = PoseSolver().fit(metric)
    p = fit.pose
    assert (p.pitch_deg, p.yaw_deg, p.roll_deg) == pytest.approx(angles, abs=0.5)
    centre = cam.mean(axis=0)  # face centre = centroid of the 478 canonical vertices
    assert (p.tx_cm, p.ty_cm, p.tz_cm) == pytest.approx(tuple(centre), abs=0.5)
    assert p.scale == pytest.approx(1.0, abs=0.01)
    np.testing.assert_allclose(fit.posefree_cm, MODEL.vertices_cm, atol=0.25)


def test_angle_sign_meaning() -> None:
    """Documented convention: +yaw nose to image left, +pitch nose down, +roll subject's left eye lower."""
    lm, _ = synth_landmarks(0, 20, 0, [0, 0, 40])
    assert lm[4, 0] < INTR.cx
    lm, _ = synth_landmarks(20, 0, 0, [0, 0, 40])
    assert lm[4, 1] > INTR.cy + 20
    lm, _ = synth_landmarks(0, 0, 20, [0, 0, 40])
    assert lm[263, 1] > lm[33, 1] + 10


def test_euler_round_trip() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        ang = rng.uniform(-1.2, 1.2, size=3)
        back = euler_xyz_from_matrix(matrix_from_euler_xyz(*ang))
        np.testing.assert_allclose(back, ang, atol=1e-10)


def test_expression_survives_in_posefree() -> None:
    """A mouth-only deformation stays in the pose-free landmarks (rigid points fixed, rest unchanged)."""
    verts = MODEL.vertices_cm.copy()
    verts[[61, 291], 1] += 0.8  # mouth corners up 8 mm
    lm, _ = synth_landmarks(5, -15, 3, [2, 1, 45], verts=verts)
    pf = PoseSolver().fit(metric_landmarks(lm, INTR, projection="perspective")).posefree_cm
    d = pf - MODEL.vertices_cm
    assert d[61, 1] == pytest.approx(0.8, abs=0.15) and d[291, 1] == pytest.approx(0.8, abs=0.15)
    others = np.setdiff1d(np.arange(478), [61, 291])
    assert np.abs(d[others]).max() < 0.25


def test_weak_projection_shape_does_not_depend_on_focal_or_distance() -> None:
    """Weak perspective (default): the pose-free shape is the same whatever focal length or distance is assumed,
    and a far face (little perspective) is read back as the template."""
    lm, _ = synth_landmarks(5, -20, 8, [3, -2, 400])
    shapes = [PoseSolver().fit(metric_landmarks(lm, Intrinsics.from_config(640, 480, vertical_fov_deg=fov))).posefree_cm
              for fov in (20.0, 63.0, 90.0)]
    np.testing.assert_allclose(shapes[0], shapes[1], atol=1e-6)
    np.testing.assert_allclose(shapes[0], shapes[2], atol=1e-6)
    np.testing.assert_allclose(shapes[0], MODEL.vertices_cm, atol=0.15)
    with pytest.raises(ConfigError, match="projection"):
        metric_landmarks(lm, INTR, projection="fisheye")


# ---- neutral files and the canonical stage -------------------------------------------------------------------------
def test_neutral_save_load(tmp_path) -> None:
    neutral = MODEL.vertices_cm + 0.25
    path = save_neutral(tmp_path / "p01", neutral, 12, person="P01")
    assert path.suffix == ".npz"
    back, meta = load_neutral(path)
    assert meta["format_version"] == 1 and meta["n_frames"] == 12 and meta["person"] == "P01"
    assert meta["created"]
    np.testing.assert_allclose(back, neutral)
    bad = tmp_path / "bad.npz"
    np.savez(bad, neutral_cm=np.zeros((478, 3)), format_version=np.array(99))
    with pytest.raises(DataError, match="format_version"):
        load_neutral(bad)
    with pytest.raises(DataError):
        load_neutral(tmp_path / "missing.npz")
    with pytest.raises(DataError):
        save_neutral(tmp_path / "short.npz", np.zeros((10, 3)), 1)
    np.testing.assert_allclose(canonicalize(neutral, back), MODEL.vertices_cm)
    assert "rest_pose_deg" not in meta  # saved without a pose: unknown (counts as frontal)


def test_neutral_file_keeps_its_rest_pose(tmp_path) -> None:
    """Mechanism: a neutral saved with the pose it was learned at loads with that pose; a bad pose names the field."""
    path = save_neutral(tmp_path / "bed", MODEL.vertices_cm, 40, rest_pose_deg=(18.0, -6.5, 2.0))
    assert load_neutral(path)[1]["rest_pose_deg"] == (18.0, -6.5, 2.0)
    with pytest.raises(DataError, match="rest_pose_deg"):
        save_neutral(tmp_path / "nan", MODEL.vertices_cm, 1, rest_pose_deg=(0.0, float("nan"), 0.0))
    bad = tmp_path / "badpose.npz"
    np.savez(bad, neutral_cm=MODEL.vertices_cm, format_version=np.array(1), rest_pose_deg=np.zeros(2))
    with pytest.raises(DataError, match="rest_pose_deg"):
        load_neutral(bad)


def _result(index: int, faces: list[tuple[int, np.ndarray]], still: bool = False, fps: float = 30.0) -> FrameResult:
    res = FrameResult(FrameMeta(index, 0, int(index * 1e9 / fps), 640, 480, "synthetic", still))
    for fid, lm in faces:
        res.faces.append(Face(fid, 1.0, np.zeros(4, np.float32), lm))
    return res


def test_stage_registered_and_config_errors() -> None:
    assert stage_class("canonical") is CanonicalStage
    assert CanonicalStage.inputs == ("landmarks",) and CanonicalStage.outputs == ("pose", "canonical")
    with pytest.raises(ConfigError, match="neutral_mode"):
        CanonicalStage("c", CanonicalParams(neutral_mode="bogus"))
    with pytest.raises(ConfigError, match="neutral_file"):
        CanonicalStage("c", CanonicalParams(neutral_mode="file"))
    with pytest.raises(ConfigError, match="projection"):
        CanonicalStage("c", CanonicalParams(projection="fisheye"))
    with pytest.raises(ConfigError, match="keep_fraction"):
        CanonicalStage("c", CanonicalParams(keep_fraction=0.0))
    with pytest.raises(ConfigError, match="face_model_path"):
        CanonicalStage("c", CanonicalParams(face_model_path="/nonexistent/face_model.npz")).open()


def test_stage_online_two_faces_refines_and_forgets() -> None:
    """Mechanism: a sequence refines each tracked face's shape from its frames; stills never do."""
    st = CanonicalStage("canonical", CanonicalParams(forget_after_s=0.3))
    st.open()
    lm_a, _ = synth_landmarks(0, 10, 0, [-8, 0, 50])
    lm_b, _ = synth_landmarks(0, -10, 0, [8, 0, 50])
    dev = []
    for i in range(90):
        res = _result(i, [(1, lm_a), (2, lm_b)])
        st.process(np.zeros((480, 640, 3), np.uint8), res)
        dev.append(float(np.sqrt(((res.faces[0].canonical_cm - MODEL.vertices_cm)[:468] ** 2).mean())))
    fa, fb = res.faces
    assert fa.pose.yaw_deg == pytest.approx(10, abs=0.5) and fb.pose.yaw_deg == pytest.approx(-10, abs=0.5)
    for f in (fa, fb):
        assert f.metric_cm.dtype == np.float32 and f.metric_cm.shape == (478, 3)
        assert f.posefree_cm.shape == (478, 3) and f.canonical_cm.shape == (478, 3)
        assert f.shape_frames >= 4 and f.neutral_ready
    # the same frame over and over is this person's neutral: what is left of it shrinks as the shape is refined
    assert dev[-1] < 0.5 * dev[0]
    for i in range(90, 105):  # face 2 leaves; its person model is dropped after forget_after_s of media time
        st.process(np.zeros((480, 640, 3), np.uint8), _result(i, [(1, lm_a)]))
    assert st.person_shape(1) is not None and st.person_shape(2) is None
    still = _result(0, [(0, lm_a)], still=True)
    st.process(None, still)
    assert still.faces[0].shape_frames == 0.0 and not still.faces[0].neutral_ready
    st.close()
    st.close()


def test_stage_modes_none_population_and_file(tmp_path) -> None:
    lm, _ = synth_landmarks(0, 0, 0, [0, 0, 40])
    st = CanonicalStage("c", CanonicalParams(neutral_mode="none"))
    st.open()
    res = _result(0, [(0, lm)])
    st.process(None, res)
    np.testing.assert_array_equal(res.faces[0].canonical_cm, res.faces[0].posefree_cm)
    assert not res.faces[0].neutral_ready
    with pytest.raises(StageError):
        st.calibrate_neutral()
    st = CanonicalStage("c", CanonicalParams(neutral_mode="population"))
    st.open()
    for i in range(20):
        res = _result(i, [(0, lm)])
        st.process(None, res)
    assert res.faces[0].shape_frames == 0.0 and st.person_shape(0) is None
    path = save_neutral(tmp_path / "n.npz", MODEL.vertices_cm - 0.5, 1)
    st = CanonicalStage("c", CanonicalParams(neutral_mode="file", neutral_file=str(path), projection="perspective"))
    st.open()
    res = _result(0, [(0, lm)])
    st.process(None, res)
    assert res.faces[0].neutral_ready and math.isinf(res.faces[0].shape_frames)
    np.testing.assert_allclose(res.faces[0].canonical_cm[:468], MODEL.vertices_cm[:468] + 0.5, atol=0.1)
    assert "rest_pose_deg" not in res.faces[0].extras  # a file without a pose: the AU stage counts from frontal
    path = save_neutral(tmp_path / "n2.npz", MODEL.vertices_cm - 0.5, 1, rest_pose_deg=(20.0, 0.0, 0.0))
    st = CanonicalStage("c", CanonicalParams(neutral_mode="file", neutral_file=str(path), projection="perspective"))
    st.open()
    res = _result(0, [(0, lm)])
    st.process(None, res)
    assert res.faces[0].extras["rest_pose_deg"] == (20.0, 0.0, 0.0)


def test_stage_calibrate_save_load(tmp_path) -> None:
    st = CanonicalStage("c", CanonicalParams(calibrate_frames=3))
    st.open()
    neutral_lm, _ = synth_landmarks(0, 0, 0, [0, 0, 40])
    verts = MODEL.vertices_cm.copy()
    verts[[61, 291], 1] += 0.8
    smile_lm, _ = synth_landmarks(0, 0, 0, [0, 0, 40], verts=verts)
    st.calibrate_neutral(7)  # deferred: face 7 not seen yet -> next 3 frames
    for i in range(3):
        st.process(None, _result(i, [(7, neutral_lm)]))
    assert st.person_shape(7).locked
    res = _result(3, [(7, smile_lm)])
    st.process(None, res)
    assert res.faces[0].neutral_ready
    assert res.faces[0].canonical_cm[61, 1] - MODEL.vertices_cm[61, 1] == pytest.approx(0.8, abs=0.15)
    for i in range(4, 80):  # immediate calibration from the last frames (all smiles) for every face
        st.process(None, _result(i, [(7, smile_lm)]))
    assert st.calibrate_neutral(None) == [7]
    res = _result(80, [(7, smile_lm)])
    st.process(None, res)
    assert np.abs(res.faces[0].canonical_cm - MODEL.vertices_cm).max() < 1e-3
    st.person_shape(7).rest_pose_deg = np.array([15.0, -5.0, 1.0])  # as if calibrated turned towards the camera
    path = st.save_neutral(7, tmp_path / "face7.npz")
    assert load_neutral(path)[1]["face_id"] == "7"
    st.load_neutral(9, path)
    assert st.person_shape(9).locked
    np.testing.assert_allclose(st.person_shape(9).rest_pose_deg, [15.0, -5.0, 1.0])
    with pytest.raises(StageError):
        st.save_neutral(42, tmp_path / "none.npz")
    assert math.isfinite(res.faces[0].pose.tz_cm)


def test_median0_matches_numpy_median() -> None:
    from rtface.geometry.neutral import median0

    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 30):
        stack = rng.normal(size=(n, 478, 3)).astype(np.float32)
        np.testing.assert_allclose(median0(stack), np.median(stack, axis=0), rtol=1e-6, atol=1e-7)
