"""Hub: one XPUB endpoint merging the streams of many engines (one engine process per camera).

``Hub({"cam1": "tcp://127.0.0.1:5555", "cam2": ...}, out="tcp://127.0.0.1:5570")`` keeps one XSUB socket per
camera connected to that engine's publisher and one XPUB socket bound for dashboards and recorders, which
subscribe once and get every camera.

- Camera id in the topic and the message: a message an engine publishes on ``T`` (``rtface.v1.frame``) leaves the
  hub on ``T@<camera>`` (``rtface.v1.frame@cam1``) with ``"camera": "cam1"`` added; the header fields ``seq`` and
  ``t_publish_ns`` are the engine's (so a subscriber counts losses per camera, and latency from capture stays
  end to end). A subscription to ``rtface.v1.frame`` gets every camera's frames, ``rtface.v1.frame@cam1`` one
  camera's, ``rtface.v1.`` everything.
- Subscriptions are forwarded (a real XSUB/XPUB proxy): a camera's engine sends only the topics someone
  downstream subscribed to. ``T@cam`` subscribes ``T`` at cameras whose name starts with ``cam``; ``T`` subscribes
  ``T`` at every camera; reference-counted per camera, restored when a connection is made anew.
- Every socket survives any bytes: inbound messages are size-limited (ZMQ_MAXMSGSIZE, 8 MiB), strictly decoded
  (:mod:`rtface.transport.guard` limits, msgpack only), and a malformed one is counted per camera and dropped,
  never forwarded; subscription notices from downstream are limited to 4 KiB.
- A slow subscriber never slows the hub: XPUB drops at its high-water mark (``sndhwm`` messages) like an
  engine's publisher. An engine that stops or restarts is reconnected by ZeroMQ; the hub goes on.
- Heartbeat: every ``stats_interval_s`` the hub publishes ``rtface.v1.hub`` with per-camera counters
  (received, forwarded, malformed, last message age).

Alerts: the hub forwards the engines' ``rtface.v1.alert.*`` messages like every other topic (best effort, as
pub/sub is). The acknowledged alert channel (per-listener delivery with acks and a journal) is a separate ROUTER
socket per engine and is not relayed: a listener connects to every engine's channel at once
(``rtface alerts listen --camera NAME=ENDPOINT ...``), so each camera keeps its own journal, acknowledgements and
redelivery (README, Many cameras). A relay with the same guarantees would need a durable listener per camera
upstream and an alert server with its own journal downstream, acknowledging upstream only once journaled.

Thread ownership: the thread that calls :meth:`run` / :meth:`pump` owns every socket.
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import msgpack
import zmq

from rtface.errors import TransportError
from rtface.transport.guard import (STREAM_LIMITS, GuardedConnection, Limits, MalformedMessage, bind, harden_socket,
                                    recv_parts, unpack)
from rtface.transport.wire import TOPIC_PREFIX, check_header, encode, stamp, topic_bytes

log = logging.getLogger("rtface.transport")
TOPIC_HUB = "rtface.v1.hub"
CAMERA_SEP = "@"
DEFAULT_HUB_ENDPOINT = "tcp://127.0.0.1:5570"
_CAMERA_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SUBSCRIPTION_LIMITS = Limits(max_message_bytes=4096, max_parts=1, max_str_len=0, max_bin_len=0, max_array_len=0,
                             max_map_len=0)


def check_camera_name(name: str) -> str:
    if not isinstance(name, str) or not _CAMERA_RE.match(name):
        raise TransportError(f"camera name {name!r} is invalid: use 1-64 letters, digits, '_' or '-'")
    return name


def hub_topic(topic: str, camera: str) -> str:
    """The topic a message of ``camera`` published on ``topic`` has after the hub."""
    return f"{topic}{CAMERA_SEP}{camera}"


class _Camera:
    def __init__(self, name: str, endpoint: str, ctx: zmq.Context, limits: Limits, rcvhwm: int) -> None:
        self.name, self.endpoint = name, endpoint
        self.subs: dict[bytes, int] = {}  # upstream topic prefix -> downstream subscriptions needing it

        def setup(sock: zmq.Socket) -> None:  # also after a reconnect: the new socket gets every subscription
            sock.setsockopt(zmq.RCVHWM, int(rcvhwm))
            for t in self.subs:
                sock.send(b"\x01" + t)

        self.conn = GuardedConnection(zmq.XSUB, endpoint, limits, setup, context=ctx,
                                      where=f"hub camera {name} endpoint")
        self.received = self.forwarded = self.malformed = 0
        self.last_rx = 0.0  # monotonic s of the last message (0 = none yet)

    def subscribe(self, topic: bytes, on: bool) -> None:
        n = self.subs.get(topic, 0) + (1 if on else -1)
        if n > 0:
            self.subs[topic] = n
        else:
            self.subs.pop(topic, None)
        if (on and n == 1) or (not on and n <= 0):
            sock = self.conn.sock
            if sock is not None:
                sock.send((b"\x01" if on else b"\x00") + topic)


class Hub:
    """See the module doc. ``cameras``: name -> engine publisher endpoint (connect)."""

    def __init__(self, cameras: dict[str, str], out: str = DEFAULT_HUB_ENDPOINT, *, sndhwm: int = 1000,
                 rcvhwm: int = 1000, stats_interval_s: float = 1.0, limits: Limits = STREAM_LIMITS,
                 context: zmq.Context | None = None) -> None:
        if not cameras:
            raise TransportError("hub: give at least one camera (name=endpoint)")
        self._ctx = context or zmq.Context.instance()
        self.limits = limits
        self.cameras: dict[str, _Camera] = {}
        try:
            for name, ep in cameras.items():
                self.cameras[check_camera_name(name)] = _Camera(name, ep, self._ctx, limits, rcvhwm)
            xpub = self._ctx.socket(zmq.XPUB)
            harden_socket(xpub, SUBSCRIPTION_LIMITS)
            xpub.setsockopt(zmq.SNDHWM, int(sndhwm))
            try:
                self.endpoint = bind(xpub, out, "hub", authenticated=False, hint="choose another --out")
            except BaseException:
                xpub.close(linger=0)
                raise
        except BaseException:
            for c in self.cameras.values():
                c.conn.close()
            raise
        self._xpub: zmq.Socket | None = xpub
        self._down: dict[bytes, list[tuple[_Camera, bytes]]] = {}  # downstream topic -> (camera, upstream topic)
        self.stats_interval_s = stats_interval_s
        self._next_stats = time.monotonic() + stats_interval_s
        self._stats_seq = 0
        self.bad_subscriptions = 0
        self._poller: zmq.Poller | None = None
        self._poll_key: tuple = ()

    # ------------------------------------------------------------------ subscriptions (downstream -> upstream)
    def _targets(self, topic: bytes) -> list[tuple[_Camera, bytes]]:
        sep = CAMERA_SEP.encode()
        if sep in topic:
            base, _, cam = topic.partition(sep)
            try:
                cam_s = cam.decode("ascii")
            except UnicodeDecodeError:
                return []
            return [(c, base) for n, c in self.cameras.items() if n.startswith(cam_s)]
        return [(c, topic) for c in self.cameras.values()]

    def _on_subscription(self, msg: bytes) -> None:
        if not msg or msg[:1] not in (b"\x00", b"\x01"):
            self.bad_subscriptions += 1
            return
        on, topic = msg[:1] == b"\x01", bytes(msg[1:])
        if on:
            if topic in self._down:
                return
            targets = self._down[topic] = self._targets(topic)
        else:
            targets = self._down.pop(topic, [])
        for cam, up in targets:
            cam.subscribe(up, on)

    # ------------------------------------------------------------------ messages (upstream -> downstream)
    def _relay(self, cam: _Camera, parts: list[bytes]) -> None:
        cam.received += 1
        cam.last_rx = time.monotonic()
        try:
            if len(parts) != 2:
                raise MalformedMessage(f"expected 2 parts [topic, payload], got {len(parts)}")
            topic = bytes(parts[0]).decode("utf-8")
            obj = unpack(parts[1], self.limits)  # strict: limits, no ext types; arrays stay as their maps
            own = check_header(obj, f"hub camera {cam.name}")
            if own != topic or CAMERA_SEP in topic or not topic.startswith(TOPIC_PREFIX):
                raise MalformedMessage(f"topic {topic!r} / payload topic {own!r} not relayed")
        except (TransportError, UnicodeDecodeError) as exc:
            cam.malformed += 1
            if cam.malformed <= 3:
                log.warning("hub: camera %s: dropped a malformed message: %s", cam.name, str(exc)[:200])
            return
        out_topic = hub_topic(topic, cam.name)
        obj["topic"] = out_topic
        obj["camera"] = cam.name
        data = msgpack.packb(obj, use_bin_type=True)
        try:
            self._xpub.send_multipart((out_topic.encode("utf-8"), data), flags=zmq.NOBLOCK, copy=len(data) < 65536)
            cam.forwarded += 1
        except zmq.Again:
            pass

    def _publish_stats(self) -> None:
        now = time.monotonic()
        cams = {n: {"endpoint": c.endpoint, "received": c.received, "forwarded": c.forwarded,
                    "malformed": c.malformed, "reconnects": c.conn.reconnects,
                    "last_message_age_s": round(now - c.last_rx, 3) if c.last_rx else None}
                for n, c in self.cameras.items()}
        payload = stamp(TOPIC_HUB, {"cameras": cams, "subscriptions": len(self._down)}, self._stats_seq,
                        time.time_ns())
        self._stats_seq += 1
        try:
            self._xpub.send_multipart((topic_bytes(TOPIC_HUB), encode(payload)), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass

    # ------------------------------------------------------------------ loop
    def _poller_now(self) -> zmq.Poller:
        key = tuple(c.conn.reconnects for c in self.cameras.values())
        if self._poller is None or key != self._poll_key:
            p = zmq.Poller()
            p.register(self._xpub, zmq.POLLIN)
            for c in self.cameras.values():
                for s in c.conn.pollables():
                    p.register(s, zmq.POLLIN)
            self._poller, self._poll_key = p, key
        return self._poller

    def pump(self, timeout_s: float = 0.1, max_messages: int = 1000) -> int:
        """Wait up to ``timeout_s`` for traffic, relay what is waiting (at most ``max_messages`` per camera);
        returns how many messages were relayed."""
        if self._xpub is None:
            raise TransportError("hub is closed")
        ready = dict(self._poller_now().poll(int(timeout_s * 1000)))
        n = 0
        if self._xpub in ready:
            while True:
                try:
                    parts = recv_parts(self._xpub, SUBSCRIPTION_LIMITS)
                except MalformedMessage:
                    self.bad_subscriptions += 1
                    continue
                if parts is None:
                    break
                self._on_subscription(parts[0])
        for cam in self.cameras.values():
            if not any(s in ready for s in cam.conn.pollables()):
                continue
            for _ in range(max_messages):
                if not cam.conn.poll(0):
                    break
                try:
                    parts = cam.conn.recv_parts()
                except MalformedMessage:
                    cam.received += 1
                    cam.malformed += 1
                    continue
                if parts is None:
                    break
                self._relay(cam, parts)
                n += 1
        if time.monotonic() >= self._next_stats:
            self._next_stats = time.monotonic() + self.stats_interval_s
            self._publish_stats()
        return n

    def run(self, should_stop: Callable[[], bool] = lambda: False, duration_s: float = 0.0) -> None:
        """Relay until ``should_stop()`` or ``duration_s`` seconds (0 = forever)."""
        end = time.monotonic() + duration_s if duration_s else None
        while not should_stop() and (end is None or time.monotonic() < end):
            self.pump(0.1)

    def close(self) -> None:
        for c in self.cameras.values():
            c.conn.close()
        if self._xpub is not None:
            self._xpub.close(linger=0)
            self._xpub = None

    def __enter__(self) -> "Hub":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
