"""Labelled emotion data -> AU features, through the live stages (the same landmark, canonical and AU stages as
``rtface run``; :class:`rtface.emotion.features.AUFeaturizer`).

Two layouts (``load_labelled``):

(a) a table (``.parquet`` or ``.csv``) of per-frame MediaPipe landmarks with columns ``video_filename``,
    ``frame_num``, ``emotion``, ``x_0..x_477``, ``y_0..y_477``, ``z_0..z_477`` (normalised MediaPipe coordinates:
    x, y in [0, 1] of the image width/height, z relative depth in units of the width). Optional ``person`` column
    (needed for ``split_by = "person"`` and ``neutral = "person"``; else each video is its own person).
    Coordinates are de-normalised with ``image_size`` (W, H) px, default 640x480: x*W, y*H, z*W. Media time of a
    row = ``frame_num`` / ``fps`` (default 30).
(b) a folder with one sub-folder per class holding images (.jpg .jpeg .png .bmp) and/or videos (.mp4 .mov .avi
    .mkv .webm); every file goes through the live landmark stage (photos as stills, videos as a sequence at
    frame index / the file's fps; one face per file), then the canonical and AU stages. Person id = file name up
    to the first ``_`` or ``-`` (e.g. ``001_03.jpg`` -> ``001``); video id = the file. ``video_stride`` N keeps
    every Nth frame of a video as a row (all frames still run through the stages, as live).

Neutral rule (``neutral``, per video / photo): ``auto`` (default) = as ``rtface run`` measures it: a video (or a
table group of several frames) as a sequence with the online person model (``video``), a photo (or a single-frame
group) as a still against the population (``still``); ``video`` / ``still`` force one; ``person`` = an explicit
neutral per person from that person's frames labelled ``neutral`` (like a saved neutral), people without one fall
back to ``auto``. See :mod:`rtface.emotion.features`. Labels go through
:func:`rtface.emotion.labels.normalise_labels`. Errors are DataError naming file/columns/rows.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rtface.emotion.features import AUFeaturizer
from rtface.emotion.labels import normalise_labels
from rtface.errors import ConfigError, DataError

N_LM = 478
LM_COLUMNS = [f"{a}_{i}" for a in "xyz" for i in range(N_LM)]
KEY_COLUMNS = ["video_filename", "frame_num", "emotion"]
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}
VIDEO_EXT = {".mp4", ".mov", ".avi", ".mkv", ".webm"}
NEUTRAL_CHOICES = ("auto", "video", "still", "person")
DEFAULT_FPS = 30.0  # media time of table rows / photos: frame index / this


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


def rule_for(rule: str, n_frames: int, is_video: bool, has_person_neutral: bool) -> str:
    """The rule a group (one video or photo) is run with; ``auto``: ``video`` for a video or a table group of
    several frames, ``still`` for a photo or a single-frame group. ``person`` without a neutral-labelled frame of
    that person falls back to ``auto``'s choice."""
    if rule not in NEUTRAL_CHOICES:
        raise ConfigError(f"neutral rule {rule!r} is not one of {NEUTRAL_CHOICES}")
    natural = "video" if (is_video or n_frames > 1) else "still"
    if rule == "auto" or (rule == "person" and not has_person_neutral):
        return natural
    return rule


def features_of_groups(frames: list, labels: list[str], videos: np.ndarray, persons: np.ndarray,
                       order: np.ndarray, is_video: np.ndarray, featurizer: AUFeaturizer, neutral: str,
                       fps: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, Counter]:
    """AU features (N, K) of frames ``(landmarks_px, W, H)`` grouped by video, each group run through the live
    stages under its rule (see :func:`rule_for`); ``order`` = frame index within the video (media time = order /
    fps of the group). ``keep`` (N,) bool: rows that are emitted (all frames of a video still go through the
    stages, as live); features of other rows are left 0."""
    n = len(frames)
    keep = np.ones(n, dtype=bool) if keep is None else keep
    person_refs: dict[str, list] = defaultdict(list)
    for i, (lab, per) in enumerate(zip(labels, persons)):
        if lab == "neutral":
            person_refs[per].append(frames[i])
    x = np.zeros((n, len(featurizer.names)), dtype=np.float32)
    used: Counter = Counter()
    by_video: dict[str, list[int]] = defaultdict(list)
    for i, v in enumerate(videos):
        by_video[v].append(i)
    for v, idx in by_video.items():
        idx = sorted(idx, key=lambda i: order[i])
        per = persons[idx[0]]
        rule = rule_for(neutral, len(idx), bool(is_video[idx[0]]), per in person_refs)
        used[rule] += 1
        group = [frames[i] for i in idx]
        if rule == "still":
            feats = featurizer.stills(group)
        else:
            refs = person_refs[per] if rule == "person" else None
            feats = featurizer.sequence(group, float(fps[idx[0]]), [int(order[i]) for i in idx], neutral=refs)
        for j, i in enumerate(idx):
            if keep[i]:
                x[i] = feats[j]
    return x, used


def _summary(source: str, layout: str, labels: list[str], videos, persons, neutral_used: Counter,
             extra: dict[str, Any]) -> dict[str, Any]:
    return {"source": source, "layout": layout, "rows": len(labels), "videos": int(len(set(videos))),
            "persons": int(len(set(persons))), "class_counts": dict(sorted(Counter(labels).items())),
            "neutral_rule_per_video": dict(neutral_used), **extra}


def _run_groups(where: str, frames: list, labels: list[str], videos: np.ndarray, persons: np.ndarray,
                order: np.ndarray, is_video: np.ndarray, featurizer: AUFeaturizer, neutral: str, fps: np.ndarray,
                keep: np.ndarray | None = None) -> tuple[np.ndarray, Counter]:
    try:
        return features_of_groups(frames, labels, videos, persons, order, is_video, featurizer, neutral, fps, keep)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from exc


def from_table(path: str | Path, featurizer: AUFeaturizer, *, image_size: tuple[int, int] = (640, 480),
               neutral: str = "auto", label_map: Mapping[str, str] | None = None,
               fps: float = DEFAULT_FPS) -> LabelledFeatures:
    """Layout (a) -> features (see module doc)."""
    w, h = image_size
    if w <= 0 or h <= 0:
        raise ConfigError(f"image size must be positive, got {w}x{h}")
    if not fps > 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    t = read_landmark_table(path, label_map)
    lm = t["lm"]
    px = np.empty_like(lm)
    px[..., 0] = lm[..., 0] * w
    px[..., 1] = lm[..., 1] * h
    px[..., 2] = lm[..., 2] * w
    n = len(px)
    frames = [(px[i], w, h) for i in range(n)]
    x, used = _run_groups(t["path"], frames, t["labels"], t["videos"], t["persons"], t["frames"],
                          np.zeros(n, dtype=bool), featurizer, neutral, np.full(n, float(fps)))
    summ = _summary(str(path), "table", t["labels"], t["videos"], t["persons"], used,
                    {"image_size": [w, h], "fps": float(fps)})
    return LabelledFeatures(x, t["labels"], t["videos"], t["persons"], featurizer.names, summ)


def _person_of(stem: str) -> str:
    return re.split(r"[_\-]", stem, maxsplit=1)[0] or stem


def _read_frames(path: Path, is_video: bool) -> tuple[list[np.ndarray], float]:
    """Decoded BGR frames of a file and its frame rate (images: one frame, DEFAULT_FPS)."""
    import cv2

    if not is_video:
        img = cv2.imread(str(path))
        if img is None:
            raise DataError(f"{path}: cannot read image")
        return [img], DEFAULT_FPS
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"{path}: cannot open video")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames, fps if fps > 0 else DEFAULT_FPS


def landmarks_of_file(path: Path, is_video: bool, landmark_params: Any = None
                      ) -> tuple[list[tuple[np.ndarray, int, int, int]], float]:
    """([(landmarks_px (478, 3), width, height, frame index)] of the first face in each frame that has one, fps),
    through the live landmark stage (``landmark_params``: the config's, default the packaged default's), one face
    per file; photos as stills (``FrameMeta.still``), videos as a sequence at their media times."""
    import dataclasses

    from rtface.records import FrameMeta, FrameResult
    from rtface.stages.landmarks import LandmarkParams, LandmarkStage

    params = dataclasses.replace(landmark_params or LandmarkParams(), max_faces=1, score_new_faces=False)
    images, fps = _read_frames(path, is_video)
    stage = LandmarkStage("landmarks", params)
    stage.open()
    out = []
    try:
        for i, img in enumerate(images):
            h, w = img.shape[:2]
            res = FrameResult(FrameMeta(i, 0, int(round(i * 1e9 / fps)), w, h, str(path), not is_video))
            stage.process(img, res)
            if res.faces:
                out.append((res.faces[0].landmarks_px, w, h, i))
    finally:
        stage.close()
    return out, fps


def from_folder(root: str | Path, featurizer: AUFeaturizer, *, neutral: str = "auto",
                label_map: Mapping[str, str] | None = None, video_stride: int = 1,
                landmark_params: Any = None) -> LabelledFeatures:
    """Layout (b) -> features (see module doc)."""
    root = Path(root)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    if not subdirs:
        raise DataError(f"{root}: no class sub-folders (expected one folder per emotion class)")
    class_of = dict(zip([d.name for d in subdirs], normalise_labels([d.name for d in subdirs],
                                                                    f"{root}: class folder", label_map)))
    stride = max(1, video_stride)
    frames, labels, videos, persons, order, is_video, fps_of, keep = [], [], [], [], [], [], [], []
    no_face: list[str] = []
    n_files = 0
    for d in subdirs:
        for f in sorted(d.iterdir()):
            ext = f.suffix.lower()
            if ext not in IMAGE_EXT | VIDEO_EXT:
                continue
            n_files += 1
            video = ext in VIDEO_EXT
            found, fps = landmarks_of_file(f, video, landmark_params)
            if not found:
                no_face.append(str(f.relative_to(root)))
            for lm, w, h, i in found:
                frames.append((lm, w, h))
                labels.append(class_of[d.name])
                videos.append(str(f.relative_to(root)))
                persons.append(_person_of(f.stem))
                order.append(i)
                is_video.append(video)
                fps_of.append(fps)
                keep.append(i % stride == 0)
    if not frames:
        raise DataError(f"{root}: no face found in any of {n_files} image/video file(s)")
    keep_a = np.array(keep, dtype=bool)
    x, used = _run_groups(str(root), frames, labels, np.array(videos, dtype=object),
                          np.array(persons, dtype=object), np.array(order), np.array(is_video, dtype=bool),
                          featurizer, neutral, np.array(fps_of, dtype=np.float64), keep_a)
    sel = np.flatnonzero(keep_a)
    labels_k = [labels[i] for i in sel]
    videos_a = np.array(videos, dtype=object)[sel]
    persons_a = np.array(persons, dtype=object)[sel]
    summ = _summary(str(root), "folder", labels_k, videos_a, persons_a, used,
                    {"files": n_files, "files_without_face": no_face, "video_stride": stride})
    return LabelledFeatures(x[sel], labels_k, videos_a, persons_a, featurizer.names, summ)


def load_labelled(path: str | Path, featurizer: AUFeaturizer, *, image_size: tuple[int, int] = (640, 480),
                  neutral: str = "auto", label_map: Mapping[str, str] | None = None,
                  video_stride: int = 1, fps: float = DEFAULT_FPS, landmark_params: Any = None) -> LabelledFeatures:
    """A table file (layout a) or a class-folder tree (layout b)."""
    p = Path(path)
    if p.is_dir():
        return from_folder(p, featurizer, neutral=neutral, label_map=label_map, video_stride=video_stride,
                           landmark_params=landmark_params)
    if p.is_file():
        return from_table(p, featurizer, image_size=image_size, neutral=neutral, label_map=label_map, fps=fps)
    raise DataError(f"{p}: no such file or folder")
