"""Memory of the behaviour stage in a long live run: the Engine with the packaged default pipeline on the sample
video looped ([source] loop) at full speed (not paced), every frame through every stage, for ``--frames`` frames
of media time. Every ``--every`` frames it samples the behaviour stage's own bytes (history + rolling buffers,
``history_stats()``) and the process's resident memory (RSS). Reports both after the cap is reached and at the
end, the number of decimations, and the RSS slope after the cap (MiB per hour of media time).

Usage: ``python benchmarks/bench_behaviour_memory.py [--frames 20000] [--cap 18000] [--every 500] [--json F]``
(``--cap 0``: no cap, the history grows with the run).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--cap", type=int, default=18000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine

    sample = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
    cfg = with_overrides(load_config(), source={"spec": str(sample), "loop": True, "realtime": False},
                         engine={"max_frames": a.frames}, publish={"enabled": False}, control={"enabled": False})
    stages = []
    for s in cfg.stages:
        if s.kind == "behaviour":
            s = dataclasses.replace(s, params=dataclasses.replace(s.params, history_max_frames=a.cap))
        if s.kind == "alerts":  # no channel, a throw-away journal: this measures the behaviour stage
            s = dataclasses.replace(s, params=dataclasses.replace(s.params, endpoint="",
                                                                  journal=str(Path("/tmp") / "bench_bm.sqlite")))
        stages.append(s)
    eng = Engine(dataclasses.replace(cfg, stages=tuple(stages)))
    rows: list[dict] = []

    def sample_(r) -> None:
        i = r.meta.index
        if i % a.every == 0:
            h = eng.stage("history_stats").history_stats()
            rows.append({"frame": i, "t_media_s": r.meta.t_media_ns / 1e9, "stage_mib": h["history_bytes"] / 2**20,
                         "decimations": h["history_decimations"], "rss_mib": rss_mib()})
            print(json.dumps(rows[-1]), flush=True)

    eng.run(sample_)
    at_cap = [r for r in rows if r["frame"] >= a.cap] if a.cap else []
    out = {"frames": a.frames, "cap": a.cap, "samples": rows}
    if len(at_cap) >= 2:
        t = np.array([r["t_media_s"] for r in at_cap]) / 3600
        rss = np.array([r["rss_mib"] for r in at_cap])
        out["after_cap"] = {"stage_mib_first": at_cap[0]["stage_mib"], "stage_mib_last": at_cap[-1]["stage_mib"],
                            "stage_mib_max": max(r["stage_mib"] for r in at_cap),
                            "rss_mib_first": float(rss[0]), "rss_mib_last": float(rss[-1]),
                            "rss_slope_mib_per_h": float(np.polyfit(t, rss, 1)[0])}
    out["end"] = rows[-1] if rows else {}
    print(json.dumps({k: v for k, v in out.items() if k != "samples"}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
