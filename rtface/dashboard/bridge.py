"""The dashboard's two socket threads: the stream subscriber and the alert client.

- :class:`StreamThread` owns a :class:`rtface.transport.Subscriber` (strict decoding, size limits, gap counting)
  and feeds every message to the :class:`~rtface.dashboard.view.DashboardView`; while nothing arrives it ticks the
  view every 0.5 s so the page sees the stream go stale.
- :class:`AlertThread` owns an :class:`rtface.transport.alert_client.AlertClient` (each alert item once, acks of
  receipt) and performs the page's Acknowledge requests through it (:meth:`AlertThread.acknowledge`, any thread:
  the request is queued and answered through a callback).

Neither thread ever waits for a browser: the view keeps only the latest state, and each browser is sent the newest
state when it is ready for one (:mod:`rtface.dashboard.server`), so a slow browser never slows the engine or the
other browsers.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from rtface.dashboard.view import DashboardView
from rtface.errors import TransportError
from rtface.transport.wire import TOPIC_PREFIX

log = logging.getLogger("rtface.dashboard")


class StreamThread(threading.Thread):
    def __init__(self, view: DashboardView, endpoint: str, topics: tuple[str, ...] = (TOPIC_PREFIX,)) -> None:
        super().__init__(name="dashboard-stream", daemon=True)
        self.view, self.endpoint, self.topics = view, endpoint, topics
        self._stop_ev = threading.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._stop_ev.set()

    def run(self) -> None:
        from rtface.transport.subscriber import Subscriber

        try:
            with Subscriber(self.endpoint, topics=self.topics, rcvhwm=1000) as sub:
                last_tick = time.monotonic()
                while not self._stop_ev.is_set():
                    try:
                        got = sub.recv(timeout_s=0.1)
                    except TransportError:
                        got = None  # counted in sub.malformed; shown on the page
                    counters = {"received": sub.received, "missed_frames": sub.missed_frames,
                                "index_gaps": sub.index_gaps, "malformed": sub.malformed,
                                "reconnects": sub.reconnects}
                    now = time.monotonic()
                    if got is not None:
                        self.view.on_message(got[0], got[1], counters)
                        last_tick = now
                    elif now - last_tick >= 0.5:
                        self.view.tick(counters)
                        last_tick = now
        except BaseException as exc:  # noqa: BLE001 - shown on the page and logged, never silent
            self.error = exc
            log.error("dashboard stream thread stopped: %s", exc)


class AlertThread(threading.Thread):
    def __init__(self, view: DashboardView, endpoint: str, *, token: str = "", name: str | None = None) -> None:
        super().__init__(name="dashboard-alerts", daemon=True)
        self.view, self.endpoint, self.token, self.listener_name = view, endpoint, token, name
        self._stop_ev = threading.Event()
        self._requests: queue.Queue = queue.Queue(maxsize=256)
        self.acks_sent = 0
        self.error: BaseException | None = None

    def stop(self) -> None:
        self._stop_ev.set()

    def acknowledge(self, alert_id: int, by: str, done: Callable[[dict[str, Any]], None]) -> bool:
        """Queue an acknowledgement (any thread); ``done(reply)`` is called from the alert thread with
        ``{"ok": True, "result": {...}}`` or ``{"ok": False, "error": str}``. False when too many are queued."""
        try:
            self._requests.put_nowait((int(alert_id), by, done))
            return True
        except queue.Full:
            return False

    def run(self) -> None:
        from rtface.transport.alert_client import AlertClient

        try:
            with AlertClient(self.endpoint, name=self.listener_name, token=self.token,
                             offline_needs_contact=True) as c:
                welcomed = False
                while not self._stop_ev.is_set():
                    self._serve_requests(c)
                    item = c.recv(timeout_s=0.1)
                    if item is not None:
                        self.view.on_alert_item(item)
                    if c.auth_error:
                        self.view.set_channel(state="refused", error=c.auth_error)
                    elif not welcomed and c.journal is not None:
                        welcomed = True
                        self.view.set_channel(state="connected", journal=c.journal, error=None)
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            log.error("dashboard alert thread stopped: %s", exc)
            self.view.set_channel(state="failed", error=str(exc))

    def _serve_requests(self, c) -> None:
        while True:
            try:
                alert_id, by, done = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                res = c.acknowledge(alert_id, by, timeout_s=5.0)
                reply = {"ok": True, "result": res}
                self.acks_sent += 1
            except TransportError as exc:
                reply = {"ok": False, "error": str(exc)}
            try:
                done(reply)
            except Exception as exc:  # noqa: BLE001 - a browser that went away
                log.info("acknowledge reply not delivered: %s", exc)
