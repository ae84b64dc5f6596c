"""Bad training input gives clear errors (missing columns, unknown labels, empty class, NaNs), labels map through
synonyms, and the CLI turns the errors into exit code 2 with the message."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from rtface.emotion.dataset import LM_COLUMNS, from_table, read_landmark_table, rule_for
from rtface.emotion.features import AUFeaturizer
from rtface.emotion.labels import CLASSES, normalise_labels, parse_label_map
from rtface.emotion.model import TrainOptions
from rtface.emotion.synth import PrototypeSynth, landmark_table
from rtface.emotion.train import split_groups, train_head
from rtface.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def featurizer() -> AUFeaturizer:
    return AUFeaturizer()


@pytest.fixture(scope="module")
def cols(featurizer) -> dict[str, list]:
    synth = PrototypeSynth(featurizer, [featurizer.template], seed=5)
    return landmark_table(synth, ("happiness", "sadness"), videos_per_class=3, frames=8, neutral_frames=3,
                          apex=3.0)


def _write(tmp_path: Path, cols: dict[str, list], name: str = "t.parquet") -> Path:
    path = tmp_path / name
    if name.endswith(".csv"):
        pacsv.write_csv(pa.table(cols), path)
    else:
        pq.write_table(pa.table(cols), path)
    return path


def test_missing_columns_are_named(tmp_path, cols) -> None:
    bad = {k: v for k, v in cols.items() if k not in ("emotion", "x_5", "z_477")}
    with pytest.raises(DataError, match=r"missing column\(s\): emotion, x_5, z_477"):
        read_landmark_table(_write(tmp_path, bad))


def test_unknown_labels_are_named_and_synonyms_map(tmp_path, cols) -> None:
    bad = dict(cols)
    bad["emotion"] = ["ecstatic" if i % 5 == 0 else lab for i, lab in enumerate(cols["emotion"])]
    with pytest.raises(DataError, match=r"unknown emotion label\(s\): 'ecstatic' \(10 rows\)"):
        read_landmark_table(_write(tmp_path, bad))
    assert normalise_labels(["Happy", " ANGRY ", "sad", "surprised", "scared", "disgusted", "neutral"], "x") == \
        ["happiness", "anger", "sadness", "surprise", "fear", "disgust", "neutral"]
    assert normalise_labels(["boredom"], "x", parse_label_map(["boredom=neutral"])) == ["neutral"]
    with pytest.raises(DataError, match="old=new"):
        parse_label_map(["nonsense"])


def test_nan_rows_and_columns_are_named(tmp_path, cols) -> None:
    bad = {k: list(v) for k, v in cols.items()}
    bad["y_100"][7] = float("nan")
    bad["z_3"][2] = float("nan")
    with pytest.raises(DataError, match=r"2 row\(s\) \(0-based data rows 2, 7\), column\(s\) y_100, z_3"):
        read_landmark_table(_write(tmp_path, bad, "t.csv"))


def test_empty_label_cell(tmp_path, cols) -> None:
    bad = dict(cols)
    bad["emotion"] = [None] + list(cols["emotion"][1:])
    with pytest.raises(DataError, match=r"column 'emotion' is empty in row\(s\) 0"):
        read_landmark_table(_write(tmp_path, bad))


def test_class_without_examples_is_named(tmp_path, cols, featurizer) -> None:
    data = from_table(_write(tmp_path, cols), featurizer)
    assert sorted(set(data.labels)) == ["happiness", "neutral", "sadness"]
    with pytest.raises(DataError, match=r"class\(es\) \['fear'\] have no examples"):
        train_head(data, tmp_path / "m.onnx", classes=("neutral", "happiness", "sadness", "fear"),
                   opts=TrainOptions(epochs=2))
    with pytest.raises(DataError, match=r"label\(s\) \['sadness'\] are not in the requested classes"):
        train_head(data, tmp_path / "m.onnx", classes=("neutral", "happiness"), opts=TrainOptions(epochs=2))


def test_neutral_rules_on_a_table(tmp_path, cols, featurizer) -> None:
    """auto = a video as a sequence (online person model); still = every row on its own; person = each person's
    neutral-labelled rows as an explicit neutral (those rows then read almost nothing)."""
    path = _write(tmp_path, cols)
    auto = from_table(path, featurizer)
    assert auto.summary["neutral_rule_per_video"] == {"video": 6}
    still = from_table(path, featurizer, neutral="still")
    assert still.summary["neutral_rule_per_video"] == {"still": 6}
    person = from_table(path, featurizer, neutral="person")
    assert person.summary["neutral_rule_per_video"] == {"person": 6}
    neutral_rows = np.array([lab == "neutral" for lab in person.labels])
    assert person.x[neutral_rows].sum(axis=1).mean() < 0.5 * person.x[~neutral_rows].sum(axis=1).mean()
    assert not np.array_equal(still.x, auto.x)
    assert rule_for("auto", 1, False, False) == "still" and rule_for("auto", 1, True, False) == "video"
    assert rule_for("person", 8, False, False) == "video" and rule_for("person", 1, False, True) == "person"
    with pytest.raises(ConfigError, match="'template' is not one of"):
        rule_for("template", 1, False, False)


def test_groups_do_not_share_state(cols, featurizer) -> None:
    """Mechanism: each group starts from a fresh face id with everything of the previous group forgotten, so the
    same frames give the same features whatever ran before."""
    lm = np.stack([np.asarray(cols[f"{a}_{i}"][:8]) for a in "xyz" for i in range(478)], axis=1)
    frames = [(np.stack([r[:478] * 640, r[478:956] * 480, r[956:] * 640], axis=1), 640, 480) for r in lm]
    first = featurizer.sequence(frames)
    featurizer.sequence(frames[::-1])
    assert np.array_equal(first, featurizer.sequence(frames))
    assert np.array_equal(featurizer.stills(frames[:2]), featurizer.stills(frames[:2]))


def test_split_never_shares_a_group() -> None:
    labels = ["happiness"] * 30 + ["sadness"] * 30 + ["neutral"] * 5
    groups = np.array([f"v{i // 5}" for i in range(60)] + ["solo"] * 5, dtype=object)
    held, single = split_groups(labels, groups, 0.3, seed=1)
    assert single == ["neutral"]
    for g in set(groups):
        assert len(set(held[groups == g])) == 1  # a video is wholly in or wholly out
    assert held[:30].any() and held[30:60].any() and not held[60:].any()


def test_cli_reports_data_errors_with_exit_2(tmp_path, cols, capsys) -> None:
    from rtface.cli import main

    bad = {k: v for k, v in cols.items() if k != "frame_num"}
    code = main(["train-emotion", "--data", str(_write(tmp_path, bad)), "--out", str(tmp_path / "m.onnx")])
    assert code == 2
    assert "missing column(s): frame_num" in capsys.readouterr().err
    assert main(["eval-emotion", "--model", str(tmp_path / "nope.onnx"), "--data", str(tmp_path)]) == 2
    assert "file not found" in capsys.readouterr().err


def test_classes_constant() -> None:
    assert CLASSES[0] == "neutral" and len(CLASSES) == 8 and len(LM_COLUMNS) == 1434
