"""`rtface hub` on real sockets: publishers on random loopback ports stand for engines (mechanism tests), then two
real engine processes and the real `rtface hub` command (shipped path)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq

from rtface.transport import TOPIC_FRAME, TOPIC_STATS, Publisher, Subscriber, stats_message
from rtface.transport.hub import TOPIC_HUB, Hub
from tests.conftest import SAMPLE_VIDEO, free_port
from tests.integration.test_transport import frame

RANDOM = "tcp://127.0.0.1:0"
ROOT = Path(__file__).resolve().parents[2]


class Pumped:
    """A hub pumped on a thread (the thread owns its sockets)."""

    def __init__(self, cams: dict[str, str]) -> None:
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.hub: Hub | None = None
        self.cams = cams
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        with Hub(self.cams, RANDOM) as hub:
            self.hub = hub
            self.ready.set()
            hub.run(self.stop.is_set)

    def close(self) -> None:
        self.stop.set()
        self.t.join(10)


def _until_joined(pubs, sub, topic_prefix="rtface.v1.stats") -> None:
    deadline = time.monotonic() + 10
    seen: set[str] = set()
    while time.monotonic() < deadline and len(seen) < len(pubs):
        for p in pubs:
            p.send(TOPIC_STATS, stats_message({"probe": 1}))
        got = sub.recv(0.05)
        if got is not None and got[0].startswith(topic_prefix):
            seen.add(got[1]["camera"])
    assert len(seen) == len(pubs), f"not every camera joined: {seen}"
    while sub.recv(0.2) is not None:
        pass


def test_hub_merges_cameras_with_camera_id_in_topic_and_message_and_drops_garbage():
    with Publisher(RANDOM) as a, Publisher(RANDOM) as b:
        ctx = zmq.Context.instance()
        rogue = ctx.socket(zmq.PUB)
        rogue_ep = rogue.bind_to_random_port("tcp://127.0.0.1")
        hub = Pumped({"cam1": a.endpoint, "cam2": b.endpoint, "bad": f"tcp://127.0.0.1:{rogue_ep}"})
        try:
            with Subscriber(hub.hub.endpoint, topics=("rtface.v1.frame", "rtface.v1.stats")) as sub, \
                    Subscriber(hub.hub.endpoint, topics=("rtface.v1.frame@cam2",)) as only2:
                _until_joined([a, b], sub)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:  # cam2-only subscriber joined too
                    b.send(TOPIC_FRAME, frame(0, "probe"))
                    if only2.recv(0.05) is not None:
                        break
                while only2.recv(0.2) is not None or sub.recv(0.01) is not None:
                    pass
                for junk in ([b"rtface.v1.frame", b"\xc1not msgpack"], [b"rtface.v1.frame"], [b"rtface.v1.frame.x", b""],
                             [b"rtface.v1.frame", b"\x93\x01\x02\x03"]):
                    rogue.send_multipart(junk)
                for i in range(50):
                    assert a.send(TOPIC_FRAME, frame(i, "a.mp4")) and b.send(TOPIC_FRAME, frame(i, "b.mp4"))
                got, got2 = [], []
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and (len(got) < 100 or len(got2) < 50):
                    for s, acc in ((sub, got), (only2, got2)):
                        m = s.recv(0.05)
                        if m is not None and not m[0].startswith("rtface.v1.stats"):
                            acc.append(m)
                assert sorted({t for t, _ in got}) == [f"{TOPIC_FRAME}@cam1", f"{TOPIC_FRAME}@cam2"]
                by_cam = {c: [m["frame"] for t, m in got if m["camera"] == c] for c in ("cam1", "cam2")}
                assert by_cam == {"cam1": list(range(50)), "cam2": list(range(50))}
                assert all(m["topic"] == t and t.endswith("@" + m["camera"]) for t, m in got)
                assert [m["camera"] for _, m in got2] == ["cam2"] * 50  # one camera by topic
                assert sub.missed_frames == 0 and sub.malformed == 0
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and hub.hub.cameras["bad"].malformed < 4:
                    time.sleep(0.05)
                assert hub.hub.cameras["bad"].malformed == 4 and hub.hub.cameras["bad"].forwarded == 0
        finally:
            hub.close()
            rogue.close(linger=0)


def test_hub_heartbeat_names_every_camera():
    with Publisher(RANDOM) as a:
        hub = Pumped({"door": a.endpoint})
        try:
            with Subscriber(hub.hub.endpoint, topics=(TOPIC_HUB,)) as sub:
                got = sub.recv(5.0)
                assert got is not None and got[0] == TOPIC_HUB
                assert set(got[1]["cameras"]) == {"door"} and got[1]["cameras"]["door"]["endpoint"] == a.endpoint
        finally:
            hub.close()


def test_hub_command_merges_two_real_engines():
    env = dict(os.environ, GLOG_minloglevel="2")
    ports = [free_port() for _ in range(3)]
    engines = [subprocess.Popen([sys.executable, "-m", "rtface", "run", "--source", str(SAMPLE_VIDEO), "--realtime",
                                 "--loop", "--config", "landmarks", "--endpoint", f"tcp://127.0.0.1:{p}",
                                 "--no-control"], stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
               for p in ports[:2]]
    hub = subprocess.Popen([sys.executable, "-m", "rtface", "hub", "--camera", f"left=tcp://127.0.0.1:{ports[0]}",
                            "--camera", f"right=tcp://127.0.0.1:{ports[1]}", "--out", f"tcp://127.0.0.1:{ports[2]}",
                            "--duration", "120"], stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        seen: dict[str, list[int]] = {"left": [], "right": []}
        with Subscriber(f"tcp://127.0.0.1:{ports[2]}", topics=(TOPIC_FRAME,)) as sub:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and min(len(v) for v in seen.values()) < 20:
                got = sub.recv(1.0)
                if got is not None:
                    topic, msg = got
                    assert topic == f"{TOPIC_FRAME}@{msg['camera']}" and msg["faces"]
                    seen[msg["camera"]].append(msg["frame"])
        assert min(len(v) for v in seen.values()) >= 20, {k: len(v) for k, v in seen.items()}
    finally:
        for p in (hub, *engines):
            p.terminate()
        for p in (hub, *engines):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    assert "rtface hub: relayed" in hub.stderr.read()
