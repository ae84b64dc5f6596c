"""Gaze providers: where the ``gaze_aoi`` stage gets the samples belonging to the frame it is processing.

A provider has ``samples_for_frame(meta) -> FrameSamples`` and ``close()``; the stage calls both from the runner's
processing thread. Two implementations:
- ``RecordingGazeProvider``: a recorded ``GazeTrack`` aligned once to its scene frames (``assign_frames``); frame
  ``meta.index`` gets the samples whose nearest scene frame is that index. Assumes the frame source IS the
  recording's scene video. Gaze is rescaled when the frame size differs from the recording's scene size.
- ``LiveGazeProvider``: drains a ``GazeQueue`` filled by a receiver thread and matches samples to frames by time
  (nearest capture time) or by arrival; timestamps are moved to the frame clock (see the class doc).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from rtface.gaze.align import assign_frames
from rtface.gaze.live import GazeQueue
from rtface.gaze.track import GazeTrack
from rtface.records import FrameMeta

log = logging.getLogger("rtface.gaze")
MAX_LEAD_NS = 1_000_000_000  # live samples stamped later than now + this: the clock mapping is wrong


@dataclass
class FrameSamples:
    t_ns: np.ndarray  # (n,) int64, on the frame clock
    x_px: np.ndarray  # (n,) float64, pixels of the processed frame
    y_px: np.ndarray
    confidence: np.ndarray

    @staticmethod
    def empty() -> "FrameSamples":
        z = np.zeros(0)
        return FrameSamples(np.zeros(0, dtype=np.int64), z, z.copy(), z.copy())


class RecordingGazeProvider:
    """Serve a recorded track frame by frame (see module doc)."""

    def __init__(self, track: GazeTrack, offset_ns: int = 0, align_mode: str = "nearest") -> None:
        self.track = track
        self.offset_ns = int(offset_ns)
        self.frame_idx = assign_frames(track.t_ns, track.frame_t_ns, offset_ns, align_mode)
        order = np.argsort(self.frame_idx, kind="stable")
        self._order = order
        self._sorted_frames = self.frame_idx[order]

    def sample_indices(self, frame_index: int) -> np.ndarray:
        """Indices into the track of the samples aligned to ``frame_index``."""
        lo = np.searchsorted(self._sorted_frames, frame_index, side="left")
        hi = np.searchsorted(self._sorted_frames, frame_index, side="right")
        return self._order[lo:hi]

    def samples_for_frame(self, meta: FrameMeta) -> FrameSamples:
        idx = self.sample_indices(meta.index)
        tr = self.track
        sx = meta.width / tr.width if meta.width and tr.width else 1.0
        sy = meta.height / tr.height if meta.height and tr.height else 1.0
        return FrameSamples(tr.t_ns[idx] + self.offset_ns, tr.x_px[idx] * sx, tr.y_px[idx] * sy,
                            tr.confidence[idx])

    def close(self) -> None:
        """Nothing to release (safe to call twice)."""


class LiveGazeProvider:
    """Serve live samples from a queue; ``receiver`` (optional) is stopped on ``close``.

    Clock: a sample's frame-clock time is t_ns + ``offset_ns`` + ``receiver.clock_offset_ns`` (0 when the receiver
    has none, e.g. pixel_zmq whose t_ns is already local UTC). The frame clock is ``FrameMeta.t_capture_ns``.

    ``match="time"`` (default): samples wait in a pending buffer; the frame captured at T takes every pending
    sample up to T + window (window = ``window_ns``, or half the median of the last 32 capture intervals), i.e.
    each sample goes to the nearest frame when every frame is processed; later samples wait for the next frame.
    Taken samples older than T - ``max_lag_ns`` (their frame was skipped, or they arrived late) are dropped and
    counted in ``stale``. A sample stamped more than ``MAX_LEAD_NS`` after the local clock's "now" cannot be real:
    the clocks disagree, so such samples are served at once (arrival order) and counted in ``clock_mismatch``, with
    one logged warning.
    ``match="arrival"``: every sample that arrived since the previous frame belongs to the current frame.
    ``normalised``: queued coordinates are in [0, 1] (top-left origin) and are scaled to the frame's size.
    """

    def __init__(self, queue: GazeQueue, offset_ns: int = 0, receiver: object | None = None,
                 scene_size: tuple[int, int] | None = None, normalised: bool = False, match: str = "time",
                 window_ns: int = 0, max_lag_ns: int = 200_000_000) -> None:
        self.queue = queue
        self.offset_ns = int(offset_ns)
        self.receiver = receiver
        self.scene_size = scene_size  # size of the gaze pixel space, to rescale to the frame (None = same)
        self.normalised = normalised
        self.match = match
        self.window_ns = int(window_ns)
        self.max_lag_ns = int(max_lag_ns)
        self._pend_t = np.zeros(0, dtype=np.int64)  # frame-clock times of pending samples
        self._pend_xyc = np.zeros((0, 3))
        self._frame_t: list[int] = []
        self.served = 0
        self.stale = 0
        self.clock_mismatch = 0
        self._warned = False
        self._clock_offset_ns = 0
        self.clock = time.time_ns  # the frame clock's "now" (FrameMeta.t_capture_ns is time.time_ns at grab)

    def clock_offset_ns(self) -> int:
        """Total gaze-clock -> frame-clock offset in use (ns)."""
        rx = self.receiver
        if rx is not None:
            self._clock_offset_ns = int(getattr(rx, "clock_offset_ns", 0))
        return self.offset_ns + self._clock_offset_ns

    def _window(self, t_frame: int) -> int:
        if self.window_ns > 0:
            return self.window_ns
        ft = self._frame_t
        if not ft or t_frame > ft[-1]:
            ft.append(int(t_frame))
            del ft[:-33]
        if len(ft) < 2:
            return 16_666_667  # half of 1/30 s until intervals are known
        return int(np.median(np.diff(ft))) // 2

    def samples_for_frame(self, meta: FrameMeta) -> FrameSamples:
        t, x, y, c = self.queue.drain()
        t = t + self.clock_offset_ns()
        if self.match == "time":
            t, x, y, c = self._match(meta.t_capture_ns, t, x, y, c)
        if self.normalised:
            x, y = x * meta.width, y * meta.height
        elif self.scene_size and meta.width and meta.height:
            x = x * (meta.width / self.scene_size[0])
            y = y * (meta.height / self.scene_size[1])
        self.served += int(t.size)
        return FrameSamples(t, x, y, c)

    def _match(self, t_frame: int, t: np.ndarray, x: np.ndarray, y: np.ndarray, c: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        pt = np.concatenate([self._pend_t, t])
        pv = np.concatenate([self._pend_xyc, np.column_stack([x, y, c])]) if t.size else self._pend_xyc
        order = np.argsort(pt, kind="stable")
        pt, pv = pt[order], pv[order]
        future = pt > max(self.clock(), t_frame) + MAX_LEAD_NS
        if future.any():
            self.clock_mismatch += int(future.sum())
            if not self._warned:
                self._warned = True
                log.warning("live gaze: %d samples are stamped more than %.0f s in the future of the frame clock; "
                            "check the clock offset (serving them in arrival order)", int(future.sum()),
                            MAX_LEAD_NS / 1e9)
        take = (pt <= t_frame + self._window(t_frame)) | future
        keep = ~take
        self._pend_t, self._pend_xyc = pt[keep], pv[keep]
        if self._pend_t.size > self.queue.maxlen:  # bounded like the queue: drop the oldest
            self._pend_t, self._pend_xyc = self._pend_t[-self.queue.maxlen:], self._pend_xyc[-self.queue.maxlen:]
        tt, vv = pt[take], pv[take]
        fresh = (tt >= t_frame - self.max_lag_ns) | future[take]
        self.stale += int((~fresh).sum())
        tt, vv = tt[fresh], vv[fresh]
        return tt, vv[:, 0], vv[:, 1], vv[:, 2]

    def stats(self) -> dict[str, int]:
        """Counters: received / dropped by the queue, served to frames, stale, clock_mismatch, clock offset."""
        rx = self.receiver
        return {"received": self.queue.received, "queue_dropped": self.queue.dropped, "served": self.served,
                "stale": self.stale, "clock_mismatch": self.clock_mismatch, "pending": int(self._pend_t.size),
                "clock_offset_ns": self.offset_ns + self._clock_offset_ns,
                "clock_rtt_ns": int(getattr(rx, "clock_rtt_ns", -1)) if rx is not None else -1}

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()  # type: ignore[attr-defined]
            self.receiver = None
