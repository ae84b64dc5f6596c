"""numba weighted similarity Procrustes vs its NumPy reference (rtface/kernels/procrustes.py)."""
from __future__ import annotations

import numpy as np
import pytest

from rtface.kernels.procrustes import (
    apply_similarity,
    invert_similarity,
    weighted_similarity,
    weighted_similarity_ref,
)
from rtface.kernels import jit

jit.load()  # these tests check the numba kernels (a stills run uses the same code as plain Python)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


@pytest.mark.parametrize("seed", range(8))
def test_exact_recovery_noise_free(seed: int) -> None:
    rng = np.random.default_rng(seed)
    src = rng.normal(scale=5.0, size=(478, 3))
    rot = _random_rotation(rng)
    scale = float(rng.uniform(0.2, 20.0))
    t = rng.normal(scale=30.0, size=3)
    dst = apply_similarity(src, scale, rot, t)
    w = rng.random(478)
    w[rng.random(478) < 0.5] = 0.0  # sparse weights, like MediaPipe's 33 rigid landmarks
    for fn in (weighted_similarity, weighted_similarity_ref):
        s, r, tt = fn(src, dst, w)
        assert s == pytest.approx(scale, rel=1e-10)
        np.testing.assert_allclose(r, rot, atol=1e-10)
        np.testing.assert_allclose(tt, t, atol=1e-8)
        assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_kernel_matches_reference_with_noise(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    src = rng.normal(size=(50, 3))
    dst = apply_similarity(src, 2.0, _random_rotation(rng), rng.normal(size=3)) + rng.normal(scale=0.3, size=(50, 3))
    w = rng.random(50)
    for with_scale in (True, False):
        s1, r1, t1 = weighted_similarity(src, dst, w, with_scale)
        s2, r2, t2 = weighted_similarity_ref(src, dst, w, with_scale)
        assert s1 == pytest.approx(s2, rel=1e-10)
        np.testing.assert_allclose(r1, r2, atol=1e-10)
        np.testing.assert_allclose(t1, t2, atol=1e-10)
        if not with_scale:
            assert s1 == 1.0


def test_weighted_fit_is_optimal() -> None:
    """Perturbing the solution never lowers the weighted cost (checks the objective, not just kernel==ref)."""
    rng = np.random.default_rng(7)
    src = rng.normal(size=(30, 3))
    dst = rng.normal(size=(30, 3))
    w = rng.random(30)

    def cost(s: float, r: np.ndarray, t: np.ndarray) -> float:
        return float(w @ ((apply_similarity(src, s, r, t) - dst) ** 2).sum(1))

    s, r, t = weighted_similarity(src, dst, w)
    best = cost(s, r, t)
    for _ in range(50):
        small = _random_rotation(rng)
        axis_angle = 0.02 * (small - small.T)  # skew-symmetric: a small rotation
        dr = np.eye(3) + axis_angle
        u, _, vt = np.linalg.svd(dr)
        assert cost(s * (1 + rng.normal(scale=0.01)), (u @ vt) @ r, t + rng.normal(scale=0.01, size=3)) >= best


def test_reflection_gives_proper_rotation() -> None:
    rng = np.random.default_rng(3)
    src = rng.normal(size=(40, 3))
    dst = src * np.array([-1.0, 1.0, 1.0])  # a mirror: best proper rotation is not the reflection
    w = np.ones(40)
    s1, r1, _ = weighted_similarity(src, dst, w)
    s2, r2, _ = weighted_similarity_ref(src, dst, w)
    assert np.linalg.det(r1) == pytest.approx(1.0)
    np.testing.assert_allclose(r1, r2, atol=1e-10)
    assert s1 == pytest.approx(s2)


def test_three_weighted_points_suffice() -> None:
    rng = np.random.default_rng(4)
    src = rng.normal(size=(20, 3))
    rot = _random_rotation(rng)
    dst = apply_similarity(src, 3.0, rot, np.array([1.0, 2.0, 3.0]))
    dst[3:] += 100.0  # garbage on zero-weight points must not matter
    w = np.zeros(20)
    w[:3] = [0.2, 0.5, 1.0]
    s, r, t = weighted_similarity(src, dst, w)
    assert s == pytest.approx(3.0)
    np.testing.assert_allclose(r, rot, atol=1e-9)


def test_collinear_points_map_exactly() -> None:
    src = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 5, 5]])
    dst = apply_similarity(src, 2.0, np.eye(3), np.array([1.0, 0, 0]))
    w = np.array([1.0, 1.0, 1.0, 0.0])
    s, r, t = weighted_similarity(src, dst, w)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(apply_similarity(src[:3], s, r, t), dst[:3], atol=1e-9)


@pytest.mark.parametrize("fn", [weighted_similarity, weighted_similarity_ref])
def test_degenerate_inputs_raise(fn) -> None:
    src = np.random.default_rng(0).normal(size=(5, 3))
    with pytest.raises(ValueError):
        fn(src, src, np.zeros(5))
    with pytest.raises(ValueError):
        fn(np.ones((5, 3)), src, np.ones(5))  # all source points identical


def test_invert_round_trip() -> None:
    rng = np.random.default_rng(9)
    pts = rng.normal(size=(10, 3))
    s, r, t = 1.7, _random_rotation(rng), rng.normal(size=3)
    back = apply_similarity(apply_similarity(pts, s, r, t), *invert_similarity(s, r, t))
    np.testing.assert_allclose(back, pts, atol=1e-12)
