"""Options of ``rtface run`` that add the opt-in live outputs: ``--lsl`` (Lab Streaming Layer outlet) and
``--preview-jpeg FPS`` (low-rate downscaled camera images on ``rtface.v1.preview``). Each appends its stage at the
end of the configured pipeline unless the config already has one of that kind. Pure config logic."""
from __future__ import annotations

import argparse
import dataclasses

from rtface.config import EngineConfig, StageConfig, build_dataclass, check_graph, resolve_stage_class


def add_run_options(r: argparse.ArgumentParser) -> None:
    r.add_argument("--lsl", action="store_true",
                   help="also publish every frame's face signals and the alert/session markers to Lab Streaming "
                        "Layer (needs pip install 'rtface[lsl]'; see [[stages]] kind = \"lsl\")")
    r.add_argument("--lsl-faces", type=int, default=None, metavar="N", help="face slots in the LSL stream")
    r.add_argument("--preview-jpeg", type=float, default=None, metavar="FPS",
                   help="publish downscaled JPEG camera images at most FPS times a second on rtface.v1.preview "
                        "(off by default: images stay inside the engine)")


def _append(cfg: EngineConfig, kind: str, table: dict, where: str) -> EngineConfig:
    if any(s.kind == kind for s in cfg.stages):
        return cfg
    cls = resolve_stage_class(kind, where)
    sc = StageConfig(kind=kind, name=kind, on_error="skip", max_errors=10,
                     params=build_dataclass(cls.Params, table, where), cls=cls)
    out = dataclasses.replace(cfg, stages=cfg.stages + (sc,))
    check_graph(out)
    return out


def apply_run_options(cfg: EngineConfig, args: argparse.Namespace) -> EngineConfig:
    if getattr(args, "lsl", False) or getattr(args, "lsl_faces", None) is not None:
        table = {} if args.lsl_faces is None else {"faces": args.lsl_faces}
        cfg = _append(cfg, "lsl", table, "--lsl")
    if getattr(args, "preview_jpeg", None) is not None:
        cfg = _append(cfg, "preview", {"fps": float(args.preview_jpeg)}, "--preview-jpeg")
    return cfg
