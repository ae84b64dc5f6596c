"""Network stream source (rtsp/http/udp/tcp URL via cv2.VideoCapture + FFmpeg). Live; reconnects on failure.

The source name hides any password in the URL (``rtsp://user:***@host/...``) so it can be logged and published.
"""
from __future__ import annotations

from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import cv2

from rtface.errors import SourceError
from rtface.sources.capture import CaptureLike, ReconnectingCaptureSource

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https", "udp", "tcp")


def parse_stream_url(url: str) -> tuple[str, str]:
    """Validate a stream URL; returns (scheme, display name with the password masked). Raises SourceError."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise SourceError(f"stream source: malformed URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in STREAM_SCHEMES:
        raise SourceError(f"stream source: unsupported URL scheme {parts.scheme!r} in {url!r} "
                          f"(expected one of {', '.join(STREAM_SCHEMES)})")
    if not parts.hostname:
        raise SourceError(f"stream source: no host in URL {url!r}")
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.hostname + (f":{port}" if port is not None else "")
        netloc = f"{parts.username}:***@{host}"
    return scheme, urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))


class StreamSource(ReconnectingCaptureSource):
    """A network stream. ``timeout_s`` bounds FFmpeg's open and read calls so a dead peer is noticed."""

    def __init__(self, url: str, *, opener: Callable[[Any], CaptureLike] | None = None, open_tries: int = 3,
                 backoff_initial_s: float = 0.1, backoff_max_s: float = 2.0, give_up_after_s: float | None = None,
                 timeout_s: float = 5.0, sleep: Callable[[float], bool] | None = None) -> None:
        self.scheme, display = parse_stream_url(url)
        self.url = url.strip()
        self.timeout_s = timeout_s
        super().__init__(self.url, display, opener=opener or self._cv2_open, open_tries=open_tries,
                         backoff_initial_s=backoff_initial_s, backoff_max_s=backoff_max_s,
                         give_up_after_s=give_up_after_s, sleep=sleep)

    def _cv2_open(self, url: str) -> CaptureLike:
        ms = int(self.timeout_s * 1000)
        return cv2.VideoCapture(url, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])

    def _after_open(self, cap: CaptureLike) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS) if hasattr(cap, "get") else 0.0
        if fps and 0 < fps < 1000:
            self.fps = float(fps)

    def _describe_open_failure(self) -> str:
        return f"stream {self.name}: cannot open after {self.open_tries} tries (unreachable or not a video stream)"
