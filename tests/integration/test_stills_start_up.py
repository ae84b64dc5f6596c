"""A photo through `rtface run` does not load numba (rtface/kernels/jit.py): its kernels run as plain Python, its
AU floors come from the on-disk floor cache (rtface/au/floor_cache.py) after the first run, the second run reads
exactly what the first did, and the head pose is the one a sequence run (numba) gives for the same photo (the
kernels' plain and compiled paths are compared number by number in tests/unit/test_kernel_jit.py). Real CLI in
fresh interpreters, real MediaPipe."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from tests.conftest import MISC

RUN = ("import json, sys; from rtface.cli import main; "
       "rc = main(sys.argv[1:]); print(json.dumps({'rc': rc, 'numba': 'numba' in sys.modules}))")


def _run(*args: str) -> dict:
    p = subprocess.run([sys.executable, "-c", RUN, "run", *args, "--no-publish", "--no-control", "--no-analyze"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_a_photo_runs_without_numba_and_reads_what_numba_reads(tmp_path) -> None:
    photo = MISC / "single_face.jpg"
    first = _run("--source", str(photo), "--out", str(tmp_path / "a.csv"))  # may fill the floor cache
    assert first["rc"] == 0
    again = _run("--source", str(photo), "--out", str(tmp_path / "b.csv"))
    assert again == {"rc": 0, "numba": False}
    seq = _run("--source", str(photo), "--sequence", "--out", str(tmp_path / "c.csv"))
    assert seq == {"rc": 0, "numba": True}
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    cols = [c for c in a.columns if c.startswith("AU") and c.endswith("_r")]
    assert len(a) == len(b) == 1 and cols
    pd.testing.assert_frame_equal(a[cols], b[cols])
    # a one-frame sequence is not a still (no single-photo floors), so compare the pose, which both compute alike
    c = pd.read_csv(tmp_path / "c.csv")
    pose = [k for k in ("pose_Rx", "pose_Ry", "pose_Rz") if k in a.columns]
    assert pose
    pd.testing.assert_frame_equal(a[pose], c[pose], atol=1e-6)
