"""The batch jobs on Ray: one actor per worker, each holding one job at a time through the same Engine.

``RayBackend(workers, config, address=None)``: ``address`` (or ``$RAY_ADDRESS``) joins an existing Ray cluster
(``ray://head:10001`` or ``auto`` on a cluster node); without one a local Ray instance is started for the batch
and stopped at its end. Each actor (``num_cpus=1``) runs :func:`rtface.batch.job.run_job`; the driver asks it for
progress about once a second.

What moves between nodes: *paths*, not bytes. A job names its input file and its output file; the actor opens
them where it runs. On a cluster the inputs and the output folder must therefore be on storage every node mounts
at the same path (NFS, a cluster file system); the manifest and the merge stay with the driver. Results come back
as small records (frames, rows, output path); no frame or table passes through Ray's object store.

Owned by the batch driver's thread (Ray's client calls are made from it only).
"""
from __future__ import annotations

import os
import time

from rtface.errors import ConfigError


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("batch backend 'ray' needs Ray: pip install 'rtface[ray]' (Ray is an optional extra)") \
            from exc
    return ray


class _BatchActor:
    """Ray actor body (wrapped by ``ray.remote`` in :class:`RayBackend`): one Engine run at a time."""

    def __init__(self, config: str | None) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        self.config = config
        self.job: str | None = None
        self.frames = 0
        self._stop = False

    def run(self, job: dict) -> dict:
        from rtface.batch.job import run_job

        self.job, self.frames, self._stop = job["id"], 0, False

        def progress(n: int) -> None:
            self.frames = n

        try:
            return run_job(job, self.config, on_progress=progress, stop_check=lambda: self._stop)
        finally:
            self.job = None

    def progress(self) -> tuple[str | None, int]:
        return self.job, self.frames

    def stop(self) -> None:
        self._stop = True

    def pid(self) -> int:
        return os.getpid()


class RayBackend:
    name = "ray"

    def __init__(self, workers: int, config: str | None, *, address: str | None = None) -> None:
        ray = self._ray = _import_ray()
        address = address or os.environ.get("RAY_ADDRESS") or None
        self._started = False
        if not ray.is_initialized():
            kw = dict(ignore_reinit_error=True, include_dashboard=False, logging_level="WARNING",
                      log_to_driver=False)
            if address is None:  # a local instance for this batch: small object store (only records pass)
                kw.update(num_cpus=max(int(workers), 1), object_store_memory=100 * 1024 * 1024)
            ray.init(address=address, **kw)
            self._started = True
        self.n = max(1, int(workers))
        self.config = config
        self._cls = ray.remote(num_cpus=1, max_concurrency=2, max_restarts=0)(_BatchActor)
        self._actors = [self._cls.remote(config) for _ in range(self.n)]
        self._busy: dict[int, tuple[str, object]] = {}  # actor index -> (job id, ObjectRef)
        self._next_progress = 0.0
        self._stopping = False
        self.restarts = 0

    @property
    def slots(self) -> int:
        return self.n

    def free(self) -> int:
        return self.n - len(self._busy)

    def submit(self, job: dict) -> None:
        i = next(k for k in range(self.n) if k not in self._busy)
        self._busy[i] = (job["id"], self._actors[i].run.remote(job))

    def poll(self, timeout_s: float) -> list[dict]:
        ray = self._ray
        events: list[dict] = []
        if not self._busy:
            time.sleep(timeout_s)
            return events
        refs = {ref: i for i, (_, ref) in self._busy.items()}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
        for ref in ready:
            i = refs[ref]
            jid, _ = self._busy.pop(i)
            try:
                rec = ray.get(ref)
            except ray.exceptions.RayActorError as exc:  # the actor's process died: replace it
                events.append({"type": "failed", "job": jid, "crashed": True,
                               "error": f"Ray actor died: {str(exc).splitlines()[0][:300]}"})
                if not self._stopping:
                    self._actors[i] = self._cls.remote(self.config)
                    self.restarts += 1
                continue
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                events.append({"type": "failed", "job": jid, "error": str(cause).strip().splitlines()[-1][:1000],
                               "interrupted": isinstance(cause, InterruptedError)})
                continue
            events.append(dict(rec, type="done", job=jid))
        now = time.monotonic()
        if self._busy and now >= self._next_progress:
            self._next_progress = now + 1.0
            for i, (jid, _) in list(self._busy.items()):
                try:
                    got, frames = ray.get(self._actors[i].progress.remote(), timeout=1.0)
                except Exception:  # noqa: BLE001 - progress is best effort
                    continue
                if got == jid:
                    events.append({"type": "progress", "job": jid, "frames": frames})
        return events

    def stop(self) -> None:
        self._stopping = True
        for i in self._busy:
            try:
                self._actors[i].stop.remote()
            except Exception:  # noqa: BLE001
                pass

    def close(self, timeout_s: float = 10.0) -> None:
        ray = self._ray
        deadline = time.monotonic() + timeout_s
        while self._busy and time.monotonic() < deadline:  # after stop(): jobs end as interrupted
            self.poll(0.2)
        for a in self._actors:
            try:
                ray.kill(a)
            except Exception:  # noqa: BLE001
                pass
        if self._started:
            ray.shutdown()

    def pids(self) -> list[int]:
        return [self._ray.get(a.pid.remote(), timeout=10) for a in self._actors]
