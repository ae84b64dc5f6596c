"""``rtface gaze``: map an eye-tracker recording onto the facial AOIs of its scene video, offline.

The real engine runs over the scene video in file mode (backpressure: no frame is lost) with two stages: the
config's ``landmarks`` stage and a ``gaze_aoi`` stage fed by the recording (``recording`` param). The command
collects every frame's ``gaze`` extras, checks them against the recording's own sample -> frame alignment (the
same ``RecordingGazeProvider`` rule), labels the samples no decoded frame received (outside the scene span, or
past the end of the video) from their position alone (off_face / off_image), and writes into OUTDIR:
merged_data.csv (one row per sample), percentages.csv (samples, % and dwell per AOI), gaze_aoi.png (bar plot) and,
with ``--overlay``, overlay.mp4. Everything runs on the calling thread (the engine's processing thread).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rtface.errors import DataError, SourceError
from rtface.gaze.readers import FORMATS, detect_format, read_recording, video_size

if TYPE_CHECKING:  # imported where used: numba (via the AOI hit test) stays off other commands' start-up
    from rtface.gaze.aoi import AOIConfig
    from rtface.gaze.mapping import FaceList, GazeMapping
    from rtface.gaze.track import GazeTrack

MERGED, PERCENTAGES, BAR_PLOT, OVERLAY = "merged_data.csv", "percentages.csv", "gaze_aoi.png", "overlay.mp4"


@dataclass
class GazeRun:
    """What ``run_gaze`` produced (paths are inside ``out_dir``)."""

    track: GazeTrack
    mapping: GazeMapping
    cfg: AOIConfig
    video: Path
    fmt: str
    frames: int  # frames the engine processed
    files: dict[str, Path]
    unserved: int  # samples no processed frame received (labelled from position only)
    stage_errors: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def find_scene_video(folder: Path, fmt: str) -> Path | None:
    """The recording's scene video: world.mp4 (Pupil Player), the export's *.mp4 (Pupil Cloud), or
    "Neon Scene Camera v1 ps1.mp4" (Neon native; never the eye camera's "Neon Sensor Module" video)."""
    if fmt == "pupil_player":
        cands = [folder / "world.mp4"]
    elif fmt == "neon_native":
        cands = sorted(folder.glob("Neon Scene Camera*.mp4"))
    else:
        cands = sorted(folder.glob("*.mp4"))
    return next((c for c in cands if c.is_file()), None)


def _video_frames(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def build_config(config: str | None, video: Path, gaze_params: dict[str, Any], backend: str | None = None):
    """Engine config for the offline run: the config's landmarks stage (or the default one) + a gaze_aoi stage.

    ``gaze_params`` override the config's gaze_aoi fields (if it has that stage) or the defaults. The source is
    the video in file mode (no frame lost); publishing is off.
    """
    from rtface.config import StageConfig, check_graph, load_config, with_overrides
    from rtface.stages.gaze_aoi import GazeAOIParams, GazeAOIStage
    from rtface.stages.landmarks import LandmarkParams, LandmarkStage

    cfg = load_config(config)
    cfg = with_overrides(cfg, source={"spec": str(video), "realtime": False, "loop": False},
                         publish={"enabled": False}, engine={"max_frames": 0}, control={"enabled": False})
    lm = next((s for s in cfg.stages if s.kind == "landmarks"), None)
    if lm is None:
        lm = StageConfig("landmarks", "landmarks", "skip", 10, LandmarkParams(), LandmarkStage)
    if backend:
        lm = dataclasses.replace(lm, params=dataclasses.replace(lm.params, backend=backend))
        LandmarkStage(lm.name, lm.params)  # validates the backend now, with a clear ConfigError
    base = next((s.params for s in cfg.stages if s.kind == "gaze_aoi"), GazeAOIParams())
    gp = dataclasses.replace(base, live="", **gaze_params)
    gaze = StageConfig("gaze_aoi", "gaze", "raise", 1, gp, GazeAOIStage)
    cfg = dataclasses.replace(cfg, stages=(lm, gaze))
    check_graph(cfg)
    return cfg


def run_gaze(recording: str | Path, out_dir: str | Path, *, fmt: str = "", video: str | Path | None = None,
             aoi: str | None = None, mode: str | None = None, radius_mode: str | None = None,
             overlay: bool = False, config: str | None = None, backend: str | None = None,
             offset_ns: int | None = None, progress: Any = None) -> GazeRun:
    """Run the offline gaze-on-face pipeline (module doc); ``progress(frames_done)`` is called per frame."""
    from rtface.gaze.aoi import OFF_FACE, map_frame
    from rtface.gaze.mapping import GazeMapping
    from rtface.gaze.outputs import write_bar_plot, write_merged_csv, write_overlay_video, write_percentages_csv
    from rtface.gaze.providers import RecordingGazeProvider
    from rtface.graph.runner import Engine
    from rtface.stages.gaze_aoi import GazeAOIStage

    folder = Path(recording)
    if not folder.is_dir():
        raise DataError(f"{folder}: recording folder not found")
    fmt = fmt or detect_format(folder)
    if fmt not in FORMATS:
        raise DataError(f"{folder}: unknown gaze recording format '{fmt}' (expected one of {', '.join(FORMATS)})")
    if video is None:
        found = find_scene_video(folder, fmt)
        if found is None:
            looked = {"pupil_player": "world.mp4", "neon_native": "Neon Scene Camera*.mp4"}.get(fmt, "*.mp4")
            raise SourceError(f"{folder}: no scene video found in the recording (looked for {looked}); "
                              "pass --video PATH")
        video_path = found
    else:
        video_path = Path(video)
        if not video_path.is_file():
            raise SourceError(f"{video_path}: scene video not found (--video)")
    vsize = video_size(video_path)
    if vsize is None:
        raise SourceError(f"{video_path}: cannot read the scene video (no frames or unknown codec)")
    size = vsize if fmt == "pupil_player" and not (folder / "world.mp4").is_file() else None
    track = read_recording(folder, fmt, size=size)
    if len(track) == 0:
        raise DataError(f"{folder}: the recording holds no usable gaze sample")

    gaze_params: dict[str, Any] = {"recording": str(folder), "format": fmt, "scene_width": track.width,
                                   "scene_height": track.height}
    for key, val in (("aoi_shape", aoi), ("mode", mode), ("radius_mode", radius_mode), ("offset_ns", offset_ns)):
        if val is not None:
            gaze_params[key] = val
    cfg = build_config(config, video_path, gaze_params, backend)
    gp = cfg.stages[1].params
    aoi_cfg = GazeAOIStage("gaze", gp).aoi_cfg
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    prov = RecordingGazeProvider(track, gp.offset_ns, gp.align_mode)
    n = len(track)
    served = np.zeros(n, dtype=bool)
    face_id = np.full(n, -1, dtype=np.int64)
    labels: list[str] = [OFF_FACE] * n
    faces_by_frame: dict[int, FaceList] = {}
    frame_size = vsize
    engine = Engine(cfg)
    frames = 0
    for res in engine.results():
        k = res.meta.index
        frame_size = (res.meta.width, res.meta.height)
        frames += 1
        g = res.extras.get("gaze")
        idx = prov.sample_indices(k)
        if g is None:
            continue
        if len(g["aoi"]) != idx.size or not np.array_equal(g["t_ns"], track.t_ns[idx] + gp.offset_ns):
            raise DataError(f"{folder}: frame {k}: the gaze stage served {len(g['aoi'])} samples, the recording "
                            f"aligns {idx.size} to this frame (inconsistent alignment)")
        served[idx] = True
        face_id[idx] = g["face_id"]
        for i, lab in zip(idx, g["aoi"]):
            labels[i] = lab
        if overlay:
            faces_by_frame[k] = [(f.face_id, np.array(f.landmarks_px, copy=True)) for f in res.faces]
        if progress is not None:
            progress(frames)

    sx, sy = frame_size[0] / track.width, frame_size[1] / track.height
    x, y = track.x_px * sx, track.y_px * sy
    rest = np.nonzero(~served)[0]
    if rest.size:  # no processed frame for these samples: label from position only
        fg = map_frame(track.t_ns[rest], x[rest], y[rest], [], aoi_cfg, frame_size)
        for i, lab in zip(rest, fg.aoi):
            labels[i] = lab
    fidx = np.where(served, prov.frame_idx, -1)
    ft = np.where(fidx >= 0, track.frame_t_ns[np.clip(fidx, 0, max(track.frame_t_ns.size - 1, 0))], -1)
    names = aoi_cfg.names
    pos = {nm: j for j, nm in enumerate(names)}
    hits = np.zeros((n, len(names)), dtype=bool)
    for i, lab in enumerate(labels):
        for part in lab.split("|"):
            if part in pos:
                hits[i, pos[part]] = True
    mapping = GazeMapping(track.t_ns.copy(), fidx.astype(np.int64), ft.astype(np.int64), x, y, face_id, labels,
                          names, hits, aoi_cfg.mode)

    files = {"merged": write_merged_csv(out / MERGED, mapping),
             "percentages": write_percentages_csv(out / PERCENTAGES, mapping),
             "bar_plot": write_bar_plot(out / BAR_PLOT, mapping, title=f"Gaze on facial AOIs: {folder.name}")}
    if overlay:
        files["overlay"] = write_overlay_video(out / OVERLAY, video_path, mapping, faces_by_frame, aoi_cfg)
    notes = list(track.issues)
    n_frames_video = _video_frames(video_path)
    if track.frame_t_ns.size and n_frames_video and n_frames_video != track.frame_t_ns.size:
        notes.append(f"scene video has {n_frames_video} frames, the recording {track.frame_t_ns.size} scene "
                     "timestamps")
    if rest.size:
        notes.append(f"{rest.size} samples outside the decoded scene frames (labelled from position only)")
    stats = engine.summary.get("stats", {})
    return GazeRun(track, mapping, aoi_cfg, video_path, fmt, frames, files, int(rest.size),
                   dict(stats.get("drops", {}).get("stage_errors", {})), notes)


def format_summary(run: GazeRun) -> str:
    """The short text summary the command prints (samples, % and dwell per AOI label, files)."""
    from rtface.gaze.outputs import aoi_summary

    m, c = run.mapping, run.cfg
    lines = [f"gaze: {len(m.labels)} samples ({run.fmt}, {run.track.source}) on {run.frames} frames of "
             f"{run.video.name}; AOIs {c.shape}, radii {c.radius_mode}, {c.mode}",
             f"  {'aoi':<12} {'samples':>8} {'percent':>8} {'dwell_ms':>10}"]
    for r in aoi_summary(m):
        lines.append(f"  {r['aoi']:<12} {r['samples']:>8d} {r['percent']:>7.1f}% {r['dwell_ms']:>10.1f}")
    for note in run.notes:
        lines.append(f"  note: {note}")
    if run.stage_errors:
        lines.append(f"  stage errors: {run.stage_errors}")
    out_dir = next(iter(run.files.values())).parent
    lines.append(f"wrote {', '.join(p.name for p in run.files.values())} to {out_dir}")
    return "\n".join(lines)


def cmd_gaze(args: argparse.Namespace) -> int:
    tty = sys.stderr.isatty()
    last = [0.0]

    def progress(done: int) -> None:
        now = time.monotonic()
        if tty and now - last[0] >= 0.25:
            last[0] = now
            print(f"\r{done} frames", end="", file=sys.stderr, flush=True)

    run = run_gaze(args.recording, args.out, fmt=args.format or "", video=args.video, aoi=args.aoi,
                   mode=args.mode, radius_mode=args.radius_mode, overlay=args.overlay, config=args.config,
                   backend=args.backend, offset_ns=args.offset_ns, progress=progress)
    if tty:
        print("", file=sys.stderr)
    print(format_summary(run), flush=True)
    return 0


def add_commands(subparsers: Any) -> None:
    """Register ``rtface gaze`` (called by rtface.cli.build_parser)."""
    g = subparsers.add_parser("gaze", help="map an eye-tracker recording onto facial AOIs of its scene video",
                              description="Run the engine over a recording's scene video and write which facial "
                                          "AOI each gaze sample falls on (merged_data.csv, percentages.csv, a bar "
                                          "plot PNG, optional overlay video).")
    g.add_argument("--recording", required=True, help="recording folder (Pupil Player export, Pupil Cloud CSV "
                                                      "export, or Neon native recording)")
    g.add_argument("--format", choices=FORMATS, help="recording format (default: detected from the files)")
    g.add_argument("--video", help="scene video (default: the recording's own, e.g. world.mp4)")
    g.add_argument("--out", required=True, help="output folder (created if needed)")
    g.add_argument("--aoi", choices=("pupil", "mesh"), help="AOI shapes: 'pupil' (eye/nose circles, mouth "
                                                             "ellipse, face box) or 'mesh' (landmark polygons)")
    g.add_argument("--mode", choices=("exclusive", "multi"), help="one label per sample (priority order) or all")
    g.add_argument("--radius-mode", choices=("iod", "px"), help="AOI sizes as fractions of the inter-ocular "
                                                                "distance (default) or fixed Pupil-style pixels")
    g.add_argument("--backend", choices=("mesh", "detect"), help="landmark backend (default: the config's)")
    g.add_argument("--offset-ns", type=int, help="added to gaze timestamps to reach the scene clock")
    g.add_argument("--overlay", action="store_true", help="also write overlay.mp4 (AOIs, hits, gaze circles)")
    g.add_argument("--config", help="TOML config whose landmarks / gaze_aoi stage settings to use")
    g.set_defaults(func=cmd_gaze)
