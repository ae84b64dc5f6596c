"""Silence MediaPipe's native (C++/absl) log lines, which bypass Python logging and clutter the status line."""
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


def filter_native_logs() -> None:
    """For command-line programs: Python keeps writing to the terminal, native library logs are filtered.

    File descriptor 2 (where MediaPipe's C++ code writes) is pointed at a pipe; a daemon thread forwards every
    line except MediaPipe's informational and warning lines to the real stderr. ``sys.stderr`` is re-opened on a
    duplicate of the original descriptor, so Python output (status line, errors) is not delayed. Idempotent.
    Set RTFACE_NATIVE_LOGS=1 to keep everything.
    """
    global _filter_installed
    if os.environ.get("RTFACE_NATIVE_LOGS") == "1" or globals().get("_filter_installed"):
        return
    import threading

    try:
        sys.stderr.flush()
        real = os.dup(2)
        r, w = os.pipe()
    except (OSError, ValueError):
        return
    os.dup2(w, 2)
    os.close(w)
    sys.stderr = os.fdopen(real, "w", buffering=1, closefd=False)

    def pump() -> None:
        with os.fdopen(r, "rb", buffering=0) as src:
            buf = b""
            while True:
                chunk = src.read(4096)
                if not chunk:
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line.startswith(_GLOG_NOISE):
                        os.write(real, line + b"\n")

    threading.Thread(target=pump, name="native-log-filter", daemon=True).start()
    _filter_installed = True
