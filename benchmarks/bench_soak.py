"""Memory over time of a live engine: ``rtface run`` on the benchmark video paced in real time and looping (as a
camera), default pipeline, publishing with a subscriber attached, for ``--minutes``; the engine's resident memory
(RSS from /proc) is sampled every ``--every-s`` seconds. Reports RSS after the first minute, at the end, the
least-squares slope after the first minute (MiB per hour) and the engine's own frame/drop counters.

Usage: ``python benchmarks/bench_soak.py [--minutes 60] [--every-s 10] [--config default] [--json F]``.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from make_video import make_video  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--every-s", type=float, default=10.0)
    ap.add_argument("--config", default="default")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    video = make_video()
    port, alert_port = free_port(), free_port()
    journal = Path(tempfile.mkdtemp(prefix="rtface-soak-")) / "journal.sqlite"  # not the user's journal
    env = dict(os.environ, GLOG_minloglevel="2")
    eng = subprocess.Popen([sys.executable, "-m", "rtface", "run", "--source", str(video), "--realtime", "--loop",
                            "--config", a.config, "--endpoint", f"tcp://127.0.0.1:{port}", "--no-control",
                            "--alerts-endpoint", f"tcp://127.0.0.1:{alert_port}", "--journal", str(journal)],
                           stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    from rtface.transport.subscriber import Subscriber

    samples: list[tuple[float, float]] = []
    last_stats: dict = {}
    frames = 0
    t0 = time.monotonic()
    next_sample = t0
    try:
        with Subscriber(f"tcp://127.0.0.1:{port}") as sub:
            while time.monotonic() - t0 < a.minutes * 60:
                got = sub.recv(0.2)
                if got is not None:
                    if got[0] == "rtface.v1.stats":
                        last_stats = got[1]
                    elif got[0] == "rtface.v1.frame":
                        frames += 1
                if time.monotonic() >= next_sample:
                    samples.append((time.monotonic() - t0, rss_mib(eng.pid)))
                    next_sample += a.every_s
            missed = sub.missed_frames
    finally:
        eng.terminate()
        eng.wait(30)
    t = np.array([x for x, _ in samples])
    m = np.array([y for _, y in samples])
    after = t >= 60
    slope = float(np.polyfit(t[after] / 3600, m[after], 1)[0]) if after.sum() >= 3 else float("nan")
    out = {"minutes": a.minutes, "config": a.config, "samples": len(samples),
           "rss_mib_at_1min": float(m[after][0]) if after.any() else None, "rss_mib_end": float(m[-1]),
           "rss_mib_max": float(m.max()), "slope_mib_per_hour_after_1min": slope,
           "frames_received": frames, "missed_frames": missed,
           "engine_stats": {k: last_stats.get(k) for k in ("frames", "fps", "latency_ms", "drops")}}
    print(json.dumps(out, indent=1, default=str))
    if a.json:
        a.json.write_text(json.dumps({**out, "rss_series": samples}, indent=1, default=str))


if __name__ == "__main__":
    main()
