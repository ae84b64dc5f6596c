"""Batch throughput against the single bare loop, measured in the same run (rounds alternate).

- ``bare``: ``python benchmarks/bare.py video V`` (one process, cv2 + FaceMesh): frames / wall s;
- ``batch``: ``rtface batch`` on ``--copies`` copies of V (default 4) with ``--workers`` worker processes (default:
  the cores) and the packaged default pipeline, a fresh output folder each round: total frames / wall s, from
  process start to exit (start-up, model loading and the per-input session files included);
- ``batch_landmarks``: the same with ``--config landmarks``;
- ``batch_pinned``: ``batch`` with ``--pin`` (one core per worker instead of any core);
- ``bare_xN``: N bare loops at once (N = workers), each on its own copy: what this machine gives in parallel at that
  moment (on a shared machine other users' load lowers it; batch / bare_xN shows how close the batch gets).
Reports medians and the ratios (batch fps / bare fps). Usage:
``python benchmarks/bench_batch.py [--video V] [--copies 4] [--workers N] [--rounds 2] [--json F]``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_process import frames_of, timed  # noqa: E402
from make_video import make_video  # noqa: E402


PARALLEL = """
import subprocess, sys
n, py, bare, video = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ps = [subprocess.Popen([py, bare, "video", video], stdout=subprocess.DEVNULL) for _ in range(n)]
sys.exit(max(p.wait() for p in ps))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    video = a.video or make_video()
    n = frames_of(video)
    tmp = Path(tempfile.mkdtemp(prefix="rtface-bench-batch-"))
    src = tmp / "in"
    src.mkdir()
    for i in range(a.copies):
        shutil.copy(video, src / f"v{i}{video.suffix}")
    workers = a.workers or os.cpu_count() or 1
    sides = {"bare": lambda r: [sys.executable, str(ROOT / "benchmarks" / "bare.py"), "video", str(video)],
             "batch": lambda r: [sys.executable, "-m", "rtface", "batch", str(src), "--out", str(tmp / f"o{r}"),
                                 "--workers", str(workers), "--no-progress"],
             "batch_landmarks": lambda r: [sys.executable, "-m", "rtface", "batch", str(src), "--out",
                                           str(tmp / f"l{r}"), "--workers", str(workers), "--no-progress",
                                           "--config", "landmarks"]}
    sides["batch_pinned"] = lambda r: [sys.executable, "-m", "rtface", "batch", str(src), "--out",
                                       str(tmp / f"p{r}"), "--workers", str(workers), "--no-progress", "--pin"]
    par = f"bare_x{workers}"
    sides[par] = lambda r: [sys.executable, "-c", PARALLEL, str(workers), sys.executable,
                            str(ROOT / "benchmarks" / "bare.py"), str(video)]
    frames = {"bare": n, "batch": n * a.copies, "batch_pinned": n * a.copies, "batch_landmarks": n * a.copies,
              par: n * workers}
    walls: dict[str, list[float]] = {}
    loads = []
    for r in range(a.rounds):
        for name, cmd in sides.items():
            loads.append(os.getloadavg()[0])
            wall, cpu = timed(cmd(r))
            walls.setdefault(name, []).append(wall)
            print(f"round {r + 1} {name:<16} {wall:6.2f} s (CPU {cpu:6.2f} s) {frames[name] / wall:6.1f} fps",
                  flush=True)
    fps = {k: frames[k] / statistics.median(v) for k, v in walls.items()}
    out = {"video": str(video), "frames_per_input": n, "copies": a.copies, "workers": workers, "cores": os.cpu_count(),
           "rounds": a.rounds, "wall_s": walls, "fps": fps,
           "ratio_to_bare": {k: fps[k] / fps["bare"] for k in ("batch", "batch_landmarks", "batch_pinned", par)},
           "ratio_to_parallel_bare": {k: fps[k] / fps[par] for k in ("batch", "batch_landmarks", "batch_pinned")},
           "load_average_1min": {"min": min(loads), "max": max(loads)}}
    print(json.dumps({k: v for k, v in out.items() if k != "wall_s"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
