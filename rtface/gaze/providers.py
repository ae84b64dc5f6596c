"""Gaze providers: where the ``gaze_aoi`` stage gets the samples belonging to the frame it is processing.

A provider has ``samples_for_frame(meta) -> FrameSamples`` and ``close()``; the stage calls both from the runner's
processing thread. Two implementations:
- ``RecordingGazeProvider``: a recorded ``GazeTrack`` aligned once to its scene frames (``assign_frames``); frame
  ``meta.index`` gets the samples whose nearest scene frame is that index. Assumes the frame source IS the
  recording's scene video. Gaze is rescaled when the frame size differs from the recording's scene size.
- ``LiveGazeProvider``: drains a ``GazeQueue`` filled by a receiver thread; every sample that arrived since the
  previous frame belongs to the current frame. Timestamps are moved to the frame clock with ``offset_ns``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtface.gaze.align import assign_frames
from rtface.gaze.live import GazeQueue
from rtface.gaze.track import GazeTrack
from rtface.records import FrameMeta


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
    """Serve live samples from a queue; ``receiver`` (optional) is stopped on ``close``."""

    def __init__(self, queue: GazeQueue, offset_ns: int = 0, receiver: object | None = None,
                 scene_size: tuple[int, int] | None = None) -> None:
        self.queue = queue
        self.offset_ns = int(offset_ns)
        self.receiver = receiver
        self.scene_size = scene_size  # size of the gaze pixel space, to rescale to the frame (None = same)

    def samples_for_frame(self, meta: FrameMeta) -> FrameSamples:
        t, x, y, c = self.queue.drain()
        if self.scene_size and meta.width and meta.height:
            x = x * (meta.width / self.scene_size[0])
            y = y * (meta.height / self.scene_size[1])
        return FrameSamples(t + self.offset_ns, x, y, c)

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.stop()  # type: ignore[attr-defined]
            self.receiver = None
