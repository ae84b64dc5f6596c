"""Keep native (C++/absl MediaPipe, FFmpeg) log lines, which bypass Python logging, off the terminal."""
from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (Python exceptions still propagate normally).

    Used around MediaPipe graph creation and its first frames only. Set RTFACE_NATIVE_LOGS=1 to see them.
    """
    if not enabled or os.environ.get("RTFACE_NATIVE_LOGS") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_GLOG_NOISE = (b"W0000 ", b"I0000 ", b"INFO: Created TensorFlow Lite", b"WARNING: All log messages before absl")


def _wanted() -> bool:
    return os.environ.get("RTFACE_NATIVE_LOGS") != "1"


def quiet_ffmpeg() -> None:
    """FFmpeg (inside OpenCV) prints its own lines (``[mov,mp4,...] moov atom not found``) for damaged files that
    rtface reports itself, naming the file: turn them off unless the user set ``OPENCV_FFMPEG_LOGLEVEL`` or
    RTFACE_NATIVE_LOGS=1. Takes effect if called before OpenCV opens its first video."""
    if _wanted():
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


class NativeLogFilter:
    """While started, file descriptor 2 is a pipe: a daemon thread forwards every line to the previous stderr except
    MediaPipe's informational/warning lines (``_GLOG_NOISE``). Nothing else is lost or hidden (unlike
    :func:`native_stderr_silenced`), so it can stay on while MediaPipe's graph threads start in the background.
    ``start``/``stop`` from the owning thread (the processing thread for a stage); both are idempotent. A no-op with
    RTFACE_NATIVE_LOGS=1."""

    def __init__(self) -> None:
        self._saved: int | None = None
        self._thread = None

    @property
    def active(self) -> bool:
        return self._saved is not None

    def start(self) -> None:
        if self._saved is not None or not _wanted():
            return
        import threading

        try:
            sys.stderr.flush()
            saved = os.dup(2)
            r, w = os.pipe()
        except (OSError, ValueError):
            return
        os.dup2(w, 2)
        os.close(w)
        self._saved = saved
        self._thread = threading.Thread(target=_pump, args=(r, saved), name="native-log-filter",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)  # the pipe's last write end closes: the pump drains it and ends
        if self._thread is not None:
            self._thread.join(2.0)
        os.close(saved)


def _pump(r: int, out: int) -> None:
    with os.fdopen(r, "rb", buffering=0) as src:
        buf = b""
        while True:
            chunk = src.read(4096)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if not line.startswith(_GLOG_NOISE):
                    try:
                        os.write(out, line + b"\n")
                    except OSError:
                        return
        if buf and not buf.startswith(_GLOG_NOISE):
            try:
                os.write(out, buf)
            except OSError:
                pass


def filter_native_logs() -> None:
    """For command-line programs: Python keeps writing to the terminal, native library logs are filtered.

    A permanent :class:`NativeLogFilter` (file descriptor 2, where MediaPipe's C++ code writes, is a pipe whose
    lines reach the real stderr except MediaPipe's informational and warning lines), and ``sys.stderr`` re-opened
    on a duplicate of the original descriptor, so Python output (status line, errors) is not delayed. Idempotent.
    Set RTFACE_NATIVE_LOGS=1 to keep everything.
    """
    global _cli_filter
    quiet_ffmpeg()
    if globals().get("_cli_filter") is not None:
        return
    f = NativeLogFilter()
    f.start()
    if f.active:
        sys.stderr = os.fdopen(f._saved, "w", buffering=1, closefd=False)
        _cli_filter = f
