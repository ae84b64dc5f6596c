"""Face id tracker: pure logic."""
import numpy as np

from rtface.landmarking.tracker import FaceTracker, iou_matrix


def test_iou_matrix_basic():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (1, 0)


def test_ids_stable_while_faces_move_and_swap_order():
    tr = FaceTracker()
    ids, _ = tr.update(np.array([[0, 0, 10, 10], [50, 0, 60, 10]], float), np.array([0.9, 0.8]))
    assert ids == [0, 1]
    ids, sc = tr.update(np.array([[52, 1, 62, 11], [1, 1, 11, 11]], float), np.array([np.nan, np.nan]))
    assert ids == [1, 0]
    assert sc == [0.8, 0.9]  # scores inherited from the tracks


def test_face_lost_gets_new_id_after_max_missing():
    tr = FaceTracker(max_missing=2)
    assert tr.update(np.array([[0, 0, 10, 10]], float), np.array([0.9]))[0] == [0]
    for _ in range(2):
        assert tr.update(np.zeros((0, 4)), np.zeros(0))[0] == []
    assert tr.update(np.array([[0, 0, 10, 10]], float), np.array([0.9]))[0] == [0]  # back within the window
    for _ in range(3):
        tr.update(np.zeros((0, 4)), np.zeros(0))
    assert tr.update(np.array([[0, 0, 10, 10]], float), np.array([0.9]))[0] == [1]


def test_set_scores_fills_missing_track_scores():
    tr = FaceTracker()
    ids, sc = tr.update(np.array([[0, 0, 10, 10]], float), np.array([np.nan]))
    assert np.isnan(sc[0])
    tr.set_scores(ids, [0.7])
    assert tr.update(np.array([[1, 0, 11, 10]], float), np.array([np.nan]))[1] == [0.7]


def test_fast_landmark_parse_matches_the_protobuf_objects():
    import cv2
    import mediapipe as mp

    from rtface.landmarking.base import _fast_xyz, mp_landmarks_to_px
    from tests.conftest import MISC

    img = cv2.imread(str(MISC / "single_face.jpg"))
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as fm:
        lm = fm.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).multi_face_landmarks[0]
    slow = np.array([(p.x, p.y, p.z) for p in lm.landmark], dtype=np.float32)
    fast = _fast_xyz(lm, 478)
    assert fast is not None and np.array_equal(fast, slow)
    px = mp_landmarks_to_px(lm, 200.0, 100.0, 5.0, 7.0)
    np.testing.assert_allclose(px[:, 0], slow[:, 0] * 200 + 5, rtol=1e-6)
    np.testing.assert_allclose(px[:, 2], slow[:, 2] * 200, rtol=1e-6)
    # anything not in the plain layout falls back to the object path
    lm.landmark[3].visibility = 0.5
    assert _fast_xyz(lm, 478) is None
    assert np.allclose(mp_landmarks_to_px(lm, 1.0, 1.0)[3], slow[3])
