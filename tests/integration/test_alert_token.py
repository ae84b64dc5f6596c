"""The alert channel's token follows the control channel's convention (rtface/transport/guard.py TokenAuth):
``$RTFACE_ALERTS_TOKEN``, else the configured token, ``"auto"`` = random per run; written to a per-user 0600 file
for the bound endpoint that listeners of the same user read. Real sockets, a real journal and service, and the
real Engine with the packaged config; beyond loopback the channel is bound to the wildcard address and reached
through this machine's non-loopback address when it has one."""
from __future__ import annotations

import dataclasses
import os
import socket
import stat
import threading

import pytest

from rtface.alerts.journal import Journal
from rtface.alerts.rules import RuleSpec
from rtface.alerts.service import AlertService, ChannelSettings
from rtface.alerts.signals import SignalReader
from rtface.config import load_config, with_overrides
from rtface.graph.runner import Engine
from rtface.transport.alert_channel import alert_token
from rtface.transport.alert_client import AlertClient
from rtface.transport.guard import parse_endpoint, token_file
from tests.conftest import SAMPLE_VIDEO


@pytest.fixture(autouse=True)
def runtime(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("RTFACE_RUNTIME_DIR", str(d))
    monkeypatch.delenv("RTFACE_ALERTS_TOKEN", raising=False)
    return d


def _host_ip() -> str:
    """A non-loopback IPv4 address of this machine (127.0.0.1 if it has none: the bind is still beyond loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            ip = "127.0.0.1"
    return ip


def _outcome(svc_pump, clients: list[AlertClient], rounds: int = 200) -> None:
    for _ in range(rounds):
        svc_pump()
        for c in clients:
            c.recv(timeout_s=0.01)
        if all(c.auth_error or c.journal for c in clients):
            return


def test_beyond_loopback_listeners_without_or_with_a_wrong_token_are_refused(tmp_path, runtime):
    token = alert_token("auto")
    assert len(token) >= 40 and token != alert_token("auto")  # random per run
    rule = RuleSpec("lost", "face_count", op="<", threshold=1.0)
    svc = AlertService((rule,), SignalReader(), Journal(tmp_path / "j.sqlite"),
                       ChannelSettings("tcp://0.0.0.0:0", token))
    try:
        path = token_file(svc.endpoint, "alerts")
        assert path.read_text().strip() == token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent == runtime
        ep = f"tcp://{_host_ip()}:{parse_endpoint(svc.endpoint).port}"
        none, wrong, right = AlertClient(ep), AlertClient(ep, token="w" * 43), AlertClient(ep, token=token)
        _outcome(svc.pump, [none, wrong, right])
        assert "authentication failed" in (none.auth_error or "") and none.journal is None
        assert "authentication failed" in (wrong.auth_error or "") and wrong.journal is None
        assert right.auth_error is None and right.journal == svc.journal_id
        assert svc.server.auth_failures >= 2
        for c in (none, wrong, right):
            c.close()
    finally:
        svc.close(0)
    assert not path.exists()  # removed at close


def test_env_token_wins_and_an_empty_setting_keeps_loopback_only(monkeypatch):
    assert alert_token("") == ""
    monkeypatch.setenv("RTFACE_ALERTS_TOKEN", "from-the-environment-0123")
    assert alert_token("") == alert_token("auto") == alert_token("configured-token-0123456") \
        == "from-the-environment-0123"


def test_engine_with_token_auto_same_user_listener_finds_the_token_file(tmp_path):
    cfg = with_overrides(load_config(), source={"spec": str(SAMPLE_VIDEO), "realtime": True, "loop": True},
                         publish={"enabled": False}, control={"enabled": False}, engine={"max_frames": 300})
    cfg = dataclasses.replace(cfg, stages=tuple(
        dataclasses.replace(s, params=dataclasses.replace(s.params, journal=str(tmp_path / "j.sqlite"),
                                                          endpoint="tcp://127.0.0.1:0", token="auto"))
        if s.kind == "alerts" else s for s in cfg.stages))
    with Engine(cfg) as e:
        e.open()
        ep = e.stage("alert_endpoint").alert_endpoint()
        path = token_file(ep, "alerts")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stop = threading.Event()

        def consume() -> None:
            for _ in e.results():
                if stop.is_set():
                    e.stop()

        th = threading.Thread(target=consume, daemon=True)
        th.start()
        try:
            mine, wrong = AlertClient(ep), AlertClient(ep, token="not-this-engines-token-000")
            _outcome(lambda: None, [mine, wrong], rounds=1000)
            assert mine.auth_error is None and mine.journal  # welcomed with the token read from the file
            assert "authentication failed" in (wrong.auth_error or "")
            mine.close()
            wrong.close()
        finally:
            stop.set()
            th.join(60)
    assert not path.exists()
    assert os.environ.get("RTFACE_ALERTS_TOKEN") is None
