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


DESIGN_NOTES = """## Design decisions and known gaps (from development runs of this script, 2026-11-21)

- **Runtime-consistent frame.** Each render is mapped exactly as the runtime maps a camera frame
  (`rtface.geometry.camera.metric_landmarks` with the true intrinsics fx = fy = 1000, c = 320, then
  `rtface.geometry.pose.PoseSolver`). The similarity component is removed with the runtime's Procrustes weights, so
  a column is what the AU solver sees after the runtime alignment. Those weights include landmarks that expressions
  move (nose alae 129/358, cheeks 205/425, jaw 136/365), so some columns carry a small whole-face drift (column
  "unweighted sim. frac"). A solver that adds 7 signed similarity nuisance columns, or an alignment on stable anchors
  only, would allow more local bases.
- **AU12 source.** FACSHuman's bilateral `12` also raises the lower-lip centre and chin by ~0.5 cm (its
  `12_b` = L12 + R12 does not). `12_b` was tried: the London smiles then gave AU12 mean 0.68 FACS (vs 1.73 with
  `12`), the rendered AU06+AU12 combination was recovered as AU06 1.70 / AU12 0.36, and the weight-1 `12_b` render
  solved to only 0.43. `12` is kept.
- **AU06 is perceived mainly at the mouth corners.** FACSHuman's AU6 moves the cheek skin straight up (up to
  1.1 cm) without narrowing the eye; MediaPipe on the smooth render responds with small mouth-corner and lower-lip
  motion, not cheek motion (cos with the geometric transfer 0.11). ICT-FaceKit's cheekRaiser/cheekSquint (which do
  push the lower lid up) were measured the same way and substituted for AU06 in a trial: on the London smiles AU09
  stayed the largest activation (mean 1.11 and 1.05 activation units vs AU06 0.34 / 0.49), so the FACSHuman AU06 is
  kept and the ICT head is only used for the cross-check column.
- **Real smiles load AU09 and AU04.** On the 12 London neutral/smile pairs the solve attributes much of the smile to
  AU09 (nose wrinkler) and AU04, besides AU06/AU12: the real mouth corners move about as much sideways as up
  (canonical (0.38, 0.37, -0.40) cm mean), steeper than the FACSHuman/ICT smile targets, and Duchenne eye
  narrowing/brow lowering has no better column than AU09. Treat AU09 in smiles with suspicion until the AU stage is
  validated on labelled data.
- **AU10** (upper-lip raiser) is perceived with as much lower-lip/chin motion (landmarks 18, 83, 313) as upper-lip
  motion; the upper lip carries >= 0.6 of the column maximum (tested).
- **Geometric transfer** pins each detected landmark of the frontal neutral render to the hm08 surface point under
  it (lid and inner-lip landmarks snapped to the lid/lip skin). Its cosine with the measured field is high only for
  big, well-textured motions (AU12 0.86, AU26 0.70); MediaPipe under-responds to smooth-skin motion (cheeks, nose).
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
  detector under-response to the motion itself is already inside the basis, because it was measured through
  MediaPipe. Real faces may move differently from the hm08 head; expect intensities to be off by a factor.
- One synthetic head (hm08, default proportions), three camera/light conditions, painted (not photographic)
  albedo. The basis is mirror-symmetrised; left/right columns are mirror images of each other.
- Iris landmarks (468-477) are zero: the solver should not use them.
- The ICT-FaceKit head (MIT) is rendered only for a cross-check column in `report.md`; nothing ICT-derived is stored.
"""
