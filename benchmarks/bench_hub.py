"""Many cameras through `rtface hub`, against subscribing to each engine directly, measured in the same run.

Starts ``--cameras`` engine processes (``rtface run`` on the benchmark video, paced in real time as a camera,
looping; ``--config``, default ``landmarks``), one ``rtface hub`` merging them, and two subscriber processes: one
subscribed to every engine directly, one to the hub. Both record capture -> receipt latency per frame message and
per camera for ``--seconds``. Reports p50 / p99 latency direct and through the hub, their ratio, and messages lost
(``seq`` gaps). Usage: ``python benchmarks/bench_hub.py [--cameras 2] [--seconds 20] [--config landmarks]
[--json F]``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from make_video import make_video  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receive(endpoints: list[str], seconds: float, warmup_s: float, conn) -> None:
    """Subscriber process: per camera latency (ms) of frame messages, and seq gaps."""
    from rtface.transport.subscriber import Subscriber

    subs = [Subscriber(e, topics=("rtface.v1.frame",)) for e in endpoints]
    lat: dict[str, list[float]] = {}
    t_start = time.monotonic() + warmup_s
    end = t_start + seconds
    while time.monotonic() < end:
        for i, s in enumerate(subs):
            got = s.recv(0.005)
            if got is None:
                continue
            topic, msg = got
            if time.monotonic() < t_start:
                continue
            cam = msg.get("camera", f"cam{i}")
            lat.setdefault(cam, []).append((time.time_ns() - msg["t_capture_ns"]) / 1e6)
    conn.send({"lat": lat, "missed": sum(s.missed_frames for s in subs)})
    for s in subs:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--config", default="landmarks")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    video = a.video or make_video()
    env = dict(os.environ, GLOG_minloglevel="2")
    ports = [free_port() for _ in range(a.cameras)]
    hub_port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "rtface", "run", "--source", str(video), "--realtime",
                               "--loop", "--config", a.config, "--endpoint", f"tcp://127.0.0.1:{p}",
                               "--no-control"], stderr=subprocess.DEVNULL, env=env, cwd=ROOT) for p in ports]
    cams = [f"cam{i}" for i in range(a.cameras)]
    hub_cmd = [sys.executable, "-m", "rtface", "hub", "--out", f"tcp://127.0.0.1:{hub_port}"]
    for c, p in zip(cams, ports):
        hub_cmd += ["--camera", f"{c}=tcp://127.0.0.1:{p}"]
    procs.append(subprocess.Popen(hub_cmd, stderr=subprocess.DEVNULL, env=env, cwd=ROOT))
    ctx = mp.get_context("spawn")
    pipes, rx = [], []
    try:
        for eps in ([f"tcp://127.0.0.1:{p}" for p in ports], [f"tcp://127.0.0.1:{hub_port}"]):
            parent, child = ctx.Pipe()
            pr = ctx.Process(target=receive, args=(eps, a.seconds, 8.0, child), daemon=True)
            pr.start()
            pipes.append(parent)
            rx.append(pr)
        direct, via_hub = (p.recv() for p in pipes)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)
    direct_all = np.concatenate([np.asarray(v) for v in direct["lat"].values()])
    hub_all = np.concatenate([np.asarray(v) for v in via_hub["lat"].values()])
    out = {"video": str(video), "cameras": a.cameras, "config": a.config, "seconds": a.seconds,
           "direct": {"messages": int(direct_all.size), "p50_ms": float(np.percentile(direct_all, 50)),
                      "p99_ms": float(np.percentile(direct_all, 99)), "missed": direct["missed"]},
           "hub": {"messages": int(hub_all.size), "p50_ms": float(np.percentile(hub_all, 50)),
                   "p99_ms": float(np.percentile(hub_all, 99)), "missed": via_hub["missed"],
                   "per_camera_messages": {k: len(v) for k, v in via_hub["lat"].items()}},
           "load_average_1min": os.getloadavg()[0]}
    out["ratio_p99"] = out["hub"]["p99_ms"] / out["direct"]["p99_ms"]
    out["ratio_p50"] = out["hub"]["p50_ms"] / out["direct"]["p50_ms"]
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
