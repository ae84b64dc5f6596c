"""Behaviour analyses on synthetic signals with known answers (mechanism tests of rtface.analysis; the shipped
path on real video is tests/integration/test_analysis_real.py)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rtface.analysis import asymmetry, blinks, dyads, frames
from rtface.analysis.expressivity import Composites, bitbox_stats
from rtface.analysis.features import FaceAccumulator
from rtface.analysis.mesh import mirror_pairs, regions
from rtface.analysis.summary import session_measures
from rtface.analysis.table_input import posefree_from_mesh
from rtface.geometry.canonical_model import load_canonical_model

FPS = 30.0


def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    from rtface.analysis.kinematics import _rot as r

    return r(math.radians(pitch), math.radians(yaw), math.radians(roll))


def _table(faces: dict[int, dict[str, np.ndarray]]) -> pd.DataFrame:
    parts = []
    for fid, cols in faces.items():
        n = len(cols["timestamp"])
        parts.append(pd.DataFrame({"frame": np.arange(n), "face_id": fid, **cols}))
    return pd.concat(parts, ignore_index=True)


def test_sine_au_with_known_lag_gives_that_lag():
    t = np.arange(0, 30, 1 / FPS)
    lag = 0.5
    rng = np.random.default_rng(1)
    # a smooth random signal (sum of sines) so every window has one clear peak
    def sig(tt):
        return 2.5 + sum(np.sin(2 * np.pi * f * tt + p) for f, p in ((0.23, 0.1), (0.41, 1.3), (0.67, 2.2)))
    a = sig(t) + 0.05 * rng.standard_normal(len(t))
    b = sig(t - lag) + 0.05 * rng.standard_normal(len(t))
    df = _table({0: {"timestamp": t, "AU12_r": a, "AU12_c": (a > 1).astype(float)},
                 1: {"timestamp": t, "AU12_r": b, "AU12_c": (b > 1).astype(float)}})
    out = frames.dyads_table(df, dyad_signals=("AU12_r",))
    row = out[out.signal == "AU12_r"].iloc[0]
    assert row.xc_lag_median_s == pytest.approx(lag, abs=1 / FPS + 1e-9)
    assert row.xc_global_lag_s == pytest.approx(lag, abs=1 / FPS + 1e-9)
    assert row.xc_a_leads_frac > 0.9 and row.leader == "0"
    assert row.xc_peak_r_mean > 0.9
    # swapped roles: the other face leads, negative lag
    d = dyads.dyad_stats(t, b, t, a, names=("b", "a"))
    assert d["xc_lag_median_s"] == pytest.approx(-lag, abs=1 / FPS + 1e-9) and d["leader"] == "a"


def test_mirrored_face_gives_zero_asymmetry_anywhere():
    v = load_canonical_model().vertices_cm
    m = mirror_pairs()
    assert np.all(m[m] == np.arange(478))
    for yaw, pitch, roll in ((0, 0, 0), (25, -10, 8)):
        p = v @ _rot(yaw, pitch, roll).T + np.array([3.0, -2.0, 40.0])
        assert max(asymmetry.region_asymmetry(p).values()) < 1e-9
    # a real expression made symmetric: (face + mirror image) / 2 has zero asymmetry, the face itself does not
    rng = np.random.default_rng(0)
    face = v + 0.1 * rng.standard_normal(v.shape)
    sym = 0.5 * (face + (face * [-1, 1, 1])[m])
    assert asymmetry.region_asymmetry(sym)["face"] < 1e-9
    assert asymmetry.region_asymmetry(face)["face"] > 0.02


def test_one_sided_lift_gives_known_asymmetry():
    v = load_canonical_model().vertices_cm.copy()
    mouth_l = [i for i in regions()["mouth"] if v[i, 0] > 0.5]  # the subject's left mouth corner area
    v[mouth_l, 1] += 0.4
    a = asymmetry.point_asymmetry(v)
    # a one-sided shift of d moves the point d/2 from symmetry (and its partner by d/2), up to the plane fit
    assert np.median(a[mouth_l]) == pytest.approx(0.2, abs=0.03)
    assert np.median(a[mirror_pairs()[mouth_l]]) == pytest.approx(0.2, abs=0.03)


def test_lateral_au_difference():
    t = np.arange(0, 2, 1 / FPS)
    df = _table({0: {"timestamp": t, "AU12_r": np.full(len(t), 2.0), "AU12_c": np.ones(len(t)),
                     "AU12_L_r": np.full(len(t), 3.0), "AU12_R_r": np.full(len(t), 1.0)}})
    s = frames.session_table(df)
    assert s.loc[0, "au_asym_AU12_mean"] == pytest.approx(2.0)


def _feed(acc: FaceAccumulator, t: np.ndarray, pts: np.ndarray, poses=None) -> dict:
    for k, ti in enumerate(t):
        acc.add(float(ti), k, canonical=pts[k], pose=None if poses is None else poses[k])
    return acc.frame_table()


def test_head_motion_only_gives_zero_landmark_kinematics_after_pose_removal():
    v = load_canonical_model().vertices_cm
    t = np.arange(0, 3, 1 / FPS)
    yaw = 20 * np.sin(2 * np.pi * 0.5 * t)
    shift = 5 * np.sin(2 * np.pi * 0.3 * t)
    # the engine's canonical landmarks of a face whose head moves but whose expression does not: constant
    ft = _feed(FaceAccumulator(0), t, np.repeat(v[None], len(t), 0),
               [(0.0, y, 0.0, s, 0.0, 60.0) for y, s in zip(yaw, shift)])
    assert np.nanmax(ft["speed_face"]) == 0.0 and np.nanmax(ft["jerk_mouth"]) == 0.0
    assert np.nanmean(ft["head_angspeed"]) > 10  # the head itself moved (deg/s)
    # the fallback pose removal of a table without canonical columns: a rigidly moving, scaled mesh in "px"
    mesh = np.stack([((v @ _rot(y, 0, 0).T) * 12.0 + [300 + 10 * s, 200, 0]) * [1, -1, -1] for y, s in
                     zip(yaw, shift)])
    raw_speed = np.linalg.norm(np.diff(mesh[:, :468], axis=0), axis=2).mean() * FPS
    posefree = posefree_from_mesh(mesh)
    ft2 = _feed(FaceAccumulator(1), t, posefree)
    assert raw_speed > 50  # px/s before pose removal
    assert np.nanmax(ft2["speed_face"]) < 1e-6


def test_oscillating_region_gives_known_speed():
    v = load_canonical_model().vertices_cm
    t = np.arange(0, 10, 1 / 120.0)
    amp, f = 0.3, 1.0
    mouth = regions()["mouth"]
    pts = np.repeat(v[None], len(t), 0).copy()
    pts[:, mouth, 1] += amp * np.sin(2 * np.pi * f * t)[:, None]
    acc = FaceAccumulator(0, tau_s=0.0)
    ft = _feed(acc, t, pts)
    # mean |d/dt A sin(2 pi f t)| = 4 f A
    assert np.nanmean(ft["speed_mouth"]) == pytest.approx(4 * f * amp, rel=0.01)
    assert np.nanmean(ft["acc_mouth"]) == pytest.approx(4 * f * amp * 2 * np.pi * f, rel=0.02)
    assert np.nanmax(ft["speed_eyes"]) == 0.0
    m = session_measures(ft)
    assert math.isfinite(m["ldlj_mouth"]) and math.isnan(m["ldlj_eyes"])
    # smoother movement (lower frequency, same amplitude) has a higher LDLJ
    slow = np.repeat(v[None], len(t), 0).copy()
    slow[:, mouth, 1] += amp * np.sin(2 * np.pi * 0.25 * t)[:, None]
    rough = pts.copy()
    rough[:, mouth, 1] += 0.02 * np.sin(2 * np.pi * 9 * t)[:, None]
    m_slow = session_measures(_feed(FaceAccumulator(1, tau_s=0.0), t, slow))
    m_rough = session_measures(_feed(FaceAccumulator(2, tau_s=0.0), t, rough))
    assert m_rough["ldlj_mouth"] < m["ldlj_mouth"]


def test_head_angular_speed_and_range():
    t = np.arange(0, 2, 1 / FPS)
    yaw = 30.0 * t - 30  # 30 deg/s, from -30 to +30 deg
    acc = FaceAccumulator(0)
    for k, ti in enumerate(t):
        acc.add(float(ti), k, pose=(5.0, float(yaw[k]), 0.0, 0.0, 0.0, 60.0))
    m = session_measures(acc.frame_table())
    assert m["head_angspeed_mean"] == pytest.approx(30.0, rel=1e-3)
    assert m["head_yaw_range"] == pytest.approx(0.9 * 60 * (len(t) - 1) / len(t), rel=0.03)


def test_blinks_from_eye_closure_columns():
    t = np.arange(0, 60, 1 / FPS)
    c = np.zeros(len(t))
    starts = [5.0, 15.0, 25.0, 35.0, 45.0]
    for s in starts:
        c[(t >= s) & (t < s + 0.15)] = 1.0  # 150 ms blinks
    c[(t >= 50) & (t < 51)] = 0.9  # one long closure (1 s)
    df = _table({0: {"timestamp": t, "eye_closure_l": c, "eye_closure_r": c}})
    m = frames.session_table(df).loc[0]
    assert m.blink_count == 5 and m.long_closures == 1
    assert m.mov_blink_count == pytest.approx(5 / (t[-1] / 60), rel=1e-6)
    assert m.blink_dur_mean_ms == pytest.approx(150, abs=1e3 / FPS + 1e-6)
    assert m.mov_blinkdur_mean == pytest.approx(10.0, abs=1 / FPS)
    closed = (c >= 0.8).sum() / len(t)
    assert m.perclos == pytest.approx(closed, abs=1 / len(t))
    assert m.closure_source == "eye_closure"


def test_blinks_from_the_eyes_stage_blink_column():
    t = np.arange(0, 30, 1 / FPS)
    flag = np.zeros(len(t))
    dur = np.full(len(t), np.nan)
    for s in (3.0, 9.0, 21.0):
        k = int(round(s * FPS))
        flag[k], dur[k] = 1, 120.0
    df = _table({0: {"timestamp": t, "eye_closure_l": np.zeros(len(t)), "eye_closure_r": np.zeros(len(t)),
                     "blink": flag, "blink_duration_ms": dur}})
    m = frames.session_table(df).loc[0]
    assert m.blink_count == 3 and m.blink_dur_mean_ms == pytest.approx(120.0)
    assert m.mov_blinkdur_mean == pytest.approx(9.0, abs=1 / FPS)


def test_lid_ratio_fallback_finds_closed_eyes():
    v = load_canonical_model().vertices_cm[:, :2] * [20, -20] + [320, 240]  # a frontal face in px
    lo, hi = blinks.lid_ratios(v)
    assert 0.1 < lo < 0.6 and 0.1 < hi < 0.6
    closed = v.copy()
    for up, low in blinks.LEFT_LIDS + blinks.RIGHT_LIDS:
        closed[up] = closed[low] = 0.5 * (v[up] + v[low])
    ratios = np.array([lo] * 20 + [blinks.lid_ratios(closed)[0]] * 3 + [lo] * 20)
    c = blinks.closure_from_ratio(ratios)
    assert np.all(c[20:23] == 1.0) and np.all(c[:20] == 0.0)


def test_opendbm_composites_and_bitbox_activations():
    names = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU12", "AU15", "AU26")
    comp = Composites(names)
    x = np.zeros((1, len(names)))
    p = np.zeros_like(x)
    x[0, [4, 5]] = 3.0
    p[0, [4, 5]] = 1.0
    out = comp.compute(x, p)
    assert out["fac_hapintsoft"][0] == pytest.approx(6 / 12) and out["fac_hapinthard"][0] == pytest.approx(0.5)
    assert out["fac_posintsoft"][0] == pytest.approx(0.5)
    # hap (6+12) and con (12+14, AU14 not in this basis) are soft 0.5 each; every other emotion 0
    assert out["fac_comintsoft"][0] == pytest.approx(1.0 / len(comp.emotions))
    assert out["fac_comuppintsoft"][0] == pytest.approx(3 / 6) and out["fac_comlowintsoft"][0] == pytest.approx(0.5)
    t = np.arange(0, 60, 1 / FPS)
    sig = np.zeros((len(t), len(names)))
    for s in (10, 30, 50):  # three AU12 activations peaking at 3
        sig[:, 5] += 3 * np.exp(-0.5 * ((t - s) / 0.5) ** 2)
    st = bitbox_stats(t, sig, names)
    assert st["bbx_AU12_count"] == 3 and st["bbx_AU12_peak_mean"] == pytest.approx(3.0, abs=0.01)
    assert st["bbx_rate_min"] == pytest.approx(3 / (t[-1] / 60)) and st["bbx_diversity"] == 0.0
    sig2 = sig.copy()
    sig2[:, 0] = sig[:, 5]
    assert bitbox_stats(t, sig2, names)["bbx_diversity"] == pytest.approx(math.log(2) / math.log(len(names)))


def test_dataframe_api_checks_columns_and_ignores_frames_without_face():
    with pytest.raises(Exception, match="timestamp"):
        frames.session_table(pd.DataFrame({"face_id": [0]}))
    t = np.arange(0, 1, 1 / FPS)
    df = _table({0: {"timestamp": t, "AU12_r": np.ones(len(t)), "AU12_c": np.ones(len(t))},
                 -1: {"timestamp": t[:5] + 5, "AU12_r": np.full(5, np.nan), "AU12_c": np.full(5, np.nan)}})
    s = frames.session_table(df)
    assert list(s.index) == [0] and s.loc[0, "n_frames"] == len(t)
    f = frames.frame_features(df)
    assert len(f) == len(t) and "expressivity" in f.columns
