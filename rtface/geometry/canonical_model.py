"""MediaPipe's canonical face model (478 vertices, cm) and its weighted rigid landmark set.

Source files (Apache-2.0, see ``rtface/data/mediapipe/LICENSE``):
- ``face_model_with_iris.obj``: 478 ``v x y z`` lines, cm (axes below).
- ``geometry_pipeline_metadata_including_iris_landmarks.pbtxt``: ``procrustes_landmark_basis { landmark_id: i
  weight: w }`` entries = the landmarks MediaPipe uses (with these weights) for its rigid Procrustes fit.

Canonical axes (as stored in the obj): x points to the subject's LEFT (the image right of a frontal face; e.g.
landmark 33, the subject's right outer eye corner, has x = -4.45), y points UP, z points out of the face towards the
viewer (right-handed). Origin inside the head; the nose tip (landmark 4) is at z = 7.59 cm.

The model is immutable and cached; any thread may read it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rtface.errors import DataError

_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "mediapipe"
OBJ_PATH = _DATA_DIR / "face_model_with_iris.obj"
PBTXT_PATH = _DATA_DIR / "geometry_pipeline_metadata_including_iris_landmarks.pbtxt"
N_VERTICES = 478

_BASIS_RE = re.compile(
    r"procrustes_landmark_basis\s*\{\s*landmark_id:\s*(\d+)\s+weight:\s*([-+0-9.eE]+)\s*\}"
)


@dataclass(frozen=True)
class CanonicalModel:
    """Canonical face (cm, y up). Arrays are read-only."""

    vertices_cm: np.ndarray  # (478, 3) float64, as in the obj
    procrustes_ids: np.ndarray  # (K,) int64 landmark ids of the rigid basis
    procrustes_weights: np.ndarray  # (K,) float64 weights (as in the pbtxt, sum ~1)
    weights_478: np.ndarray  # (478,) float64 weights scattered onto all landmarks, 0 elsewhere
    mirror_index: np.ndarray  # (478,) int64 left/right partner of each landmark (self on the midline)


def parse_obj_vertices(path: Path) -> np.ndarray:
    """Read the ``v x y z`` lines of a Wavefront obj; returns (N, 3) float64."""
    verts: list[list[float]] = []
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DataError(f"cannot read canonical model {path}: {exc}") from exc
    for line_no, line in enumerate(text.splitlines(), 1):
        if line.startswith("v "):
            parts = line.split()
            if len(parts) < 4:
                raise DataError(f"{path}:{line_no}: vertex line needs 3 coordinates: {line!r}")
            verts.append([float(parts[1]), float(parts[2]), float(parts[3])])
    return np.asarray(verts, dtype=np.float64)


def parse_procrustes_basis(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read ``procrustes_landmark_basis`` entries of the geometry pipeline pbtxt -> (ids int64, weights float64)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DataError(f"cannot read geometry metadata {path}: {exc}") from exc
    matches = _BASIS_RE.findall(text)
    if not matches:
        raise DataError(f"{path}: no procrustes_landmark_basis entries found")
    ids = np.array([int(m[0]) for m in matches], dtype=np.int64)
    weights = np.array([float(m[1]) for m in matches], dtype=np.float64)
    return ids, weights


def mirror_map(vertices: np.ndarray, midline_tol_cm: float = 1e-3) -> np.ndarray:
    """Partner of each vertex under x -> -x (nearest neighbour of the reflected point); self if |x| <= tol."""
    reflected = vertices * np.array([-1.0, 1.0, 1.0])
    d2 = ((reflected[:, None, :] - vertices[None, :, :]) ** 2).sum(-1)
    idx = np.argmin(d2, axis=1).astype(np.int64)
    mid = np.abs(vertices[:, 0]) <= midline_tol_cm
    idx[mid] = np.nonzero(mid)[0]
    return idx


@lru_cache(maxsize=1)
def load_canonical_model() -> CanonicalModel:
    """Load (once) the canonical 478-vertex model, its Procrustes weights and the mirror map."""
    verts = parse_obj_vertices(OBJ_PATH)
    if verts.shape != (N_VERTICES, 3):
        raise DataError(f"{OBJ_PATH}: expected {N_VERTICES} vertices, found {verts.shape[0]}")
    ids, weights = parse_procrustes_basis(PBTXT_PATH)
    if ids.min() < 0 or ids.max() >= N_VERTICES:
        raise DataError(f"{PBTXT_PATH}: landmark_id out of range 0..{N_VERTICES - 1}")
    w478 = np.zeros(N_VERTICES, dtype=np.float64)
    w478[ids] = weights
    mirror = mirror_map(verts)
    for arr in (verts, ids, weights, w478, mirror):
        arr.setflags(write=False)
    return CanonicalModel(verts, ids, weights, w478, mirror)
