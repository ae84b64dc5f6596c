"""Self-contained HTML report of an :class:`~rtface.analysis.session.Analysis`: one file, inline CSS and SVG,
no scripts and no external resource (it opens offline; nothing is fetched).

Sections: session quality (frames, frames without a face, neutral readiness, drops, which landmark and eye
signals were used), then per face the measures (expressivity, asymmetry, kinematics, head, blinks) and plots of
AU intensities (heat map), expressivity, emotions, head pose, eye closure with blinks, asymmetry and speed per
region and the rolling windows; then face pairs (cross-correlation tables and lag per window).
"""
from __future__ import annotations

import math
import time
from html import escape
from pathlib import Path

import numpy as np

from rtface import __version__
from rtface.analysis import blinks
from rtface.analysis.mesh import REPORT_REGIONS
from rtface.analysis.svg import heatmap, line_chart

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1180px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}
h3{font-size:15px;margin:16px 0 4px}
table{border-collapse:collapse;margin:6px 0 12px}td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}
th{background:#f3f3f3}td.k,th.k{text-align:left;font-family:ui-monospace,monospace;font-size:12px}
.grid3{display:flex;flex-wrap:wrap;gap:12px}.grid3 table{flex:0 0 auto}
svg.plot{display:block;margin:4px 0 10px;background:#fff}
svg .ptitle{font-size:12px;font-weight:600}svg .xtick,svg .ytick,svg .legend{font-size:10px;fill:#444}
svg .ytick{text-anchor:end}svg .xtick{text-anchor:middle}svg .xlabel,svg .ylabel{font-size:10px;fill:#444;
text-anchor:middle}svg .frame{fill:none;stroke:#999}svg .grid{stroke:#eee}svg .marker{stroke:#d62728;
stroke-opacity:.5}svg .empty{font-size:12px;fill:#999}.note{color:#666;font-size:12px}
"""

GROUPS = {
    "Expressivity": ("expressivity_", "fac_com", "fac_pos", "fac_neg", "bbx_activations", "bbx_rate_min",
                     "bbx_peak_", "bbx_density", "bbx_diversity"),
    "Asymmetry (cm; AU: FACS units)": ("asym_", "au_asym_"),
    "Kinematics (cm/s, cm/s², cm/s³; LDLJ dimensionless)": ("speed_", "acc_", "jerk_", "ldlj_"),
    "Head (deg, deg/s, cm/s)": ("head_",),
    "Blinks": ("blink_", "mov_blink", "long_closures", "perclos", "closure_source"),
    "Frames": ("n_frames", "duration_s", "confidence_mean", "neutral_ready_frac"),
}


_DROP_WORDS = ("drop", "overrun", "skip", "torn", "error", "premature", "unreadable", "late", "missed", "lost")


def _v(x) -> str:
    if isinstance(x, float):
        return "–" if not math.isfinite(x) else f"{x:.4g}"
    return escape(str(x))


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f'<tr><td class="k">{escape(k)}</td><td>{_v(v)}</td></tr>' for k, v in rows)
    return f"<table><tr><th class='k'>variable</th><th>value</th></tr>{body}</table>"


def _measure_tables(m: dict) -> str:
    out = []
    for title, prefixes in GROUPS.items():
        rows = [(k, v) for k, v in m.items() if k.startswith(prefixes)]
        if rows:
            out.append(f"<div><h3>{escape(title)}</h3>{_table(rows)}</div>")
    return "<div class='grid3'>" + "".join(out) + "</div>"


def _quality(q: dict, faces: dict) -> str:
    rows = [(k, q[k]) for k in ("source", "rows", "frames", "frames_without_face", "landmarks", "outcome")
            if k in q]
    rows += [(f"face {f}: neutral ready (share of frames)", m.get("neutral_ready_frac", math.nan))
             for f, m in faces.items()]
    rows += [(f"face {f}: eye signal", m.get("closure_source", "")) for f, m in faces.items()]
    if q.get("faces_too_short"):
        rows.append(("faces seen too briefly for measures", ", ".join(map(str, q["faces_too_short"]))))
    drops = q.get("drops")
    if isinstance(drops, dict):
        for k, v in drops.items():
            for kk, vv in (v.items() if isinstance(v, dict) else [("", v)]):
                name = f"{k}.{kk}" if kk else k
                if isinstance(vv, (int, float)) and any(w in name for w in _DROP_WORDS):
                    rows.append((f"drops: {name}", vv))
    return _table(rows)


def _face_plots(fid: int, ft: dict, m: dict, windows: list[dict]) -> str:
    t = ft["t"]
    au_cols = [c for c in ft if c.startswith("AU") and c.endswith("_r")]
    parts = []
    if au_cols:
        z = np.stack([ft[c] for c in au_cols])
        parts.append(heatmap([c[:-2] for c in au_cols], t, z, title="AU intensity (FACS 0-5)", key="aus", zmax=5.0))
    ex = [("expressivity (mean AU, 0-5)", t, ft["expressivity"])]
    if "fac_comintsoft" in ft:
        ex.append(("fac_comintsoft (0-1)", t, ft["fac_comintsoft"]))
    parts.append(line_chart(ex, title="Expressivity", ylabel="value", key="expressivity"))
    emo = [(c[len("emotion_"):], t, ft[c]) for c in ft if c.startswith("emotion_")]
    if emo:
        parts.append(line_chart(emo, title="Emotion probabilities", ylabel="p", key="emotions"))
    parts.append(line_chart([(a, t, ft[a]) for a in ("yaw", "pitch", "roll")], title="Head pose",
                            ylabel="deg", key="pose"))
    parts.append(line_chart([("angular speed", t, ft["head_angspeed"])], title="Head angular speed",
                            ylabel="deg/s", key="head_speed"))
    ev = blinks.closure_events(t, ft["closure"]) if np.any(np.isfinite(ft["closure"])) else []
    marks = np.array([s for s, _ in ev])
    parts.append(line_chart([(f"closure ({m.get('closure_source', '')})", t, ft["closure"])],
                            title=f"Eye closure and blinks ({int(m.get('blink_count', 0) or 0)} blinks)",
                            ylabel="0 open .. 1 closed", key="blinks", markers=marks, marker_label="closure at"))
    parts.append(line_chart([(r, t, ft[f"asym_{r}"]) for r in REPORT_REGIONS], title="Landmark asymmetry",
                            ylabel="cm", key="asymmetry"))
    parts.append(line_chart([(r, t, ft[f"speed_{r}"]) for r in REPORT_REGIONS],
                            title="Landmark speed (pose removed)", ylabel="cm/s", key="kinematics"))
    if windows:
        tw = np.array([w["t_end"] for w in windows])
        parts.append(line_chart([(k, tw, np.array([w.get(k, np.nan) for w in windows], float))
                                 for k in ("expressivity", "speed_face", "blink_rate_min")],
                                title=f"Rolling windows ({windows[0]['window_s']:g} s)", ylabel="value",
                                key="windows"))
    return "".join(parts)


def _dyads(dyads: list[dict]) -> str:
    if not dyads:
        return "<p class='note'>One face in this recording: no pair measures.</p>"
    keys = ["face_a", "face_b", "signal", "xc_peak_r_mean", "xc_lag_median_s", "xc_a_leads_frac", "xc_windows",
            "xc_global_r", "xc_global_lag_s", "leader"]
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_v(d.get(k))}</td>" for k in keys) + "</tr>" for d in dyads)
    out = [f"<table><tr>{head}</tr>{body}</table>",
           "<p class='note'>Positive lag: face_b repeats face_a later (face_b follows).</p>"]
    for d in dyads:
        w = d.get("_windows")
        if w is None or not len(w["t"]):
            continue
        out.append(line_chart([("lag at peak r", w["t"], w["lag_s"]), ("peak r", w["t"], w["peak_r"])],
                              title=f"Faces {d['face_a']} / {d['face_b']}, {d['signal']}: windowed "
                                    f"cross-correlation", ylabel="s / r", key=f"dyad_{d['signal']}"))
    return "".join(out)


def render(a, *, title: str = "rtface analysis") -> str:
    """The report as one HTML string."""
    faces = "".join(
        f"<h2 id='face-{fid}'>Face {fid}</h2>{_face_plots(fid, ft, a.faces[fid], a.windows.get(fid, []))}"
        f"{_measure_tables(a.faces[fid])}" for fid, ft in a.frames.items())
    if not a.frames:
        faces = "<p class='note'>No face was seen long enough for measures.</p>"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
            f"img-src data:\"><title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1><p class='note'>rtface {escape(__version__)} behaviour analysis, {stamp}. "
            f"Definitions, units and sources: docs/behaviour-analyses.md.</p>"
            f"<h2>Session quality</h2>{_quality(a.quality, a.faces)}{faces}"
            f"<h2>Two-person coordination</h2>{_dyads(a.dyads)}</body></html>")


def write_report(a, path: str | Path, *, title: str = "rtface analysis") -> Path:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(render(a, title=title), encoding="utf-8")
    tmp.replace(p)
    return p
