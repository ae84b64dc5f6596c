"""Markdown writers for rtface/data/au_basis/report.md and NOTICE.md (build-time)."""
from __future__ import annotations

import numpy as np

from .validate import landmark_label


def _f(x: float, nd: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{nd}f}"


def _ict(s: dict) -> str:
    shape, cos = s.get("ict", (None, float("nan")))
    return "n/a" if shape is None else f"{cos:.2f} ({shape})"


def _au_rows(names: list[str], basis: np.ndarray, stats: dict, c: np.ndarray, sets: dict) -> list[str]:
    rows = ["| AU | source | max cm/unit | RMS cm | linearity R^2 | cos(meas, geom) xyz / xy | cos(ICT) | view cos | "
            "L/R asym | unweighted sim. frac | NNLS a(w=1) | unit_to_facs | top-5 landmarks (cm) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, n in enumerate(names):
        mag = np.linalg.norm(basis[k], axis=1)
        top = np.argsort(-mag)[:5]
        s = stats[n]
        tops = "; ".join(f"{i} {landmark_label(int(i), c, sets)} {mag[i]:.2f}" for i in top)
        rows.append(f"| {n} | {s['source']} | {mag.max():.3f} | {np.sqrt((mag ** 2).mean()):.3f} | {_f(s['r2'])} | "
                    f"{_f(s['cos_geo'], 2)} / {_f(s['cos_geo_xy'], 2)} | {_ict(s)} | {_f(s['view_cos'], 2)} | {_f(s['asym'], 2)} | "
                    f"{_f(s['sim_unweighted'], 3)} | {_f(s['a_hat'], 2)} | {_f(s['u2f'], 2)} | {tops} |")
    return rows


def report_md(names, basis, names_lr, basis_lr, stats, v, c, sets, meta) -> str:
    L = ["# AU basis build report", "",
         f"Built {meta['build_date']} by `{meta['script']}` (MediaPipe {meta['mediapipe']}, Python {meta['python']}).",
         f"{v['n_images']} renders detected; render+detect {v['t_render']:.1f} s, whole build {v['t_total']:.1f} s.",
         "", "Units: canonical cm per unit FACSHuman target weight. Landmark labels: subject's L/R; rough reading "
         "from MediaPipe's connection sets and canonical position.", "",
         "Columns: *linearity R^2* = share of the displacement energy (all views, weights 1/3, 2/3, 1) explained "
         "by the straight line through the origin; *cos(meas, geom)* = cosine between the detector-measured field "
         "and a geometric transfer (source delta at the hm08 surface point under each detected landmark of the "
         "frontal neutral render), both after similarity removal and before masking, on-surface landmarks 0..467; "
         "*cos(ICT)* = cosine (landmarks 0..467) between this column and the field measured the same way (frontal "
         "view, weights 0.5 and 1) on the independent ICT-FaceKit head for the ICT shape named (ICT's AU table); "
         "*view cos* = mean cosine between the per-view slopes; *L/R asym* = |b - mirror(b)| / |b| before "
         "symmetrisation (for L/R rows: |b_L - mirror(b_R)| / |b_L|); *unweighted sim. frac* = share of the final "
         "column's energy that an unweighted similarity motion explains (the column is exactly free of the "
         "Procrustes-weighted one); *NNLS a(w=1)* = activation the weight-1.0 render gets against the basis.", "",
         "## Bilateral basis (`names`, `basis`)", ""]
    L += _au_rows(names, basis, stats, c, sets)
    L += ["", "## Unilateral variants (`names_lr`, `basis_lr`)", "",
          "Built from FACSHuman L/R targets, symmetrised (R = mirror of L). cos(meas, geom) on the L row.", ""]
    L += _au_rows(names_lr, basis_lr, stats, c, sets)
    cm, pairs = v["coherence"]
    cmu, pairs_u = v["coherence_uni"]
    L += ["", "## Conditioning", "",
          f"- Condition number of the bilateral matrix (478*3 x {len(names)}, iris rows zero): "
          f"**{v['cond_bilateral']:.1f}**",
          f"- Condition number in unilateral mode (bilateral AUs without L/R + the {len(names_lr)} L/R columns): "
          f"{v['cond_unilateral_mode']:.1f}",
          f"- Max pairwise coherence (max |cos| between columns), bilateral: **{cm:.3f}**; worst pairs: "
          + ", ".join(f"{a}/{b} {x:.3f}" for a, b, x in pairs),
          f"- Unilateral mode max coherence {cmu:.3f}; worst pairs: " + ", ".join(f"{a}/{b} {x:.3f}" for a, b, x in pairs_u),
          "", "## NNLS recovery (bilateral set)", "",
          "200 random activations, each AU on with p = 0.4, U(0.1, 1); error = max over AUs of |a_hat - a| "
          "(activation units, 1 = FACSHuman weight 1).",
          f"- noise-free: median {v['nnls_clean'][0]:.2e}, max {v['nnls_clean'][1]:.2e}",
          f"- with i.i.d. Gaussian noise {v['noise_cm']:.3f} cm per coordinate (RMS spread of the neutral "
          f"landmarks across the views): median {v['nnls_noisy'][0]:.3f}, max {v['nnls_noisy'][1]:.3f}", "",
          "## Rendered AU combinations (frontal view, detected, NNLS on the bilateral set)", "",
          "| combination | true weights | recovered (AUs > 0.1) |", "|---|---|---|"]
    for k, (truth, got) in v["combos"].items():
        t = ", ".join(f"{a} {x:.2f}" for a, x in truth.items())
        g = ", ".join(f"{a} {x:.2f}" for a, x in sorted(got.items(), key=lambda kv: -kv[1]) if x > 0.1)
        L.append(f"| {k} | {t} | {g} |")
    L += ["", "## Real photos: London set, smiling minus neutral (same person), FACS units", ""]
    if v["london"] is None:
        L.append("London photos not found; skipped.")
    else:
        arr = np.array([a for _, a in v["london"]])
        L.append(f"{len(arr)} people. Mean (median) per AU in FACS units (activation * unit_to_facs):")
        L.append("")
        L.append("| " + " | ".join(names) + " |")
        L.append("|" + "---|" * len(names))
        L.append("| " + " | ".join(f"{m:.2f} ({md:.2f})" for m, md in zip(arr.mean(0), np.median(arr, 0))) + " |")
        i12, i6 = names.index("AU12"), names.index("AU06")
        L.append("")
        L.append(f"AU12 > 1.0 FACS in {(arr[:, i12] > 1.0).sum()}/{len(arr)} people; AU06 > 0.5 in "
                 f"{(arr[:, i6] > 0.5).sum()}/{len(arr)}.")
    L += ["", DESIGN_NOTES]
    return "\n".join(L) + "\n"


DESIGN_NOTES = """## Design decisions (real-face read-out rework, 2026-11-21)

Evaluation protocol (scripts of the development session; the same evidence is tests/integration/test_aus_real.py):
London Set, 12 people; development decisions used only the 6 people at odd positions in sorted id order
(003, 008, 025, 038, 045, 087); the other 6 and the video are held out. Each person's neutral is estimated from a
moved copy of the neutral photo (rotate +-6 deg, scale 0.85, shift 40/-25 px), and both the smiling photo
(*smile*) and the neutral photo itself (*neutral*) are canonicalized with it, so the neutral carries real
re-detection noise. Video: rtface/data/samples/single_face.mp4 (FaceMesh in video mode), neutral = median of the
first 10 frames, first vs last 30 frames. Solver = AU stage defaults (ridge 0.01, upper 5, contour weight 0.25).
FACS units.

**Before** (previous basis: measured columns, MediaPipe-weighted similarity removal, no solve-time re-alignment):

| all 12 | AU01 | AU02 | AU04 | AU05 | AU06 | AU07 | AU09 | AU10 | AU12 | AU14 | AU15 | AU17 | AU20 | AU23 | AU24 | AU25 | AU26 | AU28 | AU43 |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| smile | 0.14 | 0.11 | 2.44 | 0.49 | 3.56 | 0.41 | 2.97 | 1.58 | 2.16 | 0.05 | 0.44 | 1.18 | 0.51 | 0.00 | 0.40 | 1.39 | 0.10 | 0.00 | 0.55 |
| neutral | 0.05 | 0.12 | 0.82 | 0.69 | 1.22 | 0.10 | 0.02 | 0.27 | 0.10 | 0.00 | 0.05 | 1.93 | 0.00 | 0.00 | 0.67 | 0.24 | 0.00 | 0.00 | 0.28 |
| video 1st s | 0.05 | 0.08 | 1.52 | 0.16 | 0.17 | 0.25 | 2.23 | 0.99 | 1.95 | 0.01 | 0.10 | 0.12 | 0.95 | 0.09 | 0.02 | 1.24 | 0.52 | 0.03 | 0.63 |
| video last s | 0.00 | 0.00 | 3.76 | 0.00 | 0.04 | 0.03 | 4.97 | 1.86 | 4.74 | 0.00 | 0.00 | 0.00 | 3.19 | 0.00 | 0.00 | 3.46 | 1.49 | 0.00 | 0.35 |

Smile > neutral: AU12 10/12, AU06 10/12; strongest smile AUs AU06, AU09, AU04, AU12.

**After** (this basis, solver re-aligning on the anchors):

| | AU01 | AU02 | AU04 | AU05 | AU06 | AU07 | AU09 | AU10 | AU12 | AU14 | AU15 | AU17 | AU20 | AU23 | AU24 | AU25 | AU26 | AU28 | AU43 |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| smile, all 12 | 0.05 | 0.06 | 0.73 | 0.59 | 4.19 | 0.23 | 1.61 | 0.27 | 2.43 | 0.09 | 0.49 | 0.87 | 0.31 | 0.09 | 0.22 | 1.30 | 0.45 | 0.50 | 1.13 |
| neutral, all 12 | 0.01 | 0.37 | 0.53 | 0.31 | 1.01 | 0.30 | 0.30 | 0.05 | 0.04 | 0.00 | 0.23 | 0.54 | 0.00 | 0.03 | 0.21 | 0.11 | 0.01 | 0.04 | 0.19 |
| smile, dev 6 | 0.00 | 0.12 | 0.75 | 0.44 | 5.00 | 0.01 | 1.72 | 0.10 | 2.40 | 0.15 | 0.69 | 0.18 | 0.23 | 0.19 | 0.00 | 1.20 | 0.44 | 0.32 | 1.14 |
| neutral, dev 6 | 0.00 | 0.40 | 0.50 | 0.46 | 1.54 | 0.38 | 0.30 | 0.01 | 0.00 | 0.00 | 0.24 | 0.64 | 0.01 | 0.02 | 0.13 | 0.15 | 0.01 | 0.05 | 0.25 |
| smile, held-out 6 | 0.11 | 0.00 | 0.72 | 0.74 | 3.39 | 0.45 | 1.51 | 0.43 | 2.46 | 0.03 | 0.29 | 1.56 | 0.39 | 0.00 | 0.44 | 1.41 | 0.46 | 0.67 | 1.12 |
| neutral, held-out 6 | 0.02 | 0.34 | 0.57 | 0.16 | 0.49 | 0.22 | 0.29 | 0.09 | 0.07 | 0.00 | 0.22 | 0.45 | 0.00 | 0.04 | 0.28 | 0.06 | 0.01 | 0.03 | 0.13 |
| video 1st s (held out) | 0.06 | 0.04 | 0.54 | 0.26 | 0.84 | 0.16 | 0.88 | 0.07 | 1.92 | 0.21 | 0.30 | 0.20 | 0.41 | 0.00 | 0.02 | 1.48 | 0.54 | 0.12 | 1.13 |
| video last s (held out) | 0.00 | 0.00 | 1.06 | 0.03 | 0.26 | 0.04 | 2.13 | 0.31 | 4.82 | 0.72 | 0.62 | 0.01 | 0.99 | 0.00 | 0.00 | 4.42 | 1.25 | 0.00 | 1.65 |

Smile > neutral: AU12 11/12 (dev 5/6, held-out 6/6), AU06 11/12 (dev 6/6, held-out 5/6). With the photo's OWN
neutral (smile only, same noisy neutral photo as reference) AU06 is up in only 10/12. Strongest smile AUs: AU06,
AU12, AU09, AU25. Video: AU12 1.92 -> 4.82 and the strongest AU in the last second; AU09 0.88 -> 2.13, AU04
0.54 -> 1.06.

What changed and why:
- **Stable-anchor re-alignment at build AND solve time.** Columns are made free of the similarity motion fitted on
  the anchors 10, 9, 8, 151, 6, 168, 197, 195, 33, 263, 133, 362, and the solver (rtface.au.solve, `realign_anchors`
  from this file's meta `solve_realign_anchors`) strips the same motion from every frame. This removes the
  alignment drift of the runtime pose (its Procrustes set contains cheeks, jaw and nose alae). Alone it did not help
  (development people: AU09 4.35, AU04 1.69, AU12 1.71 on smiles).
- **Geometric columns for the AUs the detector does not follow on the render.** cos(measured, geometric) < 0.55
  (first build) for AU04, AU05, AU06, AU07, AU09, AU10, AU14, AU15, AU20, AU23: MediaPipe on the untextured hm08
  render hardly moves the brows/cheeks/nose for these morphs but moves the mouth region and chin instead (e.g. the
  measured AU04 moved the chin 0.33 cm/unit, AU09 pushed the mouth corners and lower lip back); those columns then
  absorbed real smiles. For these AUs (except AU06) the column is now the geometric transfer of the FACSHuman morph
  to the landmarks (aperture landmarks of lids/inner lips and the face oval from the measured field). Development
  people, re-aligned: AU12 2.84, AU09 1.77, AU04 0.24, AU06 0.13 with AU06 geometric too.
- **AU06 stays measured.** Its geometric column (cheek skin up ~1 cm at weight 1, lower lid unchanged) was never
  selected on real smiles (development: AU06 0.13 / 0.00), because MediaPipe reports only ~0.15 cm of cheek motion
  on real smiles and the AU12 column already explains it. The detector-perceived AU06 (mouth corners up/back) is
  the only cheek-raise signal MediaPipe gives; with it AU06 is up in 6/6 development smiles. Consequence: AU06 is
  coupled to mouth-corner motion and is the largest smile AU; treat AU06 intensity with caution.
- **Far-field mask** around the source morph's own geometric support only (previously also around the 10 largest
  measured displacements, which kept detector artefacts), and the face-oval (silhouette) landmarks zeroed in every
  column except the jaw line of AU17/AU26. This also lowered the condition number.

Tried and not kept:
- AU12 from FACSHuman `12_b` (= L12 + R12, no lower-lip lift): development smiles AU12 0.66 (vs 2.84 with `12`),
  in the geometric and mixed variants alike; `12` is kept (its lower-lip lift is real in the source morph).
- Geometric columns for every AU: cond 34.9, AU12 1.13 on development smiles, AU14 1.88 and AU09 2.86 took over
  (inner-lip/jaw AUs need the measured field). Pure geometric (no measured aperture points): cond 73.8, AU09 3.51.
- Geometric columns for AU04/06/09/10 only: AU14 (dimpler, measured) then competed with AU12 (held-out AU14 2.64).
- Stable-anchor alignment with the previous soft mask / a hard geometric-support mask: AU09 stayed the top smile AU.
- A ridge of 0.01 vs 0: no material change (differences <= 0.1 FACS).
- py-feat region maps (pyfeat_maps/au_region_map.json, MIT) as support masks: not used; they mark the muscles'
  locations (e.g. AU12 = zygomaticus on the cheek, AU26 = masseter), not where the landmarks move.
- Not tried for lack of time: separated-lip renders, detector under-response correction per region, L1 / group
  priors, per-AU upper bounds, and any recalibration of unit_to_facs (still "FACSHuman weight 1.0 = FACS E";
  for geometric columns the factor is ~5 per unit because the weight-1 field is the column itself).

Known gaps: AU06 is a mouth-corner-coupled proxy (see above); AU09 is still ~1.6 on plain smiles and ~2.1 on the
broad video smile (below AU12, but not near zero); AU43 reads ~1.1 on smiles (eye narrowing) and ~1.1-1.7 on the
video; the neutral photo with re-detection noise still reads AU06 ~1.0 and AU17 ~0.5.
"""


def notice_md(meta: dict, v: dict) -> str:
    return f"""# AU basis: origin, licence and how it was made

`au_basis.npz` in this folder is a **work derived from the FACSHuman Action Unit morph targets** (Gilbert, M.,
Demarchi, S., & Urdapilleta, I. (2021). FACSHuman, a software program for creating experimental material by modeling
3D facial expressions. Behavior Research Methods. doi:10.3758/s13428-021-01559-9), which are distributed under the
**GNU Lesser General Public License v3.0**; a copy of FACSHuman's licence file is next to this notice as
`LICENSE-FACSHuman`. The derived data (`au_basis.npz`) is likewise provided under the LGPL-3.0: you may use it from
software under any licence, and you must keep this notice, the licence text, and offer the data and the way to rebuild
it (`scripts/build_au_basis.py`) when you redistribute it; modified versions of the data must carry the same terms.
The MakeHuman hm08 base mesh used to render the targets is CC0. The target topology is MediaPipe's canonical face
model (`rtface/data/mediapipe/face_model_with_iris.obj`, Apache-2.0). No FACSHuman vertex data is stored here: only
displacements of the 478 MediaPipe landmarks as perceived by MediaPipe on renders.

## How it was made
{meta['method']}

Build: `python scripts/build_au_basis.py --shared ../shared/data --out rtface/data/au_basis`
({v['n_images']} renders, {v['t_total']:.0f} s on this machine; {meta['build_date']}; MediaPipe {meta['mediapipe']}).
Per-AU source targets, numbers and validation: `report.md`; all metadata: `meta_json` inside the npz.

## What is assumed (read before trusting the intensities)
- `unit_to_facs`: FACSHuman weight 1.0 is **assumed** to be FACS intensity E (= 5). This is not calibrated against
  human FACS coders on real faces. Each AU's factor is 5 divided by the activation the weight-1.0 render of that
  AU gets when solved against this basis (corrects for non-linear detector response and crosstalk between columns;
  that activation is clipped to 0.5..2, so factors lie in 2.5..10);
  for the measured columns the detector under-response is inside the basis (measured through MediaPipe); for the
  geometric columns (meta `geometric_columns`) it is not, and their factor is ~5 per unit because the weight-1
  field is the column itself. Real faces may move differently from the hm08 head; expect intensities to be off by
  a factor.
- The solver must re-align each frame on the stable anchors in meta `solve_realign_anchors` (rtface.au.solve does
  this when the AU stage loads this file); the columns are free of that similarity motion.
- One synthetic head (hm08, default proportions), three camera/light conditions, painted (not photographic)
  albedo. The basis is mirror-symmetrised; left/right columns are mirror images of each other.
- Iris landmarks (468-477) are zero: the solver should not use them.
- The ICT-FaceKit head (MIT) is rendered only for a cross-check column in `report.md`; nothing ICT-derived is stored.
"""
