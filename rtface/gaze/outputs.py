"""Offline gaze-on-face outputs from a ``GazeMapping`` (caller's thread): merged_data.csv, percentages.csv, a bar
plot PNG and an optional overlay video.

Dwell time: each sample lasts until the next sample, capped at ``max_gap_ms`` (default 3 x the median sample
interval, so tracking gaps do not count); the last sample lasts one median interval. Samples outside the scene span
(frame -1) are counted like any other (their label is from the gaze position only).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from rtface.gaze.aoi import OFF_FACE, OFF_IMAGE, AOIConfig, build_geometry
from rtface.gaze.mapping import FaceList, GazeMapping
from rtface.kernels.hit_test import KIND_CIRCLE, KIND_ELLIPSE, KIND_POLYGON


def sample_durations_ms(t_ns: np.ndarray, max_gap_ms: float | None = None) -> np.ndarray:
    """(N,) float64 duration of each sample in ms (see module doc)."""
    t = np.asarray(t_ns, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0)
    if t.size == 1:
        return np.zeros(1)
    d = np.diff(t).astype(np.float64) / 1e6
    med = float(np.median(d))
    cap = 3.0 * med if max_gap_ms is None else float(max_gap_ms)
    return np.append(np.minimum(d, cap), med)


def write_merged_csv(path: str | Path, m: GazeMapping) -> Path:
    """One row per gaze sample: times, frame, gaze px, face id, labels, and a 0/1 column per AOI label."""
    path = Path(path)
    cols = m.columns
    ind = m.indicator()
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["gaze_timestamp_ns", "frame_index", "frame_timestamp_ns", "gaze_x_px", "gaze_y_px", "face_id",
                    "aoi"] + cols)
        for i in range(len(m.labels)):
            w.writerow([int(m.t_ns[i]), int(m.frame_index[i]), int(m.frame_t_ns[i]), f"{m.x_px[i]:.3f}",
                        f"{m.y_px[i]:.3f}", int(m.face_id[i]), m.labels[i]] + [int(v) for v in ind[i]])
    return path


def aoi_summary(m: GazeMapping, max_gap_ms: float | None = None) -> list[dict]:
    """Per AOI label: samples, percent of all samples, dwell_ms (multi mode: shares may sum above 100)."""
    ind = m.indicator().astype(bool)
    dur = sample_durations_ms(m.t_ns, max_gap_ms)
    n = max(len(m.labels), 1)
    return [{"aoi": name, "samples": int(ind[:, j].sum()), "percent": 100.0 * ind[:, j].sum() / n,
             "dwell_ms": float(dur[ind[:, j]].sum())} for j, name in enumerate(m.columns)]


def write_percentages_csv(path: str | Path, m: GazeMapping, max_gap_ms: float | None = None) -> Path:
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["aoi", "samples", "percent", "dwell_ms"])
        for r in aoi_summary(m, max_gap_ms):
            w.writerow([r["aoi"], r["samples"], f"{r['percent']:.3f}", f"{r['dwell_ms']:.1f}"])
    return path


def write_bar_plot(path: str | Path, m: GazeMapping, title: str = "Gaze on facial AOIs") -> Path:
    """Bar plot PNG of the share of samples per AOI label (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = aoi_summary(m)
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    try:
        ax.bar([r["aoi"] for r in rows], [r["percent"] for r in rows], color="#3a6ea5")
        ax.set_ylabel("samples [%]")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=45)
        ax.grid(axis="y", linestyle="--", alpha=0.5)
        fig.tight_layout()
        fig.savefig(str(path))
    finally:
        plt.close(fig)
    return Path(path)


def draw_overlay(img: np.ndarray, faces: FaceList, cfg: AOIConfig, gx: np.ndarray, gy: np.ndarray,
                 labels: list[str]) -> np.ndarray:
    """Draw AOIs (green when hit, blue otherwise) and gaze circles (red when off face) on a BGR image, in place."""
    import cv2

    geo = build_geometry(faces, cfg)
    hit_names = {p for lab in labels for p in lab.split("|")}
    for f in range(geo.kind.shape[0]):
        for a, name in enumerate(geo.names):
            col = (0, 220, 0) if name in hit_names else (220, 120, 0)
            k, prm = geo.kind[f, a], geo.params[f, a]
            if k == KIND_CIRCLE:
                cv2.circle(img, (int(prm[0]), int(prm[1])), int(prm[2]), col, 2, cv2.LINE_AA)
            elif k == KIND_ELLIPSE:
                cv2.ellipse(img, (int(prm[0]), int(prm[1])), (int(prm[2]), int(prm[3])), float(np.degrees(prm[4])),
                            0, 360, col, 2, cv2.LINE_AA)
            elif k == KIND_POLYGON:
                vs, vc = int(geo.vstart[f, a]), int(geo.vcount[f, a])
                pts = geo.verts[vs:vs + vc].astype(np.int32).reshape(-1, 1, 2)
                cv2.polylines(img, [pts], True, col, 1, cv2.LINE_AA)
    g = float(geo.face_gaze_radius_px.max()) if geo.face_gaze_radius_px.size else float(geo.gaze_radius_px)
    r = max(int(round(g or cfg.gaze_radius_px)), 3)
    for x, y, lab in zip(gx, gy, labels):
        col = (0, 0, 255) if lab in (OFF_FACE, OFF_IMAGE) else (0, 255, 255)
        cv2.circle(img, (int(x), int(y)), r, col, 2, cv2.LINE_AA)
    return img


def write_overlay_video(path: str | Path, video_path: str | Path, m: GazeMapping,
                        faces_by_frame: Callable[[int], FaceList] | dict, cfg: AOIConfig, fps: float = 0.0) -> Path:
    """Re-read the scene video and write it with AOIs, hits and gaze circles (mp4v codec)."""
    import cv2

    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        from rtface.errors import SourceError

        raise SourceError(f"{video_path}: cannot open scene video for the overlay")
    fps = fps or cap.get(cv2.CAP_PROP_FPS) or 30.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))

    def get(k: int) -> FaceList:
        return faces_by_frame.get(k, []) if isinstance(faces_by_frame, dict) else faces_by_frame(k)

    try:
        k = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            sel = np.nonzero(m.frame_index == k)[0]
            draw_overlay(img, get(k) or [], cfg, m.x_px[sel], m.y_px[sel], [m.labels[i] for i in sel])
            out.write(img)
            k += 1
    finally:
        cap.release()
        out.release()
    return Path(path)
