"""ZeroMQ SUB side: connect, filter by topic prefix, decode, and count frames lost on the way.

A :class:`Subscriber` is owned by the thread that calls :meth:`Subscriber.recv` (ZeroMQ sockets are not
thread-safe). Loss accounting uses the publisher's per-topic ``seq`` (consecutive from 0 for each topic of one
publisher), so it counts only what the transport dropped (send/receive high-water marks, slow subscriber).
Frames the pipeline itself skipped (drop-oldest at capture) show as jumps of the ``frame`` index per source and are
counted separately in ``index_gaps``.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import zmq

from rtface.errors import TransportError
from rtface.transport.guard import STREAM_LIMITS, GuardedConnection, Limits
from rtface.transport.publisher import DEFAULT_ENDPOINT
from rtface.transport.wire import TOPIC_FRAME, TOPIC_PREFIX, decode_multipart


class GapCounter:
    """Counts missing values in sequences that should step by one, one sequence per key (pure logic).

    A value that goes backwards (publisher or source restarted) starts the sequence again without counting.
    """

    def __init__(self) -> None:
        self.last: dict[object, int] = {}
        self.missed = 0
        self.restarts = 0

    def update(self, key: object, value: int) -> int:
        """Record ``value`` for ``key``; return how many values were skipped just before it."""
        prev = self.last.get(key)
        self.last[key] = value
        if prev is None:
            return 0
        if value <= prev:
            self.restarts += 1
            return 0
        gap = value - prev - 1
        self.missed += gap
        return gap


class Subscriber:
    """SUB socket connected to ``endpoint`` and subscribed to each prefix in ``topics``.

    ``rcvhwm`` is in messages; ``limits`` bound each inbound message (:mod:`rtface.transport.guard`; default 8 MiB
    per part; a bigger one is dropped with its connection, which is then made anew: ``reconnects``). Counters:
    ``received`` (decoded messages), ``malformed`` (messages that raised),
    ``missed_frames`` (frame messages dropped between publisher and this subscriber, from ``seq`` gaps),
    ``index_gaps`` (frame indices skipped per source, dropped upstream or in transport).
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, topics: Sequence[str] = (TOPIC_PREFIX,), *,
                 rcvhwm: int = 1000, context: zmq.Context | None = None, limits: Limits = STREAM_LIMITS) -> None:
        if isinstance(topics, str):
            topics = (topics,)
        self.endpoint = endpoint
        self.topics = tuple(topics)
        self.limits = limits

        def setup(sock: zmq.Socket) -> None:
            sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
            for t in self.topics:
                sock.setsockopt(zmq.SUBSCRIBE, t.encode("utf-8"))

        # a bigger message than limits allows drops the connection; GuardedConnection makes a new one
        self._conn: GuardedConnection | None = GuardedConnection(zmq.SUB, endpoint, limits, setup, context=context,
                                                                 where="subscriber endpoint")
        self.received = 0
        self.malformed = 0
        self._seq_gaps = GapCounter()
        self._index_gaps = GapCounter()

    @property
    def missed_frames(self) -> int:
        """Frame messages lost in transport (gaps in the publisher's frame ``seq``)."""
        return self._seq_gaps.missed

    @property
    def index_gaps(self) -> int:
        """Frame indices skipped per source (upstream drops plus transport drops)."""
        return self._index_gaps.missed

    def recv(self, timeout_s: float | None = None) -> tuple[str, dict] | None:
        """Next (topic, payload), or None after ``timeout_s`` seconds (None = wait forever).

        A malformed message is consumed, counted in ``malformed`` and raised as TransportError; the subscriber
        stays usable.
        """
        conn = self._conn
        if conn is None:
            raise TransportError(f"subscriber {self.endpoint} is closed")
        timeout_ms = None if timeout_s is None else max(0, int(timeout_s * 1000))
        if not conn.poll(timeout_ms):
            return None
        try:
            frames = conn.recv_parts()
            if frames is None:
                return None
            topic, msg = decode_multipart(frames, self.limits)
        except TransportError:
            self.malformed += 1
            raise
        self.received += 1
        if topic == TOPIC_FRAME or topic.startswith(TOPIC_FRAME + "@"):  # "@<camera>": merged by rtface hub
            self._seq_gaps.update(topic, msg["seq"])  # per camera: the hub keeps each engine's seq
            index = msg.get("frame")
            if isinstance(index, int):
                self._index_gaps.update((msg.get("camera", ""), msg.get("source", "")), index)
        return topic, msg

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        """Yield messages forever (until the subscriber is closed); malformed ones are counted and skipped."""
        while self._conn is not None:
            try:
                item = self.recv(None)
            except TransportError:
                if self._conn is None:
                    return
                continue
            if item is not None:
                yield item

    def close(self) -> None:
        """Close with linger=0. Safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    @property
    def reconnects(self) -> int:
        """Times the connection was made anew (after an oversize message, or the publisher went away)."""
        return self._conn.reconnects if self._conn is not None else 0

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Subscriber({self.endpoint!r}, topics={self.topics}, received={self.received}, "
                f"missed_frames={self.missed_frames})")
