"""Result files use OpenFace's column names, in OpenFace's relative order, where the meaning overlaps."""
from __future__ import annotations

import csv

import pyarrow.csv as pcsv

from rtface.config import config_from_dict
from rtface.graph.runner import Engine
from tests.conftest import DATA, SAMPLE_VIDEO


def openface_header() -> list[str]:
    with open(DATA / "formats" / "OpenFace_Test_head.csv", newline="") as f:
        return [c.strip() for c in next(csv.reader(f))]


def test_full_pipeline_csv_speaks_openface(tmp_path):
    out = tmp_path / "r.csv"
    cfg = config_from_dict({
        "source": {"spec": str(SAMPLE_VIDEO), "realtime": False},
        "engine": {"max_frames": 40},
        "publish": {"enabled": False}, "control": {"enabled": False},
        "output": {"path": str(out)},
        "stages": [{"kind": "landmarks"}, {"kind": "canonical"}, {"kind": "aus"}, {"kind": "emotion"}],
    })
    Engine(cfg).run()
    t = pcsv.read_csv(out)
    ours = t.column_names
    of = openface_header()
    shared = [c for c in of if c in ours]
    # every OpenFace pose column and the AUs we both estimate are present under the same name ...
    assert {"frame", "timestamp", "confidence", "success", "pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry",
            "pose_Rz", "AU01_r", "AU06_r", "AU12_r", "AU25_r", "AU26_r", "AU12_c", "AU28_c"} <= set(shared)
    assert [f"x_{i}" for i in range(68)] == [c for c in shared if c.startswith("x_")]
    for a in "yXYZ":  # OpenFace's 2D and 3D landmark names, 68 each, and no more under those names
        assert [f"{a}_{i}" for i in range(68)] == [c for c in shared if c.startswith(f"{a}_")]
        assert f"{a}_68" not in ours
    assert [f"mp_x_{i}" for i in range(478)] == [c for c in ours if c.startswith("mp_x_")]  # the mesh, own names
    # ... and in OpenFace's relative order (frame..pose.., landmarks, AU *_r block, then AU *_c block)
    assert shared == [c for c in ours if c in shared]
    # meanings: units and ranges as OpenFace (mm, radians, FACS 0-5, 0/1)
    assert 200 < t.column("pose_Tz").to_pylist()[-1] < 1500  # mm in front of the camera
    assert all(abs(v) < 1.0 for v in t.column("pose_Ry").to_pylist())  # radians
    for name in ("AU12_r", "AU06_r"):
        assert all(0.0 <= v <= 5.0 for v in t.column(name).to_pylist())
    assert set(t.column("AU12_c").to_pylist()) <= {0, 1}
    assert all(0.99 < sum(r) < 1.01 for r in zip(*[t.column(c).to_pylist() for c in ours
                                                   if c.startswith("emotion_")]))
    session = list(csv.DictReader(open(tmp_path / "r_session.csv")))
    assert [r["face_id"] for r in session] == ["0"]
    for var in ("fac_AU12int_mean", "fac_AU12int_std", "fac_AU12pres_pct", "fac_pspi_mean"):
        assert var in session[0] and session[0][var] != ""
    assert (tmp_path / "r_session.json").exists()


# iBUG 68 ids -> FRL London 189-point template ids (image-left = subject's right) for points both define alike
IBUG_TO_TEMPLATE = {36: 18, 39: 22, 42: 23, 45: 27, 48: 87, 54: 93}


def test_openface_landmark_names_hold_ibug_points_on_real_photos(tmp_path):
    """Shipped path: `rtface run` on the London photos; x_36/x_39/x_42/x_45 (eye corners) and x_48/x_54 (mouth
    corners) must be where the manual annotation puts those points (mesh points 36..54 are elsewhere)."""
    import subprocess
    import sys

    import numpy as np

    from tests.conftest import LONDON

    out = tmp_path / "london.csv"
    p = subprocess.run([sys.executable, "-m", "rtface", "run", "--source", str(LONDON / "neutral"), "--no-publish",
                        "--no-control", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    t = pcsv.read_csv(out)
    assert t.num_rows == 12 and set(t.column("success").to_pylist()) == {1}
    header = out.read_text().splitlines()[0]
    assert header.startswith("frame,face_id,timestamp,") and '"' not in header  # unquoted, like OpenFace's
    errors = []
    for row, jpg in enumerate(sorted((LONDON / "neutral").glob("*.jpg"))):
        tem = np.loadtxt(jpg.with_suffix(".tem"), skiprows=1, max_rows=189)
        iod = np.linalg.norm(tem[18] - tem[27])
        for i, k in IBUG_TO_TEMPLATE.items():
            xy = np.array([t.column(f"x_{i}")[row].as_py(), t.column(f"y_{i}")[row].as_py()])
            errors.append(np.linalg.norm(xy - tem[k]) / iod)
    assert np.mean(errors) < 0.05 and max(errors) < 0.12, (np.mean(errors), max(errors))


def test_result_tables_and_the_478_point_training_layout_do_not_mix(tmp_path):
    """The emotion trainer reads the public 478-point layout (x_0..x_477 normalised); an rtface result table, whose
    x_0..x_67 are iBUG points, is refused with a message saying which layout is which."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pytest

    from rtface.emotion.dataset import read_landmark_table
    from rtface.errors import DataError

    out = tmp_path / "r.parquet"
    cfg = config_from_dict({"source": {"spec": str(SAMPLE_VIDEO)}, "engine": {"max_frames": 3},
                            "publish": {"enabled": False}, "control": {"enabled": False},
                            "output": {"path": str(out)}, "stages": [{"kind": "landmarks"}]})
    Engine(cfg).run()
    t = pq.read_table(out)
    n = t.num_rows
    t = t.append_column("video_filename", pa.array(["v"] * n)).append_column(
        "frame_num", pa.array(range(n))).append_column("emotion", pa.array(["happy"] * n))
    pq.write_table(t, tmp_path / "labelled.parquet")
    with pytest.raises(DataError, match="rtface result table .* 478-point dataset layout"):
        read_landmark_table(tmp_path / "labelled.parquet")
