"""Reading result tables (the layout of :mod:`rtface.output.columns`) into per-face frame features.

Columns used (all optional except ``timestamp`` and ``face_id``): ``frame``, ``confidence``, ``neutral_ready``,
``AUxx_r`` / ``AUxx_c`` (AU45, the eye-closure AU of the eyes stage, is left to the blink measures), lateral
``AUxx_L_r`` / ``AUxx_R_r``, ``emotion_*``, ``pitch_deg`` / ``yaw_deg`` / ``roll_deg``, ``pose_Tx..Tz`` (mm),
canonical ``cX_i`` / ``cY_i`` / ``cZ_i`` (cm, written with ``[output] write_canonical = true``), mesh
``mp_x_i`` / ``mp_y_i`` / ``mp_z_i`` (px), eye columns ``eye_closure_l`` / ``eye_closure_r`` / ``blink`` /
``blink_duration_ms``. Rows with ``face_id < 0`` are frames without a face (counted in the quality summary).

Without canonical columns the landmark measures use a fallback pose removal: each frame's mesh, turned into the
canonical axes (x, -y, -z), is fitted to MediaPipe's canonical face model by a similarity transform (rotation,
translation, scale; Umeyama 1991) on all 468 face points, which leaves the points in cm with head pose removed but
the person's own face shape kept (so landmark asymmetry then includes the person's resting asymmetry).
Thread ownership: none (pure reading).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rtface.analysis.asymmetry import lateral_au_pairs
from rtface.analysis.features import FaceAccumulator
from rtface.errors import DataError

_AU_R = re.compile(r"^(AU\d+)_r$")
N = 478


def au_columns(columns) -> list[str]:
    """AU names with an ``_r`` column, in table order, AU45 excluded (it is the blink signal)."""
    return [m.group(1) for c in columns if (m := _AU_R.match(c)) and m.group(1) != "AU45"]


def _umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """src mapped onto dst by the least-squares similarity transform."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(a.T @ b / len(src))
    d = np.ones(3)
    if np.linalg.det(u @ vt) < 0:
        d[2] = -1
    rot = (u * d) @ vt
    scale = float((sig * d).sum() / (a * a).sum() * len(src))
    return scale * a @ rot + md


def posefree_from_mesh(mesh_px: np.ndarray) -> np.ndarray:
    """(N, 478, 3) mesh points in px -> pose-free points in cm (module doc); NaN frames stay NaN."""
    from rtface.geometry.canonical_model import load_canonical_model

    model = load_canonical_model().vertices_cm[:468]
    out = np.full(mesh_px.shape, np.nan)
    flip = np.array([1.0, -1.0, -1.0])
    for i, p in enumerate(mesh_px):
        q = p[:468] * flip
        if np.all(np.isfinite(q)):
            out[i, :468] = _umeyama(q, model)
            out[i, 468:] = np.nan
    return out


class ColumnSource:
    """Named columns of one table: ``get(name) -> (rows,) float64`` plus the column names."""

    def __init__(self, columns: list[str], get: Callable[[str], np.ndarray], origin: str = "table",
                 prefetch: Callable[[list[str]], None] | None = None) -> None:
        self.columns, self._get, self.origin = list(columns), get, origin
        self._prefetch = prefetch
        self._set = set(self.columns)

    def has(self, name: str) -> bool:
        return name in self._set

    def get(self, name: str) -> np.ndarray:
        return np.asarray(self._get(name), dtype=np.float64)

    def block(self, names: list[str]) -> np.ndarray:
        if self._prefetch is not None:
            self._prefetch(names)
        return np.stack([self.get(n) for n in names], 1)


def open_table(path: str | Path) -> ColumnSource:
    """A .parquet or .csv result table as a :class:`ColumnSource`; DataError naming the file otherwise."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"result table {p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            from rtface.output.tables import block_names, block_values, virtual_flat_columns

            pf = pq.ParquetFile(str(p))
            stored = pf.schema_arrow.names
            virtual = virtual_flat_columns(stored)  # compact layout: landmark blocks read as their flat names
            cols = [c for c in stored if c not in {b for b, _ in virtual.values()}] + list(virtual)
            cache: dict[str, np.ndarray] = {}

            def prefetch(names: list[str]) -> None:
                todo = [n for n in names if n not in cache]
                if todo:
                    blocks = sorted({virtual[n][0] for n in todo if n in virtual})
                    tbl = pf.read(columns=[n for n in todo if n not in virtual] + blocks)
                    for n in todo:
                        if n not in virtual:
                            cache[n] = tbl.column(n).to_numpy(zero_copy_only=False)
                    for b in blocks:
                        vals = block_values(tbl.column(b))
                        for j, n in enumerate(block_names(b)):
                            cache[n] = vals[:, j]

            def get(name: str) -> np.ndarray:
                prefetch([name])
                return cache[name]
        elif suffix == ".csv":
            import pyarrow.csv as pcsv

            tbl = pcsv.read_csv(str(p))
            cols = tbl.column_names

            def get(name: str) -> np.ndarray:
                return tbl.column(name).to_numpy(zero_copy_only=False)

            prefetch = None
        else:
            raise DataError(f"result table {p}: unsupported extension {suffix!r} (use .parquet or .csv)")
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataError(f"result table {p}: cannot be read ({type(exc).__name__}: {exc})") from None
    src = ColumnSource(cols, get, str(p), prefetch)
    for need in ("timestamp", "face_id"):
        if not src.has(need):
            raise DataError(f"result table {p}: column {need!r} is missing (not an rtface/OpenFace result table)")
    return src


def _landmark_block(src: ColumnSource, rows: np.ndarray, prefix: tuple[str, str, str]) -> np.ndarray | None:
    names = [f"{prefix[k]}{i}" for k in range(3) for i in range(N)]
    if not all(src.has(n) for n in names):
        return None
    block = src.block(names)[rows]
    return block.reshape(len(rows), 3, N).transpose(0, 2, 1)


def accumulate(src: ColumnSource, **kw) -> tuple[dict[int, FaceAccumulator], dict]:
    """Feed every face row of ``src`` to one FaceAccumulator per face id. Returns (accumulators, info)."""
    fid = src.get("face_id")
    t = src.get("timestamp")
    frame = src.get("frame") if src.has("frame") else np.arange(len(t), dtype=float)
    au = au_columns(src.columns)
    emo = [c[len("emotion_"):] for c in src.columns if c.startswith("emotion_")]
    lr = lateral_au_pairs(src.columns)
    info = {"rows": int(len(fid)), "frames": int(len(np.unique(frame))), "frames_without_face": int(
        len(np.unique(frame[fid < 0]))), "au_names": au, "emotion_names": emo, "lr_aus": [a for a, _, _ in lr],
        "landmarks": "none", "origin": src.origin}
    opt = {c: src.get(c) if src.has(c) else None
           for c in ("confidence", "neutral_ready", "pitch_deg", "yaw_deg", "roll_deg", "pose_Tx", "pose_Ty",
                     "pose_Tz", "eye_closure_l", "eye_closure_r", "blink", "blink_duration_ms")}
    ar = src.block([f"{a}_r" for a in au]) if au else None
    ac = src.block([f"{a}_c" for a in au]) if au and all(src.has(f"{a}_c") for a in au) else None
    em = src.block([f"emotion_{e}" for e in emo]) if emo else None
    lr_cols = {a: (src.get(lc), src.get(rc)) for a, lc, rc in lr}
    accs: dict[int, FaceAccumulator] = {}
    for face in sorted(int(f) for f in np.unique(fid[fid >= 0])):
        rows = np.nonzero(fid == face)[0]
        rows = rows[np.argsort(t[rows], kind="stable")]
        canon = _landmark_block(src, rows, ("cX_", "cY_", "cZ_"))
        mesh = _landmark_block(src, rows, ("mp_x_", "mp_y_", "mp_z_"))
        if canon is not None and np.any(np.isfinite(canon)):
            info["landmarks"] = "canonical"
        elif mesh is not None:
            canon = posefree_from_mesh(mesh)
            info["landmarks"] = "mesh (similarity fit)"
        acc = accs[face] = FaceAccumulator(face, au, emo, [a for a, _, _ in lr], **kw)
        for k, r in enumerate(rows):
            g = {c: (None if v is None else v[r]) for c, v in opt.items()}
            pose = None
            if g["yaw_deg"] is not None:
                tr = [(g[c] / 10.0 if g[c] is not None else np.nan) for c in ("pose_Tx", "pose_Ty", "pose_Tz")]
                pose = (g["pitch_deg"], g["yaw_deg"], g["roll_deg"], *tr)
            closure = None
            if g["eye_closure_l"] is not None and g["eye_closure_r"] is not None:
                closure = (g["eye_closure_l"], g["eye_closure_r"])
            blink = None if g["blink"] is None else (g["blink"], g["blink_duration_ms"]
                                                      if g["blink_duration_ms"] is not None else np.nan)
            au_lr = {a: (left[r], right[r]) for a, (left, right) in lr_cols.items()} if lr else None
            acc.add(float(t[r]), int(frame[r]),
                    confidence=np.nan if g["confidence"] is None else g["confidence"],
                    neutral_ready=np.nan if g["neutral_ready"] is None else g["neutral_ready"],
                    au_r=None if ar is None else ar[r], au_c=None if ac is None else ac[r], au_lr=au_lr,
                    emotion=None if em is None else em[r], pose=pose,
                    canonical=None if canon is None else canon[k],
                    mesh_px=None if mesh is None else mesh[k], closure=closure, blink=blink)
    return accs, info
