"""End to end: real video -> real MediaPipe -> real ZeroMQ sockets on loopback -> decoding subscriber."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow.parquet as pq
import pytest

from rtface.config import config_from_dict
from rtface.errors import StageError
from rtface.graph.runner import Engine
from rtface.output.tables import read_results
from rtface.transport.subscriber import Subscriber
from tests.conftest import SAMPLE_VIDEO, VIDEO, free_port


def make_engine(source, *, stages=None, publish=None, output="", **engine) -> Engine:
    cfg = config_from_dict({
        "source": {"spec": str(source), "realtime": False},
        "engine": engine,
        "publish": publish or {"enabled": False},
        "output": {"path": str(output)},
        "control": {"enabled": False},
        "stages": stages or [{"kind": "landmarks"}],
    })
    return Engine(cfg)


def test_every_frame_reaches_a_subscriber_in_order():
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    got: list[dict] = []
    stats: list[dict] = []
    done = threading.Event()

    def listen(sub: Subscriber) -> None:
        while not done.is_set():
            item = sub.recv(timeout_s=0.2)
            if item is None:
                continue
            topic, msg = item
            if topic == "rtface.v1.frame":
                got.append(msg)
            elif topic == "rtface.v1.stats":
                stats.append(msg)
            elif topic == "rtface.v1.session":
                done.set()

    sub = Subscriber(endpoint)  # connects before the engine binds: ZeroMQ allows it
    t = threading.Thread(target=listen, args=(sub,), daemon=True)
    t.start()
    engine = make_engine(SAMPLE_VIDEO, publish={"endpoint": endpoint, "wait_subscribers": 1, "sndhwm": 1000})
    summary = engine.run()
    assert done.wait(10), "no session message"
    t.join(5)
    sub.close()
    assert [m["frame"] for m in got] == list(range(72))
    assert sub.missed_frames == 0
    t_media = [m["t_media_ns"] for m in got]
    t_cap = [m["t_capture_ns"] for m in got]
    assert all(np.diff(t_media) > 0) and all(np.diff(t_cap) >= 0)
    assert abs(t_media[-1] / 1e9 - 71 / 30) < 0.01  # 30 fps video: real media time
    faces = [m["faces"] for m in got]
    assert all(len(f) == 1 for f in faces)
    lm = faces[10][0]["landmarks_px"]
    assert lm.shape == (478, 3) and lm.dtype == np.float32
    assert {f[0]["id"] for f in faces} == {0}
    assert stats, "no heartbeat"
    assert summary["stats"]["frames"] == 72


def test_python_api_iterates_results_and_writes_parquet(tmp_path):
    out = tmp_path / "r.parquet"
    frames = []
    with make_engine(SAMPLE_VIDEO, output=out, max_frames=20) as engine:
        for r in engine.results():
            frames.append((r.meta.index, len(r.faces), r.stage_ms["landmarks"]))
    assert [f[0] for f in frames] == list(range(20))
    t = read_results(out)  # the compact Parquet layout, read back flat
    assert t.num_rows == 20
    assert t.column("frame").to_pylist() == list(range(20))
    assert t.column("x_0").null_count == 0
    assert not (tmp_path / "r.parquet.partial").exists()


def test_no_face_video_gives_no_face_and_no_error(tmp_path):
    out = tmp_path / "r.csv"
    summary = make_engine(VIDEO / "no_face.mp4", output=out).run()
    import pyarrow.csv as pcsv

    t = pcsv.read_csv(out)
    assert t.num_rows >= 95
    assert set(t.column("face_id").to_pylist()) == {-1}
    assert set(t.column("success").to_pylist()) == {0}
    assert summary["stats"]["faces_total"] == 0


def test_face_then_no_face():
    has_face = [len(r.faces) > 0 for r in make_engine(VIDEO / "face_noface.mov").results()]
    assert len(has_face) == 169
    first_gone = has_face.index(False)
    assert first_gone > 30 and all(has_face[:first_gone])
    assert not any(has_face[first_gone + 5:]), "a face reappeared in the cartoon half"


def test_stage_error_policy_skip_counts_and_continues():
    stages = [{"kind": "landmarks"},
              {"kind": "tests.integration.stage_plugins:FailingStage", "fail_at": 5, "on_error": "skip"}]
    engine = make_engine(SAMPLE_VIDEO, stages=stages, max_frames=12)
    n = sum(1 for _ in engine.results())
    assert n == 12
    assert engine.stats.stage_errors == {"failingstage": 1}


def test_stage_error_policy_disable_stops_calling():
    stages = [{"kind": "landmarks"},
              {"kind": "tests.integration.stage_plugins:FailingStage", "name": "bad", "fail_at": 2, "every": True,
               "on_error": "disable", "max_errors": 3}]
    engine = make_engine(SAMPLE_VIDEO, stages=stages, max_frames=15)
    results = list(engine.results())
    assert len(results) == 15 and engine.stats.stage_errors == {"bad": 3}
    assert engine.stats.disabled_stages == ["bad"]


def test_stage_error_raise_keeps_partial_output(tmp_path):
    out = tmp_path / "r.parquet"
    stages = [{"kind": "landmarks"},
              {"kind": "tests.integration.stage_plugins:FailingStage", "name": "bad", "fail_at": 10,
               "on_error": "raise"}]
    engine = make_engine(SAMPLE_VIDEO, stages=stages, output=out)
    with pytest.raises(StageError, match="stage 'bad' failed on frame 10"):
        engine.run()
    assert not out.exists(), "an incomplete output must not look complete"
    partial = tmp_path / "r.parquet.partial"
    assert pq.read_table(partial).column("frame").to_pylist() == list(range(10))
