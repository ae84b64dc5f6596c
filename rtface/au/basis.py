"""Load the FACS Action Unit displacement basis (``rtface/data/au_basis/au_basis.npz``).

File contents (built by ``scripts/build_face_model.py``; see ``rtface/data/au_basis/NOTICE.md`` and ``report.md``):
- ``names`` (K,) str, bilateral OpenFace-style AU names ("AU01" ...); ``basis`` (K, 478, 3) float32: canonical-frame
  displacement (cm, axes of ``face_model_with_iris.obj``: x = subject's left, y up, z toward the viewer) per unit
  activation (= FACSHuman target weight 1.0); ``unit_to_facs`` (K,) float32: FACS 0-5 points per unit activation.
- ``names_lr`` / ``basis_lr`` / ``unit_to_facs_lr``: unilateral variants ("AU12_L" = subject's left).
- ``meta_json``: JSON string with build date, sources, licences, method.

Two modes (never both columns of one AU, they would be collinear):
- ``bilateral_only=True`` (default): the bilateral set as stored.
- ``bilateral_only=False``: "unilateral mode": every AU that has L/R variants is replaced by its ``_L`` and ``_R``
  columns (in the order of ``names``), the other bilateral AUs are kept.

Iris landmarks (468..477) are zero in every column; solvers should give them zero weight.
The loaded object is immutable (read-only arrays); the default-path result is cached. Any thread may read it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rtface.errors import DataError

N_LANDMARKS = 478
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "au_basis" / "au_basis.npz"
_REQUIRED = ("names", "basis", "unit_to_facs", "meta_json")


@dataclass(frozen=True)
class AUBasis:
    """An AU basis ready for the solver (arrays read-only)."""

    names: tuple[str, ...]
    basis: np.ndarray  # (K, 478, 3) float32, cm per unit activation, canonical frame
    matrix: np.ndarray  # (478*3, K) float64, row = landmark*3 + axis
    unit_to_facs: np.ndarray  # (K,) float32, FACS points per unit activation
    meta: dict[str, Any]
    path: str


def _field(z: Any, key: str, path: Path) -> np.ndarray:
    if key not in z.files:
        raise DataError(f"AU basis {path}: missing field '{key}'")
    try:
        return np.asarray(z[key])
    except (ValueError, OSError) as exc:
        raise DataError(f"AU basis {path}: field '{key}' unreadable: {exc}") from exc


def _check(path: Path, names: np.ndarray, basis: np.ndarray, u2f: np.ndarray, tag: str) -> None:
    k = names.shape[0] if names.ndim == 1 else -1
    if k <= 0:
        raise DataError(f"AU basis {path}: field 'names{tag}' must be a non-empty 1-D array, got {names.shape}")
    if basis.shape != (k, N_LANDMARKS, 3):
        raise DataError(f"AU basis {path}: field 'basis{tag}' has shape {basis.shape}, expected ({k}, 478, 3)")
    if u2f.shape != (k,):
        raise DataError(f"AU basis {path}: field 'unit_to_facs{tag}' has shape {u2f.shape}, expected ({k},)")
    if not (np.all(np.isfinite(basis)) and np.all(np.isfinite(u2f)) and np.all(u2f > 0)):
        raise DataError(f"AU basis {path}: fields 'basis{tag}'/'unit_to_facs{tag}' must be finite (and > 0)")


def _read(path: Path, bilateral_only: bool) -> AUBasis:
    if not path.is_file():
        raise DataError(f"AU basis {path}: file not found")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"AU basis {path}: not a readable .npz: {exc}") from exc
    with z:
        names, basis, u2f, meta_s = (_field(z, k, path) for k in _REQUIRED)
        _check(path, names, basis, u2f, "")
        try:
            meta = json.loads(str(meta_s))
        except json.JSONDecodeError as exc:
            raise DataError(f"AU basis {path}: field 'meta_json' is not valid JSON: {exc}") from exc
        names_t = tuple(str(n) for n in names)
        basis = basis.astype(np.float32)
        u2f = u2f.astype(np.float32)
        if not bilateral_only:
            lr_names, lr_basis, lr_u2f = (_field(z, k, path) for k in ("names_lr", "basis_lr", "unit_to_facs_lr"))
            _check(path, lr_names, lr_basis, lr_u2f, "_lr")
            lr = {str(n): i for i, n in enumerate(lr_names)}
            cols: list[tuple[str, np.ndarray, float]] = []
            for k, n in enumerate(names_t):
                if n + "_L" in lr and n + "_R" in lr:
                    cols += [(n + s, lr_basis[lr[n + s]], float(lr_u2f[lr[n + s]])) for s in ("_L", "_R")]
                else:
                    cols.append((n, basis[k], float(u2f[k])))
            names_t = tuple(c[0] for c in cols)
            basis = np.stack([c[1] for c in cols]).astype(np.float32)
            u2f = np.array([c[2] for c in cols], dtype=np.float32)
    matrix = basis.reshape(len(names_t), -1).T.astype(np.float64)
    for arr in (basis, matrix, u2f):
        arr.setflags(write=False)
    return AUBasis(names_t, basis, matrix, u2f, meta, str(path))


@lru_cache(maxsize=2)
def _default(bilateral_only: bool) -> AUBasis:
    return _read(DEFAULT_PATH, bilateral_only)


def load_au_basis(path: str | None = None, *, bilateral_only: bool = True) -> AUBasis:
    """Load an AU basis (None = the shipped one, cached). Raises DataError naming the path and field at fault."""
    if path is None or Path(path).resolve() == DEFAULT_PATH:
        return _default(bilateral_only)
    return _read(Path(path), bilateral_only)


def basis_meta(path: str | None = None) -> dict[str, Any]:
    """Build metadata of a basis file (sources, licences, method, per-AU source targets)."""
    return load_au_basis(path).meta
