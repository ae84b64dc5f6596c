"""Local camera source (V4L2 index or device path). Live; reconnects on failure (see ``capture.py``)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import cv2

from rtface.sources.capture import CaptureLike, ReconnectingCaptureSource


class CameraSource(ReconnectingCaptureSource):
    """A camera by index (``0``) or device path (``/dev/video0``).

    ``width``/``height``/``fps`` are requests passed to the driver (it may pick the nearest mode). ``opener``
    replaces ``cv2.VideoCapture`` (tests inject a fake). Opening retries ``open_tries`` times with back-off, then
    raises SourceError naming the camera.
    """

    def __init__(self, device: int | str | Path = 0, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, opener: Callable[[Any], CaptureLike] | None = None,
                 open_tries: int = 3, backoff_initial_s: float = 0.1, backoff_max_s: float = 2.0,
                 give_up_after_s: float | None = None, sleep: Callable[[float], bool] | None = None) -> None:
        target: int | str = device if isinstance(device, int) else str(device)
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        self.width, self.height, self.requested_fps = width, height, fps
        super().__init__(target, f"camera:{target}", opener=opener or self._cv2_open, open_tries=open_tries,
                         backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s,
                         give_up_after_s=give_up_after_s, sleep=sleep, fps=fps)

    def _cv2_open(self, target: int | str) -> CaptureLike:
        cap = cv2.VideoCapture(target)
        if cap.isOpened():
            if self.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            if self.requested_fps:
                cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
        return cap

    def _after_open(self, cap: CaptureLike) -> None:
        get = getattr(cap, "get", None)
        if get is not None:
            fps = get(cv2.CAP_PROP_FPS)
            if fps and math.isfinite(fps) and fps > 0:
                self.fps = float(fps)

    def _describe_open_failure(self) -> str:
        return (f"camera {self.target}: cannot open after {self.open_tries} tries "
                f"(no such camera index/device, or it is busy)")
