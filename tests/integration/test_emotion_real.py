"""Shipped emotion head on real faces through the real stages (MediaPipe FaceMesh -> canonical -> AU -> emotion).

London Set (CC BY 4.0, tests/data/faces/london): 12 people, neutral NNN_03.jpg and smiling NNN_08.jpg. Each
person's neutral reference is THAT PERSON'S NEUTRAL PHOTO (canonical stage in ``file`` mode with the pose-free
landmarks of the neutral photo), so the neutral photos canonicalise to the template and check that "no
expression" reads as neutral; the smiling photos check happiness. Measured with head 1.0.0: 8/12 smiles top
class happiness, 12/12 neutral photos top class neutral. The live engine would use the online neutral instead.
Sample video (rtface/data/samples/single_face.mp4, neutral -> broad smile) through the Engine with the default
online neutral: mean P(happiness) measured 0.40 in the first second and 0.99 in the last.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from rtface.geometry.neutral import save_neutral
from rtface.records import FrameMeta, FrameResult
from rtface.stages.aus import AUParams, AUStage
from rtface.stages.canonical import CanonicalParams, CanonicalStage
from rtface.stages.emotion import EmotionParams, EmotionStage
from rtface.stages.landmarks import LandmarkParams, LandmarkStage

ROOT = Path(__file__).resolve().parents[2]
LONDON = ROOT / "tests" / "data" / "faces" / "london"
PEOPLE = sorted(p.stem[:3] for p in (LONDON / "neutral").glob("*_03.jpg"))


def _run(stages, img: np.ndarray, index: int = 0) -> FrameResult:
    res = FrameResult(FrameMeta(index, 0, 0, img.shape[1], img.shape[0], "photo"))
    for s in stages:
        s.process(img, res)
    assert len(res.faces) == 1
    return res


@pytest.fixture(scope="module")
def london_top_classes(tmp_path_factory) -> dict[str, tuple[str, str]]:
    tmp = tmp_path_factory.mktemp("neutrals")
    lm = LandmarkStage("landmarks", LandmarkParams(static_image=True, max_faces=1, score_new_faces=False))
    posefree_only = CanonicalStage("canonical", CanonicalParams(neutral_mode="none"))
    aus = AUStage("aus", AUParams())
    emo = EmotionStage("emotion", EmotionParams())
    for s in (lm, posefree_only, aus, emo):
        s.open()
    out = {}
    try:
        for pid in PEOPLE:
            neutral_img = cv2.imread(str(LONDON / "neutral" / f"{pid}_03.jpg"))
            smile_img = cv2.imread(str(LONDON / "smiling" / f"{pid}_08.jpg"))
            ref = _run([lm, posefree_only], neutral_img).faces[0].posefree_cm
            path = save_neutral(tmp / f"{pid}.npz", ref, 1, person=pid)
            canon = CanonicalStage("canonical", CanonicalParams(neutral_mode="file", neutral_file=str(path)))
            canon.open()
            tops = []
            for i, img in enumerate((neutral_img, smile_img)):
                face = _run([lm, canon, aus, emo], img, i).faces[0]
                assert face.emotion is not None and abs(float(face.emotion.sum()) - 1.0) < 1e-4
                tops.append(emo.names[int(np.argmax(face.emotion))])
            out[pid] = (tops[0], tops[1])
    finally:
        for s in (lm, posefree_only, aus, emo):
            s.close()
    return out


def test_london_smiles_read_as_happiness(london_top_classes) -> None:
    smiles = [s for _, s in london_top_classes.values()]
    neutrals = [n for n, _ in london_top_classes.values()]
    assert len(smiles) == 12
    assert smiles.count("happiness") >= 7, london_top_classes
    assert neutrals.count("happiness") <= 2, london_top_classes
    assert neutrals.count("neutral") >= 10, london_top_classes


def test_sample_video_happiness_rises() -> None:
    from rtface.config import config_from_dict
    from rtface.graph.runner import Engine

    cfg = config_from_dict({
        "source": {"spec": "sample", "realtime": False},
        "publish": {"enabled": False},
        "control": {"enabled": False},
        "stages": [{"kind": "landmarks", "max_faces": 1}, {"kind": "canonical"}, {"kind": "aus"},
                   {"kind": "emotion"}],
    }, "test")
    engine = Engine(cfg)
    hap = []
    for res in engine.results():
        names = engine.names("emotion")
        f = res.faces[0] if res.faces else None
        hap.append(float(f.emotion[names.index("happiness")]) if f is not None and f.emotion is not None
                   else np.nan)
    assert len(hap) == 72
    first, last = np.nanmean(hap[:30]), np.nanmean(hap[-30:])
    assert last > first and last > 0.5, (first, last)


def test_eval_cli_on_london_class_folders(tmp_path, capsys) -> None:
    """Layout (b): neutral/ and smiling/ folders ("smiling" -> happiness), person = file-name prefix, each
    person's neutral photo as the reference (``--neutral person``)."""
    import json

    from rtface.cli import main
    from rtface.stages.emotion import DEFAULT_MODEL

    out = tmp_path / "london.json"
    assert main(["eval-emotion", "--model", str(DEFAULT_MODEL), "--data", str(LONDON), "--neutral", "person",
                 "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["n"] == 24 and rep["data"]["persons"] == 12
    assert rep["data"]["neutral_rule_per_video"] == {"person": 24}
    assert rep["per_class"]["neutral"]["recall"] >= 10 / 12 and rep["per_class"]["happiness"]["recall"] >= 7 / 12
    assert out.with_suffix(".png").is_file() and "accuracy" in capsys.readouterr().out


def test_train_and_eval_on_a_folder_with_videos_and_images(tmp_path) -> None:
    """Layout (b) with a video: frames of happiness/*.mp4 go through the real pipeline; training splits by
    person and the exported head evaluates on the same folder."""
    import json
    import shutil

    from rtface.cli import main
    from tests.conftest import SAMPLE_VIDEO

    data = tmp_path / "data"
    (data / "happiness").mkdir(parents=True)
    (data / "neutral").mkdir()
    shutil.copy(SAMPLE_VIDEO, data / "happiness" / "p0_smile.mp4")
    for sid in ("001", "003", "005"):
        shutil.copy(LONDON / "smiling" / f"{sid}_08.jpg", data / "happiness" / f"{sid}_08.jpg")
        shutil.copy(LONDON / "neutral" / f"{sid}_03.jpg", data / "neutral" / f"{sid}_03.jpg")
    model = tmp_path / "head.onnx"
    assert main(["train-emotion", "--data", str(data), "--out", str(model), "--split-by", "person",
                 "--model", "logreg", "--video-stride", "12"]) == 0
    assert model.is_file()
    out = tmp_path / "eval.json"
    assert main(["eval-emotion", "--model", str(model), "--data", str(data), "--video-stride", "12",
                 "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["n"] == 6 + 6  # 6 photos + 72 video frames at stride 12
    assert rep["data"]["persons"] == 4
