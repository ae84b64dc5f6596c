"""Live gaze receivers on real loopback ZeroMQ sockets (random ports, linger 0, timeouts)."""
from __future__ import annotations

import threading
import time

import msgpack
import numpy as np
import pytest
import zmq

from rtface.errors import ConfigError, TransportError
from rtface.gaze.live import (PIXEL_GAZE_TOPIC, GazeQueue, LSLGazeReceiver, NeonRealtimeReceiver,
                              PixelGazeReceiver, PupilRemoteReceiver)


def test_queue_bounded_with_drop_count():
    q = GazeQueue(maxlen=3)
    for i in range(5):
        q.put(i, float(i), 2.0 * i)
    assert len(q) == 3 and q.dropped == 2 and q.received == 5
    t, x, y, c = q.drain()
    assert t.tolist() == [2, 3, 4] and x.tolist() == [2.0, 3.0, 4.0] and y.tolist() == [4.0, 6.0, 8.0]
    assert t.dtype == np.int64 and c.tolist() == [1.0, 1.0, 1.0]
    assert q.drain()[0].size == 0


def _wait(pred, timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


class FakePupilCapture:
    """Pupil Remote (REP: SUB_PORT, t) + IPC backbone PUB, as Pupil Capture exposes them."""

    def __init__(self) -> None:
        self.ctx = zmq.Context.instance()
        self.rep = self.ctx.socket(zmq.REP)
        self.rep.setsockopt(zmq.LINGER, 0)
        self.rep_port = self.rep.bind_to_random_port("tcp://127.0.0.1")
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub_port = self.pub.bind_to_random_port("tcp://127.0.0.1")
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self.rep.poll(20):
                msg = self.rep.recv_string()
                self.rep.send_string(str(self.pub_port) if msg == "SUB_PORT" else "1000.25" if msg == "t" else "?")

    def send(self, topic: str, datum: dict) -> None:
        self.pub.send_multipart([topic.encode(), msgpack.packb(datum, use_bin_type=True)])

    def close(self) -> None:
        self._stop.set()
        self._t.join(2)
        self.rep.close()
        self.pub.close()


def test_pupil_remote_receiver_pixels():
    cap = FakePupilCapture()
    rx = PupilRemoteReceiver((1088, 1080), port=cap.rep_port, sync_clock=True, min_confidence=0.5)
    rx.start()
    try:
        assert rx.connected.wait(5.0)
        datums = [{"topic": "gaze.3d.01.", "norm_pos": [0.25, 0.75], "timestamp": 1000.5, "confidence": 0.9},
                  {"topic": "gaze.2d.0.", "norm_pos": [1.0, 0.0], "timestamp": 1000.51, "confidence": 1.0},
                  {"topic": "gaze.2d.1.", "norm_pos": [0.5, 0.5], "timestamp": 1000.52, "confidence": 0.1}]
        got: list = []

        def pump() -> bool:  # re-send until the late-joining subscriber has them (slow-joiner)
            for d in datums:
                cap.send(d["topic"], d)
            cap.send("pupil.0.2d", {"norm_pos": [0, 0], "timestamp": 1.0})  # not subscribed
            cap.send("gaze.bad", {"no": "norm_pos"})  # malformed: skipped
            got.append(rx.queue.drain())
            return any(g[0].size for g in got)

        assert _wait(pump)
        time.sleep(0.05)
        got.append(rx.queue.drain())
        t = np.concatenate([g[0] for g in got])
        x = np.concatenate([g[1] for g in got])
        y = np.concatenate([g[2] for g in got])
        by_t = {int(ti): (xi, yi) for ti, xi, yi in zip(t, x, y)}
        assert set(by_t) == {1_000_500_000_000, 1_000_510_000_000}  # the low-confidence datum is filtered
        assert by_t[1_000_500_000_000] == pytest.approx((0.25 * 1088, 0.25 * 1080))  # y flipped (bottom-left)
        assert by_t[1_000_510_000_000] == pytest.approx((1088.0, 1080.0))
        assert abs(rx.clock_offset_ns - (time.time_ns() - 1_000_250_000_000)) < 5_000_000_000
        assert rx.error is None
    finally:
        rx.stop()
        rx.stop()
        cap.close()


def test_pupil_remote_unreachable_reports_error():
    with zmq.Context.instance().socket(zmq.REP) as s:
        port = s.bind_to_random_port("tcp://127.0.0.1")  # bound, never answers
        rx = PupilRemoteReceiver((100, 100), port=port, timeout_ms=200)
        rx.start()
        assert _wait(lambda: rx.error is not None, 3.0)
        rx.stop()
        s.setsockopt(zmq.LINGER, 0)
    assert isinstance(rx.error, TransportError) and "SUB_PORT" in str(rx.error)


def test_pixel_gaze_topic():
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    rx = PixelGazeReceiver(f"tcp://127.0.0.1:{port}", queue=GazeQueue(16))
    rx.start()
    try:
        assert rx.connected.wait(5.0)

        def pump() -> bool:
            pub.send_multipart([PIXEL_GAZE_TOPIC.encode(), msgpack.packb({"x_px": 12.5, "y_px": 40.0, "t_ns": 77})])
            pub.send_multipart([PIXEL_GAZE_TOPIC.encode(), b"\xc1not-msgpack"])
            return len(rx.queue) > 0

        assert _wait(pump)
        t, x, y, _ = rx.queue.drain()
        assert t[0] == 77 and x[0] == 12.5 and y[0] == 40.0
        assert _wait(lambda: rx.bad_messages > 0, 2.0)
    finally:
        rx.stop()
        pub.close()


def test_optional_packages_clear_error():
    for rx, pkg in ((LSLGazeReceiver("gaze"), "pylsl"), (NeonRealtimeReceiver("10.0.0.2"), "pupil-labs-realtime-api")):
        try:
            __import__("pylsl" if pkg == "pylsl" else "pupil_labs.realtime_api")
        except ImportError:
            with pytest.raises(ConfigError, match=pkg):
                rx.start()
        else:  # pragma: no cover - package present on this machine
            pass


# ------------------------------------------------------------------------------------ LiveGazeProvider matching
def _meta(t_capture_ns: int, w: int = 100, h: int = 50):
    from rtface.records import FrameMeta

    return FrameMeta(0, t_capture_ns, 0, w, h, "test")


def test_provider_matches_samples_to_nearest_frame_by_time():
    from rtface.gaze.providers import LiveGazeProvider

    ms = 1_000_000

    class Rx:  # a receiver that measured Pupil -> UTC offset 1000 ms
        clock_offset_ns = 1000 * ms
        clock_rtt_ns = 5

        def stop(self) -> None:
            self.stopped = True

    q = GazeQueue()
    rx = Rx()
    prov = LiveGazeProvider(q, offset_ns=2 * ms, receiver=rx, normalised=True, window_ns=10 * ms,
                            max_lag_ns=50 * ms)
    prov.clock = lambda: 1150 * ms  # "now" on the frame clock
    # gaze clock times; frame clock = t + 1002 ms. Frames captured at 1100, 1133, 1166, 1200 ms (frame clock).
    for t_ms, x in ((80, 0.1), (95, 0.2), (105, 0.3), (120, 0.4), (135, 0.5), (180, 0.6), (1200 * 5, 0.7)):
        q.put(t_ms * ms, x, 0.5)
    s = prov.samples_for_frame(_meta(1100 * ms))
    # takes <= 1110 ms: 1082, 1097, 1107; 1122, 1137, 1182 wait; 7002 ms is > 1 s after "now": clock mismatch
    assert s.t_ns.tolist() == [1082 * ms, 1097 * ms, 1107 * ms, 7002 * ms]
    assert s.x_px.tolist() == pytest.approx([10.0, 20.0, 30.0, 70.0]) and s.y_px.tolist() == [25.0] * 4
    assert prov.clock_mismatch == 1
    s = prov.samples_for_frame(_meta(1133 * ms))
    assert s.t_ns.tolist() == [1122 * ms, 1137 * ms]
    q.put(10 * ms, 0.9, 0.9)  # arrives late: 1012 ms is more than 50 ms older than the next frame
    s = prov.samples_for_frame(_meta(1166 * ms))
    assert s.t_ns.size == 0 and prov.stale == 1
    s = prov.samples_for_frame(_meta(1200 * ms))
    assert s.t_ns.tolist() == [1182 * ms]
    st = prov.stats()
    assert st["served"] == 7 and st["stale"] == 1 and st["pending"] == 0 and st["clock_offset_ns"] == 1002 * ms
    prov.close()
    assert rx.stopped and prov.receiver is None


def test_provider_auto_window_and_arrival_mode():
    from rtface.gaze.providers import LiveGazeProvider

    ms = 1_000_000
    q = GazeQueue()
    prov = LiveGazeProvider(q)  # window = half the median capture interval (first frame: 1/60 s)
    for k in range(4):
        prov.samples_for_frame(_meta(k * 40 * ms))  # 25 fps
    q.put(120 * ms + 19 * ms, 1.0, 1.0)
    q.put(120 * ms + 21 * ms, 2.0, 2.0)
    assert prov.samples_for_frame(_meta(120 * ms)).t_ns.tolist() == [139 * ms]  # window 20 ms: 141 ms waits
    arrival = LiveGazeProvider(q, match="arrival", scene_size=(200, 100))
    q.put(10**15, 100.0, 50.0)  # any clock: served on arrival, rescaled from 200x100 to 100x50
    s = arrival.samples_for_frame(_meta(0))
    assert s.t_ns.tolist() == [10**15] and (s.x_px[0], s.y_px[0]) == (50.0, 25.0)


def test_pupil_remote_normalised_and_best_of_n_sync():
    cap = FakePupilCapture()
    rx = PupilRemoteReceiver(None, port=cap.rep_port, sync_clock=True, sync_rounds=3)
    rx.start()
    try:
        assert rx.wait_connected(5.0)
        assert rx.clock_rtt_ns >= 0

        def pump() -> bool:
            cap.send("gaze.3d.0.", {"norm_pos": [0.25, 0.75], "timestamp": 1000.5, "confidence": 1.0})
            return len(rx.queue) > 0

        assert _wait(pump)
        t, x, y, _ = rx.queue.drain()
        assert (x[0], y[0]) == pytest.approx((0.25, 0.25))  # normalised, origin top-left
    finally:
        rx.stop()
        cap.close()


def test_pupil_receiver_survives_hostile_datums():
    """Real sockets: datums with wrong types, NaN times, non-maps, garbage, oversize and extra parts are counted
    and skipped; the receiver thread keeps delivering good datums."""
    cap = FakePupilCapture()
    rx = PupilRemoteReceiver((100, 100), port=cap.rep_port)
    rx.start()
    try:
        assert rx.connected.wait(5.0)
        hostile = [msgpack.packb({"norm_pos": ["a", "b"], "timestamp": 1.0}),
                   msgpack.packb({"norm_pos": [0.5, 0.5], "timestamp": float("nan")}),
                   msgpack.packb({"norm_pos": [0.5], "timestamp": 1.0}), msgpack.packb([1, 2]), b"\xc1\xc1",
                   msgpack.packb({"norm_pos": msgpack.ExtType(1, b"x"), "timestamp": 1.0})]

        sent_big = []

        def pump() -> bool:
            if not sent_big and rx.bad_messages:  # once connected: oversize, so ZeroMQ drops the connection
                cap.pub.send_multipart([b"gaze.x", b"\x00" * (2 << 20)])
                sent_big.append(1)
            for payload in hostile:
                cap.pub.send_multipart([b"gaze.x", payload])
            cap.pub.send_multipart([b"gaze.x", b"a", b"b", b"c", b"d", b"e"])
            cap.send("gaze.ok", {"norm_pos": [0.5, 0.5], "timestamp": 5.0})
            return bool(sent_big) and len(rx.queue) > 0 and rx.bad_messages >= 2 * len(hostile)

        assert _wait(pump, 30.0)
        t, x, _, _ = rx.queue.drain()
        assert set(t.tolist()) == {5_000_000_000} and x[0] == 50.0
        assert rx.error is None and rx._thread.is_alive()
    finally:
        rx.stop()
        cap.close()
