"""Control channel: a REP socket the processing thread polls between frames, and a client for it.

Commands are msgpack maps ``{"cmd": str, ...args}``; replies ``{"ok": bool, "result": ... | "error": str}``.
Built-in commands (see Engine.handle_command): ``ping``, ``stats``, ``stop``, ``calibrate_neutral`` (face_id
optional), ``save_neutral`` (face_id, path), ``load_neutral`` (face_id, path). Bound to 127.0.0.1 by default.
No pickle: msgpack only, so a peer cannot make the engine run code.
"""
from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import msgpack
import zmq

from rtface.errors import TransportError

DEFAULT_CONTROL_ENDPOINT = "tcp://127.0.0.1:5556"


class ControlServer:
    """REP socket owned by the processing thread; ``poll()`` answers at most ``max_requests`` pending requests."""

    def __init__(self, endpoint: str, handler: Callable[[dict], Any]) -> None:
        self._ctx = zmq.Context.instance()
        self._sock: zmq.Socket | None = self._ctx.socket(zmq.REP)
        self._sock.setsockopt(zmq.LINGER, 0)
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(linger=0)
            self._sock = None
            why = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise TransportError(f"cannot bind control socket to {endpoint}: {why}; set [control] endpoint "
                                 f"to another port, or enabled = false") from exc
        self.endpoint = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._handler = handler
        self.handled = 0

    def poll(self, max_requests: int = 4) -> int:
        n = 0
        while self._sock is not None and n < max_requests:
            try:
                raw = self._sock.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                req = msgpack.unpackb(raw, raw=False)
                if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                    raise ValueError("request must be a map with a string 'cmd'")
                reply = {"ok": True, "result": self._handler(req)}
            except Exception as exc:  # every request gets an answer; the engine keeps running
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self._sock.send(msgpack.packb(reply, use_bin_type=True, default=str))
            n += 1
            self.handled += 1
        return n

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close(linger=0)


def send_command(endpoint: str, cmd: str, timeout_s: float = 5.0, **args: Any) -> Any:
    """Send one command to a running engine; returns its result or raises TransportError."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb({"cmd": cmd, **args}, use_bin_type=True))
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise TransportError(f"no answer from {endpoint} within {timeout_s} s (is `rtface run` running with "
                                 f"its control channel there?)")
        reply = msgpack.unpackb(sock.recv(), raw=False)
    finally:
        sock.close(linger=0)
    if not reply.get("ok"):
        raise TransportError(f"{cmd}: {reply.get('error')}")
    return reply.get("result")
