"""Gaze on face with real recordings and a real face video (real MediaPipe, real files, real numba kernel)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import video_landmarks
from rtface.gaze.align import assign_frames, median_interval_ns
from rtface.gaze.aoi import OFF_FACE, AOIConfig
from rtface.gaze.mapping import map_track
from rtface.gaze.outputs import (aoi_summary, write_bar_plot, write_merged_csv, write_overlay_video,
                                 write_percentages_csv)
from rtface.gaze.readers import read_neon_native, read_pupil_player, write_pupil_player
from rtface.records import Face, FrameMeta, FrameResult
from rtface.stages.gaze_aoi import GazeAOIParams, GazeAOIStage

ROOT = Path(__file__).resolve().parents[2]
PUPIL = ROOT / "tests" / "data" / "pupil"
VIDEO = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"


def test_gazeclassify_frame_matches_world_index():
    tr = read_pupil_player(PUPIL / "gazeclassify", size=(1088, 1080))
    assert len(tr) == 145 and tr.frame_t_ns.size == 58 and tr.issues == []
    k = assign_frames(tr.t_ns, tr.frame_t_ns)
    assert (k >= 0).all()
    # The export is a trimmed section: world_index counts frames of the whole recording, world_timestamps.csv only
    # the exported ones, so the two differ by a constant (the first exported frame's index).
    offset = int(np.bincount(tr.world_index - k).argmax())
    agree = float(np.mean(tr.world_index - offset == k))
    assert offset == 1910
    assert agree == 1.0  # 145 / 145 samples: Pupil's world_index is the nearest-timestamp frame
    k_int = assign_frames(tr.t_ns, tr.frame_t_ns, mode="interval")
    assert np.mean(tr.world_index - offset == k_int) < 0.6  # the containing-interval rule is NOT Pupil's


def test_neon_native_alignment_sanity():
    tr = read_neon_native(PUPIL / "neon_demo")
    assert len(tr) == 1788 and tr.frame_t_ns.size == 292
    assert (tr.width, tr.height) == (1600, 1200)
    k = assign_frames(tr.t_ns, tr.frame_t_ns)
    ft = tr.frame_t_ns
    inside = (tr.t_ns >= ft[0]) & (tr.t_ns <= ft[-1])
    interval = median_interval_ns(ft)
    assert 33_000_000 <= interval <= 34_000_000  # 30 Hz scene camera
    assert (k[inside] >= 0).all()
    dist = np.abs(tr.t_ns[inside] - ft[k[inside]])
    assert dist.max() <= interval  # every in-span sample maps to a frame within one frame interval
    assert dist.max() <= np.diff(ft).max() / 2 + 1  # nearest rule: at most half the widest gap
    # samples after the last frame by more than one interval are outside the span
    assert np.all((k == -1) == (tr.t_ns > ft[-1] + interval))
    assert int((k == -1).sum()) == 6
    assert np.all(np.diff(k[k >= 0]) >= 0)  # monotone


# ---------------------------------------------------------------------------------------------- real face video
@pytest.fixture(scope="module")
def face_frames():
    """Real MediaPipe FaceMesh (478 landmarks) on every frame of the embedded sample video (shared pass)."""
    sizes, lms = video_landmarks(str(VIDEO))
    faces = {k: [(0, lm)] for k, lm in enumerate(lms) if lm is not None}
    assert len(sizes) == 72 and len(faces) == 72
    return list(sizes), faces


TARGETS = ("left_eye", "right_eye", "nose", "mouth", OFF_FACE)


def _target_point(lm: np.ndarray, name: str) -> np.ndarray:
    xy = lm[:, :2].astype(np.float64)
    if name == "left_eye":
        return xy[473]
    if name == "right_eye":
        return xy[468]
    if name == "nose":
        return xy[1]
    if name == "mouth":
        return 0.5 * (xy[13] + xy[14])  # between the inner lips
    x0 = xy[:468, 0].min()
    return np.array([x0 - 40.0, xy[1, 1]])  # 40 px left of the face, nose height


@pytest.fixture(scope="module")
def synthetic_export(face_frames, tmp_path_factory):
    """A 200 Hz gaze track on known facial points, written as a Pupil Player export next to the real video."""
    _, faces = face_frames
    rng = np.random.default_rng(7)
    fps, t0, n_frames = 30.0, 1234.5, 72
    frame_t = t0 + np.arange(n_frames) / fps + rng.uniform(-1e-3, 1e-3, n_frames)  # real cameras jitter a little
    t = t0 + np.arange(0.0, (n_frames - 0.5) / fps, 0.005) + rng.uniform(-5e-4, 5e-4)
    t = t + rng.uniform(-1e-3, 1e-3, t.size)
    t = np.sort(t)
    true_frame = np.abs(t[:, None] - frame_t[None, :]).argmin(axis=1)  # generator's own nearest-frame truth
    truth = [TARGETS[(i // 20) % len(TARGETS)] for i in range(t.size)]  # dwell 100 ms on each target
    xy = np.array([_target_point(faces[int(k)][0][1], name) for k, name in zip(true_frame, truth)])
    xy += rng.normal(0.0, 2.0, xy.shape)  # a few px of tracker noise
    folder = tmp_path_factory.mktemp("pupil_export")
    write_pupil_player(folder, t, xy[:, 0], xy[:, 1], frame_t, (640, 360), world_index=true_frame + 500)
    shutil.copy(VIDEO, folder / "world.mp4")  # scene size comes from the video
    return folder, np.array(truth), true_frame


@pytest.mark.parametrize("shape,kw", [
    ("pupil", dict(radius_mode="px", eye_radius_px=15.0, nose_radius_px=15.0, mouth_margin_px=4.0, gaze_radius_px=5.0)),
    ("mesh", dict(radius_mode="px", gaze_radius_px=5.0, dilation_px=2.0)),
])
def test_gaze_aoi_accuracy_on_real_face(face_frames, synthetic_export, shape, kw, tmp_path):
    _, faces = face_frames
    folder, truth, true_frame = synthetic_export
    tr = read_pupil_player(folder)
    assert (tr.width, tr.height) == (640, 360) and len(tr) == truth.size
    assert tr.issues == []
    k = assign_frames(tr.t_ns, tr.frame_t_ns)
    assert np.array_equal(k, true_frame) and np.array_equal(tr.world_index - 500, k)
    cfg = AOIConfig(shape=shape, mode="exclusive", **kw)
    m = map_track(tr, faces, cfg)
    acc = float(np.mean(np.array(m.labels) == truth))
    print(f"\n{shape}: {truth.size} samples, exclusive-label accuracy {acc:.4f}")
    assert acc >= 0.98
    assert set(np.unique(m.face_id[truth != OFF_FACE])) <= {0, -1}
    # interpolated landmarks must not be worse than per-frame ones on this slow video
    mi = map_track(tr, faces, cfg, interpolate=True)
    assert float(np.mean(np.array(mi.labels) == truth)) >= 0.98
    # offline outputs from the same mapping
    write_merged_csv(tmp_path / "merged_data.csv", m)
    write_percentages_csv(tmp_path / "percentages.csv", m)
    write_bar_plot(tmp_path / "gaze_aoi.png", m)
    rows = {r["aoi"]: r for r in aoi_summary(m)}
    assert abs(sum(r["percent"] for r in rows.values()) - 100.0) < 1e-6  # exclusive: shares sum to 100
    assert 400 < rows["left_eye"]["dwell_ms"] + rows["right_eye"]["dwell_ms"] < 1100  # 2 of 5 targets in 2.4 s
    lines = (tmp_path / "merged_data.csv").read_text().splitlines()
    assert len(lines) == truth.size + 1
    assert (tmp_path / "gaze_aoi.png").stat().st_size > 1000


def test_stage_with_recording_on_real_face(face_frames, synthetic_export, tmp_path):
    frames, faces = face_frames
    folder, truth, _ = synthetic_export
    p = GazeAOIParams(aoi_shape="mesh", mode="exclusive", radius_mode="px", gaze_radius_px=5.0, dilation_px=2.0,
                      recording=str(folder), format="pupil_player")
    st = GazeAOIStage("gaze", p)
    st.open()
    labels: list[str] = []
    t_all: list[np.ndarray] = []
    try:
        for k, (w, h) in enumerate(frames):
            fid, lm = faces[k][0]
            face = Face(face_id=fid, confidence=1.0, bbox_px=np.zeros(4, np.float32), landmarks_px=lm)
            res = FrameResult(FrameMeta(k, 0, int(k * 1e9 / 30), w, h, "single_face.mp4"), faces=[face])
            st.process(np.zeros((h, w, 3), np.uint8), res)
            g = res.extras["gaze"]
            assert len(g["aoi"]) == g["t_ns"].size == g["face_id"].size
            labels += g["aoi"]
            t_all.append(g["t_ns"])
    finally:
        st.close()
        st.close()
    assert np.all(np.diff(np.concatenate(t_all)) > 0)  # every sample once, in time order
    assert len(labels) == truth.size
    assert float(np.mean(np.array(labels) == truth)) >= 0.98
    assert st.summary()["gaze_samples"] == truth.size
    # overlay video of the same run (AOIs, hits, gaze circles)
    tr = read_pupil_player(folder)
    cfg = AOIConfig(shape="mesh", radius_mode="px", gaze_radius_px=5.0, dilation_px=2.0)
    out = write_overlay_video(tmp_path / "overlay.mp4", VIDEO, map_track(tr, faces, cfg), faces, cfg)
    import cv2

    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 72
    cap.release()
