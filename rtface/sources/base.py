"""Frame source contract shared by video files, cameras, streams and image sequences.

Thread ownership: a Source is owned by one thread (the grabber): ``open``/``read``/``close``/``stats`` run there.
``interrupt()`` is the only method another thread may call: it wakes any sleep inside ``read`` (realtime pacing,
reconnect back-off) so the owner can stop promptly.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import Any

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


class Source(ABC):
    """A producer of BGR uint8 HxWx3 frames with the source's own presentation time.

    Attributes: ``name`` (human readable, e.g. ``camera:0``), ``live`` (True when frames arrive in real time and may
    be dropped), ``fps`` (frames per second or None if unknown), ``frame_count`` (None if unknown/unbounded).
    """

    name: str
    live: bool
    fps: float | None
    frame_count: int | None

    def __init__(self, name: str, *, live: bool, fps: float | None = None, frame_count: int | None = None) -> None:
        self.name = name
        self.live = live
        self.stills = False  # frames are independent still images (no state should carry across them)
        self.fps = fps
        self.frame_count = frame_count
        self.frames_read = 0
        self.first_index = 0  # frame index of the first frame delivered (a chunk of a video starts later)
        self._opened = False
        self._closed = False
        self._interrupt = threading.Event()

    # ---------------------------------------------------------------- contract
    @abstractmethod
    def open(self) -> None:
        """Acquire the device/file; raises SourceError naming the source when that is impossible."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray, int] | None:
        """Next frame as (BGR uint8 HxWx3 image, t_media_ns); None at end of stream (or after ``interrupt``)."""

    def _release(self) -> None:
        """Free the underlying resources (called once by ``close``)."""

    def stats(self) -> dict[str, int | float]:
        """Counters of this source (ints/floats only). Subclasses extend the dict."""
        return {"frames_read": self.frames_read}

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Release the source; safe to call twice and before ``open``."""
        if self._closed:
            return
        self._closed = True
        self._release()

    def interrupt(self) -> None:
        """Wake any sleep inside ``read`` (safe from any thread); ``read`` then returns None."""
        self._interrupt.set()

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; returns True if interrupted."""
        if seconds <= 0:
            return self._interrupt.is_set()
        return self._interrupt.wait(seconds)

    def __enter__(self) -> "Source":
        self.open()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, live={self.live}, fps={self.fps}, frames={self.frame_count})"


class Pacer:
    """Paces frames at their media time against the monotonic clock, as a camera would deliver them.

    The first frame defines the origin; frame with media time ``t`` is released at ``origin + (t - t0)``.
    Late frames are released immediately (counted in ``late``); pacing never drops frames.
    """

    def __init__(self, sleep: Any) -> None:
        self._sleep = sleep  # callable(seconds) -> interrupted: bool
        self._origin_ns: int | None = None
        self._media0_ns = 0
        self.late = 0

    def wait(self, t_media_ns: int) -> bool:
        """Block until the frame's due time; returns True if interrupted."""
        now = time.monotonic_ns()
        if self._origin_ns is None:
            self._origin_ns, self._media0_ns = now, t_media_ns
            return False
        due = self._origin_ns + (t_media_ns - self._media0_ns)
        if due <= now:
            self.late += 1
            return False
        return bool(self._sleep((due - now) / 1e9))


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Return ``frame`` as 3-channel uint8 BGR (gray and BGRA frames are converted; BGR passes through)."""
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / 65535.0) if frame.dtype == np.uint16 else \
            np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.shape[2] == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    return frame
