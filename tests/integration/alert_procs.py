"""Helpers for the alert tests that run real ``rtface`` processes: engines driven by a toggling test stage, durable
listeners writing JSON-lines logs, journal readers, and waiting for conditions (never for fixed times)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
NOTIFY = ("raised", "acknowledged", "escalated", "cleared")


def wait_for(cond, timeout_s: float, what: str, poll_s: float = 0.1):
    """Poll ``cond()`` until it returns something truthy (returned) or fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def image_folder(tmp: Path, n: int = 4, size: int = 32) -> Path:
    d = tmp / "frames"
    d.mkdir(exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(d / f"{i:03d}.png"), np.full((size, size, 3), 40 * i, np.uint8))
    return d


def toggle_config(tmp: Path, endpoint: str, journal: Path, *, faces: int = 2, period: int = 10, fps: float = 50.0,
                  name: str = "engine.toml", extra_rule: str = "") -> Path:
    """Config: a paced, looping folder of tiny images -> toggle stage -> alerts stage with one rule on ``toggle``
    (raise at 1, clear at 0, no delays), so alerts are raised and cleared at a known rate."""
    frames = image_folder(tmp)
    cfg = tmp / name
    cfg.write_text(f"""
[source]
spec = "{frames}"
realtime = true
loop = true
fps = {fps}

[publish]
enabled = false

[control]
enabled = false

[[stages]]
kind = "tests.integration.stage_plugins:AlertToggleStage"
faces = {faces}
period = {period}
go_file = "{tmp / 'go'}"

[[stages]]
kind = "alerts"
endpoint = "{endpoint}"
journal = "{journal}"
default_rules = false
drain_s = 3.0

[[stages.rules]]
name = "toggle"
signal = "toggle"
threshold = 0.5
priority = "low"
message = "test toggle"
{extra_rule}
""")
    return cfg


def listeners_in(journal: Path) -> set[str]:
    """Durable listeners the engine has registered in its journal."""
    import sqlite3

    if not journal.is_file():
        return set()
    try:
        db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        try:
            return {r[0] for r in db.execute("SELECT name FROM listeners")}
        finally:
            db.close()
    except sqlite3.Error:
        return set()


def go(tmp: Path, journal: Path, names: set[str]) -> None:
    """Wait until every listener in ``names`` is registered, then let the toggle stage start raising alerts."""
    wait_for(lambda: names <= listeners_in(journal), 60, f"listeners {sorted(names)} to say hello")
    (tmp / "go").write_text("go")


def start(args: list[str], log: Path) -> subprocess.Popen:
    """``python -m rtface ARGS`` from the repository root, stdout+stderr into ``log``."""
    fh = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "rtface", *args], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"})


def engine(cfg: Path, max_frames: int, log: Path) -> subprocess.Popen:
    return start(["run", "--config", str(cfg), "--max-frames", str(max_frames)], log)


def listener(endpoint: str, name: str, out: Path, log: Path) -> subprocess.Popen:
    return start(["alerts", "listen", "--endpoint", endpoint, "--name", name, "--log", str(out), "--json"], log)


def kill(p: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` and wait for the exit (30 s). A process still alive after a SIGTERM/SIGINT gets SIGABRT, so its
    log ends with every thread's Python stack (faulthandler), and the test fails saying so."""
    if p.poll() is None:
        p.send_signal(sig)
    if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGABRT)
            p.wait(30)
            raise AssertionError(f"{' '.join(map(str, p.args[3:]))} did not exit within 30 s of "
                                 f"{signal.Signals(sig).name}; its log ends with its stacks") from None


def journal_events(path: Path) -> list[dict]:
    from rtface.alerts.journal import read_events

    return read_events(path, limit=10_000_000) if path.is_file() else []


def log_items(path: Path) -> list[dict]:
    """Items a listener showed (its --log file), skipping a line cut short by a kill."""
    out = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("shown_as") == "active":
            continue  # a redelivered raise of an alert already shown from a snapshot: a dedup marker
        out.append(item)
    return out


def check_exactly_once(journal: Path, log: Path, listener_name: str) -> dict[str, int]:
    """Every event of the journal meant for listeners is in the listener's log exactly once, and every raised
    alert was shown exactly once (as its raise, or from a snapshot). Returns the counts."""
    evs = [e for e in journal_events(journal) if e["type"] in NOTIFY]
    items = [i for i in log_items(log) if not i.get("local")]
    shown_events = [(i["journal"], i["seq"]) for i in items if i["type"] != "active"]
    assert len(shown_events) == len(set(shown_events)), f"{listener_name}: an event was shown twice"
    raised_ids = {e["alert_id"] for e in evs if e["type"] == "raised"}
    shown_alerts = [i["alert_id"] for i in items if i["type"] in ("raised", "active")]
    assert len(shown_alerts) == len(set(shown_alerts)), f"{listener_name}: an alert was shown twice"
    assert set(shown_alerts) == raised_ids, (f"{listener_name}: {len(raised_ids - set(shown_alerts))} raised alerts "
                                             f"never shown")
    via_snapshot = {i["alert_id"] for i in items if i["type"] == "active"}
    expected = {(e["journal"], e["seq"]) for e in evs if not (e["type"] == "raised" and e["alert_id"] in via_snapshot)}
    missing = expected - set(shown_events)
    assert not missing, f"{listener_name}: {len(missing)} of {len(expected)} events never shown"
    return {"events": len(evs), "raised": len(raised_ids), "shown": len(shown_events),
            "via_snapshot": len(via_snapshot)}


def try_check(journal: Path, log: Path, listener_name: str) -> dict[str, int] | None:
    """:func:`check_exactly_once`, or None while the listener has not caught up yet (for :func:`wait_for`)."""
    try:
        return check_exactly_once(journal, log, listener_name)
    except AssertionError:
        return None
