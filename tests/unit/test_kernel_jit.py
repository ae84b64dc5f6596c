"""Deferred numba (rtface/kernels/jit.py), mechanism tests: the plain-Python path of each kernel gives the compiled
kernel's result, and a kernel loads numba by itself after AUTO_LOAD_AFTER plain calls (fresh interpreters)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from rtface.kernels import jit
from rtface.kernels.nnls import nnls_kernel, prepare_gram
from rtface.kernels.procrustes import weighted_similarity


def test_plain_python_and_compiled_kernels_agree() -> None:
    jit.load()
    assert jit.loaded()
    rng = np.random.default_rng(3)
    for _ in range(10):
        k, m = int(rng.integers(3, 25)), 120
        A = rng.normal(size=(m, k))
        G, AtW = prepare_gram(A, 0.01, None)
        b = rng.normal(size=m)
        args = (G, AtW, b, np.zeros(k), np.zeros(k), np.full(k, 2.0), np.zeros(k), 50, 1e-9)
        x_c, r_c, v_c = nnls_kernel(*args)
        x_p, r_p, v_p = nnls_kernel.py_func(*args)
        np.testing.assert_allclose(x_p, x_c, rtol=0, atol=1e-12)
        assert int(r_p) == int(r_c)
        src = rng.normal(size=(478, 3))
        dst = src * 1.3 + rng.normal(scale=0.01, size=src.shape)
        w = rng.uniform(0.1, 1.0, 478)
        for got, want in zip(weighted_similarity.py_func(src, dst, w, True), weighted_similarity(src, dst, w, True)):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def _fresh(calls: int) -> str:
    code = ("import sys, numpy as np; from rtface.kernels import jit; "
            "from rtface.kernels.procrustes import weighted_similarity as f; "
            "p = np.random.default_rng(0).random((20, 3)); "
            f"[f(p, p, np.ones(20), True) for _ in range({calls})]; "
            "print('numba' in sys.modules, jit.loaded())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_few_calls_stay_plain_python_many_calls_load_numba() -> None:
    assert _fresh(3) == "False False"
    assert _fresh(jit.AUTO_LOAD_AFTER + 5) == "True True"
