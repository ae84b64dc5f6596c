"""`rtface dashboard` in a real browser (Debian's headless Chromium driven by Playwright) against a real engine on
the sample video (`rtface run`, the packaged pipeline plus a test rule a smile raises): live values change, an alert
is acknowledged from the page and shown confirmed (in both of two browsers, and in the engine's journal), the
stream-stalled state appears when the engine is frozen (SIGSTOP), and a browser that reads nothing falls behind on
its own. Screenshots are kept in build/test-artifacts/ ($RTFACE_TEST_ARTIFACTS)."""
from __future__ import annotations

import json
import signal
import socket
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import free_port
from tests.integration.alert_procs import journal_events, kill, start, wait_for
from tests.integration.live_procs import ARTIFACTS, CHROMIUM_ARGS, browser, engine_config, start_dashboard

pytest.importorskip("starlette", reason="the dashboard extra is in the test extra")
pytest.importorskip("uvicorn", reason="the dashboard extra is in the test extra")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dashboard")
    pub, alerts = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    cfg = engine_config(tmp, pub, alerts)
    eng = start(["run", "--config", str(cfg), "--preview-jpeg", "2", "--no-analyze"], tmp / "engine.log")
    dash, url = start_dashboard(pub, alerts, tmp / "dashboard.log", "--by", "nurse_test")
    try:
        yield {"engine": eng, "dashboard": dash, "url": url, "tmp": tmp}
    finally:
        for p in (dash, eng):
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
            kill(p, signal.SIGTERM)


def _status(url: str) -> dict:
    u = urlparse(url)
    with urllib.request.urlopen(f"http://{u.netloc}/status?{u.query}", timeout=10) as r:
        return json.loads(r.read())


def test_dashboard_in_chromium_live_values_ack_and_stall(live):
    found, why = browser()
    if found is None:
        pytest.skip(why)
    sync_playwright, exe = found
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url, eng = live["url"], live["engine"]
    errors: list[str] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        assert "token" not in page.url  # the token moved into an HttpOnly cookie
        page.wait_for_selector("#stream-state[data-state=live]", timeout=120_000)
        page.wait_for_selector(".face[data-face-id] .au.name[data-name=AU12]", timeout=60_000)

        # live values change: frame index, AU12 and happiness read from the page over time
        frames, au12, happy = set(), set(), set()

        def moving():
            frames.add(page.inner_text("#frame-index"))
            au12.add(page.inner_text(".face .au.value[data-name=AU12]"))
            happy.add(page.inner_text(".face .emo.value[data-name=happiness]"))
            return len(frames) >= 10 and len(au12) >= 3 and len(happy) >= 3

        wait_for(moving, 90, "frame index, AU12 and happiness to change on the page", poll_s=0.2)
        aus = page.eval_on_selector_all(".face .au.name", "els => els.map(e => e.dataset.name)")
        emotions = page.eval_on_selector_all(".face .emo.name", "els => els.map(e => e.dataset.name)")
        assert len(aus) == 19 and {"AU01", "AU12", "AU25", "AU43"} <= set(aus)
        assert {"neutral", "happiness", "sadness", "surprise"} <= set(emotions)
        wait_for(lambda: page.query_selector_all(".face .au.name.present"), 60, "an AU shown present (bold)")
        assert "yaw" in page.inner_text(".face [data-field=pose]")
        assert "shape frames" in page.inner_text(".face [data-field=shape_frames]")
        wait_for(lambda: page.query_selector(".face .badge.ready"), 60, "the face's neutral to be ready")
        assert page.inner_text("#channel-state") == "connected"

        # a second browser at the same time
        page2 = b.new_page(viewport={"width": 1200, "height": 900})
        page2.goto(url)
        page2.wait_for_selector("#stream-state[data-state=live]", timeout=60_000)

        # the smile raises the test alert; acknowledge it from the page
        sel = "#alerts li[data-rule=smile][data-state=active]"
        page.wait_for_selector(f"{sel} button.ack", timeout=120_000)
        alert_id = int(page.get_attribute(sel, "data-alert-id"))
        wait_for(lambda: page.query_selector("#preview[data-images]") and
                 int(page.get_attribute("#preview", "data-points") or 0) > 400, 60,
                 "a camera preview image and the landmarks on the canvas")
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        page.click(f"#alerts li[data-alert-id='{alert_id}'] button.ack")
        done = f"#alerts li[data-alert-id='{alert_id}'][data-state=acknowledged]"
        page.wait_for_selector(done, timeout=30_000)
        assert "acknowledged by nurse_test" in page.inner_text(f"{done} .state")
        page2.wait_for_selector(done, timeout=30_000)  # the other browser sees the confirmation too
        evs = journal_events(live["tmp"] / "journal.sqlite")
        assert any(e["type"] == "acknowledged" and e["alert_id"] == alert_id and e["by"] == "nurse_test"
                   for e in evs)
        page.screenshot(path=str(ARTIFACTS / "dashboard-acknowledged.png"), full_page=True)

        # the engine freezes: the page says the stream stalled, then live again
        eng.send_signal(signal.SIGSTOP)
        try:
            page.wait_for_selector("#stream-state[data-state=stalled]", timeout=30_000)
            assert page.is_visible("#stall-banner") and "STREAM STALLED" in page.inner_text("#stall-banner")
            page.screenshot(path=str(ARTIFACTS / "dashboard-stalled.png"), full_page=True)
        finally:
            eng.send_signal(signal.SIGCONT)
        page.wait_for_selector("#stream-state[data-state=live]", timeout=60_000)
        assert not page.is_visible("#stall-banner")
        b.close()
    assert errors == []
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 50_000


def _raw_websocket(url: str) -> socket.socket:
    """A WebSocket handshake on a plain socket with a tiny receive buffer; the caller then never reads."""
    u = urlparse(url)
    host, port = u.hostname, u.port
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.connect((host, port))
    s.sendall((f"GET /ws?{u.query} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def test_a_browser_that_reads_nothing_falls_behind_alone(live):
    url = live["url"]
    wait_for(lambda: _status(url)["stream"]["state"] == "live", 120, "the stream to be live")
    slow = _raw_websocket(url)
    try:
        before = _status(url)
        t_missed = before["stream"]["missed_frames"]
        seen = {}

        def behind():
            st = _status(url)
            clients = st["clients"]["per_client"]
            seen.update(st=st)
            return any(c["dropped"] > 30 for c in clients) and \
                st["stream"]["received"] > before["stream"]["received"] + 150

        wait_for(behind, 120, "the silent browser to fall behind while the stream goes on", poll_s=0.5)
        st = seen["st"]
        # the dashboard kept receiving every frame from the engine (no transport gap while the browser stalled)
        assert st["stream"]["missed_frames"] == t_missed
        assert st["clients"]["dropped"] > 30
    finally:
        slow.close()
