"""Alert channel messages: validation, fuzzing of the parsers, and the channel's bind and token rules (real
sockets on loopback, a real journal behind a real alert service)."""
from __future__ import annotations

import random

import msgpack
import pytest

from rtface.alerts.journal import Journal
from rtface.alerts.rules import RuleSpec
from rtface.alerts.service import AlertService, ChannelSettings
from rtface.alerts.signals import SignalReader
from rtface.errors import TransportError
from rtface.transport.alert_client import AlertClient
from rtface.transport.alert_wire import MalformedMessage, parse_request, parse_server

P = msgpack.packb


def test_requests_are_checked_field_by_field():
    assert parse_request(P({"type": "hello", "v": 1, "listener": "station-1", "durable": True}))["type"] == "hello"
    assert parse_request(P({"type": "ack", "seqs": [1, 2, 3]}))["seqs"] == [1, 2, 3]
    bad = [b"", b"\xc1", P([1, 2]), P({"type": "reboot"}), P({"type": "hello", "v": 2, "listener": "a"}),
           P({"type": "hello", "v": 1, "listener": "a b"}), P({"type": "hello", "v": 1, "listener": "x" * 65}),
           P({"type": "ack", "seqs": [0]}), P({"type": "ack", "seqs": [True]}), P({"type": "ack", "seqs": "1"}),
           P({"type": "ack", "seqs": list(range(1, 2000))}), P({"type": "ack_alert", "req": 1, "alert_id": 0, "by": "a"}),
           P({"type": "ack_alert", "req": -1, "alert_id": 3, "by": "a"}), P({1: 2}), P({"type": "active"}),
           msgpack.packb(msgpack.ExtType(1, b"x")), P({"type": "ping", "x": "y" * 100_000})]
    for b in bad:
        with pytest.raises(MalformedMessage):
            parse_request(b)


def test_parsers_survive_any_bytes():
    rng = random.Random(3)
    ok = 0
    for i in range(20_000):
        if i % 2:
            data = rng.randbytes(rng.randrange(0, 200))
        else:
            obj = {"type": rng.choice(["hello", "ack", "ping", "event", "welcome", "reply", "who"]),
                   rng.choice(["seqs", "event", "alerts", "req", "ok", "journal"]): rng.choice(
                       [None, 1, -1, "x", [1, "a"], {"seq": "1"}, [{"alert_id": 0}], True, 2**63])}
            data = P(obj)
        for parse in (parse_request, parse_server):
            try:
                parse(data)
                ok += 1
            except MalformedMessage:
                pass
    assert ok > 0  # some were valid; none raised anything but MalformedMessage


def _service(tmp_path, endpoint: str, token: str = "") -> AlertService:
    rule = RuleSpec("lost", "face_count", op="<", threshold=1.0)
    return AlertService((rule,), SignalReader(), Journal(tmp_path / "j.sqlite"), ChannelSettings(endpoint, token))


def test_no_bind_beyond_loopback_without_a_token(tmp_path):
    with pytest.raises(TransportError, match="refusing to bind the alerts socket to tcp://0.0.0.0"):
        _service(tmp_path, "tcp://0.0.0.0:0")


def test_token_is_required_when_set(tmp_path):
    svc = _service(tmp_path, "tcp://127.0.0.1:0", token="s3cret-token-0123456789")
    try:
        bad = AlertClient(svc.endpoint, token="wrong-token-000000000")
        good = AlertClient(svc.endpoint, token="s3cret-token-0123456789")
        for _ in range(100):
            svc.pump()
            bad.recv(timeout_s=0.02)
            good.recv(timeout_s=0.02)
            if bad.auth_error and good.journal:
                break
        assert "authentication failed" in bad.auth_error and good.journal == svc.journal_id
        assert svc.server.auth_failures >= 1
        bad.close()
        good.close()
    finally:
        svc.close(0)


def test_a_listener_connecting_just_after_a_short_run_still_gets_its_alert(tmp_path):
    """Mechanism (real sockets): a run that raised an alert and closes within CONNECT_GRACE_S of binding, with no
    listener yet, waits for the first one (a listener started before the engine reconnects every 0.1 s)."""
    import threading
    import time

    from rtface.records import FrameMeta, FrameResult

    svc = _service(tmp_path, "tcp://127.0.0.1:0")
    svc.on_frame(FrameResult(FrameMeta(0, time.time_ns(), 0, 640, 480, "test"), []))  # no face: "lost" raises
    assert svc.counts["raised"] == 1
    got: list[dict] = []

    def listen() -> None:
        time.sleep(0.3)  # connects after the run has ended its frames
        with AlertClient(svc.endpoint) as c:
            deadline = time.monotonic() + 5
            while not got and time.monotonic() < deadline:
                item = c.recv(timeout_s=0.1)
                if item is not None and item.get("rule") == "lost":
                    got.append(item)
            c.recv(timeout_s=0.3)  # let the acknowledgement go out

    t = threading.Thread(target=listen)
    t.start()
    svc.close(drain_s=2.0)
    t.join(10)
    assert got and got[0]["type"] in ("raised", "active")
