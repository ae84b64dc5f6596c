"""Whole-process comparisons, as a new user would time them: the same file, the same machine, side by side.

Each round runs, one after the other (rounds alternate, so drifts of a shared machine hit every side alike):
- ``bare``: ``python benchmarks/bare.py video V`` (cv2.VideoCapture + FaceMesh, one thread);
- ``default``: ``rtface run --source V --out r.parquet`` with the packaged default pipeline (landmarks, canonical,
  AUs, emotion), publishing on a loopback port and writing the output file;
- ``landmarks``: the same with ``--config landmarks``;
and, for start-up, one photo end to end: ``bare.py photo P`` against ``rtface run --source P --out p.parquet``.
Wall time from process start to exit; fps = frames / wall time. Reports medians over rounds and the ratios
(fps engine / fps bare; start-up: wall engine / wall bare).

Usage: ``python benchmarks/bench_process.py [--video V] [--photo P] [--rounds 3] [--only video|photo]
[--json F]`` (the default video is made by ``benchmarks/make_video.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_video import make_video  # noqa: E402

PHOTO = ROOT / "tests" / "data" / "faces" / "misc" / "single_face.jpg"
ENV = dict(os.environ, GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall s, CPU s = user + system of the child) for one run of ``cmd``."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def rtface_cmd(source: str, out: Path, config: str | None) -> list[str]:
    cmd = [sys.executable, "-m", "rtface", "run", "--source", source, "--out", str(out), "--overwrite",
           "--endpoint", "tcp://127.0.0.1:0", "--control", "tcp://127.0.0.1:0"]
    return cmd + (["--config", config] if config else [])


def frames_of(video: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(video))
    n = 0
    while cap.grab():
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path)
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("video", "photo"))
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    video = a.video or make_video()
    n = frames_of(video)
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    loads: list[float] = []
    tmp = Path(tempfile.mkdtemp(prefix="rtface-bench-"))
    sides = []
    if a.only != "photo":
        sides += [("bare", [sys.executable, str(ROOT / "benchmarks" / "bare.py"), "video", str(video)]),
                  ("default", rtface_cmd(str(video), tmp / "r.parquet", None)),
                  ("landmarks", rtface_cmd(str(video), tmp / "l.parquet", "landmarks"))]
    if a.only != "video":
        sides += [("photo_bare", [sys.executable, str(ROOT / "benchmarks" / "bare.py"), "photo", str(a.photo)]),
                  ("photo_rtface", rtface_cmd(str(a.photo), tmp / "p.parquet", None))]
    for r in range(a.rounds):
        for name, cmd in sides:
            loads.append(os.getloadavg()[0])
            wall, cpu = timed(cmd)
            walls.setdefault(name, []).append(wall)
            cpus.setdefault(name, []).append(cpu)
            print(f"round {r + 1} {name:<12} {wall:6.2f} s (CPU {cpu:6.2f} s)" +
                  (f"  {n / wall:6.1f} fps" if "photo" not in name else ""), flush=True)
    med = {k: statistics.median(v) for k, v in walls.items()}
    out = {"video": str(video), "frames": n, "rounds": a.rounds, "wall_s": walls, "median_wall_s": med,
           "median_cpu_s": {k: statistics.median(v) for k, v in cpus.items()},
           "load_average_1min": {"min": min(loads), "max": max(loads)}, "cores": os.cpu_count()}
    if "bare" in med:
        out["fps"] = {k: n / med[k] for k in ("bare", "default", "landmarks")}
        out["ratio_fps"] = {k: med["bare"] / med[k] for k in ("default", "landmarks")}
    if "photo_bare" in med:
        out["startup_ratio"] = med["photo_rtface"] / med["photo_bare"]
    print(json.dumps({k: v for k, v in out.items() if k != "wall_s"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
