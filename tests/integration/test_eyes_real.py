"""Eye closure, blinks and PERCLOS on real frames with real MediaPipe: FACSHuman AU43 rendered at known weights,
the London Set photos, the sample video's blink, and a video built from the renders where the eyes stay closed."""
from __future__ import annotations

import cv2
import numpy as np
import pyarrow.csv as pcsv
import pytest

from rtface.config import config_from_dict, load_config, with_overrides
from rtface.geometry.eyes import lid_ratios
from rtface.graph.runner import Engine
from rtface.signals.eye_state import EyeParams, EyeState
from tests.conftest import DATA, LONDON, SAMPLE_VIDEO, video_landmarks

RENDERS = DATA / "faces" / "rendered_au43"


def _static_landmarks(path) -> np.ndarray:
    import mediapipe as mp

    img = cv2.imread(str(path))
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as fm:
        res = fm.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    assert res.multi_face_landmarks, f"no face in {path}"
    return np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark], np.float32)


def _run(spec, *, stages=None, fps=None, out="") -> list:
    src = {"spec": str(spec), "realtime": False}
    if fps:
        src["fps"] = fps
    cfg = config_from_dict({"source": src, "publish": {"enabled": False}, "control": {"enabled": False},
                            "output": {"path": str(out)},
                            "stages": stages or [{"kind": "landmarks", "max_faces": 1}, {"kind": "eyes"}]})
    with Engine(cfg) as e:
        return [r for r in e.results()]


def test_rendered_au43_closure_rises_with_the_weight():
    rows = _run(RENDERS / "au43_*.png")  # weights 0, 0.25, 0.5, 0.75, 1.0 in name order
    x = [(r.faces[0].extras["eye_closure_l"], r.faces[0].extras["eye_closure_r"]) for r in rows]
    mean = [0.5 * (a + b) for a, b in x]
    print("AU43 weight -> closure (l, r):", [(w, round(a, 2), round(b, 2)) for w, (a, b) in
                                             zip((0, .25, .5, .75, 1), x)])
    assert all(b > a for a, b in zip(mean, mean[1:])), mean
    assert max(x[0]) < 0.3 and min(x[-1]) >= 0.8  # open reads open, FACSHuman's fully closed reads >= 80 % closed
    assert [r.faces[0].extras["AU45_c"] for r in rows] == [0, 0, 0, 1, 1]
    assert rows[-1].faces[0].extras["AU45_r"] >= 4.0


@pytest.mark.parametrize("name, closed", [("au43L_1.00.png", "l"), ("au43R_1.00.png", "r")])
def test_one_eye_closed_is_the_subjects_own_eye(name, closed):
    rl, rr = lid_ratios(_static_landmarks(RENDERS / name))
    st = EyeState(EyeParams())
    x = st.update(0, rl, rr)
    other = "r" if closed == "l" else "l"
    print(name, {k: round(v, 2) for k, v in x.items() if k.startswith("eye_closure")})
    assert x[f"eye_closure_{closed}"] >= 0.8 and x[f"eye_closure_{other}"] <= 0.2


def test_london_open_eyes_never_read_closed():
    """12 people, neutral and smiling photos: with the population prior (a single photo) no eye reads closed; with
    the person's own baseline (the neutral photo held for 2 s) the neutral reads ~0 and the smile stays open."""
    worst_prior, smiles = 0.0, []
    for neutral in sorted((LONDON / "neutral").glob("*.jpg")):
        n = lid_ratios(_static_landmarks(neutral))
        s = lid_ratios(_static_landmarks(LONDON / "smiling" / neutral.name.replace("_03", "_08")))
        prior = EyeState(EyeParams()).update(0, *n)
        worst_prior = max(worst_prior, prior["eye_closure_l"], prior["eye_closure_r"])
        assert prior["AU45_c"] == 0
        own = EyeState(EyeParams())
        for i in range(61):  # 2 s at 30 fps of the neutral photo: the person's open-eye baseline
            x = own.update(i * 33_333_333, *n)
        assert x["eye_closure_l"] <= 0.05 and x["eye_closure_r"] <= 0.05  # 0 unless below open_floor (person 003)
        y = own.update(61 * 33_333_333, *s)
        smiles.append(max(y["eye_closure_l"], y["eye_closure_r"]))
        assert y["AU45_c"] == 0
    print(f"London: worst closure of an open eye with the prior {worst_prior:.2f}; smiles with the own baseline "
          f"{[round(v, 2) for v in smiles]}")
    assert worst_prior < 0.5 and max(smiles) < 0.5


def test_sample_video_has_one_blink():
    """The sample video blinks once (frames 26-28, checked by eye); MediaPipe landmarks of the shared pass."""
    _, faces = video_landmarks(str(SAMPLE_VIDEO))
    st = EyeState(EyeParams())
    out = [st.update(int(i * 1e9 / 30), *lid_ratios(lm)) for i, lm in enumerate(faces)]
    closed = [i for i, x in enumerate(out) if x["AU45_c"]]
    blinks = [(i, x["blink_duration_ms"]) for i, x in enumerate(out) if x["blink"]]
    print("sample video: closed frames", closed, "blinks (end frame, ms)", blinks)
    assert closed and set(closed) <= set(range(25, 31))
    assert len(blinks) == 1 and 60 <= blinks[0][1] <= 200
    assert max(x["eyes_closed_s"] for x in out) < 0.2


def _video(path, frames: list[str], fps: int) -> None:
    imgs = {n: cv2.imread(str(RENDERS / n)) for n in set(frames)}
    h, w = next(iter(imgs.values())).shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for n in frames:
        vw.write(imgs[n])
    vw.release()


def test_built_sequence_eyes_closed_raises_microsleep_and_drowsiness(tmp_path):
    """60 s at 10 fps built from the renders: 30 s open with a one-frame blink every 5 s, then 2 s closed / 2 s open.
    Packaged default config (shipped path): blinks counted, PERCLOS ~ 25 % at the end, one microsleep alert
    (latching: stays until acknowledged) and one drowsiness (PERCLOS) alert, nothing else."""
    op, cl = "au43_0.00.png", "au43_1.00.png"
    seq = [cl if i % 50 == 49 else op for i in range(300)]
    seq += [cl if (i // 20) % 2 == 0 else op for i in range(300)]
    video = tmp_path / "closed.mp4"
    _video(video, seq, 10)
    out = tmp_path / "r.csv"
    cfg = with_overrides(load_config(), source={"spec": str(video), "realtime": False},
                         publish={"enabled": False}, control={"enabled": False}, output={"path": str(out)})
    cfg = _alerts_to(cfg, tmp_path / "j.sqlite")
    with Engine(cfg) as e:
        events = [ev for r in e.results() for ev in r.extras.get("alerts", [])]
        summary = e.summary["stages"]["alerts"]
    t = pcsv.read_csv(out)
    blink = t.column("blink").to_pylist()
    perclos = t.column("perclos").to_pylist()
    closed_s = t.column("eyes_closed_s").to_pylist()
    print("events", events, "blinks", [i for i, b in enumerate(blink) if b], "perclos end", perclos[-1],
          "max eyes_closed_s", max(closed_s))
    assert [i for i, b in enumerate(blink) if b and i < 300] == [50, 100, 150, 200, 250]
    assert 0.2 <= perclos[-1] <= 0.3 and 1.8 <= max(closed_s) <= 2.1
    assert [(ev["type"], ev["rule"]) for ev in events] == [("raised", "microsleep"), ("raised", "drowsiness")]
    assert summary["open"] == 2


def _alerts_to(cfg, journal):
    import dataclasses

    st = tuple(dataclasses.replace(s, params=dataclasses.replace(s.params, journal=str(journal), endpoint=""))
               if s.kind == "alerts" else s for s in cfg.stages)
    return dataclasses.replace(cfg, stages=st)


def test_au45_sits_where_openface_puts_it(tmp_path):
    """With the eyes stage, AU45_r / AU45_c join the AU blocks in OpenFace's relative order (its real header)."""
    from tests.integration.test_openface_columns import openface_header

    out = tmp_path / "r.csv"
    _run(SAMPLE_VIDEO, out=out, stages=[{"kind": "landmarks"}, {"kind": "canonical"}, {"kind": "aus"},
                                        {"kind": "eyes"}])
    ours = pcsv.read_csv(out).column_names
    shared = [c for c in openface_header() if c in ours]
    assert {"AU45_r", "AU45_c"} <= set(shared) and shared == [c for c in ours if c in shared]
    assert ours.index("AU45_r") == ours.index("AU43_r") + 1 and ours.index("AU45_c") == ours.index("AU43_c") + 1
