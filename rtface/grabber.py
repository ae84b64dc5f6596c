"""Grabber: a daemon thread that is the sole owner of a Source and the sole writer of a FrameRing.

Loop: ``source.read()`` -> stamp ``t_capture_ns = time.time_ns()`` right after it returns -> ``ring.write``.
At end of stream the ring is closed without error; an exception from ``open``/``read`` closes it with that error
(the reader sees ``ring.error``). ``stop()`` (from any thread) ends the loop promptly: it interrupts the source's
sleeps (pacing, reconnect back-off), abandons a write blocked by backpressure, closes the source, then the ring.
The frame index counts frames delivered by the source, 0-based, from ``source.first_index`` (a chunk of a video
keeps the frame numbers of the whole file).
"""
from __future__ import annotations

import threading
import time

from rtface.ring import FrameRing
from rtface.sources.base import Source

_WRITE_POLL_S = 0.05  # how often a backpressured write re-checks for stop()


class Grabber:
    """Reads ``source`` into ``ring`` on its own daemon thread. Call ``start()``, then ``stop()`` or ``join()``."""

    def __init__(self, source: Source, ring: FrameRing, *, name: str | None = None) -> None:
        self.source = source
        self.ring = ring
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name or f"grabber[{source.name}]", daemon=True)
        self._started = False
        self.error: BaseException | None = None
        # counters (written by the grabber thread only)
        self.frames = 0  # frames delivered by the source
        self.dropped_at_stop = 0  # frames read but not written because stop() came first
        self.read_ns = 0  # total ns inside source.read()
        self.write_ns = 0  # total ns inside ring.write() (includes backpressure waits)

    def start(self) -> "Grabber":
        """Start the thread (once); returns self."""
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self, timeout_s: float | None = 5.0) -> None:
        """Ask the thread to end, wait up to ``timeout_s`` for it. Safe from any thread, safe twice."""
        self._stop.set()
        self.source.interrupt()
        if self._started and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
        elif not self._started:
            self.source.close()
            self.ring.close()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the thread to end (end of stream or stop); returns True if it has ended."""
        if self._started and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self.source.open()
            while not self._stop.is_set():
                t0 = time.perf_counter_ns()
                item = self.source.read()
                t_capture_ns = time.time_ns()
                self.read_ns += time.perf_counter_ns() - t0
                if item is None:
                    break
                image, t_media_ns = item
                index = self.source.first_index + self.frames
                self.frames += 1
                t1 = time.perf_counter_ns()
                while not self.ring.write(image, index, t_capture_ns, t_media_ns, timeout_s=_WRITE_POLL_S):
                    if self.ring.closed or self._stop.is_set():
                        self.dropped_at_stop += 1
                        self._stop.set()
                        break
                self.write_ns += time.perf_counter_ns() - t1
        except BaseException as exc:  # noqa: BLE001 - handed to the reader through the ring
            error = exc
            self.error = exc
        finally:
            try:
                self.source.close()
            except Exception as exc:  # noqa: BLE001
                if error is None:
                    error = exc
                    self.error = exc
            self.ring.close(error)

    def stats(self) -> dict[str, int | float]:
        """Source counters merged with the grabber's (``grab_*`` keys). Values may lag while running."""
        s = dict(self.source.stats())
        n = max(self.frames, 1)
        s.update(grab_frames=self.frames, grab_dropped_at_stop=self.dropped_at_stop,
                 grab_read_ms_mean=self.read_ns / n / 1e6, grab_write_ms_mean=self.write_ns / n / 1e6,
                 grab_alive=int(self.alive))
        return s
