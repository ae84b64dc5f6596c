"""``rtface analyze results.parquet``: behaviour measures and the HTML report of a result table."""
from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_analyze(args: argparse.Namespace) -> int:
    from rtface.analysis.session import AnalysisSettings, analyze_table, write_outputs

    s = AnalysisSettings(window_s=args.window, step_s=args.step)
    if args.dyad_signals:
        s.dyad_signals = tuple(x.strip() for x in args.dyad_signals.split(",") if x.strip())
    a = analyze_table(args.table, s)
    for p in write_outputs(a, args.table, report=not args.no_report):
        print(f"wrote {p}", file=sys.stderr)
    print(f"{len(a.faces)} face(s), {len(a.dyads)} pair measure(s); landmarks: {a.quality.get('landmarks')}",
          file=sys.stderr)
    return 0


def add_commands(subparsers: Any) -> None:
    """Register ``rtface analyze`` (called by rtface.cli.build_parser)."""
    a = subparsers.add_parser(
        "analyze", help="behaviour measures and an HTML report of a result table (.parquet/.csv)",
        description="Expressivity, asymmetry, kinematics, head movement, blinks and two-person coordination per face "
                    "(docs/behaviour-analyses.md); writes <stem>_analysis.json, _analysis_faces.csv, "
                    "_analysis_windows.csv, _analysis_dyads.csv and <stem>_report.html beside the table.")
    a.add_argument("table", help="result table written by `rtface run --out` (best with --write-canonical)")
    a.add_argument("--window", type=float, default=10.0, help="rolling window, s of media time (default 10)")
    a.add_argument("--step", type=float, default=1.0, help="windows table step, s (default 1)")
    a.add_argument("--dyad-signals", help="comma-separated per-frame signals for face pairs (default "
                                          "expressivity,AU12_r,AU06_r,AU04_r,speed_mouth)")
    a.add_argument("--no-report", action="store_true", help="tables only, no HTML report")
    a.set_defaults(func=cmd_analyze)
