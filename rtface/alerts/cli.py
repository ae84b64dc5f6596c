"""``rtface alerts listen | ack ID | active | journal`` and the alert options of ``rtface run``.

- ``listen``: one readable line per alert event (``--json``: one JSON object per line); ``--name`` makes the
  listener durable (the engine keeps what it did not acknowledge, across restarts of either side); ``--log FILE``
  records every item shown (JSON lines) and is read back at start, so a restarted listener shows nothing twice.
  It raises "monitor offline" itself when the engine's heartbeat stops. ``--camera NAME=ENDPOINT`` (repeatable):
  one listener on several engines' alert channels at once (one camera per engine, as with ``rtface hub``); each
  channel keeps its own acknowledgements, redelivery and offline alarm, items carry ``camera`` (log file per
  camera: ``FILE.NAME``). The hub relays the stream, not the acknowledged channel: listeners connect to the engines.
- ``ack ID --by NAME``: a person has seen alert ID. ``active``: the open alerts now.
- ``journal [PATH]``: the last events of a journal file, read-only (works while the engine runs).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

from rtface.transport.alert_wire import DEFAULT_ALERT_ENDPOINT


def _client(args: argparse.Namespace, endpoint: str | None = None, **kw):
    from rtface.transport.alert_client import AlertClient

    return AlertClient(endpoint or args.endpoint, token=args.token or os.environ.get("RTFACE_ALERTS_TOKEN", ""),
                       **kw)


def _cameras(specs: list[str]) -> list[tuple[str, str]]:
    """``NAME=ENDPOINT`` options -> [(name, endpoint)]; a bad one is an error naming it."""
    from rtface.errors import ConfigError

    out: list[tuple[str, str]] = []
    for spec in specs:
        name, sep, ep = spec.partition("=")
        if not sep or not name or not ep or "@" in name or name in {n for n, _ in out}:
            raise ConfigError(f"--camera {spec!r}: expected NAME=ENDPOINT with a unique NAME without '@'")
        out.append((name, ep))
    return out


@contextlib.contextmanager
def _stop_flag() -> Iterator[threading.Event]:
    """An event set by SIGINT / SIGTERM while the block runs (main thread; elsewhere never set by a signal). The
    listen loop checks it between its polling slices (at most 0.5 s), so Ctrl-C or a SIGTERM ends the listener
    without relying on a KeyboardInterrupt reaching the loop (one run of the two-camera fault test kept polling for
    30 s after SIGINT; the cause was not found)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_listen(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from rtface.alerts.format import format_alert

    cams = _cameras(args.camera) if args.camera else [("", args.endpoint)]
    n, dup = 0, 0
    with ExitStack() as stack:
        clients = []
        for cam, ep in cams:
            log = args.log and (f"{args.log}.{cam}" if cam else args.log)
            c = stack.enter_context(_client(args, endpoint=ep, name=args.name, state_path=log,
                                            offline_after_s=args.offline_after))
            clients.append((cam, c))
            print(f"listening for alerts on {ep}" + (f" (camera {cam})" if cam else "") + f" as {c.name}"
                  + (" (durable)" if c.durable else "") + "; Ctrl-C to stop", file=sys.stderr)
        deadline = time.monotonic() + args.timeout if args.timeout else None
        slice_s = 0.5 / len(clients)
        stop = stack.enter_context(_stop_flag())
        try:
            while (args.count == 0 or n < args.count) and not stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                for cam, c in clients:
                    item = c.recv(timeout_s=min(slice_s, left) if left is not None else slice_s)
                    if item is None:
                        continue
                    if cam:
                        item = {**item, "camera": cam}
                    line = json.dumps(item, default=str) if args.json else format_alert(item)
                    print(line if args.json or not cam else f"[{cam}] {line}", flush=True)
                    n += 1
                    if args.count and n >= args.count:
                        break
        except KeyboardInterrupt:
            pass
        dup = sum(c.duplicates for _, c in clients)
        print(f"{n} alert items, {dup} duplicates dropped", file=sys.stderr)
    return 0


def cmd_ack(args: argparse.Namespace) -> int:
    with _client(args) as c:
        res = c.acknowledge(args.alert_id, args.by, timeout_s=args.wait)
    print(f"alert {res['alert_id']} acknowledged by {res['by']} (state {res['state']})")
    return 0


def cmd_active(args: argparse.Namespace) -> int:
    from rtface.alerts.format import format_alert

    with _client(args) as c:
        alerts = c.active(timeout_s=args.wait)
    for a in alerts:
        print(json.dumps(a, default=str) if args.json else format_alert({**a, "type": "active"}))
    if not args.json:
        print(f"{len(alerts)} open alert(s)", file=sys.stderr)
    return 0


def cmd_journal(args: argparse.Namespace) -> int:
    from rtface.alerts.format import format_alert
    from rtface.alerts.journal import default_journal_path, read_events

    for ev in read_events(args.path or default_journal_path(), args.limit):
        print(json.dumps(ev, default=str) if args.json else f"[{ev.get('seq')}] {format_alert(ev)}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("alerts", help="listen to, acknowledge and list the engine's alerts")
    asub = a.add_subparsers(dest="alerts_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--endpoint", default=DEFAULT_ALERT_ENDPOINT, help="alert channel of the engine")
        p.add_argument("--token", default="", help="the engine's alert token (default $RTFACE_ALERTS_TOKEN, else the "
                       "token file the engine wrote for this endpoint, same user)")
        p.add_argument("--json", action="store_true", help="one JSON object per line")

    li = asub.add_parser("listen", help="print one line per alert event (acknowledged, never lost)")
    common(li)
    li.add_argument("--name", help="durable listener name (the engine keeps what this name did not acknowledge)")
    li.add_argument("--log", help="JSON-lines record of every item shown; read back at start (no repeats)")
    li.add_argument("--count", type=int, default=0, help="stop after N items (0 = never)")
    li.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds (0 = never)")
    li.add_argument("--offline-after", type=float, default=3.0,
                    help="raise 'monitor offline' after this many seconds without a heartbeat")
    li.add_argument("--camera", action="append", default=[], metavar="NAME=ENDPOINT",
                    help="listen to several engines' alert channels at once (repeatable; replaces --endpoint)")
    li.set_defaults(func=cmd_listen)

    ak = asub.add_parser("ack", help="acknowledge an alert (a person has seen it)")
    common(ak)
    ak.add_argument("alert_id", type=int, metavar="ID")
    ak.add_argument("--by", default=os.environ.get("USER", "operator"), help="who acknowledges (default $USER)")
    ak.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the engine")
    ak.set_defaults(func=cmd_ack)

    ac = asub.add_parser("active", help="list the open alerts")
    common(ac)
    ac.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the engine")
    ac.set_defaults(func=cmd_active)

    jo = asub.add_parser("journal", help="print the last events of an alert journal (read-only)")
    jo.add_argument("path", nargs="?", help="journal file (default: the user's default journal)")
    jo.add_argument("--limit", type=int, default=50)
    jo.add_argument("--json", action="store_true")
    jo.set_defaults(func=cmd_journal)


# ------------------------------------------------------------------------------------------------ rtface run

def add_run_options(r: argparse.ArgumentParser) -> None:
    """Options of ``rtface run`` for the alerts stage."""
    r.add_argument("--alerts-endpoint", help=f"alert channel endpoint (default {DEFAULT_ALERT_ENDPOINT}; "
                                             f"see `rtface alerts`)")
    r.add_argument("--journal", help="alert journal file (default <user data dir>/rtface/alerts/journal.sqlite)")
    r.add_argument("--no-alerts", action="store_true", help="leave the alerts stage out")


def apply_run_options(cfg, args: argparse.Namespace):
    """Config with the alerts stage changed (endpoint, journal) or removed, per the ``rtface run`` options."""
    if args.no_alerts:
        return dataclasses.replace(cfg, stages=tuple(s for s in cfg.stages if s.kind != "alerts"))
    changes = {}
    if args.alerts_endpoint is not None:
        changes["endpoint"] = args.alerts_endpoint
    if args.journal is not None:
        changes["journal"] = os.path.abspath(args.journal)
    if not changes:
        return cfg
    stages = tuple(dataclasses.replace(s, params=dataclasses.replace(s.params, **changes)) if s.kind == "alerts"
                   else s for s in cfg.stages)
    return dataclasses.replace(cfg, stages=stages)
