"""``rtface`` command line: run | listen | (train-emotion | eval-emotion | gaze, added by their modules).

Exit status: 0 success, 2 a clear user-facing error (bad file, config, port, ...), 3 a file run stopped before its
end (``rtface ctl stop``; output kept as .partial), 128 + signal number when interrupted (130 SIGINT/Ctrl-C,
143 SIGTERM, 129 SIGHUP; output kept as .partial).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from rtface import __version__
from rtface.errors import RtfaceError, TransportError

os.environ.setdefault("GLOG_minloglevel", "2")  # keep MediaPipe's C++ logging off the status line
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")  # rtface reports device/file failures itself, naming them


def _status_line(engine, total: int | None) -> str:
    s = engine.stats
    lat = s.latency_ms.percentiles()
    if engine.live:
        ring = engine.ring.stats() if engine.ring is not None else {}
        dropped = ring.get("skipped", 0)  # every frame the engine never read (an overrun frame is also skipped:
        # adding ``overruns`` counted it twice)
        return (f"fps {s.fps():5.1f} | latency p50 {lat['p50']:6.1f} ms p99 {lat['p99']:6.1f} ms | "
                f"faces {s.last_faces} | frames {s.frames} | dropped {dropped}")
    if total:
        done = min(s.frames, total)
        bar = "#" * int(30 * done / total)
        return f"[{bar:<30}] {done}/{total} frames | {s.fps():5.1f} fps | faces {s.last_faces}"
    return f"{s.frames} frames | {s.fps():5.1f} fps | faces {s.last_faces}"


def cmd_run(args: argparse.Namespace) -> int:
    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine

    cfg = load_config(args.config)
    src, pub, out, eng = {}, {}, {}, {}
    if args.source is not None:
        src["spec"] = args.source
        src["realtime"] = False
    if args.realtime is not None:
        src["realtime"] = args.realtime
    if args.loop:
        src["loop"] = True
    if args.allow_incomplete:
        src["allow_incomplete"] = True
    if args.sequence:
        src["images"] = "sequence"
    if args.endpoint:
        pub["endpoint"] = args.endpoint
    if args.no_publish:
        pub["enabled"] = False
    ctl = {}
    if args.control:
        ctl["endpoint"] = args.control
    if args.no_control:
        ctl["enabled"] = False
    if args.out:
        out["path"] = args.out
    for flag in ("write_canonical", "overwrite", "finalize_on_stop"):
        if getattr(args, flag):
            out[flag] = True
    if args.no_analyze:
        out["analyze"] = False
    if args.max_frames is not None:
        eng["max_frames"] = args.max_frames
    cfg = with_overrides(cfg, source=src, publish=pub, output=out, engine=eng, control=ctl)
    from rtface.alerts.cli import apply_run_options

    cfg = apply_run_options(cfg, args)
    from rtface.output.live_options import apply_run_options as apply_live_options

    cfg = apply_live_options(cfg, args)
    engine = Engine(cfg)
    signals: dict = {}
    previous = _stop_on_signals(engine, signals)
    try:
        return _run_engine(engine, signals)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_engine(engine, signals: dict) -> int:
    tty = sys.stderr.isatty()
    last = 0.0
    t0 = time.monotonic()
    print(f"rtface {__version__}: loading models (the first run after installing also compiles the numba "
          f"kernels) ...", file=sys.stderr)
    t_first = None
    try:
        engine.open(wait=False)  # results() waits for the stages still loading; the banner needs only the sockets
        print(_banner(engine), file=sys.stderr, flush=True)
        for _ in engine.results():
            now = time.monotonic()
            if t_first is None:
                t_first = now
                print(f"started in {now - t0:.1f} s", file=sys.stderr)
            if now - last >= (0.25 if tty else 2.0):
                last = now
                total = getattr(engine.source, "frame_count", None) if not engine.live else None
                line = _status_line(engine, total)
                print(("\r" + line) if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # a second Ctrl-C (or signal) while the first was being handled
        engine.close(complete=False)
        signals.setdefault("signum", signal.SIGINT)
    except RtfaceError:
        if engine.output_path is not None:
            print(f"\npartial results ({engine.stats.frames} frames) kept in {engine.output_path}",
                  file=sys.stderr)
        _note_earlier_result(engine)
        raise
    if engine.outcome == "interrupted":
        signum = signals.get("signum", signal.SIGINT)
        print(f"\ninterrupted ({signal.Signals(signum).name}) after {engine.stats.frames} frames", file=sys.stderr)
        if engine.output_path is not None:
            print(f"partial results kept in {engine.output_path}", file=sys.stderr)
        _note_earlier_result(engine)
        return 128 + int(signum)
    if engine.outcome == "stopped" and not engine.complete:
        total = getattr(engine.source, "frame_count", None)
        print(f"\nstopped (rtface ctl stop) after {engine.stats.frames}"
              f"{f' of {total}' if total else ''} frames: the run is incomplete", file=sys.stderr)
        if engine.output_path is not None:
            print(f"partial results kept in {engine.output_path} (pass --finalize-on-stop to give a stopped run's "
                  f"file its final name)", file=sys.stderr)
        _note_earlier_result(engine)
        return EXIT_STOPPED
    _print_summary(engine, time.monotonic() - (t_first if t_first is not None else t0))
    return 0


EXIT_STOPPED = 3


def _stop_on_signals(engine, got: dict) -> dict:
    """SIGINT, SIGTERM and SIGHUP end the run the same way: the first asks the engine to stop after the current
    frame (outputs stay readable ``.partial`` files); a second one raises KeyboardInterrupt at once. ``got``
    receives ``signum``. Returns the previous handlers. Main thread only (elsewhere: nothing is installed)."""
    previous: dict = {}
    if threading.current_thread() is not threading.main_thread():
        return previous

    def handler(signum, frame) -> None:
        if "signum" in got:
            if not engine.closing:  # never in the middle of closing the output file
                raise KeyboardInterrupt
            return
        got["signum"] = signum
        engine.stop("interrupted")

    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    return previous


def _banner(engine) -> str:
    """What runs and where, with the endpoints actually bound (the real port for ``:0``)."""
    cfg = engine.config
    source = cfg.source.spec
    if engine.sample_loops():
        source += " (the embedded clip, played in a loop until Ctrl-C)"
    parts = [f"source {source}"]
    if engine.publisher is not None:
        parts.append(f"publishing on {engine.publisher.endpoint}")
    if engine.control is not None:
        parts.append(f"control on {engine.control.endpoint}")
    try:
        ep = engine.stage("alert_endpoint").alert_endpoint()
    except RtfaceError:
        ep = ""
    if ep:
        parts.append(f"alerts on {ep}")
    if cfg.output.path:
        parts.append(f"writing {cfg.output.path}")
    return " | ".join(parts)


def _note_earlier_result(engine) -> None:
    """When an incomplete run leaves a .partial beside an earlier complete file (--overwrite), say so."""
    final = engine.config.output.path
    if final and engine.output_path is not None and os.path.exists(final) and str(engine.output_path) != final:
        print(f"note: {final} is an earlier complete result and was left unchanged; this run's rows are in "
              f"{engine.output_path}", file=sys.stderr)


def _print_summary(engine, elapsed_s: float) -> None:
    """``elapsed_s``: from the first processed frame to the end (start-up is reported separately)."""
    s = engine.summary.get("stats", {})
    lat = s.get("latency_ms", {})
    n = s.get("frames", 0)
    print("", file=sys.stderr)
    print(f"done: {n} frames in {elapsed_s:.1f} s ({max(n - 1, 0) / max(elapsed_s, 1e-9):.1f} fps), faces seen "
          f"{s.get('faces_total', 0)}, frames without a face {s.get('frames_without_face', 0)}", file=sys.stderr)
    print(f"latency capture->publish p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms", file=sys.stderr)
    for name, p in s.get("stage_ms", {}).items():
        print(f"  stage {name:<12} p50 {p['p50']:7.2f} ms  p99 {p['p99']:7.2f} ms", file=sys.stderr)
    drops = s.get("drops", {})
    ring, src = drops.get("ring", {}), drops.get("source", {})
    src_keys = ("decode_errors", "premature_end", "unreadable", "late_frames", "reconnects", "failed_reads", "gap_ns")
    src_txt = ", ".join(f"{k} {src[k]}" for k in src_keys if k in src)
    print(f"drops: ring overruns {ring.get('overruns', 0)}, reader skipped {ring.get('skipped', 0)}, "
          f"stage errors {sum(drops.get('stage_errors', {}).values())} | source: {src_txt}", file=sys.stderr)
    for st in engine.summary.get("stages", {}).values():
        if isinstance(st, dict) and "journal_id" in st:  # the alerts stage
            ch = st.get("channel", {})
            print(f"alerts: raised {st['raised']}, cleared {st['cleared']}, still open {st['open']} | journal "
                  f"{st['journal']}" + (f" | channel: sent {ch['sent']}, redelivered {ch['redelivered']}, "
                                        f"malformed {ch['malformed']}" if ch else ""), file=sys.stderr)
    if engine.output_path is not None:
        print(f"wrote {engine.writer.rows} rows ({engine.writer.frames} frames) to {engine.output_path}",
              file=sys.stderr)
        for p in engine.session_paths:
            print(f"wrote session summary {p}", file=sys.stderr)
        for p in getattr(engine, "analysis_paths", ()):
            print(f"wrote behaviour analysis {p}", file=sys.stderr)


def cmd_listen(args: argparse.Namespace) -> int:
    from rtface.transport.messages import format_summary
    from rtface.transport.subscriber import Subscriber

    n = 0
    alerts = None
    if not args.no_alerts:  # the acknowledged alert channel, shown between the frames (rtface.alerts.cli)
        from rtface.alerts.format import format_alert
        from rtface.transport.alert_client import AlertClient

        alerts = AlertClient(args.alerts, offline_needs_contact=True)
    with Subscriber(args.endpoint, topics=tuple(args.topic or ["rtface.v1."])) as sub:
        print(f"listening on {args.endpoint} (topics: {', '.join(args.topic or ['rtface.v1.'])})"
              + (f" and alerts on {args.alerts}" if alerts else "") + "; Ctrl-C to stop", file=sys.stderr)
        deadline = time.monotonic() + args.timeout if args.timeout else None
        try:
            while args.count == 0 or n < args.count:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    got = sub.recv(timeout_s=min(0.1 if alerts else 1.0, remaining) if remaining is not None else
                                   (0.1 if alerts else 1.0))
                except TransportError as exc:  # counted by the subscriber; the listener goes on
                    if sub.malformed <= 3:
                        print(f"skipped a malformed message: {str(exc)[:200]}", file=sys.stderr)
                    continue
                finally:
                    while alerts is not None and (item := alerts.recv(timeout_s=0)) is not None:
                        print(format_alert(item), flush=True)
                if got is None:
                    continue
                topic, msg = got
                print(format_summary(topic, msg), flush=True)
                n += 1
        except KeyboardInterrupt:
            pass
        missed = getattr(sub, "missed_frames", 0)
        print(f"received {n} messages, missed frames {missed}, malformed messages skipped {sub.malformed}",
              file=sys.stderr)
    if alerts is not None:
        alerts.close()
    return 0


def cmd_ctl(args: argparse.Namespace) -> int:
    import json

    from rtface.transport.control import send_command

    kwargs = {}
    if args.face_id is not None:
        kwargs["face_id"] = args.face_id
    if args.name:
        kwargs["name"] = args.name
    if args.overwrite:
        kwargs["overwrite"] = True
    if args.command_name in ("save_neutral", "load_neutral") and ("face_id" not in kwargs or "name" not in kwargs):
        raise RtfaceError(f"{args.command_name.replace('_', '-')} needs --face-id and --name")
    result = send_command(args.endpoint, args.command_name, timeout_s=args.timeout, token=args.token, **kwargs)
    print(json.dumps(result, indent=2, default=str) if not isinstance(result, str) else result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtface", description="Real-time facial behaviour engine")
    p.add_argument("--version", action="version", version=f"rtface {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log warnings and details")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="process a camera, video, image folder or stream and publish results")
    r.add_argument("--config", help="TOML config (default: the packaged configs/default.toml; a bare name such "
                                    "as 'landmarks' picks a packaged config)")
    r.add_argument("--source", help="camera index (0), video file, image folder or glob, or stream URL "
                                    "(default: the embedded sample video played in real time)")
    r.add_argument("--realtime", dest="realtime", action="store_true", default=None,
                   help="pace a file at its frame rate, as if it were a camera (may drop frames)")
    r.add_argument("--no-realtime", dest="realtime", action="store_false", help="process every frame, fast")
    r.add_argument("--loop", action="store_true", help="restart a file at its end")
    r.add_argument("--sequence", action="store_true",
                   help="an image folder/glob holds frames of one video (tracking, per-person face shape, temporal "
                        "filters); default: every image is measured on its own, like OpenFace's FaceLandmarkImg")
    r.add_argument("--allow-incomplete", action="store_true",
                   help="accept a truncated or partly undecodable file (default: exit 2, keep a .partial output)")
    r.add_argument("--out", help="write one row per face per frame to this .parquet or .csv file")
    r.add_argument("--write-canonical", action="store_true",
                   help="also write canonicalized landmarks cX_i, cY_i, cZ_i (cm) to --out")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (only once this run completes; default: refuse)")
    r.add_argument("--finalize-on-stop", action="store_true",
                   help="a file run stopped by `rtface ctl stop` still gets its final name and exit 0 "
                        "(default: it stays .partial, exit 3)")
    r.add_argument("--no-analyze", action="store_true",
                   help="no behaviour analysis / HTML report after the run (default: beside --out, see "
                        "`rtface analyze`)")
    r.add_argument("--endpoint", help="ZeroMQ PUB endpoint (default tcp://127.0.0.1:5555)")
    r.add_argument("--no-publish", action="store_true", help="do not open a ZeroMQ socket")
    r.add_argument("--max-frames", type=int, help="stop after this many frames")
    r.add_argument("--control", help="control channel endpoint (default tcp://127.0.0.1:5556; see `rtface ctl`)")
    r.add_argument("--no-control", action="store_true", help="do not open the control channel")
    from rtface.alerts.cli import add_run_options

    add_run_options(r)
    from rtface.output.live_options import add_run_options as add_live_options

    add_live_options(r)
    r.set_defaults(func=cmd_run)

    li = sub.add_parser("listen", help="print a readable line for each message a running engine publishes")
    li.add_argument("--endpoint", default="tcp://127.0.0.1:5555")
    li.add_argument("--topic", action="append", help="topic prefix (repeatable; default rtface.v1.)")
    li.add_argument("--count", type=int, default=0, help="stop after N messages (0 = never)")
    li.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds (0 = never)")
    li.add_argument("--alerts", default="tcp://127.0.0.1:5557", help="alert channel to show alerts from")
    li.add_argument("--no-alerts", action="store_true", help="do not connect to the alert channel")
    li.set_defaults(func=cmd_listen)

    c = sub.add_parser("ctl", help="send a command to a running engine (control channel)")
    c.add_argument("command_name", metavar="COMMAND",
                   choices=["ping", "stats", "stop", "calibrate_neutral", "save_neutral", "load_neutral"],
                   type=lambda s: s.replace("-", "_"),
                   help="ping | stats | stop | calibrate-neutral | save-neutral | load-neutral")
    c.add_argument("--face-id", type=int, help="face id (calibrate: default every tracked face)")
    c.add_argument("--name", help="neutral name for save-neutral / load-neutral (a file <name>.npz in the engine's "
                                  "[control] neutral_dir; names only, no paths)")
    c.add_argument("--overwrite", action="store_true", help="save-neutral: replace an existing neutral of that name")
    c.add_argument("--token", help="control token (default: $RTFACE_CONTROL_TOKEN, or the token file the engine "
                                   "wrote for this endpoint for the same user)")
    c.add_argument("--endpoint", default="tcp://127.0.0.1:5556")
    c.add_argument("--timeout", type=float, default=5.0)
    c.set_defaults(func=cmd_ctl)

    for mod in ("rtface.emotion.cli", "rtface.gaze.cli", "rtface.analysis.cli", "rtface.alerts.cli",
                "rtface.record.cli", "rtface.dashboard.cli", "rtface.batch.cli", "rtface.transport.hub_cli"):
        try:
            __import__(mod)
            sys.modules[mod].add_commands(sub)
        except ImportError:
            pass
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:  # a real command line (not a test calling main): keep MediaPipe's C++ log lines out
        from rtface.landmarking.quiet import filter_native_logs

        filter_native_logs()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("rtface.transport").setLevel(logging.INFO if args.verbose else logging.WARNING)  # binds
    try:
        return int(args.func(args) or 0)
    except RtfaceError as exc:
        print(f"rtface: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
