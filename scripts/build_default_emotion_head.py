"""Build the shipped emotion head: rtface/data/emotion/emotion_head.onnx + build_report.json (+ confusion PNG).

No labelled emotion data ships with rtface, so the head is trained on EMFACS prototypes synthesised as face shapes
and read back through the live canonical + AU stages (:mod:`rtface.emotion.synth`,
:class:`rtface.emotion.features.AUFeaturizer`, packaged default config), in both regimes the engine produces:
single stills (population reference) and sequences (online person model).

Identities (London Set neutral photos, tests/data/faces/london, each photo's frontal shape as the canonical stage's
explicit path reports it): TRAIN_PEOPLE (and random faces of the Gaussian they span, ``BLEND``) carry the
training and validation data; TEST_PEOPLE carry the synthetic test set only. The model is chosen among CANDIDATES
on the TRAINING people only (2 held out of the synthesis, SELECT_HOLDOUT, and the 6 people's real photos). The
smile overlap (what real smiles read besides AU12) is measured here on TRAIN_PEOPLE's smiling photos (each against
their own neutral photo) and on the sample video (Engine, packaged default config), never on TEST_PEOPLE.

Evaluation through the shipped path: ``Engine`` with the packaged default config (this head as the emotion stage's
model) on the 24 London photos as stills (train / test people reported apart), on per-person image sequences
(neutral then smile, smile then neutral) and on the sample video.

    python scripts/build_default_emotion_head.py [--out rtface/data/emotion] [--still 2000] [--sequence 600]

BLAS threads are limited to 1 (per-frame stage maths is small; more threads only contend on this 2-core machine).
Deterministic for a given seed (the ONNX metadata 'created' field and timings are the only things that change).
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtface.emotion.dataset import landmarks_of_file  # noqa: E402
from rtface.emotion.evaluate import classification_report, plot_confusion  # noqa: E402
from rtface.emotion.features import AUFeaturizer, FeatureSpec  # noqa: E402
from rtface.emotion.labels import CLASSES  # noqa: E402
from rtface.emotion.model import TrainOptions, fit  # noqa: E402
from rtface.emotion.onnx_export import check_onnx_matches, export_onnx, load_head  # noqa: E402
from rtface.emotion.synth import PROTOTYPES, PrototypeSynth  # noqa: E402

LONDON = ROOT / "tests" / "data" / "faces" / "london"
VIDEO = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
TRAIN_PEOPLE = ("001", "005", "017", "034", "043", "064")
TEST_PEOPLE = ("003", "008", "025", "038", "045", "087")
OVERLAP_AUS = ("AU06", "AU09", "AU10", "AU14", "AU20")
VERSION = "2.2.1"
# Prior: a face that shows no readable expression is neutral. On a single photo most subtle expressions (and
# unilateral contempt) read ~0 after the AU stage's identity floors, so with balanced classes the origin of the AU
# space went to whichever class reads 0 most often (contempt). Neutral stills are as many as all expression stills.
NEUTRAL_STILLS_PER_CLASS = 7
BLEND = 0.6  # share of training sessions whose face is a random face of the training identities' Gaussian
CANDIDATES = {"logreg": ("logreg", 1e-3), "mlp_l2_1e-3": ("mlp", 1e-3), "mlp_l2_1e-2": ("mlp", 1e-2),
              "mlp_l2_3e-2": ("mlp", 3e-2)}
SELECT_HOLDOUT = ("043", "064")  # training people held out to choose the model (never the test people)
TEMPLATE_NOTE = ("the canonical template is not used as an identity: it is not a face as MediaPipe reports one; "
                 "as a still against the population model it reads as an expression (build_report.json "
                 "'template_still_reading')")


def london_frames() -> dict[str, dict[str, tuple]]:
    """{"neutral"|"smiling": {person: (landmarks_px, W, H)}} through the live landmark stage (photos as stills)."""
    out: dict[str, dict[str, tuple]] = {"neutral": {}, "smiling": {}}
    for kind, suffix in (("neutral", "03"), ("smiling", "08")):
        for p in sorted((LONDON / kind).glob(f"*_{suffix}.jpg")):
            (lm, w, h, _), = landmarks_of_file(p, False)[0]
            out[kind][p.stem[:3]] = (lm, w, h)
    return out


def engine_rows(spec: str, model_path: Path, images: str = "stills") -> list[dict]:
    """The packaged default pipeline (this head as the emotion model) on ``spec``; per frame the first face's
    AUs, emotion probabilities and shape_frames (None without a face), and the image file name."""
    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine

    cfg = with_overrides(load_config(), source={"spec": spec, "realtime": False, "images": images},
                         publish={"enabled": False}, control={"enabled": False})
    stages = tuple(dataclasses.replace(sc, params=dataclasses.replace(sc.params, model_path=str(model_path)))
                   if sc.kind == "emotion" else sc for sc in cfg.stages)
    cfg = dataclasses.replace(cfg, stages=stages)
    rows = []
    with Engine(cfg) as eng:
        for r in eng.results():
            aus, emo = eng.names("aus"), eng.names("emotion")
            files = getattr(eng.source, "files", None)
            row = {"index": r.meta.index, "t_s": r.meta.t_media_ns / 1e9, "still": r.meta.still,
                   "file": files[r.meta.index % len(files)].name if files else "", "face": None}
            if r.faces:
                f = r.faces[0]
                row["face"] = {"au": dict(zip(aus, (round(float(v), 3) for v in f.au_intensity))),
                               "emotion": dict(zip(emo, (round(float(v), 4) for v in f.emotion))),
                               "top": emo[int(np.argmax(f.emotion))], "shape_frames": float(f.shape_frames)}
            rows.append(row)
    return rows


def measure_smile_overlap(fz: AUFeaturizer, frames: dict, model_path: Path) -> dict:
    """What real smiles read besides AU12, as a fraction of AU12: the TRAIN people's smiling photo against their own
    neutral photo (explicit neutral, the ``person`` rule: the read-out of the smile itself, almost no floor) and
    the sample video's last second through the Engine (online person model). Overlap fraction per AU = the largest
    measured ratio (synth draws U(0, fraction) x AU12)."""
    idx = {n: i for i, n in enumerate(fz.names)}
    reads = {}
    for p in TRAIN_PEOPLE:
        x = fz.sequence([frames["smiling"][p]], neutral=[frames["neutral"][p]])[0]
        reads[f"London {p} smiling vs own neutral"] = x
    rows = [r["face"] for r in engine_rows("sample", model_path) if r["face"] is not None]
    last = np.array([[f["au"][n] for n in fz.names] for f in rows[-30:]]).mean(axis=0)
    reads["single_face.mp4 last second (Engine)"] = last
    ratios = {k: {a: float(v[idx[a]] / v[idx["AU12"]]) if v[idx["AU12"]] > 0.5 else None for a in OVERLAP_AUS}
              for k, v in reads.items()}
    overlap = {a: round(max(r[a] for r in ratios.values() if r[a] is not None), 2) for a in OVERLAP_AUS}
    return {"readings": {k: {n: round(float(v[i]), 2) for n, i in idx.items()} for k, v in reads.items()},
            "ratio_to_AU12": {k: {a: (None if v is None else round(v, 3)) for a, v in r.items()}
                              for k, r in ratios.items()},
            "overlap_max_fraction": overlap}


def template_reading(fz: AUFeaturizer) -> dict:
    """What the canonical template reads as a frontal still (no jitter), rendered like a synthetic face."""
    sy = PrototypeSynth(fz, [fz.template], seed=0)
    sy.noise = None
    s = sy._session(True)
    s["residual"][:] = 0.0
    x = fz.stills([sy.render(s, np.zeros((478, 3)), np.zeros(3))])[0]
    return {n: round(float(v), 2) for n, v in zip(fz.names, x) if v > 0.05}


def london_engine_eval(model_path: Path) -> dict:
    """The 24 London photos as stills through the Engine: top class per photo, per split."""
    with tempfile.TemporaryDirectory() as tmp:
        for kind, suffix in (("neutral", "03"), ("smiling", "08")):
            for p in sorted((LONDON / kind).glob(f"*_{suffix}.jpg")):
                shutil.copy(p, Path(tmp) / f"{p.stem[:3]}_{kind}.jpg")
        rows = engine_rows(tmp, model_path)
    per = {}
    for r in rows:
        pid, kind = r["file"][:3], r["file"][4:-4]
        f = r["face"]
        per.setdefault(pid, {})[kind] = None if f is None else {
            "top": f["top"], "p_happiness": f["emotion"]["happiness"], "p_neutral": f["emotion"]["neutral"],
            "aus": {k: v for k, v in f["au"].items() if v > 0.05}}
    out = {"per_person": per}
    for split, people in (("train_people", TRAIN_PEOPLE), ("test_people", TEST_PEOPLE),
                          ("all", TRAIN_PEOPLE + TEST_PEOPLE)):
        sm = [per[p]["smiling"] for p in people]
        ne = [per[p]["neutral"] for p in people]
        out[split] = {"people": len(people),
                      "happiness_top_on_smiles": sum(s is not None and s["top"] == "happiness" for s in sm),
                      "neutral_top_on_neutrals": sum(n is not None and n["top"] == "neutral" for n in ne),
                      "smile_top_classes": [None if s is None else s["top"] for s in sm],
                      "neutral_top_classes": [None if n is None else n["top"] for n in ne]}
    return out


def london_sequence_eval(model_path: Path, first: str, n_first: int, n_second: int) -> dict:
    """Per person an image sequence (Engine, ``images = "sequence"``, 30 fps): ``n_first`` frames of one photo
    (``first`` = "neutral" or "smiling") then ``n_second`` of the other: top class at the last frame of each part."""
    other = "smiling" if first == "neutral" else "neutral"
    suffix = {"neutral": "03", "smiling": "08"}
    per = {}
    for p in TRAIN_PEOPLE + TEST_PEOPLE:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(n_first + n_second):
                kind = first if i < n_first else other
                shutil.copy(LONDON / kind / f"{p}_{suffix[kind]}.jpg", Path(tmp) / f"{i:04d}.jpg")
            rows = engine_rows(tmp, model_path, images="sequence")
        a, b = rows[n_first - 1]["face"], rows[-1]["face"]
        per[p] = {first: None if a is None else a["top"], other: None if b is None else b["top"],
                  f"{first}_AU12_AU06": None if a is None else [a["au"]["AU12"], a["au"]["AU06"]],
                  f"{other}_AU12_AU06": None if b is None else [b["au"]["AU12"], b["au"]["AU06"]],
                  "shape_frames_end": None if b is None else b["shape_frames"]}
    out = {"order": f"{n_first} x {first}, then {n_second} x {other} (30 fps)", "per_person": per}
    for split, people in (("train_people", TRAIN_PEOPLE), ("test_people", TEST_PEOPLE),
                          ("all", TRAIN_PEOPLE + TEST_PEOPLE)):
        out[split] = {"people": len(people),
                      "happiness_top_on_smile_part": sum(per[p]["smiling"] == "happiness" for p in people),
                      "neutral_top_on_neutral_part": sum(per[p]["neutral"] == "neutral" for p in people)}
    return out


def video_eval(model_path: Path) -> dict:
    """single_face.mp4 (neutral, then a broad smile) through the Engine."""
    rows = engine_rows("sample", model_path)
    faces = [r["face"] for r in rows]
    hap = np.array([np.nan if f is None else f["emotion"]["happiness"] for f in faces])
    top = ["" if f is None else f["top"] for f in faces]
    return {"frames": len(rows), "frames_with_face": int(sum(f is not None for f in faces)),
            "happiness_first_second_mean": float(np.nanmean(hap[:30])),
            "happiness_last_second_mean": float(np.nanmean(hap[-30:])),
            "top_class_first_second": {c: top[:30].count(c) for c in sorted(set(top[:30]))},
            "top_class_last_second": {c: top[-30:].count(c) for c in sorted(set(top[-30:]))},
            "top_class_every_3rd_frame": top[::3],
            "shape_frames_every_6th_frame": [None if f is None else f["shape_frames"] for f in faces[::6]]}


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


def select_model(fz: AUFeaturizer, neutrals: dict, frames: dict, overlap: dict, seed: int) -> dict:
    """Choose among CANDIDATES without the test people: synthesise on 4 training people (with identity blends),
    validate on the other 2 (SELECT_HOLDOUT, pure). Score: first the number of the 6 training people's 12 real
    photos (stills) given their true class (neutral / happiness; their real expressions are never training data),
    then the sum of still and sequence macro-F1 on the held-out people."""
    fit_people = [p for p in TRAIN_PEOPLE if p not in SELECT_HOLDOUT]
    faces = [neutrals[p] for p in fit_people]
    share = NEUTRAL_STILLS_PER_CLASS
    x, y, _, _ = PrototypeSynth(fz, faces, seed, overlap, blend=BLEND).dataset(600, 100, neutral_stills=share * 600)
    xh, yh, rh, _ = PrototypeSynth(fz, [neutrals[p] for p in SELECT_HOLDOUT], seed + 1, overlap).dataset(
        300, 60, neutral_stills=share * 300)
    xl = fz.stills([frames[k][p] for k in ("neutral", "smiling") for p in TRAIN_PEOPLE])
    yl = ["neutral"] * len(TRAIN_PEOPLE) + ["happiness"] * len(TRAIN_PEOPLE)
    va = np.random.default_rng(seed).permutation(len(x))[: len(x) // 6]
    is_va = np.zeros(len(x), dtype=bool)
    is_va[va] = True
    scores = {}
    for name, (kind, l2) in CANDIDATES.items():
        m = fit(x[~is_va], y[~is_va], x[is_va], y[is_va], CLASSES,
                TrainOptions(kind=kind, hidden=32, l2=l2, seed=seed, class_weights=False))
        rep = _by_regime(m, xh, yh, rh, "held-out training people")
        real = [CLASSES[i] for i in m.predict(xl)]
        scores[name] = {"train_people_photos_correct": int(sum(a == b for a, b in zip(real, yl))),
                        "still_macro_f1": round(rep["still"]["macro_f1"], 3),
                        "sequence_macro_f1": round(rep["sequence"]["macro_f1"], 3),
                        "still_neutral_recall": round(rep["still"]["per_class"]["neutral"]["recall"], 3),
                        "still_happiness_recall": round(rep["still"]["per_class"]["happiness"]["recall"], 3)}
    chosen = max(scores, key=lambda n: (scores[n]["train_people_photos_correct"],
                                        scores[n]["still_macro_f1"] + scores[n]["sequence_macro_f1"]))
    return {"fit_people": fit_people, "held_out_people": list(SELECT_HOLDOUT), "scores": scores, "chosen": chosen}


def _by_regime(model, x, y, regime, where: str) -> dict:
    rep = {"all": classification_report([CLASSES[i] for i in y], model.predict(x), CLASSES, where)}
    for reg in ("still", "sequence"):
        m = regime == reg
        rep[reg] = classification_report([CLASSES[i] for i in y[m]], model.predict(x[m]), CLASSES, f"{where} {reg}")
    return rep


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "rtface" / "data" / "emotion"))
    ap.add_argument("--still", type=int, default=2000, help="synthetic training stills per class")
    ap.add_argument("--sequence", type=int, default=600, help="synthetic training sequences per class")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    head_path = out / "emotion_head.onnx"
    t_start = time.time()
    fz = AUFeaturizer()  # packaged default config's canonical + AU stage parameters
    frames = london_frames()
    neutrals = {p: fz.frontal_shape([frames["neutral"][p]]) for p in TRAIN_PEOPLE + TEST_PEOPLE}
    train_faces = [neutrals[p] for p in TRAIN_PEOPLE]  # not the canonical template: see TEMPLATE_NOTE
    test_faces = [neutrals[p] for p in TEST_PEOPLE]
    smile = measure_smile_overlap(fz, frames, head_path if head_path.is_file() else
                                  ROOT / "rtface" / "data" / "emotion" / "emotion_head.onnx")
    overlap = smile["overlap_max_fraction"]
    print("smile overlap (max fraction of AU12):", overlap, flush=True)
    t0 = time.time()
    share = NEUTRAL_STILLS_PER_CLASS
    t0 = time.time()
    selection = select_model(fz, neutrals, frames, overlap, args.seed + 10)
    best = selection["chosen"]
    print("model selection (held-out training people):", selection["scores"], "->", best, flush=True)
    x_tr, y_tr, r_tr, f_tr = PrototypeSynth(fz, train_faces, args.seed, overlap, blend=BLEND).dataset(
        args.still, args.sequence, neutral_stills=share * args.still)
    n_va = max(100, args.still // 5)
    x_va, y_va, r_va, _ = PrototypeSynth(fz, train_faces, args.seed + 1, overlap, blend=BLEND).dataset(
        n_va, max(50, args.sequence // 5), neutral_stills=share * n_va)
    x_te, y_te, r_te, f_te = PrototypeSynth(fz, test_faces, args.seed + 2, overlap).dataset(
        400, 150, neutral_stills=share * 400)
    t_synth = time.time() - t0
    print(f"synthesised {len(x_tr)} train, {len(x_va)} validation, {len(x_te)} test rows in {t_synth:.0f} s",
          flush=True)
    results, models = {}, {}
    for name, (kind, l2) in CANDIDATES.items():
        t0 = time.time()
        m = fit(x_tr, y_tr, x_va, y_va, CLASSES, TrainOptions(kind=kind, hidden=32, l2=l2, seed=args.seed,
                                                              class_weights=False))
        models[name] = m
        results[name] = {"train_s": time.time() - t0, "epochs": len(m.history),
                         "synthetic_test": _by_regime(m, x_te, y_te, r_te, "synthetic test")}
    model = models[best]
    spec = FeatureSpec(names=fz.names, basis="au_basis.npz (shipped)",
                       neutral="as rtface run: stills vs population, sequences with the online person model")
    seq = r_tr == "sequence"
    summary = {"source": "synthetic EMFACS prototypes rendered as face shapes and read back through the live "
                         "canonical + AU stages (rtface.emotion.synth), no real expressions",
               "prototypes": {c: [list(v[0]) for v in PROTOTYPES[c]] for c in CLASSES},
               "smile_overlap": overlap, "identity_faces": ["London " + p for p in TRAIN_PEOPLE],
               "test_identity_faces": ["London " + p for p in TEST_PEOPLE], "template_note": TEMPLATE_NOTE,
               "train_rows": int(len(x_tr)), "train_rows_still": int((~seq).sum()),
               "train_rows_sequence": int(seq.sum()), "validation_rows": int(len(x_va)), "seed": args.seed,
               "class_prior": f"neutral stills = {share} x the stills of each expression (neutral = half of all "
                              f"stills); sequences add their last neutral frame; no class re-weighting",
               "train_class_counts": {c: int((y_tr == i).sum()) for i, c in enumerate(CLASSES)},
               "identity_blend": f"{BLEND}: share of sessions whose face is a random face of the Gaussian the "
                                 f"training identities span (rtface.emotion.synth)",
               "model": f"{best}: " + ("multinomial logistic regression 19-8" if CANDIDATES[best][0] == "logreg"
                                       else "MLP 19-32-8 (ReLU)") +
                        f", L2 {CANDIDATES[best][1]}, Adam, softmax, no class weights, early stopping on "
                        f"validation macro-F1; chosen on the training people (build_report.json model_selection)"}
    export_onnx(model, spec, head_path, version=VERSION, training_data=summary)
    head = load_head(head_path)
    diff = check_onnx_matches(head, model, np.concatenate([x_tr, x_va, x_te]))
    plot_confusion(results[best]["synthetic_test"]["all"], out / "confusion_synthetic_test.png")
    tmpl_read = template_reading(fz)
    fz.close()
    print("evaluating through the Engine ...", flush=True)
    london = london_engine_eval(head_path)
    video = video_eval(head_path)
    seq_ns = london_sequence_eval(head_path, "neutral", 40, 40)
    seq_sn = london_sequence_eval(head_path, "smiling", 40, 80)
    report = {"version": VERSION, "python": platform.python_version(), "seed": args.seed,
              "template_still_reading": tmpl_read,
              "split": {"train_identities": list(TRAIN_PEOPLE),
                        "test_identities": list(TEST_PEOPLE)},
              "smile_overlap": smile, "model_selection": selection, "chosen_model": best, "synth_s": t_synth,
              "train_shape_frames_sequence_median": float(np.median(f_tr[seq])),
              "onnx_vs_numpy_max_abs": diff, "models": results,
              "engine_london_stills": london, "engine_sample_video": video,
              "engine_london_neutral_then_smile": seq_ns, "engine_london_smile_then_neutral": seq_sn,
              "timing": timing(head_path, fz.names), "build_s": None}
    report["build_s"] = time.time() - t_start
    (out / "build_report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    for kind, r in results.items():
        t = r["synthetic_test"]
        print(f"{kind}{' (shipped)' if kind == best else ''}: synthetic test acc {t['all']['accuracy']:.3f} macro-F1 {t['all']['macro_f1']:.3f} "
              f"(still {t['still']['accuracy']:.3f}, sequence {t['sequence']['accuracy']:.3f}; "
              f"{r['train_s']:.1f} s)")
    for split in ("train_people", "test_people", "all"):
        s = london[split]
        print(f"London stills {split}: happiness on smiles {s['happiness_top_on_smiles']}/{s['people']}, "
              f"neutral on neutrals {s['neutral_top_on_neutrals']}/{s['people']}; smiles {s['smile_top_classes']}"
              f" neutrals {s['neutral_top_classes']}")
    for name, r in (("neutral->smile", seq_ns), ("smile->neutral", seq_sn)):
        for split in ("train_people", "test_people"):
            s = r[split]
            print(f"London sequences {name} {split}: happiness on the smile part {s['happiness_top_on_smile_part']}"
                  f"/{s['people']}, neutral on the neutral part {s['neutral_top_on_neutral_part']}/{s['people']}")
    print(f"video: P(happiness) first second {video['happiness_first_second_mean']:.3f}, last second "
          f"{video['happiness_last_second_mean']:.3f}; top last second {video['top_class_last_second']}")
    print(f"build {report['build_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
