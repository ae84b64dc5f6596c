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
