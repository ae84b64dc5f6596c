"""``rtface train-emotion`` and ``rtface eval-emotion`` (wired into ``rtface.cli`` through :func:`add_commands`).

Errors are rtface DataError / ConfigError; ``rtface.cli.main`` prints them and exits 2.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtface.errors import ConfigError


def _image_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or size[0] <= 0 or size[1] <= 0:
        raise argparse.ArgumentTypeError(f"image size must look like 640x480, got {text!r}")
    return size


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="landmark table (.parquet/.csv: video_filename, frame_num, emotion, "
                                                 "x_0..z_477) or a folder with one sub-folder per class")
    p.add_argument("--image-size", type=_image_size, default=(640, 480),
                   help="W x H px used to de-normalise table coordinates (default 640x480)")
    p.add_argument("--neutral", choices=("auto", "video", "still", "person"), default="auto",
                   help="how faces are measured: auto (as `rtface run`: videos as sequences with the online "
                        "person model, photos as stills), video, still, or person (an explicit neutral from each "
                        "person's neutral-labelled frames)")
    p.add_argument("--fps", type=float, default=30.0, help="tables: media time of a row = frame_num / fps")
    p.add_argument("--config", default="", help="take the landmark, canonical and AU stage parameters from this "
                                                "config (default: the packaged default config)")
    p.add_argument("--label-map", action="append", metavar="OLD=NEW",
                   help="extra label mapping, e.g. calm=neutral (repeatable)")
    p.add_argument("--video-stride", type=int, default=1, help="folder videos: use every Nth frame")
    p.add_argument("--basis", default="", help="AU basis .npz (default: the shipped basis)")


def _load(args: argparse.Namespace):
    from rtface.config import load_config
    from rtface.emotion.dataset import load_labelled
    from rtface.emotion.features import AUFeaturizer
    from rtface.emotion.labels import parse_label_map

    cfg = load_config(args.config or None)
    lm_params = next((sc.params for sc in cfg.stages if sc.kind == "landmarks"), None)
    fz = AUFeaturizer(cfg, basis_path=args.basis or None)
    try:
        data = load_labelled(args.data, fz, image_size=args.image_size, neutral=args.neutral,
                             label_map=parse_label_map(args.label_map), video_stride=args.video_stride,
                             fps=args.fps, landmark_params=lm_params)
    finally:
        fz.close()
    data.summary["basis"] = fz.basis_name
    data.summary["neutral"] = args.neutral
    data.summary["config"] = fz.config_origin
    return data


def cmd_train(args: argparse.Namespace) -> int:
    from rtface.emotion.evaluate import format_report
    from rtface.emotion.model import TrainOptions
    from rtface.emotion.train import train_head

    if not str(args.out).endswith(".onnx"):
        raise ConfigError(f"--out must be an .onnx file, got {args.out!r}")
    data = _load(args)
    opts = TrainOptions(kind=args.model, hidden=args.hidden, l2=args.l2, lr=args.lr, epochs=args.epochs,
                        batch_size=args.batch_size, patience=args.patience, class_weights=not args.no_class_weights,
                        seed=args.seed)
    classes = tuple(c.strip() for c in args.classes.split(",")) if args.classes else ()
    rep, _ = train_head(data, args.out, split_by=args.split_by, classes=classes, opts=opts,
                     test_fraction=args.test_fraction, version=args.version)
    out = Path(args.out)
    print(f"wrote {out} (ONNX vs numpy max abs diff {rep['onnx_vs_numpy_max_abs']:.2e}), "
          f"{out.with_suffix('.report.json')}")
    if "test" in rep:
        print(format_report(rep["test"]))
        print(f"confusion matrix: {out.with_suffix('.confusion.png')}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rtface.emotion.evaluate import evaluate_head, format_report, write_report
    from rtface.emotion.onnx_export import load_head

    head = load_head(args.model)
    data = _load(args)
    rep = evaluate_head(head, data, str(args.data))
    print(format_report(rep))
    if args.out:
        png = Path(args.out).with_suffix(".png")
        write_report(rep, args.out, png)
        print(f"wrote {args.out}, {png}")
    else:
        print(json.dumps({"confusion_matrix": rep["confusion_matrix"], "classes": rep["classes"]}))
    return 0


def add_commands(sub) -> None:
    """Add ``train-emotion`` and ``eval-emotion`` to an argparse sub-parser set."""
    t = sub.add_parser("train-emotion", help="train an ONNX emotion head on labelled landmarks or a class folder")
    _data_args(t)
    t.add_argument("--out", required=True, help="output model (.onnx); report and confusion PNG go next to it")
    t.add_argument("--split-by", choices=("video", "person"), default="video",
                   help="hold-out unit: a video's (person's) rows never appear in both train and test")
    t.add_argument("--model", choices=("logreg", "mlp"), default="mlp")
    t.add_argument("--hidden", type=int, default=32, help="MLP hidden units")
    t.add_argument("--epochs", type=int, default=200)
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--patience", type=int, default=20, help="early stopping patience (epochs)")
    t.add_argument("--lr", type=float, default=1e-2, help="Adam step size")
    t.add_argument("--l2", type=float, default=1e-3, help="L2 penalty on weights")
    t.add_argument("--no-class-weights", action="store_true", help="do not weight classes by inverse frequency")
    t.add_argument("--test-fraction", type=float, default=0.2)
    t.add_argument("--classes", default="", help="comma-separated classes that must all be present (and order)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--version", default="", help="version string stored in the model (default: UTC timestamp)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval-emotion", help="evaluate an ONNX emotion head on labelled landmarks or a class folder")
    _data_args(e)
    e.add_argument("--model", required=True, help="ONNX emotion head")
    e.add_argument("--out", default="", help="write the JSON report here (and the confusion matrix as .png)")
    e.set_defaults(func=cmd_eval)
