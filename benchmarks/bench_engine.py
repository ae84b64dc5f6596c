"""Engine vs a bare MediaPipe loop, measured in the same run on a real video.

Reports (medians and p99 in ms):
- offline throughput (fps): bare ``cv2.VideoCapture`` + FaceMesh loop vs ``rtface`` in file mode (every frame
  processed and published on a loopback ZeroMQ socket with a live subscriber);
- live latency: both paced at the video's frame rate as if it were a camera; bare = capture -> landmarks done,
  engine = capture -> decoded by a subscriber in another process (as a dashboard would be);
- per-stage times of the engine (``stage_ms``).

Usage: ``python benchmarks/bench_engine.py [--video V] [--frames N] [--rounds R] [--config NAME] [--json F]``
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import multiprocessing as mp
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rtface.config import SAMPLE_VIDEO, load_config, with_overrides  # noqa: E402
from rtface.graph.runner import Engine  # noqa: E402
from rtface.landmarking.quiet import native_stderr_silenced  # noqa: E402


def pct(a, q) -> float:
    return float(np.percentile(np.asarray(a, float), q)) if len(a) else float("nan")


def frames_of(video: str, n: int):
    """Yield n decoded frames, looping the file."""
    got = 0
    while got < n:
        cap = cv2.VideoCapture(video)
        while got < n:
            ok, img = cap.read()
            if not ok:
                break
            got += 1
            yield img
        cap.release()


def bare_offline(video: str, n: int, max_faces: int) -> dict:
    import mediapipe as mp

    with native_stderr_silenced():
        mesh = mp.solutions.face_mesh.FaceMesh(max_num_faces=max_faces, refine_landmarks=True)
    times = []
    t0 = time.perf_counter()
    for img in frames_of(video, n):
        t = time.perf_counter()
        with native_stderr_silenced(len(times) < 5):
            mesh.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        times.append((time.perf_counter() - t) * 1e3)
    wall = time.perf_counter() - t0
    mesh.close()
    return {"fps": n / wall, "process_ms_p50": pct(times, 50), "process_ms_p99": pct(times, 99)}


def bare_live(video: str, n: int, fps: float, max_faces: int) -> dict:
    """Frames paced at fps; latency = time from 'capture' (the frame's due time) to landmarks done."""
    import mediapipe as mp

    with native_stderr_silenced():
        mesh = mp.solutions.face_mesh.FaceMesh(max_num_faces=max_faces, refine_landmarks=True)
    lat = []
    start = time.perf_counter() + 0.1
    for i, img in enumerate(frames_of(video, n)):
        due = start + i / fps
        while time.perf_counter() < due:
            time.sleep(max(0.0, due - time.perf_counter()))
        t_cap = time.perf_counter()
        with native_stderr_silenced(i < 5):
            mesh.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        lat.append((time.perf_counter() - t_cap) * 1e3)
    mesh.close()
    return {"latency_ms_p50": pct(lat, 50), "latency_ms_p99": pct(lat, 99)}


def _receive(endpoint: str, conn, stop) -> None:
    """Subscriber process: records capture -> receipt latency (ms) and frame index of every frame message."""
    from rtface.transport.subscriber import Subscriber

    lat, frames = [], []
    with Subscriber(endpoint, topics=("rtface.v1.frame",)) as sub:
        conn.send("ready")
        while not stop.is_set():
            got = sub.recv(timeout_s=0.2)
            if got is None:
                continue
            t_ns = time.time_ns()
            lat.append((t_ns - got[1]["t_capture_ns"]) / 1e6)
            frames.append(got[1]["frame"])
    conn.send((lat, frames))


class Receiver:
    """A subscriber in its own process, as a dashboard would be (no GIL shared with the engine)."""

    def __init__(self, endpoint: str) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_receive, args=(endpoint, child, self._stop), daemon=True)
        self.lat_ms: list[float] = []
        self.frames: list[int] = []

    def start(self) -> None:
        self._proc.start()
        assert self._conn.recv() == "ready"

    def finish(self) -> None:
        self._stop.set()
        self.lat_ms, self.frames = self._conn.recv()
        self._proc.join(5)


def engine_run(video: str, n: int, config: str, realtime: bool) -> dict:
    cfg = load_config(None if config == "default" else config)
    cfg = with_overrides(cfg, source={"spec": video, "realtime": realtime, "loop": True},
                         engine={"max_frames": n}, publish={"endpoint": "tcp://127.0.0.1:0", "sndhwm": 1000},
                         output={"path": ""}, control={"enabled": False})
    engine = Engine(cfg)
    stage_ms: dict[str, list[float]] = {}
    per_face: dict[str, list[float]] = {}
    it = engine.results()
    first = next(it)  # opens everything, binds the socket
    rx = Receiver(engine.publisher.endpoint)
    rx.start()
    time.sleep(0.5)  # let the subscription propagate before timing
    t0 = time.perf_counter()
    count = 0
    for r in it:
        count += 1
        for k, v in r.stage_ms.items():
            stage_ms.setdefault(k, []).append(v)
            if r.faces:
                per_face.setdefault(k, []).append(v / len(r.faces))
    wall = time.perf_counter() - t0
    time.sleep(0.3)
    rx.finish()
    del first
    return {
        "fps": count / wall,
        "frames": count,
        "received": len(rx.lat_ms),
        "latency_ms_p50": pct(rx.lat_ms, 50),
        "latency_ms_p99": pct(rx.lat_ms, 99),
        "stage_ms": {k: {"p50": pct(v, 50), "p99": pct(v, 99)} for k, v in stage_ms.items()},
        "stage_ms_per_face": {k: {"p50": pct(v, 50), "p99": pct(v, 99)} for k, v in per_face.items()},
        "drops": engine.summary.get("stats", {}).get("drops", {}).get("ring", {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", default=str(SAMPLE_VIDEO))
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--config", default="default", help="packaged config name or TOML path")
    ap.add_argument("--rounds", type=int, default=5, help="alternating bare/engine rounds (median reported)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    a = ap.parse_args()
    from rtface.landmarking.quiet import filter_native_logs

    filter_native_logs()
    cap = cv2.VideoCapture(a.video)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    cap.release()
    max_faces = load_config(None if a.config == "default" else a.config).stages[0].params.max_faces
    res = {"video": Path(a.video).name, "size": size, "fps_video": fps, "frames": a.frames, "config": a.config,
           "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}"}
    # Alternate bare and engine runs and take the median over rounds: this machine's speed drifts by 10-20 %
    # between consecutive seconds, more than the difference being measured.
    runs: dict[str, list[dict]] = {"bare_offline": [], "engine_offline": [], "bare_live": [], "engine_live": []}
    n_live = min(a.frames, 300)
    for _ in range(a.rounds):
        runs["bare_offline"].append(bare_offline(a.video, a.frames, max_faces))
        runs["engine_offline"].append(engine_run(a.video, a.frames, a.config, realtime=False))
    for _ in range(a.rounds):
        runs["bare_live"].append(bare_live(a.video, n_live, fps, max_faces))
        runs["engine_live"].append(engine_run(a.video, n_live, a.config, realtime=True))
    res["rounds"] = runs
    for key, key_metric in (("bare_offline", "fps"), ("engine_offline", "fps"), ("bare_live", "latency_ms_p99"),
                            ("engine_live", "latency_ms_p99")):
        ordered = sorted(runs[key], key=lambda r: r[key_metric])
        res[key] = ordered[len(ordered) // 2]  # the median round
    res["ratio_throughput"] = (float(np.median([r["fps"] for r in runs["engine_offline"]]))
                               / float(np.median([r["fps"] for r in runs["bare_offline"]])))
    res["ratio_live_p99"] = (float(np.median([r["latency_ms_p99"] for r in runs["engine_live"]]))
                             / float(np.median([r["latency_ms_p99"] for r in runs["bare_live"]])))
    eo, el, bo, bl = res["engine_offline"], res["engine_live"], res["bare_offline"], res["bare_live"]
    print(f"video {res['video']} {size[0]}x{size[1]} @ {fps:.0f} fps, {a.frames} frames, config {a.config}; "
          f"{res['machine']}")
    print(f"medians of {a.rounds} alternating rounds; per round: bare "
          f"{[round(r['fps'], 1) for r in runs['bare_offline']]} fps, engine "
          f"{[round(r['fps'], 1) for r in runs['engine_offline']]} fps")
    print(f"offline throughput: bare {bo['fps']:.1f} fps, engine {eo['fps']:.1f} fps "
          f"(ratio {res['ratio_throughput']:.2f}; goal >= 0.9); engine frames received by subscriber "
          f"{eo['received']}/{eo['frames']}")
    print(f"live latency: bare p50 {bl['latency_ms_p50']:.2f} p99 {bl['latency_ms_p99']:.2f} ms | engine "
          f"(capture -> subscriber) p50 {el['latency_ms_p50']:.2f} p99 {el['latency_ms_p99']:.2f} ms "
          f"(p99 ratio {res['ratio_live_p99']:.2f}; goal <= 1.5)")
    print("engine per-stage (offline run):   p50 ms   p99 ms   per-face p50")
    for k, v in eo["stage_ms"].items():
        pf = eo["stage_ms_per_face"].get(k, {}).get("p50", float("nan"))
        print(f"  {k:<14} {v['p50']:8.3f} {v['p99']:8.3f} {pf:10.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()
