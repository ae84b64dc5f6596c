"""Build the shipped emotion head: rtface/data/emotion/emotion_head.onnx + MODEL_CARD.md + build_report.json.

No labelled emotion data ships with rtface, so the head is trained on EMFACS prototype AU combinations pushed
through the real geometry and the live AU solver (:mod:`rtface.emotion.synth`). Neutral identity faces: pose-free
landmarks of 6 London Set neutral photos (people 001 005 017 034 043 064) plus the canonical template; the other
6 people (003 008 025 038 045 087) carry the synthetic test set. Real-photo and real-video checks use the real
landmark -> canonical -> AU -> emotion stages.

    /work/venv/bin/python scripts/build_default_emotion_head.py [--out rtface/data/emotion] [--per-class 2000]

Deterministic for a given seed (the ONNX metadata 'created' field is the only thing that changes).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtface.emotion.dataset import from_folder  # noqa: E402
from rtface.emotion.evaluate import classification_report, evaluate_head, plot_confusion  # noqa: E402
from rtface.emotion.features import AUFeaturizer, FeatureSpec, load_basis  # noqa: E402
from rtface.emotion.labels import CLASSES  # noqa: E402
from rtface.emotion.model import TrainOptions, fit  # noqa: E402
from rtface.emotion.onnx_export import check_onnx_matches, export_onnx, load_head  # noqa: E402
from rtface.emotion.synth import PROTOTYPES, PrototypeSynth  # noqa: E402

LONDON = ROOT / "tests" / "data" / "faces" / "london"
VIDEO = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
TRAIN_PEOPLE = ("001", "005", "017", "034", "043", "064")
TEST_PEOPLE = ("003", "008", "025", "038", "045", "087")
VERSION = "1.0.0"


def london_neutrals(fz: AUFeaturizer) -> dict[str, np.ndarray]:
    from rtface.emotion.dataset import _landmarks_of_file

    out = {}
    for p in sorted((LONDON / "neutral").glob("*_03.jpg")):
        (lm, w, h, _), = _landmarks_of_file(p, False, 1)
        out[p.stem[:3]] = fz.posefree(lm, w, h)
    return out


def video_check(head_path: Path, basis) -> dict:
    """single_face.mp4 through landmarks -> canonical (online neutral) -> aus -> emotion; happiness over time."""
    import cv2

    from rtface.records import FrameMeta, FrameResult
    from rtface.stages.aus import AUParams, AUStage
    from rtface.stages.canonical import CanonicalParams, CanonicalStage
    from rtface.stages.emotion import EmotionParams, EmotionStage
    from rtface.stages.landmarks import LandmarkParams, LandmarkStage

    stages = [LandmarkStage("landmarks", LandmarkParams(max_faces=1)), CanonicalStage("canonical", CanonicalParams()),
              AUStage("aus", AUParams(), basis=basis),
              EmotionStage("emotion", EmotionParams(model_path=str(head_path)))]
    for s in stages:
        s.open()
    cap = cv2.VideoCapture(str(VIDEO))
    probs, ready, i = [], [], 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        res = FrameResult(FrameMeta(i, 0, int(i * 1e9 / 30), img.shape[1], img.shape[0], "sample"))
        for s in stages:
            s.process(img, res)
        f = res.faces[0] if res.faces else None
        probs.append(f.emotion if f is not None and f.emotion is not None else np.full(len(CLASSES), np.nan))
        ready.append(bool(f.neutral_ready) if f is not None else False)
        i += 1
    for s in stages:
        s.close()
    p = np.array(probs)
    hap = p[:, list(stages[3].names).index("happiness")]
    top = [stages[3].names[int(j)] if np.isfinite(r).all() else "" for j, r in zip(np.nan_to_num(p).argmax(1), p)]
    return {"frames": len(p), "happiness_first_second_mean": float(np.nanmean(hap[:30])),
            "happiness_last_second_mean": float(np.nanmean(hap[-30:])),
            "top_class_last_second": {c: top[-30:].count(c) for c in sorted(set(top[-30:]))},
            "neutral_ready_from_frame": ready.index(True) if True in ready else None,
            "happiness_every_6th_frame": [round(float(v), 3) for v in hap[::6]]}


def timing(head_path: Path, names: tuple[str, ...], n: int = 2000) -> dict:
    """Median wall time of EmotionStage.process per frame with 1 and 4 faces (AU vectors already set)."""
    from rtface.records import Face, FrameMeta, FrameResult
    from rtface.stages.emotion import EmotionParams, EmotionStage

    st = EmotionStage("emotion", EmotionParams(model_path=str(head_path)), au_names=names)
    st.open()
    rng = np.random.default_rng(0)
    out = {}
    for k in (1, 4):
        faces = [Face(i, 1.0, np.zeros(4, np.float32), np.zeros((478, 3), np.float32)) for i in range(k)]
        ts = []
        for j in range(n):
            for f in faces:
                f.au_intensity = rng.uniform(0, 3, len(names)).astype(np.float32)
            res = FrameResult(FrameMeta(j, 0, 0, 640, 480), faces=faces)
            t0 = time.perf_counter()
            st.process(None, res)
            ts.append(time.perf_counter() - t0)
        out[f"{k}_faces_median_ms"] = float(np.median(ts) * 1e3)
        out[f"{k}_faces_p95_ms"] = float(np.percentile(ts, 95) * 1e3)
    st.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "rtface" / "data" / "emotion"))
    ap.add_argument("--per-class", type=int, default=2000, help="synthetic training samples per class")
    ap.add_argument("--seed", type=int, default=20261121)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    basis = load_basis()
    fz = AUFeaturizer(basis=basis)
    neutrals = london_neutrals(fz)
    train_faces = [neutrals[p] for p in TRAIN_PEOPLE] + [fz.template]
    test_faces = [neutrals[p] for p in TEST_PEOPLE]
    t0 = time.time()
    x_tr, y_tr = PrototypeSynth(fz, train_faces, seed=args.seed).dataset(args.per_class)
    x_va, y_va = PrototypeSynth(fz, train_faces, seed=args.seed + 1).dataset(max(100, args.per_class // 5))
    x_te, y_te = PrototypeSynth(fz, test_faces, seed=args.seed + 2).dataset(500)
    t_synth = time.time() - t0
    results = {}
    models = {}
    for kind in ("logreg", "mlp"):
        t0 = time.time()
        m = fit(x_tr, y_tr, x_va, y_va, CLASSES, TrainOptions(kind=kind, hidden=32, seed=args.seed))
        models[kind] = m
        rep = classification_report([CLASSES[i] for i in y_te], m.predict(x_te), CLASSES, "synthetic test")
        results[kind] = {"train_s": time.time() - t0, "epochs": len(m.history), "synthetic_test": rep}
    model = models["mlp"]
    spec = FeatureSpec(names=fz.names, basis="au_basis.npz (shipped)", neutral="person neutral (live: online)")
    summary = {"source": "synthetic EMFACS prototypes (rtface.emotion.synth), no real expressions",
               "prototypes": {c: [list(v[0]) for v in PROTOTYPES[c]] for c in CLASSES},
               "identity_faces": ["London " + p for p in TRAIN_PEOPLE] + ["canonical template"],
               "train_rows": int(len(x_tr)), "validation_rows": int(len(x_va)), "seed": args.seed,
               "model": "mlp 19-32-8 relu softmax, Adam, L2 1e-3, class weights, early stopping"}
    head_path = out / "emotion_head.onnx"
    export_onnx(model, spec, head_path, version=VERSION, training_data=summary)
    head = load_head(head_path)
    diff = check_onnx_matches(head, model, np.concatenate([x_tr, x_va, x_te]))
    plot_confusion(results["mlp"]["synthetic_test"], out / "confusion_synthetic_test.png")
    real = {}
    for rule in ("person", "template"):
        data = from_folder(LONDON, fz, neutral=rule)
        rep = evaluate_head(head, data, f"London photos, neutral={rule}")
        top = [head.classes[i] for i in head.run(data.x).argmax(1)]
        rep["per_photo_top_class"] = {v: t for v, t in zip(data.videos, top)}
        real[rule] = rep
    plot_confusion(real["person"], out / "confusion_london_person_neutral.png")
    report = {"version": VERSION, "python": platform.python_version(), "synth_s": t_synth,
              "build_s": None, "onnx_vs_numpy_max_abs": diff, "models": results, "london": real,
              "video": video_check(head_path, basis), "timing": timing(head_path, fz.names)}
    report["build_s"] = time.time() - t_start
    (out / "build_report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k not in ("models", "london")}, indent=2, default=str))
    for kind, r in results.items():
        t = r["synthetic_test"]
        print(f"{kind}: synthetic test acc {t['accuracy']:.3f} macro-F1 {t['macro_f1']:.3f} ({r['train_s']:.1f} s)")
    for rule, r in real.items():
        print(f"London neutral={rule}: acc {r['accuracy']:.3f}; top classes {r['per_photo_top_class']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
