"""Face regions and mirror pairs of the 478-point MediaPipe mesh, for the behaviour analyses.

Regions are the point sets of MediaPipe's own face-mesh contours (``mediapipe.python.solutions.
face_mesh_connections``: lips, eyes, eyebrows, nose, face oval), named from the subject's point of view like the
rest of rtface (``eye_l`` is the subject's left eye, MediaPipe's ``LEFT_EYE``). ``face`` is every mesh point
except the 10 iris points (they move with gaze, not expression).

Mirror pairs come from MediaPipe's canonical face model, which is left/right symmetric: the partner of each point
is the nearest vertex of its reflection x -> -x (:func:`rtface.geometry.canonical_model.mirror_map`; every pair is
mutual and midline points are their own partner). Pure data; safe from any thread.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

N_MESH = 478
IRIS = tuple(range(468, 478))


def _points(conn) -> np.ndarray:
    return np.array(sorted({i for edge in conn for i in edge}), dtype=np.int64)


@lru_cache(maxsize=1)
def regions() -> dict[str, np.ndarray]:
    """{region: landmark ids}: brow_l, brow_r, eye_l, eye_r, nose, mouth, jaw, plus brows, eyes, face."""
    import importlib

    from rtface.landmarking.mp_import import solutions

    solutions()  # the legacy face-mesh modules without mediapipe's drawing helpers (matplotlib: 0.5 s)
    c = importlib.import_module("mediapipe.python.solutions.face_mesh_connections")

    r = {"brow_l": _points(c.FACEMESH_LEFT_EYEBROW), "brow_r": _points(c.FACEMESH_RIGHT_EYEBROW),
         "eye_l": _points(c.FACEMESH_LEFT_EYE), "eye_r": _points(c.FACEMESH_RIGHT_EYE),
         "nose": _points(c.FACEMESH_NOSE), "mouth": _points(c.FACEMESH_LIPS), "jaw": _points(c.FACEMESH_FACE_OVAL)}
    r["brows"] = np.concatenate([r["brow_l"], r["brow_r"]])
    r["eyes"] = np.concatenate([r["eye_l"], r["eye_r"]])
    r["face"] = np.arange(468, dtype=np.int64)
    for v in r.values():
        v.setflags(write=False)
    return r


# regions reported by kinematics and asymmetry (the bilateral ones as one region each)
REPORT_REGIONS = ("brows", "eyes", "nose", "mouth", "jaw", "face")


@lru_cache(maxsize=1)
def report_region_means() -> np.ndarray:
    """(len(REPORT_REGIONS), 468) matrix M with ``M @ v`` = the mean of a per-point value ``v`` (468 mesh points,
    no iris) over each report region: one product instead of a mean per region."""
    reg = regions()
    m = np.zeros((len(REPORT_REGIONS), 468))
    for i, r in enumerate(REPORT_REGIONS):
        m[i, reg[r]] = 1.0 / len(reg[r])
    m.setflags(write=False)
    return m


@lru_cache(maxsize=1)
def mirror_pairs() -> np.ndarray:
    """(478,) partner of each mesh point under left/right reflection (an involution)."""
    from rtface.geometry.canonical_model import load_canonical_model, mirror_map

    m = mirror_map(load_canonical_model().vertices_cm).astype(np.int64)
    m.setflags(write=False)
    return m
