"""Socket hardening shared by every socket rtface binds or receives on (control, alerts, subscribers, listen).

Interface (each function stands alone; none keeps state except :class:`TokenAuth`):

- :class:`Limits`, :data:`CONTROL_LIMITS` (requests, 64 KiB), :data:`STREAM_LIMITS` (published messages, 8 MiB).
- :func:`harden_socket` (``ZMQ_MAXMSGSIZE``: a bigger inbound message disconnects its peer; LINGER 0) on every
  socket that receives.
- :func:`recv_parts`: read *every* part of the next message (so no socket is left mid-message); too many parts
  raise :class:`MalformedMessage` after the whole message was consumed.
- :func:`unpack` / :func:`unpack_map`: strict msgpack (length limits, str keys, no ext types or timestamps,
  bounded nesting; never pickle); anything else raises :class:`MalformedMessage`.
- :func:`split_envelope`: ROUTER routing frames vs body, so each request gets exactly one reply.
- :class:`GuardedConnection`: a connecting socket (SUB, DEALER) that is re-made after an oversize message made
  libzmq drop its connection (which libzmq never retries by itself).
- :func:`parse_endpoint`, :func:`is_loopback`, :func:`check_bind` (warn for any non-loopback bind; refuse roles in
  :data:`AUTH_REQUIRED_ROLES` there without authentication), :func:`bind` (check + bind + bound address).
- :class:`TokenAuth`: a shared secret for state-changing requests (constant-time compare), with a per-user token
  file (mode 0600) so ``rtface ctl`` on the same machine finds it.

Thread ownership: ZeroMQ sockets stay owned by their callers; these helpers run in the caller's thread.
"""
from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import zmq

from rtface.errors import TransportError

log = logging.getLogger("rtface.transport")

AUTH_REQUIRED_ROLES = frozenset({"control", "alerts"})  # never bound beyond loopback without authentication
TOKEN_ENV = "RTFACE_CONTROL_TOKEN"
ALERTS_TOKEN_ENV = "RTFACE_ALERTS_TOKEN"  # the alert channel's token (engine and listeners), as TOKEN_ENV


class MalformedMessage(TransportError):
    """An inbound message broke the wire rules (parts, size, msgpack, types). The socket stays usable.

    ``parts``: from :func:`recv_parts`, the first ``max_parts`` parts (a ROUTER can still answer the peer).
    """

    def __init__(self, message: str, parts: list[bytes] | None = None) -> None:
        super().__init__(message)
        self.parts = parts or []


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one inbound message. Sizes in bytes, lengths in elements."""

    max_message_bytes: int  # ZMQ_MAXMSGSIZE: per message part; the peer is disconnected beyond it
    max_parts: int  # multipart frames accepted (ROUTER envelopes included)
    max_str_len: int
    max_bin_len: int
    max_array_len: int
    max_map_len: int
    max_depth: int = 32  # nesting of arrays/maps


CONTROL_LIMITS = Limits(max_message_bytes=64 * 1024, max_parts=8, max_str_len=4096, max_bin_len=0,
                        max_array_len=256, max_map_len=64, max_depth=8)
STREAM_LIMITS = Limits(max_message_bytes=8 * 1024 * 1024, max_parts=2, max_str_len=1024 * 1024,
                       max_bin_len=8 * 1024 * 1024, max_array_len=65536, max_map_len=16384, max_depth=32)


def harden_socket(sock: zmq.Socket, limits: Limits) -> None:
    """Set ``ZMQ_MAXMSGSIZE`` and LINGER 0 on a socket that receives (call before bind/connect)."""
    sock.setsockopt(zmq.MAXMSGSIZE, int(limits.max_message_bytes))
    sock.setsockopt(zmq.LINGER, 0)


def recv_parts(sock: zmq.Socket, limits: Limits, flags: int = zmq.NOBLOCK) -> list[bytes] | None:
    """All parts of the next message (None if none is waiting with NOBLOCK).

    Parts beyond ``limits.max_parts`` are read and dropped, then MalformedMessage is raised (its ``parts`` holds the
    kept ones): the socket is always left at a message boundary.
    """
    try:
        first = sock.recv(flags=flags)
    except zmq.Again:
        return None
    parts = [first]
    extra = 0
    while sock.getsockopt(zmq.RCVMORE):
        part = sock.recv()
        if len(parts) < limits.max_parts:
            parts.append(part)
        else:
            extra += 1
    if extra:
        raise MalformedMessage(f"message has {len(parts) + extra} parts, at most {limits.max_parts} allowed", parts)
    return parts


_PLAIN_SCALARS = (type(None), bool, int, float, str, bytes)


def _check_plain(obj: Any, depth: int, limits: Limits) -> None:
    if isinstance(obj, _PLAIN_SCALARS):
        return
    if depth >= limits.max_depth:
        raise MalformedMessage(f"msgpack nesting deeper than {limits.max_depth}")
    if isinstance(obj, list):
        for v in obj:
            if not isinstance(v, _PLAIN_SCALARS):
                _check_plain(v, depth + 1, limits)
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise MalformedMessage(f"map key {k!r:.40} is {type(k).__name__}, keys must be str")
            if not isinstance(v, _PLAIN_SCALARS):
                _check_plain(v, depth + 1, limits)
        return
    raise MalformedMessage(f"msgpack value of type {type(obj).__name__} is not allowed (no ext types/timestamps)")


def _no_ext(code: int, data: bytes) -> Any:
    raise MalformedMessage(f"msgpack ext type {code} is not allowed")


def unpack(data: bytes | memoryview, limits: Limits) -> Any:
    """Strictly decode one msgpack document: nil/bool/int/float/str/bin/array/map only, str map keys, lengths and
    nesting within ``limits``, no trailing bytes. Raises MalformedMessage (never anything else)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedMessage(f"payload must be bytes, got {type(data).__name__}")
    if len(data) > limits.max_message_bytes:
        raise MalformedMessage(f"payload is {len(data)} bytes, at most {limits.max_message_bytes} allowed")
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, ext_hook=_no_ext,
                              max_str_len=limits.max_str_len, max_bin_len=limits.max_bin_len,
                              max_array_len=limits.max_array_len, max_map_len=limits.max_map_len,
                              max_ext_len=0)
    except MalformedMessage:
        raise
    except Exception as exc:  # msgpack raises ValueError, ExtraData, StackError, UnicodeDecodeError, TypeError...
        raise MalformedMessage(f"not valid msgpack within limits ({type(exc).__name__}: {exc})"[:300]) from exc
    _check_plain(obj, 0, limits)
    return obj


def unpack_map(data: bytes | memoryview, limits: Limits, where: str = "message") -> dict[str, Any]:
    """:func:`unpack` that also requires a map at the top level."""
    obj = unpack(data, limits)
    if not isinstance(obj, dict):
        raise MalformedMessage(f"{where}: expected a msgpack map, got {type(obj).__name__}")
    return obj


def split_envelope(parts: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """ROUTER message -> (envelope, body). The envelope is the peer identity plus every frame up to and including
    the first empty delimiter (REQ peers send one; DEALER peers may not). Send replies as ``envelope + [reply]``."""
    if not parts:
        raise MalformedMessage("empty message")
    for i in range(1, len(parts)):
        if len(parts[i]) == 0:
            return parts[:i + 1], parts[i + 1:]
    return parts[:1], parts[1:]


class GuardedConnection:
    """A connecting socket (SUB, DEALER, ...) that survives oversize messages.

    With ``ZMQ_MAXMSGSIZE`` set, libzmq drops a connection whose peer sent a bigger message and, as that is a
    protocol error, never reconnects it. This owner watches the socket's DISCONNECTED events and, once the messages
    already queued are read, replaces the socket by a new one (same ``setup``) connected to the same endpoint;
    ``reconnects`` counts that. ``setup(sock)`` sets options such as SUBSCRIBE and RCVHWM. Owned by one thread.
    """

    def __init__(self, kind: int, endpoint: str, limits: Limits, setup: Any = None, *,
                 context: zmq.Context | None = None, where: str = "endpoint") -> None:
        parse_endpoint(endpoint, for_bind=False, where=where)
        self.endpoint, self.limits, self.kind, self._setup = endpoint, limits, kind, setup
        self._ctx = context or zmq.Context.instance()
        self.reconnects = 0
        self.sock: zmq.Socket | None = None
        self._mon: zmq.Socket | None = None
        self._open()

    def _open(self) -> None:
        sock = self._ctx.socket(self.kind)
        try:
            harden_socket(sock, self.limits)
            if self._setup is not None:
                self._setup(sock)
            mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            try:
                sock.connect(self.endpoint)
            except zmq.ZMQError as exc:
                sock.disable_monitor()
                mon.close(linger=0)
                raise TransportError(f"cannot connect to {self.endpoint}: {exc.strerror}") from exc
        except BaseException:
            sock.close(linger=0)
            raise
        self.sock, self._mon = sock, mon
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(mon, zmq.POLLIN)

    def _reopen(self) -> None:
        self._close_socket()
        self._open()
        self.reconnects += 1

    def poll(self, timeout_ms: int | None) -> bool:
        """Wait up to ``timeout_ms`` (None = forever) for a message; True if one is waiting."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while self.sock is not None:
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            ready = dict(self._poller.poll(left))
            if self.sock in ready:
                return True
            if self._mon in ready:
                while self._mon.poll(0):
                    self._mon.recv_multipart()
                self._reopen()
                continue
            if left == 0 or deadline is not None and time.monotonic() >= deadline:
                return False
        return False

    def pollables(self) -> tuple[zmq.Socket, ...]:
        """The sockets to watch in a caller's own ``zmq.Poller`` (the data socket and its monitor; they change
        after a reconnect, see ``reconnects``); on readiness call :meth:`poll` with 0, then :meth:`recv_parts`."""
        return tuple(s for s in (self.sock, self._mon) if s is not None)

    def recv_parts(self) -> list[bytes] | None:
        """:func:`recv_parts` on the current socket (NOBLOCK)."""
        if self.sock is None:
            raise TransportError(f"connection to {self.endpoint} is closed")
        return recv_parts(self.sock, self.limits)

    def _close_socket(self) -> None:
        sock, mon, self.sock, self._mon = self.sock, self._mon, None, None
        if sock is not None:
            try:
                sock.disable_monitor()
            except zmq.ZMQError:
                pass
            sock.close(linger=0)
        if mon is not None:
            mon.close(linger=0)

    def close(self) -> None:
        self._close_socket()


# ------------------------------------------------------------------------------------------------------- endpoints

@dataclass(frozen=True)
class Endpoint:
    transport: str  # "tcp" | "ipc" | "inproc" | ...
    host: str  # tcp: address, interface name or "*" (brackets removed for IPv6); else the path/name
    port: int | None  # tcp: 0..65535, 0 = random free port (bind only); None for other transports


_PORT_RE = re.compile(r"^(?:0|[1-9][0-9]{0,4})$")


def parse_endpoint(endpoint: Any, *, for_bind: bool = True, where: str = "endpoint") -> Endpoint:
    """Validate a ZeroMQ endpoint; raises TransportError naming it (port outside 0..65535, missing host, ...).

    ``tcp://host:*`` and ``tcp://host:0`` (random free port) are accepted for binding only.
    """
    def bad(why: str) -> TransportError:
        return TransportError(f"{where} {endpoint!r} is invalid: {why} (expected tcp://host:port, e.g. "
                              f"tcp://127.0.0.1:0 to bind a random free port)")

    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise bad("expected transport://address")
    transport, _, rest = endpoint.partition("://")
    if transport in ("ipc", "inproc"):
        if not rest:
            raise bad("empty address")
        return Endpoint(transport, rest, None)
    if transport != "tcp":
        raise bad(f"transport {transport!r} is not supported (tcp, ipc, inproc)")
    host, sep, port_s = rest.rpartition(":")
    if not sep or not host:
        raise bad("expected tcp://host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if port_s == "*":
        port_s = "0"
    if not _PORT_RE.match(port_s) or int(port_s) > 65535:
        raise bad(f"port {port_s!r} is not a number in 0..65535")
    port = int(port_s)
    if not for_bind and (port == 0 or host == "*"):
        raise bad("a wildcard host or port can only be bound, not connected to")
    return Endpoint("tcp", host, port)


def is_loopback(endpoint: str) -> bool:
    """True when only this machine can reach ``endpoint``: tcp on 127.0.0.0/8, ::1, ``localhost`` or ``lo``;
    ipc (a socket file) and inproc. False for ``*``, 0.0.0.0, other addresses and other interface names."""
    ep = parse_endpoint(endpoint)
    if ep.transport in ("ipc", "inproc"):
        return True
    host = ep.host
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(endpoint: str, role: str, authenticated: bool) -> None:
    """Call before binding a socket of ``role`` ("publisher", "control", "alerts", ...).

    Beyond loopback: logs a warning for every role, and raises TransportError for roles in
    :data:`AUTH_REQUIRED_ROLES` when ``authenticated`` is False.
    """
    if is_loopback(endpoint):
        return
    if role in AUTH_REQUIRED_ROLES and not authenticated:
        raise TransportError(f"refusing to bind the {role} socket to {endpoint}: it is reachable from other "
                             f"machines and has no authentication; use a loopback address (127.0.0.1) and an SSH "
                             f"tunnel, or turn on token authentication (README, Security)")
    log.warning("%s socket bound to %s: reachable from other machines (not loopback-only)", role, endpoint)


def bind(sock: zmq.Socket, endpoint: str, role: str, *, authenticated: bool, hint: str = "") -> str:
    """:func:`check_bind`, then bind; returns the address actually bound (``LAST_ENDPOINT``: the real port for
    ``:0``). Errors are TransportError naming the role and endpoint; ``hint`` says which setting to change."""
    parse_endpoint(endpoint, where=f"{role} endpoint")
    check_bind(endpoint, role, authenticated)
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        if exc.errno == errno.EADDRINUSE:
            why = "address already in use (by another program or rtface); choose another port, or port 0 for a " \
                  "random free one (the banner shows the port bound)"
        else:
            why = exc.strerror
        raise TransportError(f"cannot bind {role} socket to {endpoint}: {why}" + (f"; {hint}" if hint else "")) \
            from exc
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


# ------------------------------------------------------------------------------------------------------------ auth

def token_file(endpoint: str, kind: str = "control") -> Path:
    """Per-user file that holds the token of the engine's ``kind`` socket ("control" or "alerts") bound at
    ``endpoint`` (see :func:`rtface.userdirs`)."""
    from rtface.userdirs import runtime_dir

    ep = parse_endpoint(endpoint)
    host = "127.0.0.1" if ep.host == "localhost" else ep.host
    key = f"{ep.transport}-{host}-{ep.port}" if ep.port is not None else f"{ep.transport}-{host}"
    return runtime_dir() / (f"{kind}-" + re.sub(r"[^A-Za-z0-9._-]", "_", key)[:120] + ".token")


class TokenAuth:
    """Shared-secret check for state-changing requests.

    ``token``: at least 16 characters; empty = a random 256-bit token (``secrets.token_urlsafe(32)``).
    :meth:`check` compares in constant time. :meth:`write_file` stores the token for ``endpoint`` in a per-user
    file (folder 0700, file 0600); :meth:`remove_file` deletes it at shutdown. Owned by the socket's thread.
    """

    def __init__(self, token: str = "", kind: str = "control") -> None:
        if token and len(token) < 16:
            raise TransportError(f"{kind} token must be at least 16 characters (or empty for a random one)")
        self.kind = kind
        self.token = token or secrets.token_urlsafe(32)
        self._bytes = self.token.encode("utf-8")
        self.file: Path | None = None
        self.rejected = 0

    @classmethod
    def from_settings(cls, configured: str = "", kind: str = "control") -> TokenAuth:
        """Token from ``$RTFACE_CONTROL_TOKEN`` (``$RTFACE_ALERTS_TOKEN`` for kind "alerts"), else
        ``configured``, else random."""
        return cls(os.environ.get(_ENV[kind]) or configured, kind)

    def check(self, presented: Any) -> bool:
        ok = isinstance(presented, str) and hmac.compare_digest(presented.encode("utf-8"), self._bytes)
        if not ok:
            self.rejected += 1
        return ok

    def write_file(self, endpoint: str) -> Path:
        from rtface.userdirs import private_dir

        path = token_file(endpoint, self.kind)
        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.token + "\n")
        os.replace(tmp, path)
        self.file = path
        return path

    def remove_file(self) -> None:
        path, self.file = self.file, None
        if path is not None:
            try:
                if path.read_text(encoding="utf-8").strip() == self.token:  # not a newer engine's file
                    path.unlink()
            except OSError:
                pass


_ENV = {"control": TOKEN_ENV, "alerts": ALERTS_TOKEN_ENV}


def read_token(endpoint: str, kind: str = "control") -> str | None:
    """Client side: ``$RTFACE_CONTROL_TOKEN`` (``$RTFACE_ALERTS_TOKEN`` for kind "alerts"), else the token file
    of ``endpoint`` if this user has one."""
    env = os.environ.get(_ENV[kind])
    if env:
        return env
    try:
        path = token_file(endpoint, kind)
        if path.is_file() and not path.is_symlink():
            return path.read_text(encoding="utf-8").strip() or None
    except (OSError, TransportError):
        return None
    return None
