"""Wire format: multipart ZeroMQ messages ``[topic (utf-8), msgpack payload]``.

- msgpack is packed with ``use_bin_type=True`` and unpacked with ``raw=False``; pickle is never used.
- A numpy array travels as the map ``{"__nd__": True, "dtype": "<f4", "shape": [478, 3], "data": <bin>}``:
  C-order bytes, explicit byte order (``<`` little-endian for multi-byte types, ``|`` for 1-byte types).
  Allowed kinds: bool, signed/unsigned int, float. Decoded arrays are read-only views of the received bytes.
- Every payload carries ``"topic"`` (str, equal to the first frame), ``"v"`` (int, :data:`WIRE_VERSION`),
  ``"seq"`` (int, publisher's per-topic counter from 0) and ``"t_publish_ns"`` (int, UTC ns at send).

Decoding is strict (:func:`rtface.transport.guard.unpack`): any malformed input raises TransportError naming the
topic and field, nothing else. Pure functions, no sockets: safe to call from any thread.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from rtface.errors import TransportError
from rtface.transport.guard import STREAM_LIMITS, Limits, MalformedMessage, unpack

WIRE_VERSION = 1
TOPIC_PREFIX = "rtface.v1."
TOPIC_FRAME = "rtface.v1.frame"  # one message per processed frame with all its faces
TOPIC_STATS = "rtface.v1.stats"  # heartbeat once a second
TOPIC_GAZE = "rtface.v1.gaze"  # gaze-on-face events
TOPIC_ALERT = "rtface.v1.alert"  # alerts are published on rtface.v1.alert.<kind>
TOPIC_SESSION = "rtface.v1.session"  # end-of-run summary

HEADER_FIELDS = ("topic", "v", "seq", "t_publish_ns")
ND_KEY = "__nd__"
_ARRAY_KINDS = "biuf"
_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1
_KIND_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


def alert_topic(kind: str) -> str:
    """Topic of an alert of ``kind`` (lower-case letters, digits, ``_``; dots allowed for sub-kinds)."""
    if not isinstance(kind, str) or not _KIND_RE.match(kind):
        raise TransportError(f"alert kind {kind!r} is invalid: use lower-case letters, digits, '_' and '.'")
    return f"{TOPIC_ALERT}.{kind}"


def topic_bytes(topic: str) -> bytes:
    """First multipart frame for ``topic``; raises TransportError on an empty or non-str topic."""
    if not isinstance(topic, str) or not topic or "\x00" in topic:
        raise TransportError(f"topic {topic!r} is invalid: expected a non-empty str such as {TOPIC_FRAME!r}")
    return topic.encode("utf-8")


# ----------------------------------------------------------------------------------------------------------- encode

def _pack_array(a: np.ndarray) -> dict[str, Any]:
    if a.dtype.kind not in _ARRAY_KINDS or a.dtype.fields is not None:
        raise TypeError(f"numpy dtype {a.dtype} is not allowed (only bool, int, uint, float)")
    le = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" or (
        a.dtype.byteorder == "=" and not np.little_endian) else a.dtype
    if not a.flags.c_contiguous or a.dtype != le or a.dtype.byteorder == ">":
        a = np.array(a, dtype=le, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
    data = memoryview(a).cast("B") if a.size else b""
    return {ND_KEY: True, "dtype": le.str, "shape": list(a.shape), "data": data}


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return _pack_array(obj)
    if isinstance(obj, np.generic) and obj.dtype.kind in _ARRAY_KINDS:
        return obj.item()
    raise TypeError(f"type {type(obj).__name__} cannot be sent")


def _find_bad(obj: Any, path: str) -> tuple[str, str] | None:
    """Locate the first value msgpack cannot send; return (path, reason). Only used to word an error."""
    if obj is None or isinstance(obj, (bool, float, str, bytes, bytearray, memoryview)):
        return None
    if isinstance(obj, int):
        return None if _INT_MIN <= obj <= _UINT_MAX else (path, f"int {obj} does not fit 64 bits")
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ARRAY_KINDS or obj.dtype.fields is not None:
            return path, f"numpy dtype {obj.dtype} is not allowed (only bool, int, uint, float)"
        return None
    if isinstance(obj, np.generic):
        return None if obj.dtype.kind in _ARRAY_KINDS else (path, f"numpy scalar {obj.dtype} is not allowed")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                return f"{path}[{k!r}]", f"key {k!r} is {type(k).__name__}, keys must be str"
            bad = _find_bad(v, f"{path}.{k}" if path else k)
            if bad:
                return bad
        return None
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            bad = _find_bad(v, f"{path}[{i}]")
            if bad:
                return bad
        return None
    return path, f"type {type(obj).__name__} cannot be sent"


def _bad_key(obj: Any, path: str) -> str | None:
    """Path of the first map key that is not a str (readers unpack with strict str/bytes keys), else None."""
    if type(obj) is dict:
        for k, v in obj.items():
            if type(k) is not str:
                return f"{path}[{k!r}]"
            if type(v) is dict or type(v) is list:
                bad = _bad_key(v, f"{path}.{k}" if path else k)
                if bad:
                    return bad
    elif type(obj) is list or type(obj) is tuple:
        for i, v in enumerate(obj):
            if type(v) is dict or type(v) is list or type(v) is tuple:
                bad = _bad_key(v, f"{path}[{i}]")
                if bad:
                    return bad
    return None


def check_header(payload: Any, where: str = "payload") -> str:
    """Validate the header fields of ``payload``; return its topic. Raises TransportError naming the field."""
    if not isinstance(payload, dict):
        raise TransportError(f"{where}: expected a map, got {type(payload).__name__}")
    topic = payload.get("topic")
    if not isinstance(topic, str) or not topic:
        raise TransportError(f"{where}: field 'topic' is missing or not a non-empty str (got {topic!r})")
    v = payload.get("v")
    if v != WIRE_VERSION or isinstance(v, bool):
        raise TransportError(f"{where} (topic {topic!r}): field 'v' is {v!r}, this reader understands "
                             f"v={WIRE_VERSION} only")
    for name in ("seq", "t_publish_ns"):
        val = payload.get(name)
        if not isinstance(val, int) or isinstance(val, bool) or val < 0:
            raise TransportError(f"{where} (topic {topic!r}): field {name!r} must be a non-negative int, "
                                 f"got {val!r}")
    return topic


def encode(payload: dict) -> bytes:
    """Pack a stamped payload (see :func:`stamp`) to msgpack bytes. Arrays are sent as ``__nd__`` maps.

    Raises TransportError naming the topic and the field that cannot be sent.
    """
    topic = check_header(payload, "encode")
    bad_key = _bad_key(payload, "")
    if bad_key:
        raise TransportError(f"cannot encode message (topic {topic!r}): field {bad_key!r}: map keys must be str")
    try:
        return msgpack.packb(payload, default=_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        bad = _find_bad(payload, "")
        what = f"field {bad[0]!r}: {bad[1]}" if bad else str(exc)
        raise TransportError(f"cannot encode message (topic {topic!r}): {what}") from exc


def stamp(topic: str, payload: dict, seq: int, t_publish_ns: int) -> dict:
    """Return a shallow copy of ``payload`` with the header fields set.

    A payload that already names a different ``topic`` is refused (it would be filed under the wrong topic).
    """
    if not isinstance(payload, dict):
        raise TransportError(f"payload for topic {topic!r} must be a dict, got {type(payload).__name__}")
    own = payload.get("topic")
    if own is not None and own != topic:
        raise TransportError(f"payload says topic {own!r} but is being sent on {topic!r}")
    out = dict(payload)
    out["topic"] = topic
    out["v"] = WIRE_VERSION
    out["seq"] = seq
    out["t_publish_ns"] = t_publish_ns
    return out


# ----------------------------------------------------------------------------------------------------------- decode

def _unpack_array(m: dict, topic: str, path: str) -> np.ndarray:
    def bad(msg: str) -> TransportError:
        return TransportError(f"malformed message (topic {topic!r}): field {path!r}: {msg}")

    extra = set(m) - {ND_KEY, "dtype", "shape", "data"}
    if m.get(ND_KEY) is not True or extra:
        raise bad(f"array map has unexpected keys {sorted(map(str, extra))}" if extra else "'__nd__' must be true")
    dt_s, shape, data = m.get("dtype"), m.get("shape"), m.get("data")
    if not isinstance(dt_s, str) or len(dt_s) < 2 or dt_s[0] not in "<|" or dt_s[1] not in _ARRAY_KINDS:
        raise bad(f"dtype {dt_s!r} is not an explicit little-endian bool/int/uint/float dtype string")
    try:
        dt = np.dtype(dt_s)
    except Exception as exc:  # numpy raises TypeError, ValueError, SyntaxError... for odd strings
        raise bad(f"dtype {dt_s!r} is not understood") from exc
    if dt.kind not in _ARRAY_KINDS or dt.fields is not None or dt.subdtype is not None:
        raise bad(f"dtype {dt_s!r} is not a plain bool/int/uint/float dtype")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                              for s in shape):
        raise bad(f"shape {shape!r} must be a list of non-negative ints")
    if not isinstance(data, bytes):
        raise bad(f"data must be bin, got {type(data).__name__}")
    n = 1
    for s in shape:
        n *= s
    if len(data) != n * dt.itemsize:
        raise bad(f"data is {len(data)} bytes, expected {n * dt.itemsize} for shape {shape} dtype {dt_s}")
    return np.frombuffer(data, dtype=dt).reshape(tuple(shape))  # read-only view of the received bytes


def _restore(obj: Any, topic: str, path: str) -> Any:
    if isinstance(obj, dict):
        if ND_KEY in obj:
            return _unpack_array(obj, topic, path)
        for k, v in obj.items():
            if isinstance(v, (dict, list)):
                obj[k] = _restore(v, topic, f"{path}.{k}" if path else str(k))
        return obj
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, (dict, list)):
                obj[i] = _restore(v, topic, f"{path}[{i}]")
    return obj


def decode(data: bytes, *, topic: str | None = None, limits: Limits = STREAM_LIMITS) -> dict:
    """Unpack one payload; arrays come back as read-only numpy views (no copy).

    ``topic`` (the first multipart frame, if known) must equal the payload's ``topic`` field. Raises TransportError
    naming the topic and field for anything malformed (bad msgpack or beyond ``limits`` (see
    :mod:`rtface.transport.guard`: lengths, nesting, no ext types), missing header, bad array map).
    """
    where = f"message on topic {topic!r}" if topic else "message"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TransportError(f"{where}: payload must be bytes, got {type(data).__name__}")
    try:
        obj = unpack(data, limits)
    except MalformedMessage as exc:
        raise MalformedMessage(f"{where}: payload is not valid msgpack ({exc})") from exc
    own = check_header(obj, where)
    if topic is not None and own != topic:
        raise TransportError(f"{where}: field 'topic' says {own!r}, the envelope says {topic!r}")
    return _restore(obj, own, "")


def decode_multipart(frames: Sequence[bytes], limits: Limits = STREAM_LIMITS) -> tuple[str, dict]:
    """Decode ``[topic, payload]`` as received by ``recv_multipart``; return (topic, payload)."""
    if len(frames) != 2:
        raise TransportError(f"malformed message: expected 2 frames [topic, payload], got {len(frames)}")
    try:
        topic = bytes(frames[0]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TransportError(f"malformed message: topic frame is not utf-8 ({frames[0][:40]!r})") from exc
    return topic, decode(frames[1], topic=topic, limits=limits)
