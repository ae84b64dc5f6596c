"""The LSL outlet through `rtface run --lsl` on the sample video, read by a real pylsl inlet: declared channels
(label, unit, type for every one), nominal rate, stable source id, values equal to the ZeroMQ frame message of the
same frame, NaN for an empty face slot, timestamps monotonic and at the frame's capture time on the LSL clock; the
Markers stream carries the test rule's alerts."""
from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl", reason="pylsl is in the test extra")

from rtface.stages.lsl import LslParams, LslStage  # noqa: E402
from rtface.transport.subscriber import Subscriber  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.integration.alert_procs import kill, start, wait_for  # noqa: E402
from tests.integration.live_procs import engine_config  # noqa: E402


def _channels(info) -> list[tuple[str, str, str]]:
    out, ch = [], info.desc().child("channels").child("channel")
    while not ch.empty():
        out.append((ch.child_value("label"), ch.child_value("unit"), ch.child_value("type")))
        ch = ch.next_sibling()
    return out


def _resolve(prop: str, value: str):
    found = pylsl.resolve_byprop(prop, value, timeout=1.0)
    return found[0] if found else None


def test_lsl_outlet_matches_the_zeromq_frames(tmp_path: Path):
    pub, alerts = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    cfg = engine_config(tmp_path, pub, alerts, clear_s=0.0, latching=False)  # raised at every smile
    name = f"rtface_test_{time.time_ns()}"
    cfg.write_text(cfg.read_text() + f'\n[[stages]]\nkind = "lsl"\nfaces = 2\nstream_name = "{name}"\n')
    eng = start(["run", "--config", str(cfg), "--no-analyze"], tmp_path / "engine.log")
    sub = Subscriber(pub, topics=("rtface.v1.frame",))
    try:
        info = wait_for(lambda: _resolve("name", name), 120, "the LSL face stream")
        minfo = wait_for(lambda: _resolve("name", f"{name} Markers"), 30, "the LSL markers stream")
        inlet = pylsl.StreamInlet(info, max_buflen=60, processing_flags=0)
        markers = pylsl.StreamInlet(minfo, processing_flags=0)
        full = inlet.info(timeout=10)
        chans = _channels(full)
        labels = [c[0] for c in chans]
        assert full.type() == "FacialExpression" and full.channel_format() == pylsl.cf_double64
        assert full.nominal_srate() == pytest.approx(30.0, rel=0.01)  # the sample video's frame rate
        assert full.source_id().startswith("rtface-") and minfo.type() == "Markers"
        assert minfo.nominal_srate() == pylsl.IRREGULAR_RATE and minfo.channel_format() == pylsl.cf_string
        assert len(chans) == full.channel_count() and all(all(c) for c in chans)  # label, unit, type everywhere
        per_face = (len(labels) - 1) // 2
        assert labels[0] == "frame" and len(labels) == 1 + 2 * per_face
        assert {"face0_id", "face0_yaw_deg", "face0_AU12_r", "face0_AU12_c", "face0_emotion_happiness",
                "face0_eye_closure_l", "face1_AU12_r"} <= set(labels)
        assert dict((c[0], c[1:]) for c in chans)["face0_AU12_r"] == ("FACS intensity 0-5", "ActionUnit")

        samples, msgs = [], {}
        inlet.open_stream(timeout=10)

        def collect():
            s, ts = inlet.pull_sample(timeout=0.2)
            if s is not None:
                samples.append((s, ts, pylsl.local_clock() - time.time()))
            while (got := sub.recv(timeout_s=0)) is not None:
                msgs[got[1]["frame"]] = got[1]
            return len([x for x in samples if int(x[0][0]) in msgs]) >= 60

        wait_for(collect, 120, "60 LSL samples with their ZeroMQ frame messages", poll_s=0)
        marks = []
        wait_for(lambda: (m := markers.pull_sample(timeout=0.2))[0] is not None and marks.append(
            (json.loads(m[0][0]), m[1])) is None and any(x[0].get("event") == "alert" and x[0].get("type") == "raised"
                                            for x in marks), 120, "the test rule's raised-alert marker", poll_s=0)
    finally:
        sub.close()
        kill(eng, signal.SIGINT)
    idx = labels.index
    matched = [(s, ts, off, msgs[int(s[0])]) for s, ts, off in samples if int(s[0]) in msgs]
    ts_all = [ts for _, ts, _ in samples]
    assert all(b > a for a, b in zip(ts_all, ts_all[1:]))  # monotonic
    for s, ts, off, m in matched:
        f = m["faces"][0]
        assert s[idx("face0_id")] == f["id"]
        assert s[idx("face0_yaw_deg")] == f["pose"]["yaw_deg"]
        assert s[idx("face0_tz_cm")] == f["pose"]["tz_cm"]
        for j, n in enumerate(f["au"]["names"]):
            assert s[idx(f"face0_{n}_r")] == float(f["au"]["intensity"][j])
            assert s[idx(f"face0_{n}_c")] == float(f["au"]["presence"][j])
        for j, n in enumerate(f["emotion"]["names"]):
            assert s[idx(f"face0_emotion_{n}")] == float(f["emotion"]["probs"][j])
        assert s[idx("face0_eye_closure_l")] == f["eye_closure_l"]
        assert all(math.isnan(v) for v in s[idx("face1_id"):])  # the empty second slot
        expected = m["t_capture_ns"] / 1e9 + off  # the capture time on the LSL clock
        assert abs(ts - expected) < 0.005  # within a few ms (a correctness check of the clock mapping)
    # (session_start and face_enter were pushed at the first frame, before this inlet could connect)
    alert = next(x[0] for x in marks if x[0].get("event") == "alert" and x[0].get("type") == "raised")
    assert alert["rule"] == "smile" and alert["face_id"] == 0 and isinstance(alert["alert_id"], int)


def test_source_id_is_stable_for_the_same_setup():
    a = LslStage("lsl", LslParams())._stable_id("single_face.mp4")
    assert a == LslStage("lsl", LslParams())._stable_id("single_face.mp4")
    assert a != LslStage("lsl", LslParams())._stable_id("camera:0")
    assert LslStage("lsl", LslParams(source_id="lab-cam-1"))._stable_id("x") == "lab-cam-1"


def test_face_slots_keep_faces_and_count_overflow():
    from rtface.output.lsl_outlet import SlotMap

    m = SlotMap(2)
    assert m.assign([7]) == ({7: 0}, [7], [])
    assert m.assign([7, 9]) == ({7: 0, 9: 1}, [9], [])
    assert m.assign([9, 11, 12]) == ({9: 1, 11: 0}, [11], [7])
    assert m.dropped == 1


def test_lsl_params_are_checked():
    from rtface.config import build_dataclass
    from rtface.errors import ConfigError

    with pytest.raises(ConfigError, match="faces"):
        build_dataclass(LslParams, {"faces": 0}, "stage 'lsl'")
    np.testing.assert_equal(LslParams().faces, 1)
