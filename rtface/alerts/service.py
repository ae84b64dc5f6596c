"""The alert service: rules -> lifecycle -> journal (committed first) -> alert channel, driven by the alerts stage.

Time: rule timers run on *rule time*, the frames' media time (``t_media_ns``) made monotonic, so a file processed
offline gives the alerts it gives when played live. While no frame arrives from a live source, ``on_tick`` (wall
clock, from :meth:`rtface.graph.stage.Stage.tick`) extends rule time by the wall time since the last frame's
capture, so "source lost" and "face lost" fire without frames; offline ticks never move rule time.

Per frame: camera signals (``face_count``, ``frame_gap_s``) and each face's signals go through the
:class:`~rtface.alerts.evaluator.Evaluator`; raises and clears become events in the
:class:`~rtface.alerts.lifecycle.AlertBook`; due escalations and faces gone for ``forget_face_s`` are handled; the
events are committed to the :class:`~rtface.alerts.journal.Journal` in one transaction, and only then queued on the
:class:`~rtface.transport.alert_channel.AlertServer`, which is pumped (acks, redelivery, heartbeats).

An engine started on a journal with open alerts re-opens them (the rules then clear them as usual; an alert whose
rule is gone clears with reason ``rule_removed``) and the channel resends whatever durable listeners have not
acknowledged. Owned by the processing thread (the server's socket too).
"""
from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from rtface.alerts.evaluator import Evaluator, Key
from rtface.alerts.journal import Journal
from rtface.alerts.lifecycle import Alert, AlertBook, Ctx
from rtface.alerts.rules import OPS, RuleSpec
from rtface.alerts.signals import SignalReader
from rtface.records import FrameResult
from rtface.transport.alert_wire import event_message

_NS = 1_000_000_000
NAN = math.nan
IDLE_AFTER_NS = 500_000_000  # a live source silent this long counts as "no frame, no face" for the rules
CONNECT_GRACE_S = 1.0  # s after binding during which a closing engine still waits for a first listener


@dataclass(frozen=True)
class ChannelSettings:
    endpoint: str = ""  # "" = no channel (journal only)
    token: str = ""
    heartbeat_s: float = 1.0
    redeliver_s: float = 1.0
    peer_timeout_s: float = 10.0
    max_inflight: int = 256


class AlertService:
    """See the module docstring. ``rules``: enabled rules; ``reader``: signal reader for this pipeline."""

    def __init__(self, rules: tuple[RuleSpec, ...], reader: SignalReader, journal: Journal,
                 channel: ChannelSettings, *, forget_face_s: float = 10.0, patient: str = "",
                 patient_reacquire_widths: float = 1.0) -> None:
        self.rules = {r.name: r for r in rules}
        self._face_rules = [r for r in rules if r.scope == "face"]
        self._cam_rules = [r for r in rules if r.scope == "camera"]
        self._inhibit = {r.name: r.inhibit_parts() for r in rules}
        self.reader = reader
        self.journal = journal
        self.journal_id = journal.journal_id
        self.run_id = uuid.uuid4().hex[:12]
        self.evaluator = Evaluator(rules)
        self.book = AlertBook(journal.next_alert_id)
        self.forget_face_ns = int(forget_face_s * _NS)
        self.patient = None
        if patient.strip():
            from rtface.alerts.patient import PatientTracker

            self.patient = PatientTracker(patient, patient_reacquire_widths)
        self.counts = {k: 0 for k in ("raised", "cleared", "escalated", "acknowledged", "delivered")}
        self.frames = 0
        self.camera: str | None = None
        self._t = 0  # rule time now, ns
        self._offset = 0  # rule time = media time + offset (keeps rule time monotonic across ticks)
        self._ref = (time.time_ns(), 0)  # (wall/capture ns, rule ns) of the last frame (or of the start)
        self._have_frame = False
        self._seen: dict[Key, int] = {}  # face key -> rule time last seen
        self._kinds: dict[int, tuple[int, str]] = {}  # seq -> (alert id, type) of this run's notified events
        self._delivered: list[dict[str, Any]] = []  # delivered events waiting for the next commit
        self._closed_server = None
        self.server = None
        self._restore()  # (before the channel exists: listeners get these events from the journal)
        if channel.endpoint:
            from rtface.transport.alert_channel import AlertServer

            self.server = AlertServer(channel.endpoint, self, token=channel.token, heartbeat_s=channel.heartbeat_s,
                                      redeliver_s=channel.redeliver_s, peer_timeout_s=channel.peer_timeout_s,
                                      max_inflight=channel.max_inflight)
        self._t_bound = time.monotonic()  # when the channel started listening
        self.endpoint = self.server.endpoint if self.server is not None else ""

    # ------------------------------------------------------------------------------------------------ restore
    def _restore(self) -> None:
        ctx = Ctx(0, time.time_ns(), -1, -1)
        events = []
        for d in self.journal.open_alerts():
            a = Alert.from_dict(d)
            self.book.restore(a)
            rule = self.rules.get(a.rule)
            if rule is None:
                events += self.book.retire(a.id, ctx, "rule_removed")
                continue
            a.t_notified_rule_ns = 0  # escalation timer restarts with this run's rule time
            self.evaluator.set_active(rule, (a.camera, a.face_id), a.condition)
            if a.face_id >= 0:
                self._seen[(a.camera, a.face_id)] = 0
        self._commit(events)

    # ------------------------------------------------------------------------------------------------ per frame
    def on_frame(self, result: FrameResult) -> list[dict[str, Any]]:
        """Evaluate every rule on one frame; returns the notified events it caused (short form)."""
        self.pump()  # listeners that said hello before this frame get its events
        m = result.meta
        t = int(m.t_media_ns) + self._offset
        if t < self._t:
            self._offset += self._t - t
            t = self._t
        gap_s = (t - self._ref[1]) / _NS if self._have_frame else 0.0
        self._t, self._ref, self._have_frame = t, (int(m.t_capture_ns), t), True
        self.frames += 1
        cam = m.source
        ctx = Ctx(t, int(m.t_capture_ns), int(m.t_media_ns), int(m.index))
        events: list[dict[str, Any]] = []
        if self.camera is None:
            self.camera = cam
            events += self._adopt_camera(cam, ctx)
        cam_values = {"face_count": float(len(result.faces)), "frame_gap_s": gap_s, "patient_face_count": NAN}
        where: dict[str, Any] = {"frame": int(m.index)}
        if self.patient is not None:
            cam_values["patient_face_count"], pid = self.patient.update(result.faces, m.width, m.height)
            where = {**where, "patient_face_id": pid, "faces_in_view": len(result.faces)}
        for r in self._cam_rules:
            events += self._step(r, (cam, -1), cam_values[r.signal], False, ctx, where)
        for face in result.faces:
            key = (cam, int(face.face_id))
            self._seen[key] = t
            for r in self._face_rules:
                inh = self._inhibit[r.name]
                inhibited = False
                if inh is not None:
                    iv = self.reader.face(face, inh[0])
                    inhibited = math.isfinite(iv) and OPS[inh[1]](iv, inh[2])
                events += self._step(r, key, self.reader.face(face, r.signal), inhibited, ctx,
                                     {"face_id": int(face.face_id), "frame": int(m.index)})
        if len(self._seen) > len(result.faces):
            for key in [k for k, ts in self._seen.items() if t - ts >= self.forget_face_ns]:
                unseen_s = (t - self._seen.pop(key)) / _NS
                self.evaluator.forget(key)
                events += self.book.face_gone(key[0], key[1], ctx, unseen_s)
        events += self.book.escalate_due(self.rules, ctx)
        out = self._commit(events)
        if out:
            self.pump()  # send them now (otherwise the next frame's first pump does the channel's upkeep)
        return out

    def on_tick(self, now_ns: int, live: bool) -> list[dict[str, Any]]:
        """No frame for a while. Live sources silent for at least 0.5 s (``IDLE_AFTER_NS``; shorter gaps are frame
        jitter): advance rule time by the wall time since the last frame and evaluate the camera rules (no face is
        seen, no frame arrives). Always: pump the channel."""
        out: list[dict[str, Any]] = []
        if live and now_ns - self._ref[0] >= IDLE_AFTER_NS:
            t = max(self._ref[1] + (now_ns - self._ref[0]), self._t)
            self._t = t
            ctx = Ctx(t, now_ns, -1, -1)
            cam = self.camera or "source"
            cam_values = {"face_count": 0.0, "frame_gap_s": (now_ns - self._ref[0]) / _NS, "patient_face_count": 0.0}
            events: list[dict[str, Any]] = []
            for r in self._cam_rules:
                events += self._step(r, (cam, -1), cam_values[r.signal], False, ctx,
                                     {"frame": -1, "no_frame_for_s": cam_values["frame_gap_s"]})
            events += self.book.escalate_due(self.rules, ctx)
            out = self._commit(events)
        self.pump()
        return out

    def _adopt_camera(self, cam: str, ctx: Ctx) -> list[dict[str, Any]]:
        """First frame: restored camera-wide alerts of another source clear (reason ``camera_changed``)."""
        events = []
        for a in list(self.book.open.values()):
            if a.face_id < 0 and a.camera != cam:
                self.evaluator.forget((a.camera, -1))
                events += self.book.retire(a.id, ctx, "camera_changed")
        return events

    def _step(self, rule: RuleSpec, key: Key, value: float, inhibited: bool, ctx: Ctx,
              where: dict[str, Any]) -> list[dict[str, Any]]:
        tr = self.evaluator.step(rule, key, ctx.t_rule_ns, value, inhibited)
        if tr is None:
            return []
        ev = {"signal": rule.signal, "value": tr.value, "op": rule.op, "threshold": rule.threshold,
              "clear_threshold": rule.clear_level, "window_s": rule.window_s, "held_s": tr.held_s,
              "onset_s": rule.onset_s, "camera": key[0], **where}
        if tr.kind == "raise":
            return self.book.raise_(rule, key[0], key[1], ctx, ev)
        return self.book.condition_ended(rule.name, key[0], key[1], ctx, ev)

    # ------------------------------------------------------------------------------------------------ journal
    def _commit(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._delivered:
            events, self._delivered = self._delivered + events, []
        changed = self.book.changed
        if not events and not changed:
            return []
        rows = self.journal.append(events, [a.to_dict() for a in changed.values()], event_message)
        changed.clear()
        out = []
        for ev, (seq, body, notify) in zip(events, rows):
            kind = ev["type"]
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if not notify:
                continue
            self._kinds[seq] = (ev["alert_id"], kind)
            if self.server is not None:
                self.server.publish(seq, body)
            out.append({"seq": seq, "alert_id": ev["alert_id"], "type": kind, "rule": ev["rule"],
                        "priority": ev["priority"], "face_id": ev["face_id"]})
        if len(self._kinds) > 200_000:
            for s in list(self._kinds)[:100_000]:
                del self._kinds[s]
        return out

    def _alert_ctx(self, a: Alert | None) -> Ctx:
        cap = a.t_raised_capture_ns if a is not None else time.time_ns()
        return Ctx(self._t, cap, -1, -1)

    # ------------------------------------------------------------------------------------------------ channel
    def pump(self) -> None:
        if self.server is not None:
            self.server.pump()

    @property
    def last_seq(self) -> int:
        return self.journal.last_seq

    def snapshot(self) -> list[dict[str, Any]]:
        return [self.book.open[i].summary() for i in sorted(self.book.open)]

    def cursor(self, name: str) -> int | None:
        return self.journal.cursor(name)

    def notify_seqs_after(self, seq: int) -> list[int]:
        return self.journal.notify_seqs_after(seq)

    def bodies(self, seqs: list[int]) -> dict[int, bytes]:
        return self.journal.bodies(seqs)

    def set_cursors(self, cursors: dict[str, int]) -> None:
        self.journal.set_cursors(cursors)

    def delivered(self, listener: str, seqs: list[int], alert_ids: list[int]) -> None:
        """A listener acknowledged receipt: journal a ``delivered`` event per alert it had not received yet."""
        ids = list(alert_ids)
        for s in seqs:
            kind = self._kinds.get(s) or self.journal.event_kind(s)
            if kind is not None and kind[1] in ("raised", "escalated"):
                ids.append(kind[0])
        for i in ids:
            a = self.book.open.get(i) or self.book.recent.get(i)
            stored = None
            if a is None:
                d = self.journal.alert(i)
                a = stored = Alert.from_dict(d) if d is not None else None
            if a is not None:
                for ev in self.book.delivered(i, listener, self._alert_ctx(a), stored):
                    ev["notify"] = False
                    self._delivered.append(ev)  # journaled with the next commit (within one frame or tick)

    def ack_alert(self, alert_id: int, by: str) -> dict[str, Any]:
        """A person acknowledged ``alert_id`` (KeyError if it is not open)."""
        a = self.book.open.get(alert_id)
        events = self.book.acknowledge(alert_id, by, self._alert_ctx(a))
        self._commit(events)
        return {"alert_id": alert_id, "state": a.state if a is not None else "unknown", "by": by}

    def status(self) -> dict[str, Any]:
        return {"frames": self.frames, "open_alerts": len(self.book.open), "source": self.camera or "",
                "t_last_capture_ns": self._ref[0] if self._have_frame else 0}

    # ------------------------------------------------------------------------------------------------ end
    def close(self, drain_s: float = 2.0) -> None:
        """Give connected listeners up to ``drain_s`` to acknowledge what is in flight, then close channel and
        journal. A run that raised alerts and ends within ``CONNECT_GRACE_S`` of binding its channel, with no
        listener yet, first waits until that much time has passed (at most ``drain_s``): a listener started before
        the engine reconnects every 0.1 s and would otherwise miss a short file run's alerts. Safe to call twice."""
        server, self.server = self.server, None
        self._closed_server = server or self._closed_server
        if server is not None:
            deadline = time.monotonic() + drain_s
            try:
                server.pump()
                if self.counts["raised"] and not server.peers:
                    grace = min(self._t_bound + CONNECT_GRACE_S, deadline)
                    while not server.peers and time.monotonic() < grace:
                        time.sleep(0.005)
                        server.pump()
                while server.peers and server.unacked() and time.monotonic() < deadline:
                    time.sleep(0.005)
                    server.pump()
            finally:
                server.close()
        if self._delivered and self.journal is not None:
            self._commit([])
        self.journal.close()

    def summary(self) -> dict[str, Any]:
        s: dict[str, Any] = {"journal": str(self.journal.path), "journal_id": self.journal_id, **self.counts,
                             "open": len(self.book.open), "endpoint": self.endpoint}
        srv = self.server or self._closed_server
        if srv is not None:
            s["channel"] = {k: getattr(srv, k) for k in ("received", "malformed", "sent", "redelivered",
                                                          "auth_failures")}
        return s
