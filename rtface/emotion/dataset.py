"""Labelled emotion data -> AU features, through the same geometry and AU solve as the live pipeline.

Two layouts (``load_labelled``):

(a) a table (``.parquet`` or ``.csv``) of per-frame MediaPipe landmarks with columns ``video_filename``,
    ``frame_num``, ``emotion``, ``x_0..x_477``, ``y_0..y_477``, ``z_0..z_477`` (normalised MediaPipe coordinates:
    x, y in [0, 1] of the image width/height, z relative depth in units of the width). Optional ``person`` column
    (needed for ``split_by = "person"`` and ``neutral = "person"``; else each video is its own person).
    Coordinates are de-normalised with ``image_size`` (W, H) px, default 640x480: x*W, y*H, z*W.
(b) a folder with one sub-folder per class holding images (.jpg .jpeg .png .bmp) and/or videos (.mp4 .mov .avi
    .mkv .webm); every file goes through the real landmark stage (``static_image`` for photos, tracking for
    videos; one face per file), then the geometry + AU path. Person id = file name up to the first ``_`` or ``-``
    (e.g. ``001_03.jpg`` -> ``001``); video id = the file.

Neutral rule (``neutral``): see :mod:`rtface.emotion.features`; ``auto`` (default) = ``video`` for groups with at
least 30 frames, otherwise ``person`` when that person has neutral-labelled frames, otherwise the template.
Labels go through :func:`rtface.emotion.labels.normalise_labels`. Errors are DataError naming file/columns/rows.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rtface.emotion.features import AUFeaturizer, video_neutral
from rtface.emotion.labels import normalise_labels
from rtface.errors import ConfigError, DataError

N_LM = 478
LM_COLUMNS = [f"{a}_{i}" for a in "xyz" for i in range(N_LM)]
KEY_COLUMNS = ["video_filename", "frame_num", "emotion"]
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}
VIDEO_EXT = {".mp4", ".mov", ".avi", ".mkv", ".webm"}
NEUTRAL_CHOICES = ("auto", "video", "person", "template")
MIN_VIDEO_FRAMES = 30  # "auto": groups with at least this many frames estimate their own neutral


@dataclass
class LabelledFeatures:
    """Rows of AU features with their labels and grouping (one row per face frame)."""

    x: np.ndarray  # (N, K) float32 FACS 0-5
    labels: list[str]  # (N,) canonical class names
    videos: np.ndarray  # (N,) str video ids (split unit for split_by = "video")
    persons: np.ndarray  # (N,) str person ids (split unit for split_by = "person")
    names: tuple[str, ...]  # AU names of the columns
    summary: dict[str, Any] = field(default_factory=dict)


def _read_table(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".parquet":
            from rtface.output.tables import flatten

            return flatten(pq.read_table(path))  # an rtface result table in the compact layout reads flat
        if path.suffix.lower() == ".csv":
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types={"video_filename": pa.string(), "emotion": pa.string()}))
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"{path}: cannot read table: {exc}") from exc
    raise DataError(f"{path}: unsupported table type {path.suffix!r} (use .parquet or .csv)")


def _short_list(items: list[str], n: int = 12) -> str:
    return ", ".join(items[:n]) + (f" ... ({len(items)} in all)" if len(items) > n else "")


def read_landmark_table(path: str | Path, label_map: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Validate and read layout (a): dict with videos, frames, labels (canonical), persons, lm (N, 478, 3)."""
    p = Path(path)
    table = _read_table(p)
    cols = set(table.column_names)
    missing = [c for c in KEY_COLUMNS + LM_COLUMNS if c not in cols]
    if missing and "mp_x_0" in cols and "x_477" not in cols:
        raise DataError(f"{p}: this is an rtface result table (x_0..x_67 are the 68 iBUG points, the mesh is "
                        f"mp_x_0..mp_z_477 in px); training tables use the 478-point dataset layout "
                        f"({', '.join(KEY_COLUMNS)}, x_0..x_477, y_0..y_477, z_0..z_477 normalised to the image), "
                        f"or give a folder with one sub-folder of images/videos per class")
    if missing:
        raise DataError(f"{p}: missing column(s): {_short_list(missing)}")
    if table.num_rows == 0:
        raise DataError(f"{p}: the table has no rows")
    lm = np.stack([np.asarray(table.column(c).to_numpy(zero_copy_only=False), dtype=np.float64)
                   for c in LM_COLUMNS], axis=1)  # (N, 1434) x..., y..., z...
    bad = ~np.isfinite(lm)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        bad_cols = [LM_COLUMNS[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise DataError(f"{p}: NaN/inf landmark values in {len(rows)} row(s) (0-based data rows "
                        f"{_short_list([str(r) for r in rows], 8)}), column(s) {_short_list(bad_cols, 8)}")
    raw_labels = table.column("emotion").to_pylist()
    if any(v is None for v in raw_labels):
        rows = [str(i) for i, v in enumerate(raw_labels) if v is None]
        raise DataError(f"{p}: column 'emotion' is empty in row(s) {_short_list(rows, 8)}")
    labels = normalise_labels(raw_labels, f"{p}: column 'emotion'", label_map)
    videos = np.array([str(v) for v in table.column("video_filename").to_pylist()], dtype=object)
    frames = np.asarray(table.column("frame_num").to_numpy(zero_copy_only=False))
    persons = (np.array([str(v) for v in table.column("person").to_pylist()], dtype=object)
               if "person" in cols else videos.copy())
    lm = lm.reshape(len(lm), 3, N_LM).transpose(0, 2, 1)  # (N, 478, 3)
    return {"videos": videos, "frames": frames, "labels": labels, "persons": persons, "lm": lm, "path": str(p)}


def _neutral_for(rule: str, n_frames: int, has_person_neutral: bool) -> str:
    if rule != "auto":
        return rule
    if n_frames >= MIN_VIDEO_FRAMES:
        return "video"
    return "person" if has_person_neutral else "template"


def features_from_posefree(posefree: np.ndarray, labels: list[str], videos: np.ndarray, persons: np.ndarray,
                           order: np.ndarray, featurizer: AUFeaturizer, neutral: str) -> tuple[np.ndarray, Counter]:
    """AU features (N, K) for pose-free frames grouped by video (``order``: frame order key within a video)."""
    if neutral not in NEUTRAL_CHOICES:
        raise ConfigError(f"neutral rule {neutral!r} is not one of {NEUTRAL_CHOICES}")
    person_neutral: dict[str, np.ndarray] = {}
    by_person: dict[str, list[int]] = defaultdict(list)
    for i, (lab, per) in enumerate(zip(labels, persons)):
        if lab == "neutral":
            by_person[per].append(i)
    for per, idx in by_person.items():
        person_neutral[per] = np.median(posefree[idx], axis=0)
    x = np.zeros((len(posefree), len(featurizer.names)), dtype=np.float32)
    used: Counter = Counter()
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(videos):
        by_video[v].append(i)
    for v, idx in by_video.items():
        idx = sorted(idx, key=lambda i: order[i])
        per = persons[idx[0]]
        rule = _neutral_for(neutral, len(idx), per in person_neutral)
        if rule == "video":
            ref = video_neutral(posefree[idx])
        elif rule == "person" and per in person_neutral:
            ref = person_neutral[per]
        else:
            rule = "template"
            ref = None
        used[rule] += 1
        x[idx] = featurizer.aus(posefree[idx], ref)
    return x, used


def _summary(source: str, layout: str, labels: list[str], videos, persons, neutral_used: Counter,
             extra: dict[str, Any]) -> dict[str, Any]:
    return {"source": source, "layout": layout, "rows": len(labels), "videos": int(len(set(videos))),
            "persons": int(len(set(persons))), "class_counts": dict(sorted(Counter(labels).items())),
            "neutral_rule_per_video": dict(neutral_used), **extra}


def from_table(path: str | Path, featurizer: AUFeaturizer, *, image_size: tuple[int, int] = (640, 480),
               neutral: str = "auto", label_map: Mapping[str, str] | None = None) -> LabelledFeatures:
    """Layout (a) -> features (see module doc)."""
    w, h = image_size
    if w <= 0 or h <= 0:
        raise ConfigError(f"image size must be positive, got {w}x{h}")
    t = read_landmark_table(path, label_map)
    lm = t["lm"]
    px = np.empty_like(lm)
    px[..., 0] = lm[..., 0] * w
    px[..., 1] = lm[..., 1] * h
    px[..., 2] = lm[..., 2] * w
    posefree = np.zeros_like(px)
    for i in range(len(px)):
        try:
            posefree[i] = featurizer.posefree(px[i], w, h)
        except DataError as exc:
            raise DataError(f"{t['path']}: row {i} (video {t['videos'][i]!r}, frame {t['frames'][i]}): {exc}") \
                from exc
    x, used = features_from_posefree(posefree, t["labels"], t["videos"], t["persons"], t["frames"], featurizer,
                                     neutral)
    summ = _summary(str(path), "table", t["labels"], t["videos"], t["persons"], used,
                    {"image_size": [w, h]})
    return LabelledFeatures(x, t["labels"], t["videos"], t["persons"], featurizer.names, summ)


def _person_of(stem: str) -> str:
    return re.split(r"[_\-]", stem, maxsplit=1)[0] or stem


def _landmarks_of_file(path: Path, is_video: bool, stride: int) -> list[tuple[np.ndarray, int, int, int]]:
    """[(landmarks_px (478, 3), width, height, frame index)] of the first face in each (sampled) frame."""
    import cv2

    from rtface.records import FrameMeta, FrameResult
    from rtface.stages.landmarks import LandmarkParams, LandmarkStage

    stage = LandmarkStage("landmarks", LandmarkParams(static_image=not is_video, max_faces=1,
                                                      score_new_faces=False))
    stage.open()
    out = []
    try:
        if not is_video:
            img = cv2.imread(str(path))
            if img is None:
                raise DataError(f"{path}: cannot read image")
            frames = [img]
        else:
            cap = cv2.VideoCapture(str(path))
            if not cap.isOpened():
                raise DataError(f"{path}: cannot open video")
            frames = []
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                frames.append(img)
            cap.release()
        for i, img in enumerate(frames):
            h, w = img.shape[:2]
            res = FrameResult(FrameMeta(i, 0, int(i * 33_333_333), w, h, str(path)))
            stage.process(img, res)
            if res.faces and i % stride == 0:
                out.append((res.faces[0].landmarks_px, w, h, i))
    finally:
        stage.close()
    return out


def from_folder(root: str | Path, featurizer: AUFeaturizer, *, neutral: str = "auto",
                label_map: Mapping[str, str] | None = None, video_stride: int = 1) -> LabelledFeatures:
    """Layout (b) -> features (see module doc)."""
    root = Path(root)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    if not subdirs:
        raise DataError(f"{root}: no class sub-folders (expected one folder per emotion class)")
    class_of = dict(zip([d.name for d in subdirs], normalise_labels([d.name for d in subdirs],
                                                                    f"{root}: class folder", label_map)))
    pf_list, labels, videos, persons, order = [], [], [], [], []
    no_face: list[str] = []
    n_files = 0
    for d in subdirs:
        for f in sorted(d.iterdir()):
            ext = f.suffix.lower()
            if ext not in IMAGE_EXT | VIDEO_EXT:
                continue
            n_files += 1
            found = _landmarks_of_file(f, ext in VIDEO_EXT, max(1, video_stride))
            if not found:
                no_face.append(str(f.relative_to(root)))
            for lm, w, h, i in found:
                pf_list.append(featurizer.posefree(lm, w, h))
                labels.append(class_of[d.name])
                videos.append(str(f.relative_to(root)))
                persons.append(_person_of(f.stem))
                order.append(i)
    if not pf_list:
        raise DataError(f"{root}: no face found in any of {n_files} image/video file(s)")
    videos_a = np.array(videos, dtype=object)
    persons_a = np.array(persons, dtype=object)
    x, used = features_from_posefree(np.stack(pf_list), labels, videos_a, persons_a, np.array(order),
                                     featurizer, neutral)
    summ = _summary(str(root), "folder", labels, videos_a, persons_a, used,
                    {"files": n_files, "files_without_face": no_face})
    return LabelledFeatures(x, labels, videos_a, persons_a, featurizer.names, summ)


def load_labelled(path: str | Path, featurizer: AUFeaturizer, *, image_size: tuple[int, int] = (640, 480),
                  neutral: str = "auto", label_map: Mapping[str, str] | None = None,
                  video_stride: int = 1) -> LabelledFeatures:
    """A table file (layout a) or a class-folder tree (layout b)."""
    p = Path(path)
    if p.is_dir():
        return from_folder(p, featurizer, neutral=neutral, label_map=label_map, video_stride=video_stride)
    if p.is_file():
        return from_table(p, featurizer, image_size=image_size, neutral=neutral, label_map=label_map)
    raise DataError(f"{p}: no such file or folder")
