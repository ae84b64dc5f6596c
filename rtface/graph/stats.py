"""Run statistics: rolling latency percentiles, per-stage timing, and drop counters at every boundary.

Owned by the processing thread; ``snapshot()`` builds the dict carried by the ``rtface.v1.stats`` heartbeat.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np


class Rolling:
    """Last ``n`` samples of one quantity (ms)."""

    def __init__(self, n: int = 600) -> None:
        self._d: deque[float] = deque(maxlen=n)
        self.count = 0

    def add(self, v: float) -> None:
        self._d.append(v)
        self.count += 1

    def percentiles(self) -> dict[str, float]:
        if not self._d:
            return {"p50": float("nan"), "p99": float("nan")}
        a = np.fromiter(self._d, float)
        p50, p99 = np.percentile(a, [50, 99])
        return {"p50": round(float(p50), 3), "p99": round(float(p99), 3)}


class RunStats:
    """Counters and rolling timings for one run."""

    def __init__(self) -> None:
        self.t_start = time.monotonic()
        self.frames = 0
        self.faces = 0
        self.last_faces = 0
        self.latency_ms = Rolling()  # capture -> publish, ms
        self.stage_ms: dict[str, Rolling] = {}
        self.stage_errors: dict[str, int] = {}
        self.disabled_stages: list[str] = []
        self.frames_without_face = 0
        self._fps_window: deque[float] = deque(maxlen=120)

    def on_frame(self, n_faces: int, latency_ms: float, stage_ms: dict[str, float]) -> None:
        self.frames += 1
        self.faces += n_faces
        self.last_faces = n_faces
        if n_faces == 0:
            self.frames_without_face += 1
        self.latency_ms.add(latency_ms)
        for k, v in stage_ms.items():
            self.stage_ms.setdefault(k, Rolling()).add(v)
        self._fps_window.append(time.monotonic())

    def fps(self) -> float:
        w = self._fps_window
        if len(w) < 2 or w[-1] <= w[0]:
            return 0.0
        return (len(w) - 1) / (w[-1] - w[0])

    def snapshot(self, drops: dict[str, float | int]) -> dict:
        return {
            "frames": self.frames,
            "faces_total": self.faces,
            "faces": self.last_faces,
            "fps": round(self.fps(), 2),
            "uptime_s": round(time.monotonic() - self.t_start, 3),
            "latency_ms": self.latency_ms.percentiles(),
            "stage_ms": {k: r.percentiles() for k, r in self.stage_ms.items()},
            "stage_errors": dict(self.stage_errors),
            "disabled_stages": {name: 1 for name in self.disabled_stages},
            "frames_without_face": self.frames_without_face,
            "drops": drops,
        }
