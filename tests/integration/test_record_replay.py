"""`rtface record` / `rtface replay` through the CLI against a real engine on the sample video: a recording holds
every frame, stats, session and alert message; replayed on the same topics, a second recorder gets the same frames.
A stream with lost messages never leaves a file that looks complete (mechanism test with a hand-made publisher)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from rtface.record.recording import iter_rows, read_messages, read_meta
from rtface.transport.wire import encode, stamp
from tests.conftest import free_port
from tests.integration.alert_procs import REPO, start, wait_for
from tests.integration.live_procs import engine_config

HEADER = ("seq", "t_publish_ns")


def _rtface(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtface", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and \
            np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b


def test_record_a_run_replay_it_and_record_the_replay(tmp_path: Path):
    pub, alerts = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    # the sample video as a file (every frame), waiting for the recorder; the test rule raises an alert
    cfg = engine_config(tmp_path, pub, alerts, realtime=False, wait_subscribers=1, clear_s=0.0)
    first, second = tmp_path / "session.parquet", tmp_path / "replayed.parquet"
    rec = start(["record", "--out", str(first), "--endpoint", pub, "--alerts", alerts, "--until-end"],
                tmp_path / "rec1.log")
    eng = subprocess.run([sys.executable, "-m", "rtface", "run", "--config", str(cfg), "--no-analyze"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert eng.returncode == 0, eng.stderr[-2000:]
    assert rec.wait(60) == 0, (tmp_path / "rec1.log").read_text()
    assert first.is_file() and not Path(str(first) + ".partial").exists()
    meta = read_meta(first)
    assert meta["complete"] is True and meta["gaps"] == {} and meta["end_reason"] == "engine_ended"
    assert meta["messages"]["rtface.v1.frame"] == 72 and meta["messages"]["rtface.v1.session"] == 1
    assert meta["messages"].get("rtface.v1.stats", 0) >= 1
    rows = list(iter_rows(first))
    frames = [r["frame"] for r in rows if r["topic"] == "rtface.v1.frame"]
    assert frames == list(range(72)) and all(r["gap_before"] == 0 for r in rows)
    alert_rows = [r for r in rows if r["channel"] == "alerts"]
    assert alert_rows and all(r["topic"] == "rtface.v1.alert.smile" for r in alert_rows)
    # the recorder's alert client may say hello after the raise (the engine waits for the stream subscriber only):
    # it then gets the alert in the snapshot of active alerts, as every late listener does
    assert {m["alert"]["type"] for t, m in read_messages(first, "rtface.v1.alert.")} & {"raised", "active"}

    # replay on another endpoint, four times faster, to a second recorder
    out2 = f"tcp://127.0.0.1:{free_port()}"
    rec2 = start(["record", "--out", str(second), "--endpoint", out2, "--no-alerts", "--until-end"],
                 tmp_path / "rec2.log")
    rp = _rtface("replay", str(first), "--endpoint", out2, "--speed", "4", "--wait-subscribers", "1")
    assert rp.returncode == 0, rp.stderr
    assert rec2.wait(60) == 0, (tmp_path / "rec2.log").read_text()
    a = [(t, m) for t, m in read_messages(first) if not t.startswith("rtface.v1.alert.")]
    b = [(t, m) for t, m in read_messages(second) if not t.startswith("rtface.v1.alert.")]
    assert [t for t, _ in a] == [t for t, _ in b]
    for (_, ma), (_, mb) in zip(a, b):
        assert _same({k: v for k, v in ma.items() if k not in HEADER}, {k: v for k, v in mb.items()
                                                                         if k not in HEADER})
    # replayed alert items travel read-only on the PUB alert topic
    assert [m["alert"]["alert_id"] for _, m in read_messages(second, "rtface.v1.alert.")] == \
        [m["alert"]["alert_id"] for _, m in read_messages(first, "rtface.v1.alert.")]
    assert read_meta(second)["complete"] is True


def _publish_with_gap(endpoint: str, stop_after: float = 20.0) -> None:
    """A PUB socket that sends frame seq 0, 1, 2, 5, 6 (two lost) and a session message (a hand-made publisher)."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.XPUB)
    s.bind(endpoint)
    try:
        assert s.poll(int(stop_after * 1000))  # the recorder's subscription
        s.recv()
        for seq in (0, 1, 2, 5, 6):
            msg = stamp("rtface.v1.frame", {"frame": seq, "t_capture_ns": time.time_ns(), "t_media_ns": 0,
                                            "faces": []}, seq, time.time_ns())
            s.send_multipart([b"rtface.v1.frame", encode(msg)])
        s.send_multipart([b"rtface.v1.session", encode(stamp("rtface.v1.session", {"outcome": "completed"}, 0,
                                                             time.time_ns()))])
        time.sleep(1.0)
    finally:
        s.close(linger=1000)


@pytest.mark.parametrize("allow", [False, True])
def test_lost_messages_never_leave_a_complete_looking_file(tmp_path: Path, allow: bool):
    ep = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "s.parquet"
    args = ["record", "--out", str(out), "--endpoint", ep, "--no-alerts", "--until-end"]
    rec = start(args + (["--allow-incomplete"] if allow else []), tmp_path / "rec.log")
    _publish_with_gap(ep)
    assert rec.wait(60) == 2
    log = (tmp_path / "rec.log").read_text()
    assert "incomplete" in log and "2 messages lost" in log
    kept = out if allow else Path(str(out) + ".partial")
    assert kept.is_file() and out.exists() == allow
    meta = read_meta(kept) if allow else None
    if allow:
        assert meta["complete"] is False and meta["gaps"] == {"rtface.v1.frame": 2}
    rows = list(iter_rows(kept)) if allow else []
    if allow:
        assert [r["gap_before"] for r in rows if r["topic"] == "rtface.v1.frame"] == [0, 0, 0, 2, 0]


def test_replay_refuses_what_is_not_a_recording(tmp_path: Path):
    table = tmp_path / "results.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"frame": [0, 1]}), table)
    r = _rtface("replay", str(table), "--endpoint", f"tcp://127.0.0.1:{free_port()}", timeout=60)
    assert r.returncode == 2 and "not an rtface recording" in r.stderr
    r = _rtface("replay", str(tmp_path / "missing.parquet"), timeout=60)
    assert r.returncode == 2 and "does not exist" in r.stderr
