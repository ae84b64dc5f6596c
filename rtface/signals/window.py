"""Trailing time windows over irregular samples (media time, ns): mean, share of time above a level, counts.

Each sample holds for the time until the next one (capped at ``max_hold_ns``, so a long gap does not count as
time spent at the last value). Pure logic, owned by whoever feeds it (the processing thread).
"""
from __future__ import annotations

from collections import deque


class TrailingWindow:
    """Time-weighted statistics of the samples of the last ``window_ns`` ns.

    ``add(t_ns, value)`` with non-decreasing ``t_ns``; ``mean()`` and ``coverage_ns()`` describe the window that ends
    at the last sample. O(1) amortised per sample.
    """

    def __init__(self, window_ns: int, max_hold_ns: int = 200_000_000) -> None:
        if window_ns <= 0:
            raise ValueError(f"window must be > 0 ns, got {window_ns}")
        self.window_ns = int(window_ns)
        self.max_hold_ns = int(max_hold_ns)
        self._segs: deque[tuple[int, int, float]] = deque()  # (start_ns, duration_ns, value)
        self._last: tuple[int, float] | None = None
        self._sum = 0.0  # sum of duration * value
        self._dur = 0  # sum of durations, ns

    def add(self, t_ns: int, value: float) -> None:
        last = self._last
        if last is not None:
            t0, v0 = last
            if t_ns < t0:
                raise ValueError(f"samples must not go back in time ({t_ns} < {t0} ns)")
            d = min(t_ns - t0, self.max_hold_ns)
            if d > 0:
                self._segs.append((t0, d, v0))
                self._sum += d * v0
                self._dur += d
        self._last = (int(t_ns), float(value))
        self._expire(int(t_ns))

    def _expire(self, now_ns: int) -> None:
        start = now_ns - self.window_ns
        segs = self._segs
        while segs and segs[0][0] + segs[0][1] <= start:
            _, d, v = segs.popleft()
            self._sum -= d * v
            self._dur -= d
        if segs and segs[0][0] < start:  # clip the oldest segment to the window
            t0, d, v = segs[0]
            cut = start - t0
            segs[0] = (start, d - cut, v)
            self._sum -= cut * v
            self._dur -= cut

    def coverage_ns(self) -> int:
        """Time inside the window covered by samples, ns."""
        return self._dur

    def mean(self) -> float:
        """Time-weighted mean over the window (NaN before two samples)."""
        return self._sum / self._dur if self._dur > 0 else float("nan")

    def clear(self) -> None:
        self._segs.clear()
        self._last = None
        self._sum = 0.0
        self._dur = 0


class EventTimes:
    """Times of events (e.g. blinks) of the last ``window_ns`` ns."""

    def __init__(self, window_ns: int) -> None:
        self.window_ns = int(window_ns)
        self._t: deque[int] = deque()

    def add(self, t_ns: int) -> None:
        self._t.append(int(t_ns))

    def count(self, now_ns: int) -> int:
        start = now_ns - self.window_ns
        while self._t and self._t[0] <= start:
            self._t.popleft()
        return len(self._t)
