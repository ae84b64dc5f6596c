"""Wire format, message builders and summaries (pure logic, no sockets)."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest

from rtface.errors import TransportError
from rtface.records import N_LANDMARKS, Face, FrameMeta, FrameResult, HeadPose
from rtface.transport import (
    TOPIC_FRAME, TOPIC_SESSION, TOPIC_STATS, GapCounter, alert_topic, decode, decode_multipart, encode,
    format_summary, frame_message, session_message, stamp, stats_message,
)

AU_NAMES = ["AU01", "AU06", "AU12"]
EMO_NAMES = ["neutral", "happy", "sad"]


def roundtrip(payload: dict, topic: str = TOPIC_FRAME) -> dict:
    return decode(encode(stamp(topic, payload, 7, 123)), topic=topic)


def packed(obj: dict) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


HEADER = {"topic": TOPIC_FRAME, "v": 1, "seq": 0, "t_publish_ns": 1}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_, np.uint8])
@pytest.mark.parametrize("shape", [(N_LANDMARKS, 3), (0, N_LANDMARKS, 3), (5,), ()])
def test_array_roundtrip_every_dtype_and_shape(dtype, shape):
    rng = np.random.default_rng(0)
    a = np.asarray(rng.random(shape) * 200).astype(dtype)
    out = roundtrip({"a": a})["a"]
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    np.testing.assert_array_equal(out, a)
    assert not out.flags.writeable


def test_array_encoding_is_explicit_little_endian_map():
    raw = msgpack.unpackb(encode(stamp(TOPIC_FRAME, {"a": np.zeros((478, 3), ">f4")}, 0, 0)), raw=False)["a"]
    assert raw == {"__nd__": True, "dtype": "<f4", "shape": [478, 3], "data": bytes(478 * 3 * 4)}


def test_non_contiguous_and_big_endian_arrays_are_sent_correctly():
    a = np.arange(24, dtype=">i4").reshape(4, 6)[:, ::2]
    out = roundtrip({"a": a})["a"]
    assert out.dtype == np.dtype("<i4")
    np.testing.assert_array_equal(out, a)


def test_decode_does_not_copy_array_bytes():
    data = encode(stamp(TOPIC_FRAME, {"a": np.ones((478, 3), np.float32)}, 0, 0))
    out = decode(data)["a"]
    assert not out.flags.owndata


def test_nested_dicts_lists_and_scalars_roundtrip():
    payload = {"d": {"x": [1, 2.5, None, True, "s", b"\x00\x01", {"y": np.arange(3)}]},
               "np_scalars": [np.float32(1.5), np.int64(-3), np.bool_(True)], "t": (1, 2)}
    out = roundtrip(payload)
    assert out["d"]["x"][:6] == [1, 2.5, None, True, "s", b"\x00\x01"]
    np.testing.assert_array_equal(out["d"]["x"][6]["y"], np.arange(3))
    assert out["np_scalars"] == [1.5, -3, True]
    assert out["t"] == [1, 2]
    assert (out["topic"], out["v"], out["seq"], out["t_publish_ns"]) == (TOPIC_FRAME, 1, 7, 123)


@pytest.mark.parametrize("payload, fragment", [
    ({"a": np.array(["x"])}, "'a'"),
    ({"d": {"o": object()}}, "'d.o'"),
    ({"l": [1, {2: 3}]}, "keys must be str"),
    ({"big": 2**70}, "'big'"),
])
def test_encode_unsendable_names_field(payload, fragment):
    with pytest.raises(TransportError, match="rtface.v1.frame") as ei:
        encode(stamp(TOPIC_FRAME, payload, 0, 0))
    assert fragment in str(ei.value)


def test_encode_requires_header_and_stamp_refuses_other_topic():
    with pytest.raises(TransportError, match="'topic'"):
        encode({"x": 1})
    with pytest.raises(TransportError, match="rtface.v1.stats"):
        stamp(TOPIC_FRAME, {"topic": TOPIC_STATS}, 0, 0)


def nd(**over):
    m = {"__nd__": True, "dtype": "<f4", "shape": [2, 3], "data": bytes(24)}
    m.update(over)
    return m


@pytest.mark.parametrize("data, fragment", [
    (b"\xc1", "not valid msgpack"),
    (packed([1, 2]), "expected a map"),
    (packed({"v": 1, "seq": 0, "t_publish_ns": 0}), "'topic'"),
    (packed({**HEADER, "v": 2}), "field 'v' is 2"),
    (packed({**HEADER, "seq": -1}), "'seq'"),
    (packed({**HEADER, "t_publish_ns": "now"}), "'t_publish_ns'"),
    (packed({**HEADER, "faces": [{"landmarks_px": nd(data=bytes(10))}]}), "'faces[0].landmarks_px'"),
    (packed({**HEADER, "a": nd(dtype=">f4")}), "dtype '>f4'"),
    (packed({**HEADER, "a": nd(dtype="<O8")}), "'a'"),
    (packed({**HEADER, "a": nd(dtype="<f3")}), "not understood"),
    (packed({**HEADER, "a": nd(shape=[2, -3])}), "shape"),
    (packed({**HEADER, "a": nd(shape="2x3")}), "shape"),
    (packed({**HEADER, "a": nd(data="text")}), "data must be bin"),
    (packed({**HEADER, "a": nd(extra=1)}), "unexpected keys"),
    (packed({**HEADER, "a": nd(__nd__=False)}), "'__nd__'"),
])
def test_malformed_payload_raises_naming_topic_and_field(data, fragment):
    with pytest.raises(TransportError) as ei:
        decode(data)
    assert fragment in str(ei.value)
    if fragment not in ("not valid msgpack", "expected a map", "'topic'"):
        assert "rtface.v1.frame" in str(ei.value)


def test_decode_multipart_checks_envelope():
    data = encode(stamp(TOPIC_FRAME, {}, 0, 0))
    assert decode_multipart([TOPIC_FRAME.encode(), data])[0] == TOPIC_FRAME
    with pytest.raises(TransportError, match="envelope"):
        decode_multipart([TOPIC_STATS.encode(), data])
    with pytest.raises(TransportError, match="2 frames"):
        decode_multipart([data])
    with pytest.raises(TransportError, match="utf-8"):
        decode_multipart([b"\xff\xfe", data])


def test_alert_topic():
    assert alert_topic("eyes_closed") == "rtface.v1.alert.eyes_closed"
    with pytest.raises(TransportError, match="Bad Kind"):
        alert_topic("Bad Kind")


# ------------------------------------------------------------------------------------------------- messages

def make_face(full: bool, face_id: int = 0) -> Face:
    rng = np.random.default_rng(face_id)
    lm = (rng.random((N_LANDMARKS, 3)) * [640, 360, 50]).astype(np.float32)
    face = Face(face_id=face_id, confidence=0.99, bbox_px=np.array([10, 20, 300, 340], np.float32),
                landmarks_px=lm)
    if full:
        face.pose = HeadPose(-3.1, 2.0, 0.4, 1.5, -2.0, 55.0, 1.02, np.eye(3))
        face.canonical_cm = (lm / 100).astype(np.float64)
        face.neutral_ready = True
        face.au_intensity = np.array([0.2, 1.4, 2.1], np.float32)
        face.au_presence = np.array([False, True, True])
        face.emotion = np.array([0.1, 0.81, 0.09], np.float32)
    return face


def make_result(faces: list[Face], extras: dict | None = None) -> FrameResult:
    return FrameResult(meta=FrameMeta(41, 1_000_000_000, 1_367_000_000, 640, 360, "single_face.mp4"),
                       faces=faces, stage_ms={"landmarks": 8.5, "pose": 0.4}, extras=extras or {})


def test_frame_message_minimal_face():
    msg = roundtrip(frame_message(make_result([make_face(False)])))
    assert (msg["frame"], msg["t_capture_ns"], msg["t_media_ns"], msg["width"], msg["height"], msg["source"]) == \
        (41, 1_000_000_000, 1_367_000_000, 640, 360, "single_face.mp4")
    assert msg["stage_ms"] == {"landmarks": 8.5, "pose": 0.4}
    (f,) = msg["faces"]
    assert set(f) == {"id", "confidence", "bbox_px", "landmarks_px", "neutral_ready", "shape_frames"}
    assert f["landmarks_px"].shape == (N_LANDMARKS, 3) and f["landmarks_px"].dtype == np.float32
    np.testing.assert_array_equal(f["landmarks_px"], make_face(False).landmarks_px)
    assert f["neutral_ready"] is False


def test_frame_message_full_face_and_extras():
    extras = {"gaze": {"aoi": "eyes", "xy_px": np.array([320.0, 180.0])}, "alerts": ["blink"],
              "handle": object()}
    face = make_face(True)
    face.extras["track_age"] = np.int64(12)
    msg = roundtrip(frame_message(make_result([face, make_face(False, 1)], extras),
                                  au_names=AU_NAMES, emotion_names=EMO_NAMES))
    f = msg["faces"][0]
    assert f["pose"] == pytest.approx({"yaw_deg": -3.1, "pitch_deg": 2.0, "roll_deg": 0.4, "tx_cm": 1.5,
                                       "ty_cm": -2.0, "tz_cm": 55.0, "scale": 1.02})
    assert f["canonical_cm"].dtype == np.float32 and f["canonical_cm"].shape == (N_LANDMARKS, 3)
    assert f["au"]["names"] == AU_NAMES
    np.testing.assert_array_equal(f["au"]["presence"], [False, True, True])
    np.testing.assert_allclose(f["emotion"]["probs"], [0.1, 0.81, 0.09], rtol=1e-6)
    assert f["track_age"] == 12 and f["neutral_ready"] is True
    assert msg["gaze"]["aoi"] == "eyes" and msg["alerts"] == ["blink"]
    assert msg["skipped_extras"] == ["handle"]
    assert "pose" not in msg["faces"][1]


def test_frame_message_without_landmarks():
    msg = frame_message(make_result([make_face(True)]), au_names=AU_NAMES, emotion_names=EMO_NAMES,
                        include_landmarks=False)
    assert "landmarks_px" not in msg["faces"][0] and "canonical_cm" not in msg["faces"][0]
    assert len(encode(stamp(TOPIC_FRAME, msg, 0, 0))) < 1000


def test_frame_message_errors_name_the_field():
    with pytest.raises(TransportError, match=r"faces\[0\].au_intensity has 3 values but 0 au_names"):
        frame_message(make_result([make_face(True)]), emotion_names=EMO_NAMES)
    with pytest.raises(TransportError, match=r"faces\[0\].emotion"):
        frame_message(make_result([make_face(True)]), au_names=AU_NAMES, emotion_names=["a"])
    with pytest.raises(TransportError, match="'faces' collides"):
        frame_message(make_result([], {"faces": 1}))
    bad = make_face(False)
    bad.landmarks_px = np.zeros((478, 2), np.float32)
    with pytest.raises(TransportError, match=r"faces\[0\].landmarks_px"):
        frame_message(make_result([bad]))


def test_stats_and_session_messages():
    stats = {"fps": np.float64(29.9), "latency_ms": {"p50": 9.1, "p99": 15.2},
             "stage_ms": {"landmarks": {"p50": 7.0, "p99": 11.0}}, "drops": {"capture": 0, "publish": 3}}
    msg = roundtrip(stats_message(stats), TOPIC_STATS)
    assert msg["fps"] == 29.9 and msg["stage_ms"]["landmarks"]["p99"] == 11.0
    odd = roundtrip(stats_message({"drops": {"capture": object(), "ring": 1}, "names": ["a"]}), TOPIC_STATS)
    assert odd["skipped_fields"] == ["drops.capture"] and odd["drops"] == {"ring": 1} and odd["names"] == ["a"]
    summary = {"frames": 72, "stages": {"aus": {"names": ["AU12"], "faces": {0: {"au12_mean": np.float32(1.5)}}}}}
    out = roundtrip(session_message(summary), TOPIC_SESSION)
    assert out["frames"] == 72 and out["stages"]["aus"]["faces"]["0"]["au12_mean"] == 1.5
    with pytest.raises(TransportError, match="expected a dict"):
        stats_message([1, 2])


def test_format_summary_frame_stats_and_other_topics():
    msg = roundtrip(frame_message(make_result([make_face(True)]), au_names=AU_NAMES, emotion_names=EMO_NAMES))
    msg["t_publish_ns"] = 1_012_300_000
    assert format_summary(TOPIC_FRAME, msg) == (
        "frame 41  t=1.367s  lat=12.3ms  faces=1  "
        "[#0 conf=0.99 yaw=-3.1 pitch=2.0 roll=0.4 AU12=2.1 AU06=1.4 happy=0.81]")
    empty = roundtrip(frame_message(make_result([])))
    assert format_summary(TOPIC_FRAME, empty).endswith("faces=0")
    stats = roundtrip(stats_message({"fps": 29.94, "latency_ms": {"p50": 9.1, "p99": 15.2},
                                     "drops": {"capture": 0, "publish": 3}}), TOPIC_STATS)
    assert format_summary(TOPIC_STATS, stats) == "stats fps=29.9 lat p50=9.1 p99=15.2 ms drops: capture=0 publish=3"
    nested = {"fps": 30.0, "latency_ms": {"p50": 9.0, "p99": 15.0},
              "drops": {"ring": {"written": 90, "overruns": 2, "skipped": 0}, "stage_errors": {"aus": 1},
                        "publisher": {"sent": 90}}}
    assert format_summary(TOPIC_STATS, roundtrip(stats_message(nested), TOPIC_STATS)) == \
        "stats fps=30.0 lat p50=9.0 p99=15.0 ms drops: ring.overruns=2 ring.skipped=0 stage_errors.aus=1"
    alert = roundtrip({"face_id": 0, "score": 0.5}, alert_topic("eyes_closed"))
    assert format_summary(alert_topic("eyes_closed"), alert) == "ALERT eyes_closed face_id=0 score=0.5"
    assert format_summary(TOPIC_SESSION, roundtrip({"frames": 72}, TOPIC_SESSION)) == "session frames=72"


def test_gap_counter():
    g = GapCounter()
    for key, value in [("a", 0), ("a", 1), ("a", 4), ("b", 10), ("b", 12), ("a", 5), ("a", 0), ("a", 2)]:
        g.update(key, value)
    assert g.missed == 2 + 1 + 1 and g.restarts == 1
