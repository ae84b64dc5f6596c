"""One analysis of a recording: per-face session measures, rolling windows, face pairs, quality; and its files.

Files written next to a result table ``<stem>.parquet`` (or by the end of a ``--out`` run):
``<stem>_analysis.json`` (everything), ``<stem>_analysis_faces.csv`` (one row per face), ``<stem>_analysis_windows
.csv`` (one row per face per window step), ``<stem>_analysis_dyads.csv`` (one row per face pair and signal) and
``<stem>_report.html`` (self-contained report, :mod:`rtface.analysis.report`). Thread ownership: none.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtface.analysis.features import FaceAccumulator
from rtface.analysis.summary import DYAD_SIGNALS, dyad_measures, session_measures, windows_table


@dataclass
class AnalysisSettings:
    window_s: float = 10.0  # rolling window (windows table, live values), s of media time
    step_s: float = 1.0  # windows table step, s
    smooth_window_s: float = 2.0  # LDLJ window, s
    dyad_signals: tuple[str, ...] = DYAD_SIGNALS
    dyad_window_s: float = 4.0
    dyad_step_s: float = 1.0
    dyad_max_lag_s: float = 2.0
    dyad_min_r: float = 0.5
    min_frames: int = 2  # faces seen in fewer frames get no measures (listed in quality)


@dataclass
class Analysis:
    faces: dict[int, dict[str, float]] = field(default_factory=dict)
    windows: dict[int, list[dict]] = field(default_factory=dict)
    dyads: list[dict] = field(default_factory=list)
    frames: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # per-face frame tables
    quality: dict = field(default_factory=dict)
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)


def analyze_accumulators(accs: dict[int, FaceAccumulator], quality: dict | None = None,
                         settings: AnalysisSettings | None = None) -> Analysis:
    """Measures of every face (and pair) from their accumulators."""
    s = settings or AnalysisSettings()
    out = Analysis(quality=dict(quality or {}), settings=s)
    short = []
    for fid, acc in sorted(accs.items()):
        if acc.n < s.min_frames:
            short.append(fid)
            continue
        ft = acc.frame_table()
        out.frames[fid] = ft
        m = session_measures(ft, acc.au_names, acc.lr_aus, smooth_window_s=s.smooth_window_s)
        m["closure_source"] = str(ft["closure_source"][0])
        if acc.decimations:
            m.update(streamed_measures(acc))
            out.quality.setdefault("decimated_history", {})[fid] = {
                "frames_seen": acc.seen, "frames_kept": acc.n, "stride": acc.stride, "decimations": acc.decimations}
        out.faces[fid] = m
        out.windows[fid] = windows_table(ft, s.window_s, s.step_s)
    out.dyads = dyad_measures(out.frames, s.dyad_signals, window_s=s.dyad_window_s, step_s=s.dyad_step_s,
                              max_lag_s=s.dyad_max_lag_s, min_r=s.dyad_min_r)
    out.quality["faces_too_short"] = short
    return out


_BLINK_KEYS = ("blink_count", "mov_blink_count", "blink_dur_mean_ms", "blink_dur_std_ms", "mov_blinkdur_mean",
               "mov_blinkdur_std", "long_closures")


def streamed_measures(acc: FaceAccumulator) -> dict[str, float]:
    """Session values streamed over every frame of a decimated accumulator (features module doc): ``n_frames``,
    ``duration_s`` and, where the eye signals were given, the blink measures and PERCLOS."""
    d = {"n_frames": float(acc.seen), "duration_s": float(acc.t_last - acc.t_first)}
    b = acc.blinks
    if b.closure_seen or b.flag_seen:
        st = b.stats()
        d.update({k: st[k] for k in _BLINK_KEYS})
        if b.closure_seen:
            d["perclos"] = st["perclos"]
    return d


def analyze_table(path: str | Path, settings: AnalysisSettings | None = None) -> Analysis:
    """Analyse a result table (.parquet/.csv); quality also from ``<stem>_session.json`` when it is there."""
    from rtface.analysis.table_input import accumulate, open_table

    s = settings or AnalysisSettings()
    src = open_table(path)
    accs, info = accumulate(src)
    q = {"source": str(path), **{k: v for k, v in info.items() if k != "origin"}}
    sj = session_json_path(Path(path))
    if sj.is_file():
        try:
            summ = json.loads(sj.read_text(encoding="utf-8"))
            q["drops"] = summ.get("stats", {}).get("drops", {})
            q["outcome"] = summ.get("outcome")
        except (OSError, ValueError):
            q["drops"] = "unreadable session file"
    return analyze_accumulators(accs, q, s)


def session_json_path(table: Path) -> Path:
    stem = table.with_suffix("")
    return stem.with_name(stem.name + "_session.json")


def output_paths(table: str | Path) -> dict[str, Path]:
    t = Path(table)
    stem = t.with_suffix("")
    base = stem.name
    return {"json": stem.with_name(base + "_analysis.json"), "faces": stem.with_name(base + "_analysis_faces.csv"),
            "windows": stem.with_name(base + "_analysis_windows.csv"),
            "dyads": stem.with_name(base + "_analysis_dyads.csv"), "report": stem.with_name(base + "_report.html")}


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if not str(k).startswith("_")}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        return _plain(v.item())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def dyads_plain(dyads: list[dict]) -> list[dict]:
    return [_plain(d) for d in dyads]


def to_dict(a: Analysis) -> dict:
    """JSON-ready dict: faces, windows, dyads, quality, settings (non-finite numbers become null)."""
    return _plain({"faces": a.faces, "windows": a.windows, "dyads": a.dyads, "quality": a.quality,
                   "settings": a.settings.__dict__})


def _write_rows(path: Path, rows: list[dict], first: list[str]) -> None:
    keys = list(first) + sorted({k for r in rows for k in r if k not in first and not k.startswith("_")})
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            w.writerow(["" if (v := _plain(r.get(k))) is None else v for k in keys])
    tmp.replace(path)


def write_outputs(a: Analysis, table: str | Path, *, report: bool = True) -> list[Path]:
    """Write the analysis files next to ``table`` (each written whole, then renamed). Returns the paths."""
    p = output_paths(table)
    tmp = p["json"].with_name(p["json"].name + ".tmp")
    tmp.write_text(json.dumps(to_dict(a), indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(p["json"])
    _write_rows(p["faces"], [{"face_id": f, **m} for f, m in a.faces.items()], ["face_id"])
    _write_rows(p["windows"], [{"face_id": f, **r} for f, rows in a.windows.items() for r in rows],
                ["face_id", "t_end"])
    _write_rows(p["dyads"], a.dyads, ["face_a", "face_b", "signal"])
    written = [p["json"], p["faces"], p["windows"], p["dyads"]]
    if report:
        from rtface.analysis.report import write_report

        write_report(a, p["report"], title=Path(table).name)
        written.append(p["report"])
    return written
