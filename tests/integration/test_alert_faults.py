"""Fault tests of the alert channel with real processes on loopback: `rtface run` engines and `rtface alerts listen`
listeners, killed with SIGKILL, stopped with SIGSTOP, restarted. The engine's alerts come from the real alerts
stage, journal and channel, driven by a test stage whose signal toggles at a known rate (mechanism: the rules here
are trivial on purpose). Every alert raised must reach every listener exactly once, none lost: counted from the
engine's journal and each listener's --log. No timing assertions: conditions are waited for with generous limits.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from tests.conftest import free_port
from tests.integration import alert_procs as ap


def _raised(journal):
    return sum(1 for e in ap.journal_events(journal) if e["type"] == "raised")


def test_listener_killed_and_restarted_mid_run(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    journal = tmp_path / "j.sqlite"
    cfg = ap.toggle_config(tmp_path, ep, journal, faces=2, period=5, fps=50)
    out = tmp_path / "l1.jsonl"
    lst = ap.listener(ep, "station1", out, tmp_path / "l1.log")
    eng = ap.engine(cfg, 1000, tmp_path / "engine.log")  # 20 s at 50 fps, ~10 alerts/s
    try:
        ap.go(tmp_path, journal, {"station1"})
        ap.wait_for(lambda: len(ap.log_items(out)) >= 30, 60, "the listener to show 30 items")
        ap.kill(lst)  # SIGKILL, mid-run
        killed_at = _raised(journal)
        ap.wait_for(lambda: _raised(journal) >= killed_at + 20, 60, "20 alerts raised while the listener is dead")
        lst = ap.listener(ep, "station1", out, tmp_path / "l1.log")  # same name, same log
        assert eng.wait(120) == 0, (tmp_path / "engine.log").read_text()[-3000:]
        counts = ap.wait_for(lambda: ap.try_check(journal, out, "station1"), 60, "the restarted listener to catch up")
    finally:
        ap.kill(lst)
        ap.kill(eng)
    print("listener kill/restart:", counts)
    assert counts["raised"] >= 100



def test_engine_killed_and_restarted_on_its_journal(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    journal = tmp_path / "j.sqlite"
    cfg = ap.toggle_config(tmp_path, ep, journal, faces=2, period=5, fps=50)
    out = tmp_path / "l.jsonl"
    lst = ap.listener(ep, "station1", out, tmp_path / "l.log")
    eng = ap.engine(cfg, 100_000, tmp_path / "engine1.log")
    try:
        ap.go(tmp_path, journal, {"station1"})
        ap.wait_for(lambda: _raised(journal) >= 40, 60, "40 alerts in the journal")
        ap.kill(eng)  # SIGKILL: whatever was journaled but not yet delivered must come from the next engine
        at_kill = _raised(journal)
        # the listener notices: its own "monitor offline" alert
        ap.wait_for(lambda: any(i.get("rule") == "monitor_offline" and i["type"] == "raised"
                                for i in ap.log_items(out)), 30, "the listener to raise monitor_offline")
        eng = ap.engine(cfg, 500, tmp_path / "engine2.log")  # same journal, same endpoint
        assert eng.wait(120) == 0, (tmp_path / "engine2.log").read_text()[-3000:]
        counts = ap.wait_for(lambda: ap.try_check(journal, out, "station1"), 60, "the listener to get every event")
        local = [i for i in ap.log_items(out) if i.get("local")]
    finally:
        ap.kill(lst)
        ap.kill(eng)
    print("engine kill/restart:", counts, "raised before the kill:", at_kill)
    assert counts["raised"] > at_kill
    assert [i["type"] for i in local][:2] == ["raised", "cleared"]  # offline while no engine, cleared by the new one


def test_two_listeners_one_stops_reading_for_30_s(tmp_path):
    ep = f"tcp://127.0.0.1:{free_port()}"
    journal = tmp_path / "j.sqlite"
    cfg = ap.toggle_config(tmp_path, ep, journal, faces=2, period=5, fps=50)
    out1, out2 = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    l1 = ap.listener(ep, "station_a", out1, tmp_path / "a.log")
    l2 = ap.listener(ep, "station_b", out2, tmp_path / "b.log")
    eng = ap.engine(cfg, 2000, tmp_path / "engine.log")  # 40 s at 50 fps (b is frozen from ~2 s to ~32 s)
    try:
        ap.go(tmp_path, journal, {"station_a", "station_b"})
        ap.wait_for(lambda: len(ap.log_items(out2)) >= 20, 60, "listener b to show 20 items")
        ap.kill(l2, signal.SIGSTOP)  # stops reading (the whole process is frozen) ...
        stopped_at = _raised(journal)
        shown_a = len(ap.log_items(out1))
        time.sleep(30)  # ... for 30 s (the scenario, not an assertion)
        ap.kill(l2, signal.SIGCONT)
        during = _raised(journal) - stopped_at
        assert len(ap.log_items(out1)) > shown_a  # the other listener went on meanwhile
        assert eng.wait(180) == 0, (tmp_path / "engine.log").read_text()[-3000:]
        c1 = ap.wait_for(lambda: ap.try_check(journal, out1, "station_a"), 60, "listener a to have every event")
        c2 = ap.wait_for(lambda: ap.try_check(journal, out2, "station_b"), 60, "listener b to have every event")
    finally:
        for p in (l1, l2, eng):
            ap.kill(p, signal.SIGCONT)
            ap.kill(p)
    print("two listeners:", c1, c2, "raised while b was stopped:", during)
    assert during >= 100 and c1["raised"] == c2["raised"]


def test_one_listener_on_two_engines_gets_every_alert_of_each_once(tmp_path):
    """`rtface alerts listen --camera a=EP1 --camera b=EP2`: one listener process on two engines' acknowledged
    channels (one engine per camera, as beside `rtface hub`): each engine's every alert exactly once, each line
    labelled with its camera, one log per camera."""
    engines, lst = {}, None
    eps = {c: f"tcp://127.0.0.1:{free_port()}" for c in ("a", "b")}
    for cam in eps:
        d = tmp_path / cam
        d.mkdir()
        cfg = ap.toggle_config(d, eps[cam], d / "j.sqlite", faces=1, period=5, fps=50)
        engines[cam] = (d, ap.engine(cfg, 500, d / "engine.log"))
    out = tmp_path / "station.jsonl"
    lst = ap.start(["alerts", "listen", "--camera", f"a={eps['a']}", "--camera", f"b={eps['b']}",
                    "--name", "station", "--log", str(out)], tmp_path / "station.out")
    try:
        for cam, (d, _) in engines.items():
            ap.go(d, d / "j.sqlite", {"station"})
        for cam, (d, eng) in engines.items():
            assert eng.wait(120) == 0, (d / "engine.log").read_text()[-3000:]
        counts = {cam: ap.wait_for(lambda cam=cam: ap.try_check(tmp_path / cam / "j.sqlite",
                                                                 tmp_path / f"station.jsonl.{cam}", "station"),
                                   60, f"the listener to show every alert of camera {cam}")
                  for cam in engines}
    finally:
        ap.kill(lst, signal.SIGINT)
        for _, eng in engines.values():
            ap.kill(eng)
    print("two engines, one listener:", counts)
    assert all(c["raised"] >= 10 for c in counts.values())
    shown = (tmp_path / "station.out").read_text()
    assert "[a] ALERT raised" in shown and "[b] ALERT raised" in shown


def test_listen_camera_option_names_a_bad_value(tmp_path):
    p = subprocess.run([sys.executable, "-m", "rtface", "alerts", "listen", "--camera", "nocamera"],
                       capture_output=True, text=True, timeout=60, cwd=ap.REPO)
    assert p.returncode == 2 and "--camera 'nocamera'" in p.stderr and "Traceback" not in p.stderr, p.stderr
