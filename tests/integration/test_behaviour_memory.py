"""Bounded memory of the behaviour stage through the shipped path: `rtface run` with the packaged default config
plus one TOML line (a small ``history_max_frames`` so that a short run passes the cap several times) on the sample
video looped, 600 frames. The stage's history stops growing at the cap and says it decimated; its session values
that are streamed (frame count, duration, blinks, PERCLOS) equal `rtface analyze` of the result table, which reads
every frame. The long measurement (default cap, 36000 frames): benchmarks/bench_behaviour_memory.py."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rtface.config import CONFIG_DIR
from tests.conftest import SAMPLE_VIDEO


def test_capped_history_is_bounded_and_keeps_the_streamed_measures_exact(tmp_path):
    text = (CONFIG_DIR / "default.toml").read_text(encoding="utf-8")
    marker = 'kind = "behaviour"'
    assert marker in text
    cfg = tmp_path / "capped.toml"
    cfg.write_text(text.replace(marker, marker + "\nhistory_max_frames = 100", 1), encoding="utf-8")
    out = tmp_path / "r.parquet"
    p = subprocess.run([sys.executable, "-m", "rtface", "run", "--config", str(cfg), "--source", str(SAMPLE_VIDEO),
                        "--loop", "--max-frames", "600", "--out", str(out), "--no-control", "--no-publish",
                        "--alerts-endpoint", "", "--journal", str(tmp_path / "j.sqlite")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    stage = json.loads((tmp_path / "r_session.json").read_text())["stages"]["behaviour"]
    assert stage["history_max_frames"] == 100 and stage["history_decimations"] == 3  # 100 -> every 8th of 600
    live = stage["faces"]["0"]
    after_run = json.loads((tmp_path / "r_analysis.json").read_text())
    assert after_run["quality"]["decimated_history"]["0"]["frames_seen"] == 600
    assert after_run["quality"]["decimated_history"]["0"]["frames_kept"] <= 100
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(out.read_bytes())
    assert subprocess.run([sys.executable, "-m", "rtface", "analyze", str(copy)], capture_output=True,
                          timeout=300).returncode == 0
    offline = json.loads((tmp_path / "copy_analysis.json").read_text())
    assert "decimated_history" not in offline["quality"]
    exact = offline["faces"]["0"]
    assert exact["n_frames"] == live["n_frames"] == 600
    for k in ("duration_s", "blink_count", "mov_blink_count", "blink_dur_mean_ms", "mov_blinkdur_mean",
              "long_closures"):
        assert live[k] == pytest.approx(exact[k], rel=1e-9), k
    assert exact["blink_count"] >= 8  # the clip's blink, once per loop
    assert live["perclos"] == pytest.approx(exact["perclos"], abs=1 / 600)  # only the last frame's weight differs
