"""Live gaze receivers feeding a thread-safe bounded ``GazeQueue``.

Threads: each receiver owns one background thread (started by ``start``, joined by ``stop``) that owns its ZeroMQ
sockets; the processing thread only calls ``GazeQueue.drain``. When the queue is full the OLDEST sample is dropped
and counted (``dropped``), so a stalled consumer never blocks the network thread.

- ``PupilRemoteReceiver``: Pupil Capture / Pupil Core network API. REQ to Pupil Remote ("SUB_PORT" -> port of the
  IPC backbone), SUB to topics starting with "gaze."; payload = msgpack dict with ``norm_pos`` (origin bottom-left),
  ``timestamp`` (Pupil time, s) and ``confidence``. Pixels: x = nx * w, y = (1 - ny) * h; without a scene size
  the queue holds normalised top-left coordinates (nx, 1 - ny) and the consumer scales them to its frame.
  t_ns = Pupil time in ns. Clock mapping (``sync_clock``): before subscribing, the receiver sends Pupil Remote "t"
  ``sync_rounds`` times; each reply is Pupil time at some instant between our send and receive, so
  offset = (t_send + t_recv) / 2 - pupil_t (local clock ``time.time_ns``, the clock of ``FrameMeta.t_capture_ns``)
  with an error of at most half the round trip. The round with the shortest round trip wins; ``clock_offset_ns``
  and ``clock_rtt_ns`` keep it. Then UTC ns of a datum = pupil_ns + clock_offset_ns.
- ``PixelGazeReceiver``: plain topic "rtface.v1.gaze_in", payload msgpack {"x_px", "y_px", "t_ns"[, "confidence"]};
  ``t_ns`` should be this machine's UTC ns (``time.time_ns()``, the frame capture clock) for time matching.
- ``LSLGazeReceiver`` / ``NeonRealtimeReceiver``: optional packages (pylsl, pupil-labs-realtime-api) imported on
  ``start``; a clear ConfigError names the missing package.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np

from rtface.errors import ConfigError, TransportError
from rtface.transport.guard import GuardedConnection, Limits, harden_socket, recv_parts, unpack_map
from rtface.transport.guard import bind as guard_bind

# inbound gaze messages (Pupil gaze datums with their pupil base data are a few KB)
GAZE_LIMITS = Limits(max_message_bytes=1024 * 1024, max_parts=4, max_str_len=64 * 1024, max_bin_len=1024 * 1024,
                     max_array_len=4096, max_map_len=1024)

PIXEL_GAZE_TOPIC = "rtface.v1.gaze_in"


class GazeQueue:
    """Bounded FIFO of (t_ns, x_px, y_px, confidence); any thread may put, one consumer drains."""

    def __init__(self, maxlen: int = 4096) -> None:
        self._buf: deque[tuple[int, float, float, float]] = deque()
        self._maxlen = int(maxlen)
        self.maxlen = self._maxlen
        self._lock = threading.Lock()
        self.dropped = 0  # samples discarded because the queue was full
        self.received = 0

    def put(self, t_ns: int, x_px: float, y_px: float, confidence: float = 1.0) -> None:
        with self._lock:
            if len(self._buf) >= self._maxlen:
                self._buf.popleft()
                self.dropped += 1
            self._buf.append((int(t_ns), float(x_px), float(y_px), float(confidence)))
            self.received += 1

    def drain(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Remove and return everything queued: (t_ns int64, x_px, y_px, confidence float64) arrays."""
        with self._lock:
            items = list(self._buf)
            self._buf.clear()
        if not items:
            e = np.zeros(0)
            return np.zeros(0, dtype=np.int64), e, e.copy(), e.copy()
        arr = np.array(items, dtype=np.float64)
        t = np.array([it[0] for it in items], dtype=np.int64)
        return t, arr[:, 1], arr[:, 2], arr[:, 3]

    def __len__(self) -> int:
        with self._lock:
            return len(self._buf)


class _ThreadedReceiver:
    """Common start/stop for receivers whose thread runs ``_run`` until ``_stop`` is set."""

    def __init__(self, queue: GazeQueue | None) -> None:
        self.queue = queue if queue is not None else GazeQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None  # last exception of the receiver thread, if it died
        self.connected = threading.Event()  # set by the thread once it is receiving

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._guarded, name=type(self).__name__, daemon=True)
        self._thread.start()

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported to the owner via .error
            self.error = exc

    def _run(self) -> None:
        raise NotImplementedError

    def wait_connected(self, timeout_s: float) -> bool:
        """Wait until the thread is receiving (True), or it died / ``timeout_s`` passed (False; see ``error``)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.connected.wait(0.02):
                return True
            if self.error is not None or (self._thread is not None and not self._thread.is_alive()):
                return self.connected.is_set()
        return self.connected.is_set()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop and join the thread (safe to call twice)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


class PupilRemoteReceiver(_ThreadedReceiver):
    """Subscribe to Pupil Capture gaze via Pupil Remote (default port 50020)."""

    def __init__(self, scene_size: tuple[int, int] | None, host: str = "127.0.0.1", port: int = 50020,
                 topic: str = "gaze.", queue: GazeQueue | None = None, min_confidence: float = 0.0,
                 sync_clock: bool = False, timeout_ms: int = 2000, sync_rounds: int = 5) -> None:
        super().__init__(queue)
        self.scene_size = scene_size  # None: queue normalised top-left coordinates
        self.host, self.port, self.topic = host, int(port), topic
        self.min_confidence = min_confidence
        self.sync_clock = sync_clock
        self.sync_rounds = max(int(sync_rounds), 1)
        self.timeout_ms = timeout_ms
        self.clock_offset_ns = 0  # Pupil time -> UTC ns (only set with sync_clock)
        self.clock_rtt_ns = -1  # round trip of the "t" request used (-1 = not synced)
        self.bad_messages = 0  # received messages that were not gaze datums (skipped)

    def _request(self, ctx: Any, msg: str) -> str:
        import zmq

        req = ctx.socket(zmq.REQ)
        harden_socket(req, GAZE_LIMITS)
        req.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        req.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        try:
            req.connect(f"tcp://{self.host}:{self.port}")
            req.send_string(msg)
            return req.recv().decode("utf-8", "replace")[:256]
        except zmq.ZMQError as exc:
            raise TransportError(f"Pupil Remote tcp://{self.host}:{self.port}: no reply to '{msg}' ({exc})") from None
        finally:
            req.close()

    def sync(self) -> int:
        """Measure the Pupil -> local UTC offset (module doc); returns and stores ``clock_offset_ns``."""
        import zmq

        ctx = zmq.Context.instance()
        best: tuple[int, int] | None = None  # (rtt, offset)
        for _ in range(self.sync_rounds):
            t0 = time.time_ns()
            reply = self._request(ctx, "t")
            t1 = time.time_ns()
            try:
                pupil_ns = int(round(float(reply) * 1e9))
            except ValueError:
                raise TransportError(f"Pupil Remote tcp://{self.host}:{self.port}: reply {reply!r} to 't' is not "
                                     "a time in seconds") from None
            cand = (t1 - t0, (t0 + t1) // 2 - pupil_ns)
            if best is None or cand[0] < best[0]:
                best = cand
        assert best is not None
        self.clock_rtt_ns, self.clock_offset_ns = best
        return self.clock_offset_ns

    def _run(self) -> None:
        import zmq

        ctx = zmq.Context.instance()
        sub_port = self._request(ctx, "SUB_PORT").strip()
        if not sub_port.isdigit() or not 0 < int(sub_port) < 65536:
            raise TransportError(f"Pupil Remote tcp://{self.host}:{self.port}: reply {sub_port[:40]!r} to "
                                 f"'SUB_PORT' is not a port number")
        if self.sync_clock:
            self.sync()
        sub = GuardedConnection(zmq.SUB, f"tcp://{self.host}:{sub_port}", GAZE_LIMITS,
                                lambda s: s.setsockopt_string(zmq.SUBSCRIBE, self.topic), context=ctx,
                                where="Pupil Capture SUB endpoint")
        self.connected.set()
        w, h = self.scene_size if self.scene_size else (1.0, 1.0)
        try:
            while not self._stop.is_set():
                if not sub.poll(50):
                    continue
                try:  # any bytes: skip what is not a gaze datum, never crash the thread
                    frames = sub.recv_parts()
                    if frames is None or len(frames) < 2:
                        continue
                    d = unpack_map(frames[1], GAZE_LIMITS)
                    nx, ny = (float(v) for v in d["norm_pos"])
                    conf = float(d.get("confidence", 1.0))
                    t_ns = int(round(float(d["timestamp"]) * 1e9))
                except Exception:  # noqa: BLE001 - MalformedMessage, KeyError, TypeError, ValueError (nan) ...
                    self.bad_messages += 1
                    continue
                if conf < self.min_confidence:
                    continue
                self.queue.put(t_ns, nx * w, (1.0 - ny) * h, conf)
        finally:
            sub.close()


class PixelGazeReceiver(_ThreadedReceiver):
    """SUB to ``endpoint`` for topic ``rtface.v1.gaze_in`` (payload msgpack {x_px, y_px, t_ns})."""

    def __init__(self, endpoint: str, queue: GazeQueue | None = None, topic: str = PIXEL_GAZE_TOPIC,
                 bind: bool = False) -> None:
        super().__init__(queue)
        self.endpoint, self.topic, self.bind = endpoint, topic, bind
        self.bad_messages = 0

    def _run(self) -> None:
        import zmq

        def subscribe(s: zmq.Socket) -> None:
            s.setsockopt_string(zmq.SUBSCRIBE, self.topic)

        if self.bind:  # the bound side: a too big message only drops that peer's connection
            sub = zmq.Context.instance().socket(zmq.SUB)
            harden_socket(sub, GAZE_LIMITS)
            subscribe(sub)
            try:
                guard_bind(sub, self.endpoint, "gaze input", authenticated=False)
            except TransportError as exc:
                sub.close()
                raise TransportError(f"gaze input {self.endpoint}: {exc}") from None
            poll, recv = sub.poll, lambda: recv_parts(sub, GAZE_LIMITS)
        else:
            try:
                sub = GuardedConnection(zmq.SUB, self.endpoint, GAZE_LIMITS, subscribe, where="gaze input endpoint")
            except TransportError as exc:
                raise TransportError(f"gaze input {self.endpoint}: {exc}") from None
            poll, recv = sub.poll, sub.recv_parts
        self.connected.set()
        try:
            while not self._stop.is_set():
                if not poll(50):
                    continue
                try:  # any bytes: count what is not a gaze sample, never crash the thread
                    frames = recv()
                    if frames is None:
                        continue
                    d = unpack_map(frames[-1], GAZE_LIMITS)
                    sample = (int(d["t_ns"]), float(d["x_px"]), float(d["y_px"]), float(d.get("confidence", 1.0)))
                except Exception:  # noqa: BLE001 - MalformedMessage, KeyError, TypeError, ValueError, OverflowError
                    self.bad_messages += 1
                    continue
                self.queue.put(*sample)
        finally:
            sub.close()


def _require(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"gaze_aoi: live source needs the optional package '{package}' "
                          f"(pip install {package}); it is not installed") from None


class LSLGazeReceiver(_ThreadedReceiver):
    """Pull pixel gaze from an LSL stream (channels x_px, y_px by index); needs ``pylsl``."""

    def __init__(self, stream_name: str, queue: GazeQueue | None = None, x_channel: int = 0,
                 y_channel: int = 1) -> None:
        super().__init__(queue)
        self.stream_name, self.x_channel, self.y_channel = stream_name, x_channel, y_channel

    def start(self) -> None:
        self._pylsl = _require("pylsl", "pylsl")
        super().start()

    def _run(self) -> None:
        pylsl = self._pylsl
        streams = pylsl.resolve_byprop("name", self.stream_name, timeout=2.0)
        if not streams:
            raise TransportError(f"LSL stream '{self.stream_name}' not found")
        inlet = pylsl.StreamInlet(streams[0])
        inlet.open_stream(timeout=5.0)
        n_ch = streams[0].channel_count()
        if max(self.x_channel, self.y_channel) >= n_ch:
            raise ConfigError(f"LSL stream '{self.stream_name}' has {n_ch} channels; x/y channels "
                              f"{self.x_channel}/{self.y_channel} do not exist")
        # sender clock -> this machine's LSL clock (time_correction, re-estimated every 5 s) -> UTC frame clock
        lsl_to_utc_ns = time.time_ns() - int(pylsl.local_clock() * 1e9)
        correction = inlet.time_correction(timeout=2.0)
        next_correction = time.monotonic() + 5.0
        self.connected.set()
        while not self._stop.is_set():
            sample, ts = inlet.pull_sample(timeout=0.05)
            if sample is not None:
                t_ns = int((ts + correction) * 1e9) + lsl_to_utc_ns
                self.queue.put(t_ns, sample[self.x_channel], sample[self.y_channel])
            if time.monotonic() >= next_correction:
                correction = inlet.time_correction(timeout=0.5)
                next_correction = time.monotonic() + 5.0
        inlet.close_stream()


class NeonRealtimeReceiver(_ThreadedReceiver):
    """Neon Companion real-time API (scene pixels, UTC ns); needs ``pupil-labs-realtime-api``."""

    def __init__(self, host: str, port: int = 8080, queue: GazeQueue | None = None) -> None:
        super().__init__(queue)
        self.host, self.port = host, int(port)

    def start(self) -> None:
        self._api = _require("pupil_labs.realtime_api.simple", "pupil-labs-realtime-api")
        super().start()

    def _run(self) -> None:
        device = self._api.Device(address=self.host, port=self.port)
        self.connected.set()
        try:
            while not self._stop.is_set():
                g = device.receive_gaze_datum(timeout_seconds=0.05)
                if g is not None:
                    self.queue.put(int(round(g.timestamp_unix_seconds * 1e9)), g.x, g.y)
        finally:
            device.close()
