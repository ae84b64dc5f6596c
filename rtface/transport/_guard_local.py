"""TEMPORARY stand-in for ``rtface.transport.guard`` (being written on branch ``hardening``): the few functions the
alert channel uses, with the same names and signatures, so switching is an import change. Delete when guard lands.
"""
from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass
from typing import Any

import msgpack
import zmq

from rtface.errors import TransportError


class MalformedMessage(TransportError):
    def __init__(self, message: str, parts: list[bytes] | None = None) -> None:
        super().__init__(message)
        self.parts = parts or []


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int
    max_parts: int
    max_str_len: int
    max_bin_len: int
    max_array_len: int
    max_map_len: int
    max_depth: int = 32


def harden_socket(sock: zmq.Socket, limits: Limits) -> None:
    sock.setsockopt(zmq.MAXMSGSIZE, int(limits.max_message_bytes))
    sock.setsockopt(zmq.LINGER, 0)


def recv_parts(sock: zmq.Socket, limits: Limits, flags: int = zmq.NOBLOCK) -> list[bytes] | None:
    try:
        first = sock.recv(flags=flags)
    except zmq.Again:
        return None
    parts, extra = [first], 0
    while sock.getsockopt(zmq.RCVMORE):
        part = sock.recv()
        if len(parts) < limits.max_parts:
            parts.append(part)
        else:
            extra += 1
    if extra:
        raise MalformedMessage(f"message has {len(parts) + extra} parts, at most {limits.max_parts} allowed", parts)
    return parts


def _check(obj: Any, depth: int, limits: Limits) -> None:
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return
    if depth >= limits.max_depth:
        raise MalformedMessage(f"msgpack nesting deeper than {limits.max_depth}")
    if isinstance(obj, list):
        for v in obj:
            _check(v, depth + 1, limits)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise MalformedMessage("map keys must be str")
            _check(v, depth + 1, limits)
    else:
        raise MalformedMessage(f"msgpack value of type {type(obj).__name__} is not allowed")


def _no_ext(code: int, data: bytes) -> Any:
    raise MalformedMessage(f"msgpack ext type {code} is not allowed")


def unpack_map(data: bytes, limits: Limits, where: str = "message") -> dict[str, Any]:
    if len(data) > limits.max_message_bytes:
        raise MalformedMessage(f"payload is {len(data)} bytes, at most {limits.max_message_bytes} allowed")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_no_ext,
                              max_str_len=limits.max_str_len, max_bin_len=limits.max_bin_len,
                              max_array_len=limits.max_array_len, max_map_len=limits.max_map_len, max_ext_len=0)
    except MalformedMessage:
        raise
    except Exception as exc:
        raise MalformedMessage(f"not valid msgpack within limits ({type(exc).__name__})") from exc
    _check(obj, 0, limits)
    if not isinstance(obj, dict):
        raise MalformedMessage(f"{where}: expected a msgpack map, got {type(obj).__name__}")
    return obj


def is_loopback(endpoint: str) -> bool:
    transport, _, rest = endpoint.partition("://")
    if transport in ("ipc", "inproc"):
        return True
    host = rest.rpartition(":")[0].strip("[]")
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(sock: zmq.Socket, endpoint: str, role: str, *, authenticated: bool, hint: str = "") -> str:
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise TransportError(f"{role} endpoint {endpoint!r} is invalid (expected e.g. 'tcp://127.0.0.1:5557')")
    if not is_loopback(endpoint) and not authenticated:
        raise TransportError(f"refusing to bind the {role} socket to {endpoint}: it is reachable from other "
                             f"machines and has no authentication; use 127.0.0.1, or set a token")
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        why = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise TransportError(f"cannot bind {role} socket to {endpoint}: {why}" + (f"; {hint}" if hint else "")) \
            from exc
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)
