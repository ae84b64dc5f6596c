"""Streaming Parquet/CSV writer for per-face-per-frame results.

Rows are written to ``<path>.partial`` in row groups and the file is renamed to ``<path>`` only when the run
completes, so a file that looks complete is complete. If the run fails, the partial file is closed properly (a
readable Parquet/CSV with every frame processed so far) and keeps its ``.partial`` name.
Owned by the processing thread.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from rtface.errors import ConfigError
from rtface.landmarking.ibug68 import N_IBUG, ibug68
from rtface.output.columns import BASE, POSE, TableLayout
from rtface.records import N_LANDMARKS, FrameResult

INT_COLUMNS = {"frame": "int64", "face_id": "int32", "t_capture_ns": "int64", "success": "int8",
               "neutral_ready": "int8"}


def check_output_path(path: str | Path, *, overwrite: bool = False) -> Path:
    """Check before any work that ``path`` can be written; raises ConfigError naming the path and what to do.

    Refused: another extension than .parquet/.csv, a folder, a missing parent folder, a place where the
    ``.partial`` file cannot be created (e.g. /proc), and an existing file at ``path`` (a complete earlier
    result) unless ``overwrite`` (it is then replaced only when this run completes).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"output path {p}: unsupported extension {suffix!r} (use .parquet or .csv)")
    if p.is_dir():
        raise ConfigError(f"output path {p} is a folder; give a file name, e.g. {p / ('results' + suffix)}")
    if not p.parent.is_dir():
        raise ConfigError(f"output path {p}: folder {p.parent} does not exist")
    if p.exists() and not overwrite:
        raise ConfigError(f"output path {p} already exists (a complete earlier result); pass --overwrite "
                          f"([output] overwrite = true) to replace it once this run completes, or choose another "
                          f"--out")
    from rtface.output.session_writer import session_paths

    partial = p.with_name(p.name + ".partial")
    for q in (partial, *session_paths(p)):
        if q.is_dir():
            raise ConfigError(f"output path {p}: {q} is a folder, so results cannot be written there")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # left by an earlier failed run; this run replaces it
        if not os.access(partial, os.W_OK):
            raise ConfigError(f"output path {p}: cannot write {partial} (permission denied)") from None
    except OSError as exc:
        raise ConfigError(f"output path {p}: cannot create files in {p.parent} ({exc.strerror})") from None
    else:
        os.close(fd)
        os.unlink(partial)
    return p


def _arrow(a: np.ndarray):
    """A numeric NumPy column as a pyarrow Array over a copy of its bytes (NaN stays NaN). Unlike ``pa.array``
    this never imports pandas (pyarrow's pandas check costs 0.2-0.4 s at the first call when pandas is
    installed: most of a one-photo run's writing time)."""
    import pyarrow as pa

    a = np.ascontiguousarray(a)
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a.copy())])


def preload(path: str | Path) -> None:
    """Import what writing ``path`` needs (pyarrow and its Parquet or CSV module: 0.4-1 s), so that a helper thread
    can do it while the landmark stage starts, instead of the processing thread at the first flush (at the end of
    a short run, after the last frame)."""
    import pyarrow  # noqa: F401

    if Path(path).suffix.lower() == ".parquet":
        import pyarrow.parquet  # noqa: F401
    else:
        import pyarrow.csv  # noqa: F401


COMPACT_BATCH_ROWS = 1024  # rows per Parquet row group in the compact layout (about 8 MB of landmarks)
LAYOUT_KEY = b"rtface.layout"  # Parquet key-value metadata: b"compact" | b"flat"


class TableWriter:
    """``parquet_layout``: "compact" (landmark blocks as fixed-size list columns, :mod:`rtface.output.columns`)
    or "flat" (one column per coordinate, like CSV). CSV is always flat."""

    def __init__(self, path: str | Path, layout: TableLayout, *, batch_rows: int | None = None,
                 parquet_layout: str = "compact") -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise ConfigError(f"output path {self.path}: unsupported extension {suffix!r} (use .parquet or .csv)")
        if not self.path.parent.exists():
            raise ConfigError(f"output path {self.path}: folder {self.path.parent} does not exist")
        self.format = suffix[1:]
        if parquet_layout not in ("compact", "flat"):
            raise ConfigError(f"output layout {parquet_layout!r}: expected 'compact' or 'flat'")
        self.compact = self.format == "parquet" and parquet_layout == "compact"
        if batch_rows is None:
            batch_rows = COMPACT_BATCH_ROWS if self.compact else 256
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.layout = layout
        self.scalar_cols = layout.scalar_columns()
        self.lm_cols = layout.landmark_columns()
        self._batch = batch_rows
        self._scal = np.full((batch_rows, len(self.scalar_cols)), np.nan)
        self._lm = np.full((batch_rows, len(self.lm_cols)), np.nan, np.float32)
        self._ints = np.zeros((batch_rows, 3), np.int64)  # frame, face_id, t_capture_ns (exact, not via float)
        self._n = 0
        self.rows = 0
        self.frames = 0
        self._writer = None
        self._file = None  # CSV: the file under the writer
        self._schema = None
        self._closed = False
        self._result: Path | None = None
        self._idx = {c: i for i, c in enumerate(self.scalar_cols)}

    def _open(self) -> None:
        import pyarrow as pa

        lm = set(self.lm_cols)
        blocks = {name: stop - start for name, start, stop in self.layout.landmark_blocks()}
        self._order = self.layout.compact_columns() if self.compact else self.layout.columns()

        def field(c: str):
            if c in blocks:
                return pa.field(c, pa.list_(pa.float32(), blocks[c]))
            return pa.field(c, pa.float32() if c in lm else pa.from_numpy_dtype(np.dtype(INT_COLUMNS.get(c, "float64"))))

        self._schema = pa.schema([field(c) for c in self._order],
                                 metadata={LAYOUT_KEY: b"compact" if self.compact else b"flat"})
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(str(self.partial), self._schema, compression="zstd",
                                            write_statistics=["frame", "face_id", "timestamp"],
                                            use_dictionary=["face_id", "success"])
        else:
            import pyarrow.csv as pcsv

            # header written here, unquoted like OpenFace's (pyarrow would quote every name); names hold no commas
            self._file = open(self.partial, "wb")
            self._file.write((",".join(self._order) + "\n").encode("utf-8"))
            self._writer = pcsv.CSVWriter(self._file, self._schema,
                                          write_options=pcsv.WriteOptions(include_header=False))

    def write(self, result: FrameResult) -> None:
        """Append the rows of one frame (one per face, or one empty row)."""
        m = result.meta
        faces = result.faces or [None]
        for face in faces:
            if self._n == self._batch:
                self._flush()
            row, lm = self._scal[self._n], self._lm[self._n]
            row[:] = np.nan
            lm[:] = np.nan
            row[2], row[4], row[5] = m.t_media_ns / 1e9, np.nan, 0
            self._ints[self._n] = (m.index, -1 if face is None else face.face_id, m.t_capture_ns)
            if face is not None:
                self._fill(row, lm, face)
            self._n += 1
            self.rows += 1
        self.frames += 1

    def _fill(self, row: np.ndarray, lm: np.ndarray, face) -> None:
        ix = self._idx
        row[4], row[5] = face.confidence, 1
        row[6:10] = face.bbox_px
        pts = face.landmarks_px
        L = self.layout
        lm[0:2 * N_IBUG] = ibug68(pts[:, :2]).T.reshape(-1)  # x_0..67, y_0..67
        j = 2 * N_IBUG
        if L.has_pose:
            if face.metric_cm is not None:
                lm[j:j + 3 * N_IBUG] = (ibug68(face.metric_cm) * 10.0).T.reshape(-1)  # X, Y, Z mm
            j += 3 * N_IBUG
        lm[j:j + 3 * N_LANDMARKS] = pts.T.reshape(-1)  # mp_x, mp_y, mp_z
        j += 3 * N_LANDMARKS
        if L.write_canonical and face.canonical_cm is not None:
            lm[j:j + 3 * N_LANDMARKS] = face.canonical_cm.T.reshape(-1)
        if L.has_pose and face.pose is not None:
            p = face.pose
            j = ix["pose_Tx"]
            row[j:j + 11] = (p.tx_cm * 10, p.ty_cm * 10, p.tz_cm * 10, math.radians(p.pitch_deg),
                             math.radians(p.yaw_deg), math.radians(p.roll_deg), p.yaw_deg, p.pitch_deg,
                             p.roll_deg, float(face.neutral_ready), float(face.shape_frames))
        if L.au_names and face.au_intensity is not None:
            j = ix[f"{L.au_names[0]}_r"]
            k = len(L.au_names)
            row[j:j + k] = face.au_intensity
            if face.au_presence is not None:
                jc = ix[f"{L.au_names[0]}_c"]
                row[jc:jc + k] = face.au_presence
        if L.emotion_names and face.emotion is not None:
            j = ix[f"emotion_{L.emotion_names[0]}"]
            row[j:j + len(L.emotion_names)] = face.emotion
        for name in L.extra_scalars:
            v = face.extras.get(name)
            if v is not None:
                row[ix[name]] = float(v)

    def _flush(self) -> None:
        if self._n == 0:
            return
        import pyarrow as pa

        if self._writer is None:
            self._open()
        n = self._n
        exact = {"frame": 0, "face_id": 1, "t_capture_ns": 2}
        by_name = {}
        for j, c in enumerate(self.scalar_cols):
            col = self._scal[:n, j]
            dt = INT_COLUMNS.get(c)
            if c in exact:
                col = self._ints[:n, exact[c]].astype(dt)
            elif dt is not None:
                col = np.nan_to_num(col, nan=-1 if c == "face_id" else 0).astype(dt)
            by_name[c] = col
        lm = self._lm[:n]
        if self.compact:
            for name, start, stop in self.layout.landmark_blocks():
                flat = _arrow(lm[:, start:stop].reshape(-1))
                by_name[name] = pa.FixedSizeListArray.from_arrays(flat, stop - start)
        else:
            for j, c in enumerate(self.lm_cols):
                by_name[c] = lm[:, j]
        arrays = [v if isinstance(v, pa.Array) else _arrow(v) for v in (by_name[c] for c in self._order)]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self._n = 0

    def close(self, *, complete: bool) -> Path | None:
        """Flush and close. ``complete=True`` renames to the final path; otherwise the ``.partial`` file stays.

        Returns the path of the file on disk (None when an incomplete run wrote no row: no file is left behind).
        Safe to call twice.
        """
        if self._closed:
            return self._result
        self._closed = True
        self._flush()
        if self._writer is None:
            if not complete:
                self._result = None
                return None
            self._open()  # a complete run without rows still writes a valid file with the header/schema
        self._writer.close()
        if self._file is not None:
            self._file.close()
        if complete:
            os.replace(self.partial, self.path)
            self._result = self.path
        else:
            self._result = self.partial
        return self._result


__all__ = ["TableWriter", "TableLayout", "BASE", "POSE"]
