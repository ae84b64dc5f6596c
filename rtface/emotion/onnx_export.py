"""Export a :class:`~rtface.emotion.model.SoftmaxModel` to ONNX and load ONNX heads for inference.

Graph (opset 17, float32): input ``features`` [N, D] -> Sub(mean) -> Mul(1/std) -> (MatMul, Add, Relu)* ->
MatMul, Add -> Softmax(axis=-1) -> output ``probabilities`` [N, C]. The standardisation is part of the graph, so
a consumer feeds raw FACS intensities in the order of ``feature_spec.names``.

``metadata_props`` (all strings): ``class_names`` (JSON list), ``feature_spec`` (JSON, see
:mod:`rtface.emotion.features`), ``version``, ``created`` (ISO UTC), ``training_data`` (JSON summary), ``model_kind``.

Exporting needs the optional ``onnx`` package (extra ``train``); loading needs only onnxruntime + numpy.
:class:`OnnxHead` owns one InferenceSession (CPU, 1 intra-op thread); call ``run`` from one thread at a time.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtface.emotion.features import FeatureSpec
from rtface.emotion.model import SoftmaxModel
from rtface.errors import ConfigError, DataError

OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
FORMAT_VERSION = "rtface-emotion-1"


def export_onnx(model: SoftmaxModel, spec: FeatureSpec, path: str | Path, *, version: str,
                training_data: dict[str, Any]) -> Path:
    """Write ``model`` as ONNX to ``path`` with the metadata above. Returns the path."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ConfigError("exporting an emotion head needs the optional 'onnx' package "
                          "(pip install 'rtface[train]')") from exc
    if len(spec.names) != model.n_features:
        raise DataError(f"feature spec has {len(spec.names)} names but the model takes {model.n_features} features")
    d, c = model.n_features, len(model.classes)
    inits = [numpy_helper.from_array(model.mean.astype(np.float32), "mean"),
             numpy_helper.from_array(model.inv_std.astype(np.float32), "inv_std")]
    nodes = [helper.make_node("Sub", [INPUT_NAME, "mean"], ["centred"]),
             helper.make_node("Mul", ["centred", "inv_std"], ["z0"])]
    h = "z0"
    for i, (w, b) in enumerate(model.layers):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"W{i}"),
                  numpy_helper.from_array(b.astype(np.float32), f"b{i}")]
        nodes += [helper.make_node("MatMul", [h, f"W{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"lin{i}"])]
        h = f"lin{i}"
        if i < len(model.layers) - 1:
            nodes.append(helper.make_node("Relu", [h], [f"relu{i}"]))
            h = f"relu{i}"
    nodes.append(helper.make_node("Softmax", [h], [OUTPUT_NAME], axis=-1))
    graph = helper.make_graph(
        nodes, "rtface_emotion_head",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", d])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", c])],
        initializer=inits,
    )
    proto = helper.make_model(graph, producer_name="rtface", opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = 8  # readable by onnxruntime >= 1.17 (the project's floor)
    meta = {
        "class_names": json.dumps(list(model.classes)),
        "feature_spec": spec.to_json(),
        "version": version,
        "format": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "training_data": json.dumps(training_data, sort_keys=True),
        "model_kind": model.kind,
    }
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(proto)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    return out


@dataclass
class OnnxHead:
    """A loaded ONNX emotion head: session + metadata (see module doc)."""

    path: Path
    session: Any
    classes: tuple[str, ...]
    spec: FeatureSpec
    metadata: dict[str, str]
    input_name: str
    output_name: str

    @property
    def version(self) -> str:
        return self.metadata.get("version", "")

    def run(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features in spec order -> (N, C) float32 probabilities."""
        x = np.ascontiguousarray(features, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]


def load_head(path: str | Path) -> OnnxHead:
    """Open an ONNX head with onnxruntime (CPU, 1 thread); ConfigError naming the file on any problem."""
    import onnxruntime as ort

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"emotion model {p}: file not found")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        sess = ort.InferenceSession(str(p), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ConfigError(f"emotion model {p}: onnxruntime cannot load it: {exc}") from exc
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    for key in ("class_names", "feature_spec"):
        if key not in meta:
            raise ConfigError(f"emotion model {p}: metadata '{key}' is missing (not an rtface emotion head?)")
    try:
        classes = tuple(str(c) for c in json.loads(meta["class_names"]))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"emotion model {p}: metadata 'class_names' is not a JSON list: {exc}") from exc
    spec = FeatureSpec.from_json(meta["feature_spec"], f"emotion model {p}")
    inputs, outputs = sess.get_inputs(), sess.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise ConfigError(f"emotion model {p}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
    d = inputs[0].shape[-1] if inputs[0].shape else None
    if isinstance(d, int) and d != len(spec.names):
        raise ConfigError(f"emotion model {p}: input width {d} does not match feature_spec with "
                          f"{len(spec.names)} names")
    c = outputs[0].shape[-1] if outputs[0].shape else None
    if isinstance(c, int) and c != len(classes):
        raise ConfigError(f"emotion model {p}: output width {c} does not match {len(classes)} class_names")
    return OnnxHead(p, sess, classes, spec, meta, inputs[0].name, outputs[0].name)


def check_onnx_matches(head: OnnxHead, model: SoftmaxModel, features: np.ndarray, tol: float = 1e-5) -> float:
    """Max |ONNX - numpy| over the given features; DataError if above ``tol``."""
    diff = float(np.max(np.abs(head.run(features) - model.predict_proba(features)))) if len(features) else 0.0
    if not diff < tol:
        raise DataError(f"{head.path}: ONNX Runtime output differs from the numpy model by {diff:.3g} (> {tol})")
    return diff
