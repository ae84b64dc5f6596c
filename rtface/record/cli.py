"""``rtface record`` and ``rtface replay``.

Exit status of ``record``: 0 the recording is complete (named ``--out``); 2 an error, or an incomplete recording
(messages lost on the way: the file stays ``<out>.partial`` unless ``--allow-incomplete``), or nothing received.
Ctrl-C / SIGTERM / SIGHUP end a recording normally (the way to stop one that records a live camera).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from rtface.transport.alert_wire import DEFAULT_ALERT_ENDPOINT
from rtface.transport.publisher import DEFAULT_ENDPOINT


def _on_signals(stop) -> dict:
    previous: dict = {}
    if threading.current_thread() is not threading.main_thread():
        return previous

    def handler(signum, frame) -> None:
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    return previous


def _restore(previous: dict) -> None:
    for sig, h in previous.items():
        signal.signal(sig, h)


def cmd_record(args: argparse.Namespace) -> int:
    from rtface.record.recorder import Recorder

    rec = Recorder(args.out, args.endpoint, alerts_endpoint="" if args.no_alerts else args.alerts,
                   alerts_name=args.alerts_name, alerts_token=args.alerts_token or
                   os.environ.get("RTFACE_ALERTS_TOKEN", ""), overwrite=args.overwrite,
                   allow_incomplete=args.allow_incomplete, record_preview=args.with_preview)
    print(f"recording {args.endpoint}" + ("" if args.no_alerts else f" and alerts on {args.alerts}")
          + f" to {rec.partial} (renamed to {rec.out} when complete); Ctrl-C to stop", file=sys.stderr, flush=True)
    previous = _on_signals(rec.stop)
    try:
        s = rec.run(duration_s=args.duration, count=args.count, until_end=args.until_end)
    finally:
        _restore(previous)
    topics = ", ".join(f"{t} {n}" for t, n in sorted(s.messages.items())) or "none"
    print(f"recorded {sum(s.messages.values())} messages ({topics}); alert items {s.alert_items}; "
          f"lost in transport {s.total_gaps}" + (f" ({', '.join(f'{t} {n}' for t, n in s.gaps.items())})"
                                                 if s.gaps else "")
          + f"; malformed skipped {s.malformed}; ended: {s.end_reason}", file=sys.stderr)
    if s.path is None:
        print(f"rtface: error: no message received from {args.endpoint}; nothing was written (is `rtface run` "
              f"publishing there?)", file=sys.stderr)
        return 2
    if not s.complete:
        kept = "kept under its final name (--allow-incomplete)" if s.path == rec.out else "kept"
        print(f"rtface: error: the recording is incomplete ({s.total_gaps} messages lost in transport); "
              f"{kept} as {s.path}", file=sys.stderr)
        return 2
    print(f"wrote {s.path}", file=sys.stderr)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from rtface.record.replay import Replayer

    rp = Replayer(args.recording, args.endpoint, speed=0.0 if args.fast else args.speed,
                  topic_prefix=args.topic or "", loop=args.loop, include_alerts=not args.no_alerts)
    if not rp.meta.get("complete", False):
        print(f"note: {args.recording} is an incomplete recording ({sum(rp.meta.get('gaps', {}).values())} "
              f"messages were lost while recording)", file=sys.stderr)
    total = sum(rp.meta.get("messages", {}).values()) + rp.meta.get("alert_items", 0)
    print(f"replaying {args.recording} ({total} messages) on {rp.endpoint} at "
          f"{'full speed' if args.fast or args.speed == 0 else f'{args.speed:g}x'}; Ctrl-C to stop",
          file=sys.stderr, flush=True)
    previous = _on_signals(rp.stop)
    try:
        if args.wait_subscribers:
            if not rp.wait_for_subscribers(args.wait_subscribers, args.wait_timeout):
                print(f"no subscriber after {args.wait_timeout:g} s; replaying anyway", file=sys.stderr)
        sent = rp.run()
    finally:
        _restore(previous)
    print(f"replayed {sent} messages in {rp.passes} pass(es); refused by ZeroMQ (high-water mark) {rp.refused}",
          file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("record", help="record every message of a running engine (or hub) to a Parquet file")
    r.add_argument("--out", required=True, help="recording file (.parquet); written as .partial until complete")
    r.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="the engine's (or hub's) PUB endpoint")
    r.add_argument("--alerts", default=DEFAULT_ALERT_ENDPOINT, help="the engine's alert channel")
    r.add_argument("--no-alerts", action="store_true", help="do not record the alert channel")
    r.add_argument("--alerts-name", help="durable alert-listener name (the engine keeps what it did not "
                                         "acknowledge across restarts)")
    r.add_argument("--alerts-token", default="", help="the alert channel's token (or $RTFACE_ALERTS_TOKEN)")
    r.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = never)")
    r.add_argument("--count", type=int, default=0, help="stop after this many frame messages (0 = never)")
    r.add_argument("--until-end", action="store_true",
                   help="stop when the engine ends its run (its session message; with a hub, every camera's)")
    r.add_argument("--with-preview", action="store_true",
                   help="also record camera images (rtface.v1.preview, only there if the engine publishes them)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing --out (once this one completes)")
    r.add_argument("--allow-incomplete", action="store_true",
                   help="give a recording with lost messages its final name anyway (its metadata says so)")
    r.set_defaults(func=cmd_record)

    p = sub.add_parser("replay", help="republish a recording on the same topics (original pace or faster)")
    p.add_argument("recording", help="a file written by `rtface record`")
    p.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="PUB endpoint to bind (default that of an engine)")
    p.add_argument("--speed", type=float, default=1.0, help="1 = original pace, 4 = four times faster")
    p.add_argument("--fast", action="store_true", help="as fast as possible (same as --speed 0)")
    p.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    p.add_argument("--topic", help="replay only topics starting with this prefix")
    p.add_argument("--no-alerts", action="store_true", help="leave out the recorded alert-channel items")
    p.add_argument("--wait-subscribers", type=int, default=0,
                   help="before sending, wait until this many topic subscriptions arrived")
    p.add_argument("--wait-timeout", type=float, default=10.0, help="... for at most this many seconds")
    p.set_defaults(func=cmd_replay)
