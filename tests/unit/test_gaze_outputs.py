"""Offline outputs: sample durations, merged_data.csv, percentages.csv, bar plot, overlay drawing."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from rtface.gaze.aoi import AOIConfig
from rtface.gaze.mapping import GazeMapping, map_track
from rtface.gaze.outputs import (aoi_summary, draw_overlay, sample_durations_ms, write_bar_plot, write_merged_csv,
                                 write_percentages_csv)
from rtface.gaze.track import GazeTrack


def test_sample_durations():
    t = np.array([0, 5, 10, 100, 105], dtype=np.int64) * 1_000_000
    assert sample_durations_ms(t).tolist() == pytest.approx([5, 5, 15, 5, 5])  # gap capped at 3 x median
    assert sample_durations_ms(t, max_gap_ms=1000).tolist() == pytest.approx([5, 5, 90, 5, 5])
    assert sample_durations_ms(np.zeros(0, np.int64)).size == 0


def _square_face() -> np.ndarray:
    lm = np.zeros((478, 3))
    lm[:, 0], lm[:, 1] = 50.0, 50.0
    lm[:468, 0] = np.linspace(20, 80, 468)  # bounding box 20..80 x 30..70
    lm[:468, 1] = np.linspace(30, 70, 468)
    lm[473, :2] = (60, 40)
    lm[468, :2] = (40, 40)
    lm[1, :2] = (50, 52)
    lm[61, :2], lm[291, :2], lm[0, :2], lm[17, :2] = (40, 62), (60, 62), (50, 60), (50, 64)
    return lm


def _mapping(mode: str) -> tuple[GazeMapping, AOIConfig]:
    ms = 1_000_000
    t = np.arange(6, dtype=np.int64) * 5 * ms
    x = np.array([60.0, 60.0, 40.0, 50.0, 5.0, 150.0])
    y = np.array([40.0, 40.0, 40.0, 52.0, 5.0, 50.0])
    tr = GazeTrack(t, x, y, np.ones(6), np.array([0, 20 * ms], np.int64), 100, 100, "test")
    cfg = AOIConfig(shape="pupil", mode=mode, radius_mode="px", eye_radius_px=5, nose_radius_px=4, mouth_margin_px=1,
                    gaze_radius_px=0)
    lm = _square_face()
    return map_track(tr, {0: [(7, lm)], 1: [(7, lm)]}, cfg), cfg


def test_merged_and_percentages(tmp_path):
    m, _ = _mapping("exclusive")
    assert m.labels == ["left_eye", "left_eye", "right_eye", "nose", "off_face", "off_image"]
    assert m.frame_index.tolist() == [0, 0, 0, 1, 1, 1] and m.face_id.tolist() == [7, 7, 7, 7, -1, -1]
    rows = list(csv.DictReader((write_merged_csv(tmp_path / "merged_data.csv", m)).open()))
    assert len(rows) == 6 and rows[2]["aoi"] == "right_eye" and rows[2]["right_eye"] == "1"
    assert rows[5]["off_image"] == "1" and rows[5]["face_id"] == "-1" and rows[3]["frame_timestamp_ns"] == "20000000"
    pct = {r["aoi"]: r for r in csv.DictReader(write_percentages_csv(tmp_path / "percentages.csv", m).open())}
    assert float(pct["left_eye"]["percent"]) == pytest.approx(100 * 2 / 6, abs=1e-3)
    assert float(pct["left_eye"]["dwell_ms"]) == pytest.approx(10.0)
    assert float(pct["mouth"]["percent"]) == 0.0
    png = write_bar_plot(tmp_path / "bars.png", m)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_multi_mode_columns():
    m, cfg = _mapping("multi")
    assert m.labels[0] == "left_eye|face" and m.labels[3] == "nose|face"
    s = {r["aoi"]: r for r in aoi_summary(m)}
    assert s["face"]["samples"] == 4 and sum(r["percent"] for r in s.values()) > 100.0
    img = np.zeros((100, 100, 3), np.uint8)
    draw_overlay(img, [(7, _square_face())], cfg, m.x_px, m.y_px, m.labels)
    assert img.any()
