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
