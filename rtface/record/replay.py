"""``rtface replay``: republish a recording on the topics it was recorded from, at its own pace or faster.

Each stream row is decoded and sent again on its topic through a :class:`rtface.transport.Publisher` (which stamps
a fresh ``seq`` per topic and ``t_publish_ns``; every other field, ``t_capture_ns`` included, is as recorded), so
dashboards, alert rules and downstream code see what the engine sent. Items recorded from the alert channel are
republished on PUB as ``rtface.v1.alert.<rule>`` with the item under ``alert`` (read-only: there is no alert
channel to acknowledge a replayed alert on). Pacing follows the recorded ``t_receive_ns``: ``speed`` 1.0 is the
original pace, 4.0 four times faster, 0 as fast as possible (PUB then drops at its high-water mark for a slow
subscriber, which that subscriber counts). The thread that calls :meth:`Replayer.run` owns the publisher.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from rtface.errors import ConfigError
from rtface.record.recording import iter_rows, read_meta
from rtface.transport.publisher import Publisher
from rtface.transport.wire import decode


class Replayer:
    """Replay ``path`` on ``endpoint`` (bound). ``topic_prefix`` limits what is sent; ``loop`` starts again."""

    def __init__(self, path: str | Path, endpoint: str, *, speed: float = 1.0, sndhwm: int = 10_000,
                 topic_prefix: str = "", loop: bool = False, include_alerts: bool = True) -> None:
        if not speed >= 0:
            raise ConfigError(f"replay speed must be >= 0 (1 = original pace, 0 = as fast as possible), got {speed}")
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.speed, self.topic_prefix, self.loop, self.include_alerts = speed, topic_prefix, loop, include_alerts
        self.publisher = Publisher(endpoint, sndhwm=sndhwm)
        self.endpoint = self.publisher.endpoint
        self.sent = 0
        self.refused = 0  # messages ZeroMQ refused (send high-water mark)
        self.passes = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        """End after the current message (any thread, signal handlers too)."""
        self._stop.set()

    def wait_for_subscribers(self, n: int, timeout_s: float) -> bool:
        return self.publisher.wait_for_subscribers(n, timeout_s)

    def _one_pass(self) -> None:
        t0_rec = None
        t0 = time.monotonic()
        for row in iter_rows(self.path):
            if self._stop.is_set():
                return
            topic = row["topic"]
            if not topic.startswith(self.topic_prefix) or (row["channel"] == "alerts" and not self.include_alerts):
                continue
            if self.speed > 0:
                t_rec = row["t_receive_ns"]  # arrival order = file order: one clock for every row
                if t0_rec is None:
                    t0_rec = t_rec
                due = t0 + (t_rec - t0_rec) / 1e9 / self.speed
                while not self._stop.is_set():
                    left = due - time.monotonic()
                    if left <= 0:
                        break
                    self._stop.wait(min(left, 0.2))
            msg = decode(row["payload"], topic=topic)
            for header in ("seq", "t_publish_ns"):
                msg.pop(header, None)
            if self.publisher.send(topic, msg):
                self.sent += 1
            else:
                self.refused += 1
        self.passes += 1

    def run(self) -> int:
        """Send the recording (again and again with ``loop``) until it ends or :meth:`stop`; returns messages
        sent. Closes the publisher (queued messages get 1 s to leave)."""
        try:
            while not self._stop.is_set():
                self._one_pass()
                if not self.loop:
                    break
        finally:
            self.publisher.close(linger_s=1.0)
        return self.sent
