"""The engine: grabber thread -> frame ring -> stage graph -> ZeroMQ publisher and file writer.

Threads: the grabber thread owns the source and is the ring's only writer. The thread that iterates
``Engine.results()`` (the processing thread) owns every stage, the publisher socket and the file writer. With
``[engine] pipeline = true`` (the default) the leading stage (landmarks) runs on a front thread that owns the
ring's read side (:mod:`rtface.graph.pipeline`), so the later stages, publishing and writing of frame n overlap
with MediaPipe on frame n+1; without it the processing thread also reads the ring and runs the leading stage. Live sources (camera, stream, real-time-paced file) overwrite the oldest ring slot and the processing
thread always takes the newest frame (one frame in flight, like MediaPipe's flow limiter); file sources apply
backpressure so no frame is lost.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rtface.config import SAMPLE_VIDEO, EngineConfig, load_config
from rtface.errors import RtfaceError, SourceError, StageError
from rtface.graph.slots import StageSlot as _StageSlot
from rtface.graph.slots import Warmup as _Warmup
from rtface.graph.slots import open_stages
from rtface.graph.stage import Stage
from rtface.graph.stats import RunStats
from rtface.output.columns import TableLayout
from rtface.records import FrameMeta, FrameResult

log = logging.getLogger("rtface")


def resolve_source_spec(spec: str) -> str | int:
    """``"sample"`` -> the embedded video; digits -> camera index; anything else unchanged."""
    if spec == "sample":
        return str(SAMPLE_VIDEO)
    if spec.isdigit():
        return int(spec)
    return spec


class Engine:
    """Build from an EngineConfig; iterate ``results()`` or call ``run()``. Use as a context manager."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else load_config()
        self.stats = RunStats()
        self._stop = threading.Event()
        self._slots: list[_StageSlot] = []
        self.publisher = None
        self.control = None
        self.writer = None
        self.source = None
        self.grabber = None
        self.ring = None
        self.front = None  # rtface.graph.pipeline.FrontThread while a pipelined run goes on
        self.live = False
        self.summary: dict = {}
        self.output_path: Path | None = None
        self.session_paths: list[Path] = []
        self.analysis_paths: list[Path] = []  # behaviour analysis files + report ([output] analyze)
        # how the run ended: "completed" (source ended or max_frames), "stopped" (stop(), e.g. `rtface ctl stop`),
        # "interrupted" (stop("interrupted"): a signal, or the caller gave up), "failed" (an error)
        self.outcome = ""
        self.complete = False  # the output got its final name (a stopped file run stays .partial)
        self._stop_reason = "stopped"
        self._opened = False
        self._ready = False  # _finish_open() done
        self._warm = None  # rtface.graph.slots.Warmup still loading later stages
        self._session_sent = False
        self._closed = False

    # ------------------------------------------------------------------ lifecycle
    def sample_loops(self) -> bool:
        """The embedded sample (2.4 s) plays in a loop when it is paced in real time and no file is written: the
        first demo, which runs until Ctrl-C. Processed as a file (``--no-realtime``, ``--out``) it plays once."""
        cfg = self.config
        return cfg.source.spec == "sample" and cfg.source.realtime and not cfg.output.path

    def open(self, *, wait: bool = True) -> None:
        """Load models, bind sockets, check the output path and start the grabber, without processing a frame.
        Idempotent; ``results()`` calls it. Afterwards ``publisher.endpoint`` / ``control.endpoint`` are the
        addresses actually bound. ``wait=False``: return once the sockets are bound and the grabber runs, while the
        later stages may still be loading on their helper thread (``results()`` waits for them before it runs
        them). On failure everything already opened is closed again."""
        try:
            if not self._opened:
                self._opened = True
                self._open()
            if wait:
                self._finish_open()
        except BaseException as exc:
            self.outcome = "failed" if isinstance(exc, Exception) else "interrupted"
            self.close(complete=False)
            raise

    def _finish_open(self) -> None:
        """Wait for the stages loading on the helper thread, then what needs them all (stage names, writer)."""
        if self._ready:
            return
        self._ready = True
        warm, self._warm = self._warm, None
        if warm is not None:
            warm.join()
        self._bind_stage_names()
        cfg = self.config
        if cfg.output.path:
            from rtface.output.table_writer import TableWriter

            self.writer = TableWriter(cfg.output.path, self.layout(), parquet_layout=cfg.output.parquet_layout)

    def _open(self) -> None:
        from rtface.grabber import Grabber
        from rtface.ring import FrameRing
        from rtface.sources import open_source

        from rtface.threads import limit_blas_threads

        limit_blas_threads()  # small per-face matrices: a spinning BLAS pool only competes with MediaPipe
        cfg = self.config
        src = cfg.source
        # build (not open) the source first: a missing file is reported before any model loads
        self.source = open_source(resolve_source_spec(src.spec), realtime=src.realtime,
                                  loop=src.loop or self.sample_loops(), fps=src.fps,
                                  images=src.images, start_frame=src.start_frame, stop_frame=src.stop_frame)
        if cfg.output.path:  # ... and so is an output path that cannot be written
            from rtface.output.table_writer import check_output_path

            check_output_path(cfg.output.path, overwrite=cfg.output.overwrite)
        self._slots = []
        for sc in cfg.stages:
            st = sc.cls(sc.name, sc.params)
            self._slots.append(_StageSlot(st, sc.on_error, sc.max_errors))
        stills = bool(getattr(self.source, "stills", False))
        for slot in self._slots:
            if stills and hasattr(slot.stage, "stills_only"):  # e.g. the landmark stage skips its tracking graph
                slot.stage.stills_only = True
        # the later stages load (numba's kernel cache, ONNX) on a helper thread while the leading stage creates
        # its MediaPipe graph and the sockets bind; joined before anything else touches them (happens-before)
        pipelined_open = cfg.engine.pipeline and len(self._slots) > 1
        # numba's kernels load with the later stages, except for a run of stills, whose few kernel calls run as plain
        # Python (rtface.kernels.jit: importing numba and loading its cache would cost more than they do)
        from rtface.kernels import jit

        loads = [] if stills else [jit.load]
        if cfg.output.path:  # pyarrow's import, off the processing thread's path (else it lands after the last frame)
            from rtface.output.table_writer import preload

            loads.append(functools.partial(preload, cfg.output.path))

        def prepare() -> None:
            for load in loads:
                load()

        upstream: dict[str, tuple[str, ...]] = {}
        warm = None
        try:
            if not pipelined_open:
                prepare()
            open_stages(self._slots[:1] if pipelined_open else self._slots, upstream)
            if pipelined_open:  # the rest continue the bind chain from what the leading stage produces
                warm = _Warmup(self._slots[1:], upstream, prepare)
            self._open_sockets()
            self.live = bool(self.source.live)
            self.ring = FrameRing(cfg.engine.ring_slots, overwrite=self.live)
            self.grabber = Grabber(self.source, self.ring)
            self.grabber.start()  # decoding starts while the later stages finish loading
        except BaseException:
            if warm is not None:
                warm.join(quiet=True)
            raise
        self._warm = warm  # joined by _finish_open()

    def _open_sockets(self) -> None:
        cfg = self.config
        if cfg.publish.enabled:
            from rtface.transport.publisher import Publisher

            self.publisher = Publisher(cfg.publish.endpoint, sndhwm=cfg.publish.sndhwm)
            if cfg.publish.wait_subscribers > 0:
                ok = self.publisher.wait_for_subscribers(cfg.publish.wait_subscribers, cfg.publish.wait_timeout_s)
                if not ok:
                    log.warning("no subscriber after %.1f s on %s; starting anyway", cfg.publish.wait_timeout_s,
                                self.publisher.endpoint)
        if cfg.control.enabled:
            from rtface.transport.control import ControlServer
            from rtface.transport.guard import TokenAuth

            auth = TokenAuth.from_settings(cfg.control.token) if cfg.control.auth == "token" else None
            self.control = ControlServer(cfg.control.endpoint, self.handle_command, auth=auth)

    def _bind_stage_names(self) -> None:
        """Tell stages that consume AU/emotion vectors (``bind_names``, e.g. the behaviour stage) their names."""
        for slot in self._slots:
            bind = getattr(slot.stage, "bind_names", None)
            if callable(bind):
                bind(aus=self.names("aus"), emotion=self.names("emotion"))
            bind_source = getattr(slot.stage, "bind_source", None)
            if callable(bind_source):  # e.g. the LSL outlet: its nominal rate is the source's frame rate
                bind_source(self.source)

    def names(self, key: str) -> tuple[str, ...]:
        """Names published by the stage that outputs ``key`` ("aus" or "emotion"), or ()."""
        for slot in self._slots:
            if key in slot.stage.outputs:
                return tuple(getattr(slot.stage, "names", ()))
        return ()

    def layout(self) -> TableLayout:
        outs = {k for s in self._slots for k in s.stage.outputs}
        extra = (("pspi",) if "aus" in outs else ()) + tuple(c for s in self._slots for c in s.stage.face_columns)
        return TableLayout(has_pose="pose" in outs, au_names=self.names("aus"), emotion_names=self.names("emotion"),
                           extra_scalars=extra,
                           write_canonical=self.config.output.write_canonical)

    def stop(self, reason: str = "stopped") -> None:
        """Ask the run to end after the current frame (any thread, signal handlers too). ``reason``: "stopped" (a
        file run then stays incomplete unless ``[output] finalize_on_stop``; a live run completes) or
        "interrupted" (never complete, like Ctrl-C)."""
        if reason not in ("stopped", "interrupted"):
            raise ValueError(f"stop reason must be 'stopped' or 'interrupted', got {reason!r}")
        if not self._stop.is_set():
            self._stop_reason = reason
        self._stop.set()

    @property
    def closing(self) -> bool:
        """True once ``close()`` has started (a signal handler must not interrupt it)."""
        return self._closed

    def close(self, *, complete: bool = False) -> None:
        """Stop the grabber, close stages, sockets and writer; publish the session message (every run ends with
        one, saying how it ended). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.complete = complete
        if not self.outcome:
            self.outcome = "completed" if complete else "interrupted"
        if self.front is not None:  # no stage call may run while the stages close
            self.front.stop()
        if self._warm is not None:  # nor a stage still opening on the helper thread
            self._warm.join(quiet=True)
            self._warm = None
        if self.grabber is not None:
            self.grabber.stop()
        for slot in self._slots:
            try:
                slot.stage.close()
            except Exception as exc:  # closing must not hide the run's own outcome
                log.warning("stage %s: close failed: %s", slot.stage.name, exc)
        if self.writer is not None:
            self.output_path = self.writer.close(complete=complete)
            if complete and self.summary:
                from rtface.output.session_writer import write_session

                self.session_paths = write_session(self.output_path, self.summary)
            if complete and self.output_path is not None and self.config.output.analyze:
                from rtface.analysis.after_run import analyze_after_run  # never raises; the table is final

                self.analysis_paths = analyze_after_run(self, self.output_path)
        if self.publisher is not None:
            self._publish_session()
            self.publisher.close(linger_s=0.2)
        if self.control is not None:
            self.control.close()

    def stage(self, method: str) -> Stage:
        """The first stage offering ``method`` (e.g. 'calibrate_neutral'); StageError if none does."""
        for slot in self._slots:
            if callable(getattr(slot.stage, method, None)):
                return slot.stage
        raise StageError(f"no stage in this pipeline supports {method!r} (add a 'canonical' stage)")

    def handle_command(self, req: dict):
        """Run one control command in the processing thread (see rtface.transport.control)."""
        cmd = req["cmd"]
        if cmd == "ping":
            return "pong"
        if cmd == "stats":
            return self.stats.snapshot(self.drops())
        if cmd == "stop":
            self.stop()
            return "stopping"
        if cmd == "calibrate_neutral":
            fid = req.get("face_id")
            return {"calibrated_now": self.stage(cmd).calibrate_neutral(None if fid is None else int(fid))}
        if cmd in ("save_neutral", "load_neutral"):
            return self._neutral_command(req)
        raise ValueError(f"unknown command {cmd!r} (ping, stats, stop, calibrate_neutral, save_neutral, "
                         f"load_neutral)")

    def _neutral_command(self, req: dict) -> dict:
        """save_neutral / load_neutral: files by name in the one neutral folder (rtface.neutral_files)."""
        from rtface.neutral_files import NeutralFolder

        cmd, fid = req["cmd"], req.get("face_id")
        if "path" in req:
            raise ValueError(f"{cmd}: takes a 'name' (files live in [control] neutral_dir), not a 'path'")
        if isinstance(fid, bool) or not isinstance(fid, int):
            raise ValueError(f"{cmd}: 'face_id' must be an integer, got {fid!r}")
        stage = self.stage(cmd)
        folder = NeutralFolder(self.config.control.neutral_dir)
        if cmd == "save_neutral":
            path = folder.save(req.get("name"), lambda p: stage.save_neutral(fid, p),
                               overwrite=req.get("overwrite") is True)
            return {"name": path.stem, "path": str(path)}
        meta = folder.load(req.get("name"), lambda p: stage.load_neutral(fid, p))
        return {k: str(v) for k, v in meta.items()}

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc) -> None:
        self.close(complete=False)

    # ------------------------------------------------------------------ processing
    def drops(self) -> dict:
        """Drop counters at every boundary (source, ring, flow limiter, stages, publisher)."""
        d: dict = {}
        if self.grabber is not None:
            d["source"] = self.grabber.stats()
        if self.ring is not None:
            d["ring"] = self.ring.stats()
        if self.front is not None:
            d["pipeline"] = {"stale": self.front.stale}  # live: landmarked frames replaced by newer ones
        d["stage_errors"] = dict(self.stats.stage_errors)
        if self.publisher is not None:
            d["publisher"] = {"sent": getattr(self.publisher, "sent", 0)}
        return d

    def _n_front(self) -> int:
        """How many leading stages run on the front thread (0 = not pipelined). Live sources run serially unless
        ``pipeline_live``: at camera rates the pipeline adds no frames, only a second busy thread (measured: live
        p99 capture-to-subscriber 21-167 ms pipelined against 26-29 ms serial, benchmarks/bench_engine.py)."""
        e = self.config.engine
        on = e.pipeline and (e.pipeline_live or not self.live)
        return 1 if on and self._slots else 0

    def _front(self, frame) -> FrameResult:
        """A ring frame -> its FrameResult with the leading stages run (front thread, or processing thread)."""
        h, w = frame.image.shape[:2]
        meta = FrameMeta(frame.index, frame.t_capture_ns, frame.t_media_ns, w, h, self.source.name,
                         self.source.stills)
        result = FrameResult(meta)
        self._run_stages(frame.image, result, self._slots[:max(self._n_front(), 1)])
        return result

    def _run_stages(self, image, result: FrameResult, slots: list[_StageSlot]) -> None:
        for slot in slots:
            if not slot.enabled:
                continue
            st = slot.stage
            t0 = time.perf_counter()
            try:
                st.process(image, result)
            except RtfaceError:
                raise
            except Exception as exc:
                slot.errors += 1
                self.stats.stage_errors[st.name] = slot.errors
                msg = f"stage '{st.name}' failed on frame {result.meta.index}: {type(exc).__name__}: {exc}"
                if slot.on_error == "raise":
                    raise StageError(msg) from exc
                log.warning(msg)
                if slot.on_error == "disable" and slot.errors >= slot.max_errors:
                    slot.enabled = False
                    self.stats.disabled_stages.append(st.name)
                    log.error("stage '%s' disabled after %d errors", st.name, slot.errors)
            result.stage_ms[st.name] = (time.perf_counter() - t0) * 1e3

    def _tick(self, slots: list[_StageSlot]) -> None:
        """No frame within one read: give stages with timers a turn (Stage.tick); errors follow on_error. ``slots``:
        the stages this (processing) thread runs; the front thread's stages are never called from here."""
        now = time.time_ns()
        for slot in slots:
            if not slot.enabled:
                continue
            try:
                slot.stage.tick(now, self.live)
            except RtfaceError:
                raise
            except Exception as exc:
                slot.errors += 1
                self.stats.stage_errors[slot.stage.name] = slot.errors
                if slot.on_error == "raise":
                    raise StageError(f"stage '{slot.stage.name}' failed while idle: {type(exc).__name__}: "
                                     f"{exc}") from exc
                log.warning("stage '%s' failed while idle: %s", slot.stage.name, exc)

    def _check_complete(self) -> None:
        """At the end of a file: a truncated or partly undecodable file is an error unless allowed."""
        if self.live or self.config.source.allow_incomplete or self.grabber is None:
            return
        st = self.grabber.stats()
        if st.get("unreadable"):
            bad = list(getattr(self.source, "unreadable_files", ()))
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise SourceError(
                f"source {self.source.name}: {st['unreadable']} of {st.get('files', '?')} image(s) could not be "
                f"read ({shown}); use --allow-incomplete ([source] allow_incomplete = true) to accept the "
                f"{st.get('frames_read', '?')} that could")
        if st.get("premature_end") or st.get("decode_errors"):
            raise SourceError(
                f"source {self.source.name}: incomplete file: {st.get('frames_read', '?')} frames decoded of "
                f"{st.get('frames_expected', '?')} expected, {st.get('decode_errors', 0)} decode error(s)"
                f"{', stream ended early (truncated?)' if st.get('premature_end') else ''}; "
                f"use --allow-incomplete ([source] allow_incomplete = true) to accept the frames that decoded")

    def _summary(self) -> dict:
        return {"stats": self.stats.snapshot(self.drops()),
                "stages": {s.stage.name: s.stage.summary() for s in self._slots},
                "outcome": self.outcome, "complete": self.complete}

    def _publish_session(self) -> None:
        """The end-of-run message, once, for every outcome (the processing thread, from close())."""
        if self._session_sent or self.publisher is None:
            return
        self._session_sent = True
        from rtface.transport import wire
        from rtface.transport.messages import session_message

        summary = dict(self.summary) if self.summary else self._summary()
        summary.update(outcome=self.outcome, complete=self.complete)
        try:
            self._publish_stats()
            self.publisher.send(wire.TOPIC_SESSION, session_message(summary))
        except Exception as exc:  # closing must not hide the run's own outcome
            log.warning("session message not sent: %s", exc)

    def _publish_side_messages(self) -> None:
        """Messages stages queue for their own topics (``Stage.take_messages``, e.g. the JPEG preview), sent after
        the frame message on the processing thread."""
        for slot in self._slots:
            take = getattr(slot.stage, "take_messages", None)
            if slot.enabled and take is not None:
                for topic, payload in take():
                    self.publisher.send(topic, payload)

    def _publish_stats(self) -> None:
        if self.publisher is None:
            return
        from rtface.transport import wire
        from rtface.transport.messages import stats_message

        self.publisher.send(wire.TOPIC_STATS, stats_message(self.stats.snapshot(self.drops())))

    def results(self) -> Iterator[FrameResult]:
        """Run the engine in the calling thread, yielding each processed frame. Closes itself at the end."""
        from rtface.transport import wire
        from rtface.transport.messages import frame_message

        complete = False
        try:
            self.open(wait=False)
            cfg = self.config
            n_front = self._n_front()
            back = self._slots[max(n_front, 1):]
            if n_front:  # the front thread may start on the first frame while the later stages finish loading
                from rtface.graph.pipeline import END, ERROR, FrontThread

                self.front = FrontThread(self.ring, live=self.live, run_front=self._front,
                                         depth=1 if self.live else 2,
                                         buffer_bytes=int(cfg.engine.pipeline_buffer_mb * 2 ** 20)).start()
            self._finish_open()
            max_frames = cfg.engine.max_frames
            interval = cfg.engine.stats_interval_s
            next_stats = time.monotonic() + interval
            au_names, emo_names = self.names("aus"), self.names("emotion")
            read = self.ring.read_latest if self.live else self.ring.read_next
            frame_buf = None
            while not self._stop.is_set():
                if self.control is not None:
                    self.control.poll()
                now = time.monotonic()
                if now >= next_stats:
                    self._publish_stats()
                    next_stats = now + interval
                timeout = min(0.1, max(0.0, next_stats - now))
                if self.front is not None:
                    got = self.front.get(timeout)
                    if got is None:
                        self._tick(back)
                        continue
                    kind, payload = got
                    if kind == ERROR:
                        raise payload
                    if kind == END:
                        self._check_complete()
                        break
                    frame, result = payload
                else:
                    frame = read(timeout, out=frame_buf)
                    if frame is None:
                        if self.ring.closed and self.ring.error is not None:
                            raise self.ring.error
                        if self.ring.closed and self.ring.stats().get("unread", 0) == 0:
                            self._check_complete()
                            break
                        self._tick(self._slots)
                        continue
                    frame_buf = frame.image  # reused for the next frame: stages must not keep the image
                    result = self._front(frame)
                meta = result.meta
                self._run_stages(frame.image, result, back)
                if self.publisher is not None:
                    msg = frame_message(result, au_names=au_names, emotion_names=emo_names,
                                        include_landmarks=cfg.publish.include_landmarks)
                    self.publisher.send(wire.TOPIC_FRAME, msg)
                    self._publish_side_messages()
                if self.writer is not None:
                    self.writer.write(result)
                latency_ms = (time.time_ns() - meta.t_capture_ns) / 1e6
                self.stats.on_frame(len(result.faces), latency_ms, result.stage_ms)
                yield result
                if max_frames and self.stats.frames >= max_frames:
                    break
            self.outcome = self._stop_reason if self._stop.is_set() else "completed"
            complete = self.outcome == "completed" or (
                self.outcome == "stopped" and (self.live or cfg.output.finalize_on_stop))
            self.complete = complete
            self.summary = self._summary()
        except BaseException as exc:
            if not self.outcome:
                self.outcome = "failed" if isinstance(exc, Exception) else "interrupted"
            raise
        finally:
            self.close(complete=complete)

    def run(self, on_result: Callable[[FrameResult], None] | None = None) -> dict:
        """Process until the source ends (or ``stop()``); returns the session summary."""
        for r in self.results():
            if on_result is not None:
                on_result(r)
        return self.summary
