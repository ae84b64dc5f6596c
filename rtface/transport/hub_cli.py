"""``rtface hub --camera NAME=ENDPOINT ... [--out ENDPOINT]``: merge many engines' streams (rtface.transport.hub)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from rtface.errors import RtfaceError


def _camera(spec: str) -> tuple[str, str]:
    name, sep, endpoint = spec.partition("=")
    if not sep or not name or not endpoint:
        raise argparse.ArgumentTypeError(f"--camera {spec!r}: expected NAME=ENDPOINT, e.g. cam1=tcp://127.0.0.1:5555")
    return name, endpoint


def cmd_hub(args: argparse.Namespace) -> int:
    from rtface.transport.hub import Hub

    cams = dict(args.camera)
    if len(cams) != len(args.camera):
        raise RtfaceError("rtface hub: each --camera name must be unique")
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    with Hub(cams, args.out, sndhwm=args.sndhwm) as hub:
        print(f"rtface hub: {len(cams)} camera(s) ({', '.join(f'{n} <- {e}' for n, e in cams.items())}) | "
              f"publishing on {hub.endpoint} (topics <topic>@<camera>)", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        hub.run(stop.is_set, args.duration)
        total = sum(c.forwarded for c in hub.cameras.values())
        bad = sum(c.malformed for c in hub.cameras.values())
        print(f"rtface hub: relayed {total} messages in {time.monotonic() - t0:.1f} s, dropped {bad} malformed",
              file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    h = sub.add_parser("hub", help="merge the streams of several engines (one per camera) on one endpoint")
    h.add_argument("--camera", action="append", type=_camera, required=True, metavar="NAME=ENDPOINT",
                   help="an engine's publisher, e.g. cam1=tcp://127.0.0.1:5555 (repeat for each camera)")
    h.add_argument("--out", default="tcp://127.0.0.1:5570", help="endpoint subscribers connect to "
                                                                  "(default tcp://127.0.0.1:5570)")
    h.add_argument("--sndhwm", type=int, default=1000, help="messages queued per subscriber before dropping")
    h.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    h.set_defaults(func=cmd_hub)
