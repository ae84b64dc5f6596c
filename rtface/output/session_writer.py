"""Session summary files written next to a result table: ``<stem>_session.json`` and ``<stem>_session.csv``.

The JSON holds the whole run summary (stats, drops, every stage's ``summary()``); the CSV has one row per face id
with the per-face session variables of every stage that reports ``faces`` (the AU stage's OpenDBM-style
``fac_AU12int_mean``, ``fac_AU12pres_pct``, emotion composites, ``fac_pspi_*``; the behaviour stage's measures,
docs/behaviour-analyses.md). Written only when the run completed.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "tolist"):
        return _plain(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def session_paths(table_path: Path) -> tuple[Path, Path]:
    stem = table_path.with_suffix("")
    return stem.with_name(stem.name + "_session.json"), stem.with_name(stem.name + "_session.csv")


def write_session(table_path: Path, summary: dict) -> list[Path]:
    """Write the JSON (always) and the per-face CSV (when an AU stage reported faces). Returns the paths."""
    jpath, cpath = session_paths(table_path)
    jpath.write_text(json.dumps(_plain(summary), indent=2, allow_nan=False), encoding="utf-8")
    written = [jpath]
    faces: dict = {}  # every stage's per-face variables side by side (the first stage wins on a shared name)
    for st in summary.get("stages", {}).values():
        if isinstance(st, dict) and isinstance(st.get("faces"), dict):
            for fid, vals in st["faces"].items():
                if isinstance(vals, dict):
                    merged = faces.setdefault(fid, {})
                    for k, v in vals.items():
                        merged.setdefault(k, v)
    if faces:
        keys = sorted({k for v in faces.values() for k in v})
        with open(cpath, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["face_id", *keys])
            for fid, vals in sorted(faces.items(), key=lambda kv: int(kv[0])):
                w.writerow([fid, *[_plain(vals.get(k)) for k in keys]])
        written.append(cpath)
    return written
