"""Real PUB/SUB over loopback TCP on random ports (linger=0, every wait bounded by a timeout)."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rtface.errors import TransportError
from rtface.records import N_LANDMARKS, Face, FrameMeta, FrameResult
from rtface.transport import (
    TOPIC_FRAME, TOPIC_STATS, Publisher, Subscriber, encode, frame_message, stamp, stats_message,
)

RANDOM = "tcp://127.0.0.1:0"
TIMEOUT_S = 10.0


def frame(index: int, source: str = "test") -> dict:
    lm = np.full((N_LANDMARKS, 3), index, np.float32)
    face = Face(face_id=0, confidence=1.0, bbox_px=np.zeros(4, np.float32), landmarks_px=lm)
    return frame_message(FrameResult(FrameMeta(index, time.time_ns(), index * 33_333_333, 640, 360, source),
                                     [face]))


def join(pub: Publisher, sub: Subscriber) -> None:
    """Beat the slow-joiner problem: send stats probes until one arrives, then drain the probes."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        pub.send(TOPIC_STATS, stats_message({"probe": 1}))
        if sub.recv(0.05) is not None:
            break
    else:
        pytest.fail(f"subscriber never joined {pub.endpoint}")
    while sub.recv(0.2) is not None:
        pass


def collect(sub: Subscriber, until, timeout_s: float = TIMEOUT_S) -> list[tuple[str, dict]]:
    """Receive until ``until(messages)`` is true or a 1 s silence / overall timeout."""
    out: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not until(out):
        item = sub.recv(1.0)
        if item is None:
            break
        out.append(item)
    return out


def test_200_frames_arrive_in_order():
    with Publisher(RANDOM, sndhwm=1000) as pub, Subscriber(pub.endpoint, rcvhwm=1000) as sub:
        assert pub.endpoint.startswith("tcp://127.0.0.1:") and not pub.endpoint.endswith(":0")
        join(pub, sub)
        for i in range(200):
            assert pub.send(TOPIC_FRAME, frame(i))
        got = collect(sub, lambda m: len(m) >= 200)
    assert [t for t, _ in got] == [TOPIC_FRAME] * 200
    assert [m["frame"] for _, m in got] == list(range(200))
    assert [m["seq"] for _, m in got] == list(range(200))
    last = got[-1][1]
    assert last["faces"][0]["landmarks_px"].shape == (N_LANDMARKS, 3)
    assert float(last["faces"][0]["landmarks_px"][477, 2]) == 199.0
    assert sub.missed_frames == 0 and sub.index_gaps == 0
    assert pub.sent >= 201 and pub.closed and sub.closed


def test_bind_endpoint_in_use_raises_naming_it():
    with Publisher(RANDOM) as pub:
        with pytest.raises(TransportError, match="already in use") as ei:
            Publisher(pub.endpoint)
        assert pub.endpoint in str(ei.value) and "another port" in str(ei.value)
    pub.close()  # second close is harmless
    with pytest.raises(TransportError, match="closed"):
        pub.send(TOPIC_FRAME, frame(0))


def test_bad_endpoints_raise_transport_error():
    with pytest.raises(TransportError, match="nope"):
        Publisher("nope")
    with pytest.raises(TransportError, match="tcp://256.0.0.1:1"):
        Publisher("tcp://256.0.0.1:1")


def test_send_from_a_second_thread_is_refused():
    with Publisher(RANDOM) as pub:
        pub.send(TOPIC_STATS, stats_message({"fps": 1.0}))
        errors: list[Exception] = []
        worker = threading.Thread(target=lambda: errors.extend(_try_send(pub)))
        worker.start()
        worker.join(TIMEOUT_S)
    assert len(errors) == 1 and "owned by thread" in str(errors[0])


def _try_send(pub: Publisher) -> list[Exception]:
    try:
        pub.send(TOPIC_STATS, stats_message({"fps": 1.0}))
    except TransportError as exc:
        return [exc]
    return []


def _kernel_buffer_bytes() -> int:
    """Largest bytes loopback TCP can hold in flight (send + receive buffers); generous default if unknown."""
    total = 0
    for name in ("ipv4/tcp_wmem", "ipv4/tcp_rmem", "core/wmem_max", "core/rmem_max"):
        try:
            total += int(Path(f"/proc/sys/net/{name}").read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            total += 64 << 20
    return total


def test_slow_subscriber_with_tiny_hwm_counts_missed_frames():
    """The subscriber does not read while 2x more bytes than every buffer can hold are published.

    Buffering is bounded by both HWMs (1 message each, plus a message in each codec) and the kernel socket buffers,
    so drops are certain. After draining, one more frame goes through empty pipes, so received + missed accounts
    for every frame sent exactly.
    """
    big = np.zeros(1 << 20, np.uint8)  # 1 MiB per message
    capacity_msgs = 8 + _kernel_buffer_bytes() // big.nbytes
    n = 2 * capacity_msgs
    with Publisher(RANDOM, sndhwm=1) as pub, Subscriber(pub.endpoint, rcvhwm=1) as sub:
        join(pub, sub)
        for i in range(n):
            msg = frame(i)
            msg["blob"] = big
            pub.send(TOPIC_FRAME, msg)
        got = collect(sub, lambda m: False, timeout_s=30.0)  # drain until 1 s of silence
        pub.send(TOPIC_FRAME, frame(n))  # pipes are empty now: this one must arrive
        got += collect(sub, lambda m: bool(m) and m[-1][1]["frame"] == n)
    frames = [m["frame"] for t, m in got if t == TOPIC_FRAME]
    assert frames[0] == 0 and frames[-1] == n and frames == sorted(frames)
    assert sub.missed_frames > 0
    assert len(frames) + sub.missed_frames == n + 1
    assert sub.index_gaps == sub.missed_frames
    print(f"sent {n + 1} x 1 MiB frames, received {len(frames)}, missed_frames={sub.missed_frames}")


def test_prefix_subscription_gets_only_stats():
    with Publisher(RANDOM) as pub, Subscriber(pub.endpoint, topics=(TOPIC_STATS,)) as sub:
        join(pub, sub)
        for i in range(10):
            pub.send(TOPIC_FRAME, frame(i))
            pub.send(TOPIC_STATS, stats_message({"fps": 30.0, "n": i}))
        pub.send(TOPIC_STATS, stats_message({"end": True}))
        got = collect(sub, lambda m: bool(m) and m[-1][1].get("end") is True)
    assert {t for t, _ in got} == {TOPIC_STATS}
    assert [m["n"] for _, m in got[:-1]] == list(range(10))
    assert sub.missed_frames == 0


def test_malformed_message_is_counted_and_subscriber_goes_on():
    import zmq

    ctx = zmq.Context.instance()
    raw = ctx.socket(zmq.PUB)
    raw.setsockopt(zmq.LINGER, 0)
    port = raw.bind_to_random_port("tcp://127.0.0.1")
    try:
        with Subscriber(f"tcp://127.0.0.1:{port}") as sub:
            deadline = time.monotonic() + TIMEOUT_S
            error = None
            while error is None and time.monotonic() < deadline:
                raw.send_multipart([TOPIC_FRAME.encode(), b"\x93not-a-map"])
                try:
                    sub.recv(0.05)
                except TransportError as exc:
                    error = exc
            assert error is not None and "rtface.v1.frame" in str(error)
            assert sub.malformed >= 1
            good = encode(stamp(TOPIC_STATS, stats_message({"fps": 1.0}), 0, 0))
            raw.send_multipart([TOPIC_STATS.encode(), good])
            item = None
            while item is None and time.monotonic() < deadline:
                try:
                    item = sub.recv(1.0)
                except TransportError:  # probes still queued before the good message
                    continue
            assert item is not None and item[0] == TOPIC_STATS and item[1]["fps"] == 1.0
    finally:
        raw.close(linger=0)


def test_oversize_message_drops_the_connection_and_the_subscriber_reconnects():
    """libzmq never retries a connection it dropped for ZMQ_MAXMSGSIZE; the subscriber makes a new one."""
    from rtface.transport.guard import Limits

    small = Limits(max_message_bytes=4096, max_parts=2, max_str_len=4096, max_bin_len=4096, max_array_len=100,
                   max_map_len=100)
    with Publisher(RANDOM) as pub, Subscriber(pub.endpoint, limits=small) as sub:
        join(pub, sub)
        big = {"blob": np.zeros(8192, np.uint8)}  # > 4 KiB
        got: list = []
        deadline = time.monotonic() + TIMEOUT_S
        pub.send(TOPIC_STATS, stats_message(big))
        while not got and time.monotonic() < deadline:
            pub.send(TOPIC_STATS, stats_message({"after": 1}))
            item = sub.recv(0.1)
            if item is not None:
                got.append(item)
        assert got and got[0][1]["after"] == 1
        assert sub.reconnects >= 1 and "blob" not in got[0][1]
