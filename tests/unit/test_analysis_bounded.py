"""Bounded memory of the live behaviour analysis (mechanism tests of rtface.analysis.features / blinks; the
Engine-level measurement is tests/integration/test_behaviour_memory.py): a capped history decimates evenly and
counts it, the rolling window never depends on the cap, and the blink measures streamed over every frame equal
the ones computed from the whole series."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rtface.analysis import blinks
from rtface.analysis.features import FaceAccumulator
from rtface.analysis.session import analyze_accumulators
from rtface.analysis.summary import window_measures

FPS = 30.0


def _closure(t: np.ndarray) -> np.ndarray:
    c = np.zeros(len(t))
    for s in np.arange(2.0, t[-1] - 1, 3.7):
        c[(t >= s) & (t < s + 0.15)] = 1.0  # 150 ms blinks every 3.7 s
    c[(t >= 20) & (t < 21.5)] = 0.9  # one long closure
    c[::97] = np.nan
    return c


def _feed(acc: FaceAccumulator, t: np.ndarray, c: np.ndarray, flag=None) -> None:
    rng = np.random.default_rng(0)
    for k, (ti, ci) in enumerate(zip(t, c)):
        blink = None if flag is None else (float(flag[k]), 120.0 if flag[k] else math.nan)
        acc.add(float(ti), k, confidence=1.0, pose=(rng.normal(), rng.normal(), 0.0, 0.0, 0.0, 60.0),
                closure=(float(ci), float(ci)), blink=blink)


def _capped_and_full(seconds: float, max_frames: int) -> tuple[np.ndarray, FaceAccumulator, FaceAccumulator]:
    """The same session fed to a capped accumulator (10-s recent window) and an uncapped one: (t, capped, full)."""
    t = np.arange(0, seconds, 1 / FPS)
    c = _closure(t)
    capped, full = FaceAccumulator(0, max_frames=max_frames, recent_s=10.0), FaceAccumulator(0)
    _feed(capped, t, c)
    _feed(full, t, c)
    return t, capped, full


def test_uncapped_history_keeps_every_frame():
    t = np.arange(0, 40, 1 / FPS)
    acc = FaceAccumulator(0)
    _feed(acc, t, _closure(t))
    assert acc.n == acc.seen == len(t) and acc.decimations == 0 and acc.stride == 1


def test_capped_history_decimates_evenly_and_stays_under_the_cap():
    t = np.arange(0, 200, 1 / FPS)  # 6000 frames
    acc = FaceAccumulator(0, max_frames=1000, recent_s=10.0)
    sizes = []
    for k, ti in enumerate(t):
        acc.add(float(ti), k, pose=(0.0, float(k % 7), 0.0, 0.0, 0.0, 60.0))
        sizes.append(acc.nbytes)
        assert acc.n <= 1000
    assert acc.seen == len(t) and acc.decimations == 3 and acc.stride == 8
    frames = acc.frame_table()["frame"]
    assert np.all(np.diff(frames) == 8) and frames[0] == 0  # every 8th frame of the whole session
    assert max(sizes) == sizes[len(t) // 2]  # the memory stopped growing long before the end


def test_rolling_window_is_the_same_with_and_without_the_cap():
    t, capped, full = _capped_and_full(120, 500)
    assert capped.decimations > 0
    a = window_measures(capped.recent_table(t[-1] - 10.0), float(t[-1]), 10.0)
    start = int(np.searchsorted(full.frame_table()["t"], t[-1] - 10.0, side="right"))
    b = window_measures(full.frame_table(start), float(t[-1]), 10.0)
    assert a.keys() == b.keys()
    assert all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)
    assert capped._rec.shape[0] <= 2 * 10 * FPS + 64  # the recent buffer holds about one window


@pytest.mark.parametrize("with_flag", [False, True])
def test_streamed_blinks_equal_the_whole_series(with_flag):
    t = np.arange(0, 90, 1 / FPS)
    c = _closure(t)
    flag = None
    if with_flag:
        flag = np.zeros(len(t))
        flag[[60, 400, 401, 1500, 2600]] = 1
    s = blinks.BlinkStream()
    for k, (ti, ci) in enumerate(zip(t, c)):
        s.add(float(ti), float(ci), None if flag is None else (float(flag[k]), 120.0 if flag[k] else math.nan))
    dur = None if flag is None else np.where(flag > 0, 120.0, np.nan)
    ref = blinks.blink_stats(t, c, blink_flag=flag, blink_dur_ms=dur)
    got = s.stats()
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12, nan_ok=True), k


def test_decimated_session_keeps_exact_counts_and_blinks():
    t, capped, full = _capped_and_full(300, 1000)
    a = analyze_accumulators({0: capped}).faces[0]
    b = analyze_accumulators({0: full}).faces[0]
    for k in ("n_frames", "duration_s", "blink_count", "long_closures", "mov_blink_count", "blink_dur_mean_ms",
              "mov_blinkdur_mean", "perclos"):
        assert a[k] == pytest.approx(b[k], rel=1e-6), k
    assert a["n_frames"] == len(t)
    q = analyze_accumulators({0: capped}).quality["decimated_history"][0]
    assert q == {"frames_seen": len(t), "frames_kept": capped.n, "stride": capped.stride,
                 "decimations": capped.decimations}
    # a mean from the kept (evenly spaced) frames is close to the one from every frame
    assert a["head_yaw_mean"] == pytest.approx(b["head_yaw_mean"], abs=0.1)
