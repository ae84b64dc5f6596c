"""Live capture with reconnection: the shared logic of CameraSource and StreamSource. Owned by the grabber thread.

A failed read (device unplugged, stream dropped) never raises: the capture is released and reopened with
exponential back-off (``backoff_initial_s`` doubling up to ``backoff_max_s``) until it delivers frames again,
``interrupt()`` is called, or ``give_up_after_s`` (optional) elapses (then ``read`` returns None = end of stream).
Counters: ``reconnects`` (successful reopenings), ``failed_reads``, ``gap_ns`` (total time without frames).

The opener is injectable (``opener(target) -> capture-like`` with ``isOpened/read/release``) so the reconnection
logic can be tested without a device. Media time is ns since the source was opened (monotonic clock).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import numpy as np

from rtface.errors import SourceError
from rtface.sources.base import Source, to_bgr


class CaptureLike(Protocol):
    """The subset of cv2.VideoCapture the live sources use."""

    def isOpened(self) -> bool: ...  # noqa: N802 (OpenCV naming)

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


Opener = Callable[[Any], CaptureLike]


class ReconnectingCaptureSource(Source):
    """Base of live capture sources; subclasses provide ``target``, ``name`` and a default opener."""

    def __init__(self, target: Any, name: str, *, opener: Opener, open_tries: int = 3,
                 backoff_initial_s: float = 0.1, backoff_max_s: float = 2.0, give_up_after_s: float | None = None,
                 sleep: Callable[[float], bool] | None = None, fps: float | None = None) -> None:
        super().__init__(name, live=True, fps=fps)
        if open_tries < 1:
            raise ValueError(f"{name}: open_tries must be >= 1, got {open_tries}")
        self.target = target
        self._opener = opener
        self.open_tries = open_tries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.give_up_after_s = give_up_after_s
        self._wait = sleep or self._sleep  # callable(seconds) -> interrupted
        self._cap: CaptureLike | None = None
        self._t_open_ns = 0
        self._gap_start_ns: int | None = None
        self._backoff_s = backoff_initial_s
        # counters
        self.reconnects = 0
        self.failed_reads = 0
        self.failed_opens = 0
        self.gap_ns = 0
        self.gave_up = 0

    # ---------------------------------------------------------------- open
    def _try_open(self) -> CaptureLike | None:
        try:
            cap = self._opener(self.target)
        except Exception:  # an opener may raise instead of returning a closed capture
            cap = None
        if cap is not None and cap.isOpened():
            return cap
        if cap is not None:
            cap.release()
        self.failed_opens += 1
        return None

    def _describe_open_failure(self) -> str:
        return f"{self.name}: cannot open after {self.open_tries} tries"

    def open(self) -> None:
        if self._cap is not None:
            return
        delay = self.backoff_initial_s
        for attempt in range(self.open_tries):
            if attempt:
                if self._wait(delay):
                    raise SourceError(f"{self.name}: open interrupted after {attempt} tries")
                delay = min(delay * 2, self.backoff_max_s)
            cap = self._try_open()
            if cap is not None:
                self._cap = cap
                self._after_open(cap)
                self._t_open_ns = time.monotonic_ns()
                self._opened = True
                return
        raise SourceError(self._describe_open_failure())

    def _after_open(self, cap: CaptureLike) -> None:
        """Hook: read properties (fps) from a freshly opened capture."""

    # ---------------------------------------------------------------- read
    def read(self) -> tuple[np.ndarray, int] | None:
        if not self._opened:
            return None
        while not self.interrupted:
            if self._cap is not None:
                try:
                    ok, frame = self._cap.read()
                except Exception:  # some backends raise on a vanished device
                    ok, frame = False, None
                now = time.monotonic_ns()
                if ok and frame is not None:
                    if self._gap_start_ns is not None:
                        self.gap_ns += now - self._gap_start_ns
                        self._gap_start_ns = None
                    self._backoff_s = self.backoff_initial_s
                    self.frames_read += 1
                    return to_bgr(frame), now - self._t_open_ns
                self.failed_reads += 1
                if self._gap_start_ns is None:
                    self._gap_start_ns = now
                self._release_cap()
            # disconnected: wait, then try to reopen
            assert self._gap_start_ns is not None
            if self.give_up_after_s is not None and \
                    time.monotonic_ns() - self._gap_start_ns >= self.give_up_after_s * 1e9:
                self.gave_up = 1
                return None
            if self._wait(self._backoff_s):
                return None
            self._backoff_s = min(self._backoff_s * 2, self.backoff_max_s)
            cap = self._try_open()
            if cap is not None:
                self._cap = cap
                self._after_open(cap)
                self.reconnects += 1
        return None

    # ---------------------------------------------------------------- misc
    def _release_cap(self) -> None:
        if self._cap is not None:
            try:
                self._cap.release()
            finally:
                self._cap = None

    def _release(self) -> None:
        if self._gap_start_ns is not None:
            self.gap_ns += time.monotonic_ns() - self._gap_start_ns
            self._gap_start_ns = None
        self._release_cap()

    def stats(self) -> dict[str, int | float]:
        s = super().stats()
        gap = self.gap_ns
        if self._gap_start_ns is not None:
            gap += time.monotonic_ns() - self._gap_start_ns
        s.update(reconnects=self.reconnects, failed_reads=self.failed_reads, failed_opens=self.failed_opens,
                 gap_ns=gap, gave_up=self.gave_up)
        return s
