"""Recording readers: real Pupil Player / Neon native files, a Neon CSV export written here, malformed inputs."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from rtface.errors import DataError
from rtface.gaze.readers import (detect_format, read_neon_csv, read_neon_native, read_pupil_player,
                                 read_recording, write_pupil_player)

PUPIL = Path(__file__).resolve().parents[1] / "data" / "pupil"


def test_pupil_player_real_export_flips_y():
    tr = read_pupil_player(PUPIL / "gazeclassify", size=(1088, 1080))
    assert len(tr) == 145 and tr.frame_t_ns.size == 58
    assert tr.t_ns.dtype == np.int64 and tr.frame_t_ns.dtype == np.int64 and tr.clock == "pupil_s"
    # first row: 65.30521819900001 s, norm (0.5661120134241441, 0.5405930978280526), origin bottom-left
    assert tr.t_ns[0] == 65_305_218_199
    assert tr.x_px[0] == pytest.approx(0.5661120134241441 * 1088)
    assert tr.y_px[0] == pytest.approx((1 - 0.5405930978280526) * 1080)
    assert tr.frame_t_ns[0] == 65_300_018_000 and tr.world_index[0] == 1910
    assert not tr.off_image.any()


def test_pupil_player_scene_size_from_video():
    tr = read_pupil_player(PUPIL / "gazeclassify_trial")
    assert (tr.width, tr.height) == (1088, 1080) and len(tr) == 2


def test_pupil_player_without_video_needs_size(tmp_path):
    for f in ("gaze_positions.csv", "world_timestamps.csv"):
        shutil.copy(PUPIL / "gazeclassify" / f, tmp_path / f)
    with pytest.raises(DataError, match="pass size"):
        read_pupil_player(tmp_path)


def test_neon_native_real():
    tr = read_neon_native(PUPIL / "neon_demo")
    assert len(tr) == 1788 and tr.frame_t_ns.size == 292 and tr.clock == "utc_ns"
    assert tr.worn is not None and tr.worn.all()
    assert np.all(np.diff(tr.t_ns) > 0)
    assert detect_format(PUPIL / "neon_demo") == "neon_native"


def test_neon_native_truncated_raw(tmp_path):
    for f in ("gaze ps1.time", "Neon Scene Camera v1 ps1.time"):
        shutil.copy(PUPIL / "neon_demo" / f, tmp_path / f)
    (tmp_path / "gaze ps1.raw").write_bytes((PUPIL / "neon_demo" / "gaze ps1.raw").read_bytes()[:-3])
    with pytest.raises(DataError, match="gaze ps1.raw"):
        read_neon_native(tmp_path)


def _write_neon_csv(folder: Path, rows: list[tuple], frames: list[int], header=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = header or ["section id", "recording id", "timestamp [ns]", "gaze x [px]", "gaze y [px]", "worn",
                        "fixation id", "blink id", "azimuth [deg]", "elevation [deg]"]
    with (folder / "gaze.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for t, x, y, worn in rows:
            w.writerow(["s1", "r1", t, x, y, worn, "", "", 0.0, 0.0])
    with (folder / "world_timestamps.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["section id", "recording id", "timestamp [ns]"])
        for t in frames:
            w.writerow(["s1", "r1", t])


T0 = 1_700_000_000_000_000_000


def test_neon_csv_export(tmp_path):
    rows = [(T0 + i * 5_000_000, 800.0 + i, 600.0 - i, 1.0 if i < 8 else 0.0) for i in range(10)]
    _write_neon_csv(tmp_path, rows, [T0 + k * 33_333_333 for k in range(3)])
    tr = read_recording(tmp_path)  # detected as neon_csv, default Neon scene size
    assert detect_format(tmp_path) == "neon_csv"
    assert len(tr) == 10 and (tr.width, tr.height) == (1600, 1200)
    assert tr.t_ns[3] == T0 + 15_000_000 and tr.x_px[3] == 803.0 and tr.y_px[3] == 597.0
    assert tr.worn.sum() == 8
    assert len(read_neon_csv(tmp_path, drop_not_worn=True)) == 8


def test_missing_column_names_file_and_column(tmp_path):
    _write_neon_csv(tmp_path, [(T0, 1.0, 2.0, 1.0)], [T0],
                    header=["section id", "recording id", "timestamp [ns]", "gaze x [px]", "gaze_y", "worn",
                            "fixation id", "blink id", "azimuth [deg]", "elevation [deg]"])
    with pytest.raises(DataError) as ei:
        read_neon_csv(tmp_path)
    assert "gaze.csv" in str(ei.value) and "'gaze y [px]'" in str(ei.value)
    pp = tmp_path / "pp"
    pp.mkdir()
    (pp / "gaze_positions.csv").write_text("gaze_timestamp,world_index,confidence,norm_pos_x\n1.0,0,1,0.5\n")
    (pp / "world_timestamps.csv").write_text("# timestamps [seconds],pts\n1.0,0\n")
    with pytest.raises(DataError, match=r"gaze_positions.csv: missing column 'norm_pos_y'"):
        read_pupil_player(pp, size=(100, 100))


def _pp(folder: Path, t, x, y) -> Path:
    write_pupil_player(folder, np.asarray(t, float), np.asarray(x, float), np.asarray(y, float),
                       np.array([0.0, 0.1, 0.2]), (200, 100), world_index=np.zeros(len(t), int))
    return folder


def test_unsorted_timestamps_sorted_or_strict(tmp_path):
    f = _pp(tmp_path, [0.00, 0.02, 0.01, 0.03], [10, 30, 20, 40], [5, 5, 5, 5])
    tr = read_pupil_player(f, size=(200, 100))
    assert np.all(np.diff(tr.t_ns) > 0)
    assert np.allclose(tr.x_px, [10, 20, 30, 40])  # samples travel with their timestamps
    assert any("sorted 2 out-of-order" in s for s in tr.issues)
    with pytest.raises(DataError, match="not sorted"):
        read_pupil_player(f, size=(200, 100), strict=True)


def test_duplicate_timestamps_dropped_or_strict(tmp_path):
    f = _pp(tmp_path, [0.00, 0.01, 0.01, 0.02, 0.02], [1, 2, 3, 4, 5], [5] * 5)
    tr = read_pupil_player(f, size=(200, 100))
    assert len(tr) == 3 and np.allclose(tr.x_px, [1, 2, 4])  # first of each duplicate kept
    assert any("dropped 2 duplicate" in s for s in tr.issues)
    with pytest.raises(DataError, match="duplicate"):
        read_pupil_player(f, size=(200, 100), strict=True)


def test_off_image_kept_and_nan_dropped(tmp_path):
    f = _pp(tmp_path, [0.00, 0.01, 0.02, 0.03], [10, -5, 250, 20], [5, 5, 5, 5])
    text = (f / "gaze_positions.csv").read_text().splitlines()
    cells = text[4].split(",")
    cells[3] = ""  # empty norm_pos_x -> NaN
    text[4] = ",".join(cells)
    (f / "gaze_positions.csv").write_text("\n".join(text) + "\n")
    tr = read_pupil_player(f, size=(200, 100))
    assert len(tr) == 3
    assert tr.off_image.tolist() == [False, True, True]
    assert any("NaN" in s for s in tr.issues) and any("2 samples off-image" in s for s in tr.issues)


def test_unknown_folder_and_format(tmp_path):
    with pytest.raises(DataError, match="not a Pupil Player export"):
        detect_format(tmp_path)
    with pytest.raises(DataError, match="unknown gaze recording format"):
        read_recording(PUPIL / "neon_demo", "tobii")
