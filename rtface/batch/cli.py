"""``rtface batch INPUTS... --out DIR``: many recordings through the Engine in parallel (rtface.batch)."""
from __future__ import annotations

import argparse
from pathlib import Path


def cmd_batch(args: argparse.Namespace) -> int:
    from rtface.batch.runner import BatchOptions, run_batch

    return run_batch(BatchOptions(inputs=args.inputs, out_dir=Path(args.out), config=args.config,
                                  workers=args.workers, retries=args.retries, fmt=args.format,
                                  chunk_s=args.chunk_s, overlap_s=args.overlap_s, backend=args.backend,
                                  ray_address=args.ray_address, progress=not args.no_progress,
                                  allow_incomplete=args.allow_incomplete, pin_cores=args.pin))


def add_commands(sub) -> None:
    b = sub.add_parser("batch", help="process many files (videos, photos, image folders) in parallel worker "
                                     "processes, one result table per input; resumable")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="video or image files, folders, glob patterns")
    b.add_argument("--out", required=True, help="output folder (tables, session summaries, manifest.jsonl, logs)")
    b.add_argument("--config", help="TOML config for every input (default: the packaged default pipeline)")
    b.add_argument("--workers", type=int, default=0, help="worker processes (default: the number of cores)")
    b.add_argument("--retries", type=int, default=1, help="extra attempts for a failed input (default 1)")
    b.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="result table format")
    b.add_argument("--chunk-s", type=float, default=0.0,
                   help="split videos longer than 1.5x this many seconds into chunks run in parallel (0 = never)")
    b.add_argument("--overlap-s", type=float, default=None,
                   help="each chunk starts this many seconds early so tracking and the per-person face shape "
                        "settle (default: the canonical stage's window_s + 2 s, i.e. 32 s)")
    b.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local worker processes (default) or Ray actors (pip install 'rtface[ray]')")
    b.add_argument("--ray-address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray instance)")
    b.add_argument("--no-progress", action="store_true", help="no progress line")
    b.add_argument("--pin", action="store_true",
                   help="local backend, a machine doing nothing else: with no more workers than cores, worker i "
                        "runs on core i only (a few %% faster; two pinned batches at once would share cores)")
    b.add_argument("--allow-incomplete", action="store_true",
                   help="accept the frames that decoded from a truncated or partly undecodable input (it is then done, "
                        "not failed; the counts are in its log)")
    b.set_defaults(func=cmd_batch)
