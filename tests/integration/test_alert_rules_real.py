"""The packaged rules on real video through `rtface run` with the packaged default config (shipped path):
a face that leaves raises exactly one face-lost alert (cleared only if the face returns), a clip without any
event raises nothing. Counted from the engine's journal."""
from __future__ import annotations

import subprocess
import sys

import cv2
import pyarrow.csv as pcsv

from rtface.alerts.journal import read_events
from tests.conftest import SAMPLE_VIDEO, VIDEO


def run(*args: str) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "rtface", "run", "--no-control", "--no-publish",
                        "--alerts-endpoint", "tcp://127.0.0.1:0", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def kinds(journal) -> list[tuple[str, str]]:
    return [(e["type"], e["rule"]) for e in read_events(journal, 10_000)]


def test_face_then_no_face_raises_exactly_one_face_lost(tmp_path):
    j, out = tmp_path / "j.sqlite", tmp_path / "r.csv"
    p = run("--source", str(VIDEO / "face_noface.mov"), "--journal", str(j), "--out", str(out))
    evs = read_events(j, 10_000)
    print("face_noface.mov:", [(e["type"], e["rule"], e["frame"], e["evidence"]) for e in evs])
    assert kinds(j) == [("raised", "face_lost")]  # never cleared: the face does not come back
    assert evs[0]["evidence"]["held_s"] >= 3.0 and evs[0]["frame"] > 72  # faces end at frame 72
    assert "alerts: raised 1, cleared 0, still open 1" in p.stderr
    t = pcsv.read_csv(out)  # the face part is the sample clip: its blink is in the file
    assert [i for i, v in enumerate(t.column("blink").to_pylist()) if v] == [30]  # ends frame 30 (26-29 closed)


def test_face_returns_and_the_alert_clears(tmp_path):
    """Built clip: the sample video (face), no_face.mp4 (3.3 s, no face), the sample video again."""
    clip = tmp_path / "back.mp4"
    vw = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
    for src in (SAMPLE_VIDEO, VIDEO / "no_face.mp4", SAMPLE_VIDEO):
        cap = cv2.VideoCapture(str(src))
        while True:
            ok, img = cap.read()
            if not ok:
                break
            vw.write(cv2.resize(img, (640, 360)))
        cap.release()
    vw.release()
    j = tmp_path / "j.sqlite"
    run("--source", str(clip), "--journal", str(j))
    evs = read_events(j, 10_000)
    print("face returns:", [(e["type"], e["rule"], e["frame"], e.get("reason")) for e in evs])
    assert kinds(j) == [("raised", "face_lost"), ("cleared", "face_lost")]
    assert evs[0]["frame"] > 72 and evs[1]["frame"] > 72 + 98 and evs[1]["reason"] == "condition_cleared"


def test_real_face_clip_without_event_raises_nothing(tmp_path):
    """The sample video (neutral to broad smile, one blink) looped for 15 s (the 5 s pain and 10 s distress windows
    fill), every packaged rule."""
    j = tmp_path / "j.sqlite"
    p = run("--source", str(SAMPLE_VIDEO), "--loop", "--max-frames", "450", "--journal", str(j))
    assert kinds(j) == []
    assert "alerts: raised 0, cleared 0, still open 0" in p.stderr
