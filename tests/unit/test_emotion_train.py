"""Round trip: synthetic landmark table (layout a) -> features through the live geometry + AU solver -> train ->
ONNX -> live EmotionStage gives the numpy model's predictions; and the CLI commands on the same table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rtface.emotion.dataset import from_table
from rtface.emotion.features import AUFeaturizer
from rtface.emotion.model import TrainOptions
from rtface.emotion.onnx_export import load_head
from rtface.emotion.synth import PrototypeSynth, landmark_table
from rtface.emotion.train import train_head
from rtface.records import Face, FrameMeta, FrameResult
from rtface.stages.emotion import EmotionParams, EmotionStage

CLASSES = ("neutral", "happiness", "surprise")


@pytest.fixture(scope="module")
def featurizer() -> AUFeaturizer:
    return AUFeaturizer()


@pytest.fixture(scope="module")
def table_path(tmp_path_factory, featurizer) -> Path:
    synth = PrototypeSynth(featurizer, [featurizer.template], seed=3)
    cols = landmark_table(synth, ("happiness", "surprise"), videos_per_class=6, frames=36, neutral_frames=12,
                          label_names={"happiness": "Happy", "surprise": "surprised"}, apex=3.5)
    path = tmp_path_factory.mktemp("emo") / "landmarks.parquet"
    pq.write_table(pa.table(cols), path)
    return path


@pytest.fixture(scope="module")
def trained(table_path, featurizer, tmp_path_factory):
    data = from_table(table_path, featurizer)
    out = tmp_path_factory.mktemp("model") / "head.onnx"
    report, model = train_head(data, out, split_by="video", opts=TrainOptions(kind="mlp", hidden=16, epochs=80),
                               version="test-1")
    return data, out, report, model


def test_table_features_and_split(trained) -> None:
    data, out, report, _ = trained
    assert set(data.labels) == set(CLASSES)  # synonyms "Happy"/"surprised" mapped
    assert data.summary["neutral_rule_per_video"] == {"video": 12}
    assert data.x.shape == (12 * 36, len(data.names))
    tr = report["training_data"]
    assert tr["test"]["videos"] >= 2 and tr["train"]["videos"] + tr["validation"]["videos"] + tr["test"]["videos"] == 12
    assert report["onnx_vs_numpy_max_abs"] < 1e-5
    assert out.with_suffix(".report.json").is_file() and out.with_suffix(".confusion.png").is_file()
    # expressive apex frames are separable: happiness vs surprise must not be confused on held-out videos
    cm = np.array(report["test"]["confusion_matrix"])
    assert cm[1, 2] + cm[2, 1] <= 0.2 * (cm[1].sum() + cm[2].sum())


def test_onnx_metadata(trained) -> None:
    data, out, _, _ = trained
    head = load_head(out)
    assert head.classes == CLASSES
    assert head.spec.kind == "au_intensity" and head.spec.names == tuple(data.names)
    assert head.version == "test-1"
    meta = head.metadata
    assert json.loads(meta["training_data"])["split_by"] == "video" and meta["created"]


def test_live_stage_matches_numpy_model(trained) -> None:
    data, out, _, model = trained
    stage = EmotionStage("emotion", EmotionParams(model_path=str(out)), au_names=tuple(data.names))
    stage.open()
    assert stage.names == CLASSES
    x = data.x[::7]
    got = []
    for start in range(0, len(x), 3):  # 3 faces per frame -> one batched run
        faces = [Face(i, 1.0, np.zeros(4, np.float32), np.zeros((478, 3), np.float32), au_intensity=row)
                 for i, row in enumerate(x[start:start + 3])]
        res = FrameResult(FrameMeta(start, 0, 0, 640, 480), faces=faces)
        stage.process(None, res)
        got += [f.emotion for f in res.faces]
    stage.close()
    got = np.array(got)
    ref = model.predict_proba(x)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.array_equal(got.argmax(axis=1), ref.argmax(axis=1))
    assert np.max(np.abs(got - ref)) < 1e-5


def test_cli_train_and_eval(table_path, tmp_path, capsys) -> None:
    from rtface.cli import main

    out = tmp_path / "cli_head.onnx"
    assert main(["train-emotion", "--data", str(table_path), "--out", str(out), "--model", "logreg",
                 "--epochs", "40", "--split-by", "person"]) == 0
    assert out.is_file() and "macro-F1" in capsys.readouterr().out
    rep_path = tmp_path / "eval.json"
    assert main(["eval-emotion", "--model", str(out), "--data", str(table_path), "--out", str(rep_path)]) == 0
    rep = json.loads(rep_path.read_text())
    assert rep["n"] == 12 * 36 and set(rep["per_class"]) == set(CLASSES)
    assert rep_path.with_suffix(".png").is_file()
