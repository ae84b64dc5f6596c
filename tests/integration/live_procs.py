"""Helpers for the dashboard / recorder / LSL tests: a real engine on the sample video with a test alert rule, the
dashboard as a real process (its printed address and token), and headless Chromium. Waiting is always for a
condition, never for a fixed time."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from tests.integration.alert_procs import REPO, start, wait_for

ARTIFACTS = Path(os.environ.get("RTFACE_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
URL_RE = re.compile(r"open (http://\S+/\?token=\S+)")


def engine_config(tmp: Path, pub: str, alerts: str, *, realtime: bool = True, source: str = "sample",
                  wait_subscribers: int = 0, clear_s: float = 60.0, latching: bool = True,
                  name: str = "engine.toml") -> Path:
    """The packaged default pipeline on ``source`` plus a test rule that a broad smile raises (the sample video's
    smile: happiness >= 0.5), by default latching and held for ``clear_s`` after it ends, so a person can acknowledge
    it (not latching with ``clear_s`` 0: raised again at every smile of the looping sample)."""
    cfg = tmp / name
    cfg.write_text(f"""
[source]
spec = "{source}"
realtime = {str(realtime).lower()}

[publish]
endpoint = "{pub}"
sndhwm = 10000
wait_subscribers = {wait_subscribers}

[control]
enabled = false

[[stages]]
kind = "landmarks"
[[stages]]
kind = "canonical"
[[stages]]
kind = "aus"
[[stages]]
kind = "emotion"
[[stages]]
kind = "eyes"
[[stages]]
kind = "alerts"
endpoint = "{alerts}"
journal = "{tmp / 'journal.sqlite'}"
[[stages.rules]]
name = "smile"
signal = "emotion.happiness"
threshold = 0.5
clear_threshold = 0.3
clear_s = {clear_s}
priority = "high"
latching = {str(latching).lower()}
message = "test rule: a broad smile"
""")
    return cfg


def start_dashboard(endpoint: str, alerts: str, log: Path, *extra: str):
    """``rtface dashboard`` on a random port; returns (process, the printed URL with its token)."""
    p = start(["dashboard", "--endpoint", endpoint, "--alerts", alerts, "--port", "0", *extra], log)

    def url():
        m = URL_RE.search(log.read_text(errors="replace")) if log.exists() else None
        if m is None and p.poll() is not None:
            raise AssertionError(f"the dashboard exited ({p.returncode}):\n{log.read_text(errors='replace')}")
        return m.group(1) if m else None

    return p, wait_for(url, 60, "the dashboard to print its address")


def browser():
    """(sync_playwright, chromium path) or (None, reason to skip)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "playwright is not installed (pip install -c constraints.txt -e '.[test]')"
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None, "no Chromium on PATH (.ci/run installs Debian's chromium)"
    return (sync_playwright, exe), ""


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
