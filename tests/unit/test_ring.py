"""FrameRing semantics: capacity, order, backpressure, overwrite, read_latest, shape change, close, seqlock."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from rtface.errors import SourceError
from rtface.ring import FrameRing, RingFrame


def _img(value: int, shape: tuple[int, ...] = (6, 8, 3)) -> np.ndarray:
    return np.full(shape, value % 256, np.uint8)


def _wait_until(predicate, limit_s: float = 5.0) -> None:
    """Poll a condition (not a timing assertion: fails only if it never becomes true)."""
    end = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < end, "condition never became true"
        time.sleep(0.001)


@pytest.mark.parametrize("bad", [0, 3, 6, 12, -4])
def test_capacity_must_be_power_of_two(bad):
    with pytest.raises(ValueError, match="power of two"):
        FrameRing(bad, overwrite=False)


@pytest.mark.parametrize("good", [1, 2, 4, 64])
def test_capacity_power_of_two_accepted(good):
    assert FrameRing(good, overwrite=True).capacity == good


def test_order_metadata_and_private_copy():
    ring = FrameRing(4, overwrite=False)
    src = _img(7)
    assert ring.write(src, index=10, t_capture_ns=111, t_media_ns=222)
    src[:] = 99  # the ring copied the pixels at write time
    f = ring.read_next(timeout_s=1)
    assert isinstance(f, RingFrame)
    assert (f.seq, f.index, f.t_capture_ns, f.t_media_ns) == (0, 10, 111, 222)
    assert (f.image == 7).all()
    assert ring.write(_img(8), 11, 112, 223)
    f.image[:] = 0  # the caller owns its copy; the ring is not affected
    g = ring.read_next(timeout_s=1)
    assert g.seq == 1 and (g.image == 8).all()
    assert ring.stats()["written"] == 2 and ring.stats()["read"] == 2


def test_read_timeout_returns_none_while_open():
    ring = FrameRing(2, overwrite=True)
    assert ring.read_next(timeout_s=0.01) is None
    assert ring.read_latest(timeout_s=0.0) is None
    assert not ring.closed


def test_backpressure_blocks_then_proceeds():
    ring = FrameRing(2, overwrite=False)
    assert ring.write(_img(0), 0, 0, 0) and ring.write(_img(1), 1, 0, 1)
    assert ring.write(_img(9), 9, 0, 9, timeout_s=0.01) is False  # full: times out, nothing stored
    assert ring.written == 2
    done = threading.Event()

    def writer() -> None:
        ring.write(_img(2), 2, 0, 2)  # blocks until the reader frees a slot
        done.set()

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    _wait_until(lambda: ring.stats()["writer_waits"] == 2)  # the writer is waiting on a full ring
    assert not done.is_set() and ring.written == 2
    assert ring.read_next(timeout_s=1).seq == 0
    t.join(5)
    assert done.is_set()
    assert [ring.read_next(timeout_s=1).index for _ in range(2)] == [1, 2]
    s = ring.stats()
    assert s["overruns"] == 0 and s["skipped"] == 0 and s["read"] == 3


def test_backpressured_writer_released_by_close():
    ring = FrameRing(1, overwrite=False)
    assert ring.write(_img(0), 0, 0, 0)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(ring.write(_img(1), 1, 0, 1)), daemon=True)
    t.start()
    _wait_until(lambda: ring.stats()["writer_waits"] == 1)
    ring.close()  # e.g. the reader side shuts down
    t.join(5)
    assert result == [False]


def test_overwrite_counts_overruns_and_read_next_jumps():
    ring = FrameRing(4, overwrite=True)
    for i in range(10):
        assert ring.write(_img(i), i, 0, i)  # never blocks
    assert ring.overruns == 6
    seqs = []
    while (f := ring.read_next(timeout_s=0)) is not None:
        assert (f.image == f.seq).all()
        seqs.append(f.seq)
    assert seqs == [6, 7, 8, 9]
    s = ring.stats()
    assert s["skipped"] == 6 and s["read"] == 4
    assert s["written"] == s["read"] + s["skipped"] + s["unread"]


def test_read_latest_skips_older_unread():
    ring = FrameRing(8, overwrite=True)
    for i in range(5):
        ring.write(_img(i), i, 0, i)
    f = ring.read_latest(timeout_s=1)
    assert f.seq == 4 and (f.image == 4).all()
    assert ring.skipped == 4 and len(ring) == 0
    ring.write(_img(5), 5, 0, 5)
    assert ring.read_latest(timeout_s=1).seq == 5
    assert ring.skipped == 4


def test_shape_change_reallocates_only_that_slot():
    ring = FrameRing(2, overwrite=False)
    shapes = [(36, 64, 3), (50, 20, 3), (36, 64, 3), (8, 8, 3)]
    for i, shp in enumerate(shapes):
        ring.write(_img(i, shp), i, 0, i)
        f = ring.read_next(timeout_s=1)
        assert f.image.shape == shp and (f.image == i).all()
    # slot 0 keeps its first-frame buffer (36x64 twice); only slot 1 was reallocated, twice
    assert ring.stats()["reallocs"] == 2
    assert [b.shape for b in ring._images] == [(36, 64, 3), (8, 8, 3)]


def test_close_with_error_is_seen_after_drain():
    ring = FrameRing(4, overwrite=False)
    ring.write(_img(1), 0, 0, 0)
    err = SourceError("camera 3: gone")
    ring.close(err)
    assert ring.closed and ring.error is err
    assert ring.write(_img(2), 1, 0, 1) is False
    assert ring.read_next(timeout_s=1).index == 0  # unread frames are still delivered
    assert ring.read_next(timeout_s=1) is None
    assert ring.read_latest() is None  # closed and drained: no wait even without timeout
    ring.close(SourceError("later"))
    assert ring.error is err  # the first error is kept


def test_close_wakes_blocked_reader():
    ring = FrameRing(4, overwrite=True)
    out: list = []
    t = threading.Thread(target=lambda: out.append(ring.read_next()), daemon=True)
    t.start()
    ring.close()
    t.join(5)
    assert out == [None] and ring.error is None


class _LappingBuffer:
    """Slot buffer whose copy() lets the writer lap the reader in the middle of the copy (a torn read)."""

    shape = None  # forces the writer to allocate a fresh buffer for the slot
    dtype = None

    def __init__(self, ring: FrameRing, data: np.ndarray) -> None:
        self.ring, self.data = ring, data

    def copy(self) -> np.ndarray:
        torn = self.data.copy()
        self.ring.write(_img(1), 1, 0, 1)  # writer overwrites this very slot while we "copy"
        return torn


def test_seqlock_discards_torn_copy():
    ring = FrameRing(1, overwrite=True)
    ring.write(_img(0), 0, 0, 0)
    ring._images[0] = _LappingBuffer(ring, ring._images[0])
    f = ring.read_next(timeout_s=1)
    assert f.seq == 1 and (f.image == 1).all()  # the torn copy of seq 0 was never returned
    s = ring.stats()
    assert s["torn"] == 1 and s["skipped"] == 1 and s["read"] == 1
    assert s["written"] == s["read"] + s["skipped"] + s["unread"]


def test_read_into_caller_buffer_reuses_it_and_falls_back_on_shape_change():
    ring = FrameRing(4, overwrite=False)
    a = np.full((4, 6, 3), 7, np.uint8)
    ring.write(a, 0, 1, 1)
    ring.write(np.full((5, 6, 3), 9, np.uint8), 1, 2, 2)
    buf = np.zeros((4, 6, 3), np.uint8)
    f0 = ring.read_next(0.1, out=buf)
    assert f0.image is buf and (buf == 7).all()
    f1 = ring.read_next(0.1, out=buf)
    assert f1.image is not buf and f1.image.shape == (5, 6, 3) and (f1.image == 9).all()


def test_live_status_line_counts_each_lost_frame_once():
    """A live engine's status line: frames overwritten before the reader got to them are overruns and then skips
    of the same frames; `dropped` counts each lost frame once (real ring, the CLI's formatter)."""
    from types import SimpleNamespace

    from rtface.cli import _status_line
    from rtface.graph.stats import RunStats

    ring = FrameRing(8, overwrite=True)
    for i in range(100):  # nobody reads while the engine loads its models
        assert ring.write(_img(i), i, i, i)
    got = ring.read_latest(timeout_s=1.0)
    assert got is not None and got.index == 99
    st = ring.stats()
    assert st["overruns"] == 92 and st["skipped"] == 99  # the same 92 frames in both counters
    line = _status_line(SimpleNamespace(stats=RunStats(), live=True, ring=ring), None)
    assert line.endswith("dropped 99")
