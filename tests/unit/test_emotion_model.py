"""Numpy heads, ONNX export/loading and the live EmotionStage (pure logic on hand-built records), plus the shipped
default head's metadata and a few prototype checks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rtface.emotion.features import FeatureSpec
from rtface.emotion.model import TrainOptions, fit
from rtface.emotion.onnx_export import check_onnx_matches, export_onnx, load_head
from rtface.errors import ConfigError, StageError
from rtface.graph.stage import stage_class
from rtface.records import Face, FrameMeta, FrameResult
from rtface.stages.emotion import DEFAULT_MODEL, EmotionParams, EmotionStage

AUS = ("AU01", "AU04", "AU06", "AU12", "AU15")
CLS = ("neutral", "happiness", "sadness")


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0, 0], [0, 0, 2.5, 3.0, 0], [2.0, 2.0, 0, 0, 2.5]], dtype=float)
    y = rng.integers(0, 3, n)
    x = np.clip(centres[y] + rng.normal(0, 0.5, (n, 5)), 0, 5)
    return x.astype(np.float32), y


@pytest.fixture(scope="module", params=["logreg", "mlp"])
def exported(request, tmp_path_factory):
    xt, yt = _blobs(600, 0)
    xv, yv = _blobs(200, 1)
    model = fit(xt, yt, xv, yv, CLS, TrainOptions(kind=request.param, hidden=8, epochs=60, seed=2))
    path = tmp_path_factory.mktemp("m") / f"{request.param}.onnx"
    export_onnx(model, FeatureSpec(AUS), path, version="t", training_data={"rows": 600})
    return model, path


def _frame(rows, index=0, ready=True, still=False) -> FrameResult:
    """One frame at media time index / 30 s."""
    faces = [Face(i, 1.0, np.zeros(4, np.float32), np.zeros((478, 3), np.float32), neutral_ready=ready,
                  au_intensity=None if r is None else np.asarray(r, np.float32)) for i, r in enumerate(rows)]
    return FrameResult(FrameMeta(index, 0, int(index * 1e9 / 30), 640, 480, still=still), faces=faces)


def test_training_separates_blobs_and_onnx_matches(exported) -> None:
    model, path = exported
    x, y = _blobs(300, 9)
    assert (model.predict(x) == y).mean() > 0.95
    head = load_head(path)
    assert check_onnx_matches(head, model, x) < 1e-5
    assert head.classes == CLS and head.spec.names == AUS
    assert json.loads(head.metadata["training_data"]) == {"rows": 600}
    assert head.metadata["model_kind"] == model.kind


def test_training_is_deterministic() -> None:
    xt, yt = _blobs(200, 0)
    a = fit(xt, yt, xt, yt, CLS, TrainOptions(kind="mlp", hidden=4, epochs=5, seed=7))
    b = fit(xt, yt, xt, yt, CLS, TrainOptions(kind="mlp", hidden=4, epochs=5, seed=7))
    assert np.array_equal(a.predict_proba(xt), b.predict_proba(xt))
    with pytest.raises(ConfigError, match="model kind"):
        fit(xt, yt, xt, yt, CLS, TrainOptions(kind="svm"))


def test_stage_maps_au_order_batches_and_skips(exported) -> None:
    model, path = exported
    pipeline = ("AU15", "AU99", "AU12", "AU06", "AU04", "AU01")  # another order + an AU the model ignores
    st = EmotionStage("emotion", EmotionParams(model_path=str(path)), au_names=pipeline)
    st.open()
    rows = np.array([[3, 0, 0, 0, 2, 2], [0, 1, 3, 2.5, 0, 0]], np.float32)
    res = _frame([rows[0], None, rows[1], [np.nan] * 6])
    st.process(None, res)
    ref = model.predict_proba(rows[:, [5, 4, 3, 2, 0]])
    assert np.max(np.abs(res.faces[0].emotion - ref[0])) < 1e-5
    assert np.max(np.abs(res.faces[2].emotion - ref[1])) < 1e-5
    assert res.faces[1].emotion is None and res.faces[3].emotion is None and st.skipped_nonfinite == 1
    with pytest.raises(StageError, match=r"au_intensity has shape \(3,\)"):
        st.process(None, _frame([[0, 0, 0]]))
    st.close()
    st.close()


def test_stage_config_errors(exported, tmp_path) -> None:
    _, path = exported
    st = EmotionStage("emotion", EmotionParams(model_path=str(path)), au_names=("AU01", "AU04", "AU06", "AU12"))
    with pytest.raises(ConfigError, match=rf"{path.name}.*needs AU feature\(s\) \['AU15'\]"):
        st.open()
    with pytest.raises(ConfigError, match="file not found"):
        EmotionStage("e", EmotionParams(model_path=str(tmp_path / "none.onnx")), au_names=AUS).open()
    with pytest.raises(ConfigError, match="smoothing"):
        EmotionStage("e", EmotionParams(smoothing="kalman"))
    with pytest.raises(ConfigError, match="ema_tau_s"):
        EmotionStage("e", EmotionParams(smoothing="ema", ema_tau_s=0.0))
    with pytest.raises(StageError, match="before open"):
        EmotionStage("e", EmotionParams(model_path=str(path))).process(None, _frame([]))


def test_onnx_without_metadata_is_rejected(tmp_path) -> None:
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Softmax", ["features"], ["probabilities"], axis=-1)], "g",
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(tmp_path / "bare.onnx"))
    with pytest.raises(ConfigError, match=r"bare.onnx: metadata 'class_names' is missing"):
        load_head(tmp_path / "bare.onnx")


def test_ema_smoothing_and_neutral_gate(exported) -> None:
    """EMA on media time: weight 1 - exp(-dt / ema_tau_s) for the new frame; stills are never smoothed."""
    _, path = exported
    st = EmotionStage("emotion", EmotionParams(model_path=str(path), smoothing="ema", ema_tau_s=0.1,
                                               min_neutral_ready=True), au_names=AUS)
    st.open()
    a, b = [0, 0, 2.5, 3, 0], [2, 2, 0, 0, 2.5]
    r1, r2, r3 = _frame([a]), _frame([b], 1), _frame([a], 2, ready=False)
    for r in (r1, r2, r3):
        st.process(None, r)
    plain = EmotionStage("plain", EmotionParams(model_path=str(path)), au_names=AUS)
    plain.open()
    raw = _frame([b])
    plain.process(None, raw)
    w = 1.0 - np.exp(-(1 / 30) / 0.1)
    expect = w * raw.faces[0].emotion + (1 - w) * r1.faces[0].emotion
    assert np.max(np.abs(r2.faces[0].emotion - expect)) < 1e-6
    assert r3.faces[0].emotion is None and st.skipped_not_ready == 1
    s1, s2 = _frame([a], 3, still=True), _frame([b], 4, still=True)
    st.process(None, s1)
    st.process(None, s2)
    assert np.max(np.abs(s2.faces[0].emotion - raw.faces[0].emotion)) < 1e-6


def test_shipped_default_head() -> None:
    assert stage_class("emotion") is EmotionStage and DEFAULT_MODEL.is_file()
    st = EmotionStage("emotion", EmotionParams())
    st.open()
    assert st.names == ("neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt")
    head = st.head
    assert head.spec.kind == "au_intensity" and head.version == "2.2.1"
    names = head.spec.names
    proto = {"neutral": {}, "happiness": {"AU06": 3, "AU12": 3.5}, "surprise": {"AU01": 3, "AU02": 3, "AU26": 3},
             "sadness": {"AU01": 2.5, "AU04": 2, "AU15": 3}}
    x = np.zeros((len(proto), len(names)), np.float32)
    for i, aus in enumerate(proto.values()):
        for au, v in aus.items():
            x[i, names.index(au)] = v
    p = head.run(x)
    assert [st.names[j] for j in p.argmax(1)] == list(proto)
    assert np.allclose(p.sum(1), 1.0, atol=1e-5)
