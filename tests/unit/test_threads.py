"""Mechanism test: the engine's BLAS thread limit reaches the OpenBLAS libraries loaded in the process."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import numpy, scipy.linalg
from rtface.threads import blas_threads, limit_blas_threads
assert blas_threads(), "no OpenBLAS found in /proc/self/maps"
assert limit_blas_threads(1) == len(blas_threads())
assert set(blas_threads().values()) == {1}, blas_threads()
import os
os.environ["RTFACE_BLAS_THREADS"] = "0"
assert limit_blas_threads(1) == 0  # 0: left alone
print("ok")
"""


def test_blas_threads_are_limited_in_a_fresh_process():
    p = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "2"})
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
