"""Reading result tables back: one call for either Parquet layout (compact or flat) and for CSV.

``read_results(path)`` returns a ``pyarrow.Table`` with the flat column names and order of
:mod:`rtface.output.columns` (``x_0 .. y_67``, ``mp_x_0 ..``), whatever layout the file was written in;
``read_results(path).to_pandas()`` gives the pandas DataFrame. ``pandas.read_parquet(path)`` on a compact file
works too and gives one NumPy array per landmark block and row.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rtface.errors import DataError
from rtface.landmarking.ibug68 import N_IBUG
from rtface.records import N_LANDMARKS

BLOCK_AXES = {  # block column -> (prefixes of its flat columns in order, points per prefix)
    "ibug_xy": (("x_", "y_"), N_IBUG),
    "ibug_XYZ": (("X_", "Y_", "Z_"), N_IBUG),
    "mp_xyz": (("mp_x_", "mp_y_", "mp_z_"), N_LANDMARKS),
    "c_XYZ": (("cX_", "cY_", "cZ_"), N_LANDMARKS),
}


def block_names(block: str) -> list[str]:
    """The flat column names held, in order, by one compact landmark block."""
    prefixes, n = BLOCK_AXES[block]
    return [f"{p}{i}" for p in prefixes for i in range(n)]


def flatten(table):
    """A compact-layout table -> the flat layout (same rows; column order of the flat layout)."""
    import pyarrow as pa

    blocks = [c for c in table.column_names if c in BLOCK_AXES]
    if not blocks:
        return table
    names = [c for c in table.column_names if c not in BLOCK_AXES]
    arrays = [table.column(c) for c in names]
    flat: dict[str, pa.Array] = {}
    for b in blocks:
        col = table.column(b).combine_chunks()
        size = col.type.list_size
        values = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, size)
        valid = np.ones(len(col), bool) if col.null_count == 0 else ~np.asarray(col.is_null())
        values = np.where(valid[:, None], values, np.float32("nan"))
        for j, name in enumerate(block_names(b)):
            flat[name] = pa.array(values[:, j], pa.float32())
    # flat order: head scalars, ibug blocks, tail scalars, mesh blocks (rtface.output.columns.TableLayout.columns)
    from rtface.output.columns import BASE, POSE

    head = set(BASE) | set(POSE)
    head_end = max((i for i, n in enumerate(names) if n in head), default=-1) + 1
    order = names[:head_end] + [n for b in ("ibug_xy", "ibug_XYZ") if b in blocks for n in block_names(b)]
    order += names[head_end:] + [n for b in ("mp_xyz", "c_XYZ") if b in blocks for n in block_names(b)]
    cols = dict(zip(names, arrays))
    cols.update(flat)
    return pa.table({n: cols[n] for n in order})


def read_results(path: str | Path, *, flat: bool = True):
    """Read an rtface result table (.parquet in either layout, or .csv) as a pyarrow Table; ``flat=False`` keeps
    a compact file's list columns. DataError naming the file when it cannot be read."""
    import pyarrow as pa

    p = Path(path)
    try:
        if p.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(p)
        import pyarrow.parquet as pq

        table = pq.read_table(p)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{p}: cannot read result table: {exc}") from exc
    return flatten(table) if flat else table


def virtual_flat_columns(columns: list[str]) -> dict[str, tuple[str, int]]:
    """For the column names of a compact table: each flat landmark name -> (block column, index in the block)."""
    return {n: (b, j) for b in columns if b in BLOCK_AXES for j, n in enumerate(block_names(b))}


def block_values(column) -> np.ndarray:
    """A fixed-size list column (pyarrow Array/ChunkedArray, or a sequence of arrays such as a pandas column) ->
    (rows, size) float64, NaN for null rows."""
    if hasattr(column, "combine_chunks") or hasattr(column, "flatten") and hasattr(column, "type"):
        col = column.combine_chunks() if hasattr(column, "combine_chunks") else column
        size = col.type.list_size
        vals = col.flatten().to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, size)
        if col.null_count:
            vals[np.asarray(col.is_null())] = np.nan
        return vals
    items = list(column)
    size = max((len(x) for x in items if x is not None and not isinstance(x, float)), default=0)
    out = np.full((len(items), size), np.nan)
    for i, x in enumerate(items):
        if x is not None and not isinstance(x, float):
            out[i] = np.asarray(x, dtype=np.float64)
    return out
