"""The dashboard's web server: a Starlette app served by uvicorn (one page, one WebSocket per browser).

Why Starlette and not FastAPI: the dashboard serves one page, its static files and one WebSocket; FastAPI's value
(request/response models, OpenAPI) is not used and it would add pydantic. Starlette is the ASGI toolkit FastAPI
itself is built on; uvicorn serves it with the ``websockets-sansio`` protocol implementation (its ``send`` waits
while the browser's socket buffer is full, which is what lets a slow browser fall behind on its own).

Access: every request must carry the dashboard's token, printed at start (as Jupyter does): ``/?token=T`` sets an
HttpOnly, SameSite=Strict cookie and redirects to ``/`` (so the token leaves the address bar); the WebSocket takes
the cookie (or ``?token=``; compared in constant time by :class:`rtface.transport.guard.TokenAuth`). A request with
an unexpected ``Host`` header (DNS rebinding) or a WebSocket whose ``Origin`` is another site is refused. Pages
carry a strict Content-Security-Policy (no inline script, nothing from elsewhere, no framing).

Per browser: a sender task sends the newest state whenever it changed and the previous send finished (drop to
latest: states that arrived meanwhile are skipped and counted as ``dropped``); a receiver task takes the page's
messages (``ack``; at most 4 KiB each, JSON objects only; anything else is counted as malformed and answered
with an error, the connection stays). The event loop thread owns every WebSocket.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from rtface.dashboard.view import DashboardView
from rtface.transport.guard import TokenAuth

log = logging.getLogger("rtface.dashboard")
STATIC = Path(__file__).resolve().parent / "static"
MAX_CLIENT_MESSAGE = 4096
_BY_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store", "X-Frame-Options": "DENY"}


class Client:
    """One connected browser (event loop thread)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wake = asyncio.Event()
        self.sent = 0
        self.dropped = 0
        self.malformed = 0
        self.last_version = 0
        self.last_preview = 0
        self.busy = False  # a send is under way (a browser that reads nothing keeps it so)

    def dropped_now(self, version: int) -> int:
        """States this browser did not get: skipped ones, plus those passed while its current send waits."""
        return self.dropped + (max(0, version - self.last_version - 1) if self.busy else 0)


class DashboardApp:
    """The ASGI app plus the per-browser fan-out. ``acknowledge(alert_id, by, done)``: the alert thread's."""

    def __init__(self, view: DashboardView, auth: TokenAuth, *, port: int, host: str, acknowledge=None,
                 default_by: str = "dashboard") -> None:
        self.view, self.auth, self.port, self.host = view, auth, port, host
        self.acknowledge = acknowledge
        self.default_by = default_by if _BY_RE.match(default_by or "") else "dashboard"
        self.clients: set[Client] = set()
        self.cookie = f"rtface_dashboard_{port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.dropped_total = 0
        self.malformed_total = 0
        self.refused = 0
        self.app = self._build()

    # ------------------------------------------------------------------------------------------------ wake-ups
    def notify(self) -> None:
        """The view changed (any thread): wake every sender."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake_all)
            except RuntimeError:  # loop closing
                pass

    def _wake_all(self) -> None:
        for c in self.clients:
            c.wake.set()

    # ------------------------------------------------------------------------------------------------ checks
    def _allowed_hosts(self) -> set[str]:
        p = self.port
        hosts = {f"127.0.0.1:{p}", f"localhost:{p}", f"[::1]:{p}"}
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            hosts.add(f"{self.host}:{p}")
        return hosts

    def _host_ok(self, headers) -> bool:
        if self.host in ("0.0.0.0", "::", ""):
            return True  # bound on every interface: any name of this machine (the token still applies)
        return headers.get("host", "") in self._allowed_hosts()

    def _token_ok(self, conn) -> bool:
        presented = conn.cookies.get(self.cookie) or conn.query_params.get("token")
        return presented is not None and self.auth.check(presented)

    # ------------------------------------------------------------------------------------------------ routes
    def _build(self):
        from starlette.applications import Starlette
        from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
        from starlette.routing import Route, WebSocketRoute

        async def index(request):
            if not self._host_ok(request.headers):
                return Response("unexpected Host header", status_code=400)
            token = request.query_params.get("token")
            if token is not None:
                if not self.auth.check(token):
                    self.refused += 1
                    return HTMLResponse(_DENIED, status_code=403, headers=HEADERS)
                r = RedirectResponse("/", status_code=303, headers=HEADERS)
                r.set_cookie(self.cookie, token, httponly=True, samesite="strict", path="/")
                return r
            if not self._token_ok(request):
                self.refused += 1
                return HTMLResponse(_DENIED, status_code=401, headers=HEADERS)
            return FileResponse(STATIC / "index.html", headers=HEADERS)

        async def static(request):
            name = request.path_params["name"]
            if name not in ("dashboard.js", "dashboard.css"):
                return Response("not found", status_code=404)
            return FileResponse(STATIC / name, headers=HEADERS)

        async def status(request):
            if not self._host_ok(request.headers) or not self._token_ok(request):
                self.refused += 1
                return JSONResponse({"error": "token required"}, status_code=401)
            return JSONResponse(self.status())

        async def ws_endpoint(ws):
            if not self._host_ok(ws.headers) or not self._token_ok(ws) or not self._origin_ok(ws.headers):
                self.refused += 1
                await ws.close(code=1008)
                return
            await ws.accept()
            await self._serve(ws)

        @contextlib.asynccontextmanager
        async def lifespan(app):
            self.loop = asyncio.get_running_loop()
            yield

        async def favicon(request):
            return Response(status_code=204)

        return Starlette(routes=[Route("/", index), Route("/static/{name}", static), Route("/status", status),
                                 Route("/favicon.ico", favicon),
                                 WebSocketRoute("/ws", ws_endpoint)], lifespan=lifespan)

    def _origin_ok(self, headers) -> bool:
        origin = headers.get("origin")
        if origin is None:
            return True  # not a browser (browsers always send Origin on WebSocket requests)
        return origin == f"http://{headers.get('host', '')}"

    def status(self) -> dict[str, Any]:
        _, text = self.view.snapshot()
        doc = json.loads(text)
        doc["clients"] = {"connected": len(self.clients), "dropped": self.dropped_total,
                          "malformed": self.malformed_total, "refused": self.refused,
                          "per_client": [{"sent": c.sent, "dropped": c.dropped_now(self.view.version),
                                          "waiting": c.busy} for c in self.clients]}
        doc["clients"]["dropped"] += sum(c.dropped_now(self.view.version) - c.dropped for c in self.clients)
        return doc

    # ------------------------------------------------------------------------------------------------ a browser
    async def _serve(self, ws) -> None:
        c = Client(ws)
        self.clients.add(c)
        self.view.set_clients(connected=len(self.clients))
        sender = asyncio.create_task(self._send_loop(c))
        try:
            await self._receive_loop(c)
        finally:
            sender.cancel()
            self.clients.discard(c)
            self.view.set_clients(connected=len(self.clients))

    async def _send_loop(self, c: Client) -> None:
        from starlette.websockets import WebSocketDisconnect

        try:
            while True:
                version, text = self.view.snapshot()
                if version != c.last_version:
                    if c.last_version and version > c.last_version + 1:
                        skipped = version - c.last_version - 1
                        c.dropped += skipped
                        self.dropped_total += skipped
                    c.last_version = version
                    head = f'{{"you":{{"sent":{c.sent},"dropped":{c.dropped},"malformed":{c.malformed}}},'
                    c.busy = True
                    await c.ws.send_text(head + text[1:])
                    c.busy = False
                    c.sent += 1
                pv, ptext = self.view.preview_snapshot()
                if ptext is not None and pv != c.last_preview:
                    c.last_preview = pv
                    c.busy = True
                    await c.ws.send_text(ptext)
                    c.busy = False
                c.wake.clear()
                if self.view.version == c.last_version:
                    await c.wake.wait()
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the websockets library's ConnectionClosed
            log.info("browser connection closed: %s", exc)

    async def _receive_loop(self, c: Client) -> None:
        from starlette.websockets import WebSocketDisconnect

        while True:
            try:
                msg = await c.ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if msg.get("type") == "websocket.disconnect":
                return
            text = msg.get("text")
            if text is None and msg.get("bytes") is not None:
                await self._bad(c, "binary messages are not accepted")
                continue
            if not isinstance(text, str) or len(text) > MAX_CLIENT_MESSAGE:
                await self._bad(c, f"messages must be text of at most {MAX_CLIENT_MESSAGE} characters")
                continue
            try:
                req = json.loads(text)
            except ValueError:
                await self._bad(c, "not JSON")
                continue
            if not isinstance(req, dict) or req.get("type") != "ack":
                await self._bad(c, "expected {\"type\": \"ack\", \"alert_id\": N, \"by\": NAME}")
                continue
            await self._ack(c, req)

    async def _bad(self, c: Client, why: str) -> None:
        c.malformed += 1
        self.malformed_total += 1
        await self._reply(c, {"type": "error", "error": why})

    async def _reply(self, c: Client, doc: dict[str, Any]) -> None:
        try:
            await c.ws.send_text(json.dumps(doc))
        except Exception:  # noqa: BLE001 - gone
            pass

    async def _ack(self, c: Client, req: dict[str, Any]) -> None:
        alert_id, by, rid = req.get("alert_id"), req.get("by") or self.default_by, req.get("req")
        rid = rid if isinstance(rid, int) and not isinstance(rid, bool) else None
        if isinstance(alert_id, bool) or not isinstance(alert_id, int) or alert_id < 1:
            return await self._bad(c, "'alert_id' must be a positive integer")
        if not isinstance(by, str) or not _BY_RE.match(by):
            return await self._bad(c, "'by' must be 1-64 letters, digits or _.@:-")
        if self.acknowledge is None:
            return await self._reply(c, {"type": "ack_result", "req": rid, "alert_id": alert_id, "ok": False,
                                         "error": "no alert channel (dashboard started with --no-alerts)"})
        loop = asyncio.get_running_loop()

        def done(reply: dict[str, Any]) -> None:  # alert thread
            doc = {"type": "ack_result", "req": rid, "alert_id": alert_id, **reply}
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._reply(c, doc)))

        if not self.acknowledge(alert_id, by, done):
            await self._reply(c, {"type": "ack_result", "req": rid, "alert_id": alert_id, "ok": False,
                                  "error": "too many acknowledgements waiting"})


_DENIED = """<!doctype html><meta charset="utf-8"><title>rtface dashboard</title>
<p>This dashboard needs its access token. Open the address that <code>rtface dashboard</code> printed when it
started (it ends in <code>?token=...</code>).</p>"""
