"""The patient-specific face_lost rule on real video through `rtface run` with the packaged default config plus
one TOML line (``patient = "largest"``): the patient (the larger face, a real London photo) leaves for 5 s while a
visitor (a smaller real face) stays in view; face_lost fires once for the patient and clears when they return.
The same clip with the packaged config (any face counts) raises nothing, since a face is always in view.
Counted from the engine's journal."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtface.alerts.journal import read_events
from rtface.config import CONFIG_DIR
from tests.conftest import LONDON

FPS = 10.0


def _photo(rel: str, side: int) -> np.ndarray:
    img = cv2.imread(str(LONDON / rel))
    assert img is not None, rel
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)


def patient_visitor_clip(path: Path, away=(3.0, 8.0), duration_s: float = 11.0) -> Path:
    """Patient (001, 360 px) on the left, visitor (005, 240 px) on the right; the patient's place is empty
    (grey) during ``away`` s of media time."""
    patient, visitor = _photo("neutral/001_03.jpg", 360), _photo("neutral/005_03.jpg", 240)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (720, 360))
    assert vw.isOpened()
    for k in range(int(duration_s * FPS)):
        canvas = np.full((360, 720, 3), 128, np.uint8)
        if not away[0] <= k / FPS < away[1]:
            canvas[:, :360] = patient
        canvas[60:300, 440:680] = visitor
        vw.write(canvas)
    vw.release()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return patient_visitor_clip(tmp_path_factory.mktemp("patient") / "patient_visitor.mp4")


def _config(tmp: Path, line: str) -> Path:
    text = (CONFIG_DIR / "default.toml").read_text(encoding="utf-8")
    marker = 'kind = "alerts"'
    assert marker in text
    cfg = tmp / "patient.toml"
    cfg.write_text(text.replace(marker, marker + "\n" + line, 1), encoding="utf-8")
    return cfg


def run(*args: str) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "rtface", "run", "--no-control", "--no-publish",
                        "--alerts-endpoint", "tcp://127.0.0.1:0", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_patient_leaves_while_a_visitor_stays_raises_and_clears_one_face_lost(clip, tmp_path):
    j = tmp_path / "j.sqlite"
    run("--source", str(clip), "--config", str(_config(tmp_path, 'patient = "largest"')), "--journal", str(j))
    evs = read_events(j, 10_000)
    print("patient:", [(e["type"], e["rule"], e["frame"], e["evidence"]) for e in evs])
    assert [(e["type"], e["rule"]) for e in evs] == [("raised", "face_lost"), ("cleared", "face_lost")]
    raised, cleared = evs
    ev = raised["evidence"]
    assert ev["signal"] == "patient_face_count" and ev["faces_in_view"] == 1 and ev["patient_face_id"] == -1
    assert 60 <= raised["frame"] <= 70  # gone from frame 30 (3.0 s) + the 3 s onset
    assert 80 <= cleared["frame"] <= 95 and cleared["reason"] == "condition_cleared"  # back at frame 80, 1 s clear
    assert cleared["evidence"]["patient_face_id"] >= 0 and cleared["evidence"]["faces_in_view"] == 2
    assert "the patient's face" in raised["message"]


def test_same_clip_with_the_packaged_config_raises_nothing(clip, tmp_path):
    j = tmp_path / "j.sqlite"
    run("--source", str(clip), "--journal", str(j))
    assert [(e["type"], e["rule"]) for e in read_events(j, 10_000)] == []


def test_fixed_face_id_that_never_appears_raises_face_lost_once(clip, tmp_path):
    j = tmp_path / "j.sqlite"
    run("--source", str(clip), "--config", str(_config(tmp_path, 'patient = "id:99"')), "--journal", str(j))
    evs = read_events(j, 10_000)
    assert [(e["type"], e["rule"]) for e in evs] == [("raised", "face_lost")]
    assert evs[0]["evidence"]["faces_in_view"] >= 1  # other faces were in view all along
    assert 28 <= evs[0]["frame"] <= 32  # 3 s onset from the first frame


def test_bad_patient_value_is_a_config_error_naming_the_field(tmp_path):
    p = subprocess.run([sys.executable, "-m", "rtface", "run", "--no-control", "--no-publish",
                        "--config", str(_config(tmp_path, 'patient = "tallest"')), "--source", "x.mp4"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "patient" in p.stderr and "tallest" in p.stderr
