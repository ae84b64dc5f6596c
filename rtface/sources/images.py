"""Image-sequence source: a folder of images (sorted by name), a glob pattern, or a single image file.

Media time is ``position / fps`` where ``position`` is the file's place in the sorted list, so a skipped file
leaves a gap in media time. Images are decoded with ``cv2.imdecode(IMREAD_COLOR)`` (any path encoding) into BGR
uint8: gray, 16-bit and alpha images are converted and the EXIF orientation is applied. Owned by the grabber thread.
"""
from __future__ import annotations

import glob
from pathlib import Path

import cv2
import numpy as np

from rtface.errors import SourceError
from rtface.sources.base import IMAGE_EXTENSIONS, Pacer, Source, to_bgr

DEFAULT_IMAGE_FPS = 30.0


def list_images(spec: str | Path) -> list[Path]:
    """Sorted image files of a folder, a glob pattern, or ``[spec]`` for one image file. Raises SourceError."""
    p = Path(spec)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise SourceError(f"image source: folder {p} holds no {'/'.join(IMAGE_EXTENSIONS)} file")
    elif p.is_file():
        if p.suffix.lower() not in IMAGE_EXTENSIONS:
            raise SourceError(f"image source: {p} is not a {'/'.join(IMAGE_EXTENSIONS)} file")
        files = [p]
    elif any(c in str(spec) for c in "*?["):
        files = [Path(f) for f in glob.glob(str(spec), recursive=True)
                 if Path(f).is_file() and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise SourceError(f"image source: pattern {spec} matches no {'/'.join(IMAGE_EXTENSIONS)} file")
    else:
        raise SourceError(f"image source: no such file: {spec}")
    return sorted(files)


class ImageSequenceSource(Source):
    """Frames from image files. ``on_error='raise'`` (default) raises SourceError naming an unreadable file;
    ``'skip'`` skips it and counts ``unreadable``. ``realtime`` paces at ``fps`` (then live); ``loop`` restarts."""

    def __init__(self, spec: str | Path, *, fps: float | None = None, on_error: str = "raise",
                 realtime: bool = False, loop: bool = False) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"image source: on_error must be 'raise' or 'skip', got {on_error!r}")
        fps = float(fps) if fps else DEFAULT_IMAGE_FPS
        super().__init__(Path(str(spec)).name or str(spec), live=realtime, fps=fps)
        self.spec = spec
        self.on_error = on_error
        self.realtime = realtime
        self.loop = loop
        self.files: list[Path] = []
        self._pos = 0  # position over all loops
        self._pacer = Pacer(self._sleep)
        self.unreadable = 0
        self.unreadable_files: list[str] = []  # "name: why" of the first 100 unreadable files
        self.loops = 0

    def open(self) -> None:
        self.files = list_images(self.spec)
        self.frame_count = None if self.loop else len(self.files)
        self._opened = True

    def read(self) -> tuple[np.ndarray, int] | None:
        n = len(self.files)
        misses = 0
        while self._opened and not self.interrupted:
            if self._pos >= n and not self.loop:
                return None
            if misses >= n:  # a whole pass without a readable file
                return None
            pos = self._pos
            self._pos += 1
            if pos and pos % n == 0:
                self.loops += 1
            path = self.files[pos % n]
            image = self._load(path)
            if image is None:
                misses += 1
                continue
            t_ns = int(round(pos * 1e9 / self.fps))
            self.frames_read += 1
            if self.realtime and self._pacer.wait(t_ns):
                return None
            return image, t_ns
        return None

    def _load(self, path: Path) -> np.ndarray | None:
        try:
            data = np.fromfile(str(path), dtype=np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        except OSError as exc:
            image, why = None, str(exc)
        else:
            why = "not a decodable image"
        if image is None:
            if self.on_error == "raise":
                raise SourceError(f"image source: cannot read {path}: {why}")
            self.unreadable += 1
            if len(self.unreadable_files) < 100:
                self.unreadable_files.append(f"{path.name}: {why}")
            return None
        return to_bgr(image)

    def stats(self) -> dict[str, int | float]:
        s = super().stats()
        s.update(files=len(self.files), unreadable=self.unreadable, loops=self.loops, late_frames=self._pacer.late)
        return s
