"""Engine side of the acknowledged alert channel: one ROUTER socket, per-listener delivery with acks.

Each listener (a DEALER, :class:`rtface.transport.alert_client.AlertClient`) says ``hello`` with its name. It gets
a ``welcome`` holding the snapshot of the open alerts, then every event (raised, acknowledged, escalated, cleared)
in journal order. A listener acknowledges each event's ``seq``; an event not acknowledged within ``redeliver_s`` is
sent again (at most ``max_inflight`` unacknowledged per listener; nothing is resent to a listener that went
quiet, it gets it when it speaks again). A ``durable`` listener (it gave a name) is remembered in the journal by the
seq below which it acknowledged everything, so a restarted listener, or any listener after an engine restart on
the same journal, gets every event it has not acknowledged. Listeners drop duplicates by seq.

A peer not heard from for ``peer_timeout_s`` is forgotten (its durable cursor stays in the journal); when it speaks
again it is asked ``who`` and says hello again. Heartbeats every ``heartbeat_s`` let listeners raise "monitor
offline" themselves when the engine stops. Malformed or oversized messages are counted and dropped; the socket and
the engine go on. Bound to loopback unless a ``token`` is set (then ``hello`` must carry it).

Token (:func:`alert_token`, the control channel's convention, :class:`rtface.transport.guard.TokenAuth`):
``$RTFACE_ALERTS_TOKEN`` if set, else the configured ``token`` (16 characters or more), ``"auto"`` = a random
256-bit token per run, ``""`` = none (loopback only). A token is written to a per-user file for the bound
endpoint (folder 0700, file 0600, removed at close) where :class:`rtface.transport.alert_client.AlertClient`
(``rtface alerts``, the dashboard) of the same user finds it without being told.

Thread ownership: the thread that calls :meth:`AlertServer.pump` / :meth:`publish` (the engine's processing
thread) owns the socket. The backend (the alert service) answers for the journal.
"""
from __future__ import annotations

import logging
import os
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import zmq

from rtface.errors import TransportError
from rtface.transport.alert_wire import ALERT_WIRE_VERSION, REQUEST_LIMITS, pack, parse_request

from rtface.transport.guard import (ALERTS_TOKEN_ENV, MalformedMessage, TokenAuth, bind, harden_socket,
                                    recv_parts)

log = logging.getLogger("rtface.alerts")
SNAPSHOT_MAX = 1000  # open alerts in one welcome (the newest; alerts_total says how many are open)
_CACHE_MAX = 20_000  # event bodies kept in memory for delivery
_POLLIN = int(zmq.POLLIN)
_CURSOR_EVERY_S = 1.0  # durable listeners' cursors are stored at most this often (and when they leave)


class AlertBackend(Protocol):
    """What the channel needs from the alert service (journal, open alerts, acknowledgements)."""

    journal_id: str
    run_id: str

    @property
    def last_seq(self) -> int: ...

    def snapshot(self) -> list[dict[str, Any]]: ...

    def cursor(self, name: str) -> int | None: ...

    def notify_seqs_after(self, seq: int) -> list[int]: ...

    def bodies(self, seqs: list[int]) -> dict[int, bytes]: ...

    def set_cursors(self, cursors: dict[str, int]) -> None: ...

    def delivered(self, listener: str, seqs: list[int], alert_ids: list[int]) -> None: ...

    def ack_alert(self, alert_id: int, by: str) -> Any: ...

    def status(self) -> dict[str, Any]: ...


@dataclass
class _Peer:
    ident: bytes
    name: str
    durable: bool
    last_heard: float
    top: int  # highest seq ever queued for this peer (or the journal's last seq at hello)
    pending: deque = field(default_factory=deque)  # seqs not sent yet, in order
    inflight: dict = field(default_factory=dict)  # seq -> monotonic time of the last send
    last_cursor: int = -1

    def cursor(self) -> int:
        low = min(self.inflight) if self.inflight else None
        if self.pending and (low is None or self.pending[0] < low):
            low = self.pending[0]
        return self.top if low is None else low - 1


def alert_token(configured: str = "") -> str:
    """The alert channel's token from the settings (module doc): env, else ``configured`` ("auto": random)."""
    env = os.environ.get(ALERTS_TOKEN_ENV, "")
    if env:
        return env
    return secrets.token_urlsafe(32) if configured == "auto" else configured


class AlertServer:
    """ROUTER socket bound to ``endpoint``; see the module docstring. Counters: ``received``, ``malformed``,
    ``sent``, ``redelivered``, ``auth_failures``, ``peers`` (connected now)."""

    def __init__(self, endpoint: str, backend: AlertBackend, *, token: str = "", heartbeat_s: float = 1.0,
                 redeliver_s: float = 1.0, peer_timeout_s: float = 10.0, max_inflight: int = 256,
                 quiet_after_s: float = 3.0, context: zmq.Context | None = None) -> None:
        self.backend = backend
        self.auth = TokenAuth(token, "alerts") if token else None
        self.heartbeat_s, self.redeliver_s = heartbeat_s, redeliver_s
        self.peer_timeout_s, self.max_inflight, self.quiet_after_s = peer_timeout_s, max_inflight, quiet_after_s
        ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = ctx.socket(zmq.ROUTER)
        harden_socket(self._sock, REQUEST_LIMITS)
        self._sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._sock.setsockopt(zmq.SNDHWM, 10_000)
        self._sock.setsockopt(zmq.RCVHWM, 10_000)
        try:
            self.endpoint = bind(self._sock, endpoint, "alerts", authenticated=bool(token),
                                 hint="set [[stages]] alerts: endpoint to another port (or rtface run "
                                      "--alerts-endpoint), or endpoint = \"\" for no channel")
            if self.auth is not None:
                self.auth.write_file(self.endpoint)  # 0600, for listeners of this user (read_token)
        except (TransportError, OSError):
            self._sock.close(linger=0)
            self._sock = None
            raise
        self._peers: dict[bytes, _Peer] = {}
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._next_hb = 0.0
        self._next_cursors = 0.0
        self.received = self.malformed = self.sent = self.redelivered = self.auth_failures = 0

    # ------------------------------------------------------------------------------------------------ publishing
    def publish(self, seq: int, body: bytes) -> None:
        """Queue a new event (already journaled) for every connected listener."""
        self._cache[seq] = body
        while len(self._cache) > _CACHE_MAX:
            self._cache.popitem(last=False)
        for p in self._peers.values():
            if seq > p.top:
                p.pending.append(seq)
                p.top = seq

    @property
    def peers(self) -> int:
        return len(self._peers)

    def unacked(self) -> int:
        """Events queued or in flight to connected listeners."""
        return sum(len(p.pending) + len(p.inflight) for p in self._peers.values())

    # ------------------------------------------------------------------------------------------------ pumping
    def pump(self, max_messages: int = 2000) -> int:
        """Handle waiting requests, send what is due (new events, redeliveries, heartbeats). Never blocks."""
        sock = self._sock
        if sock is None:
            return 0
        n = 0
        while n < max_messages and sock.getsockopt(zmq.EVENTS) & _POLLIN:  # (cheaper than a failing recv)
            try:
                parts = recv_parts(sock, REQUEST_LIMITS)
            except MalformedMessage as exc:
                self.malformed += 1
                log.debug("alert channel: %s", exc)
                n += 1
                continue
            if parts is None:
                break
            n += 1
            self._handle(parts)
        now = time.monotonic()
        hb = now >= self._next_hb
        if hb:
            self._next_hb = now + self.heartbeat_s
        dirty: dict[str, int] = {}
        store = now >= self._next_cursors
        if store:
            self._next_cursors = now + _CURSOR_EVERY_S
        beat = pack(self._heartbeat()) if hb and self._peers else b""
        for p in list(self._peers.values()):
            if now - p.last_heard > self.peer_timeout_s:
                self._drop(p, dirty)
                continue
            if now - p.last_heard <= self.quiet_after_s:
                self._send_due(p, now)
            if hb:
                self._send(p, beat)
            if store and p.durable and p.cursor() != p.last_cursor:
                p.last_cursor = dirty[p.name] = p.cursor()
        self.backend.set_cursors(dirty)
        return n

    def _heartbeat(self) -> dict[str, Any]:
        b = self.backend
        return {"type": "heartbeat", "v": ALERT_WIRE_VERSION, "journal": b.journal_id, "run": b.run_id,
                "t_wall_ns": time.time_ns(), "last_seq": b.last_seq, **b.status()}

    def _send(self, p: _Peer, data: bytes) -> bool:
        try:
            self._sock.send_multipart((p.ident, data), flags=zmq.NOBLOCK)
            return True
        except zmq.ZMQError:  # EAGAIN (peer's queue full) or EHOSTUNREACH (gone): try again later
            return False

    def _bodies(self, seqs: list[int]) -> dict[int, bytes]:
        out = {s: self._cache[s] for s in seqs if s in self._cache}
        missing = [s for s in seqs if s not in out]
        if missing:
            out.update(self.backend.bodies(missing))
        return out

    def _send_due(self, p: _Peer, now: float) -> None:
        due = [s for s, t in p.inflight.items() if now - t > self.redeliver_s][:self.max_inflight]
        fresh = []
        while p.pending and len(p.inflight) + len(fresh) < self.max_inflight:
            fresh.append(p.pending.popleft())
        if not due and not fresh:
            return
        bodies = self._bodies(due + fresh)
        for i, s in enumerate(due + fresh):
            body = bodies.get(s)
            if body is None:  # vanished from the journal: nothing to deliver
                p.inflight.pop(s, None)
                continue
            if not self._send(p, body):
                for rest in reversed((due + fresh)[i:]):  # keep order; retry on the next pump
                    if rest not in p.inflight:
                        p.pending.appendleft(rest)
                break
            p.inflight[s] = now
            self.sent += 1
            if i < len(due):
                self.redelivered += 1

    def _drop(self, p: _Peer, dirty: dict[str, int]) -> None:
        if p.durable:
            dirty[p.name] = p.cursor()
        self._peers.pop(p.ident, None)

    # ------------------------------------------------------------------------------------------------ requests
    def _handle(self, parts: list[bytes]) -> None:
        if len(parts) != 2:
            self.malformed += 1
            return
        ident, body = parts
        try:
            req = parse_request(body)
        except MalformedMessage as exc:
            self.malformed += 1
            log.debug("alert channel: malformed request: %s", exc)
            return
        self.received += 1
        t = req["type"]
        p = self._peers.get(ident)
        if t == "hello":
            self._hello(ident, req)
            return
        if p is None:
            if t != "bye":
                self._sock_send(ident, {"type": "who", "v": ALERT_WIRE_VERSION})
            return
        p.last_heard = time.monotonic()
        if t == "ack":
            got = [s for s in req.get("seqs", []) if p.inflight.pop(s, None) is not None]
            alerts = req.get("alerts", [])
            if got or alerts:
                self.backend.delivered(p.name, got, alerts)
        elif t == "ack_alert":
            self._reply(p, req["req"], lambda: self.backend.ack_alert(req["alert_id"], req["by"]))
        elif t == "active":
            self._reply(p, req["req"], self.backend.snapshot)
        elif t == "bye":
            dirty: dict[str, int] = {}
            self._drop(p, dirty)
            self.backend.set_cursors(dirty)

    def _sock_send(self, ident: bytes, msg: dict[str, Any]) -> None:
        try:
            self._sock.send_multipart((ident, pack(msg)), flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    def _reply(self, p: _Peer, req_id: int, fn: Any) -> None:
        try:
            msg = {"type": "reply", "v": ALERT_WIRE_VERSION, "req": req_id, "ok": True, "result": fn()}
        except (KeyError, ValueError) as exc:
            msg = {"type": "reply", "v": ALERT_WIRE_VERSION, "req": req_id, "ok": False,
                   "error": str(exc.args[0] if exc.args else exc)}
        self._send(p, pack(msg))

    def _hello(self, ident: bytes, req: dict[str, Any]) -> None:
        if self.auth is not None and not self.auth.check(req.get("token", "")):
            self.auth_failures += 1
            self._sock_send(ident, {"type": "reply", "v": ALERT_WIRE_VERSION, "req": 0, "ok": False,
                                    "error": "authentication failed: this engine's alert channel needs its token"})
            return
        name, durable = req["listener"], bool(req.get("durable", False))
        b = self.backend
        dirty: dict[str, int] = {}
        for other in [q for q in self._peers.values() if q.ident == ident or (durable and q.name == name)]:
            self._drop(other, dirty)  # a restarted listener replaces its stale connection
        b.set_cursors(dirty)
        last = b.last_seq
        p = _Peer(ident, name, durable, time.monotonic(), top=last)
        if durable:
            cursor = b.cursor(name)
            if cursor is None:  # a new durable listener starts now; the snapshot covers what is open
                b.set_cursors({name: last})
                cursor = last
            p.pending.extend(b.notify_seqs_after(cursor))
            p.last_cursor = cursor
        self._peers[ident] = p
        snap = b.snapshot()
        self._send(p, pack({"type": "welcome", "v": ALERT_WIRE_VERSION, "journal": b.journal_id, "run": b.run_id,
                            "listener": name, "durable": durable, "alerts": snap[-SNAPSHOT_MAX:],
                            "alerts_total": len(snap), "last_seq": last, "heartbeat_s": self.heartbeat_s}))

    def close(self) -> None:
        """Store the durable listeners' cursors and close the socket. Safe to call twice."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self.auth is not None:
            self.auth.remove_file()
        dirty = {p.name: p.cursor() for p in self._peers.values() if p.durable}
        try:
            self.backend.set_cursors(dirty)
        finally:
            self._peers.clear()
            sock.close(linger=0)
