"""Load the MakeHuman hm08 head + FACSHuman AU deltas for rendering (decimetres, hm08 axes:
x = subject's left, y up, z toward the viewer). Build-time only."""
from __future__ import annotations

import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .render import MAT_EYE, MAT_SKIN, MAT_TEETH, MAT_TONGUE, Paint

HEAD_MIN_Y = 5.9          # dm; body triangles entirely above this are rendered (head + upper neck)
HELPER_MATERIAL = {"helper-l-eye": MAT_EYE, "helper-r-eye": MAT_EYE, "helper-upper-teeth": MAT_TEETH,
                   "helper-lower-teeth": MAT_TEETH, "helper-tongue": MAT_TONGUE}


class SourceMissing(RuntimeError):
    """The shared FACSHuman / MakeHuman source files are not where the build expects them."""


@dataclass
class Hm08Head:
    base: np.ndarray            # (N,3) float64 neutral vertices, dm
    names: list[str]            # FACSHuman target names, e.g. "02/12"
    deltas: np.ndarray          # (K,N,3) float32, dm per unit weight
    tris: np.ndarray            # (T,3) render triangles
    tri_mat: np.ndarray         # (T,) material ids
    two_sided: np.ndarray       # (T,) bool, draw back faces (mouth cavity)
    paint: Paint
    cam_distance: float = 5.0                     # camera distance, mesh units (dm)
    cam_target: tuple[float, float, float] = (0.0, 7.05, 1.0)   # look-at point, mesh units

    def delta(self, name: str) -> np.ndarray:
        try:
            return self.deltas[self.names.index(name)].astype(np.float64)
        except ValueError as exc:
            raise SourceMissing(f"FACSHuman target {name!r} not in the deltas npz") from exc


def _obj_groups(path: Path) -> dict[str, list[list[int]]]:
    groups: dict[str, list[list[int]]] = {}
    g = "?"
    with lzma.open(path, "rt") as fh:
        for line in fh:
            if line.startswith("g "):
                g = line.split()[1]
            elif line.startswith("f "):
                groups.setdefault(g, []).append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    return groups


def _quads_to_tris(faces: list[list[int]]) -> np.ndarray:
    out = []
    for f in faces:
        for i in range(1, len(f) - 1):
            out.append([f[0], f[i], f[i + 1]])
    return np.asarray(out, np.int64)


def load_hm08(facshuman_dir: Path) -> Hm08Head:
    """Read facshuman_au_deltas_on_makehuman_hm08.npz and makehuman_base/base.obj.xz."""
    npz = facshuman_dir / "facshuman_au_deltas_on_makehuman_hm08.npz"
    obj = facshuman_dir / "makehuman_base" / "base.obj.xz"
    for p in (npz, obj):
        if not p.is_file():
            raise SourceMissing(f"missing source file {p}")
    d = np.load(npz, allow_pickle=False)
    base = d["base_vertices"].astype(np.float64)
    body = d["body_triangles"].astype(np.int64)
    body = body[(base[body][:, :, 1] > HEAD_MIN_Y).all(1)]
    groups = _obj_groups(obj)
    parts, mats = [body], [np.full(len(body), MAT_SKIN)]
    for g, m in HELPER_MATERIAL.items():
        t = _quads_to_tris(groups[g])
        parts.append(t)
        mats.append(np.full(len(t), m))
    tris = np.concatenate(parts)
    tri_mat = np.concatenate(mats)
    cen = base[tris].mean(1)
    mouth_c = np.array([0.0, 6.62, 1.35])
    two = (tri_mat == MAT_SKIN) & (np.linalg.norm((cen - mouth_c) * [1.0, 1.6, 1.0], axis=1) < 0.45)
    two |= tri_mat >= MAT_TEETH
    eye_c = np.stack([base[np.unique(np.asarray(groups[g]))].mean(0) for g in ("helper-l-eye", "helper-r-eye")])
    eye_r = float(np.linalg.norm(base[np.unique(np.asarray(groups["helper-l-eye"]))] - eye_c[0], axis=1).mean())
    return Hm08Head(base=base, names=[str(n) for n in d["names"]], deltas=d["deltas"], tris=tris,
                    tri_mat=tri_mat, two_sided=two, paint=Paint(eye_centres=eye_c, eye_radius=eye_r))
