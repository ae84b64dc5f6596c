"""Train an emotion head on labelled data, split by video or person, export ONNX, verify it, report.

Split (``split_groups``): the unit is a video (``split_by = "video"``) or a person (``"person"``); a unit's rows
all land in one of train / validation / test, never in two. Per class (by each unit's majority label) the units
are shuffled (seed) and ``test_fraction`` of them (at least one when the class has >= 2 units) go to test; the same
rule then takes ``val_fraction`` of the remaining units for early-stopping validation. A class with a single unit
stays in train only (noted in the report). A class the caller asked for (``classes``) with no rows is a DataError.

Outputs: the ONNX file, ``<out>.report.json`` (test metrics, split sizes, training data summary, ONNX-vs-numpy
max abs difference) and ``<out>.confusion.png`` (test confusion matrix).
"""
from __future__ import annotations

import datetime as _dt
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rtface.emotion.dataset import LabelledFeatures
from rtface.emotion.evaluate import classification_report, plot_confusion, write_report
from rtface.emotion.features import FeatureSpec
from rtface.emotion.labels import CLASSES
from rtface.emotion.model import SoftmaxModel, TrainOptions, fit
from rtface.emotion.onnx_export import check_onnx_matches, export_onnx, load_head
from rtface.errors import ConfigError, DataError

SPLITS = ("video", "person")


def split_groups(labels: Sequence[str], groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, list]:
    """Boolean mask of rows whose group goes to the held-out part, and the classes with a single group."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"split fraction must be in (0, 1), got {fraction}")
    rows_of: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        rows_of[str(g)].append(i)
    units_of: dict[str, list[str]] = defaultdict(list)
    for g, rows in sorted(rows_of.items()):
        majority = Counter(labels[i] for i in rows).most_common(1)[0][0]
        units_of[majority].append(g)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    single = []
    for cls in sorted(units_of):
        units = units_of[cls]
        rng.shuffle(units)
        if len(units) < 2:
            single.append(cls)
            continue
        n = min(len(units) - 1, max(1, int(round(fraction * len(units)))))
        for g in units[:n]:
            held[rows_of[g]] = True
    return held, single


def train_head(data: LabelledFeatures, out: str | Path, *, split_by: str = "video", classes: Sequence[str] = (),
               opts: TrainOptions = TrainOptions(), test_fraction: float = 0.2, val_fraction: float = 0.15,
               version: str = "", extra_summary: dict[str, Any] | None = None) -> tuple[dict[str, Any], SoftmaxModel]:
    """Train, export to ``out`` (.onnx), verify ONNX == numpy, evaluate on the test split.
    Returns (report, numpy model)."""
    if split_by not in SPLITS:
        raise ConfigError(f"split_by {split_by!r} is not one of {SPLITS}")
    present = [c for c in CLASSES if c in set(data.labels)] + sorted(set(data.labels) - set(CLASSES))
    wanted = list(classes) or present
    empty = [c for c in wanted if c not in set(data.labels)]
    if empty:
        raise DataError(f"{data.summary.get('source', 'training data')}: class(es) {empty} have no examples "
                        f"(present: {present})")
    extra = sorted(set(data.labels) - set(wanted))
    if extra:
        raise DataError(f"{data.summary.get('source', 'training data')}: label(s) {extra} are not in the requested "
                        f"classes {wanted}")
    if len(wanted) < 2:
        raise DataError(f"training needs at least 2 classes, got {wanted}")
    groups = data.videos if split_by == "video" else data.persons
    test, single = split_groups(data.labels, groups, test_fraction, opts.seed)
    trainval = np.flatnonzero(~test)
    lab_tv = [data.labels[i] for i in trainval]
    val_sub, _ = split_groups(lab_tv, groups[trainval], val_fraction, opts.seed + 1)
    tr, va, te = trainval[~val_sub], trainval[val_sub], np.flatnonzero(test)
    if len(va) == 0:
        raise DataError(f"not enough {split_by}s for a validation split ({len(set(groups))} in all)")
    y = np.array([wanted.index(lab) for lab in data.labels], dtype=np.int64)
    missing_train = [wanted[c] for c in range(len(wanted)) if not np.any(y[tr] == c)]
    if missing_train:
        raise DataError(f"class(es) {missing_train} have no examples in the training split")
    model = fit(data.x[tr], y[tr], data.x[va], y[va], tuple(wanted), opts)
    spec = FeatureSpec(names=tuple(data.names), basis=str(data.summary.get("basis", "")),
                       neutral=str(data.summary.get("neutral", "")))
    n_units = lambda rows: int(len(set(groups[rows])))  # noqa: E731
    summary = {**data.summary, **(extra_summary or {}), "split_by": split_by,
               "train": {"rows": int(len(tr)), split_by + "s": n_units(tr)},
               "validation": {"rows": int(len(va)), split_by + "s": n_units(va)},
               "test": {"rows": int(len(te)), split_by + "s": n_units(te)},
               "single_unit_classes_train_only": single, "options": asdict(opts)}
    version = version or _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d%H%M%S")
    out = Path(out)
    export_onnx(model, spec, out, version=version, training_data=summary)
    head = load_head(out)
    diff = check_onnx_matches(head, model, data.x)
    report: dict[str, Any] = {"model": str(out), "version": version, "onnx_vs_numpy_max_abs": diff,
                              "epochs": len(model.history), "best_val": _best(model), "training_data": summary}
    if len(te):
        report["test"] = classification_report([data.labels[i] for i in te], head.run(data.x[te]).argmax(axis=1),
                                               wanted, "test split")
        plot_confusion(report["test"], out.with_suffix(".confusion.png"))
    write_report(report, out.with_suffix(".report.json"))
    return report, model


def _best(model: SoftmaxModel) -> dict[str, float]:
    if not model.history:
        return {}
    return max(model.history, key=lambda h: (h["val_macro_f1"], -h["val_loss"]))
