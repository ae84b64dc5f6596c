"""``rtface gaze`` end to end: real video, real MediaPipe, a Pupil Player export written next to it, real files."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import video_landmarks
from rtface.cli import main
from rtface.gaze.aoi import OFF_FACE
from rtface.gaze.cli import BAR_PLOT, MERGED, OVERLAY, PERCENTAGES, run_gaze
from rtface.gaze.readers import write_pupil_player

ROOT = Path(__file__).resolve().parents[2]
VIDEO = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
NEON = ROOT / "tests" / "data" / "pupil" / "neon_demo"
TARGETS = ("left_eye", "right_eye", "nose", "mouth", OFF_FACE)


def _landmarks_per_frame() -> list[np.ndarray]:
    """The shared landmark pass (MediaPipe FaceMesh, 478 points, px) over the sample video."""
    _, faces = video_landmarks(str(VIDEO))
    assert len(faces) == 72 and all(f is not None for f in faces)
    return [f[:, :2] for f in faces]


def _target(xy: np.ndarray, name: str) -> np.ndarray:
    points = {"left_eye": xy[473], "right_eye": xy[468], "nose": xy[1], "mouth": 0.5 * (xy[13] + xy[14])}
    return points.get(name, np.array([xy[:468, 0].min() - 40.0, xy[1, 1]]))  # off_face: 40 px left, nose height


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """200 Hz gaze dwelling 100 ms on each target in turn, 2 px noise; Pupil Player export + world.mp4."""
    lms = _landmarks_per_frame()
    rng = np.random.default_rng(11)
    frame_t = 50.0 + np.arange(72) / 30.0 + rng.uniform(-1e-3, 1e-3, 72)
    t = np.sort(50.0 + np.arange(0.0, 71.5 / 30.0, 0.005) + rng.uniform(-1e-3, 1e-3, 477))
    k = np.abs(t[:, None] - frame_t[None, :]).argmin(axis=1)
    truth = np.array([TARGETS[(i // 20) % len(TARGETS)] for i in range(t.size)])
    xy = np.array([_target(lms[j], name) for j, name in zip(k, truth)]) + rng.normal(0.0, 2.0, (t.size, 2))
    folder = tmp_path_factory.mktemp("recording")
    write_pupil_player(folder, t, xy[:, 0], xy[:, 1], frame_t, (640, 360), world_index=k)
    shutil.copy(VIDEO, folder / "world.mp4")
    return folder, truth


def _labels(path: Path) -> np.ndarray:
    with path.open(newline="") as fh:
        return np.array([row["aoi"] for row in csv.DictReader(fh)])


def test_gaze_command_subprocess(recording, tmp_path):
    folder, truth = recording
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "rtface", "gaze", "--recording", str(folder), "--format",
                           "pupil_player", "--out", str(out), "--aoi", "pupil", "--mode", "exclusive", "--overlay"],
                          capture_output=True, text=True, timeout=180, env=env, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in (MERGED, PERCENTAGES, BAR_PLOT, OVERLAY):
        assert (out / name).is_file() and (out / name).stat().st_size > 100, name
    labels = _labels(out / MERGED)
    acc = float(np.mean(labels == truth))
    print(f"\nrtface gaze (pupil shapes, iod radii): {truth.size} samples, accuracy {acc:.4f}")
    assert labels.size == truth.size and acc >= 0.98
    assert "477 samples" in proc.stdout and "dwell_ms" in proc.stdout and "left_eye" in proc.stdout
    with (out / PERCENTAGES).open(newline="") as fh:
        rows = {r["aoi"]: r for r in csv.DictReader(fh)}
    assert abs(sum(float(r["percent"]) for r in rows.values()) - 100.0) < 0.01  # exclusive: one label each
    assert int(rows["nose"]["samples"]) == int(np.sum(labels == "nose"))
    import cv2

    cap = cv2.VideoCapture(str(out / OVERLAY))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 72
    cap.release()


def test_radius_modes_on_small_face(recording, tmp_path):
    """Pupil-style fixed 30 px circles let the nose swallow the mouth on this ~150 px face; IOD-scaled ones do not."""
    folder, truth = recording
    acc = {}
    for mode in ("px", "iod"):
        run = run_gaze(folder, tmp_path / mode, aoi="pupil", radius_mode=mode)
        acc[mode] = float(np.mean(np.array(run.mapping.labels) == truth))
        assert run.frames == 72 and run.unserved == 0 and run.stage_errors == {}
    print(f"\npupil shapes on single_face.mp4: px radii {acc['px']:.4f}, iod radii {acc['iod']:.4f}")
    assert acc["iod"] >= 0.98
    assert acc["px"] < 0.85  # the mouth samples are labelled "nose"
    mesh = run_gaze(folder, tmp_path / "mesh", aoi="mesh", mode="multi", backend="detect")
    labels = np.array(mesh.mapping.labels)
    first = np.array([lab.split("|")[0] for lab in labels])
    assert float(np.mean(first == truth)) >= 0.98  # multi labels list the priority winner first
    assert all(lab.endswith("face") for lab in labels[truth != OFF_FACE])


def test_clear_errors(recording, tmp_path, capsys):
    assert main(["gaze", "--recording", str(NEON), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no scene video" in err and "--video" in err and "neon_demo" in err

    folder, _ = recording
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    gp = bad / "gaze_positions.csv"
    lines = gp.read_text().splitlines()
    gp.write_text("\n".join([lines[0].replace("norm_pos_y", "norm_y")] + lines[1:]) + "\n")
    assert main(["gaze", "--recording", str(bad), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "gaze_positions.csv" in err and "norm_pos_y" in err

    cells = lines[2].split(",")
    cells[1] = "x1"  # world_index of the second sample (file line 3)
    gp.write_text("\n".join(lines[:2] + [",".join(cells)] + lines[3:]) + "\n")
    assert main(["gaze", "--recording", str(bad), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "gaze_positions.csv" in err and "world_index" in err and "line 3" in err and "x1" in err

    assert main(["gaze", "--recording", str(folder), "--video", str(tmp_path / "none.mp4"),
                 "--out", str(tmp_path / "d")]) == 2
    assert "none.mp4" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
