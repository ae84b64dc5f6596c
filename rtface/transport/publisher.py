"""ZeroMQ PUB side. One :class:`Publisher` owns one PUB socket and is owned by the processing thread.

ZeroMQ sockets are not thread-safe: the first thread that calls :meth:`Publisher.send` becomes the owner and any
other thread calling ``send`` gets a TransportError. Construction and :meth:`close` may happen on another thread
(before the first send / after the owner stopped sending).

The endpoint string is used verbatim. The default binds to loopback only (``tcp://127.0.0.1:5555``); binding to
another interface (``tcp://0.0.0.0:5555``, ``tcp://eth0:5555``) exposes facial data to the network and must be asked
for explicitly by the caller.
"""
from __future__ import annotations

import errno
import threading
import time

import zmq

from rtface.errors import TransportError
from rtface.transport.wire import encode, stamp, topic_bytes

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"


def _suggest(endpoint: str) -> str:
    head, _, port = endpoint.rpartition(":")
    if endpoint.startswith("tcp://") and port.isdigit():
        return f"choose another port (e.g. {head}:{int(port) + 1}) or {head}:0 for a random free port"
    return "choose another endpoint"


class Publisher:
    """PUB socket bound to ``endpoint``; ``send`` never blocks (ZeroMQ drops at the send high-water mark).

    ``sndhwm`` is in messages. ``tcp://127.0.0.1:0`` (or ``:*``) binds a random free port; :attr:`endpoint` is the
    address actually bound. Counters: ``sent`` (messages handed to ZeroMQ), ``bytes_sent`` (payload bytes),
    ``send_errors`` (EAGAIN; PUB normally drops silently, so drops at the HWM are visible only at subscribers).
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, sndhwm: int = 100,
                 context: zmq.Context | None = None) -> None:
        if not isinstance(endpoint, str) or "://" not in endpoint:
            raise TransportError(f"publisher endpoint {endpoint!r} is invalid: expected e.g. {DEFAULT_ENDPOINT!r}")
        if sndhwm < 0:
            raise TransportError(f"publisher sndhwm must be >= 0, got {sndhwm}")
        self._ctx = context or zmq.Context.instance()
        # XPUB sends exactly like PUB but also lets us see subscriptions arrive (wait_for_subscribers)
        self._sock: zmq.Socket | None = self._ctx.socket(zmq.XPUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self._sock.setsockopt(zmq.SNDHWM, int(sndhwm))
        try:
            self._sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._sock.close(linger=0)
            self._sock = None
            if exc.errno == errno.EADDRINUSE:
                raise TransportError(f"cannot bind publisher to {endpoint}: address already in use; "
                                     f"{_suggest(endpoint)}") from exc
            raise TransportError(f"cannot bind publisher to {endpoint}: {exc.strerror}") from exc
        self.requested_endpoint = endpoint
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sndhwm = int(sndhwm)
        self.sent = 0
        self.bytes_sent = 0
        self.send_errors = 0
        self.subscriptions = 0  # subscription notices seen (XPUB), for wait_for_subscribers
        self._seq: dict[str, int] = {}
        self._owner: int | None = None

    def send(self, topic: str, payload: dict) -> bool:
        """Stamp (topic, v, seq, t_publish_ns), encode and send without blocking. Owner thread only.

        Returns False when ZeroMQ refused the message (EAGAIN). Raises TransportError on a closed publisher, a
        call from a non-owner thread, or a payload that cannot be encoded.
        """
        sock = self._sock
        if sock is None:
            raise TransportError(f"publisher {self.endpoint} is closed")
        me = threading.get_ident()
        if self._owner is None:
            self._owner = me
        elif self._owner != me:
            raise TransportError(f"publisher {self.endpoint} is owned by thread {self._owner}; send() was called "
                                 f"from thread {me} (ZeroMQ sockets are not thread-safe)")
        head = topic_bytes(topic)
        seq = self._seq.get(topic, 0)
        data = encode(stamp(topic, payload, seq, time.time_ns()))
        self._seq[topic] = seq + 1  # consumed even if dropped, so subscribers see the gap
        try:
            sock.send_multipart((head, data), flags=zmq.NOBLOCK, copy=len(data) < 65536)
        except zmq.Again:
            self.send_errors += 1
            return False
        self.sent += 1
        self.bytes_sent += len(data)
        return True

    def poll_subscriptions(self) -> int:
        """Read pending (un)subscription notices without blocking; returns the current subscription count."""
        sock = self._sock
        if sock is None:
            return self.subscriptions
        while True:
            try:
                msg = sock.recv(flags=zmq.NOBLOCK)
            except zmq.Again:
                return self.subscriptions
            if msg[:1] == b"\x01":
                self.subscriptions += 1
            elif msg[:1] == b"\x00":
                self.subscriptions = max(0, self.subscriptions - 1)

    def wait_for_subscribers(self, n: int = 1, timeout_s: float = 5.0) -> bool:
        """Block until at least ``n`` topic subscriptions have arrived (or timeout). True if they did.

        Used in file mode so a recorder that connected before the run starts receives every frame.
        """
        deadline = time.monotonic() + timeout_s
        while self.poll_subscriptions() < n:
            left = deadline - time.monotonic()
            if left <= 0 or self._sock is None:
                return False
            self._sock.poll(int(min(left, 0.05) * 1000), zmq.POLLIN)
        return True

    def close(self) -> None:
        """Close the socket with linger=0 (unsent messages are discarded). Safe to call twice."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close(linger=0)

    @property
    def closed(self) -> bool:
        return self._sock is None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Publisher({self.endpoint!r}, sent={self.sent}, closed={self.closed})"
