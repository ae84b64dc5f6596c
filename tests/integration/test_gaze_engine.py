"""Live gaze through the real engine: a Pupil-Capture-compatible fake on loopback -> gaze_aoi stage (configured by
``live = "pupil_remote"`` alone) -> frame messages on a real ZeroMQ subscriber. Real MediaPipe on the sample video."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

from tests.conftest import free_port, video_landmarks
from rtface.config import config_from_dict, load_config
from rtface.gaze.aoi import OFF_FACE
from rtface.graph.runner import Engine
from rtface.transport.subscriber import Subscriber

VIDEO = Path(__file__).resolve().parents[2] / "rtface" / "data" / "samples" / "single_face.mp4"
TARGETS = ("left_eye", "right_eye", "nose", OFF_FACE)
WINDOW_NS = 20_000_000


def _target_points() -> dict[str, np.ndarray]:
    """Eye / nose positions (px) averaged over a landmark pass of the video, and a point 40 px left of the face."""
    _, faces = video_landmarks(str(VIDEO))
    xy = np.mean(np.array([f[:, :2] for f in faces]), axis=0)
    return {"left_eye": xy[473], "right_eye": xy[468], "nose": xy[1],
            OFF_FACE: np.array([xy[:468, 0].min() - 40.0, xy[1, 1]])}


class FakePupilCapture:
    """Pupil Remote (REP: "SUB_PORT", "t") and the IPC backbone PUB streaming msgpack gaze datums at ~200 Hz.

    Pupil time = time.monotonic() + 7000 s (its own epoch, unlike the engine's UTC frame clock). Each datum's
    target is remembered by its timestamp so the test knows what every received sample should be labelled.
    """

    def __init__(self, points: dict[str, np.ndarray], size: tuple[int, int]) -> None:
        self.ctx = zmq.Context.instance()
        self.rep = self.ctx.socket(zmq.REP)
        self.rep.setsockopt(zmq.LINGER, 0)
        self.rep_port = self.rep.bind_to_random_port("tcp://127.0.0.1")
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub_port = self.pub.bind_to_random_port("tcp://127.0.0.1")
        self.points, self.size = points, size
        self.sent: dict[int, str] = {}  # pupil timestamp in us -> target
        self.t_requests = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True),
                         threading.Thread(target=self._stream, daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def now() -> float:
        return time.monotonic() + 7000.0

    def true_offset_ns(self) -> int:
        return time.time_ns() - int(round(self.now() * 1e9))

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self.rep.poll(20):
                msg = self.rep.recv_string()
                if msg == "t":
                    self.t_requests += 1
                self.rep.send_string(str(self.pub_port) if msg == "SUB_PORT" else repr(self.now()) if msg == "t"
                                     else "Unknown command.")

    def _stream(self) -> None:
        w, h = self.size
        i = 0
        end = time.monotonic() + 60.0  # bounded even if the test never stops it
        while not self._stop.is_set() and time.monotonic() < end:
            name = TARGETS[(i // 10) % len(TARGETS)]  # 50 ms on each target
            x, y = self.points[name]
            ts = self.now()
            datum = {"topic": "gaze.3d.0.", "norm_pos": [x / w, 1.0 - y / h], "timestamp": ts, "confidence": 0.95}
            self.sent[int(round(ts * 1e6))] = name
            self.pub.send_multipart([b"gaze.3d.0.", msgpack.packb(datum, use_bin_type=True)])
            self.pub.send_multipart([b"pupil.0.2d", msgpack.packb({"norm_pos": [0.0, 0.0], "timestamp": ts})])
            i += 1
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        self.rep.close()
        self.pub.close()


def test_live_pupil_gaze_through_engine():
    points = _target_points()
    fake = FakePupilCapture(points, (640, 360))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    frames: list[dict] = []
    session: list[dict] = []
    done = threading.Event()
    sub = Subscriber(endpoint, topics=("rtface.v1.frame", "rtface.v1.session"))

    def listen() -> None:
        end = time.monotonic() + 60.0
        while not done.is_set() and time.monotonic() < end:
            item = sub.recv(timeout_s=0.2)
            if item is None:
                continue
            topic, msg = item
            if topic == "rtface.v1.frame":
                frames.append(msg)
            else:
                session.append(msg)
                done.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    cfg = config_from_dict({
        "source": {"spec": str(VIDEO), "realtime": True},  # played like a camera: live semantics
        "publish": {"endpoint": endpoint, "wait_subscribers": 1, "sndhwm": 1000},
        "control": {"enabled": False},
        "stages": [{"kind": "landmarks"},
                   {"kind": "gaze_aoi", "name": "gaze", "live": "pupil_remote", "live_host": "127.0.0.1",
                    "live_port": fake.rep_port, "live_window_ns": WINDOW_NS, "on_error": "raise"}],
    })
    try:
        summary = Engine(cfg).run()
        assert done.wait(10), "no session message"
    finally:
        done.set()
        listener.join(5)
        sub.close()
        fake.close()

    assert len(frames) >= 10 and all("gaze" in m for m in frames)
    live = summary["stages"]["gaze"]["gaze_live"]
    assert session and session[0]["stages"]["gaze"]["gaze_live"]["clock_offset_ns"] == live["clock_offset_ns"]
    # clock mapping: the measured Pupil -> UTC offset is the fake's true one (loopback: far below a second)
    assert fake.t_requests == 5 and live["clock_rtt_ns"] >= 0
    assert abs(live["clock_offset_ns"] - fake.true_offset_ns()) < 1_000_000_000

    got_labels, want_labels, n_face = [], [], 0
    last_t = -1
    for m in frames:
        g = m["gaze"]
        t_ns = np.asarray(g["t_ns"], dtype=np.int64)
        assert len(g["aoi"]) == t_ns.size == np.asarray(g["x_px"]).size == np.asarray(g["face_id"]).size
        # time matching: a frame never takes a sample later than its capture time + window ...
        assert np.all(t_ns <= m["t_capture_ns"] + WINDOW_NS)
        # ... and every sample is served once, in time order
        if t_ns.size:
            assert t_ns[0] > last_t and np.all(np.diff(t_ns) > 0)
            last_t = int(t_ns[-1])
        for t, lab, fid in zip(t_ns, g["aoi"], np.asarray(g["face_id"])):
            # the fake keys a datum by round(ts * 1e6) us, the engine carries round(ts * 1e9) ns: rounding twice can
            # land one microsecond off at a half-microsecond boundary (datums are 5 ms apart, so +/-1 us is unique)
            pupil_us = int(round((int(t) - live["clock_offset_ns"]) / 1e3))
            want = next((fake.sent[k] for k in (pupil_us, pupil_us - 1, pupil_us + 1) if k in fake.sent), None)
            assert want is not None, "sample time does not map back to a sent Pupil timestamp"
            got_labels.append(lab)
            want_labels.append(want)
            if want != OFF_FACE:
                n_face += 1
                assert fid == m["faces"][0]["id"]
    n = len(got_labels)
    acc = float(np.mean(np.array(got_labels) == np.array(want_labels)))
    print(f"\nlive: {len(frames)} frames, {n} gaze samples labelled, accuracy {acc:.4f}, "
          f"stale {live['stale']}, clock rtt {live['clock_rtt_ns'] / 1e3:.0f} us")
    assert n >= 50 and n_face >= 30
    assert set(want_labels) == set(TARGETS)
    assert acc >= 0.98
    assert live["served"] == n and live["clock_mismatch"] == 0


def test_eyetracker_config_is_valid():
    cfg = load_config("eyetracker")
    kinds = [s.kind for s in cfg.stages]
    assert kinds == ["landmarks", "gaze_aoi"]
    p = cfg.stages[1].params
    assert (p.live, p.live_host, p.live_port, p.radius_mode) == ("pupil_remote", "127.0.0.1", 50020, "iod")
    assert cfg.publish.endpoint.startswith("tcp://127.0.0.1:")
