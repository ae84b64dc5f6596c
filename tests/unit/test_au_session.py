"""Presence hysteresis, OpenDBM-style session variables and PSPI (pure logic, hand-computed expectations)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rtface.au.presence import PresenceTracker
from rtface.au.session import EMOTIONS, CompositeSpec, SessionAccumulator, au_number
from rtface.errors import ConfigError

NAMES = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
         "AU20", "AU23", "AU25", "AU26", "AU43")


def test_presence_timed_hysteresis_per_au_and_face() -> None:
    """Sequence: on after on_s of media time above presence_on, off after off_s below presence_off."""
    t = PresenceTracker(2, on_threshold=1.0, off_threshold=0.5, clear_threshold=3.0, on_s=0.05, off_s=0.09)
    seq = [1.2, 0.8, 1.2, 1.1, 1.1, 0.7, 0.4, 0.3, 0.6, 0.4, 0.4, 0.4, 0.4]
    want = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0]  # 30 fps: 0.067 s above, 0.1 s below
    got = []
    for i, v in enumerate(seq):
        p = t.update(7, np.array([v, 0.0]), i / 30.0)
        got.append(int(p[0]))
        assert not p[1]
    assert got == want
    assert t.present(8) is None  # other faces are independent
    assert not t.update(8, np.array([2.0, 2.0]), 0.0).any()  # first frame: needs clear evidence (3.0)
    assert t.update(8, np.array([2.0, 2.0]), 0.1).all()
    assert t.update(9, np.array([3.5, 0.0]), 0.0).tolist() == [True, False]  # clear: at once
    assert t.present(7).tolist() == [False, False]
    t.forget(8)
    assert t.present(8) is None and sorted(t.face_ids()) == [7, 9]


def test_presence_same_rule_at_any_frame_rate() -> None:
    for fps in (15.0, 30.0, 60.0):
        t = PresenceTracker(1, on_threshold=1.0, off_threshold=0.5, clear_threshold=5.0, on_s=0.1, off_s=0.1)
        on_at = next(i for i in range(100) if t.update(0, np.array([1.5]), i / fps)[0])
        assert on_at / fps == pytest.approx(0.1, abs=1.0 / fps + 1e-9)


def test_presence_stills_nan_and_config() -> None:
    t = PresenceTracker(3, on_threshold=1.0, off_threshold=1.0)
    assert t.update(0, np.array([1.0, 0.99, np.nan]), 0.0, still=True).tolist() == [True, False, False]
    assert t.update(0, np.array([np.nan, 1.5, 1.0]), 0.0, still=True).tolist() == [False, True, True]
    assert t.present(0) is None  # stills keep no state
    with pytest.raises(ConfigError):
        PresenceTracker(3, on_threshold=0.5, off_threshold=1.0)
    with pytest.raises(ConfigError):
        PresenceTracker(3, on_threshold=1.0, clear_threshold=0.5)
    with pytest.raises(ConfigError):
        PresenceTracker(3, on_s=-1.0)
    with pytest.raises(ValueError):
        t.update(0, np.zeros(4), 0.0)


def test_au_number_and_emotion_members() -> None:
    assert au_number("AU06") == 6 and au_number("AU43") == 43
    assert au_number("AU12_L") is None and au_number("pspi") is None
    spec = CompositeSpec(("AU06", "AU12", "AU15", "AU01"))
    keys = {e.key: e for e in spec.emotions}
    assert set(keys) == {"hap", "sad", "con", "sur", "fea", "dis"}  # anger (4+5+7+23) has no member here
    assert keys["dis"].members == (2,) and keys["dis"].missing == (9, 16)
    assert keys["hap"].members == (0, 1) and keys["hap"].missing == ()
    assert keys["sad"].members == (3, 2) and keys["sad"].missing == (4,)
    assert keys["con"].missing == (14,)
    assert set(EMOTIONS) == {"hap", "sad", "sur", "fea", "ang", "dis", "con"}


def test_emotion_soft_hard_and_pspi_by_hand() -> None:
    spec = CompositeSpec(NAMES)
    x = np.zeros(len(NAMES))
    p = np.zeros(len(NAMES), bool)
    i = {n: NAMES.index(n) for n in NAMES}
    x[i["AU06"]], p[i["AU06"]] = 3.0, True
    x[i["AU12"]], p[i["AU12"]] = 4.0, True
    x[i["AU04"]], p[i["AU04"]] = 2.0, True
    x[i["AU15"]] = 0.4  # not present: ignored by soft, blocks hard
    x[i["AU07"]] = 2.5
    x[i["AU09"]], x[i["AU10"]] = 1.0, 1.5
    x[i["AU43"]], p[i["AU43"]] = 0.3, True
    soft, hard, pres = spec.emotion(x, p)
    e = {s.key: j for j, s in enumerate(spec.emotions)}
    assert soft[e["hap"]] == pytest.approx((3 + 4) / (6 * 2))
    assert hard[e["hap"]] == pytest.approx((3 + 4) / (6 * 2)) and pres[e["hap"]] == 1
    assert soft[e["sad"]] == pytest.approx(2.0 / 6)  # only AU04 of 1+4+15 present
    assert hard[e["sad"]] == 0 and pres[e["sad"]] == 0
    assert soft[e["con"]] == pytest.approx(4.0 / 6)  # AU12 present, AU14 not
    # PSPI = AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43(binary) = 2 + 3 + 1.5 + 1
    assert spec.pspi(x, p) == pytest.approx(7.5)
    p[i["AU43"]] = False
    assert spec.pspi(x, p) == pytest.approx(6.5)
    # a basis without AU43/AU09: those terms count 0
    spec2 = CompositeSpec(("AU04", "AU06", "AU07", "AU10"))
    assert spec2.pspi(np.array([1.0, 2.0, 3.0, 0.5]), np.ones(4, bool)) == pytest.approx(1 + 3 + 0.5)


def test_session_summary_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    acc = SessionAccumulator(NAMES, pspi_threshold=2.0)
    frames = {1: [], 2: []}
    for t in range(40):
        for fid in (1, 2):
            x = np.clip(rng.normal(1.0, 1.2, len(NAMES)), 0, 5).astype(np.float32)
            p = x >= 1.0
            pspi = acc.add(fid, x, p)
            frames[fid].append((x.astype(np.float64), p, pspi))
    acc.add(3, np.zeros(len(NAMES)), np.zeros(len(NAMES), bool))  # a face seen once
    s = acc.summary()
    assert set(s) == {1, 2, 3}
    spec = acc.spec
    for fid in (1, 2):
        X = np.array([f[0] for f in frames[fid]])
        P = np.array([f[1] for f in frames[fid]])
        ps = np.array([f[2] for f in frames[fid]])
        d = s[fid]
        assert d["n_frames"] == 40
        j = NAMES.index("AU12")
        assert d["fac_AU12int_mean"] == pytest.approx(X[:, j].mean())
        assert d["fac_AU12int_std"] == pytest.approx(X[:, j].std(ddof=1))
        assert d["fac_AU12pres_pct"] == pytest.approx(P[:, j].mean())  # fraction 0-1, as OpenDBM's derive.py
        comps = [spec.emotion(x, p) for x, p, _ in frames[fid]]
        e = [em.key for em in spec.emotions].index("hap")
        soft = np.array([c[0][e] for c in comps])
        hard = np.array([c[1][e] for c in comps])
        assert d["fac_hapintsoft_mean"] == pytest.approx(soft.mean())
        assert d["fac_hapintsoft_std"] == pytest.approx(soft.std(ddof=1))
        assert d["fac_hapinthard_mean"] == pytest.approx(hard.mean())
        assert d["fac_happres_pct"] == pytest.approx(np.mean([c[2][e] for c in comps]))
        assert d["fac_pspi_mean"] == pytest.approx(ps.mean())
        assert d["fac_pspi_max"] == pytest.approx(ps.max())
        assert d["fac_pspi_pct"] == pytest.approx(np.mean(ps >= 2.0))
        for key in ("hap", "sad", "sur", "fea", "ang", "con"):
            assert f"fac_{key}intsoft_mean" in d and f"fac_{key}pres_pct" in d
        assert "fac_disintsoft_mean" in d  # 9 + 15 (AU16 missing from NAMES)
    assert math.isnan(s[3]["fac_AU12int_std"]) and s[3]["fac_AU12int_mean"] == 0.0
    assert acc.n_frames(3) == 1 and acc.n_frames(99) == 0
    acc.reset()
    assert acc.summary() == {}
