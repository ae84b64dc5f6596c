#!/usr/bin/env python
"""Build rtface/data/au_basis/au_basis.npz: FACS AU displacement bases on MediaPipe's 478-landmark canonical face.

Method (hybrid "MediaPipe-perceived" + geometric bases, see NOTICE.md / report.md): render the MakeHuman hm08 head
with FACSHuman AU deltas at several weights and three camera/light conditions with a NumPy z-buffer, detect with
MediaPipe FaceMesh (refine_landmarks), map to the canonical frame with the runtime's own geometry (rtface.geometry),
take the least-squares slope over the weight (the detector-measured field). For the AUs in GEO_AUS (those where the
detector on the untextured render does not follow the morph: cos(measured, geometric) < 0.55 in the first build)
the column is instead the geometric transfer of the source morph to the landmarks, with the aperture (lid/inner-lip)
and face-oval landmarks taken from the measured field. Every column is then made free of the similarity motion of
the stable anchors (ANCHORS, the same re-alignment the solver applies at run time), mirror-symmetrised and validated.

Usage (from the repo root): python scripts/build_au_basis.py --shared ../shared/data --out rtface/data/au_basis
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import pickle
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from au_basis import postprocess as pp  # noqa: E402
from au_basis import report as rep  # noqa: E402
from au_basis import validate as val  # noqa: E402
from au_basis.hm08 import SourceMissing, load_hm08  # noqa: E402
from au_basis.measure import VIEWS, geometric_transfer, run_jobs, slopes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# OpenFace-style name -> FACSHuman target (folder/name in the deltas npz)
BILATERAL = {"AU01": "01/1", "AU02": "01/2", "AU04": "01/4", "AU05": "01/5", "AU06": "01/6", "AU07": "01/7",
             "AU09": "02/9", "AU10": "02/10", "AU12": "02/12", "AU14": "02/14", "AU15": "02/15", "AU17": "02/17",
             "AU20": "02/20", "AU23": "02/23", "AU24": "02/24", "AU25": "03/25", "AU26": "03/26", "AU28": "02/28",
             "AU43": "01/43"}
# AUs with FACSHuman left/right targets ("L" = subject's left = +x in hm08 and canonical axes; checked on the data)
LR = {"AU01": ("01/L1", "01/R1"), "AU02": ("01/L2", "01/R2"), "AU05": ("01/L5", "01/R5"),
      "AU06": ("01/L6", "01/R6"), "AU07": ("01/L7", "01/R7"), "AU09": ("02/L9", "02/R9"),
      "AU10": ("02/L10", "02/R10"), "AU12": ("02/L12", "02/R12"), "AU14": ("02/L14", "02/R14"),
      "AU15": ("02/L15", "02/R15"), "AU20": ("02/L20", "02/R20"), "AU43": ("01/L43", "01/R43")}
WEIGHTS = (1.0 / 3.0, 2.0 / 3.0, 1.0)
COMBOS = {"smile (AU06+AU12)": {"AU06": 0.7, "AU12": 0.8},
          "surprise (AU01+AU02+AU05+AU26)": {"AU01": 0.7, "AU02": 0.7, "AU05": 0.6, "AU26": 0.5},
          "anger (AU04+AU07+AU23)": {"AU04": 0.8, "AU07": 0.6, "AU23": 0.6},
          "sadness (AU01+AU04+AU15)": {"AU01": 0.7, "AU04": 0.5, "AU15": 0.7},
          "disgust (AU09+AU10+AU17)": {"AU09": 0.7, "AU10": 0.6, "AU17": 0.5}}
# ICT-FaceKit shapes (MIT) for the independent cross-check (ICT's own AU table; AU26 ~ jawOpen, AU28 ~ roll lower)
ICT_CHECK = {"AU01": "browInnerUp", "AU02": "browOuterUp", "AU04": "browDown", "AU05": "eyeWide",
             "AU06": "cheekSquint", "AU07": "eyeSquint", "AU09": "noseSneer", "AU10": "mouthShrugUpper",
             "AU12": "mouthSmile", "AU14": "mouthDimple", "AU15": "mouthFrown", "AU17": "mouthShrugLower",
             "AU20": "mouthStretch", "AU24": "mouthPress", "AU26": "jawOpen", "AU28": "mouthRollLower",
             "AU43": "eyeBlink"}
ICT_WEIGHTS = (0.5, 1.0)
FACS_AT_UNIT = 5.0   # ASSUMPTION: FACSHuman weight 1.0 ~ FACS intensity E (= 5)
# Stable anchors (forehead, glabella, nasal bridge, inner/outer eye corners): hardly moved by any AU. Columns are
# made free of the anchor-weighted similarity motion and the solver re-aligns each frame on the same anchors
# (rtface.au.solve), so alignment drift of the runtime pose (whose Procrustes set includes cheeks/jaw/nose alae that
# expressions move) cancels. Stored in the npz meta as "solve_realign_anchors".
ANCHORS = (10, 9, 8, 151, 6, 168, 197, 195, 33, 263, 133, 362)
# AUs whose column is the geometric transfer (rule: cos(measured, geometric) < 0.55 in the development build of
# 2026-11-21; the detector barely follows smooth-skin motion on the untextured render and instead moves the mouth
# region / chin, which made AU04/AU09/AU10 absorb real smiles). AU06 (cos 0.11) is the exception and stays
# measured: its geometric column (cheek skin up ~1 cm, nothing at the lid) is never selected on real smiles
# (development people), where MediaPipe reports ~0.15 cm of cheek motion; the detector-perceived coupling is the
# only cheek-raise signal MediaPipe gives (see report.md, "Design decisions").
GEO_AUS = ("AU04", "AU05", "AU07", "AU09", "AU10", "AU14", "AU15", "AU20", "AU23")
GEO_COS_MIN = 0.55
JAW_AUS = ("AU17", "AU26")  # AUs whose columns keep the jaw/chin silhouette landmarks (the jaw line moves)


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def ict_crosscheck(args: argparse.Namespace, names: list[str], basis: np.ndarray, c: np.ndarray,
                   w478: np.ndarray, mirror_idx: np.ndarray) -> dict[str, tuple[str, float]]:
    """Same detector pipeline on the ICT-FaceKit head (frontal view, weights ICT_WEIGHTS): cosine between the
    ICT-derived field and the shipped FACSHuman-derived column, per AU. Empty if ICT data is missing."""
    from au_basis.ict import load_ict
    try:
        ict = load_ict(args.shared / "au_sources" / "ict_facekit")
    except SourceMissing as exc:
        print(f"  ICT cross-check skipped: {exc}")
        return {}
    shapes = sorted(set(ICT_CHECK.values()))
    jobs = [(0, ())] + [(0, ((t, float(w)),)) for t in shapes for w in ICT_WEIGHTS]
    cache = None if args.cache is None else args.cache.with_suffix(".ict.pkl")
    if cache is not None and cache.is_file():
        with open(cache, "rb") as fh:
            meas, _ = pickle.load(fh)
    else:
        meas, raw = run_jobs(ict, jobs, args.workers, VIEWS[:1])
        if cache is not None:
            with open(cache, "wb") as fh:
                pickle.dump((meas, raw), fh)
    out = {}
    for au, shape in ICT_CHECK.items():
        b = slopes(meas, shape, ICT_WEIGHTS, 1)[0]
        b = pp.remove_similarity(0.5 * (b + pp.mirror(b, mirror_idx)), c, w478)[0]  # w478 = anchor weights here
        out[au] = (shape, val.cosine(b[:468], basis[names.index(au)][:468].astype(np.float64)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "rtface" / "data" / "au_basis")
    ap.add_argument("--workers", type=int, default=2, help="render processes (MediaPipe runs in the parent)")
    ap.add_argument("--views", type=int, default=len(VIEWS), help="camera/light conditions to use (1..3)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="development: pickle of the detections; reused if it exists (skips rendering)")
    args = ap.parse_args(argv)
    t_start = time.time()
    fh_dir = args.shared / "au_sources" / "facshuman"
    try:
        head = load_hm08(fh_dir)
    except SourceMissing as exc:
        print(f"error: {exc} (pass --shared pointing at the shared data folder)", file=sys.stderr)
        return 2
    from rtface.geometry.canonical_model import load_canonical_model
    model = load_canonical_model()
    c, w478, mirror_idx = model.vertices_cm, model.weights_478, model.mirror_index
    views = VIEWS[:max(1, min(args.views, len(VIEWS)))]
    nv = len(views)

    targets = list(BILATERAL.values()) + [t for pair in LR.values() for t in pair]
    jobs = []
    for vi in range(nv):
        jobs.append((vi, ()))
        jobs += [(vi, ((t, float(w)),)) for t in targets for w in WEIGHTS]
    combo_jobs = {k: (0, tuple((BILATERAL[a], float(x)) for a, x in v.items())) for k, v in COMBOS.items()}
    jobs += list(combo_jobs.values())
    print(f"rendering + detecting {len(jobs)} images ({nv} views, {len(targets)} targets, weights {WEIGHTS})")
    t0 = time.time()
    meas, raw = {}, {}
    if args.cache is not None and args.cache.is_file():
        with open(args.cache, "rb") as fh:
            meas, raw = pickle.load(fh)
    todo = [j for j in jobs if j not in meas]
    if todo:
        m_new, r_new = run_jobs(head, todo, args.workers, views)
        meas.update(m_new)
        raw.update(r_new)
        if args.cache is not None:
            with open(args.cache, "wb") as fh:
                pickle.dump((meas, raw), fh)
    print(f"  {len(todo)} rendered, {len(jobs) - len(todo)} reused from the cache")
    t_render = time.time() - t0
    print(f"  done in {t_render:.1f} s")

    geo, valid = geometric_transfer(head, raw[(0, ())], meas[(0, ())], w478, targets)
    rows_ok = valid.copy()
    rows_ok[pp.IRIS_IDS] = False
    row_w = np.ones(478)
    row_w[pp.IRIS_IDS] = 0.0

    w_align = np.zeros(478)
    w_align[list(ANCHORS)] = 1.0

    def process(meas_b: np.ndarray, geo_b: np.ndarray, use_geo: bool, jaw: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> (final field, anchor-realigned measured field, anchor-realigned geometric field)."""
        m_c = pp.remove_similarity(meas_b, c, w_align)[0]
        g_c = pp.remove_similarity(geo_b, c, w_align)[0]
        b = pp.hybrid(m_c, g_c) if use_geo else m_c
        # far-field mask around the source morph's own support (geometric field > 10 % of its max; 1 within 1 cm,
        # Gaussian sigma 1.5 cm beyond): removes detector noise on the silhouette/far landmarks
        mask = pp.soft_mask(g_c, m_c, c, top=0)
        # face-oval (silhouette) landmarks: the worst correspondences, both measured (detector noise) and geometric
        # (pins on the silhouette land on neck/scalp). Kept only on the jaw/chin line (canonical y < -3 cm) of the
        # AUs that move the jaw (JAW_AUS), zero elsewhere.
        oval = pp.FACE_OVAL_IDS
        mask[oval] *= ((c[oval, 1] < -3.0) & jaw).astype(float)
        return pp.finish(b, mask, c, w_align), m_c, g_c

    stats: dict[str, dict] = {}
    final: dict[str, np.ndarray] = {}
    full_disp: dict[str, np.ndarray] = {}
    for au, tgt in BILATERAL.items():
        b, per_view, r2, full = slopes(meas, tgt, WEIGHTS, nv)
        asym = float(np.linalg.norm(b - pp.mirror(b, mirror_idx)) / np.linalg.norm(b))
        b_sym = 0.5 * (b + pp.mirror(b, mirror_idx))
        g_sym = 0.5 * (geo[tgt] + pp.mirror(geo[tgt], mirror_idx))
        fin, m_c, g_c = process(b_sym, g_sym, au in GEO_AUS, au in JAW_AUS)
        final[au] = fin
        # calibration input: the measured weight-1 render, or for geometric columns the column itself
        full_disp[au] = fin if au in GEO_AUS else pp.remove_similarity(full, c, w_align)[0]
        vc = [val.cosine(per_view[i], per_view[j], rows_ok) for i in range(nv) for j in range(i + 1, nv)]
        stats[au] = {"source": tgt, "r2": r2, "asym": asym, "view_cos": float(np.mean(vc)) if vc else float("nan"),
                     "cos_geo": val.cosine(m_c, g_c, rows_ok), "cos_geo_xy": val.cosine(m_c[:, :2], g_c[:, :2], rows_ok),
                     "sim_unweighted": pp.similarity_fraction(fin, c), "column": "geometric" if au in GEO_AUS
                     else "measured"}
    lr_final: dict[str, np.ndarray] = {}
    lr_full: dict[str, np.ndarray] = {}
    for au, (tl, tr) in LR.items():
        bl, pvl, r2l, fl = slopes(meas, tl, WEIGHTS, nv)
        br, pvr, r2r, fr = slopes(meas, tr, WEIGHTS, nv)
        b_l = 0.5 * (bl + pp.mirror(br, mirror_idx))
        g_l = 0.5 * (geo[tl] + pp.mirror(geo[tr], mirror_idx))
        fin, m_c, g_c = process(b_l, g_l, au in GEO_AUS, au in JAW_AUS)
        lr_final[au + "_L"], lr_final[au + "_R"] = fin, pp.mirror(fin, mirror_idx)
        if au in GEO_AUS:
            lr_full[au + "_L"], lr_full[au + "_R"] = fin, pp.mirror(fin, mirror_idx)
        else:
            lr_full[au + "_L"] = pp.remove_similarity(fl, c, w_align)[0]
            lr_full[au + "_R"] = pp.remove_similarity(fr, c, w_align)[0]
        lr_asym = float(np.linalg.norm(bl - pp.mirror(br, mirror_idx)) / np.linalg.norm(bl))
        for side, t, r2 in (("_L", tl, r2l), ("_R", tr, r2r)):
            stats[au + side] = {"source": t, "r2": r2, "asym": lr_asym, "view_cos": float("nan"),
                                "cos_geo": val.cosine(m_c, g_c, rows_ok) if side == "_L" else float("nan"),
                                "cos_geo_xy": val.cosine(m_c[:, :2], g_c[:, :2], rows_ok) if side == "_L"
                                else float("nan"), "sim_unweighted": pp.similarity_fraction(lr_final[au + side], c),
                                "column": "geometric" if au in GEO_AUS else "measured"}

    names = list(BILATERAL)
    basis = np.stack([final[n] for n in names]).astype(np.float32)
    mat = basis.reshape(len(names), -1).T.astype(np.float64)
    names_lr = list(lr_final)
    basis_lr = np.stack([lr_final[n] for n in names_lr]).astype(np.float32)
    # "unilateral mode": bilateral columns without L/R variants + the L/R columns instead of their bilateral one
    uni_names = [n for n in names if n not in LR] + names_lr
    uni_mat = np.concatenate([mat[:, [names.index(n) for n in names if n not in LR]],
                              basis_lr.reshape(len(names_lr), -1).T.astype(np.float64)], axis=1)

    # --- calibration: NNLS activation of the measured weight-1.0 render (raw, unmasked, view-mean) ---
    a_hat = np.array([val.solve(mat, full_disp[n], row_w)[k] for k, n in enumerate(names)])
    unit_to_facs = (FACS_AT_UNIT / np.clip(a_hat, 0.5, 2.0)).astype(np.float32)
    a_hat_lr = np.array([val.solve(uni_mat, lr_full[n], row_w)[uni_names.index(n)] for n in names_lr])
    unit_to_facs_lr = (FACS_AT_UNIT / np.clip(a_hat_lr, 0.5, 2.0)).astype(np.float32)
    for k, n in enumerate(names):
        stats[n]["a_hat"], stats[n]["u2f"] = float(a_hat[k]), float(unit_to_facs[k])
    for k, n in enumerate(names_lr):
        stats[n]["a_hat"], stats[n]["u2f"] = float(a_hat_lr[k]), float(unit_to_facs_lr[k])

    # --- validation ---
    ict_cos = ict_crosscheck(args, names, basis, c, w_align, mirror_idx)
    for n in names:
        stats[n]["ict"] = ict_cos.get(n, (None, float("nan")))
    rng = np.random.default_rng(0)
    neutrals = np.stack([meas[(vi, ())] for vi in range(nv)])
    noise_cm = float(np.sqrt(((neutrals - neutrals.mean(0))[:, :468] ** 2).mean())) if nv > 1 else 0.02
    mat_v = mat * np.sqrt(np.repeat(row_w, 3))[:, None]
    v = {"cond_bilateral": val.condition_number(mat_v), "cond_unilateral_mode": val.condition_number(uni_mat),
         "coherence": val.coherence(mat_v, names), "coherence_uni": val.coherence(uni_mat, uni_names, 5),
         "nnls_clean": val.nnls_recovery(mat_v, 200, rng), "noise_cm": noise_cm,
         "nnls_noisy": val.nnls_recovery(mat_v, 200, rng, noise_cm)}
    combos = {}
    for k, job in combo_jobs.items():
        a = val.solve(mat, pp.remove_similarity(meas[job] - meas[(0, ())], c, w_align)[0], row_w)
        combos[k] = (COMBOS[k], {n: float(a[i]) for i, n in enumerate(names)})
    v["combos"] = combos
    london = val.london_photos(args.shared / "faces" / "london", mat, row_w, c, w_align)
    v["london"] = None if london is None else [(pid, (a * unit_to_facs).tolist()) for pid, a in london]
    t_total = time.time() - t_start
    v["t_render"], v["t_total"], v["n_images"] = t_render, t_total, len(jobs)

    # --- write ---
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    npz_src = fh_dir / "facshuman_au_deltas_on_makehuman_hm08.npz"
    import mediapipe
    meta = {
        "build_date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "script": "scripts/build_au_basis.py", "python": platform.python_version(),
        "mediapipe": mediapipe.__version__,
        "units": "canonical cm per unit FACSHuman target weight; axes of face_model_with_iris.obj "
                 "(x = subject's left, y up, z toward viewer)",
        "sources": [{"file": "au_sources/facshuman/facshuman_au_deltas_on_makehuman_hm08.npz",
                     "sha256": sha256(npz_src), "licence": "LGPL-3.0 (FACSHuman targets, Gilbert et al. 2021)"},
                    {"file": "au_sources/facshuman/makehuman_base/base.obj.xz",
                     "licence": "CC0 (MakeHuman hm08 base mesh)"},
                    {"file": "rtface/data/mediapipe/face_model_with_iris.obj", "licence": "Apache-2.0"}],
        "method": "Hybrid MediaPipe-perceived / geometric: render hm08 + w*delta (numpy z-buffer, 640 px, focal "
                  "1000, 2x supersampled), FaceMesh(static_image_mode, refine_landmarks) -> rtface.geometry "
                  "metric_landmarks + PoseSolver -> canonical frame; LS slope over w through the origin, averaged "
                  "over views (measured field). Columns of " + ", ".join(GEO_AUS) + " = geometric transfer of the "
                  "source morph (delta at the hm08 surface point under each landmark of the frontal neutral render), "
                  "with lid/inner-lip aperture and face-oval landmarks from the measured field; the others = "
                  "measured field. Similarity motion of the stable anchors " + str(list(ANCHORS)) + " removed "
                  "(the solver re-aligns on the same anchors); mirror symmetrisation; soft far-field mask (1 within "
                  "1 cm of the source morph's geometric support, Gaussian sigma 1.5 cm beyond); iris rows zero.",
        "solve_realign_anchors": list(ANCHORS),
        "geometric_columns": list(GEO_AUS),
        "weights": list(WEIGHTS), "views": [vw.__dict__ for vw in views],
        "targets": {n: stats[n]["source"] for n in names + names_lr},
        "unit_to_facs_assumption": f"FACSHuman weight 1.0 = FACS {FACS_AT_UNIT} (E); divided by the NNLS "
                                   "activation the weight-1.0 render itself gets (detector/basis response).",
        "solver_hint": "use rows of landmarks 0..467 only (iris rows are zero); bilateral set alone, or "
                       "unilateral mode = bilateral AUs without L/R + names_lr (never both for one AU).",
        "cond_bilateral": v["cond_bilateral"], "cond_unilateral_mode": v["cond_unilateral_mode"],
        "build_seconds": round(t_total, 1),
        "ict_crosscheck_cos": {n: [stats[n]["ict"][0], round(stats[n]["ict"][1], 3)] for n in names
                               if stats[n]["ict"][0] is not None},
    }
    np.savez_compressed(out / "au_basis.npz", names=np.array(names), basis=basis, unit_to_facs=unit_to_facs,
                        names_lr=np.array(names_lr), basis_lr=basis_lr, unit_to_facs_lr=unit_to_facs_lr,
                        meta_json=np.array(json.dumps(meta)))
    shutil.copyfile(fh_dir / "LICENSE", out / "LICENSE-FACSHuman")
    sets = val.connection_sets()
    (out / "report.md").write_text(rep.report_md(names, basis, names_lr, basis_lr, stats, v, c, sets, meta))
    (out / "NOTICE.md").write_text(rep.notice_md(meta, v))
    print(f"wrote {out}/au_basis.npz ({len(names)} bilateral + {len(names_lr)} L/R AUs); "
          f"cond {v['cond_bilateral']:.1f}; total {t_total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
