"""Messages of the acknowledged alert channel (ROUTER in the engine, DEALER in each listener); msgpack maps, never
pickle. Every message is one frame (the ROUTER adds/strips the peer's routing id). Schema: docs/message-schema.md,
"Alert channel".

Listener -> engine (``type``): ``hello`` (``listener`` name, ``durable``, optional ``token``), ``ack`` (``seqs``
received, optional ``alerts`` ids shown from a snapshot), ``ping``, ``ack_alert`` (``req``, ``alert_id``, ``by``),
``active`` (``req``), ``bye``. Engine -> listener: ``welcome`` (the snapshot of open alerts), ``event``,
``heartbeat``, ``reply`` (to ``ack_alert``/``active``), ``who`` (the engine does not know this peer: say hello).

:func:`parse_request` and :func:`parse_server` check size, types and fields and raise MalformedMessage (a
TransportError) naming what is wrong, never anything else. Pure functions, any thread.
"""
from __future__ import annotations

import os
import re
from typing import Any

import msgpack

from rtface.transport.guard import Limits, MalformedMessage, unpack_map

ALERT_WIRE_VERSION = 1
DEFAULT_ALERT_ENDPOINT = "tcp://127.0.0.1:5557"
ENDPOINT_ENV = "RTFACE_ALERTS_ENDPOINT"  # replaces the endpoint the alerts stage binds by default (e.g. tests: :0)


def default_alert_endpoint() -> str:
    """Endpoint the alerts stage binds by default: ``$RTFACE_ALERTS_ENDPOINT`` if set, else ``tcp://127.0.0.1:5557``
    (listeners keep connecting to ``tcp://127.0.0.1:5557`` unless told otherwise)."""
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_ALERT_ENDPOINT
REQUEST_LIMITS = Limits(max_message_bytes=64 * 1024, max_parts=4, max_str_len=1024, max_bin_len=0,
                        max_array_len=1024, max_map_len=32, max_depth=4)
SERVER_LIMITS = Limits(max_message_bytes=8 * 1024 * 1024, max_parts=1, max_str_len=64 * 1024, max_bin_len=0,
                       max_array_len=100_000, max_map_len=1024, max_depth=16)
MAX_ACKS = 1024  # seqs per ack message
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")
REQUEST_TYPES = ("hello", "ack", "ping", "ack_alert", "active", "bye")
SERVER_TYPES = ("welcome", "event", "heartbeat", "reply", "who")
EVENT_TYPES = ("raised", "delivered", "acknowledged", "escalated", "cleared")


def pack(msg: dict[str, Any]) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def _int(m: dict, k: str, lo: int = 0) -> int:
    v = m.get(k)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or v >= 2**63:
        raise MalformedMessage(f"alert channel {m.get('type')!r}: field {k!r} must be an int >= {lo}, got {v!r:.40}")
    return v


def _name(m: dict, k: str) -> str:
    v = m.get(k)
    if not isinstance(v, str) or not _NAME_RE.match(v):
        raise MalformedMessage(f"alert channel {m.get('type')!r}: field {k!r} must be 1-64 characters of "
                               f"A-Z a-z 0-9 _ . @ : -, got {v!r:.40}")
    return v


def _int_list(m: dict, k: str) -> list[int]:
    v = m.get(k, [])
    if not isinstance(v, list) or len(v) > MAX_ACKS:
        raise MalformedMessage(f"alert channel 'ack': field {k!r} must be a list of at most {MAX_ACKS} ints")
    for x in v:
        if isinstance(x, bool) or not isinstance(x, int) or not 0 < x < 2**63:
            raise MalformedMessage(f"alert channel 'ack': field {k!r} holds {x!r:.40}, expected ints > 0")
    return v


def parse_request(data: bytes) -> dict[str, Any]:
    """Validate one listener -> engine message; returns it (a map with a known ``type``)."""
    m = unpack_map(data, REQUEST_LIMITS, "alert channel request")
    t = m.get("type")
    if t not in REQUEST_TYPES:
        raise MalformedMessage(f"alert channel: field 'type' is {t!r:.40}, expected one of {REQUEST_TYPES}")
    if t == "hello":
        if m.get("v") != ALERT_WIRE_VERSION:
            raise MalformedMessage(f"alert channel 'hello': field 'v' is {m.get('v')!r:.20}, this engine speaks "
                                   f"v={ALERT_WIRE_VERSION}")
        _name(m, "listener")
        if not isinstance(m.get("durable", False), bool):
            raise MalformedMessage("alert channel 'hello': field 'durable' must be true/false")
        tok = m.get("token", "")
        if not isinstance(tok, str) or len(tok) > 256:
            raise MalformedMessage("alert channel 'hello': field 'token' must be a str of at most 256 characters")
    elif t == "ack":
        _int_list(m, "seqs")
        _int_list(m, "alerts")
    elif t == "ack_alert":
        _int(m, "req")
        _int(m, "alert_id", 1)
        _name(m, "by")  # (authentication happened at hello: only a welcomed listener may acknowledge)
    elif t == "active":
        _int(m, "req")
    return m


def parse_server(data: bytes) -> dict[str, Any]:
    """Validate one engine -> listener message; returns it."""
    m = unpack_map(data, SERVER_LIMITS, "alert channel message")
    t = m.get("type")
    if t not in SERVER_TYPES:
        raise MalformedMessage(f"alert channel: message type {t!r:.40} is unknown (expected {SERVER_TYPES})")
    if t == "event":
        ev = m.get("event")
        if not isinstance(ev, dict):
            raise MalformedMessage("alert channel 'event': field 'event' must be a map")
        _int(ev, "seq", 1)
        _int(ev, "alert_id", 1)
        if ev.get("type") not in EVENT_TYPES or not isinstance(ev.get("journal"), str):
            raise MalformedMessage("alert channel 'event': event needs 'type' (an event type) and 'journal'")
    elif t == "welcome":
        if not isinstance(m.get("journal"), str) or not isinstance(m.get("alerts"), list):
            raise MalformedMessage("alert channel 'welcome': needs 'journal' (str) and 'alerts' (list)")
        for a in m["alerts"]:
            if not isinstance(a, dict):
                raise MalformedMessage("alert channel 'welcome': every alert must be a map")
            _int(a, "alert_id", 1)
    elif t == "reply":
        _int(m, "req")
        if not isinstance(m.get("ok"), bool):
            raise MalformedMessage("alert channel 'reply': field 'ok' must be true/false")
    return m


def event_message(ev: dict[str, Any]) -> bytes:
    """Body of one event as stored in the journal and sent to every listener."""
    return pack({"type": "event", "v": ALERT_WIRE_VERSION, "event": ev})


def decode_event_body(body: bytes) -> dict[str, Any]:
    """The event inside a stored body (journal readers)."""
    return parse_server(body)["event"]
