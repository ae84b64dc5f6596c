"""Socket hardening helpers (rtface.transport.guard): pure logic, plus property tests of the strict decoder."""
from __future__ import annotations

import logging
import os

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtface.errors import TransportError
from rtface.transport.guard import (
    CONTROL_LIMITS, STREAM_LIMITS, MalformedMessage, TokenAuth, check_bind, is_loopback, parse_endpoint,
    read_token, split_envelope, token_file, unpack, unpack_map,
)

plain = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=30)


@given(st.binary(max_size=512))
@settings(max_examples=400, deadline=None)
def test_unpack_raises_only_malformed_on_any_bytes(data):
    for limits in (CONTROL_LIMITS, STREAM_LIMITS):
        try:
            obj = unpack(data, limits)
        except MalformedMessage:
            continue
        assert msgpack.unpackb(msgpack.packb(obj, use_bin_type=True), raw=False) == obj or obj != obj


@given(plain)
@settings(max_examples=200, deadline=None)
def test_unpack_accepts_every_plain_document_within_limits(obj):
    assert unpack(msgpack.packb(obj, use_bin_type=True), STREAM_LIMITS) == obj


@pytest.mark.parametrize("doc, why", [
    (msgpack.ExtType(5, b"x"), "ext"),
    (msgpack.Timestamp(1, 0), "ext"),
    ({1: "int key"}, "int is not allowed for map key"),
    (list(range(300)), "max_array_len"),
    ({"s": "x" * 5000}, "max_str_len"),
    ({"b": b"x"}, "max_bin_len"),
])
def test_control_limits_reject(doc, why):
    with pytest.raises(MalformedMessage, match=why):
        unpack(msgpack.packb(doc, use_bin_type=True), CONTROL_LIMITS)


def test_nesting_and_trailing_bytes_and_type():
    with pytest.raises(MalformedMessage, match="nesting"):
        unpack(b"\x91" * 40 + b"\xc0", STREAM_LIMITS)
    with pytest.raises(MalformedMessage, match="ExtraData"):
        unpack(msgpack.packb({"a": 1}) + b"\x00", STREAM_LIMITS)
    with pytest.raises(MalformedMessage, match="expected a msgpack map"):
        unpack_map(msgpack.packb([1]), CONTROL_LIMITS, "request")
    with pytest.raises(MalformedMessage, match="at most 65536"):
        unpack(b"\x00" * 70000, CONTROL_LIMITS)


def test_split_envelope_req_and_dealer_peers():
    assert split_envelope([b"id", b"", b"body"]) == ([b"id", b""], [b"body"])
    assert split_envelope([b"id", b"body", b"x"]) == ([b"id"], [b"body", b"x"])
    assert split_envelope([b"id", b"", b"a", b"b"]) == ([b"id", b""], [b"a", b"b"])
    assert split_envelope([b"id"]) == ([b"id"], [])


@pytest.mark.parametrize("ep", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:", "tcp://127.0.0.1:-1", "tcp://:5",
                                "garbage", "tcp://127.0.0.1:05", "udp://127.0.0.1:5", "tcp://127.0.0.1:5x", ""])
def test_parse_endpoint_rejects_with_the_endpoint_named(ep):
    with pytest.raises(TransportError, match="is invalid"):
        parse_endpoint(ep)


def test_parse_endpoint_forms():
    assert parse_endpoint("tcp://127.0.0.1:0").port == 0
    assert parse_endpoint("tcp://127.0.0.1:*").port == 0
    assert parse_endpoint("tcp://[::1]:5556").host == "::1"
    assert parse_endpoint("ipc:///tmp/x").transport == "ipc"
    with pytest.raises(TransportError, match="only be bound"):
        parse_endpoint("tcp://127.0.0.1:0", for_bind=False)


@pytest.mark.parametrize("ep, local", [
    ("tcp://127.0.0.1:5", True), ("tcp://127.8.0.1:5", True), ("tcp://localhost:5", True), ("tcp://[::1]:5", True),
    ("tcp://lo:5", True), ("ipc:///tmp/s", True), ("inproc://x", True), ("tcp://*:5", False),
    ("tcp://0.0.0.0:5", False), ("tcp://192.168.1.5:5", False), ("tcp://eth0:5", False), ("tcp://[::]:5", False),
])
def test_is_loopback(ep, local):
    assert is_loopback(ep) is local


def test_check_bind_warns_and_refuses(caplog):
    with caplog.at_level(logging.WARNING, logger="rtface.transport"):
        check_bind("tcp://127.0.0.1:5555", "publisher", authenticated=False)
        assert not caplog.records
        check_bind("tcp://0.0.0.0:5555", "publisher", authenticated=False)
        assert "reachable from other machines" in caplog.text
        check_bind("tcp://0.0.0.0:5556", "control", authenticated=True)
    for role in ("control", "alerts"):
        with pytest.raises(TransportError, match=f"refusing to bind the {role} socket"):
            check_bind("tcp://0.0.0.0:5556", role, authenticated=False)


def test_token_auth_file_and_compare(tmp_path, monkeypatch):
    monkeypatch.setenv("RTFACE_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("RTFACE_CONTROL_TOKEN", raising=False)
    auth = TokenAuth()
    assert len(auth.token) >= 40 and auth.token != TokenAuth().token
    assert auth.check(auth.token) and not auth.check(auth.token[:-1]) and not auth.check(None)
    assert not auth.check(123) and auth.rejected == 3
    path = auth.write_file("tcp://127.0.0.1:6001")
    assert path == token_file("tcp://localhost:6001")
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(path.parent).st_mode & 0o777 == 0o700
    assert read_token("tcp://127.0.0.1:6001") == auth.token
    assert read_token("tcp://127.0.0.1:6002") is None
    auth.remove_file()
    assert not path.exists()
    with pytest.raises(TransportError, match="at least 16"):
        TokenAuth("short")
    monkeypatch.setenv("RTFACE_CONTROL_TOKEN", "x" * 20)
    assert TokenAuth.from_settings("y" * 20).token == "x" * 20 and read_token("tcp://127.0.0.1:1") == "x" * 20


def test_token_folder_must_be_private(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir(mode=0o777)
    os.chmod(run, 0o777)
    monkeypatch.setenv("RTFACE_RUNTIME_DIR", str(run))
    with pytest.raises(PermissionError, match="can be written by other users"):
        TokenAuth().write_file("tcp://127.0.0.1:6003")
