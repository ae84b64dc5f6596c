"""Per-point distance from mirror symmetry of one face in one pass (numba kernel with its NumPy reference).

:data:`mirror_distance_kernel` ``(face (N, 3) cm, pairs (N,) int) -> (N,) cm``: reflect the face (x -> -x), relabel
every point with its mirror partner ``pairs[i]``, align that rigidly onto the face (Kabsch: rotation + translation,
proper rotation) and return half the distance between each point and its aligned mirror image (the method of
:mod:`rtface.analysis.asymmetry`). Runs without the GIL once compiled. Pure function, safe from any thread.
"""
from __future__ import annotations

import math

import numpy as np

from rtface.kernels.jit import Kernel, register


def mirror_distance_ref(face: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """NumPy reference of :data:`mirror_distance_kernel`."""
    src = face[pairs] * np.array([-1.0, 1.0, 1.0])
    cs, cd = src.mean(0), face.mean(0)
    u, _, vt = np.linalg.svd((src - cs).T @ (face - cd))
    rot = vt.T @ u.T
    if np.linalg.det(rot) < 0:  # a reflection: flip the axis of the smallest singular value
        rot = vt.T @ np.diag([1.0, 1.0, -1.0]) @ u.T
    d = face - ((src - cs) @ rot.T + cd)
    return 0.5 * np.sqrt(np.einsum("ij,ij->i", d, d))


def _mirror_distance(face, pairs):
    n = face.shape[0]
    src = np.empty((n, 3))
    cs = np.zeros(3)
    cd = np.zeros(3)
    for i in range(n):
        j = pairs[i]
        src[i, 0] = -face[j, 0]
        src[i, 1] = face[j, 1]
        src[i, 2] = face[j, 2]
        for a in range(3):
            cs[a] += src[i, a]
            cd[a] += face[i, a]
    for a in range(3):
        cs[a] /= n
        cd[a] /= n
    h = np.zeros((3, 3))
    for i in range(n):
        for a in range(3):
            xa = src[i, a] - cs[a]
            for b in range(3):
                h[a, b] += xa * (face[i, b] - cd[b])
    u, _, vt = np.linalg.svd(h)
    flip = 1.0 if np.linalg.det(u) * np.linalg.det(vt) >= 0.0 else -1.0
    rot = np.zeros((3, 3))  # vt^T diag(1, 1, flip) u^T
    for a in range(3):
        for b in range(3):
            rot[a, b] = vt[0, a] * u[b, 0] + vt[1, a] * u[b, 1] + flip * vt[2, a] * u[b, 2]
    out = np.empty(n)
    for i in range(n):
        r2 = 0.0
        for a in range(3):
            al = cd[a]
            for b in range(3):
                al += rot[a, b] * (src[i, b] - cs[b])
            e = face[i, a] - al
            r2 += e * e
        out[i] = 0.5 * math.sqrt(r2)
    return out


register(globals(), ("_mirror_distance",), fastmath=False, nogil=True)
mirror_distance_kernel = Kernel(globals(), "_mirror_distance")
