"""Thread pools of native libraries inside the engine.

OpenBLAS (inside NumPy and SciPy) runs even small matrix products on a pool of threads that spin while they wait;
next to MediaPipe's own threads and the decoder on a 2-core machine that made a 1 x 11 by 11 x 1434 product take
1-2 ms in the engine against 0.04 ms alone (the canonical stage's mean went from 2.6-5.7 ms to 0.55-0.66 ms per
frame with one BLAS thread, benchmarks run on the reference machine). The engine's matrices are small (per face),
so one BLAS thread is what it wants.

:func:`limit_blas_threads` sets every OpenBLAS already loaded in this process (found in ``/proc/self/maps``,
``openblas_set_num_threads``) and ``OPENBLAS_NUM_THREADS`` for libraries loaded later and for child processes.
``RTFACE_BLAS_THREADS`` (an integer) overrides the count; ``0`` leaves the libraries alone. Process-wide; safe from
any thread.
"""
from __future__ import annotations

import ctypes
import os

ENV = "RTFACE_BLAS_THREADS"
_done: set[str] = set()


def _loaded_openblas() -> list[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []


def limit_blas_threads(n: int = 1) -> int:
    """Set OpenBLAS thread pools to ``n`` threads (module doc); returns how many libraries were set."""
    env = os.environ.get(ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            return 0
    if n <= 0:
        return 0
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(n))
    count = 0
    for path, fn in _openblas_fns("set"):
        fn.argtypes = [ctypes.c_int]
        fn(int(n))
        count += 1
        _done.add(path)
    return count


def blas_threads() -> dict[str, int]:
    """Current thread count of each loaded OpenBLAS (for tests and diagnostics)."""
    out = {}
    for path, fn in _openblas_fns("get"):
        fn.restype = ctypes.c_int
        out[os.path.basename(path)] = int(fn())
    return out


def _openblas_fns(verb: str):
    """(path, ``openblas_<verb>_num_threads`` function) of each loaded OpenBLAS that has one (its 64-bit and scipy
    builds name it differently)."""
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in (f"openblas_{verb}_num_threads64_", f"openblas_{verb}_num_threads",
                    f"scipy_openblas_{verb}_num_threads64_", f"scipy_openblas_{verb}_num_threads"):
            fn = getattr(lib, sym, None)
            if fn is not None:
                yield path, fn
                break
