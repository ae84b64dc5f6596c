"""Heads to render with a population of face shapes (build-time only).

- ICT-FaceKit head (MIT) with its 100 identity PCA modes (``ict_identity_modes.npz``: face vertices 0..9408, cm,
  one standard deviation per mode, coefficients assumed N(0, 1)). Vertices outside the face area (head, neck,
  mouth socket, teeth, eye sockets) get the identity displacement interpolated from the nearest face vertices
  (inverse squared distance, 16 neighbours); each eyeball moves rigidly with the displacement at its centre.
- ``Hm08Head`` objects from ``scripts/au_basis`` are reused for rendering; paint is attached to the undeformed
  surface, so brows/lips/eyes move with the identity deformation like a texture.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from au_basis.hm08 import Hm08Head, SourceMissing
from au_basis.ict import _sphere_centre, load_ict

N_FACE = 9409
EYE_L = (21451, 23021)  # eyeball vertex ranges [a, b)
EYE_R = (23021, 24591)


@dataclass
class IdentityModel:
    """Identity modes extended to every vertex of the ICT head (cm per unit coefficient)."""
    modes: np.ndarray  # (M, N, 3) float32


def _idw_weights(src: np.ndarray, dst: np.ndarray, k: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """For every dst point: indices (k,) of the nearest src points and normalised 1/d^2 weights."""
    from scipy.spatial import cKDTree
    d, idx = cKDTree(src).query(dst, k=k)
    w = 1.0 / np.maximum(d, 1e-6) ** 2
    return idx, w / w.sum(1, keepdims=True)


def load_ict_identity(ict_dir: Path) -> tuple[Hm08Head, IdentityModel]:
    """The ICT head (as au_basis.ict.load_ict) and its identity modes on all vertices."""
    head = load_ict(ict_dir)
    npz = ict_dir / "ict_identity_modes.npz"
    if not npz.is_file():
        raise SourceMissing(f"missing source file {npz}")
    z = np.load(npz, allow_pickle=False)
    face_modes = z["modes"].astype(np.float64)  # (M, 9409, 3)
    base = head.base
    if np.abs(z["neutral_face"] - base[:N_FACE]).max() > 1e-4:
        raise SourceMissing(f"{npz}: neutral_face does not match the ICT expression neutral")
    m = face_modes.shape[0]
    full = np.zeros((m, len(base), 3))
    full[:, :N_FACE] = face_modes
    rest = np.arange(N_FACE, len(base))
    idx, w = _idw_weights(base[:N_FACE], base[rest])
    full[:, rest] = np.einsum("rk,mrkd->mrd", w, face_modes[:, idx])
    for a, b in (EYE_L, EYE_R):
        c = _sphere_centre(base[a:b])
        ci, cw = _idw_weights(base[:N_FACE], c[None], k=32)
        full[:, a:b] = np.einsum("k,mkd->md", cw[0], face_modes[:, ci[0]])[:, None, :]
    return head, IdentityModel(full.astype(np.float32))
