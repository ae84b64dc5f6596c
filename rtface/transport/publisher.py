"""ZeroMQ PUB side. One :class:`Publisher` owns one PUB socket and is owned by the processing thread.

ZeroMQ sockets are not thread-safe: the first thread that calls :meth:`Publisher.send` becomes the owner and any
other thread calling ``send`` gets a TransportError. Construction and :meth:`close` may happen on another thread
(before the first send / after the owner stopped sending).

The endpoint is checked (:func:`rtface.transport.guard.parse_endpoint`: a port outside 0..65535 is an error) and
bound through :func:`rtface.transport.guard.bind`. The default binds to loopback only (``tcp://127.0.0.1:5555``);
binding to another interface (``tcp://0.0.0.0:5555``, ``tcp://eth0:5555``) exposes facial data to the network,
must be asked for explicitly by the caller and logs a warning.
"""
from __future__ import annotations

import threading
import time

import zmq

from rtface.errors import TransportError
from rtface.transport.guard import Limits, MalformedMessage, bind, harden_socket, parse_endpoint, recv_parts
from rtface.transport.wire import encode, stamp, topic_bytes

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
SUBSCRIPTION_LIMITS = Limits(max_message_bytes=4096, max_parts=1, max_str_len=0, max_bin_len=0, max_array_len=0,
                             max_map_len=0)  # inbound (un)subscription notices: a flag byte + a topic prefix


class Publisher:
    """PUB socket bound to ``endpoint``; ``send`` never blocks (ZeroMQ drops at the send high-water mark).

    ``sndhwm`` is in messages. ``tcp://127.0.0.1:0`` (or ``:*``) binds a random free port; :attr:`endpoint` is the
    address actually bound. Counters: ``sent`` (messages handed to ZeroMQ), ``bytes_sent`` (payload bytes),
    ``send_errors`` (EAGAIN; PUB normally drops silently, so drops at the HWM are visible only at subscribers).
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, sndhwm: int = 100,
                 context: zmq.Context | None = None) -> None:
        parse_endpoint(endpoint, where="publisher endpoint")
        if sndhwm < 1:
            raise TransportError(f"publisher sndhwm must be >= 1 message, got {sndhwm} (0 would be unbounded)")
        self._ctx = context or zmq.Context.instance()
        # XPUB sends exactly like PUB but also lets us see subscriptions arrive (wait_for_subscribers); what it
        # receives (subscriptions) is size-limited like every inbound message
        sock = self._ctx.socket(zmq.XPUB)
        harden_socket(sock, SUBSCRIPTION_LIMITS)
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        sock.setsockopt(zmq.SNDHWM, int(sndhwm))
        try:
            self.endpoint: str = bind(sock, endpoint, "publisher", authenticated=False,
                                      hint="set [publish] endpoint (or --endpoint)")
        except BaseException:
            sock.close(linger=0)
            raise
        self._sock: zmq.Socket | None = sock
        self.requested_endpoint = endpoint
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
                parts = recv_parts(sock, SUBSCRIPTION_LIMITS)
            except MalformedMessage:  # an XSUB peer sent a multipart message: not a subscription
                continue
            if parts is None:
                return self.subscriptions
            msg = parts[0]
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

    def close(self, linger_s: float = 0.0) -> None:
        """Close the socket; ZeroMQ keeps trying to deliver queued messages for ``linger_s`` seconds in the
        background (default 0: unsent messages are discarded). Safe to call twice."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close(linger=int(max(0.0, linger_s) * 1000))

    @property
    def closed(self) -> bool:
        return self._sock is None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Publisher({self.endpoint!r}, sent={self.sent}, closed={self.closed})"
