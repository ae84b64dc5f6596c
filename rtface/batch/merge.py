"""Chunks of one video -> one result table and one session summary.

Chunk k processed frames ``[start_k, stop_k)`` and contributes ``[keep_from_k, stop_k)``; the frames before
``keep_from_k`` (the overlap, also processed by chunk k-1) let the tracker lock on and the per-person face shape
settle, and they are where face ids are stitched: a face id of chunk k takes the id of the chunk k-1 face whose
boxes overlap it most (mean IoU over the overlap frames, at least ``min_iou``); faces that match nothing get new
ids. The session summary (OpenDBM-style variables per face) is recomputed over the merged rows with the same
accumulator the AU stage uses, so it equals what one pass would give for the same per-frame values.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rtface.output.tables import flatten

MIN_IOU = 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of boxes a, b (N, 4) x0 y0 x1 y1."""
    x0 = np.maximum(a[:, 0], b[:, 0])
    y0 = np.maximum(a[:, 1], b[:, 1])
    x1 = np.minimum(a[:, 2], b[:, 2])
    y1 = np.minimum(a[:, 3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def _boxes(t, frames_lo: int, frames_hi: int) -> dict[int, dict[int, np.ndarray]]:
    """face_id -> frame -> box for rows with a face in [frames_lo, frames_hi)."""
    frame = t.column("frame").to_numpy()
    fid = t.column("face_id").to_numpy()
    box = np.stack([t.column(c).to_numpy() for c in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")], axis=1)
    out: dict[int, dict[int, np.ndarray]] = {}
    for i in np.nonzero((frame >= frames_lo) & (frame < frames_hi) & (fid >= 0))[0]:
        out.setdefault(int(fid[i]), {})[int(frame[i])] = box[i]
    return out


def stitch_ids(prev, cur, lo: int, hi: int, prev_map: dict[int, int], next_id: int,
               min_iou: float = MIN_IOU) -> tuple[dict[int, int], int]:
    """Map chunk ``cur``'s face ids to the merged ids, matching ``prev`` (already mapped by ``prev_map``) over
    frames [lo, hi). Returns (map, next free id)."""
    a, b = _boxes(prev, lo, hi), _boxes(cur, lo, hi)
    pairs = []
    for cid, cb in b.items():
        for pid, pb in a.items():
            common = sorted(set(cb) & set(pb))
            if common:
                iou = _iou(np.array([cb[f] for f in common]), np.array([pb[f] for f in common]))
                pairs.append((float(iou.mean()) * len(common) / max(len(cb), 1), cid, pid))
    mapping: dict[int, int] = {}
    used: set[int] = set()
    for score, cid, pid in sorted(pairs, reverse=True):
        if score >= min_iou and cid not in mapping and pid not in used:
            mapping[cid] = prev_map.get(pid, pid)
            used.add(pid)
    for cid in sorted(set(np.unique(cur.column("face_id").to_numpy())) - {-1}):
        if int(cid) not in mapping:
            mapping[int(cid)] = next_id
            next_id += 1
    return mapping, next_id


def merge_chunks(parts: list[dict], final: Path, *, fmt: str) -> dict:
    """``parts``: the chunk jobs in order (``output``, ``start``, ``keep_from``, ``stop``). Writes ``final``
    (.parquet compact or .csv flat) and its session files; returns a summary dict (frames, rows, id maps)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables, maps = [], []
    prev = None
    prev_map: dict[int, int] = {}
    next_id = 0
    for k, part in enumerate(parts):
        t = pq.read_table(part["output"])
        if prev is None:
            ids = sorted(set(np.unique(t.column("face_id").to_numpy())) - {-1})
            mapping = {int(i): int(i) for i in ids}
            next_id = (max(ids) + 1) if ids else 0
        else:
            mapping, next_id = stitch_ids(prev, t, int(part["start"]), int(part["keep_from"]), prev_map, next_id)
        fid = t.column("face_id").to_numpy()
        new = np.array([mapping.get(int(i), -1) if i >= 0 else -1 for i in fid], dtype=np.int32)
        stitched = t.set_column(t.schema.get_field_index("face_id"), "face_id", pa.array(new, pa.int32()))
        keep = pc.greater_equal(stitched.column("frame"), int(part["keep_from"]))
        if part.get("stop"):
            keep = pc.and_(keep, pc.less(stitched.column("frame"), int(part["stop"])))
        tables.append(stitched.filter(keep))
        maps.append({str(c): m for c, m in mapping.items()})
        prev, prev_map = t, mapping
    merged = pa.concat_tables(tables).replace_schema_metadata(tables[0].schema.metadata)
    final = Path(final)
    tmp = final.with_name(final.name + ".partial")
    if fmt == "csv":
        import pyarrow.csv as pcsv

        flat = flatten(merged)
        with open(tmp, "wb") as f:
            f.write((",".join(flat.column_names) + "\n").encode())
            pcsv.write_csv(flat, f, write_options=pcsv.WriteOptions(include_header=False))
    else:
        pq.write_table(merged, tmp, row_group_size=1024, compression="zstd")
    tmp.replace(final)
    summary = _session(merged, parts)
    summary["chunks"] = [{"start": p["start"], "keep_from": p["keep_from"], "stop": p["stop"], "face_ids": m}
                         for p, m in zip(parts, maps)]
    from rtface.output.session_writer import write_session

    write_session(final, summary)
    return {"frames": int(len(np.unique(merged.column("frame").to_numpy()))), "rows": merged.num_rows,
            "output": str(final)}


def _session(merged, parts: list[dict]) -> dict:
    """Session summary of the merged rows (AU stage variables recomputed over every kept row)."""
    from rtface.au.session import SessionAccumulator

    frames = int(len(np.unique(merged.column("frame").to_numpy())))
    fids = merged.column("face_id").to_numpy()
    summary: dict = {"stats": {"frames": frames, "faces_total": int((fids >= 0).sum()),
                               "frames_without_face": int((fids < 0).sum())},
                     "outcome": "completed", "complete": True, "stages": {}}
    names = [c[:-2] for c in merged.column_names if c.endswith("_r") and c.startswith("AU")]
    first = Path(parts[0]["output"])
    threshold = 1.0
    try:  # the AU stage's threshold as the chunks used it
        js = json.loads(first.with_name(first.stem + "_session.json").read_text())
        for st in js.get("stages", {}).values():
            if isinstance(st, dict) and "pspi_threshold" in st:
                threshold = float(st["pspi_threshold"])
    except (OSError, ValueError):
        pass
    if names:
        acc = SessionAccumulator(tuple(names), pspi_threshold=threshold)
        r = np.stack([merged.column(f"{n}_r").to_numpy() for n in names], axis=1)
        c = np.stack([merged.column(f"{n}_c").to_numpy() for n in names], axis=1)
        for i in np.nonzero(fids >= 0)[0]:
            if np.isfinite(r[i]).all():
                acc.add(int(fids[i]), r[i], c[i] > 0.5)
        summary["stages"]["aus"] = {"names": names, "pspi_threshold": threshold, "faces": acc.summary()}
    return summary


def analyze_merged(table: Path) -> list[Path]:
    """Behaviour analysis files and report of a merged table (what ``[output] analyze`` gives a one-pass run);
    [] and a warning if it fails (the table stays complete)."""
    import logging

    try:
        from rtface.analysis.session import analyze_table, write_outputs

        return write_outputs(analyze_table(table), table)
    except Exception as exc:  # noqa: BLE001
        logging.getLogger("rtface").warning("behaviour analysis of %s failed (the table is complete): %s: %s",
                                            table, type(exc).__name__, exc)
        return []
