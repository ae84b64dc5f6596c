"""``rtface dashboard``: serve the live page for a running engine (pip install 'rtface[dashboard]').

Binds 127.0.0.1 by default and prints the address with a random access token (``--token`` or
``$RTFACE_DASHBOARD_TOKEN`` fix it); the page can acknowledge alerts, so it is never served without the token.
Threads: the main thread runs uvicorn's event loop (every WebSocket); the stream and alert threads own their
ZeroMQ sockets (:mod:`rtface.dashboard.bridge`).
"""
from __future__ import annotations

import argparse
import os
import socket
import sys

from rtface.errors import ConfigError
from rtface.transport.alert_wire import DEFAULT_ALERT_ENDPOINT
from rtface.transport.publisher import DEFAULT_ENDPOINT

DEFAULT_PORT = 8765


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, port))
    except OSError as exc:
        s.close()
        raise ConfigError(f"dashboard: cannot listen on {host}:{port} ({exc.strerror}); choose another --port "
                          f"(0 = a random free one)") from None
    s.listen(64)
    s.set_inheritable(True)
    return s


def cmd_dashboard(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401
        import starlette  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"rtface dashboard needs its extra: pip install 'rtface[dashboard]' ({exc})") from None
    import uvicorn

    from rtface.dashboard.bridge import AlertThread, StreamThread
    from rtface.dashboard.server import DashboardApp
    from rtface.dashboard.view import DashboardView
    from rtface.transport.guard import TokenAuth, check_bind

    check_bind(f"tcp://{args.host}:{max(args.port, 1)}", "dashboard", authenticated=True)  # warns beyond loopback
    auth = TokenAuth(args.token or os.environ.get("RTFACE_DASHBOARD_TOKEN", ""))
    sock = _listen_socket(args.host, args.port)
    port = sock.getsockname()[1]
    alerts_ep = "" if args.no_alerts else args.alerts
    holder: dict = {}
    view = DashboardView(stream_endpoint=args.endpoint, alerts_endpoint=alerts_ep, stall_s=args.stall_after,
                         landmarks=not args.no_landmarks, on_change=lambda: holder["app"].notify())
    alerts = AlertThread(view, alerts_ep, token=args.alerts_token or os.environ.get("RTFACE_ALERTS_TOKEN", ""),
                         name=args.alerts_name) if alerts_ep else None
    app = DashboardApp(view, auth, port=port, host=args.host, default_by=args.by,
                       acknowledge=alerts.acknowledge if alerts is not None else None)
    holder["app"] = app
    stream = StreamThread(view, args.endpoint)
    stream.start()
    if alerts is not None:
        alerts.start()
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"rtface dashboard for {args.endpoint}" + (f" (alerts {alerts_ep})" if alerts_ep else "")
          + f"\n    open http://{shown}:{port}/?token={auth.token}\n(Ctrl-C to stop)", file=sys.stderr, flush=True)
    config = uvicorn.Config(app.app, log_level="warning", ws="websockets-sansio", ws_max_size=64 * 1024,
                            lifespan="on", access_log=False, server_header=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        stream.stop()
        if alerts is not None:
            alerts.stop()
        stream.join(5)
        if alerts is not None:
            alerts.join(10)
        sock.close()
    print(f"dashboard stopped: {app.dropped_total} states dropped for slow browsers, "
          f"{app.malformed_total} malformed browser messages, {app.refused} requests without the token",
          file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("dashboard", help="a live web page for a running engine (AUs, emotions, pose, alerts, ...)")
    d.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="the engine's (or a hub's, or a replay's) PUB "
                                                                  "endpoint")
    d.add_argument("--alerts", default=DEFAULT_ALERT_ENDPOINT, help="the engine's alert channel")
    d.add_argument("--no-alerts", action="store_true", help="do not connect to an alert channel")
    d.add_argument("--alerts-token", default="", help="the alert channel's token (or $RTFACE_ALERTS_TOKEN)")
    d.add_argument("--alerts-name", help="durable alert-listener name")
    d.add_argument("--host", default="127.0.0.1", help="address to serve on (default loopback only)")
    d.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = random)")
    d.add_argument("--token", default="", help="access token (default: random per start, or "
                                               "$RTFACE_DASHBOARD_TOKEN; at least 16 characters)")
    d.add_argument("--by", default=os.environ.get("USER", "dashboard"),
                   help="default name acknowledgements are made under (the page can change it)")
    d.add_argument("--stall-after", type=float, default=3.0,
                   help="seconds without any message before the page says the stream stalled (heartbeat: 1 s)")
    d.add_argument("--no-landmarks", action="store_true", help="do not send landmarks to the page")
    d.set_defaults(func=cmd_dashboard)
