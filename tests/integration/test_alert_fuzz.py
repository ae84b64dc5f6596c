"""Fuzzed and malformed messages on a live engine's alert socket (real `rtface run` process, real sockets): random
bytes, random msgpack, wrong fields, oversized and many-part messages, raw TCP garbage. The engine keeps running,
counts them, and a listener still gets every alert exactly once."""
from __future__ import annotations

import random
import socket

import msgpack
import zmq

from tests.conftest import free_port
from tests.integration import alert_procs as ap


def _random_obj(rng: random.Random, depth: int = 0):
    k = rng.randrange(8 if depth < 4 else 5)
    if k == 0:
        return rng.randrange(-2**63, 2**64)
    if k == 1:
        return rng.random() * 10 ** rng.randrange(-5, 30)
    if k == 2:
        return "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randrange(40)))
    if k == 3:
        return rng.randbytes(rng.randrange(60))
    if k == 4:
        return rng.choice([None, True, False])
    if k == 5:
        return [_random_obj(rng, depth + 1) for _ in range(rng.randrange(5))]
    if k == 6:
        return {str(_random_obj(rng, depth + 1))[:20]: _random_obj(rng, depth + 1) for _ in range(rng.randrange(5))}
    return {"type": rng.choice(["hello", "ack", "ping", "ack_alert", "active", "bye", "welcome", "x"]),
            **{rng.choice(["v", "listener", "durable", "token", "seqs", "alerts", "req", "alert_id", "by"]):
               _random_obj(rng, depth + 1) for _ in range(rng.randrange(5))}}


def fuzz(endpoint: str, rng: random.Random, n: int) -> None:
    ctx = zmq.Context.instance()
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.LINGER, 0)
    d.connect(endpoint)
    for i in range(n):
        kind = i % 6
        if kind == 0:
            d.send(rng.randbytes(rng.randrange(1, 300)))
        elif kind == 1:
            d.send(msgpack.packb(_random_obj(rng), use_bin_type=True))
        elif kind == 2:
            d.send_multipart([rng.randbytes(8) for _ in range(rng.randrange(2, 40))])
        elif kind == 3:
            d.send(msgpack.packb({"type": "ack", "seqs": [rng.randrange(-5, 10**6) for _ in range(50)]}))
        elif kind == 4:
            d.send(msgpack.packb({"type": "hello", "v": 1, "listener": "x" * rng.randrange(0, 200),
                                  "durable": rng.choice([True, "yes", 1])}))
        else:
            d.send(msgpack.packb({"type": "ack_alert", "req": rng.randrange(10), "alert_id": rng.randrange(-3, 10**9),
                                  "by": rng.choice(["a", "", "b" * 100, 5])}))
    big = ctx.socket(zmq.DEALER)  # over the size limit: ZeroMQ drops this peer's connection
    big.setsockopt(zmq.LINGER, 0)
    big.connect(endpoint)
    big.send(b"\x81\xa4type" + b"x" * (1 << 20))
    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    for _ in range(20):  # not ZeroMQ at all
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(rng.randbytes(rng.randrange(1, 4000)))
    d.close()
    big.close()


def test_fuzzed_alert_socket_never_stops_the_engine(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    journal = tmp_path / "j.sqlite"
    cfg = ap.toggle_config(tmp_path, ep, journal, faces=2, period=5, fps=50)
    out = tmp_path / "l.jsonl"
    lst = ap.listener(ep, "station1", out, tmp_path / "l.log")
    eng = ap.engine(cfg, 600, tmp_path / "engine.log")  # 12 s
    try:
        ap.go(tmp_path, journal, {"station1"})
        fuzz(ep, random.Random(9), 3000)
        assert eng.wait(120) == 0, (tmp_path / "engine.log").read_text()[-3000:]
        counts = ap.wait_for(lambda: ap.try_check(journal, out, "station1"), 60, "the listener to have every event")
    finally:
        ap.kill(lst)
        ap.kill(eng)
    summary = [ln for ln in (tmp_path / "engine.log").read_text().splitlines() if ln.startswith("alerts:")]
    print("fuzz:", counts, summary)
    malformed = int(summary[0].rsplit("malformed ", 1)[1])
    assert malformed >= 1000 and counts["raised"] >= 50
