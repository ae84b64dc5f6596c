"""Eye signals as pure logic on constructed lid-ratio sequences, trailing windows, and the table layout of the
eye columns (mechanism tests; the real-frame checks are in tests/integration/test_eyes_real.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rtface.geometry.canonical_model import load_canonical_model
from rtface.geometry.eyes import lid_ratios
from rtface.output.columns import TableLayout
from rtface.signals.eye_state import EyeParams, EyeState
from rtface.signals.window import EventTimes, TrailingWindow

S = 1_000_000_000
FPS = 30


def feed(ratios, p: EyeParams | None = None):
    st = EyeState(p or EyeParams())
    return [st.update(int(i * S / FPS), r, r) for i, r in enumerate(ratios)], st


def test_lid_ratio_of_the_canonical_face_is_an_open_eye():
    l, r = lid_ratios(load_canonical_model().vertices_cm[:, :2] * np.array([1, -1]))
    assert 0.2 < l < 0.45 and abs(l - r) < 0.02  # symmetric template, open eyes
    with pytest.raises(ValueError, match="landmarks must be"):
        lid_ratios(np.zeros((10, 2)))


def test_baseline_is_the_persons_own_and_ignores_closures():
    out, st = feed([0.25] * 90 + [0.05] * 300)  # 3 s open (narrow eyes), then 10 s closed
    assert st.baseline_ready and st.baseline[0] == pytest.approx(0.25)
    assert out[89]["eye_closure_l"] == 0 and out[-1]["eye_closure_l"] == 1.0
    assert out[-1]["eyes_closed_s"] == pytest.approx(10.0, abs=0.05)  # a long closure did not become "open"


def test_blinks_episodes_and_rate():
    seq = ([0.30] * 27 + [0.03] * 3) * 40 + [0.30]  # a 100 ms blink every second for 40 s
    out, st = feed(seq)
    blinks = [x for x in out if x["blink"]]
    assert len(blinks) == 40 and all(x["blink_duration_ms"] == pytest.approx(100, abs=1) for x in blinks)
    assert all(math.isnan(x["blink_rate_min"]) for x in out[:30 * FPS - 1])  # less than 30 s seen
    assert out[-1]["blink_rate_min"] == pytest.approx(60, abs=3)
    assert out[-1]["perclos"] == pytest.approx(0.1, abs=0.01)  # 3 of every 30 frames >= 80 % closed
    long = feed([0.30] * 60 + [0.03] * 30 + [0.30] * 10)[0]  # a 1 s closure is not a blink
    assert sum(x["blink"] for x in long) == 0 and max(x["eyes_closed_s"] for x in long) == pytest.approx(0.967,
                                                                                                       abs=0.04)


def test_params_are_checked():
    with pytest.raises(ValueError, match="closed_off"):
        EyeParams(closed_on=0.2, closed_off=0.5).check("stage 'eyes'")
    with pytest.raises(ValueError, match="closed_ratio"):
        EyeParams(closed_ratio=1.0).check("stage 'eyes'")


def test_trailing_window_mean_coverage_and_gaps():
    w = TrailingWindow(10 * S, max_hold_ns=S)
    for t in range(0, 21):
        w.add(t * S, 1.0 if t >= 15 else 0.0)
    assert w.coverage_ns() == 10 * S and w.mean() == pytest.approx(0.5)
    w.add(25 * S, 0.0)  # a 5 s gap counts only 1 s (max_hold): 15-20 s and 20-21 s are covered
    assert w.coverage_ns() == 6 * S and w.mean() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="back in time"):
        w.add(24 * S, 0.0)
    e = EventTimes(5 * S)
    for t in (1, 2, 8):
        e.add(t * S)
    assert e.count(8 * S) == 1


def test_au45_columns_join_openface_au_blocks():
    lay = TableLayout(au_names=("AU01", "AU43"), extra_scalars=("pspi", "eye_closure_l", "AU45_r", "AU45_c"))
    assert lay.tail_columns() == ["AU01_r", "AU43_r", "AU45_r", "AU01_c", "AU43_c", "AU45_c", "pspi",
                                  "eye_closure_l"]


def test_listen_line_shows_the_eyes():
    from rtface.transport.messages import format_summary

    msg = {"frame": 3, "t_media_ns": 0, "t_publish_ns": 0, "t_capture_ns": 0,
           "faces": [{"id": 0, "confidence": 0.9, "eye_closure_l": 0.91, "eye_closure_r": 0.95, "AU45_c": 1.0,
                      "blink": 0.0}]}
    assert format_summary("rtface.v1.frame", msg).endswith("[#0 conf=0.90 eyes=0.91/0.95 closed]")
