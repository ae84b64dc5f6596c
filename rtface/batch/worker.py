"""A local batch worker process: ``python -m rtface.batch.worker --report-fd N [--config C]``.

Protocol (JSON, one object per line; never pickle): the driver writes ``{"job": {...}}`` or ``{"stop": true}``
lines to the worker's stdin (EOF = no more jobs); the worker writes events to file descriptor N:
``{"type": "ready", "pid": p}`` once, then per job ``{"type": "progress", "job": id, "frames": n}``,
``{"type": "done", "job": id, ...record fields}`` or ``{"type": "failed", "job": id, "error": text}``.
A ``stop`` ends the running job as interrupted (``failed`` with ``interrupted: true``) and the worker exits.

Threads: the main thread runs jobs (it owns the Engine); a reader thread owns stdin.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import threading


class _Reporter:
    def __init__(self, fd: int) -> None:
        self._f = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def send(self, **msg) -> None:
        line = json.dumps(msg, allow_nan=False, default=str) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()


def _read_stdin(jobs: queue.Queue, stop: threading.Event) -> None:
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(msg, dict) and msg.get("stop"):
            stop.set()
            break
        if isinstance(msg, dict) and isinstance(msg.get("job"), dict):
            jobs.put(msg["job"])
    jobs.put(None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rtface.batch.worker")
    ap.add_argument("--report-fd", type=int, required=True)
    ap.add_argument("--config", default=None)
    ap.add_argument("--tag", default="", help="the batch's output folder (shows in ps; not used otherwise)")
    ap.add_argument("--core", type=int, default=None, help="run on this core only (rtface.batch.local)")
    a = ap.parse_args(argv)
    if a.core is not None:  # before any thread starts: MediaPipe's, the decoder's and BLAS's threads inherit it
        try:
            os.sched_setaffinity(0, {a.core})
        except (AttributeError, OSError) as exc:
            print(f"rtface batch worker: cannot pin to core {a.core}: {exc}", file=sys.stderr)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides (it sends "stop"); SIGTERM still ends us
    os.environ.setdefault("GLOG_minloglevel", "2")
    rep = _Reporter(a.report_fd)
    from rtface.batch.job import run_job
    from rtface.errors import RtfaceError
    import rtface.graph.runner  # noqa: F401  (imports before "ready", so the first job starts at once)

    jobs: queue.Queue = queue.Queue()
    stop = threading.Event()
    threading.Thread(target=_read_stdin, args=(jobs, stop), name="batch-stdin", daemon=True).start()
    rep.send(type="ready", pid=os.getpid())  # after the job reader runs: a ready worker has all its threads
    while not stop.is_set():
        job = jobs.get()
        if job is None:
            break
        jid = job.get("id", "?")
        try:
            rec = run_job(job, a.config, on_progress=lambda n: rep.send(type="progress", job=jid, frames=n),
                          stop_check=stop.is_set)
        except InterruptedError as exc:
            rep.send(type="failed", job=jid, error=str(exc), interrupted=True)
            break
        except RtfaceError as exc:
            rep.send(type="failed", job=jid, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug or a library failure: reported, the worker goes on
            rep.send(type="failed", job=jid, error=f"{type(exc).__name__}: {exc}")
        else:
            rep.send(type="done", job=jid, **rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
