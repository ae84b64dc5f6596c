"""The control channel survives any input and lets only token holders change state.

Mechanism tests on a real ControlServer (real ZeroMQ sockets on random loopback ports, property tests for the
request decoder), then the shipped path: a real ``rtface run`` process attacked over its control port.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import msgpack
import pyarrow.parquet as pq
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtface.errors import TransportError
from rtface.transport.control import ControlServer, send_command
from rtface.transport.guard import TokenAuth
from tests.conftest import SAMPLE_VIDEO, free_port

calls: list[dict] = []


def handler(req: dict):
    calls.append(req)
    return {"echo": req["cmd"]}


@pytest.fixture(scope="module")
def server():
    srv = ControlServer("tcp://127.0.0.1:0", handler, auth=TokenAuth())
    yield srv
    srv.close()


def exchange(srv: ControlServer, frames: list[bytes], kind: int = zmq.DEALER, linger_ms: int = 50,
             wait_s: float = 10.0) -> list[list[bytes]]:
    """Send one message from a fresh peer, let the server poll, return every reply the peer got."""
    ctx = zmq.Context.instance()
    peer = ctx.socket(kind)
    peer.setsockopt(zmq.LINGER, 0)
    peer.connect(srv.endpoint)
    try:
        peer.send_multipart(frames)
        replies: list[list[bytes]] = []
        deadline = time.monotonic() + wait_s
        while not replies and time.monotonic() < deadline:
            srv.poll()
            if peer.poll(20, zmq.POLLIN):
                replies.append(peer.recv_multipart())
        srv.poll()
        while peer.poll(linger_ms, zmq.POLLIN):
            replies.append(peer.recv_multipart())
        return replies
    finally:
        peer.close(linger=0)


def reply_map(reply: list[bytes]) -> dict:
    return msgpack.unpackb(reply[-1], raw=False)


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
def test_any_frames_get_exactly_one_reply_and_the_server_goes_on(server, frames):
    replies = exchange(server, [b"", *frames], linger_ms=5)
    assert len(replies) == 1
    rep = reply_map(replies[0])
    assert set(rep) <= {"ok", "result", "error"} and isinstance(rep["ok"], bool)


@given(st.dictionaries(st.text(max_size=6), st.none() | st.integers(-2**63, 2**63 - 1) | st.text(max_size=30) | st.binary(max_size=8),
                       max_size=5), st.sampled_from(["ping", "stop", "save_neutral", 5, None]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_request_map_gets_one_reply_and_state_changes_need_the_token(server, args, cmd):
    calls.clear()
    req = {**args, "cmd": cmd}
    replies = exchange(server, [b"", msgpack.packb(req, use_bin_type=True)], linger_ms=5)
    assert len(replies) == 1
    rep = reply_map(replies[0])
    if any(isinstance(v, bytes) and v for v in req.values()):  # control requests carry no bin values
        assert not rep["ok"] and "max_bin_len" in rep["error"] and not calls
    elif cmd == "ping":
        assert rep["ok"] and calls and "token" not in calls[-1]
    elif cmd in ("stop", "save_neutral") and req.get("token") != server.auth.token:
        assert not rep["ok"] and "unauthorized" in rep["error"] and not calls
    elif not isinstance(cmd, str):
        assert not rep["ok"] and "malformed" in rep["error"]


def test_the_issue_cases_each_get_an_error_reply(server):
    ok = msgpack.packb({"cmd": "ping"})
    cases = {
        "two-part request (REQ)": ([ok, b"x"], zmq.REQ),
        "not msgpack": ([b"\xc1garbage"], zmq.REQ),
        "not a map": ([msgpack.packb([1, 2])], zmq.REQ),
        "many parts": ([b"", *[b"p"] * 50], zmq.DEALER),
        "ext type": ([b"", msgpack.packb({"cmd": msgpack.ExtType(1, b"x")})], zmq.DEALER),
    }
    for name, (frames, kind) in cases.items():
        replies = exchange(server, frames, kind)
        assert len(replies) == 1, name
        assert not reply_map(replies[0])["ok"], name
    assert reply_map(exchange(server, [ok], zmq.REQ)[0]) == {"ok": True, "result": {"echo": "ping"}}


def test_oversize_message_disconnects_its_sender_only(server):
    replies = exchange(server, [b"", b"\x00" * (1 << 20)], wait_s=1.0)  # 1 MiB > 64 KiB limit
    assert replies == []
    assert reply_map(exchange(server, [msgpack.packb({"cmd": "ping"})], zmq.REQ)[0])["ok"]


def test_send_command_finds_the_token_file_and_a_wrong_token_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("RTFACE_RUNTIME_DIR", str(tmp_path / "run"))
    ready, stop, holder = threading.Event(), threading.Event(), {}

    def serve() -> None:  # the server socket lives in this thread only
        srv = holder["srv"] = ControlServer("tcp://127.0.0.1:0", handler, auth=TokenAuth())
        ready.set()
        while not stop.is_set():
            srv.poll()
            stop.wait(0.005)
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        assert ready.wait(10)
        srv = holder["srv"]
        token_path = srv.auth.file
        assert token_path is not None and token_path.exists()
        assert send_command(srv.endpoint, "stop") == {"echo": "stop"}
        with pytest.raises(TransportError, match="unauthorized"):
            send_command(srv.endpoint, "stop", token="x" * 20)
        monkeypatch.setenv("RTFACE_RUNTIME_DIR", str(tmp_path / "elsewhere"))  # another user's view: no file
        with pytest.raises(TransportError, match="unauthorized"):
            send_command(srv.endpoint, "calibrate_neutral")
        assert send_command(srv.endpoint, "ping") == {"echo": "ping"}  # read-only: no token needed
    finally:
        stop.set()
        t.join(10)
    assert not token_path.exists()  # removed when the server closed


def test_cli_ctl_with_a_garbage_endpoint_is_a_clear_error():
    p = subprocess.run([sys.executable, "-m", "rtface", "ctl", "ping", "--endpoint", "garbage"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "control endpoint 'garbage' is invalid" in p.stderr and "Traceback" not in p.stderr


def _wait_ping(endpoint: str, proc: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if send_command(endpoint, "ping", timeout_s=1.0) == "pong":
                return
        except TransportError:
            pass
    raise AssertionError("engine never answered ping")


def test_a_running_engine_survives_hostile_control_messages(tmp_path, monkeypatch):
    """Shipped path: `rtface run` on the sample in a loop, attacked on its control port, then stopped."""
    ctl = f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "r.parquet"
    monkeypatch.setenv("RTFACE_RUNTIME_DIR", str(tmp_path / "run"))  # the engine's token file goes there
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "rtface", "run", "--source", str(SAMPLE_VIDEO), "--realtime",
                             "--loop", "--no-publish", "--control", ctl, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait_ping(ctl, proc)
        ctx = zmq.Context.instance()
        for frames in ([msgpack.packb({"cmd": "ping"}), b"x"], [b"\x00" * (1 << 20)], [b"\xc1"],
                       [msgpack.packb("cmd")], [msgpack.packb({"cmd": "stop"})]):
            s = ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(ctl)
            s.send_multipart(frames)
            s.poll(2000, zmq.POLLIN)
            s.close(linger=0)
            assert send_command(ctl, "ping", timeout_s=10) == "pong"
        with pytest.raises(TransportError, match="unauthorized"):
            send_command(ctl, "stop", token="wrong-token-wrong-token")
        assert proc.poll() is None
        assert send_command(ctl, "stop") == "stopping"  # the engine's own token, from its token file
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert pq.read_table(out).num_rows > 0
