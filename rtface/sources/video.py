"""Video file source (cv2.VideoCapture / FFmpeg backend). Owned by the grabber thread.

Media time: ``CAP_PROP_POS_MSEC`` after each read (the PTS of the frame just decoded), clamped to be >= 0 and
strictly increasing; when the container gives nothing usable the time is ``index / fps``. With ``loop=True`` the
file restarts at its end and media time continues from the last frame plus one frame period.

Damaged files: a read failure is retried up to ``max_decode_retries`` times (FFmpeg skips a corrupt packet per
failed read and often recovers); frames lost that way are counted in ``decode_errors``. When the stream ends
clearly before ``CAP_PROP_FRAME_COUNT`` (more than ``max(3, 5 %)`` frames missing: containers often overstate the
count by a few frames) ``premature_end`` is 1 and the cut counts as one more decode error. Frames already read
are never lost.

Chunks (batch jobs, :mod:`rtface.batch`): ``start_frame`` / ``stop_frame`` deliver only frames
``start_frame <= i < stop_frame`` (0 = to the end): the capture skips the frames before ``start_frame`` with
``grab()`` (no seek: OpenCV's ``CAP_PROP_POS_FRAMES`` seek converts the index to a time with the average frame rate
and lands on the wrong frame in variable-frame-rate files, e.g. 7 frames late at frame 80 of the test clip
``face_noface.mov``); frame indices and media times stay those of the whole file.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np

from rtface.errors import SourceError
from rtface.sources.base import Pacer, Source, to_bgr

DEFAULT_FPS = 30.0


class VideoFileSource(Source):
    """Frames of a video file, decoded in order; ``realtime=True`` paces them at their media time (then live).

    ``fps`` is used only when the container has no valid frame rate (default then 30).
    """

    def __init__(self, path: str | Path, *, realtime: bool = False, loop: bool = False, fps: float | None = None,
                 max_decode_retries: int = 32, start_frame: int = 0, stop_frame: int = 0) -> None:
        if start_frame < 0 or stop_frame < 0 or (stop_frame and stop_frame <= start_frame):
            raise SourceError(f"video source {path}: invalid frame range {start_frame}..{stop_frame}")
        self.path = Path(path)
        self.start_frame, self.stop_frame = int(start_frame), int(stop_frame)
        super().__init__(self.path.name, live=realtime, fps=fps)
        self.first_index = self.start_frame
        self.realtime = realtime
        self.loop = loop and not (start_frame or stop_frame)
        self._fps_fallback = fps
        self.max_decode_retries = max_decode_retries
        self._cap: cv2.VideoCapture | None = None
        self._pending: np.ndarray | None = None  # first frame, peeked by open()
        self._pending_t: int = 0
        self._pacer = Pacer(self._sleep)
        self._file_index = 0  # frames read in the current pass over the file
        self._lost_in_pass = 0  # frames lost to decode errors in the current pass
        self._last_t_ns = -1  # last media time returned (over all loops)
        self._offset_ns = 0  # media-time offset of the current loop pass
        self._period_ns = 0
        self._eof = False
        # counters
        self.frames_expected = 0
        self.decode_errors = 0
        self.premature_end = 0
        self.loops = 0
        self.read_ns = 0  # total ns spent in cv2 read

    # ---------------------------------------------------------------- open
    def open(self) -> None:
        if self._cap is not None:
            return
        if not self.path.exists():
            raise SourceError(f"video source: no such file: {self.path}")
        if not self.path.is_file():
            raise SourceError(f"video source: not a regular file: {self.path}")
        self._open_capture()
        if self._pending is None:
            self._release()
            raise SourceError(f"video source: {self.path} opened but yielded no frame (not a decodable video?)")
        self._opened = True

    def _open_capture(self) -> None:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"video source: OpenCV/FFmpeg cannot open {self.path} (corrupt or unsupported format)")
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or not math.isfinite(fps) or fps <= 0 or fps > 1000:
            fps = self._fps_fallback or DEFAULT_FPS
        self.fps = float(fps)
        self._period_ns = int(round(1e9 / self.fps))
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        total = int(n) if n and math.isfinite(n) and n > 0 else 0
        if total and self.start_frame >= total:
            cap.release()
            self._cap = None
            raise SourceError(f"video source: {self.path} has {total} frames; start_frame {self.start_frame} is past "
                              f"its end")
        end = min(self.stop_frame, total) if self.stop_frame and total else (self.stop_frame or total)
        self.frames_expected = max(end - self.start_frame, 0) if end else 0
        self.frame_count = None if self.loop else (self.frames_expected or None)
        self._file_index = 0
        if self.start_frame:
            skipped = 0
            while skipped < self.start_frame and cap.grab():  # exact, unlike a POS_FRAMES seek (see above)
                skipped += 1
            self._file_index = skipped
        self._lost_in_pass = 0
        self._pending = None
        got = self._decode()
        if got is not None:
            self._pending, self._pending_t = got

    # ---------------------------------------------------------------- read
    def read(self) -> tuple[np.ndarray, int] | None:
        if self._cap is None or self.interrupted:
            return None
        if self._pending is not None:
            item = (self._pending, self._pending_t)
            self._pending = None
        else:
            at_stop = self.stop_frame and self._file_index >= self.stop_frame
            item = None if self._eof or at_stop else self._decode()
            if item is None and self.loop and self.frames_read > 0 and not self.interrupted:
                self.loops += 1
                self._offset_ns = self._last_t_ns + self._period_ns
                self._cap.release()
                self._eof = False
                self._open_capture()
                if self._pending is not None:
                    item = (self._pending, self._pending_t)
                    self._pending = None
            if item is None:
                return None
        image, t_ns = item
        self.frames_read += 1
        if self.realtime and self._pacer.wait(t_ns):
            return None
        return image, t_ns

    def _decode(self) -> tuple[np.ndarray, int] | None:
        """Decode one frame, retrying over damaged packets; None at end of file."""
        assert self._cap is not None
        failures = 0
        while True:
            t0 = time.perf_counter_ns()
            ok, frame = self._cap.read()
            self.read_ns += time.perf_counter_ns() - t0
            if ok and frame is not None:
                self.decode_errors += failures
                self._lost_in_pass += failures
                return to_bgr(frame), self._media_time()
            pos = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES) or 0)
            if self.frames_expected and pos >= self.start_frame + self.frames_expected:
                break  # normal end
            failures += 1
            if failures > self.max_decode_retries or self.interrupted:
                break
        self._eof = True
        done = self._file_index - self.start_frame
        missing = self.frames_expected - done - self._lost_in_pass if self.frames_expected else 0
        if missing > max(3, self.frames_expected // 20):
            self.premature_end = 1
            self.decode_errors += 1
        return None

    def _media_time(self) -> int:
        assert self._cap is not None
        msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        t_file = int(round(msec * 1e6)) if msec and math.isfinite(msec) else self._file_index * self._period_ns
        if self._file_index == 0:
            t_file = max(t_file, 0)
        t = self._offset_ns + max(t_file, 0)
        if t <= self._last_t_ns:  # missing or non-monotonic PTS: fall back to one period after the last
            t = self._last_t_ns + self._period_ns
        self._last_t_ns = t
        self._file_index += 1
        return t

    # ---------------------------------------------------------------- misc
    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._pending = None

    def stats(self) -> dict[str, int | float]:
        s = super().stats()
        s.update(frames_expected=self.frames_expected, decode_errors=self.decode_errors,
                 premature_end=self.premature_end, loops=self.loops, decode_ms=self.read_ns / 1e6,
                 late_frames=self._pacer.late)
        return s
