"""pandas API: a result table as a DataFrame in, DataFrames out (for notebooks; needs pandas, extra ``analysis``).

The DataFrame has the columns of a result table (:mod:`rtface.analysis.table_input` lists the ones used;
``timestamp`` in s and ``face_id`` are required), e.g. ``pd.read_parquet("results.parquet")`` (a compact file's
landmark blocks ``mp_xyz`` etc. are read as their flat columns) or a table of your own built with those names. Every function runs the same code as ``rtface analyze``::

    import pandas as pd
    from rtface.analysis import frames
    df = pd.read_parquet("results.parquet")
    faces = frames.session_table(df)        # one row per face id: every session measure
    per_frame = frames.frame_features(df)   # one row per face per frame: the signals behind the measures
    win = frames.windows_table(df, window_s=10)
    pairs = frames.dyads_table(df)          # one row per face pair and signal
"""
from __future__ import annotations

import numpy as np

from rtface.analysis.session import Analysis, AnalysisSettings, analyze_accumulators
from rtface.analysis.table_input import ColumnSource, accumulate
from rtface.errors import DataError


def _pd():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - pandas is in the test extra
        raise DataError("rtface.analysis.frames needs pandas: pip install 'rtface[analysis]'") from exc
    return pd


def _source(df) -> ColumnSource:
    """The DataFrame's columns; a compact table's landmark blocks (``mp_xyz`` ...) read as their flat names."""
    from rtface.output.tables import block_names, block_values, virtual_flat_columns

    names = [str(c) for c in df.columns]
    virtual = virtual_flat_columns(names)
    blocks: dict[str, np.ndarray] = {}

    def get(c: str):
        if c in virtual:
            b, j = virtual[c]
            if b not in blocks:
                blocks[b] = block_values(df[b])
            return blocks[b][:, j]
        return df[c].to_numpy(dtype="float64", na_value=float("nan"))

    cols = [c for c in names if c not in {b for b, _ in virtual.values()}] + list(virtual)
    return ColumnSource(cols, get, "DataFrame")


def analyze(df, settings: AnalysisSettings | None = None) -> Analysis:
    """The full :class:`Analysis` of a DataFrame in the result-table layout."""
    _pd()
    for need in ("timestamp", "face_id"):
        if need not in df.columns:
            raise DataError(f"DataFrame: column {need!r} is missing (result-table layout, see rtface.analysis.frames)")
    src = _source(df)
    accs, info = accumulate(src)
    return analyze_accumulators(accs, {k: v for k, v in info.items() if k != "origin"}, settings)


def session_table(df, **kw):
    """One row per face id (index ``face_id``) with every session measure."""
    pd = _pd()
    a = analyze(df, AnalysisSettings(**kw) if kw else None)
    return pd.DataFrame.from_dict(a.faces, orient="index").rename_axis("face_id")


def frame_features(df):
    """One row per face per frame: AUs, composites, expressivity, pose, head speed, asymmetry and kinematics per
    region, eye closure (columns of :meth:`rtface.analysis.features.FaceAccumulator.frame_table`)."""
    pd = _pd()
    a = analyze(df)
    parts = []
    for fid, ft in a.frames.items():
        cols = {k: v for k, v in ft.items() if len(v) == len(ft["t"])}
        parts.append(pd.DataFrame(cols).assign(face_id=fid))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def windows_table(df, window_s: float = 10.0, step_s: float = 1.0):
    """Rolling-window measures: one row per face per step (``face_id``, ``t_end``, values)."""
    pd = _pd()
    a = analyze(df, AnalysisSettings(window_s=window_s, step_s=step_s))
    return pd.DataFrame([{"face_id": f, **r} for f, rows in a.windows.items() for r in rows])


def dyads_table(df, **kw):
    """Cross-correlation measures: one row per face pair and signal."""
    pd = _pd()
    a = analyze(df, AnalysisSettings(**kw) if kw else None)
    return pd.DataFrame([{k: v for k, v in d.items() if not k.startswith("_")} for d in a.dyads])
