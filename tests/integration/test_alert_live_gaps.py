"""Source lost and face lost while no frame arrives: a real HTTP MJPEG camera stream (the sample video's frames,
served at 30 fps by a local server, read by FFmpeg through the engine's stream source) that stalls for 5 s.
The packaged default config raises both alerts from the engine's idle ticks and clears them when frames return."""
from __future__ import annotations

import dataclasses
import http.server
import socketserver
import threading
import time

import cv2

from rtface.alerts.journal import read_events
from rtface.config import load_config, with_overrides
from rtface.graph.runner import Engine
from tests.conftest import SAMPLE_VIDEO


def mjpeg_server(stall_at: int, stall_s: float, frames_total: int):
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    jpgs = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        jpgs.append(cv2.imencode(".jpg", img)[1].tobytes())

    class Cam(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for i in range(frames_total):
                    if i == stall_at:
                        time.sleep(stall_s)  # the camera stalls: no frame at all
                    jpg = jpgs[i % len(jpgs)]
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpg)
                                     + jpg + b"\r\n")
                    time.sleep(1 / 30)
            except (BrokenPipeError, ConnectionResetError):
                pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Cam)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_stalled_camera_raises_source_and_face_lost_then_clears(tmp_path):
    srv = mjpeg_server(stall_at=90, stall_s=5.0, frames_total=400)  # face_lost needs 3 s: 2 s of margin
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/cam.mjpg"
        cfg = with_overrides(load_config(), source={"spec": url}, publish={"enabled": False},
                             control={"enabled": False}, engine={"max_frames": 200})
        j = tmp_path / "j.sqlite"
        cfg = dataclasses.replace(cfg, stages=tuple(
            dataclasses.replace(s, params=dataclasses.replace(s.params, journal=str(j), endpoint=""))
            if s.kind == "alerts" else s for s in cfg.stages))
        with Engine(cfg) as e:
            frames = sum(1 for _ in e.results())
            assert e.live
    finally:
        srv.shutdown()
        srv.server_close()
    evs = read_events(j, 1000)
    print("stalled camera:", [(e["type"], e["rule"], e["frame"], e["evidence"].get("no_frame_for_s")) for e in evs])
    assert frames == 200
    raised = {e["rule"]: e for e in evs if e["type"] == "raised"}
    assert set(raised) == {"source_lost", "face_lost"}
    assert all(e["frame"] == -1 for e in raised.values())  # raised while no frame arrived (engine ticks)
    assert raised["source_lost"]["evidence"]["no_frame_for_s"] >= 2.0
    assert {e["rule"] for e in evs if e["type"] == "cleared"} == {"source_lost", "face_lost"}
