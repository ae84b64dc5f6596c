"""numba's JIT cache stays out of the package (issue 10, item 1: a cache left in site-packages/rtface by
``pip uninstall`` shadowed the editable install). Real subprocesses compiling a real kernel; the README's two
set-up commands in sequence are run by .ci/run."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import rtface

KERNELS = Path(rtface.__file__).resolve().parent / "kernels"
COMPILE = ("import numpy as np; from rtface.kernels import jit; jit.load(); "
           "from rtface.kernels.procrustes import weighted_similarity as f; "
           "p = np.random.default_rng(0).random((10, 3)); f(p, p, np.ones(10)); "
           "import os; print(os.environ['NUMBA_CACHE_DIR'])")


def _run(env: dict) -> str:
    p = subprocess.run([sys.executable, "-c", COMPILE], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def _clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "RTFACE_CACHE_DIR")}
    env.update(extra)
    return env


def test_kernel_cache_goes_to_the_user_cache_folder_not_the_package(tmp_path):
    started = time.time() - 1
    folder = _run(_clean_env(XDG_CACHE_HOME=str(tmp_path / "xdg")))
    assert folder == str(tmp_path / "xdg" / "rtface" / "numba")
    assert list(Path(folder).rglob("procrustes.*weighted_similarity*.nbi"))
    fresh = [p for p in KERNELS.rglob("*.nb[ic]") if p.stat().st_mtime >= started]
    assert not fresh, f"numba wrote cache files into the package: {fresh}"


def test_an_existing_numba_cache_dir_is_honoured(tmp_path):
    assert _run(_clean_env(NUMBA_CACHE_DIR=str(tmp_path / "mine"))) == str(tmp_path / "mine")
    assert list((tmp_path / "mine").rglob("*.nbi"))
