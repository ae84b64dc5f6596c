"""Two-thread stage pipeline: the leading stage (landmarks: MediaPipe) runs on its own thread while the processing
thread runs the later stages, publishes and writes the previous frame.

Why: MediaPipe's graph runs in C++ with the GIL released, so the later stages (NumPy/numba), the message encoding
and the file writer can use the second core meanwhile instead of running after it. Frames stay in order; the
engine's semantics (every frame of a file, the newest frame of a live source) do not change.

Threads:
- the *front* thread (``FrontThread``) owns the ring's read side and the leading stage(s); it reads a frame into
  one of ``depth + 2`` rotating image buffers, runs its stages and puts ``(frame, result)`` into a queue of
  ``depth`` items (blocking while it is full: backpressure for files; for live sources a newer frame replaces one
  still waiting, counted in ``stale``, so the processing thread always gets the newest);
- the processing thread (the one iterating ``Engine.results()``) takes items with :meth:`FrontThread.get` and owns
  every later stage, the publisher, the control server and the writer.
A buffer is reused only after ``depth + 1`` later frames were taken, i.e. once the processing thread finished with
it (stages must not keep the image anyway). For files the queue deepens on the first frame to as many frames as
``buffer_bytes`` of images hold (``[engine] pipeline_buffer_mb``, at most :data:`MAX_DEPTH`): MediaPipe keeps
working while the later stages finish loading (numba, the emotion model) or take a slow frame, instead of waiting
two frames ahead.

GIL hand-offs: a thread waiting for the GIL waits up to the interpreter's switch interval (5 ms by default) before
it asks the holder to let go, and MediaPipe takes the GIL back several times per frame (packet in, output
callback, result). While the pipeline runs, the switch interval is lowered to ``switch_interval_s`` and restored
when it stops (it is process-wide; measured in benchmarks/bench_process.py).
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rtface.ring import FrameRing, RingFrame

END = "end"  # the ring was closed and drained
ERROR = "error"  # the front thread failed; the payload is the exception
ITEM = "item"  # (RingFrame, FrameResult)

DEFAULT_SWITCH_INTERVAL_S = 0.0005
MAX_DEPTH = 64  # landmarked frames a file run may queue ahead of the processing thread


class FrontThread:
    """Ring reader + leading stages on a daemon thread (module doc). ``start()``, then ``get()`` until END."""

    def __init__(self, ring: FrameRing, *, live: bool, run_front: Callable[[RingFrame], Any], depth: int = 2,
                 switch_interval_s: float = DEFAULT_SWITCH_INTERVAL_S, buffer_bytes: int = 0) -> None:
        self.ring = ring
        self.live = live
        self._run_front = run_front  # builds the FrameResult and runs the leading stages (front thread)
        self.depth = max(1, int(depth))
        self._buffer_bytes = 0 if live else max(0, int(buffer_bytes))
        self._q: queue.Queue = queue.Queue(maxsize=self.depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rtface-front", daemon=True)
        self._bufs: list[np.ndarray | None] = [None] * (self.depth + 2)
        self._switch = float(switch_interval_s)
        self._saved_switch: float | None = None
        self.frames = 0  # frames the front thread finished (front thread writes)
        self.stale = 0  # live: landmarked frames replaced by a newer one before the processing thread took them
        self.wait_put_s = 0.0  # time the front thread waited for room in the queue (processing thread slower)

    def start(self) -> "FrontThread":
        if self._switch > 0:
            self._saved_switch = sys.getswitchinterval()
            sys.setswitchinterval(min(self._saved_switch, self._switch))
        self._thread.start()
        return self

    def get(self, timeout_s: float) -> tuple[str, Any] | None:
        """Next (kind, payload) from the front thread, or None after ``timeout_s`` (processing thread)."""
        try:
            return self._q.get(timeout=max(timeout_s, 0.0))
        except queue.Empty:
            return None

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the front thread (any thread except the front thread); safe twice. Restores the switch interval."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            while self._thread.is_alive():  # make room so a blocked put() sees the stop
                try:
                    self._q.get_nowait()
                except queue.Empty:
                    pass
                self._thread.join(0.05)
                timeout_s -= 0.05
                if timeout_s <= 0:
                    break
        if self._saved_switch is not None:
            sys.setswitchinterval(self._saved_switch)
            self._saved_switch = None

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ front thread
    def _put(self, item: tuple[str, Any]) -> bool:
        if self.live and item[0] == ITEM:  # newest wins: a frame waiting for the processing thread goes stale
            while not self._stop.is_set():
                try:
                    self._q.put_nowait(item)
                    return True
                except queue.Full:
                    try:
                        self._q.get_nowait()
                        self.stale += 1
                    except queue.Empty:
                        pass
            return False
        t0 = time.perf_counter()
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.05)
                self.wait_put_s += time.perf_counter() - t0
                return True
            except queue.Full:
                continue
        return False

    def _deepen(self, frame_bytes: int) -> None:
        """Files: let the queue hold as many landmarked frames as ``buffer_bytes`` of images allows (at most
        MAX_DEPTH), so the front thread keeps MediaPipe busy while the processing thread is still loading its stages
        or has a slow frame. Called on the first frame, before anything was queued (front thread)."""
        depth = min(MAX_DEPTH, max(self.depth, self._buffer_bytes // max(1, frame_bytes)))
        if depth > self.depth:
            self._bufs.extend([None] * (depth - self.depth))
            self.depth = depth
            self._q.maxsize = depth  # read by put() under the queue's lock; nothing was put yet

    def _loop(self) -> None:
        ring = self.ring
        read = ring.read_latest if self.live else ring.read_next
        k = 0
        try:
            while not self._stop.is_set():
                slot = k % len(self._bufs)
                frame = read(0.1, out=self._bufs[slot])
                if frame is None:
                    if ring.closed and ring.error is not None:
                        self._put((ERROR, ring.error))
                        return
                    if ring.closed and ring.stats().get("unread", 0) == 0:
                        self._put((END, None))
                        return
                    continue
                self._bufs[slot] = frame.image
                if k == 0 and self._buffer_bytes:
                    self._deepen(frame.image.nbytes)
                k += 1
                result = self._run_front(frame)
                self.frames += 1
                if not self._put((ITEM, (frame, result))):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the processing thread
            self._put((ERROR, exc))
