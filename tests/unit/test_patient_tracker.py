"""PatientTracker (rtface.alerts.patient), pure logic on face boxes (mechanism tests; the shipped path on real
video is tests/integration/test_alert_patient.py)."""
from __future__ import annotations

import numpy as np
import pytest

from rtface.alerts.patient import PatientTracker, parse_patient
from rtface.alerts.rules import build_rules
from rtface.config import build_dataclass
from rtface.records import Face


def face(fid: int, x0: float, y0: float, side: float) -> Face:
    return Face(fid, 1.0, np.array([x0, y0, x0 + side, y0 + side], np.float32), np.zeros((478, 3), np.float32))


def test_largest_locks_then_only_a_face_at_the_patients_place_takes_over():
    tr = PatientTracker("largest")
    patient, visitor = face(0, 0, 0, 300), face(1, 500, 50, 200)
    assert tr.update([visitor, patient], 800, 400) == (1.0, 0)
    assert tr.update([visitor], 800, 400) == (0.0, -1)  # patient gone, the visitor stays
    big_visitor = face(1, 450, 0, 350)  # the visitor leans in: larger than the patient, elsewhere
    assert tr.update([big_visitor], 800, 400) == (0.0, -1)
    back = face(7, 20, 10, 290)  # the patient returns under a new tracker id at their place
    assert tr.update([big_visitor, back], 800, 400) == (1.0, 7) and tr.reacquired == 1


def test_central_and_fixed_id():
    tr = PatientTracker("central")
    assert tr.update([face(3, 0, 0, 100), face(4, 350, 150, 100)], 800, 400) == (1.0, 4)
    fixed = PatientTracker("id:3")
    assert fixed.update([face(3, 0, 0, 100)], 800, 400) == (1.0, 3)
    assert fixed.update([face(5, 0, 0, 100)], 800, 400) == (0.0, -1)  # never re-acquired


@pytest.mark.parametrize("bad", ["tallest", "id:x", "-1"])
def test_bad_patient_values(bad):
    with pytest.raises(ValueError, match="patient"):
        parse_patient(bad)


def test_patient_switches_face_lost_unless_the_config_set_its_signal():
    rules, _ = build_rules((), defaults=True, make=build_dataclass, where="rules", patient=True)
    assert {r.name: r.signal for r in rules}["face_lost"] == "patient_face_count"
    rules, _ = build_rules(({"name": "face_lost", "signal": "face_count"},), defaults=True, make=build_dataclass,
                           where="rules", patient=True)
    assert {r.name: r.signal for r in rules}["face_lost"] == "face_count"
    rules, _ = build_rules((), defaults=True, make=build_dataclass, where="rules")
    assert {r.name: r.signal for r in rules}["face_lost"] == "face_count"
