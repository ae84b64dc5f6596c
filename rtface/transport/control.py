"""Control channel: a ROUTER socket the processing thread polls between frames, and a client for it.

Requests are one msgpack map ``{"cmd": str, "token": str (state-changing commands), ...args}`` sent from a REQ
(or DEALER) socket; replies ``{"ok": bool, "result": ... | "error": str}``. Every request gets exactly one reply,
whatever it holds (multipart, oversize, not msgpack, not a map): the server is a ROUTER, so no request can leave
it in a wrong state, and messages above 64 KiB disconnect their sender (``ZMQ_MAXMSGSIZE``, see
:mod:`rtface.transport.guard`). Built-in commands (see Engine.handle_command): ``ping``, ``stats`` (read-only),
``stop``, ``calibrate_neutral`` (face_id optional), ``save_neutral`` (face_id, name, overwrite),
``load_neutral`` (face_id, name): these change state and need the engine's token unless ``auth = "none"``
(loopback only). No pickle: msgpack only, so a peer cannot make the engine run code.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import zmq

from rtface.errors import TransportError
from rtface.transport.guard import (
    CONTROL_LIMITS, Limits, MalformedMessage, TokenAuth, bind, harden_socket, parse_endpoint, read_token,
    recv_parts, split_envelope, unpack_map,
)

DEFAULT_CONTROL_ENDPOINT = "tcp://127.0.0.1:5556"
STATE_CHANGING = frozenset({"stop", "calibrate_neutral", "save_neutral", "load_neutral"})
REPLY_LIMITS = Limits(max_message_bytes=4 * 1024 * 1024, max_parts=2, max_str_len=1024 * 1024, max_bin_len=0,
                      max_array_len=65536, max_map_len=16384)


class ControlServer:
    """ROUTER socket owned by the processing thread; ``poll()`` answers at most ``max_requests`` pending requests.

    ``auth``: None = no authentication (refused beyond loopback by :func:`guard.check_bind`); otherwise commands in
    ``state_changing`` need ``auth``'s token, whose file is written for the bound endpoint and removed on close.
    Counters: ``handled`` (replies sent), ``malformed``, ``unauthorized``, ``reply_drops``.
    """

    def __init__(self, endpoint: str, handler: Callable[[dict], Any], *, auth: TokenAuth | None = None,
                 state_changing: frozenset[str] = STATE_CHANGING) -> None:
        self._ctx = zmq.Context.instance()
        sock = self._ctx.socket(zmq.ROUTER)
        harden_socket(sock, CONTROL_LIMITS)
        try:
            self.endpoint = bind(sock, endpoint, "control", authenticated=auth is not None,
                                 hint="set [control] endpoint (or --control), or turn it off with --no-control")
            if auth is not None:
                auth.write_file(self.endpoint)
        except BaseException:
            sock.close(linger=0)
            raise
        self._sock: zmq.Socket | None = sock
        self._handler = handler
        self.auth = auth
        self.state_changing = state_changing
        self.handled = 0
        self.malformed = 0
        self.unauthorized = 0
        self.reply_drops = 0

    def poll(self, max_requests: int = 4) -> int:
        n = 0
        while self._sock is not None and n < max_requests:
            error = ""
            try:
                parts = recv_parts(self._sock, CONTROL_LIMITS)
            except MalformedMessage as exc:
                parts, error = exc.parts, str(exc)
            if parts is None:
                break
            envelope, body = split_envelope(parts)
            reply = self._answer(body, error)
            try:
                data = msgpack.packb(reply, use_bin_type=True, default=str)
            except Exception as exc:  # a handler result msgpack cannot hold
                data = msgpack.packb({"ok": False, "error": f"reply cannot be sent: {type(exc).__name__}"})
            try:
                self._sock.send_multipart([*envelope, data], flags=zmq.NOBLOCK)
                self.handled += 1
            except zmq.ZMQError:  # peer gone or its queue full: ROUTER drops, nothing is left half-done
                self.reply_drops += 1
            n += 1
        return n

    def _answer(self, body: list[bytes], error: str) -> dict:
        if not error and len(body) != 1:
            error = f"a request is one msgpack frame, got {len(body)}"
        if not error:
            try:
                req = unpack_map(body[0], CONTROL_LIMITS, "request")
                if not isinstance(req.get("cmd"), str):
                    raise MalformedMessage("request must be a map with a string 'cmd'")
            except MalformedMessage as exc:
                error = str(exc)
        if error:
            self.malformed += 1
            return {"ok": False, "error": f"malformed request: {error}"}
        token = req.pop("token", None)
        if req["cmd"] in self.state_changing and self.auth is not None and not self.auth.check(token):
            self.unauthorized += 1
            return {"ok": False, "error": f"unauthorized: {req['cmd']!r} needs this engine's control token "
                                          f"(rtface ctl finds it on the same machine and user; else --token or "
                                          f"$RTFACE_CONTROL_TOKEN)"}
        try:
            return {"ok": True, "result": self._handler(req)}
        except Exception as exc:  # every request gets an answer; the engine keeps running
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close(linger=0)
        if self.auth is not None:
            self.auth.remove_file()


def send_command(endpoint: str, cmd: str, timeout_s: float = 5.0, *, token: str | None = None, **args: Any) -> Any:
    """Send one command to a running engine; returns its result or raises TransportError.

    ``token``: default ``$RTFACE_CONTROL_TOKEN`` or the token file the engine wrote for ``endpoint``.
    """
    parse_endpoint(endpoint, for_bind=False, where="control endpoint")
    if token is None:
        token = read_token(endpoint)
    req = {"cmd": cmd, **args}
    if token:
        req["token"] = token
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    harden_socket(sock, REPLY_LIMITS)
    try:
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            raise TransportError(f"cannot connect to control endpoint {endpoint!r}: {exc.strerror}") from exc
        sock.send(msgpack.packb(req, use_bin_type=True))
        if not sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            raise TransportError(f"no answer from {endpoint} within {timeout_s} s (is `rtface run` running with "
                                 f"its control channel there?)")
        parts = recv_parts(sock, REPLY_LIMITS)
        reply = unpack_map(parts[-1] if parts else b"", REPLY_LIMITS, f"reply from {endpoint}")
    finally:
        sock.close(linger=0)
    if not reply.get("ok"):
        raise TransportError(f"{cmd}: {reply.get('error')}")
    return reply.get("result")
