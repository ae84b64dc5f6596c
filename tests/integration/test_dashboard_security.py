"""`rtface dashboard` as a real process: nothing without its token, the token moves into an HttpOnly SameSite
cookie, foreign Host / Origin headers are refused, strict security headers; and it survives any bytes: garbage on
its HTTP port and fuzzed WebSocket messages are refused or counted, and it keeps serving. No engine runs: the page
says it is waiting for the stream."""
from __future__ import annotations

import http.client
import json
import random
import signal
import socket
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the dashboard extra is in the test extra")
pytest.importorskip("websockets", reason="the dashboard extra is in the test extra")

from websockets.sync.client import connect  # noqa: E402

from tests.conftest import free_port  # noqa: E402
from tests.integration.alert_procs import kill  # noqa: E402
from tests.integration.live_procs import start_dashboard  # noqa: E402


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash_security")
    p, url = start_dashboard(f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}",
                             tmp / "dashboard.log", "--stall-after", "1")
    host, rest = url[len("http://"):].split("/", 1)
    port = int(host.rsplit(":", 1)[1])
    token = rest.split("token=", 1)[1]
    try:
        yield {"port": port, "token": token, "proc": p, "log": tmp / "dashboard.log"}
    finally:
        kill(p, signal.SIGTERM)


def _get(port: int, path: str, headers: dict | None = None) -> http.client.HTTPResponse:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"Host": f"127.0.0.1:{port}", **(headers or {})})
    r = c.getresponse()
    r.body = r.read()
    c.close()
    return r


def test_token_cookie_and_headers(dash):
    port, token = dash["port"], dash["token"]
    assert len(token) >= 32
    assert _get(port, "/").status == 401
    assert _get(port, "/?token=wrong-token-0123456789").status == 403
    assert _get(port, "/status").status == 401
    r = _get(port, f"/?token={token}")
    assert r.status == 303 and r.getheader("Location") == "/"
    cookie = r.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = _get(port, "/", {"Cookie": cookie.split(";", 1)[0]})
    assert page.status == 200 and b"rtface dashboard" in page.body
    csp = page.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.getheader("X-Frame-Options") == "DENY"
    # DNS rebinding: another name for this address is refused even with the token
    assert _get(port, f"/?token={token}", {"Host": f"evil.example:{port}"}).status == 400
    st = json.loads(_get(port, f"/status?token={token}").body)
    assert st["stream"]["state"] == "waiting" and st["channel"]["state"] in ("connecting", "connected")


def test_websocket_needs_the_token_and_this_origin(dash):
    port, token = dash["port"], dash["token"]
    for url, origin in ((f"ws://127.0.0.1:{port}/ws", None),
                        (f"ws://127.0.0.1:{port}/ws?token=wrong-token-0123456789", None),
                        (f"ws://127.0.0.1:{port}/ws?token={token}", "http://evil.example")):
        with pytest.raises(Exception) as err:
            connect(url, origin=origin, open_timeout=10).close()
        assert "403" in str(err.value)
    with connect(f"ws://127.0.0.1:{port}/ws?token={token}", origin=f"http://127.0.0.1:{port}", open_timeout=10) as ws:
        doc = json.loads(ws.recv(timeout=10))
        assert doc["type"] == "state" and doc["stream"]["state"] == "waiting"


def test_survives_garbage_and_fuzzed_messages(dash):
    port, token = dash["port"], dash["token"]
    rng = random.Random(12)
    for i in range(30):  # raw bytes on the HTTP port
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
            s.shutdown(socket.SHUT_WR)
            s.settimeout(0.5)
            try:
                s.recv(1024)
            except (socket.timeout, ConnectionError):
                pass
        finally:
            s.close()
    sent = 0
    with connect(f"ws://127.0.0.1:{port}/ws?token={token}", open_timeout=10, max_size=2**22) as ws:
        ws.recv(timeout=10)
        bad = ["", "{", "[]", "null", "1e999", '{"type":"ack"}', '{"type":"ack","alert_id":-1}',
               '{"type":"ack","alert_id":1,"by":"<script>"}', '{"type":"ack","alert_id":true}',
               '{"type":"drop_tables"}', "x" * 5000, json.dumps({"type": "ack", "alert_id": 2**70})]
        for i in range(200):
            msg = bad[i % len(bad)] if i % 3 else "".join(chr(rng.randrange(1, 0x2FF)) for _ in range(rng.randrange(50)))
            ws.send(msg if i % 7 else msg.encode("utf-8", "replace"))
            sent += 1
        errors = 0
        while errors < 150:
            doc = json.loads(ws.recv(timeout=10))
            errors += doc.get("type") in ("error", "ack_result")
    # an over-size message closes that connection (limit 64 KiB), never the server
    with connect(f"ws://127.0.0.1:{port}/ws?token={token}", open_timeout=10) as ws:
        ws.recv(timeout=10)
        ws.send("y" * 200_000)
        with pytest.raises(Exception):
            for _ in range(100):
                ws.recv(timeout=10)
    st = json.loads(_get(port, f"/status?token={token}").body)
    assert st["clients"]["malformed"] >= 150
    assert dash["proc"].poll() is None
