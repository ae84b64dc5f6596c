"""Listener side of the acknowledged alert channel: :class:`AlertClient` (a DEALER socket).

``recv(timeout_s)`` returns the next *new* item for the application, each exactly once: an ``event`` (raised,
acknowledged, escalated, cleared) or, after connecting, each open alert of the engine's snapshot that this
listener has not shown yet (``type`` ``"active"``). Duplicates (redeliveries, an alert already shown from a
snapshot) are dropped by journal id + seq / alert id; every received event is acknowledged after it was recorded.
With ``state_path`` the record of what was shown is a JSON-lines file that survives a restart of the listener (the
``rtface alerts listen --log`` file), so a listener killed and restarted shows every alert once.

``monitor_offline``: when nothing (not even a heartbeat) came from the engine for ``offline_after_s``, ``recv``
returns a local item ``{"type": "raised", "rule": "monitor_offline", "priority": "high", "local": True}``, and a
``cleared`` one when the engine is heard again. ``name`` (default: a random ephemeral name) makes the listener
durable: the engine keeps what it has not acknowledged across restarts of either side.
Owned by the thread that calls ``recv`` (ZeroMQ sockets are not thread-safe).
"""
from __future__ import annotations

import json
import os
import secrets
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

from rtface.errors import TransportError
from rtface.transport.alert_wire import (
    ALERT_WIRE_VERSION, DEFAULT_ALERT_ENDPOINT, MAX_ACKS, SERVER_LIMITS, pack, parse_server,
)

from rtface.transport.guard import GuardedConnection, MalformedMessage, read_token


class _Seen:
    """Keys of items shown to the application; optionally appended to a JSON-lines file (one item per line)."""

    def __init__(self, path: str | Path | None) -> None:
        self.keys: set[str] = set()
        self._fh = None
        if path is None:
            return
        p = Path(path)
        if p.is_file():
            with open(p, encoding="utf-8") as f:
                for line in f:
                    try:
                        k = json.loads(line).get("_key")
                    except (ValueError, AttributeError):
                        continue  # a line cut by a kill: its item was not acknowledged, it comes again
                    if isinstance(k, str):
                        self.keys.add(k)
        self._fh = open(p, "a", encoding="utf-8")

    def add(self, key: str | None, item: dict[str, Any]) -> None:
        """Record a shown item (``key`` None: a local item, recorded but never a duplicate)."""
        if key is not None:
            self.keys.add(key)
        if self._fh is not None:
            self._fh.write(json.dumps({**item, "_key": key} if key else item, default=str) + "\n")
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class AlertClient:
    """Connect to the engine's alert channel at ``endpoint`` (default ``tcp://127.0.0.1:5557``). ``token``:
    default ``$RTFACE_ALERTS_TOKEN``, else the token file the engine wrote for ``endpoint`` (same user), read
    again at every hello."""

    def __init__(self, endpoint: str = DEFAULT_ALERT_ENDPOINT, *, name: str | None = None,
                 state_path: str | Path | None = None, token: str = "", offline_after_s: float = 3.0,
                 offline_needs_contact: bool = False, ping_s: float = 1.0, context: zmq.Context | None = None) -> None:
        if not isinstance(endpoint, str) or "://" not in endpoint:
            raise TransportError(f"alert endpoint {endpoint!r} is invalid (expected e.g. {DEFAULT_ALERT_ENDPOINT!r})")
        self.endpoint = endpoint
        self.durable = name is not None
        self.name = name or f"listener-{os.getpid()}-{secrets.token_hex(3)}"
        self._token = token
        self.offline_after_s, self.ping_s = offline_after_s, ping_s
        self._offline_needs_contact = offline_needs_contact
        # a DEALER that is re-made if an oversize message made libzmq drop the connection (the engine then asks
        # "who" and this listener says hello again)
        self._conn: GuardedConnection | None = GuardedConnection(
            zmq.DEALER, endpoint, SERVER_LIMITS, lambda s: s.setsockopt(zmq.RCVHWM, 100_000), context=context,
            where="alert endpoint")
        self._seen = _Seen(state_path)
        self._ready: deque[tuple] = deque()  # (item, key, raised-alert key, seq to ack, snapshot alert id to ack)
        self._queued: set[str] = set()
        self._acks: list[int] = []
        self._snap_acks: list[int] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._req = 0
        self._welcomed = False
        self._last_hello = -1e9
        self._last_ping = 0.0
        self._last_heard: float | None = None
        self._t_start = time.monotonic()
        self._offline = False
        self._offline_n = 0
        self.journal: str | None = None
        self.heartbeat: dict[str, Any] = {}
        self.received = self.duplicates = self.malformed = 0
        self.auth_error: str | None = None
        self._hello()

    # ------------------------------------------------------------------------------------------------ sending
    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self._conn.sock.send(pack(msg), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass  # not connected yet / queue full: hello and pings are repeated, acks are resent on redelivery

    def _hello(self) -> None:
        self._last_hello = time.monotonic()
        token = self._token or read_token(self.endpoint, "alerts") or ""  # re-read: a restarted engine's token
        self._send({"type": "hello", "v": ALERT_WIRE_VERSION, "listener": self.name, "durable": self.durable,
                    "token": token})

    def _flush_acks(self) -> None:
        while self._acks or self._snap_acks:
            seqs, self._acks = self._acks[:MAX_ACKS], self._acks[MAX_ACKS:]
            alerts, self._snap_acks = self._snap_acks[:MAX_ACKS], self._snap_acks[MAX_ACKS:]
            self._send({"type": "ack", "seqs": seqs, "alerts": alerts})

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if not self._welcomed and now - self._last_hello > 2.0:
            self._hello()
        if now - self._last_ping >= self.ping_s:
            self._last_ping = now
            self._send({"type": "ping"})
        ref = self._last_heard if self._last_heard is not None else (
            None if self._offline_needs_contact else self._t_start)
        if ref is not None and not self._offline and now - ref > self.offline_after_s:
            self._offline = True
            self._offline_n += 1
            self._queue(self._local("raised", now - ref), None)
        self._flush_acks()

    def _local(self, kind: str, silent_s: float) -> dict[str, Any]:
        return {"type": kind, "rule": "monitor_offline", "priority": "high", "local": True,
                "alert_id": f"local-{self._offline_n}", "t_event_ns": time.time_ns(), "endpoint": self.endpoint,
                "message": f"no heartbeat from the engine at {self.endpoint} for {silent_s:.1f} s"}

    # ------------------------------------------------------------------------------------------------ receiving
    def _queue(self, item: dict[str, Any], key: str | None, akey: str | None = None, seq: int | None = None,
               snap: int | None = None) -> None:
        self._queued.update(k for k in (key, akey) if k is not None)
        self._ready.append((item, key, akey, seq, snap))

    def _take(self, data: bytes) -> None:
        try:
            m = parse_server(data)
        except MalformedMessage:
            self.malformed += 1
            return
        self._last_heard = time.monotonic()
        if self._offline:
            self._offline = False
            self._queue(self._local("cleared", 0.0), None)
        t = m["type"]
        seen = self._seen.keys
        if t == "who":
            self._welcomed = False
            self._hello()
        elif t == "welcome":
            self._welcomed = True
            self.journal = m["journal"]
            for a in m["alerts"]:
                key = f"{self.journal}:a{a['alert_id']}"
                if key in seen:
                    self._snap_acks.append(a["alert_id"])
                elif key not in self._queued:
                    self._queue({**a, "type": "active", "journal": self.journal}, key, snap=a["alert_id"])
        elif t == "event":
            ev = m["event"]
            self.received += 1
            key = f"{ev['journal']}:{ev['seq']}"
            akey = f"{ev['journal']}:a{ev['alert_id']}" if ev["type"] == "raised" else None
            if key in self._queued or (akey is not None and akey in self._queued):
                self.duplicates += 1  # acknowledged when the application takes the first copy
            elif key in seen or (akey is not None and akey in seen):
                self.duplicates += 1
                if key not in seen:
                    self._seen.add(key, {"seq": ev["seq"], "alert_id": ev["alert_id"], "shown_as": "active"})
                self._acks.append(ev["seq"])
            else:
                self._queue(ev, key, akey, seq=ev["seq"])
        elif t == "heartbeat":
            self.heartbeat = m
        elif t == "reply":
            if m["req"] == 0 and not m["ok"]:
                self.auth_error = str(m.get("error"))
            self._replies[m["req"]] = m

    def _poll(self, timeout_s: float) -> None:
        conn = self._conn
        if conn is None:
            raise TransportError(f"alert client for {self.endpoint} is closed")
        if conn.poll(max(0, int(timeout_s * 1000))):
            while True:
                try:
                    parts = conn.recv_parts()
                except MalformedMessage:
                    self.malformed += 1
                    continue
                if parts is None:
                    break
                if len(parts) == 1:
                    self._take(parts[0])
                else:
                    self.malformed += 1
        self._housekeeping()

    def recv(self, timeout_s: float | None = None) -> dict[str, Any] | None:
        """Next new item, or None after ``timeout_s`` (None = wait forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._ready:
            left = 0.25 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                self._poll(0)
                break
            self._poll(min(left, 0.25))
        if not self._ready:
            return None
        item, key, akey, seq, snap = self._ready.popleft()
        self._seen.add(key, item)  # recorded (in the state file) before the application gets it, then acknowledged
        if key is not None:
            self._queued.discard(key)
            if akey is not None:
                self._seen.keys.add(akey)
                self._queued.discard(akey)
        if seq is not None:
            self._acks.append(seq)
        if snap is not None:
            self._snap_acks.append(snap)
        return item

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while self._conn is not None:
            item = self.recv(None)
            if item is not None:
                yield item

    # ------------------------------------------------------------------------------------------------ requests
    def request(self, kind: str, timeout_s: float = 5.0, **fields: Any) -> Any:
        """Send ``ack_alert`` / ``active`` and wait for its reply; returns the result or raises TransportError."""
        self._req += 1
        req = self._req
        deadline = time.monotonic() + timeout_s
        sent = False
        while time.monotonic() < deadline:
            if self._welcomed and not sent:
                self._send({"type": kind, "req": req, **fields})
                sent = True
            self._poll(0.05)
            if self.auth_error:
                raise TransportError(f"alert channel {self.endpoint}: {self.auth_error}")
            rep = self._replies.pop(req, None)
            if rep is not None:
                if not rep["ok"]:
                    raise TransportError(f"{kind}: {rep.get('error')}")
                return rep.get("result")
            if not self._welcomed:
                sent = False  # the engine asked who we are (or is not there yet): send after the welcome
        raise TransportError(f"no answer from the alert channel {self.endpoint} within {timeout_s} s (is `rtface "
                             f"run` running with its alerts stage there?)")

    def acknowledge(self, alert_id: int, by: str, timeout_s: float = 5.0) -> Any:
        """A person has seen alert ``alert_id``."""
        return self.request("ack_alert", timeout_s, alert_id=int(alert_id), by=by)

    def active(self, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        """The engine's open alerts now."""
        return self.request("active", timeout_s)

    def close(self) -> None:
        """Send the pending acks and ``bye``, close. Safe to call twice."""
        conn = self._conn
        if conn is None:
            return
        self._flush_acks()
        self._send({"type": "bye"})
        if conn.sock is not None:
            conn.sock.close(linger=200)  # let the last acks and bye go out (GuardedConnection closes with 0)
        self._conn = None
        conn.close()
        self._seen.close()

    def __enter__(self) -> "AlertClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
