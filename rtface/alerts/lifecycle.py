"""Alert lifecycle: raised -> delivered (per listener) -> acknowledged (by whom, when) -> cleared, or escalated
(unacknowledged after ``escalate_after_s``: re-notified one priority step higher).

:class:`AlertBook` holds the alerts that are not cleared yet, at most one per (rule, camera, face id), and turns
each transition into an event (a plain dict, see docs/message-schema.md "Alert channel"): ``type``, ``alert_id``,
``rule``, ``priority``, ``face_id``, ``camera``, the capture time / media time / frame index of the frame that
caused it, the wall time the event was made, ``evidence`` (values, thresholds, how long it held) and ``by``
(listener or person). A latching alert whose condition ended stays until acknowledged (then it clears at once).
The book does not store events; the service journals them before anything is sent. Processing thread only.
"""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rtface.alerts.rules import PRIORITIES, RuleSpec

_NS = 1_000_000_000
_RECENT_MAX = 10_000


class Ctx(NamedTuple):
    """The moment a transition happened: rule time (media-time based, ns), and the triggering frame's capture time
    (UTC ns), media time (ns) and index (-1 and the wall clock when no frame caused it, e.g. source lost)."""

    t_rule_ns: int
    t_capture_ns: int
    t_media_ns: int
    frame: int


@dataclass
class Alert:
    id: int
    rule: str
    camera: str
    face_id: int  # -1 for camera-wide rules
    priority: str
    latching: bool
    message: str
    state: str = "active"  # "active" | "acknowledged" | "cleared"
    t_raised_capture_ns: int = 0
    t_notified_rule_ns: int = 0  # rule time of the raise or last escalation (escalation timer)
    condition: bool = True  # the rule's condition still holds
    acked_by: str = ""
    t_acked_ns: int = 0
    delivered_to: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # evidence of the raise

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Alert":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def summary(self) -> dict[str, Any]:
        """What a listener's snapshot shows for this alert."""
        return {"alert_id": self.id, "rule": self.rule, "priority": self.priority, "state": self.state,
                "face_id": self.face_id, "camera": self.camera, "latching": self.latching, "message": self.message,
                "condition": self.condition, "acked_by": self.acked_by, "t_acked_ns": self.t_acked_ns,
                "t_capture_ns": self.t_raised_capture_ns, "delivered_to": list(self.delivered_to),
                "evidence": self.evidence}


class AlertBook:
    """Open alerts and the events of their transitions. ``next_id`` gives fresh alert ids (from the journal)."""

    def __init__(self, next_id: Callable[[], int], clock: Callable[[], int] = time.time_ns) -> None:
        self._next_id = next_id
        self._clock = clock
        self.open: dict[int, Alert] = {}
        self.recent: OrderedDict[int, Alert] = OrderedDict()  # recently cleared alerts (late delivery receipts)
        self._by_key: dict[tuple[str, str, int], int] = {}
        self.changed: dict[int, Alert] = {}  # alerts whose stored state must be written (cleared by the service)

    # ------------------------------------------------------------------------------------------------ helpers
    def _event(self, a: Alert, kind: str, ctx: Ctx, **extra: Any) -> dict[str, Any]:
        self.changed[a.id] = a
        ev = {"type": kind, "alert_id": a.id, "rule": a.rule, "priority": a.priority, "state": a.state,
              "face_id": a.face_id, "camera": a.camera, "latching": a.latching, "message": a.message,
              "t_capture_ns": int(ctx.t_capture_ns), "t_media_ns": int(ctx.t_media_ns), "frame": int(ctx.frame),
              "t_event_ns": self._clock()}
        ev.update(extra)
        return ev

    def _close(self, a: Alert, ctx: Ctx, reason: str, evidence: dict | None = None) -> dict[str, Any]:
        a.state, a.condition = "cleared", False
        self.open.pop(a.id, None)
        self.recent[a.id] = a
        while len(self.recent) > _RECENT_MAX:
            self.recent.popitem(last=False)
        self._by_key.pop((a.rule, a.camera, a.face_id), None)
        return self._event(a, "cleared", ctx, reason=reason, evidence=evidence or {})

    def find(self, rule: str, camera: str, face_id: int) -> Alert | None:
        i = self._by_key.get((rule, camera, face_id))
        return None if i is None else self.open.get(i)

    def restore(self, a: Alert) -> None:
        """Re-open an alert read back from the journal (engine restart)."""
        self.open[a.id] = a
        self._by_key[(a.rule, a.camera, a.face_id)] = a.id

    # ------------------------------------------------------------------------------------------------ transitions
    def raise_(self, rule: RuleSpec, camera: str, face_id: int, ctx: Ctx, evidence: dict[str, Any]
               ) -> list[dict[str, Any]]:
        """The rule's condition started: a new alert, unless one is still open for this rule/face/camera (a latched
        alert whose condition returned: no new alert, it is marked as holding again)."""
        old = self.find(rule.name, camera, face_id)
        if old is not None:
            old.condition = True
            self.changed[old.id] = old
            return []
        a = Alert(self._next_id(), rule.name, camera, face_id, rule.priority, rule.latching, rule.message,
                  t_raised_capture_ns=int(ctx.t_capture_ns), t_notified_rule_ns=int(ctx.t_rule_ns),
                  evidence=evidence)
        self.open[a.id] = a
        self._by_key[(rule.name, camera, face_id)] = a.id
        return [self._event(a, "raised", ctx, evidence=evidence)]

    def condition_ended(self, rule_name: str, camera: str, face_id: int, ctx: Ctx, evidence: dict[str, Any],
                        reason: str = "condition_cleared") -> list[dict[str, Any]]:
        """The condition is over: clear, except a latching alert not yet acknowledged (it waits for the ack)."""
        a = self.find(rule_name, camera, face_id)
        if a is None:
            return []
        if a.latching and a.state == "active":
            a.condition = False
            self.changed[a.id] = a
            return []
        return [self._close(a, ctx, reason, evidence)]

    def acknowledge(self, alert_id: int, by: str, ctx: Ctx) -> list[dict[str, Any]]:
        """A person saw it. KeyError for an unknown or already cleared id; acknowledging twice changes nothing."""
        a = self.open.get(alert_id)
        if a is None:
            raise KeyError(f"no open alert with id {alert_id}")
        if a.state == "acknowledged":
            return []
        a.state, a.acked_by, a.t_acked_ns = "acknowledged", by, self._clock()
        events = [self._event(a, "acknowledged", ctx, by=by)]
        if a.latching and not a.condition:
            events.append(self._close(a, ctx, "acknowledged_after_condition_ended"))
        return events

    def delivered(self, alert_id: int, listener: str, ctx: Ctx, stored: Alert | None = None
                  ) -> list[dict[str, Any]]:
        """First receipt of this alert by ``listener`` (a journal-only event, not sent to listeners); also for an
        alert cleared meanwhile (``stored``: its state from the journal when it is no longer in memory)."""
        a = self.open.get(alert_id) or self.recent.get(alert_id) or stored
        if a is None or listener in a.delivered_to:
            return []
        a.delivered_to.append(listener)
        return [self._event(a, "delivered", ctx, by=listener)]

    def escalate_due(self, rules: dict[str, RuleSpec], ctx: Ctx) -> list[dict[str, Any]]:
        """Unacknowledged alerts whose rule escalates and whose last notification is older than
        ``escalate_after_s`` (rule time): one priority step up and a new notification."""
        events = []
        for a in list(self.open.values()):
            r = rules.get(a.rule)
            if a.state != "active" or r is None or r.escalate_after_s <= 0 or a.priority == "high":
                continue
            if ctx.t_rule_ns - a.t_notified_rule_ns >= r.escalate_after_s * _NS:
                old = a.priority
                a.priority = PRIORITIES[PRIORITIES.index(old) + 1]
                a.t_notified_rule_ns = ctx.t_rule_ns
                events.append(self._event(a, "escalated", ctx, reason="unacknowledged",
                                          evidence={"from_priority": old, "after_s": r.escalate_after_s}))
        return events

    def face_gone(self, camera: str, face_id: int, ctx: Ctx, gone_s: float) -> list[dict[str, Any]]:
        """Face ``face_id`` has not been seen for ``gone_s``: its alerts clear (reason ``face_gone``), except
        unacknowledged latching ones, which wait for an acknowledgement."""
        events = []
        for a in [a for a in self.open.values() if a.camera == camera and a.face_id == face_id]:
            events += self.condition_ended(a.rule, camera, face_id, ctx, {"unseen_s": gone_s}, reason="face_gone")
        return events

    def retire(self, alert_id: int, ctx: Ctx, reason: str) -> list[dict[str, Any]]:
        """Clear an alert whatever its state (its rule no longer exists)."""
        a = self.open.get(alert_id)
        return [] if a is None else [self._close(a, ctx, reason)]
