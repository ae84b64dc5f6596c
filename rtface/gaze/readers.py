"""Readers for eye-tracker recordings -> ``GazeTrack`` (see ``rtface.gaze.track`` for the conventions).

Formats
- ``pupil_player``: Pupil Player raw-data export folder: ``gaze_positions.csv`` (gaze_timestamp [s], world_index,
  confidence, norm_pos_x/y with origin bottom-left), ``world_timestamps.csv`` ("# timestamps [seconds]") and
  ``world.mp4`` (scene size). Clock "pupil_s" converted to ns (round(s * 1e9)).
- ``neon_csv``: Pupil Cloud "Timeseries Data" export: ``gaze.csv`` ("timestamp [ns]", "gaze x [px]",
  "gaze y [px]", "worn", ...), ``world_timestamps.csv`` ("timestamp [ns]"), scene video ``*.mp4``. Clock "utc_ns".
- ``neon_native``: Neon Companion native folder: ``gaze ps1.raw`` (float32 x, y px) + ``gaze ps1.time`` (int64 ns
  UTC), ``Neon Scene Camera v1 ps1.time`` (int64 ns per scene frame), optional ``worn ps1.raw`` (uint8).
  Scene 1600 x 1200 px. Clock "utc_ns".

Every reader runs on the caller's thread and returns a sanitized track (``sanitize``); pass ``strict=True`` to turn
unsorted/duplicate timestamps into ``DataError``. Missing files or columns raise ``DataError`` naming both.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from rtface.errors import DataError
from rtface.gaze.track import GazeTrack, sanitize

NEON_SCENE_SIZE = (1600, 1200)  # px, Neon scene camera
FORMATS = ("pupil_player", "neon_csv", "neon_native")


def _read_csv_columns(path: Path, wanted: dict[str, type], optional: dict[str, type] | None = None
                      ) -> dict[str, np.ndarray]:
    """Read the named columns of a CSV (header row; a leading "# " in the header is ignored).

    ``wanted``: column -> dtype (float or int); missing -> DataError naming file and column. Empty cells in float
    columns become NaN; in int columns DataError.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    optional = optional or {}
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lstrip("#").strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file (no header row)") from None
        rows, lines = [], []
        for r in reader:
            if r:
                rows.append(r)
                lines.append(reader.line_num)
    idx = {name: i for i, name in enumerate(header)}
    out: dict[str, np.ndarray] = {}
    for name, typ in list(wanted.items()) + list(optional.items()):
        if name not in idx:
            if name in wanted:
                raise DataError(f"{path}: missing column '{name}' (have: {', '.join(header)})")
            continue
        j = idx[name]
        col = [r[j].strip() if j < len(r) else "" for r in rows]
        conv = _to_int if typ is int else _to_float
        try:
            out[name] = np.array([conv(v) for v in col], dtype=np.int64 if typ is int else np.float64)
        except ValueError:
            line, bad = _first_bad(col, conv, lines)
            kind = "an integer" if typ is int else "a number"
            raise DataError(f"{path}: column '{name}', line {line}: {bad!r} is not {kind}") from None
    return out


def _to_int(v: str) -> int:
    return int(v) if v.lstrip("-").isdigit() else int(float(v))


def _to_float(v: str) -> float:
    return float(v) if v else np.nan


def _first_bad(col: list[str], conv, lines: list[int]) -> tuple[int, str]:
    """(file line number, cell) of the first cell ``conv`` rejects."""
    for v, ln in zip(col, lines):
        try:
            conv(v)
        except ValueError:
            return ln, v
    return -1, ""


def _seconds_to_ns(s: np.ndarray) -> np.ndarray:
    """Pupil seconds (float64) -> int64 ns (rounded)."""
    return np.round(s * 1e9).astype(np.int64)


def video_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a video via OpenCV, or None when absent/unreadable."""
    if not path.is_file():
        return None
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    return (w, h) if w > 0 and h > 0 else None


def _scene_size(folder: Path, videos: list[Path], size: tuple[int, int] | None) -> tuple[int, int]:
    if size is not None:
        return int(size[0]), int(size[1])
    for v in videos:
        got = video_size(v)
        if got:
            return got
    raise DataError(f"{folder}: no readable scene video ({', '.join(p.name for p in videos) or 'none found'}); "
                    "pass size=(width, height)")


def read_pupil_player(folder: str | Path, size: tuple[int, int] | None = None, strict: bool = False,
                      min_confidence: float = 0.0) -> GazeTrack:
    """Read a Pupil Player export folder. ``size`` overrides the scene size read from ``world.mp4``.

    Samples below ``min_confidence`` are dropped (counted in ``issues``). y is flipped: y_px = (1 - norm_y) * h.
    """
    folder = Path(folder)
    g_path, w_path = folder / "gaze_positions.csv", folder / "world_timestamps.csv"
    g = _read_csv_columns(g_path, {"gaze_timestamp": float, "world_index": int, "confidence": float,
                                   "norm_pos_x": float, "norm_pos_y": float})
    w = _read_csv_columns(w_path, {"timestamps [seconds]": float})
    width, height = _scene_size(folder, [folder / "world.mp4"], size)
    t_s = g["gaze_timestamp"]
    finite_t = np.isfinite(t_s)
    issues = [] if finite_t.all() else [f"dropped {int((~finite_t).sum())} samples with NaN timestamp"]
    keep = finite_t & (np.nan_to_num(g["confidence"], nan=0.0) >= min_confidence)
    if min_confidence > 0 and (finite_t & ~keep).any():
        issues.append(f"dropped {int((finite_t & ~keep).sum())} samples with confidence < {min_confidence}")
    track = GazeTrack(
        t_ns=_seconds_to_ns(t_s[keep]),
        x_px=g["norm_pos_x"][keep] * width,
        y_px=(1.0 - g["norm_pos_y"][keep]) * height,
        confidence=g["confidence"][keep],
        frame_t_ns=_seconds_to_ns(w["timestamps [seconds]"]),
        width=width, height=height, clock="pupil_s", source=str(folder),
        world_index=g["world_index"][keep], issues=issues)
    return sanitize(track, strict=strict)


def read_neon_csv(folder: str | Path, size: tuple[int, int] | None = None, strict: bool = False,
                  drop_not_worn: bool = False) -> GazeTrack:
    """Read a Pupil Cloud timeseries export folder (``gaze.csv`` + ``world_timestamps.csv`` + scene ``*.mp4``).

    Scene size: ``size``, else the first readable ``*.mp4`` in the folder, else Neon's 1600 x 1200.
    """
    folder = Path(folder)
    g = _read_csv_columns(folder / "gaze.csv", {"timestamp [ns]": int, "gaze x [px]": float, "gaze y [px]": float},
                          optional={"worn": float})
    w = _read_csv_columns(folder / "world_timestamps.csv", {"timestamp [ns]": int})
    videos = sorted(folder.glob("*.mp4"))
    width, height = size if size is not None else next(
        (s for s in (video_size(v) for v in videos) if s), NEON_SCENE_SIZE)
    n = g["timestamp [ns]"].shape[0]
    worn = g["worn"] > 0.5 if "worn" in g else None
    issues: list[str] = []
    track = GazeTrack(g["timestamp [ns]"], g["gaze x [px]"], g["gaze y [px]"], np.ones(n), w["timestamp [ns]"],
                      int(width), int(height), clock="utc_ns", source=str(folder), worn=worn, issues=issues)
    if drop_not_worn and worn is not None and (~worn).any():
        track = track.select(worn)
        track.issues.append(f"dropped {int((~worn).sum())} samples with worn == 0")
    return sanitize(track, strict=strict)


def _read_binary(path: Path, dtype: str, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: file not found ({what})")
    raw = path.read_bytes()
    item = np.dtype(dtype).itemsize
    if len(raw) % item:
        raise DataError(f"{path}: size {len(raw)} B is not a multiple of {item} B ({what}, {dtype})")
    return np.frombuffer(raw, dtype=dtype).copy()


def read_neon_native(folder: str | Path, size: tuple[int, int] | None = None, strict: bool = False,
                     drop_not_worn: bool = False) -> GazeTrack:
    """Read a Neon native recording folder (gaze ps1.raw/.time, Neon Scene Camera v1 ps1.time, worn ps1.raw)."""
    folder = Path(folder)
    xy = _read_binary(folder / "gaze ps1.raw", "<f4", "gaze x, y float32").reshape(-1, 2).astype(np.float64)
    t = _read_binary(folder / "gaze ps1.time", "<i8", "gaze timestamps int64 ns")
    if t.shape[0] != xy.shape[0]:
        raise DataError(f"{folder / 'gaze ps1.time'}: {t.shape[0]} timestamps but {xy.shape[0]} gaze samples")
    scene = _read_binary(folder / "Neon Scene Camera v1 ps1.time", "<i8", "scene frame timestamps int64 ns")
    worn = None
    wpath = folder / "worn ps1.raw"
    if wpath.is_file():
        w = _read_binary(wpath, "u1", "worn uint8")
        if w.shape[0] == t.shape[0]:
            worn = w > 0
    width, height = size if size is not None else NEON_SCENE_SIZE
    track = GazeTrack(t, xy[:, 0], xy[:, 1], np.ones(t.shape[0]), scene, int(width), int(height),
                      clock="utc_ns", source=str(folder), worn=worn)
    if drop_not_worn and worn is not None and (~worn).any():
        track = track.select(worn)
        track.issues.append(f"dropped {int((~worn).sum())} samples with worn == 0")
    return sanitize(track, strict=strict)


def detect_format(folder: str | Path) -> str:
    """Guess the recording format from the files present (raises DataError when none matches)."""
    folder = Path(folder)
    if (folder / "gaze_positions.csv").is_file():
        return "pupil_player"
    if (folder / "gaze.csv").is_file():
        return "neon_csv"
    if (folder / "gaze ps1.raw").is_file():
        return "neon_native"
    raise DataError(f"{folder}: not a Pupil Player export, Pupil Cloud CSV export or Neon native recording")


def read_recording(folder: str | Path, fmt: str = "", size: tuple[int, int] | None = None,
                   strict: bool = False) -> GazeTrack:
    """Read any supported recording; ``fmt`` "" = detect from the files (see ``FORMATS``)."""
    fmt = fmt or detect_format(folder)
    readers = {"pupil_player": read_pupil_player, "neon_csv": read_neon_csv, "neon_native": read_neon_native}
    if fmt not in readers:
        raise DataError(f"{folder}: unknown gaze recording format '{fmt}' (expected one of {', '.join(FORMATS)})")
    return readers[fmt](folder, size=size, strict=strict)


def write_pupil_player(folder: str | Path, t_s: np.ndarray, x_px: np.ndarray, y_px: np.ndarray,
                       frame_t_s: np.ndarray, size: tuple[int, int], world_index: np.ndarray,
                       confidence: np.ndarray | None = None) -> None:
    """Write the subset of a Pupil Player export this module reads (for fixtures and synthetic tracks)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    conf = np.ones(len(t_s)) if confidence is None else confidence
    with (folder / "gaze_positions.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["gaze_timestamp", "world_index", "confidence", "norm_pos_x", "norm_pos_y"])
        for i in range(len(t_s)):
            wr.writerow([repr(float(t_s[i])), int(world_index[i]), float(conf[i]), repr(float(x_px[i]) / w),
                         repr(1.0 - float(y_px[i]) / h)])
    with (folder / "world_timestamps.csv").open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["# timestamps [seconds]", "pts"])
        for i, ts in enumerate(frame_t_s):
            wr.writerow([repr(float(ts)), i])
