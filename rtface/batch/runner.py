"""The batch driver: plan -> skip what the manifest says is finished -> dispatch to workers -> retry failures ->
merge chunks -> report. One thread (the caller's) owns the plan, the manifest and the backend.

Exit codes of :func:`run_batch` (and ``rtface batch``): 0 every input done, 2 some input failed after its retries
(the others are done; the report names each failure), 130 interrupted (finished inputs are in the manifest; run
the same command again to resume).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rtface.batch.job import config_digest
from rtface.batch.manifest import Manifest
from rtface.batch.plan import Job, expand_inputs, plan_jobs
from rtface.errors import ConfigError


@dataclass
class BatchOptions:
    inputs: list[str]
    out_dir: Path
    config: str | None = None
    workers: int = 0  # 0 = os.cpu_count()
    retries: int = 1  # extra attempts for a failed job
    fmt: str = "parquet"
    chunk_s: float = 0.0  # 0 = never split videos
    overlap_s: float | None = None  # None = the person-model window of the config + TRACKING_SETTLE_S
    backend: str = "local"  # "local" | "ray"
    ray_address: str | None = None  # Ray: None = start a local instance (or $RAY_ADDRESS)
    progress: bool = True
    allow_incomplete: bool = False  # accept truncated / partly undecodable inputs ([source] allow_incomplete)
    pin_cores: bool = False  # local backend: one core per worker when workers <= cores (rtface.batch.local)
    stream: object = field(default=None, repr=False)  # where progress and the report go (default stderr)


TRACKING_SETTLE_S = 2.0  # MediaPipe's tracking, presence hysteresis and smoothing settle well within this


def default_overlap_s(cfg) -> float:
    """Chunk overlap for a config: the longest person-model window of its stages (``window_s``: the canonical
    stage forgets frames older than this, so a chunk that starts that much earlier holds the same frames in its
    person model at the seam) plus TRACKING_SETTLE_S."""
    windows = [float(getattr(sc.params, "window_s", 0.0) or 0.0) for sc in cfg.stages]
    return max(windows, default=0.0) + TRACKING_SETTLE_S


class _Progress:
    def __init__(self, total_frames: int, n_inputs: int, stream, enabled: bool) -> None:
        self.total, self.n_inputs, self.stream, self.enabled = total_frames, n_inputs, stream, enabled
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self.base = 0  # frames of jobs finished before this run (skipped)
        self.done_frames = 0  # frames of jobs finished in this run
        self.running: dict[str, int] = {}
        self.inputs_done = self.inputs_failed = 0
        self._last = 0.0

    def line(self) -> str:
        now_frames = self.done_frames + sum(self.running.values())
        seen = self.base + now_frames
        el = max(time.monotonic() - self.t0, 1e-9)
        fps = now_frames / el
        pct = seen / self.total if self.total else 0.0
        eta = (self.total - seen) / fps if fps > 0 and self.total else float("nan")
        bar = "#" * int(30 * min(pct, 1.0))
        return (f"[{bar:<30}] {seen}/{self.total or '?'} frames | inputs {self.inputs_done}/{self.n_inputs} done, "
                f"{self.inputs_failed} failed | {fps:6.1f} fps | ETA {eta:5.0f} s")

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < (0.25 if self.tty else 5.0)):
            return
        self._last = now
        print(("\r" + self.line()) if self.tty else self.line(), end="" if self.tty else "\n", file=self.stream,
              flush=True)


def _backend(opts: BatchOptions, workers: int):
    if opts.backend == "ray":
        from rtface.batch.ray_backend import RayBackend

        return RayBackend(workers, opts.config, address=opts.ray_address)
    if opts.backend != "local":
        raise ConfigError(f"batch backend {opts.backend!r}: expected 'local' or 'ray'")
    from rtface.batch.local import LocalBackend

    return LocalBackend(workers, opts.config, opts.out_dir, pin=opts.pin_cores)


def run_batch(opts: BatchOptions) -> int:
    stream = opts.stream or sys.stderr
    out = Path(opts.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"batch --out {out}: not a folder")
    out.mkdir(parents=True, exist_ok=True)
    from rtface.config import load_config

    cfg = load_config(opts.config)  # a bad config is an error before any worker starts
    overlap = opts.overlap_s if opts.overlap_s is not None else default_overlap_s(cfg)
    inputs = expand_inputs(opts.inputs)
    jobs = plan_jobs(inputs, out, fmt=opts.fmt, chunk_s=opts.chunk_s, overlap_s=overlap)
    by_input = {i.name: i for i in inputs}
    digest = config_digest(opts.config)
    manifest = Manifest(out)
    n_cores = os.cpu_count() or 1
    workers = opts.workers or n_cores
    final_of = {i.name: str(out / f"{i.name}.{opts.fmt}") for i in inputs}
    chunks: dict[str, list[Job]] = {}
    for j in jobs:
        if j.chunk >= 0:
            chunks.setdefault(j.name, []).append(j)
    prog = _Progress(sum(j.frames for j in jobs), len(inputs), stream, opts.progress)
    pending: list[Job] = []
    skipped_inputs = 0
    for j in jobs:
        inp = by_input[j.name]
        if manifest.finished(j.name, inp.key, digest, final_of[j.name]):  # the whole input is done
            prog.base += j.frames
            continue
        if j.chunk >= 0 and manifest.finished(j.id, inp.key, digest, j.output):
            prog.base += j.frames
            continue
        pending.append(j)
    skipped_inputs = sum(1 for i in inputs if manifest.finished(i.name, i.key, digest, final_of[i.name]))
    prog.inputs_done = skipped_inputs
    attempts: dict[str, int] = {}
    failures: dict[str, str] = {}
    stopping = threading.Event()
    got_signal: dict = {}

    def on_signal(signum, frame) -> None:
        if stopping.is_set():
            raise KeyboardInterrupt
        got_signal["signum"] = signum
        stopping.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    print(f"rtface batch: {len(inputs)} input(s), {len(jobs)} job(s) ({len(pending)} to run, "
          f"{skipped_inputs} input(s) already done), {min(workers, max(len(pending), 1))} {opts.backend} "
          f"worker(s) -> {out}", file=stream, flush=True)
    backend = None
    stop_sent = False
    running: dict[str, Job] = {}
    try:
        if pending:
            backend = _backend(opts, min(workers, len(pending)))
        pipeline = min(workers, len(pending) or 1) < n_cores  # fewer workers than cores: pipelined engines
        while (pending or running) and backend is not None:
            if stopping.is_set() and not stop_sent:
                backend.stop()
                stop_sent = True
                pending.clear()
            while pending and backend.free() > 0 and not stopping.is_set():
                j = pending.pop(0)
                running[j.id] = j
                prog.running[j.id] = 0
                backend.submit(dict(j.to_dict(), pipeline=pipeline, allow_incomplete=opts.allow_incomplete))
            for ev in backend.poll(0.2):
                jid = ev.get("job")
                j = running.get(jid)
                if j is None:
                    continue
                if ev["type"] == "progress":
                    prog.running[jid] = int(ev.get("frames", 0))
                    continue
                running.pop(jid)
                prog.running.pop(jid, None)
                inp = by_input[j.name]
                if ev["type"] == "done":
                    prog.done_frames += int(ev.get("frames", 0))
                    manifest.append(job=j.id, input=j.input, key=inp.key, config=digest, status="done",
                                    output=j.output, frames=ev.get("frames"), rows=ev.get("rows"),
                                    attempts=attempts.get(j.id, 0) + 1, wall_s=round(ev.get("wall_s", 0), 3))
                    if j.chunk < 0:
                        prog.inputs_done += 1
                    elif all(manifest.finished(c.id, inp.key, digest, c.output) for c in chunks[j.name]):
                        _merge(j.name, chunks[j.name], final_of[j.name], opts.fmt, manifest, inp, digest, prog,
                               failures, analyze=cfg.output.analyze)
                    continue
                if ev.get("interrupted") and stopping.is_set():
                    continue  # not an attempt: it runs again on resume
                attempts[j.id] = attempts.get(j.id, 0) + 1
                if attempts[j.id] <= opts.retries and not stopping.is_set():
                    pending.append(j)  # retried after the others
                    continue
                failures[j.id] = str(ev.get("error", "failed"))
                manifest.append(job=j.id, input=j.input, key=inp.key, config=digest, status="failed",
                                output=j.output, attempts=attempts[j.id], error=failures[j.id])
                prog.inputs_failed = len({k.split("#")[0] for k in failures})
            prog.show()
    except KeyboardInterrupt:
        stopping.set()
    finally:
        if backend is not None:
            if stopping.is_set():
                backend.stop()
            backend.close()
        for sig, h in previous.items():
            signal.signal(sig, h)
    prog.show(force=True)
    if prog.tty and opts.progress:
        print("", file=stream)
    return _report(out, inputs, jobs, manifest, digest, final_of, failures, prog, stopping.is_set(),
                   got_signal, stream)


def _merge(name, parts, final, fmt, manifest, inp, digest, prog, failures, *, analyze: bool) -> None:
    from rtface.batch.merge import analyze_merged, merge_chunks

    try:
        res = merge_chunks([p.to_dict() for p in parts], Path(final), fmt=fmt)
        if analyze:  # as a one-pass run's close() does: behaviour files + report beside the table
            analyze_merged(Path(final))
    except Exception as exc:  # noqa: BLE001 - reported like a failed job
        failures[name] = f"merging {len(parts)} chunks failed: {type(exc).__name__}: {exc}"
        manifest.append(job=name, input=inp.path, key=inp.key, config=digest, status="failed", output=final,
                        error=failures[name])
        prog.inputs_failed = len({k.split("#")[0] for k in failures})
        return
    manifest.append(job=name, input=inp.path, key=inp.key, config=digest, status="done", output=final,
                    frames=res["frames"], rows=res["rows"], chunks=len(parts))
    prog.inputs_done += 1
    for p in parts:  # the parts are merged: only the final table stays
        for q in (Path(p.output), *_session_files(Path(p.output))):
            q.unlink(missing_ok=True)


def _session_files(p: Path) -> list[Path]:
    from rtface.output.session_writer import session_paths

    return list(session_paths(p))


def _report(out, inputs, jobs, manifest, digest, final_of, failures, prog, stopped, got_signal, stream) -> int:
    done = [i.name for i in inputs if manifest.finished(i.name, i.key, digest, final_of[i.name])]
    failed = {k: v for k, v in failures.items()}
    report = {"inputs": len(inputs), "done": len(done), "failed": failed, "interrupted": stopped,
              "frames_this_run": prog.done_frames, "wall_s": round(time.monotonic() - prog.t0, 3),
              "outputs": {i.name: final_of[i.name] for i in inputs if i.name in done}}
    (Path(out) / "batch_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"rtface batch: {len(done)}/{len(inputs)} input(s) done, {len(failed)} failed, "
          f"{prog.done_frames} frames in {report['wall_s']:.1f} s; report {Path(out) / 'batch_report.json'}",
          file=stream, flush=True)
    for jid, err in failed.items():
        print(f"  failed: {jid}: {err}", file=stream)
    if stopped:
        print("interrupted: run the same command again to resume (finished inputs are skipped)", file=stream)
        return 128 + int(got_signal.get("signum", signal.SIGINT))
    if failed or len(done) < len(inputs):
        return 2
    return 0
