"""Frame sources and ``open_source`` dispatch (spec string or camera index -> Source)."""
from __future__ import annotations

import stat
from pathlib import Path

from rtface.errors import SourceError
from rtface.landmarking.quiet import quiet_ffmpeg
from rtface.sources.base import IMAGE_EXTENSIONS, Source
from rtface.sources.camera import CameraSource
from rtface.sources.images import ImageSequenceSource
from rtface.sources.stream import STREAM_SCHEMES, StreamSource
from rtface.sources.video import VideoFileSource

quiet_ffmpeg()  # FFmpeg's own lines for damaged files stay off the terminal; rtface names the file itself

__all__ = ["Source", "CameraSource", "ImageSequenceSource", "StreamSource", "VideoFileSource", "open_source"]


def open_source(spec: str | int | Path, *, realtime: bool = False, loop: bool = False,
                fps: float | None = None, images: str = "stills", start_frame: int = 0, stop_frame: int = 0) -> Source:
    """Build (not open) the Source for ``spec``.

    - int or digit string -> CameraSource (``fps`` = requested rate); a character device path -> CameraSource
    - ``scheme://...`` -> StreamSource for rtsp/rtsps/http/https/udp/tcp (other schemes: SourceError)
    - existing directory, or a pattern containing ``*?[`` -> ImageSequenceSource (``fps`` default 30); unreadable
      images are skipped and counted (``unreadable``; the engine treats them like a video's decode errors)
    - existing image file (.jpg/.jpeg/.png/.bmp) -> 1-frame ImageSequenceSource; other existing file ->
      VideoFileSource (``fps`` only replaces a missing/invalid container rate)
    - anything else -> SourceError("... no such file: <path>")

    ``images``: "stills" (default) marks image sources' frames as independent stills (``Source.stills``: every image
    measured on its own, as OpenFace's FaceLandmarkImg does); "sequence" treats them as frames of one video.
    ``start_frame`` / ``stop_frame``: a chunk of a video file (frames start..stop-1; 0 = to the end).
    """
    if images not in ("stills", "sequence"):
        raise SourceError(f"source: images must be 'stills' or 'sequence', got {images!r}")
    src = _open_source(spec, realtime=realtime, loop=loop, fps=fps)
    if start_frame or stop_frame:
        if not isinstance(src, VideoFileSource):
            raise SourceError(f"source {spec}: start_frame / stop_frame apply to video files only")
        src = VideoFileSource(src.path, realtime=realtime, loop=False, fps=fps, start_frame=start_frame,
                              stop_frame=stop_frame)
    if isinstance(src, ImageSequenceSource):
        src.stills = images == "stills"
    return src


def _open_source(spec: str | int | Path, *, realtime: bool, loop: bool, fps: float | None) -> Source:
    if isinstance(spec, bool):
        raise SourceError(f"source: invalid spec {spec!r}")
    if isinstance(spec, int):
        return CameraSource(spec, fps=fps)
    text = str(spec).strip()
    if not text:
        raise SourceError("source: empty source spec")
    if text.isdigit():
        return CameraSource(int(text), fps=fps)
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme in STREAM_SCHEMES:
            return StreamSource(text)
        raise SourceError(f"source: unsupported URL scheme {scheme!r} in {text!r} "
                          f"(expected one of {', '.join(STREAM_SCHEMES)})")
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageSequenceSource(path, fps=fps, realtime=realtime, loop=loop, on_error="skip")
    if path.exists():
        if stat.S_ISCHR(path.stat().st_mode):
            return CameraSource(str(path), fps=fps)
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageSequenceSource(path, fps=fps, realtime=realtime, loop=loop, on_error="skip")
        return VideoFileSource(path, realtime=realtime, loop=loop, fps=fps)
    if any(c in text for c in "*?["):
        return ImageSequenceSource(text, fps=fps, realtime=realtime, loop=loop, on_error="skip")
    raise SourceError(f"source: no such file: {path}")
