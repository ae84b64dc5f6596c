"""Preview stage (opt-in): low-rate, downscaled JPEG images of the camera on their own topic.

Off unless a config adds ``[[stages]] kind = "preview"`` (or ``rtface run --preview-jpeg FPS``): patient images
stay inside the engine unless the user asks for them. At most ``fps`` images per second of media time, at most
``max_width`` pixels wide (never upscaled), JPEG ``quality`` 1-100, published on ``topic`` (default
``rtface.v1.preview``) after the frame's own message through :meth:`take_messages`. Payload: ``frame`` (int),
``t_capture_ns``, ``t_media_ns`` (int, ns), ``width``, ``height`` (int, px of the JPEG), ``source_width``,
``source_height`` (int, px of the frame), ``scale`` (float, JPEG px per frame px), ``jpeg`` (bytes).
Thread ownership: the processing thread (like every stage).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

TOPIC_PREVIEW = "rtface.v1.preview"
_TOPIC_RE = re.compile(r"^rtface\.v1\.preview(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class PreviewParams:
    fps: float = 2.0  # images per second of media time, at most
    max_width: int = 320  # px; the image is scaled down to this width (aspect kept), never up
    quality: int = 70  # JPEG quality 1-100
    topic: str = TOPIC_PREVIEW  # rtface.v1.preview or rtface.v1.preview.<name>

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fps) and 0 < self.fps <= 30):
            raise ValueError(f"field 'fps' must be in (0, 30] images per second, got {self.fps}")
        if not 16 <= self.max_width <= 1920:
            raise ValueError(f"field 'max_width' must be 16..1920 px, got {self.max_width}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"field 'quality' must be 1..100, got {self.quality}")
        if not _TOPIC_RE.match(self.topic):
            raise ValueError(f"field 'topic' must be {TOPIC_PREVIEW} or {TOPIC_PREVIEW}.<name>, got {self.topic!r}")


@register_stage
class PreviewStage(Stage):
    kind = "preview"
    inputs = ("image",)
    outputs = ()
    Params = PreviewParams

    def __init__(self, name: str, params: PreviewParams) -> None:
        super().__init__(name, params)
        self._next_ns: int | None = None
        self._queued: list[tuple[str, dict[str, Any]]] = []
        self.sent = 0

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        import cv2

        m = result.meta
        if self._next_ns is not None and m.t_media_ns < self._next_ns and m.t_media_ns >= self._next_ns - 2e9:
            return  # (a media time that jumps back by more than 2 s, e.g. a looped file, starts the clock again)
        self._next_ns = m.t_media_ns + int(1e9 / self.params.fps)
        h, w = image.shape[:2]
        scale = min(1.0, self.params.max_width / float(w))
        small = image if scale >= 1.0 else cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                      interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, int(self.params.quality)])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        self._queued = [(self.params.topic, {
            "frame": int(m.index), "t_capture_ns": int(m.t_capture_ns), "t_media_ns": int(m.t_media_ns),
            "width": int(small.shape[1]), "height": int(small.shape[0]), "source_width": int(w),
            "source_height": int(h), "scale": float(small.shape[1] / w), "jpeg": buf.tobytes()})]
        self.sent += 1

    def take_messages(self) -> list[tuple[str, dict[str, Any]]]:
        out, self._queued = self._queued, []
        return out

    def summary(self) -> dict[str, Any]:
        return {"images": self.sent}
