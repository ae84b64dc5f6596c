"""Alert lifecycle, the SQLite journal (real files) and the service across an engine restart (mechanism tests:
frames are built by hand, the journal and its lock are real)."""
from __future__ import annotations

import numpy as np
import pytest

from rtface.alerts.journal import Journal, read_events
from rtface.alerts.lifecycle import AlertBook, Ctx
from rtface.alerts.rules import RuleSpec
from rtface.alerts.service import AlertService, ChannelSettings
from rtface.alerts.signals import SignalReader
from rtface.errors import ConfigError
from rtface.records import Face, FrameMeta, FrameResult
from rtface.transport.alert_wire import event_message

S = 1_000_000_000


def ctx(t_s: float) -> Ctx:
    return Ctx(int(t_s * S), 1_700_000_000 * S + int(t_s * S), int(t_s * S), int(t_s * 30))


def book() -> AlertBook:
    n = iter(range(1, 1000))
    return AlertBook(lambda: next(n), clock=lambda: 42)


def test_one_alert_per_rule_face_and_camera_and_its_lifecycle():
    b = book()
    r = RuleSpec("pain", "pspi", threshold=4.0, escalate_after_s=10.0, priority="low")
    [raised] = b.raise_(r, "cam", 0, ctx(1), {"value": 5})
    assert raised["type"] == "raised" and raised["alert_id"] == 1 and raised["t_capture_ns"] == ctx(1).t_capture_ns
    assert b.raise_(r, "cam", 0, ctx(2), {}) == []  # the same condition again: no second alert
    assert b.raise_(r, "cam", 1, ctx(2), {})[0]["alert_id"] == 2  # another face: its own alert
    assert b.delivered(1, "station1", ctx(2))[0]["by"] == "station1" and b.delivered(1, "station1", ctx(3)) == []
    assert [e["priority"] for e in b.escalate_due({"pain": r}, ctx(12))] == ["medium", "medium"]
    assert [e["priority"] for e in b.escalate_due({"pain": r}, ctx(22))] == ["high", "high"]
    assert b.escalate_due({"pain": r}, ctx(40)) == []  # high is the top
    [ack] = b.acknowledge(1, "nurse", ctx(41))
    assert ack["type"] == "acknowledged" and ack["by"] == "nurse" and b.open[1].state == "acknowledged"
    assert b.acknowledge(1, "nurse", ctx(42)) == []
    [cl] = b.condition_ended("pain", "cam", 0, ctx(43), {"value": 1})
    assert cl["type"] == "cleared" and 1 not in b.open
    with pytest.raises(KeyError, match="no open alert with id 1"):
        b.acknowledge(1, "nurse", ctx(44))


def test_latching_alert_waits_for_the_acknowledgement():
    b = book()
    r = RuleSpec("microsleep", "eyes_closed_s", threshold=1.0, latching=True)
    b.raise_(r, "cam", 0, ctx(1), {})
    assert b.condition_ended("microsleep", "cam", 0, ctx(2), {}) == []  # condition over, alert stays
    assert b.raise_(r, "cam", 0, ctx(3), {}) == [] and b.open[1].condition  # again: still the same alert
    b.condition_ended("microsleep", "cam", 0, ctx(4), {})
    kinds = [(e["type"], e.get("reason")) for e in b.acknowledge(1, "nurse", ctx(5))]
    assert kinds == [("acknowledged", None), ("cleared", "acknowledged_after_condition_ended")]


def test_face_gone_clears_except_unacknowledged_latching():
    b = book()
    b.raise_(RuleSpec("pain", "pspi", threshold=4.0), "cam", 3, ctx(1), {})
    b.raise_(RuleSpec("microsleep", "eyes_closed_s", threshold=1.0, latching=True), "cam", 3, ctx(1), {})
    ev = b.face_gone("cam", 3, ctx(12), 11.0)
    assert [(e["rule"], e["reason"]) for e in ev] == [("pain", "face_gone")] and list(b.open) == [2]


def test_journal_commits_and_locks(tmp_path):
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    with pytest.raises(ConfigError, match="in use by another running engine"):
        Journal(path)
    ev = {"type": "raised", "alert_id": 1, "t_event_ns": 5, "t_capture_ns": 4, "rule": "x"}
    [(seq, body, notify)] = j.append([ev], [{"id": 1, "rule": "x", "state": "active"}], event_message)
    assert seq == 1 and notify and ev["journal"] == j.journal_id
    j.set_cursors({"station1": 1})
    assert j.cursor("station1") == 1 and j.notify_seqs_after(0) == [1] and j.bodies([1]) == {1: body}
    jid = j.journal_id
    j.close()
    j2 = Journal(path)  # the lock is free again; the same journal id and sequence
    assert j2.journal_id == jid and j2.last_seq == 1 and j2.open_alerts()[0]["state"] == "active"
    assert read_events(path)[0]["alert_id"] == 1  # readable read-only while open
    j2.close()
    (tmp_path / "bad.sqlite").write_bytes(b"not sqlite" * 100)
    with pytest.raises(ConfigError, match="bad.sqlite"):
        Journal(tmp_path / "bad.sqlite")


def _frame(i: int, faces: int, closed_s: float = 0.0) -> FrameResult:
    r = FrameResult(FrameMeta(i, 1_700_000_000 * S + i * S // 10, i * S // 10, 64, 64, "cam"))
    for f in range(faces):
        face = Face(f, 1.0, np.zeros(4, np.float32), np.zeros((478, 3), np.float32))
        face.extras["eyes_closed_s"] = closed_s
        r.faces.append(face)
    return r


def _service(path, rules) -> AlertService:
    return AlertService(rules, SignalReader(), Journal(path), ChannelSettings())


def test_service_restart_reopens_open_alerts_and_clears_them(tmp_path):
    lost = RuleSpec("face_lost", "face_count", op="<", threshold=1.0, onset_s=0.5, clear_s=0.2)
    sleep = RuleSpec("microsleep", "eyes_closed_s", threshold=1.0, latching=True)
    svc = _service(tmp_path / "j.sqlite", (lost, sleep))
    out = [e for i in range(10) for e in svc.on_frame(_frame(i, 0))]
    assert [(e["type"], e["rule"]) for e in out] == [("raised", "face_lost")]
    svc.close()
    svc = _service(tmp_path / "j.sqlite", (lost, sleep))  # a new engine on the same journal
    assert list(svc.book.open) == [1]
    out = [e for i in range(5) for e in svc.on_frame(_frame(i, 1, closed_s=1.5 if i == 2 else 0.0))]
    assert [(e["type"], e["rule"], e["alert_id"]) for e in out] == [
        ("cleared", "face_lost", 1), ("raised", "microsleep", 2)]
    svc.close()
    svc = _service(tmp_path / "j.sqlite", (lost,))  # the microsleep rule was removed from the config
    assert svc.book.open == {} and read_events(tmp_path / "j.sqlite")[-1]["reason"] == "rule_removed"
    svc.close()


def test_live_ticks_raise_source_lost_without_frames(tmp_path):
    gap = RuleSpec("source_lost", "frame_gap_s", threshold=2.0, clear_threshold=1.0, clear_s=0.0)
    svc = _service(tmp_path / "j.sqlite", (gap,))
    svc.on_frame(_frame(0, 1))
    t0 = svc._ref[0]
    assert svc.on_tick(t0 + 3 * S, live=False) == []  # offline: ticks never move rule time
    [ev] = svc.on_tick(t0 + 3 * S, live=True)
    assert ev["type"] == "raised" and ev["rule"] == "source_lost"
    later = [e for i in range(31, 34) for e in svc.on_frame(_frame(i, 1))]  # frames again (media time +3.1 s)
    assert [e["type"] for e in later] == ["cleared"]
    svc.close()
