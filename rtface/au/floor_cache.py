"""On-disk cache of the AU stage's Monte Carlo floors: ``rtface.userdirs.cache_dir()/floors/<sha256>.npy``.

The floors (:class:`rtface.stages.aus.FloorModel`) are quantiles of a few hundred seeded NNLS solves; they depend
only on the solver's matrices, the noise / pose / identity models, the sample count, seed and quantile, and the
code that computes them, all of which go into the key. A hit saves the solves at start-up (a run of stills then needs no
numba at all, :mod:`rtface.kernels.jit`). Unreadable or unwritable files are treated as misses; writes are atomic
(temporary file, then rename), so concurrent engines at worst compute the same floor twice.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from rtface.userdirs import cache_dir

_PKG = Path(__file__).resolve().parent.parent
# the code a floor depends on: the solver and its kernel, the simulation (AU stage) and the identity posterior
_CODE = [_PKG / "kernels" / "nnls.py", _PKG / "au" / "solve.py", _PKG / "stages" / "aus.py",
         _PKG / "facemodel" / "identity.py"]


@functools.lru_cache(maxsize=1)
def _code_digest() -> bytes:
    return hashlib.sha256(b"".join(p.read_bytes() for p in _CODE)).digest()


def make_key(*parts: object) -> str:
    """sha256 hex of the parts (arrays by dtype, shape and bytes; anything else by repr) and of that code."""
    h = hashlib.sha256(_code_digest())
    for part in parts:
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"|")
    return h.hexdigest()


def _path(key: str) -> Path:
    return cache_dir() / "floors" / f"{key}.npy"


def load(key: str, size: int) -> np.ndarray | None:
    """The cached (size,) float64 floor, or None."""
    try:
        a = np.load(_path(key), allow_pickle=False)
    except (OSError, ValueError):
        return None
    if a.shape != (size,) or a.dtype != np.float64 or not np.all(np.isfinite(a)):
        return None
    return a


def store(key: str, floor: np.ndarray) -> None:
    """Write a floor (best effort: a read-only or missing cache folder is ignored)."""
    path = _path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, np.asarray(floor, dtype=np.float64), allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
