"""Mechanism tests of the result-table writer: the compact Parquet layout holds exactly what the flat one does, is
read back flat by the one documented call, stays within 1.2x the raw bytes per row, and a .partial is readable."""
from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from rtface.output.columns import TableLayout
from rtface.output.table_writer import TableWriter
from rtface.output.tables import block_names, read_results
from rtface.records import Face, FrameMeta, FrameResult, HeadPose

AUS = ("AU01", "AU12")
EMO = ("neutral", "happiness")


def _results(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(100, 400, (478, 3)).astype(np.float32)  # a fixed face moving slightly, like real tracking
    for i in range(n):
        meta = FrameMeta(i, 1_700_000_000_000_000_000 + i * 33_000_000, i * 33_333_333, 640, 480, "v.mp4")
        r = FrameResult(meta)
        if i % 7 != 3:  # some frames without a face
            lm = base + rng.normal(0, 0.5, base.shape).astype(np.float32)
            f = Face(face_id=0, confidence=0.9, bbox_px=np.array([1, 2, 3, 4], np.float32), landmarks_px=lm)
            f.pose = HeadPose(5.0, -3.0, 1.0, 1.0, 2.0, 50.0, 1.0, np.eye(3))
            f.metric_cm = lm / 10
            f.canonical_cm = lm / 20
            f.au_intensity = np.array([0.5, 1.5], np.float32)
            f.au_presence = np.array([False, True])
            f.emotion = np.array([0.3, 0.7], np.float32)
            f.extras["pspi"] = 1.0
            r.faces = [f]
        yield r


LAYOUT = TableLayout(has_pose=True, au_names=AUS, emotion_names=EMO, extra_scalars=("pspi",),
                     write_canonical=True)


def _write(path, layout, n=1500, **kw):
    w = TableWriter(path, layout, **kw)
    for r in _results(n):
        w.write(r)
    return w


def test_compact_and_flat_hold_the_same_table(tmp_path):
    _write(tmp_path / "c.parquet", LAYOUT).close(complete=True)
    _write(tmp_path / "f.parquet", LAYOUT, parquet_layout="flat").close(complete=True)
    _write(tmp_path / "f.csv", LAYOUT).close(complete=True)
    c, f = read_results(tmp_path / "c.parquet"), read_results(tmp_path / "f.parquet")
    assert c.schema.equals(f.schema) and c.column_names == LAYOUT.columns() and c.num_rows == f.num_rows
    for name in c.column_names:
        np.testing.assert_array_equal(c.column(name).to_numpy(), f.column(name).to_numpy(), err_msg=name)
    raw = pq.read_table(tmp_path / "c.parquet")
    assert raw.schema.metadata[b"rtface.layout"] == b"compact"
    assert raw.schema.field("mp_xyz").type.list_size == 3 * 478
    assert block_names("ibug_xy")[:2] == ["x_0", "x_1"] and block_names("mp_xyz")[-1] == "mp_z_477"
    csv = read_results(tmp_path / "f.csv")
    assert csv.column_names == LAYOUT.columns()
    np.testing.assert_allclose(csv.column("mp_y_9").to_numpy(), c.column("mp_y_9").to_numpy(), rtol=1e-6)


def test_compact_file_is_at_most_1_2x_the_raw_bytes_per_row(tmp_path):
    _write(tmp_path / "c.parquet", LAYOUT, n=3000).close(complete=True)
    t = pq.read_table(tmp_path / "c.parquet")
    raw_per_row = sum(col.nbytes for col in t.columns) / t.num_rows
    assert os.path.getsize(tmp_path / "c.parquet") / t.num_rows <= 1.2 * raw_per_row


def test_partial_compact_file_is_readable(tmp_path):
    w = _write(tmp_path / "c.parquet", LAYOUT, n=2100)  # two full row groups and a rest
    assert w.close(complete=False) == tmp_path / "c.parquet.partial"
    t = read_results(tmp_path / "c.parquet.partial")
    assert t.num_rows == 2100 and t.column("frame").to_pylist() == list(range(2100))


def test_unknown_layout_is_refused(tmp_path):
    from rtface.errors import ConfigError

    with pytest.raises(ConfigError, match="layout 'wide'"):
        TableWriter(tmp_path / "c.parquet", LAYOUT, parquet_layout="wide")
