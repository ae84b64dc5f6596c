"""Classification report for an emotion head: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix
(JSON + PNG drawn with matplotlib's Agg backend).

Rows of the confusion matrix are true classes, columns predicted classes, both in the model's class order.
Macro-F1 averages the classes that occur in the evaluated data (a class the data lacks is reported with
``support`` 0 and left out of the mean). Labels the model does not know are a DataError naming them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rtface.errors import DataError


def classification_report(y_true: Sequence[str], y_pred_idx: np.ndarray, classes: Sequence[str],
                          where: str = "evaluation data") -> dict[str, Any]:
    """Metrics of predicted class indices against true class names (see module doc)."""
    pos = {c: i for i, c in enumerate(classes)}
    unknown = sorted({t for t in y_true if t not in pos})
    if unknown:
        raise DataError(f"{where}: label(s) {unknown} are not classes of the model ({list(classes)})")
    yt = np.array([pos[t] for t in y_true], dtype=np.int64)
    yp = np.asarray(y_pred_idx, dtype=np.int64)
    c = len(classes)
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (yt, yp), 1)
    per: dict[str, dict[str, float]] = {}
    f1s = []
    for i, name in enumerate(classes):
        tp = int(cm[i, i])
        support = int(cm[i].sum())
        predicted = int(cm[:, i].sum())
        prec = tp / predicted if predicted else 0.0
        rec = tp / support if support else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
        per[name] = {"precision": prec, "recall": rec, "f1": f1, "support": support}
        if support:
            f1s.append(f1)
    n = int(len(yt))
    return {
        "n": n,
        "accuracy": float(np.trace(cm) / n) if n else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per,
        "classes": list(classes),
        "confusion_matrix": cm.tolist(),
    }


def plot_confusion(report: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Row-normalised confusion matrix heat map with counts, written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report["confusion_matrix"], dtype=float)
    classes = report["classes"]
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(classes), 0.8 + 0.7 * len(classes)), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            if cm[i, j]:
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title(title or f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}", fontsize=9)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def write_report(report: dict[str, Any], json_path: str | Path, png_path: str | Path | None = None) -> None:
    """Write the JSON report (and the confusion PNG when ``png_path`` is given)."""
    p = Path(json_path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(report, indent=2, sort_keys=False), encoding="utf-8")
    if png_path is not None:
        plot_confusion(report, png_path)


def format_report(report: dict[str, Any]) -> str:
    """Readable text table of a report."""
    lines = [f"n = {report['n']}  accuracy = {report['accuracy']:.3f}  macro-F1 = {report['macro_f1']:.3f}",
             f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<10} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>8d}")
    return "\n".join(lines)


def evaluate_head(head: Any, data: Any, where: str = "evaluation data") -> dict[str, Any]:
    """Run an :class:`~rtface.emotion.onnx_export.OnnxHead` on :class:`~rtface.emotion.dataset.LabelledFeatures`
    (features mapped by AU name onto the model's input order) and report."""
    from rtface.emotion.features import feature_index

    idx = feature_index(head.spec.names, data.names, f"emotion model {head.path}")
    probs = head.run(data.x[:, idx]) if len(data.x) else np.zeros((0, len(head.classes)), np.float32)
    rep = classification_report(data.labels, probs.argmax(axis=1), head.classes, where)
    rep["model"] = str(head.path)
    rep["model_version"] = head.version
    rep["data"] = data.summary
    return rep
