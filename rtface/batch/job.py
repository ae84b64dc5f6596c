"""One batch job through the one Engine: what every worker (local process or Ray actor) runs.

The job's config is the user's config (or the packaged default) with the source set to the input (every frame,
not paced; a chunk's frame range), no publishing, no control channel, and the output file of the job. An alerts
stage keeps its rules but sends nothing (no alert channel: workers would fight over one port, and nobody listens to
a batch) and journals to a file of its own beside the job's output (``<output stem>.alerts.sqlite``), so workers
never share a journal and each recording's alerts stay with its table. Progress is
reported through ``on_progress(frames_done)`` at most every ``progress_s`` seconds (the caller's thread).
"""
from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from pathlib import Path


def config_digest(config: str | None) -> str:
    """Identity of the batch's config for the manifest: the file's bytes (or 'default' for the packaged one)."""
    if not config:
        return "default"
    from rtface.config import CONFIG_DIR

    p = Path(config)
    if not p.is_file() and (CONFIG_DIR / f"{p.name}.toml").is_file():
        p = CONFIG_DIR / f"{p.name}.toml"
    try:
        return hashlib.sha1(p.read_bytes()).hexdigest()[:16]
    except OSError:
        return f"unreadable:{config}"


def job_config(job: dict, config: str | None):
    from rtface.config import load_config, with_overrides

    cfg = load_config(config)
    src = {"spec": job["input"], "realtime": False, "loop": False, "start_frame": int(job.get("start", 0)),
           "stop_frame": int(job.get("stop", 0))}
    if job.get("allow_incomplete"):
        src["allow_incomplete"] = True
    eng = {} if job.get("pipeline", True) else {"pipeline": False}  # a worker per core: one thread each
    out = {"path": job["output"], "overwrite": True}
    if int(job.get("chunk", -1)) >= 0:
        out["analyze"] = False  # a chunk's table is a part: the merged table is analysed (rtface.batch.runner)
    cfg = with_overrides(cfg, source=src, publish={"enabled": False}, control={"enabled": False}, output=out,
                         engine=eng)
    journal = str(Path(job["output"]).with_suffix(".alerts.sqlite"))
    stages = tuple(dataclasses.replace(s, params=dataclasses.replace(s.params, endpoint="", journal=journal))
                   if s.kind == "alerts" else s for s in cfg.stages)
    return dataclasses.replace(cfg, stages=stages)


def run_job(job: dict, config: str | None, *, on_progress: Callable[[int], None] | None = None,
            progress_s: float = 0.5, stop_check: Callable[[], bool] | None = None) -> dict:
    """Run ``job`` (a :class:`rtface.batch.plan.Job` as a dict) to completion; returns its record fields
    (``frames``, ``rows``, ``output``, ``faces``, ``wall_s``). Raises what the Engine raises (RtfaceError for bad
    input); ``stop_check()`` True ends the run early as interrupted (the output stays ``.partial``)."""
    from rtface.graph.runner import Engine

    Path(job["output"]).parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    engine = Engine(job_config(job, config))
    last = 0.0
    with engine:
        for _ in engine.results():
            now = time.monotonic()
            if on_progress is not None and now - last >= progress_s:
                last = now
                on_progress(engine.stats.frames)
            if stop_check is not None and stop_check():
                engine.stop("interrupted")
    if on_progress is not None:
        on_progress(engine.stats.frames)
    if engine.outcome != "completed":
        raise InterruptedError(f"{job['id']}: {engine.outcome} after {engine.stats.frames} frames")
    return {"frames": engine.stats.frames, "rows": engine.writer.rows if engine.writer else 0,
            "output": str(engine.output_path), "faces": engine.stats.faces, "wall_s": time.monotonic() - t0}
