"""Batch plan: what to process and where each result goes.

Inputs: files, folders and glob patterns. A video file is one input; an image file is one input (one photo); a
folder contributes each video file in it (sorted, not recursive) and, if it holds images, the folder itself as one
input (its images processed as ``rtface run --source FOLDER`` does: each image on its own). Output of an input:
``DIR/<stem>.<format>`` (``<stem>-<hash of the path>`` when two inputs share a stem) plus its session summary.

Chunks: a video longer than ``chunk_s`` x 1.5 seconds is split into chunks of ``chunk_s`` seconds; each chunk
starts ``overlap_s`` earlier than the part it keeps (frames the tracker and the per-person face shape use to
settle, then dropped at the merge; :mod:`rtface.batch.merge`; the driver's default overlap is the person-model
window + 2 s, :func:`rtface.batch.runner.default_overlap_s`). Chunks pay off for videos much longer than the
overlap.
"""
from __future__ import annotations

import glob
import hashlib
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from rtface.errors import ConfigError
from rtface.sources.base import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")


@dataclass(frozen=True)
class Input:
    path: str  # absolute path of the file or image folder
    kind: str  # "video" | "image" | "images" (a folder of images)
    name: str  # output stem, unique within the batch
    frames: int  # frame count (container's count for videos; images in a folder), 0 if unknown
    fps: float  # video frame rate (30 if unknown)
    key: str  # identity of the input's content for resume: size and mtime (ns)


@dataclass(frozen=True)
class Job:
    """One unit of work for a worker: a whole input, or frames [start, stop) of a video (chunk ``chunk``)."""

    id: str  # "<name>" or "<name>#<chunk>"
    input: str
    kind: str
    name: str
    output: str  # result table of this job (a chunk writes a part file)
    start: int = 0
    stop: int = 0  # 0 = to the end
    keep_from: int = 0  # chunk: first frame this chunk contributes (start + overlap), else = start
    chunk: int = -1  # -1 = the whole input
    n_chunks: int = 0
    frames: int = 0  # frames to process (for progress), 0 if unknown

    def to_dict(self) -> dict:
        return asdict(self)


def _key(p: Path) -> str:
    st = p.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _video_info(p: Path) -> tuple[int, float]:
    import cv2

    cap = cv2.VideoCapture(str(p))
    try:
        n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    n = int(n) if n and math.isfinite(n) and n > 0 else 0
    fps = float(fps) if fps and math.isfinite(fps) and 0 < fps <= 1000 else 30.0
    return n, fps


def _images_in(folder: Path) -> list[Path]:
    return sorted(q for q in folder.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)


def expand_inputs(specs: list[str]) -> list[Input]:
    """Files, folders and globs -> inputs (in the order given, duplicates dropped); ConfigError naming a spec that
    matches nothing or a file that is neither a video nor an image."""
    found: list[tuple[Path, str]] = []

    def add_file(p: Path, spec: str, strict: bool) -> None:
        ext = p.suffix.lower()
        if ext in IMAGE_EXTENSIONS:
            found.append((p, "image"))
        elif ext in VIDEO_EXTENSIONS or (strict and p.is_file()):
            found.append((p, "video"))

    def add_folder(p: Path) -> None:
        for q in sorted(p.iterdir()):
            if q.is_file() and q.suffix.lower() in VIDEO_EXTENSIONS:
                found.append((q, "video"))
        if _images_in(p):
            found.append((p, "images"))

    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            before = len(found)
            add_folder(p)
            if len(found) == before:
                raise ConfigError(f"batch input {spec}: folder holds no video or image file")
        elif p.is_file():
            add_file(p, spec, strict=True)
        elif any(c in spec for c in "*?["):
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            before = len(found)
            for m in matches:
                q = Path(m)
                if q.is_dir():
                    add_folder(q)
                elif q.is_file():
                    add_file(q, spec, strict=False)
            if len(found) == before:
                raise ConfigError(f"batch input {spec}: the pattern matches no video or image file")
        else:
            raise ConfigError(f"batch input {spec}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for p, kind in found:
        p = p.resolve()
        if p not in seen:
            seen.add(p)
            unique.append((p, kind))
    stems: dict[str, int] = {}
    for p, _ in unique:
        stems[p.stem if p.is_file() else p.name] = stems.get(p.stem if p.is_file() else p.name, 0) + 1
    out = []
    for p, kind in unique:
        stem = p.stem if p.is_file() else p.name
        if stems[stem] > 1:
            stem = f"{stem}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"
        if kind == "video":
            n, fps = _video_info(p)
        else:
            n, fps = (len(_images_in(p)) if kind == "images" else 1), 30.0
        key = _key(p) if p.is_file() else ";".join(f"{q.name}:{_key(q)}" for q in _images_in(p))
        out.append(Input(str(p), kind, stem, n, fps, key if p.is_file() else hashlib.sha1(key.encode()).hexdigest()))
    return out


def plan_jobs(inputs: list[Input], out_dir: Path, *, fmt: str = "parquet", chunk_s: float = 0.0,
              overlap_s: float = 10.0) -> list[Job]:
    """Jobs for ``inputs``: one per input, or chunks for videos longer than 1.5 x ``chunk_s`` (0 = never)."""
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"batch format {fmt!r}: expected 'parquet' or 'csv'")
    if chunk_s < 0 or overlap_s < 0:
        raise ConfigError(f"batch chunks: chunk_s ({chunk_s}) and overlap_s ({overlap_s}) must be >= 0")
    jobs: list[Job] = []
    for inp in inputs:
        final = str(out_dir / f"{inp.name}.{fmt}")
        per = int(round(chunk_s * inp.fps)) if chunk_s else 0
        if inp.kind != "video" or not per or inp.frames <= 1.5 * per:
            jobs.append(Job(inp.name, inp.path, inp.kind, inp.name, final, frames=inp.frames))
            continue
        overlap = int(round(overlap_s * inp.fps))
        bounds = list(range(0, inp.frames, per))
        if inp.frames - bounds[-1] < per // 2 and len(bounds) > 1:  # a short tail joins the last chunk
            bounds.pop()
        n = len(bounds)
        for k, keep in enumerate(bounds):
            start = max(0, keep - overlap)
            stop = bounds[k + 1] if k + 1 < n else 0
            part = out_dir / ".parts" / f"{inp.name}.c{k:04d}.parquet"
            frames = (stop or inp.frames) - start
            jobs.append(Job(f"{inp.name}#{k}", inp.path, inp.kind, inp.name, str(part), start, stop, keep, k, n,
                            frames))
    return jobs
