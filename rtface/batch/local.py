"""Worker processes on this machine (:mod:`rtface.batch.worker`), one job at a time each.

Owned by the batch driver's thread. Each worker is a child process in its own session (a Ctrl-C reaches only the
driver, which then stops the workers cleanly); its stdout/stderr go to ``DIR/logs/worker-<i>.log``; its events
come back on a pipe. A worker that dies (killed, out of memory, a crash in native code) is reported as a
``failed`` event for its job with the exit status, and replaced by a new process.

Cores: with ``pin`` (``rtface batch --pin``) and no more workers than cores, worker ``i`` runs on core ``i`` only
(``--core``: the worker sets it first thing, before any thread starts, so MediaPipe's, the decoder's and BLAS's
threads inherit it). Unpinned (the default), two engines on two cores spread their threads over both and wait on
each other's; pinned, they do not, but two pinned batches at once would share the same cores while others idle,
so pinning is for a machine that does nothing else.
"""
from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path


def worker_core(index: int, workers: int) -> int | None:
    """The one core worker ``index`` of ``workers`` runs on, or None (more workers than the cores this process
    may use, or no affinity API on this platform)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return cores[index] if workers <= len(cores) else None


class _Worker:
    def __init__(self, index: int, config: str | None, log_dir: Path, core: int | None = None) -> None:
        self.index = index
        r, w = os.pipe()
        self._log = open(log_dir / f"worker-{index}.log", "ab")
        cmd = [sys.executable, "-m", "rtface.batch.worker", "--report-fd", str(w), "--tag", str(log_dir.parent)]
        if config:
            cmd += ["--config", config]
        if core is not None:
            cmd += ["--core", str(core)]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
                                     pass_fds=(w,), env=env, start_new_session=True)
        os.close(w)
        self.fd = r
        self.buf = b""
        self.job: str | None = None  # id of the job it runs
        self.ready = False
        self.closed = False

    def send(self, msg: dict) -> bool:
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def close_stdin(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def release(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
            self._log.close()


class LocalBackend:
    """``workers`` processes; :meth:`submit` hands a job to a free one; :meth:`poll` returns events."""

    name = "local"

    def __init__(self, workers: int, config: str | None, out_dir: Path, *, pin: bool = False) -> None:
        self.n = max(1, int(workers))
        self.pin = pin
        self.config = config
        self.log_dir = Path(out_dir) / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._sel = selectors.DefaultSelector()
        self._workers: list[_Worker] = []
        self.restarts = 0
        for i in range(self.n):
            self._start(i)

    def _start(self, i: int) -> None:
        w = _Worker(i, self.config, self.log_dir, worker_core(i, self.n) if self.pin else None)
        self._sel.register(w.fd, selectors.EVENT_READ, w)
        if i < len(self._workers):
            self._workers[i] = w
        else:
            self._workers.append(w)

    @property
    def slots(self) -> int:
        return self.n

    def free(self) -> int:
        """How many workers have no job."""
        return sum(1 for w in self._workers if w.job is None)

    def submit(self, job: dict) -> None:
        w = next(w for w in self._workers if w.job is None)
        w.job = job["id"]
        if not w.send({"job": job}):  # died meanwhile: its EOF event reports the job as failed
            pass

    def poll(self, timeout_s: float) -> list[dict]:
        events: list[dict] = []
        for key, _ in self._sel.select(timeout_s):
            w: _Worker = key.data
            try:
                chunk = os.read(w.fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                events += self._died(w)
                continue
            w.buf += chunk
            *lines, w.buf = w.buf.split(b"\n")
            for line in lines:
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if ev.get("type") == "ready":
                    w.ready = True
                    continue
                if ev.get("type") in ("done", "failed"):
                    w.job = None
                events.append(ev)
        return events

    def _died(self, w: _Worker) -> list[dict]:
        self._sel.unregister(w.fd)
        w.release()
        try:
            rc = w.proc.wait(10)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            rc = w.proc.wait()
        events = []
        if w.job is not None:
            events.append({"type": "failed", "job": w.job, "error": f"worker process {w.proc.pid} died (exit "
                           f"status {rc}); see {self.log_dir / f'worker-{w.index}.log'}", "crashed": True})
            w.job = None
        if not getattr(self, "_closing", False):
            self.restarts += 1
            self._start(w.index)
        return events

    def stop(self) -> None:
        """Ask every worker to end its job now (interrupted) and exit (no replacement is started)."""
        self._closing = True
        for w in self._workers:
            w.send({"stop": True})

    def close(self, timeout_s: float = 10.0) -> None:
        """No more jobs: let workers exit (after ``stop`` they end their job first); kill what is left."""
        self._closing = True
        for w in self._workers:
            w.close_stdin()
        deadline = time.monotonic() + timeout_s
        for w in self._workers:
            try:
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            if not w.closed:
                try:
                    self._sel.unregister(w.fd)
                except (KeyError, ValueError):
                    pass
                w.release()
        self._sel.close()

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.proc.poll() is None]
