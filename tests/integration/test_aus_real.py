"""AU read-out on real faces with real MediaPipe FaceMesh (refine_landmarks) and the shipped AU basis/stage defaults.

Evidence (London Set, CC BY 4.0, 12 people; neutral NNN_03.jpg, smiling NNN_08.jpg; rtface/data/samples/
single_face.mp4 neutral -> broad smile). Each person's neutral is estimated from a MOVED copy of the neutral photo
(rotated +-6 deg, scale 0.85, shifted 40/-25 px), so the neutral photo carries re-detection noise and is not
trivially zero; smiling and neutral photos are both canonicalized with that neutral. Measured with the basis of
2026-11-21 and the AU stage defaults (noise-aware soft threshold noise_t = 1, see rtface/stages/aus.py): AU12 smile
> neutral in 11/12 people, AU06 in 11/12; smile means AU06 2.51, AU12 2.15, AU09 1.41, AU04 0.52, AU01 0.02, AU02
0.03; video AU12 1.77 (first second) -> 4.52 (last second), AU09 1.89, AU04 0.77 in the last second.
(Before the noise-aware read-out: AU06 4.19, AU12 2.43, AU09 1.61; video AU12 1.92 -> 4.82.) With the photo's own neutral instead of the moved one, AU06 is
higher in the smile for only 10/12 people (not tested as a >= 90 % property; see report.md).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import video_landmarks
from rtface.geometry.camera import Intrinsics, metric_landmarks
from rtface.geometry.canonical_model import load_canonical_model
from rtface.geometry.neutral import canonicalize
from rtface.geometry.pose import PoseSolver
from rtface.records import Face, FrameMeta, FrameResult
from rtface.stages.aus import AUParams, AUStage

ROOT = Path(__file__).resolve().parents[2]
LONDON = ROOT / "tests" / "data" / "faces" / "london"
VIDEO = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
IDS = sorted(p.stem[:3] for p in (LONDON / "neutral").glob("*_03.jpg"))
TEMPLATE = load_canonical_model().vertices_cm


def _posefree(fm, solver: PoseSolver, bgr: np.ndarray) -> np.ndarray:
    h, w = bgr.shape[:2]
    res = fm.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert res.multi_face_landmarks, "no face found"
    px = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark])
    return solver.fit(metric_landmarks(px, Intrinsics.from_config(w, h))).posefree_cm


def _moved(img: np.ndarray, angle_deg: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 0.85)
    m[:, 2] += (40.0, -25.0)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


class _AUs:
    """The AU stage with default parameters on canonical landmarks (one face id per sample: no warm-start sharing)."""

    def __init__(self) -> None:
        self.stage = AUStage("aus", AUParams())
        self.stage.open()
        self.n = 0

    def __call__(self, canonical: np.ndarray) -> np.ndarray:
        face = Face(self.n, 1.0, np.zeros(4, np.float32), np.zeros((478, 3), np.float32),
                    canonical_cm=canonical.astype(np.float32), neutral_ready=True)
        res = FrameResult(FrameMeta(self.n, 0, 0, 640, 480, "test"), [face])
        self.stage.process(np.zeros((4, 4, 3), np.uint8), res)
        self.n += 1
        return np.asarray(face.au_intensity, dtype=np.float64)


@pytest.fixture(scope="module")
def results():
    import mediapipe as mp

    solver = PoseSolver()
    aus = _AUs()
    smile, neutral = [], []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        for k, sid in enumerate(IDS):
            n_img = cv2.imread(str(LONDON / "neutral" / f"{sid}_03.jpg"))
            s_img = cv2.imread(str(LONDON / "smiling" / f"{sid}_08.jpg"))
            ref = _posefree(fm, solver, _moved(n_img, (-1) ** k * 6.0))
            neutral.append(aus(canonicalize(_posefree(fm, solver, n_img), ref)))
            smile.append(aus(canonicalize(_posefree(fm, solver, s_img), ref)))
    sizes, lms = video_landmarks(str(VIDEO))  # the shared tracking-mode pass over the sample video
    frames = [solver.fit(metric_landmarks(lm, Intrinsics.from_config(*sz))).posefree_cm for sz, lm in zip(sizes, lms)]
    fps = 30
    assert len(frames) >= 2 * fps
    n0 = np.median(np.stack(frames[:10]), axis=0)
    video = np.array([aus(canonicalize(f, n0)) for f in frames])
    return aus.stage.names, np.array(smile), np.array(neutral), video[:fps], video[-fps:]


def test_smile_beats_neutral_for_90_percent(results) -> None:
    names, smile, neutral, _, _ = results
    i12, i6 = names.index("AU12"), names.index("AU06")
    n = len(smile)
    up12 = int((smile[:, i12] > neutral[:, i12]).sum())
    up6 = int((smile[:, i6] > neutral[:, i6]).sum())
    print(f"AU12 up in {up12}/{n}, AU06 up in {up6}/{n}")
    assert n == 12
    assert up12 >= 0.9 * n and up6 >= 0.9 * n


def test_smile_profile(results) -> None:
    """Plain smiles: AU12 among the two strongest AUs, AU06 present; AU09/AU04/AU01/AU02 below AU12."""
    names, smile, neutral, _, _ = results
    m = dict(zip(names, smile.mean(0)))
    print({k: round(float(v), 2) for k, v in m.items()})
    top2 = sorted(m, key=m.get, reverse=True)[:2]
    assert "AU12" in top2, top2
    assert m["AU06"] > 1.0
    assert m["AU12"] > m["AU09"] + 0.5 and m["AU12"] > m["AU04"] + 1.0
    assert m["AU01"] < 0.5 and m["AU02"] < 0.5
    # the noisy neutral stays near zero for the smile AUs
    mn = dict(zip(names, neutral.mean(0)))
    assert mn["AU12"] < 0.3 and mn["AU06"] < 1.5


def test_video_smile_onset(results) -> None:
    names, _, _, first, last = results
    f, la = first.mean(0), last.mean(0)
    i = {n: k for k, n in enumerate(names)}
    print("first second", dict(zip(names, f.round(2))), "last second", dict(zip(names, la.round(2))))
    assert la[i["AU12"]] > f[i["AU12"]] + 1.5
    assert int(np.argmax(la)) == i["AU12"]                      # AU12 is the strongest AU in the last second
    assert la[i["AU12"]] > max(la[i["AU09"]], la[i["AU04"]]) + 1.5
