"""``rtface record``: subscribe to a running engine (or a hub) and write every message it receives to one file.

A :class:`Recorder` owns a :class:`rtface.transport.Subscriber` (decoding, size limits, strict msgpack) and, unless
told not to, an :class:`rtface.transport.alert_client.AlertClient` (every alert item once: the acknowledged channel
loses nothing). Both belong to the thread that calls :meth:`Recorder.run` (ZeroMQ sockets are not thread-safe);
:meth:`Recorder.stop` may be called from any thread or a signal handler.

Loss accounting: every topic's ``seq`` is consecutive per publisher (a hub keeps each engine's), so a jump is a
message the transport dropped (:class:`rtface.transport.GapCounter`, one sequence per topic); a ``seq`` that goes
back is a restarted publisher (counted in ``restarts``, not a gap). Alert items are not gap-counted from ``seq``
(their numbers skip the journal's ``delivered`` events by design; the channel itself redelivers until
acknowledged). Messages dropped after the last one received cannot be seen.

The file is written to ``<out>.partial`` (row groups every ``flush_s`` seconds or ``batch_rows`` rows) and renamed
to ``<out>`` only when the recording is complete (no gap on any topic) or ``allow_incomplete`` is set; the footer
metadata says which (:mod:`rtface.record.recording`).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtface.errors import ConfigError, TransportError
from rtface.record.recording import FORMAT, META_KEY, VERSION, schema
from rtface.transport.subscriber import GapCounter, Subscriber
from rtface.transport.wire import TOPIC_FRAME, TOPIC_PREFIX, TOPIC_SESSION, alert_topic, encode, stamp

log = logging.getLogger("rtface.record")
PREVIEW_PREFIX = "rtface.v1.preview"  # camera images (rtface.stages.preview): recorded only when asked for
CAMERA_SEP = "@"  # rtface hub: <topic>@<camera>


def base_topic(topic: str) -> str:
    """``rtface.v1.frame@cam1`` -> ``rtface.v1.frame`` (a hub's camera suffix removed)."""
    return topic.split(CAMERA_SEP, 1)[0]


@dataclass
class RecordingSummary:
    """What a recording holds and how it ended (also the file's footer metadata)."""

    path: Path | None = None  # the file on disk (final name, or .partial), None when nothing was written
    complete: bool = False
    end_reason: str = ""  # "stopped" (signal/stop()), "duration", "count", "engine_ended"
    messages: dict[str, int] = field(default_factory=dict)  # per topic
    gaps: dict[str, int] = field(default_factory=dict)  # per topic: messages lost in transport
    restarts: dict[str, int] = field(default_factory=dict)  # per topic: seq went back (publisher restarted)
    malformed: int = 0
    alert_items: int = 0
    skipped_preview: int = 0  # camera-image messages received and not recorded (record_preview off)

    @property
    def total_gaps(self) -> int:
        return sum(self.gaps.values())

    @property
    def frames(self) -> int:
        return sum(n for t, n in self.messages.items() if base_topic(t) == TOPIC_FRAME)


class Recorder:
    """Record ``endpoint`` (PUB stream) and ``alerts_endpoint`` (``""``: no alert channel) into ``out`` (.parquet).

    ``overwrite`` replaces an existing ``out`` (only once the new recording is complete); ``allow_incomplete``
    gives an incomplete recording its final name anyway (its metadata says ``complete: false``);
    ``record_preview`` also records camera-image topics (off by default: patient images stay out of files unless
    asked for). ``alerts_name`` makes the alert listener durable (the engine keeps what it has not acknowledged).
    """

    def __init__(self, out: str | Path, endpoint: str, *, alerts_endpoint: str = "", alerts_name: str | None = None,
                 alerts_token: str = "", overwrite: bool = False, allow_incomplete: bool = False,
                 record_preview: bool = False, rcvhwm: int = 100_000, batch_rows: int = 1024,
                 flush_s: float = 1.0) -> None:
        from rtface.output.table_writer import check_output_path

        self.out = Path(out)
        if self.out.suffix.lower() != ".parquet":
            raise ConfigError(f"recording {self.out}: use a .parquet file name (e.g. session.parquet)")
        check_output_path(self.out, overwrite=overwrite)
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.endpoint, self.alerts_endpoint = endpoint, alerts_endpoint
        self.allow_incomplete, self.record_preview = allow_incomplete, record_preview
        self._batch_rows, self._flush_s = batch_rows, flush_s
        self._stop = threading.Event()
        self._rows: dict[str, list] = {c: [] for c in schema().names}
        self._writer = None
        self._gaps = GapCounter()
        self._gap_by_topic: Counter[str] = Counter()
        self._restart_by_topic: Counter[str] = Counter()
        self._messages: Counter[str] = Counter()
        self.summary = RecordingSummary()
        self._sessions_seen: set[str] = set()
        self._cameras_seen: set[str] = set()
        self._t_start_ns = time.time_ns()
        self._sub = Subscriber(endpoint, topics=(TOPIC_PREFIX,), rcvhwm=rcvhwm)
        self._alerts = None
        if alerts_endpoint:
            from rtface.transport.alert_client import AlertClient

            self._alerts = AlertClient(alerts_endpoint, name=alerts_name, token=alerts_token,
                                       offline_needs_contact=True)

    # ------------------------------------------------------------------------------------------------ control
    def stop(self) -> None:
        """End the recording after the current message (any thread, signal handlers too)."""
        self._stop.set()

    @property
    def received(self) -> int:
        return sum(self._messages.values())

    # ------------------------------------------------------------------------------------------------ rows
    def _add(self, topic: str, channel: str, msg: dict[str, Any], gap: int, t_rx: int) -> None:
        r = self._rows
        r["topic"].append(topic)
        r["channel"].append(channel)
        r["seq"].append(int(msg.get("seq", 0)))
        r["t_publish_ns"].append(int(msg.get("t_publish_ns", 0)))
        r["t_receive_ns"].append(t_rx)
        frame = msg.get("frame") if base_topic(topic) == TOPIC_FRAME else None
        r["frame"].append(frame if isinstance(frame, int) and not isinstance(frame, bool) else None)
        tc = msg.get("t_capture_ns")
        if channel == "alerts":
            tc = msg["alert"].get("t_capture_ns")
        r["t_capture_ns"].append(tc if isinstance(tc, int) and not isinstance(tc, bool) else None)
        cam = msg.get("camera")
        r["camera"].append(cam if isinstance(cam, str) and CAMERA_SEP in topic else None)
        r["gap_before"].append(gap)
        r["payload"].append(encode(msg))
        self._messages[topic] += 1
        if len(r["topic"]) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._rows["topic"]:
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        sch = schema()
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self.partial), sch, compression="zstd")
        self._writer.write_table(pa.Table.from_pydict(self._rows, schema=sch))
        for v in self._rows.values():
            v.clear()

    def _on_stream(self, topic: str, msg: dict[str, Any]) -> None:
        t_rx = time.time_ns()
        if topic.startswith(PREVIEW_PREFIX) and not self.record_preview:
            self.summary.skipped_preview += 1
            return
        restarts = self._gaps.restarts
        gap = self._gaps.update(topic, int(msg["seq"]))
        if gap:
            self._gap_by_topic[topic] += gap
            log.warning("%d message(s) of %s lost before seq %d", gap, topic, msg["seq"])
        if self._gaps.restarts != restarts:
            self._restart_by_topic[topic] += 1
        if CAMERA_SEP in topic:
            self._cameras_seen.add(topic.split(CAMERA_SEP, 1)[1])
        if base_topic(topic) == TOPIC_SESSION:
            self._sessions_seen.add(topic.split(CAMERA_SEP, 1)[1] if CAMERA_SEP in topic else "")
        self._add(topic, "stream", msg, gap, t_rx)

    def _on_alert(self, item: dict[str, Any]) -> None:
        rule = item.get("rule")
        try:
            topic = alert_topic(rule if isinstance(rule, str) else "unknown")
        except TransportError:
            topic = alert_topic("unknown")
        seq = item.get("seq") if isinstance(item.get("seq"), int) and item.get("seq", -1) >= 0 else 0
        t_ev = item.get("t_event_ns")
        msg = stamp(topic, {"alert": dict(item)}, seq, t_ev if isinstance(t_ev, int) and t_ev >= 0 else 0)
        self.summary.alert_items += 1
        self._add(topic, "alerts", msg, 0, time.time_ns())

    def _engine_ended(self) -> bool:
        """A direct stream sent its session message, or every camera of a hub stream did."""
        if "" in self._sessions_seen:
            return True
        return bool(self._cameras_seen) and self._cameras_seen <= self._sessions_seen

    # ------------------------------------------------------------------------------------------------ run
    def run(self, *, duration_s: float = 0.0, count: int = 0, until_end: bool = False) -> RecordingSummary:
        """Record until :meth:`stop`, ``duration_s`` (0 = no limit), ``count`` frame messages (0 = no limit) or,
        with ``until_end``, the engine's session message; then close the file. Returns the summary."""
        reason = "stopped"
        deadline = time.monotonic() + duration_s if duration_s > 0 else None
        last_flush = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    got = self._sub.recv(timeout_s=0.05)
                except TransportError as exc:  # counted by the subscriber; never recorded
                    if self._sub.malformed <= 3:
                        log.warning("skipped a malformed message: %s", str(exc)[:200])
                    got = None
                if got is not None:
                    self._on_stream(*got)
                while self._alerts is not None and (item := self._alerts.recv(timeout_s=0)) is not None:
                    self._on_alert(item)
                now = time.monotonic()
                if now - last_flush >= self._flush_s:
                    self._flush()
                    last_flush = now
                if until_end and self._engine_ended():
                    reason = "engine_ended"
                    break
                if count and self.summary_frames() >= count:
                    reason = "count"
                    break
                if deadline is not None and now >= deadline:
                    reason = "duration"
                    break
            if self._alerts is not None:  # what the channel already holds for us
                t_end = time.monotonic() + 0.3
                while time.monotonic() < t_end:
                    item = self._alerts.recv(timeout_s=0.05)
                    if item is not None:
                        self._on_alert(item)
        finally:
            self._close(reason)
        return self.summary

    def summary_frames(self) -> int:
        return sum(n for t, n in self._messages.items() if base_topic(t) == TOPIC_FRAME)

    def _close(self, reason: str) -> None:
        s = self.summary
        s.end_reason = reason
        s.messages = dict(self._messages)
        s.gaps = dict(self._gap_by_topic)
        s.restarts = dict(self._restart_by_topic)
        s.malformed = self._sub.malformed
        s.complete = s.total_gaps == 0 and self.received > 0
        self._sub.close()
        if self._alerts is not None:
            self._alerts.close()
        try:
            self._flush()
        finally:
            if self._writer is None:  # nothing received: no file at all
                s.path = None
                return
            meta = {"format": FORMAT, "version": VERSION, "endpoint": self.endpoint,
                    "alerts_endpoint": self.alerts_endpoint, "started_ns": self._t_start_ns,
                    "ended_ns": time.time_ns(), "messages": s.messages, "gaps": s.gaps, "restarts": s.restarts,
                    "malformed": s.malformed, "alert_items": s.alert_items, "skipped_preview": s.skipped_preview,
                    "complete": s.complete, "end_reason": reason}
            self._writer.add_key_value_metadata({META_KEY: json.dumps(meta).encode("utf-8")})
            self._writer.close()
            if s.complete or self.allow_incomplete:
                os.replace(self.partial, self.out)
                s.path = self.out
            else:
                s.path = self.partial
