"""Shipped emotion head on real faces through the shipped path (``Engine`` with the packaged default config: real
MediaPipe -> canonical -> AU -> emotion, nothing forced), and the trainer's features = the live stages' output.

London Set (CC BY 4.0, tests/data/faces/london): 12 people, neutral NNN_03.jpg and smiling NNN_08.jpg, each photo
measured on its own (an image folder is a set of stills by default). The head's build split these people into
6 whose neutral faces carried the training data (001 005 017 034 043 064) and 6 kept for testing; the numbers
measured with head 2.2.1 are in rtface/data/emotion/MODEL_CARD.md. Sample video (rtface/data/samples/
single_face.mp4, neutral -> broad smile) as a sequence.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rtface.config import load_config, with_overrides
from rtface.graph.runner import Engine

ROOT = Path(__file__).resolve().parents[2]
LONDON = ROOT / "tests" / "data" / "faces" / "london"
PEOPLE = sorted(p.stem[:3] for p in (LONDON / "neutral").glob("*_03.jpg"))


def _engine(spec: str, images: str = "stills") -> Engine:
    cfg = with_overrides(load_config(), source={"spec": spec, "realtime": False, "images": images},
                         publish={"enabled": False}, control={"enabled": False})
    return Engine(cfg)


@pytest.fixture(scope="module")
def london_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("london")
    for pid in PEOPLE:
        shutil.copy(LONDON / "neutral" / f"{pid}_03.jpg", folder / f"{pid}_neutral.jpg")
        shutil.copy(LONDON / "smiling" / f"{pid}_08.jpg", folder / f"{pid}_smiling.jpg")
    return folder


@pytest.fixture(scope="module")
def london_engine(london_folder) -> dict[str, dict]:
    """{file name: {"top": class, "aus": (K,), "landmarks": (478, 3), "size": (w, h)}} from the Engine."""
    out = {}
    with _engine(str(london_folder)) as eng:
        for res in eng.results():
            assert res.meta.still and len(res.faces) == 1
            f = res.faces[0]
            assert f.emotion is not None and abs(float(f.emotion.sum()) - 1.0) < 1e-4
            out[eng.source.files[res.meta.index].name] = {
                "top": eng.names("emotion")[int(np.argmax(f.emotion))], "aus": f.au_intensity.copy(),
                "landmarks": f.landmarks_px.copy(), "size": (res.meta.width, res.meta.height)}
    assert len(out) == 24
    return out


@pytest.fixture(scope="module")
def sample_engine() -> list[dict | None]:
    """Per frame of the sample video (Engine, a sequence): first face's landmarks, AUs, happiness, media time."""
    rows: list[dict | None] = []
    with _engine("sample") as eng:
        for res in eng.results():
            f = res.faces[0] if res.faces else None
            rows.append(None if f is None else {
                "landmarks": (f.landmarks_px.copy(), res.meta.width, res.meta.height),
                "aus": f.au_intensity.copy(), "t_ns": res.meta.t_media_ns,
                "happiness": float(f.emotion[eng.names("emotion").index("happiness")])})
    return rows


def test_london_stills_through_the_engine(london_engine) -> None:
    """Measured with head 2.2.1: happiness on 8/12 smiles (3 read no AU12 on a single photo, 045's is called
    neutral), neutral on 10/12 neutral photos (008's reads AU04 3.5 and AU12 1.8: anger; 003's: contempt)."""
    smiles = [london_engine[f"{p}_smiling.jpg"]["top"] for p in PEOPLE]
    neutrals = [london_engine[f"{p}_neutral.jpg"]["top"] for p in PEOPLE]
    assert smiles.count("happiness") >= 8, smiles
    assert neutrals.count("neutral") >= 10, neutrals
    assert neutrals.count("happiness") <= 1, neutrals


def test_trainer_features_are_the_engine_aus(london_engine, sample_engine) -> None:
    """Mechanism: the trainer's featurizer (the canonical + AU stages it instantiates) gives exactly the AUs the
    Engine published for the same landmarks, for stills and for a sequence."""
    from rtface.emotion.features import AUFeaturizer

    fz = AUFeaturizer()
    names = sorted(london_engine)[:6]
    frames = [(london_engine[n]["landmarks"], *london_engine[n]["size"]) for n in names]
    got = fz.stills(frames)
    np.testing.assert_allclose(got, np.stack([london_engine[n]["aus"] for n in names]), atol=1e-5)
    rows = [r for r in sample_engine if r is not None]
    seq_lm, seq_aus, seq_t = [r["landmarks"] for r in rows], [r["aus"] for r in rows], [r["t_ns"] for r in rows]
    got = fz.sequence(seq_lm, times_s=[t / 1e9 for t in seq_t])
    np.testing.assert_allclose(got, np.stack(seq_aus), atol=1e-4)
    fz.close()


def test_sample_video_happiness_rises(sample_engine) -> None:
    """Measured with head 2.2.1: mean P(happiness) 0.40 in the first second (the smile starts near frame 16), 0.97 in
    the last second."""
    hap = [np.nan if r is None else r["happiness"] for r in sample_engine]
    assert len(hap) == 72
    first, last = np.nanmean(hap[:30]), np.nanmean(hap[-30:])
    assert last > first and last > 0.9, (first, last)


def test_eval_cli_on_london_class_folders(tmp_path, capsys) -> None:
    """Layout (b): neutral/ and smiling/ folders ("smiling" -> happiness), person = file-name prefix. Default rule:
    photos as stills (what `rtface run` does); ``--neutral person``: each person's neutral photo as an explicit
    neutral (the neutral photos then read no expression)."""
    from rtface.cli import main
    from rtface.stages.emotion import DEFAULT_MODEL

    out = tmp_path / "london.json"
    assert main(["eval-emotion", "--model", str(DEFAULT_MODEL), "--data", str(LONDON), "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["n"] == 24 and rep["data"]["persons"] == 12
    assert rep["data"]["neutral_rule_per_video"] == {"still": 24}
    assert rep["per_class"]["neutral"]["recall"] >= 10 / 12 and rep["per_class"]["happiness"]["recall"] >= 8 / 12
    assert out.with_suffix(".png").is_file() and "accuracy" in capsys.readouterr().out
    out2 = tmp_path / "london_person.json"
    assert main(["eval-emotion", "--model", str(DEFAULT_MODEL), "--data", str(LONDON), "--neutral", "person",
                 "--out", str(out2)]) == 0
    rep2 = json.loads(out2.read_text())
    assert rep2["data"]["neutral_rule_per_video"] == {"person": 24}
    assert rep2["per_class"]["neutral"]["recall"] == 1.0


def test_train_and_eval_on_a_folder_with_videos_and_images(tmp_path) -> None:
    """Layout (b) with a video: frames of happiness/*.mp4 go through the real pipeline as a sequence (every frame
    through the stages, every 12th a row); training splits by person and the exported head evaluates on the same
    folder."""
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
    assert rep["data"]["neutral_rule_per_video"] == {"still": 6, "video": 1}


def test_config_params_reach_the_featurizer(tmp_path) -> None:
    """Mechanism: ``AUFeaturizer(config)`` runs the stages with that config's parameters."""
    from rtface.emotion.features import AUFeaturizer

    cfg = load_config()
    stages = tuple(dataclasses.replace(sc, params=dataclasses.replace(sc.params, floor_quantile=0.0))
                   if sc.kind == "aus" else sc for sc in cfg.stages)
    fz = AUFeaturizer(dataclasses.replace(cfg, stages=stages))
    assert fz.aus.params.floor_quantile == 0.0 and fz.canonical.params == next(
        sc.params for sc in cfg.stages if sc.kind == "canonical")
    fz.close()
