"""Grabber thread: real video into the ring, error propagation, prompt stop (backpressure, pacing, back-off)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rtface.errors import SourceError
from rtface.grabber import Grabber
from rtface.ring import FrameRing
from rtface.sources import CameraSource, VideoFileSource
from rtface.sources.base import Source

SAMPLE = Path(__file__).resolve().parents[2] / "rtface" / "data" / "samples" / "single_face.mp4"


class FailingSource(Source):
    """Delivers ``n`` frames then raises (pure logic stand-in for a source that breaks mid-way)."""

    def __init__(self, n: int) -> None:
        super().__init__("failing", live=False)
        self.n = n
        self.closed_calls = 0

    def open(self) -> None:
        pass

    def read(self):
        if self.frames_read == self.n:
            raise SourceError("failing: device error at frame 3")
        self.frames_read += 1
        return np.zeros((2, 2, 3), np.uint8), self.frames_read

    def _release(self) -> None:
        self.closed_calls += 1


def test_video_through_backpressure_ring_in_order():
    ring = FrameRing(4, overwrite=False)
    g = Grabber(VideoFileSource(SAMPLE), ring).start()
    frames = []
    while (f := ring.read_next(timeout_s=10)) is not None:
        frames.append(f)
    assert g.join(10)
    assert ring.closed and ring.error is None
    assert [f.index for f in frames] == list(range(72)) == [f.seq for f in frames]
    assert all(b.t_media_ns > a.t_media_ns for a, b in zip(frames, frames[1:]))
    assert all(b.t_capture_ns >= a.t_capture_ns for a, b in zip(frames, frames[1:]))
    s = g.stats()
    assert s["frames_read"] == s["grab_frames"] == 72 and s["grab_alive"] == 0
    assert ring.stats()["skipped"] == 0 and ring.stats()["overruns"] == 0


def test_open_error_reaches_reader(tmp_path):
    ring = FrameRing(2, overwrite=False)
    g = Grabber(VideoFileSource(tmp_path / "absent.mp4"), ring).start()
    assert ring.read_next(timeout_s=10) is None
    assert g.join(10)
    assert isinstance(ring.error, SourceError) and "absent.mp4" in str(ring.error)
    assert g.error is ring.error


def test_read_error_after_frames_keeps_frames_and_closes_source():
    src = FailingSource(3)
    ring = FrameRing(8, overwrite=False)
    g = Grabber(src, ring).start()
    got = []
    while (f := ring.read_next(timeout_s=10)) is not None:
        got.append(f.index)
    g.join(10)
    assert got == [0, 1, 2]
    assert isinstance(ring.error, SourceError) and "frame 3" in str(ring.error)
    assert src.closed_calls == 1


def test_stop_while_blocked_by_backpressure():
    src = VideoFileSource(SAMPLE)
    ring = FrameRing(2, overwrite=False)
    g = Grabber(src, ring).start()
    assert ring.read_next(timeout_s=10).index == 0  # then nobody reads: the grabber blocks on a full ring
    g.stop(timeout_s=10)
    assert not g.alive and ring.closed and ring.error is None
    assert src._cap is None  # source released by its owner thread
    g.stop()  # twice is fine
    assert g.join(1)


def test_stop_realtime_looping_video_on_overwrite_ring():
    src = VideoFileSource(SAMPLE, realtime=True, loop=True)
    ring = FrameRing(4, overwrite=True)
    g = Grabber(src, ring).start()
    seqs = [ring.read_latest(timeout_s=10).seq for _ in range(3)]
    assert seqs == sorted(set(seqs))
    g.stop(timeout_s=10)
    assert not g.alive and ring.closed


def test_stop_interrupts_camera_backoff():
    class Dead:
        def isOpened(self):  # noqa: N802
            return True

        def read(self):
            return False, None

        def release(self):
            pass

    opens = []

    def opener(target):
        opens.append(target)
        return Dead() if len(opens) == 1 else None

    cam = CameraSource(0, opener=opener, backoff_initial_s=60.0)  # would sleep a minute if not interrupted
    ring = FrameRing(2, overwrite=True)
    g = Grabber(cam, ring).start()
    g.stop(timeout_s=10)
    assert not g.alive
    assert ring.closed and ring.read_next(timeout_s=0) is None


def test_join_and_stop_before_start():
    ring = FrameRing(2, overwrite=False)
    src = VideoFileSource(SAMPLE)
    g = Grabber(src, ring)
    assert g.join(0)
    g.stop()
    assert ring.closed and not g.alive
