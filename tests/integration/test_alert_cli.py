"""`rtface alerts listen | active | ack` and `rtface listen` against a live `rtface run` (real processes, the
packaged default config on a real video): the face-lost alert is shown, listed, acknowledged by a person, and the
acknowledgement reaches the listeners; `rtface listen` shows alerts and its own monitor-offline alert."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from rtface.alerts.journal import read_events
from rtface.config import CONFIG_DIR
from tests.conftest import VIDEO, free_port
from tests.integration import alert_procs as ap


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtface", *args], capture_output=True, text=True, timeout=60,
                          cwd=ap.REPO)


def test_listen_active_ack_on_a_live_engine(tmp_path):
    alerts, pub = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    j = tmp_path / "j.sqlite"
    cfg = tmp_path / "cfg.toml"  # the packaged default config; face_lost kept open while the test acknowledges it
    cfg.write_text((CONFIG_DIR / "default.toml").read_text() + '\n[[stages.rules]]\nname = "face_lost"\n'
                   'clear_s = 600.0\n')
    log = tmp_path / "nurse.jsonl"
    nurse = ap.listener(alerts, "nurse", log, tmp_path / "nurse.out")
    watch = ap.start(["listen", "--endpoint", pub, "--alerts", alerts, "--topic", "rtface.v1.stats"],
                     tmp_path / "listen.out")
    eng = ap.start(["run", "--config", str(cfg), "--source", str(VIDEO / "face_noface.mov"), "--realtime", "--loop",
                    "--endpoint", pub, "--alerts-endpoint", alerts, "--journal", str(j), "--no-control"],
                   tmp_path / "engine.out")
    try:
        ap.wait_for(lambda: [i for i in ap.log_items(log) if i.get("rule") == "face_lost"], 90,
                    "the nurse's listener to show the face-lost alert")
        act = cli("alerts", "active", "--endpoint", alerts, "--json")
        assert act.returncode == 0, act.stderr
        open_ = [json.loads(line) for line in act.stdout.splitlines()]
        assert [(a["rule"], a["state"]) for a in open_] == [("face_lost", "active")]
        aid = open_[0]["alert_id"]
        ack = cli("alerts", "ack", str(aid), "--by", "nurse_kim", "--endpoint", alerts)
        assert ack.returncode == 0 and f"alert {aid} acknowledged by nurse_kim" in ack.stdout, ack.stderr
        bad = cli("alerts", "ack", "999", "--endpoint", alerts)
        assert bad.returncode == 2 and "no open alert with id 999" in bad.stderr and "Traceback" not in bad.stderr
        ap.wait_for(lambda: [i for i in ap.log_items(log) if i["type"] == "acknowledged"], 30,
                    "the acknowledgement to reach the listener")
        ap.kill(eng, signal.SIGINT)
        ap.wait_for(lambda: "monitor_offline" in (tmp_path / "listen.out").read_text(), 30,
                    "rtface listen to raise monitor offline")
    finally:
        for p in (nurse, watch, eng):
            ap.kill(p)
    shown = (tmp_path / "listen.out").read_text()
    print(shown[-2000:])
    assert f"ALERT raised #{aid} medium face_lost camera @ face_noface.mov" in shown
    assert f"ALERT acknowledged #{aid} medium face_lost" in shown and "by nurse_kim" in shown
    assert "ALERT raised monitor_offline high (this listener)" in shown
    kinds = [(e["type"], e.get("by", "")) for e in read_events(j, 1000) if e["alert_id"] == aid]
    assert kinds[0] == ("raised", "") and ("acknowledged", "nurse_kim") in kinds
    assert ("delivered", "nurse") in kinds  # and to `rtface listen`'s own (ephemeral) listener:
    assert any(k == "delivered" and b.startswith("listener-") for k, b in kinds)
