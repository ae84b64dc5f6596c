"""Per-face cost of each computation after landmarks, on real landmarks from the sample video.

Times (median and p99, microseconds) of: canonicalization (metric 3D + weighted Procrustes + pose), the AU solve
(numba NNLS, all AUs of one face, warm-started), the ONNX emotion head (one face), and the gaze AOI hit test
(200 gaze samples against the face's AOIs, numba kernel). Also each stage's ``process`` per face, with its
bookkeeping. JIT compilation is excluded (one warm-up call first).

Usage: ``python benchmarks/bench_per_face.py [--repeat 20]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtface.config import SAMPLE_VIDEO  # noqa: E402


def landmarks_of(video: Path) -> tuple[list[np.ndarray], tuple[int, int]]:
    import mediapipe as mp

    from rtface.landmarking.quiet import native_stderr_silenced

    out = []
    cap = cv2.VideoCapture(str(video))
    with native_stderr_silenced():
        fm = mp.solutions.face_mesh.FaceMesh(max_num_faces=1, refine_landmarks=True)
    size = (0, 0)
    while True:
        ok, img = cap.read()
        if not ok:
            break
        h, w = img.shape[:2]
        size = (w, h)
        with native_stderr_silenced(len(out) < 3):
            res = fm.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        if res.multi_face_landmarks:
            out.append(np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark],
                                np.float32))
    return out, size


def timed(fn, items, repeat: int) -> dict[str, float]:
    fn(items[0])  # warm-up (JIT, lazy init)
    ts = []
    for _ in range(repeat):
        for it in items:
            t = time.perf_counter_ns()
            fn(it)
            ts.append(time.perf_counter_ns() - t)
    a = np.array(ts) / 1e3
    return {"p50_us": float(np.median(a)), "p99_us": float(np.percentile(a, 99)), "n": len(a)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    from rtface.landmarking.quiet import filter_native_logs
    from rtface.threads import limit_blas_threads

    filter_native_logs()
    limit_blas_threads()  # as the Engine does: a spinning BLAS pool makes these small products many times slower

    from rtface.au.basis import load_au_basis
    from rtface.au.solve import AUSolver, landmark_weights
    from rtface.emotion.onnx_export import load_head
    from rtface.gaze.aoi import AOIConfig, map_frame
    from rtface.geometry.camera import Intrinsics, metric_landmarks
    from rtface.geometry.canonical_model import load_canonical_model
    from rtface.geometry.pose import PoseSolver
    from rtface.records import Face, FrameMeta, FrameResult
    from rtface.stages.aus import AUParams, AUStage
    from rtface.stages.canonical import CanonicalParams, CanonicalStage
    from rtface.stages.emotion import EmotionParams, EmotionStage

    lms, (w, h) = landmarks_of(SAMPLE_VIDEO)
    intr = Intrinsics.from_config(w, h)
    solver = PoseSolver()
    fits = [solver.fit(metric_landmarks(lm, intr)) for lm in lms]
    template = np.asarray(load_canonical_model().vertices_cm, float)
    canon = [f.posefree_cm - fits[0].posefree_cm + template for f in fits]
    basis = load_au_basis()
    au = AUSolver(basis, landmark_weights=landmark_weights())
    prev = {"x": None}

    def au_solve(c):
        prev["x"] = au.solve_activations(c, template, prev["x"])

    head = load_head(ROOT / "rtface" / "data" / "emotion" / "emotion_head.onnx")
    feats = [np.random.default_rng(0).uniform(0, 3, (1, len(head.spec.names)))
             .astype(np.float32)]
    rng = np.random.default_rng(1)
    gaze = [(np.arange(200), lm[:, 0].min() + rng.uniform(0, np.ptp(lm[:, 0]), 200),
             lm[:, 1].min() + rng.uniform(0, np.ptp(lm[:, 1]), 200), lm) for lm in lms]
    cfg = AOIConfig(shape="mesh")

    rows = {
        "canonicalize (metric 3D + Procrustes + pose)": timed(lambda lm: solver.fit(metric_landmarks(lm, intr)),
                                                              lms, a.repeat),
        "AU solve (numba NNLS, all AUs)": timed(au_solve, canon, a.repeat),
        "emotion head (onnxruntime, 1 face)": timed(head.run, feats * len(lms), a.repeat),
        "gaze AOI hit test (200 samples, mesh AOIs)": timed(
            lambda g: map_frame(g[0], g[1], g[2], [(0, g[3])], cfg, (w, h)), gaze, max(1, a.repeat // 4)),
    }

    # whole stages (with their per-face bookkeeping: neutral estimator, presence, session, smoothing)
    cst = CanonicalStage("canonical", CanonicalParams())
    ast = AUStage("aus", AUParams())
    est = EmotionStage("emotion", EmotionParams())
    for st in (cst, ast, est):
        st.open()
        st.warmup()
    results = []
    for i, lm in enumerate(lms):
        r = FrameResult(FrameMeta(i, 0, i * 33_333_333, w, h))
        r.faces = [Face(0, 1.0, np.zeros(4, np.float32), lm)]
        results.append(r)
    for st in (cst, ast, est):
        rows[f"stage {st.kind}.process (1 face)"] = timed(lambda r, st=st: st.process(None, r), results, a.repeat)

    print(f"{len(lms)} real frames of {SAMPLE_VIDEO.name}, {a.repeat} repeats; microseconds per face")
    print(f"{'':48} {'p50':>8} {'p99':>8}")
    for k, v in rows.items():
        print(f"{k:48} {v['p50_us']:8.1f} {v['p99_us']:8.1f}")


if __name__ == "__main__":
    main()
