#!/usr/bin/env python
"""Alert latency (capture of the triggering frame -> receipt by a listener in another process) and the cost of the
alerts stage per frame.

1. Latency: the packaged default pipeline (landmarks, canonical, AUs, emotion, eyes, alerts with the packaged
   rules) on the sample video played live (real time, looping), plus one extra rule on a test signal that flips every
   ``--period`` frames on the real face (tests/integration/stage_plugins.py), so alerts are raised and cleared at a
   known rate. A durable listener (rtface.transport.alert_client.AlertClient) runs in its own process and records
   ``time.time_ns() - event["t_capture_ns"]`` for every raised/cleared event. Both clocks are this machine's
   ``time.time_ns()``. Run once per journal sync mode (``full``: fsync per commit, the default; ``normal``).
2. Stage cost: the alerts stage's own per-frame time inside the engine (``stage_ms``) over the same runs, and an
   isolated replay: real frames of the sample video through the eyes and alerts stages (packaged rules, a journal,
   the channel with one connected listener) timed per ``process`` call, with no alert firing.

Usage: python benchmarks/bench_alerts.py [--seconds 60] [--period 3]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _listener(endpoint: str, q, stop) -> None:
    from rtface.transport.alert_client import AlertClient

    lat, snap = [], 0
    with AlertClient(endpoint, name="bench") as c:
        q.put("ready")
        drain_until = None
        while drain_until is None or time.monotonic() < drain_until:
            if drain_until is None and stop.is_set():
                drain_until = time.monotonic() + 2.0  # what is still on its way
            item = c.recv(timeout_s=0.2)
            if item is not None and item.get("type") in ("raised", "cleared") and not item.get("local"):
                lat.append((time.time_ns() - item["t_capture_ns"]) / 1e6)
            elif item is not None and item.get("type") == "active":
                snap += 1  # an alert raised before this listener's hello reached the engine: shown from the snapshot
    q.put((lat, snap))


def _pct(a, qs=(50, 99)) -> str:
    a = np.asarray(a, float)
    return " / ".join(f"{np.percentile(a, q):.2f}" for q in qs) if len(a) else "n/a"


def latency_run(seconds: float, period: int, sync: str) -> tuple[list[float], int, dict]:
    import dataclasses

    from rtface.config import build_dataclass, load_config, resolve_stage_class, with_overrides, StageConfig
    from rtface.graph.runner import Engine
    from tests.conftest import free_port

    d = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cfg = with_overrides(load_config(), source={"spec": "sample", "realtime": True, "loop": True},
                         publish={"enabled": False}, control={"enabled": False},
                         engine={"max_frames": int(seconds * 30)})
    kind = "tests.integration.stage_plugins:AlertToggleStage"
    cls = resolve_stage_class(kind, "bench")
    toggle = StageConfig(kind, "toggle", "raise", 1,
                         build_dataclass(cls.Params, {"period": period, "on_real_faces": True,
                                                      "go_file": str(d / "go")}, "bench"), cls)
    stages = []
    for s in cfg.stages:
        if s.kind == "alerts":
            stages.append(toggle)
            rules = ({"name": "bench_toggle", "signal": "toggle", "threshold": 0.5, "priority": "low"},)
            s = dataclasses.replace(s, params=dataclasses.replace(s.params, endpoint=endpoint, journal_sync=sync,
                                                                  journal=str(d / "j.sqlite"), rules=rules))
        stages.append(s)
    cfg = dataclasses.replace(cfg, stages=tuple(stages))
    ctx = mp.get_context("spawn")
    q, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_listener, args=(endpoint, q, stop), daemon=True)
    proc.start()
    assert q.get(timeout=60) == "ready"
    from tests.integration.alert_procs import go

    # the test signal starts once the listener is registered, so it gets every event (not some from a snapshot)
    threading.Thread(target=go, args=(d, d / "j.sqlite", {"bench"}), daemon=True).start()
    summary = Engine(cfg).run()
    time.sleep(1.0)
    stop.set()
    lat, snap = q.get(timeout=60)
    proc.join(10)
    return lat, snap, summary


def engine_stage_cost(frames: int = 900) -> dict:
    """Default pipeline, sample video offline (looped), packaged rules (none fires): stage_ms percentiles."""
    import dataclasses

    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine

    d = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    cfg = with_overrides(load_config(), source={"spec": "sample", "realtime": False, "loop": True},
                         publish={"enabled": False}, control={"enabled": False}, engine={"max_frames": frames})
    cfg = dataclasses.replace(cfg, stages=tuple(
        dataclasses.replace(s, params=dataclasses.replace(s.params, endpoint="tcp://127.0.0.1:0",
                                                          journal=str(d / "j.sqlite")))
        if s.kind == "alerts" else s for s in cfg.stages))
    summary = Engine(cfg).run()
    assert summary["stages"]["alerts"]["raised"] == 0
    return summary["stats"]["stage_ms"]


def isolated_stage_cost(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    from rtface.records import Face, FrameMeta, FrameResult
    from rtface.signals.eye_state import EyeParams
    from rtface.stages.alerts import AlertParams, AlertStage
    from rtface.stages.eyes import EyeStage
    from rtface.transport.alert_client import AlertClient
    from tests.conftest import SAMPLE_VIDEO, video_landmarks

    _, lms = video_landmarks(str(SAMPLE_VIDEO))
    d = tempfile.mkdtemp(prefix="bench-alerts-")
    au = tuple(f"AU{i:02d}" for i in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43))
    emo = ("neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt")
    alerts = AlertStage("alerts", AlertParams(endpoint="tcp://127.0.0.1:0", journal=f"{d}/j.sqlite"))
    alerts.bind({"landmarks": (), "aus": au, "emotion": emo, "eyes": ()})
    alerts.open()
    client = AlertClient(alerts.endpoint, name="bench")
    eyes = EyeStage("eyes", EyeParams())
    t_eyes, t_alerts = [], []
    for i in range(n):
        r = FrameResult(FrameMeta(i, time.time_ns(), int(i * 1e9 / 30), 640, 360, "bench"))
        f = Face(0, 0.99, np.zeros(4, np.float32), lms[i % len(lms)])
        f.au_intensity, f.emotion = np.zeros(len(au), np.float32), np.full(len(emo), 1 / len(emo), np.float32)
        f.extras["pspi"] = 0.0
        r.faces.append(f)
        t0 = time.perf_counter()
        eyes.process(None, r)
        t1 = time.perf_counter()
        alerts.process(None, r)
        t2 = time.perf_counter()
        t_eyes.append(t1 - t0)
        t_alerts.append(t2 - t1)
        if i % 30 == 0:
            client.recv(timeout_s=0)
    s = alerts.summary()
    assert s["raised"] == 0, s  # nothing fires: this is the steady per-frame cost
    client.close()
    alerts.close()
    return np.array(t_eyes[100:]) * 1e3, np.array(t_alerts[100:]) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each live latency run")
    ap.add_argument("--period", type=int, default=3, help="frames between flips of the test signal")
    args = ap.parse_args(argv)
    print(f"alert latency, capture -> listener receipt (default pipeline, sample video live, {args.seconds:.0f} s "
          f"per run, test signal flipping every {args.period} frames)")
    for sync in ("full", "normal"):
        lat, snap, summary = latency_run(args.seconds, args.period, sync)
        st = summary["stats"]["stage_ms"]
        a = summary["stages"]["alerts"]
        print(f"  journal_sync={sync}: {len(lat)} events received (+{snap} from the snapshot) of "
              f"{a['raised'] + a['cleared']} raised+cleared; "
              f"latency p50 / p99 {_pct(lat)} ms; alerts stage in the engine p50 / p99 "
              f"{st['alerts']['p50']:.3f} / {st['alerts']['p99']:.3f} ms; eyes {st['eyes']['p50']:.3f} / "
              f"{st['eyes']['p99']:.3f} ms; landmarks {st['landmarks']['p50']:.2f} / {st['landmarks']['p99']:.2f} ms")
    st = engine_stage_cost()
    print(f"inside the engine, default pipeline, sample video offline, 900 frames, no alert firing: alerts stage "
          f"p50 / p99 {st['alerts']['p50']:.3f} / {st['alerts']['p99']:.3f} ms, eyes {st['eyes']['p50']:.3f} / "
          f"{st['eyes']['p99']:.3f} ms")
    te, ta = isolated_stage_cost()
    print(f"isolated, per frame with one face and no alert firing ({len(ta)} frames): alerts stage p50 / p99 "
          f"{_pct(ta, (50, 99))} ms (mean {ta.mean():.3f}); eyes stage {_pct(te)} ms (mean {te.mean():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
