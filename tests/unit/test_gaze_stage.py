"""GazeAOIStage: registration, parameter checks, injected provider, live ZeroMQ source, recording source."""
from __future__ import annotations

import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from rtface.errors import ConfigError, TransportError
from rtface.gaze.live import PIXEL_GAZE_TOPIC, GazeQueue
from rtface.gaze.providers import LiveGazeProvider, RecordingGazeProvider
from rtface.gaze.readers import read_pupil_player
from rtface.graph.stage import stage_class
from rtface.records import Face, FrameMeta, FrameResult
from rtface.stages.gaze_aoi import GazeAOIParams, GazeAOIStage

OBJ = Path(__file__).resolve().parents[2] / "rtface" / "data" / "mediapipe" / "face_model_with_iris.obj"
PUPIL = Path(__file__).resolve().parents[1] / "data" / "pupil"


def _face() -> Face:
    v = np.array([[float(t) for t in ln.split()[1:4]] for ln in OBJ.read_text().splitlines() if ln.startswith("v ")])
    lm = np.c_[v[:, 0] * 15 + 320, -v[:, 1] * 15 + 240, v[:, 2] * 15].astype(np.float32)
    return Face(face_id=5, confidence=1.0, bbox_px=np.zeros(4, np.float32), landmarks_px=lm)


def _result(index: int = 0, faces=None) -> FrameResult:
    return FrameResult(FrameMeta(index, 0, 0, 640, 480, "test"), faces=[_face()] if faces is None else faces)


def test_registered_and_contract():
    assert stage_class("gaze_aoi") is GazeAOIStage
    assert GazeAOIStage.inputs == ("landmarks",) and GazeAOIStage.outputs == ("gaze",)


@pytest.mark.parametrize("kw,field", [
    (dict(aoi_shape="box"), "aoi_shape"), (dict(mode="any"), "mode"), (dict(live="tcp"), "live"),
    (dict(live="pixel_zmq"), "live_endpoint"), (dict(live="zmq"), "live_endpoint"),
    (dict(scene_width=640), "scene_width"), (dict(priority=("iris",)), "unknown"),
    (dict(radius_mode="cm"), "radius_mode"), (dict(live_match="x"), "live_match"),
    (dict(eye_radius_iod=-1.0), "eye_radius_iod"),
])
def test_param_errors(kw, field):
    with pytest.raises(ConfigError, match=field):
        GazeAOIStage("gaze", GazeAOIParams(**kw))


def test_no_source_is_config_error():
    with pytest.raises(ConfigError, match="no gaze source"):
        GazeAOIStage("gaze", GazeAOIParams()).open()


def test_injected_live_provider_labels():
    q = GazeQueue()
    face = _face()
    lm = face.landmarks_px
    q.put(1, float(lm[473, 0]), float(lm[473, 1]))  # left iris
    q.put(2, float(lm[1, 0]), float(lm[1, 1]))  # nose tip
    q.put(3, 5.0, 5.0)  # background
    q.put(4, 900.0, 5.0)  # outside the 640x480 frame
    st = GazeAOIStage("gaze", GazeAOIParams(aoi_shape="mesh", gaze_radius_px=0.0, offset_ns=100),
                      provider=LiveGazeProvider(q, offset_ns=100))
    st.open()
    res = _result(faces=[face])
    st.process(np.zeros((480, 640, 3), np.uint8), res)
    g = res.extras["gaze"]
    assert g["aoi"] == ["left_eye", "nose", "off_face", "off_image"]
    assert g["face_id"].tolist() == [5, 5, -1, -1] and g["t_ns"].tolist() == [101, 102, 103, 104]
    res2 = _result(faces=[])
    st.process(np.zeros((480, 640, 3), np.uint8), res2)  # no new samples, no faces: empty arrays, no crash
    assert res2.extras["gaze"]["aoi"] == [] and res2.extras["gaze"]["face_id"].size == 0
    s = st.summary()
    assert s["gaze_samples"] == 4 and s["gaze_aoi_percent"]["nose"] == 25.0
    st.close()
    st.close()


def test_live_zmq_source_through_stage():
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    st = GazeAOIStage("gaze", GazeAOIParams(live="zmq", live_endpoint=f"tcp://127.0.0.1:{port}"))
    st.open()
    try:
        face = _face()
        nose = face.landmarks_px[1]
        end = time.monotonic() + 5.0
        labels: list[str] = []
        while time.monotonic() < end and not labels:
            pub.send_multipart([PIXEL_GAZE_TOPIC.encode(),
                                msgpack.packb({"x_px": float(nose[0]), "y_px": float(nose[1]), "t_ns": 9})])
            time.sleep(0.02)
            res = _result(faces=[face])
            st.process(np.zeros((480, 640, 3), np.uint8), res)
            labels = res.extras["gaze"]["aoi"]
        assert labels and set(labels) == {"nose"}
    finally:
        st.close()
        pub.close()


def test_recording_provider_frames_and_rescale():
    tr = read_pupil_player(PUPIL / "gazeclassify", size=(1088, 1080))
    prov = RecordingGazeProvider(tr)
    total = sum(prov.sample_indices(k).size for k in range(58))
    assert total == 145  # every sample served exactly once over the 58 frames
    half = prov.samples_for_frame(FrameMeta(0, 0, 0, 544, 540, "half-size"))
    full = prov.samples_for_frame(FrameMeta(0, 0, 0, 1088, 1080, "full"))
    assert half.t_ns.size == full.t_ns.size > 0 and np.allclose(half.x_px * 2, full.x_px)
    st = GazeAOIStage("gaze", GazeAOIParams(recording=str(PUPIL / "gazeclassify"), scene_width=1088,
                                            scene_height=1080))
    st.open()
    res = FrameResult(FrameMeta(1, 0, 0, 1088, 1080, "world.mp4"))
    st.process(np.zeros((1080, 1088, 3), np.uint8), res)
    assert res.extras["gaze"]["aoi"] == ["off_face"] * int(np.sum(prov.frame_idx == 1))
    st.close()


def test_live_pupil_remote_unreachable_fails_in_open():
    with zmq.Context.instance().socket(zmq.REP) as s:
        s.setsockopt(zmq.LINGER, 0)
        port = s.bind_to_random_port("tcp://127.0.0.1")  # bound, never answers
        st = GazeAOIStage("gaze", GazeAOIParams(live="pupil_remote", live_port=port, live_connect_timeout_s=0.3))
        with pytest.raises(TransportError, match=f"tcp://127.0.0.1:{port}"):
            st.open()
        st.close()
