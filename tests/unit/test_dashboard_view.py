"""The dashboard's state reducer (pure logic, mechanism tests): frames, stats, gaze dwell shares, hub cameras, the
alert lifecycle, stalled streams, JSON that browsers can parse (no NaN), and any wire-valid message never breaking
it (Hypothesis)."""
from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rtface.dashboard.view import DashboardView

C = {"received": 1, "missed_frames": 0, "index_gaps": 0, "malformed": 0, "reconnects": 0}


def _frame(i: int, gaze=None, **face) -> dict:
    f = {"id": 0, "confidence": 0.9, "bbox_px": np.array([1, 2, 3, 4], np.float32),
         "landmarks_px": np.zeros((478, 3), np.float32), "neutral_ready": False, "shape_frames": float("inf"),
         "pose": {"yaw_deg": 1.0, "pitch_deg": float("nan"), "roll_deg": 0.0},
         "au": {"names": ["AU01", "AU12"], "intensity": np.array([0.0, np.nan], np.float32),
                "presence": np.array([False, True])},
         "emotion": {"names": ["neutral", "happiness"], "probs": np.array([0.2, 0.8], np.float32)},
         "eye_closure_l": 0.1, "eye_closure_r": float("nan"), **face}
    m = {"topic": "rtface.v1.frame", "v": 1, "seq": i, "t_publish_ns": 2_000_000 + i, "frame": i,
         "t_capture_ns": 1_000_000 + i, "t_media_ns": i * 33_000_000, "source": "cam", "width": 640, "height": 360,
         "faces": [f]}
    if gaze is not None:
        m["gaze"] = gaze
    return m


def _doc(v: DashboardView) -> dict:
    return json.loads(v.snapshot()[1])  # strict JSON: json.loads would accept NaN, so check the text too


def test_frame_stats_and_json_without_nan():
    v = DashboardView(stream_endpoint="tcp://x:1", alerts_endpoint="")
    v.on_message("rtface.v1.frame", _frame(3), C)
    v.on_message("rtface.v1.stats", {"topic": "rtface.v1.stats", "v": 1, "seq": 0, "t_publish_ns": 0, "fps": 30.0,
                                     "latency_ms": {"p50": float("nan"), "p99": 9.0}, "drops": {"ring": {"skipped": 2}}}, C)
    text = v.snapshot()[1]
    assert "NaN" not in text and "Infinity" not in text
    d = json.loads(text)
    cam = d["cameras"][0]
    f = cam["faces"][0]
    assert cam["state"] == "live" and cam["frame"]["index"] == 3 and cam["frame"]["latency_ms"] == 1.0
    assert f["shape_frames"] == "explicit" and f["pose"]["pitch_deg"] is None
    assert f["au"]["intensity"] == [0.0, None] and f["au"]["presence"] == [False, True]
    assert len(f["landmarks"]) == 956 and f["eyes"]["eye_closure_r"] is None
    assert cam["stats"]["latency_ms"] == {"p50": None, "p99": 9.0} and d["channel"]["state"] == "off"


def test_gaze_dwell_shares_per_face():
    v = DashboardView(stream_endpoint="e", alerts_endpoint="")
    g = {"face_id": np.array([0, 0, 0, -1], np.int64), "aoi": ["nose", "nose", "mouth|face", "off_face"],
         "aoi_names": ["nose", "mouth", "left_eye"]}
    v.on_message("rtface.v1.frame", _frame(0, gaze=g), C)
    f = _doc(v)["cameras"][0]["faces"][0]
    assert f["gaze"]["samples"] == 3
    assert f["gaze"]["share"] == {"nose": 0.5, "mouth": 0.25, "left_eye": 0.0}
    assert _doc(v)["cameras"][0]["gaze"]["off_share"] == {"off_face": 0.25}


def test_hub_topics_are_cameras_and_stalls_are_per_camera():
    v = DashboardView(stream_endpoint="e", alerts_endpoint="", stall_s=1.0)
    v.on_message("rtface.v1.frame@cam1", {**_frame(0), "camera": "cam1"}, C)
    v.on_message("rtface.v1.frame@cam2", {**_frame(0), "camera": "cam2"}, C)
    v.cameras["cam2"].last_rx -= 5.0  # cam2 silent for 5 s
    d = _doc(v)
    assert {c["name"]: c["state"] for c in d["cameras"]} == {"cam1": "live", "cam2": "stalled"}
    assert d["stream"]["state"] == "stalled"
    v.on_message("rtface.v1.session@cam1", {"outcome": "completed", "complete": True}, C)
    assert {c["name"]: c["state"] for c in _doc(v)["cameras"]}["cam1"] == "ended"
    v.on_message("rtface.v1.hub", {"cameras": {"cam1": {"frames": 3}}}, C)  # the hub's heartbeat is no camera
    d = _doc(v)
    assert sorted(c["name"] for c in d["cameras"]) == ["cam1", "cam2"]
    assert d["hub"]["stats"]["cameras"]["cam1"]["frames"] == 3


def test_alert_lifecycle_and_local_offline():
    v = DashboardView(stream_endpoint="e", alerts_endpoint="tcp://a:1")
    base = {"journal": "j", "alert_id": 4, "rule": "pain", "priority": "medium", "face_id": 0, "t_capture_ns": 5}
    v.on_alert_item({**base, "type": "active", "state": "active"})
    v.on_alert_item({**base, "type": "raised", "seq": 9})  # its raise after the snapshot: the same alert
    assert [a["alert_id"] for a in _doc(v)["alerts"]] == [4]
    v.on_alert_item({**base, "type": "escalated", "priority": "high"})
    v.on_alert_item({**base, "type": "acknowledged", "by": "kim", "t_event_ns": 7})
    a = _doc(v)["alerts"][0]
    assert (a["state"], a["acked_by"], a["priority"]) == ("acknowledged", "kim", "high")
    v.on_alert_item({**base, "type": "cleared", "reason": "condition_cleared", "t_event_ns": 8})
    d = _doc(v)
    assert d["alerts"] == [] and d["cleared"][0]["reason"] == "condition_cleared"
    v.on_alert_item({"type": "raised", "local": True, "rule": "monitor_offline", "alert_id": "local-1",
                     "message": "no heartbeat"})
    assert _doc(v)["channel"]["state"] == "offline"
    v.on_alert_item({"type": "cleared", "local": True, "rule": "monitor_offline", "alert_id": "local-1"})
    assert _doc(v)["channel"]["state"] == "connected" and _doc(v)["alerts"] == []


def test_replayed_alerts_are_read_only():
    v = DashboardView(stream_endpoint="e", alerts_endpoint="")
    item = {"type": "raised", "journal": "j", "alert_id": 1, "rule": "smile", "priority": "high"}
    v.on_message("rtface.v1.alert.smile", {"alert": item}, C)
    assert _doc(v)["alerts"][0]["replayed"] is True


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(), st.text(max_size=8),
                    st.binary(max_size=8))
values = st.recursive(scalars, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                                    st.dictionaries(st.text(max_size=6), ch, max_size=4)),
                      max_leaves=20)
messages = st.dictionaries(st.sampled_from(["frame", "faces", "gaze", "t_capture_ns", "t_publish_ns", "t_media_ns",
                                            "camera", "alert", "jpeg", "fps", "drops", "outcome"]), values)


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(["rtface.v1.frame", "rtface.v1.stats", "rtface.v1.session", "rtface.v1.preview",
                              "rtface.v1.alert.x", "rtface.v1.frame@c", "rtface.v1.other"]), msg=messages,
       item=st.dictionaries(st.sampled_from(["type", "journal", "alert_id", "local", "by", "priority"]), values))
def test_any_wire_valid_message_keeps_the_view_usable(topic, msg, item):
    v = DashboardView(stream_endpoint="e", alerts_endpoint="a")
    v.on_message(topic, msg, C)
    v.on_alert_item(item)
    text = v.snapshot()[1]
    def no_constant(name):  # NaN / Infinity / -Infinity tokens: not JSON, browsers reject them
        raise AssertionError(f"{name} in the state document")

    assert json.loads(text, parse_constant=no_constant)["type"] == "state"
    assert not math.isnan(v.version)


def test_frame_fields_of_the_wrong_type_show_as_missing():
    v = DashboardView(stream_endpoint="e", alerts_endpoint="")
    v.on_message("rtface.v1.frame", {"frame": {"NaN": None}, "width": True, "height": 2.5, "source": [1],
                                     "t_capture_ns": "x"}, C)
    f = _doc(v)["cameras"][0]["frame"]
    assert (f["index"], f["width"], f["height"], f["source"], f["t_capture_ns"]) == (None, None, None, None, None)
