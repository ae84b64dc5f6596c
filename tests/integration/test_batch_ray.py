"""`rtface batch --backend ray` against a real local Ray instance (started by the batch, stopped at its end): the
same Engine in Ray actors gives the same tables as the local worker processes; a bad input is retried and reported
without stopping the others; a rerun resumes from the same manifest."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray is not installed (pip install -c constraints.txt -e '.[test]' brings it)")

from rtface.output.tables import read_results  # noqa: E402
from tests.conftest import SAMPLE_VIDEO  # noqa: E402
from tests.integration.test_batch import batch, manifest  # noqa: E402


def test_ray_backend_runs_the_same_jobs_as_local_workers(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_VIDEO, src / "a.mp4")
    shutil.copy(SAMPLE_VIDEO, src / "b.mp4")
    data = SAMPLE_VIDEO.read_bytes()
    (src / "broken.mp4").write_bytes(data[: len(data) // 3])
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    p = batch(str(src), "--out", str(ray_out), "--backend", "ray", "--workers", "2", "--retries", "1", timeout=600)
    assert p.returncode == 2, p.stderr
    assert "2 ray worker(s)" in p.stderr and "2/3 input(s) done, 1 failed" in p.stderr
    (fail,) = [r for r in manifest(ray_out) if r["status"] == "failed"]
    assert fail["job"] == "broken" and fail["attempts"] == 2 and "broken.mp4" in fail["error"]
    q = batch(str(src / "a.mp4"), "--out", str(local_out), "--workers", "1")
    assert q.returncode == 0, q.stderr
    r, loc = read_results(ray_out / "a.parquet"), read_results(local_out / "a.parquet")
    assert r.num_rows == loc.num_rows == 72
    for col in ("frame", "face_id", "mp_x_1", "mp_y_477", "pose_Rx", "AU12_r"):
        np.testing.assert_array_equal(r.column(col).to_numpy(), loc.column(col).to_numpy(), err_msg=col)
    assert json.loads((ray_out / "a_session.json").read_text())["stats"]["frames"] == 72
    again = batch(str(src / "a.mp4"), str(src / "b.mp4"), "--out", str(ray_out), "--backend", "ray", timeout=300)
    assert again.returncode == 0 and "(0 to run, 2 input(s) already done)" in again.stderr
