"""Per-user folders rtface writes to (never inside the installed package).

- cache (``$XDG_CACHE_HOME/rtface``, default ``~/.cache/rtface``): numba JIT caches (``numba/``), the AU stage's
  Monte Carlo floors (``floors/``, :mod:`rtface.au.floor_cache`).
- data (``$XDG_DATA_HOME/rtface``, default ``~/.local/share/rtface``): saved neutral faces (``neutrals/``).
- runtime (``$XDG_RUNTIME_DIR/rtface``, else ``<cache>/run``): control tokens of running engines, one file each.

``RTFACE_CACHE_DIR``, ``RTFACE_DATA_DIR`` and ``RTFACE_RUNTIME_DIR`` replace the whole folder (tests, sandboxes).
Pure path logic plus :func:`private_dir`; safe from any thread.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path


def _xdg(env: str, fallback: str) -> Path:
    value = os.environ.get(env, "")
    return Path(value) if value and os.path.isabs(value) else Path.home() / fallback


def cache_dir() -> Path:
    """Per-user cache folder (may not exist yet)."""
    own = os.environ.get("RTFACE_CACHE_DIR")
    return Path(own) if own else _xdg("XDG_CACHE_HOME", ".cache") / "rtface"


def data_dir() -> Path:
    """Per-user data folder (may not exist yet)."""
    own = os.environ.get("RTFACE_DATA_DIR")
    return Path(own) if own else _xdg("XDG_DATA_HOME", ".local/share") / "rtface"


def runtime_dir() -> Path:
    """Per-user folder for files that live as long as a running engine (may not exist yet)."""
    own = os.environ.get("RTFACE_RUNTIME_DIR")
    if own:
        return Path(own)
    run = os.environ.get("XDG_RUNTIME_DIR", "")
    if run and os.path.isabs(run) and os.path.isdir(run):
        return Path(run) / "rtface"
    return cache_dir() / "run"


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) if needed and check it is a real folder owned by this user that nobody else can
    write to. Returns it; raises PermissionError naming the folder otherwise."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise PermissionError(f"{path} is not a folder (a symbolic link or file is in its place)")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to another user")
    if st.st_mode & 0o022:
        raise PermissionError(f"{path} can be written by other users (mode {stat.S_IMODE(st.st_mode):o}); "
                              f"run chmod go-w on it")
    return path


def configure_numba_cache() -> str:
    """Point numba's JIT cache at ``<cache>/numba`` unless ``NUMBA_CACHE_DIR`` is already set; returns the folder.

    Must run before numba compiles anything: without it numba writes its cache next to the kernels' source, i.e.
    inside an installed package, where ``pip uninstall`` leaves it behind as a folder that shadows a later editable
    install (issue 10, item 1). Called from ``rtface/__init__.py``.
    """
    folder = os.environ.get("NUMBA_CACHE_DIR") or str(cache_dir() / "numba")
    os.environ["NUMBA_CACHE_DIR"] = folder
    import sys

    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:  # numba was imported before rtface: it read the environment already
        numba_config.CACHE_DIR = folder
    return folder
