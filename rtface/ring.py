"""Preallocated frame ring between one writer (the grabber thread) and one reader (the processing thread).

Protocol (seqlock style, ordered by one ``threading.Condition`` so it does not depend on the GIL):

- Sequence numbers are monotonic Python ints (never wrap); ``slot = seq & mask``.
- Writer, for sequence ``n``: under the lock mark the slot invalid (``slot_seq = -1``); copy the image into the
  slot's buffer *outside* the lock; under the lock store the metadata, publish ``slot_seq = n``, advance ``head``
  and notify.
- Reader, for sequence ``t``: under the lock check ``slot_seq == t`` and take the buffer reference and metadata;
  copy the image *outside* the lock; under the lock check ``slot_seq == t`` again. If the writer touched the slot
  meanwhile (only possible in overwrite mode) the copy is torn: it is discarded and counted in ``torn``/``skipped``.

Modes: ``overwrite=True`` (live input: the writer never blocks, overwrites the oldest slot and counts ``overruns``)
and ``overwrite=False`` (files: the writer blocks while the ring is full, nothing is lost).

Thread ownership: ``write`` is called only by the writer thread, ``read_next``/``read_latest`` only by the reader
thread; ``close``, ``closed``, ``error``, ``stats`` and ``len`` are safe from any thread.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class RingFrame:
    """One frame taken out of the ring. ``image`` is a private copy owned by the caller."""

    seq: int  # ring sequence number (0-based, monotonic over the ring's life)
    index: int  # 0-based frame index within the source (as given by the writer)
    t_capture_ns: int  # UTC ns when the grabber received the frame
    t_media_ns: int  # source presentation time, ns
    image: np.ndarray  # HxWx3 BGR uint8 (whatever the writer stored)


class FrameRing:
    """Fixed-capacity frame ring; capacity must be a power of two.

    Slot buffers are allocated at the first frame's shape/dtype; a frame of another shape reallocates only its slot.
    """

    def __init__(self, capacity: int = 8, *, overwrite: bool) -> None:
        if not isinstance(capacity, int) or capacity < 1 or capacity & (capacity - 1):
            raise ValueError(f"FrameRing capacity must be a power of two >= 1, got {capacity!r}")
        self.capacity = capacity
        self.overwrite = overwrite
        self._mask = capacity - 1
        self._cond = threading.Condition(threading.Lock())
        # per-slot state (guarded by _cond except the image bytes, which the seqlock protects)
        self._slot_seq: list[int] = [-1] * capacity
        self._slot_index: list[int] = [0] * capacity
        self._slot_tcap: list[int] = [0] * capacity
        self._slot_tmedia: list[int] = [0] * capacity
        self._images: list[np.ndarray | None] = [None] * capacity
        self._head = 0  # next sequence the writer will publish (= frames written)
        self._tail = 0  # next sequence the reader wants
        self._closed = False
        self._error: BaseException | None = None
        # counters
        self._n_read = 0
        self._overruns = 0
        self._skipped = 0
        self._torn = 0
        self._reallocs = 0
        self._writer_waits = 0
        self._writer_wait_ns = 0

    # ------------------------------------------------------------------ writer side
    def write(self, image: np.ndarray, index: int, t_capture_ns: int, t_media_ns: int,
              timeout_s: float | None = None) -> bool:
        """Copy ``image`` into the next slot and publish it (writer thread only).

        Returns True when stored; False when the ring is closed, or (backpressure mode) when ``timeout_s`` elapsed
        while the ring stayed full. ``timeout_s=None`` waits until there is room or the ring is closed.
        """
        with self._cond:
            if self._closed:
                return False
            if not self.overwrite and self._head - self._tail >= self.capacity:
                self._writer_waits += 1
                t0 = time.monotonic_ns()
                ok = self._cond.wait_for(
                    lambda: self._closed or self._head - self._tail < self.capacity, timeout_s)
                self._writer_wait_ns += time.monotonic_ns() - t0
                if not ok or self._closed:
                    return False
            seq = self._head
            slot = seq & self._mask
            if self.overwrite and seq - self._tail >= self.capacity:
                self._overruns += 1  # the frame in this slot was never consumed
            self._slot_seq[slot] = -1  # invalidate before touching the bytes
            buf = self._images[slot]
        if buf is None or buf.shape != image.shape or buf.dtype != image.dtype:
            if buf is not None:
                self._reallocs += 1
            buf = np.empty_like(image, order="C")
            if self._head == 0:  # first frame: preallocate every slot at this shape
                for i in range(self.capacity):
                    if i != slot:
                        self._images[i] = np.empty_like(buf)
        np.copyto(buf, image)
        with self._cond:
            self._images[slot] = buf
            self._slot_index[slot] = index
            self._slot_tcap[slot] = t_capture_ns
            self._slot_tmedia[slot] = t_media_ns
            self._slot_seq[slot] = seq
            self._head = seq + 1
            self._cond.notify_all()
        return True

    def close(self, error: BaseException | None = None) -> None:
        """End of stream (``error=None``) or source failure. Safe from any thread; the first error is kept."""
        with self._cond:
            if error is not None and self._error is None:
                self._error = error
            self._closed = True
            self._cond.notify_all()

    # ------------------------------------------------------------------ reader side
    def read_next(self, timeout_s: float | None = None, out: np.ndarray | None = None) -> RingFrame | None:
        """Next frame in order (reader thread only); None on timeout, or once closed and drained.

        In overwrite mode, frames the writer overwrote before they were read are jumped over and counted in
        ``skipped``. ``out``: a caller-owned array to copy the image into when its shape and dtype match (saves an
        allocation per frame); otherwise a new array is returned.
        """
        return self._take(latest=False, timeout_s=timeout_s, out=out)

    def read_latest(self, timeout_s: float | None = None, out: np.ndarray | None = None) -> RingFrame | None:
        """Newest published frame; older unread frames are dropped and counted in ``skipped`` (reader only)."""
        return self._take(latest=True, timeout_s=timeout_s, out=out)

    def _take(self, *, latest: bool, timeout_s: float | None, out: np.ndarray | None = None) -> RingFrame | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            with self._cond:
                while self._tail >= self._head:
                    if self._closed:
                        return None
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return None
                    self._cond.wait(remaining)
                head = self._head
                lowest = head - 1 if latest else head - self.capacity  # oldest seq possibly still intact
                if self._tail < lowest:
                    self._skipped += lowest - self._tail
                    self._tail = lowest
                seq = self._tail
                slot = seq & self._mask
                if self._slot_seq[slot] != seq:  # writer is overwriting it right now
                    self._skipped += 1
                    self._tail = seq + 1
                    self._cond.notify_all()
                    continue
                buf = self._images[slot]
                meta = (self._slot_index[slot], self._slot_tcap[slot], self._slot_tmedia[slot])
            assert buf is not None
            if out is not None and out.shape == buf.shape and out.dtype == buf.dtype:
                np.copyto(out, buf)
                image = out
            else:
                image = buf.copy()
            with self._cond:
                intact = self._slot_seq[slot] == seq
                self._tail = seq + 1
                if intact:
                    self._n_read += 1
                else:
                    self._torn += 1
                    self._skipped += 1
                self._cond.notify_all()  # a backpressured writer may proceed
            if intact:
                return RingFrame(seq, meta[0], meta[1], meta[2], image)

    # ------------------------------------------------------------------ state
    @property
    def closed(self) -> bool:
        """True once the writer (or anyone) closed the ring; frames may still be unread."""
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """The error the ring was closed with (a source failure), else None."""
        return self._error

    @property
    def written(self) -> int:
        return self._head

    @property
    def read(self) -> int:
        return self._n_read

    @property
    def overruns(self) -> int:
        return self._overruns

    @property
    def skipped(self) -> int:
        return self._skipped

    def __len__(self) -> int:
        """Number of published frames not yet consumed or skipped (in overwrite mode may exceed what is intact)."""
        with self._cond:
            return self._head - self._tail

    def stats(self) -> dict[str, int | float]:
        """Counters: written, read, overruns, skipped (incl. torn), torn, unread, reallocs, writer_waits, ..."""
        with self._cond:
            return {
                "capacity": self.capacity,
                "written": self._head,
                "read": self._n_read,
                "overruns": self._overruns,
                "skipped": self._skipped,
                "torn": self._torn,
                "unread": self._head - self._tail,
                "reallocs": self._reallocs,
                "writer_waits": self._writer_waits,
                "writer_wait_ns": self._writer_wait_ns,
                "closed": int(self._closed),
            }
