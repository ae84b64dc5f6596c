"""Which face is the patient: the ``patient_face_count`` camera signal (1 while the patient's face is in view, else
0), so ``face_lost`` can fire when the patient is gone even while visitors or staff are visible.

Modes (alerts stage ``patient``):

- ``"largest"`` / ``"central"``: the first frame with a face *locks* the patient: the face with the largest box
  (``largest``; a bedside camera is aimed at the bed, so the patient is the nearest face) or the one whose box
  centre is nearest the image centre (``central``). From then on the patient is that face id while the landmark
  tracker keeps it; when the id disappears the patient is missing until a face appears *at the patient's place*:
  box centre within ``reacquire_widths`` box widths of the patient's last box centre and a box width between half
  and twice the last one. That face (the tracker gives a returning face a new id) becomes the patient again.
- ``"id:N"`` (or ``"N"``): face id N only, never re-acquired (for recordings whose ids are known to be stable).

Why a positional lock and not "the largest face on every frame" or identity matching: choosing the largest (or most
central) face anew on every frame makes a visitor leaning over the bed the "patient" exactly when the patient may
be hidden, so the alert would not fire; a lock taken once, kept by the tracker and re-acquired only at the
patient's own place (a patient in bed moves little, visitors and staff stand beside it) keeps the patient's
identity through short tracker losses. Matching faces to a calibrated neutral is not used: the person model's
shape estimate needs many frames of a face before it separates people, a patient on a pillow is often seen
obliquely, and a neutral file is optional, so it would not be there in the first seconds or without calibration.

Pure logic; the alert service (processing thread) owns a tracker.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from rtface.records import Face

MODES = ("largest", "central")


def parse_patient(spec: str) -> tuple[str, int]:
    """("", -1) for no patient, (mode, -1) for largest/central, ("id", N) for a fixed face id; ValueError naming
    the field otherwise."""
    s = str(spec).strip().lower()
    if not s:
        return "", -1
    if s in MODES:
        return s, -1
    num = s[3:] if s.startswith("id:") else s
    if num.isdigit():
        return "id", int(num)
    raise ValueError(f"field 'patient': {spec!r} is not '', 'largest', 'central' or 'id:N' (a face id)")


def _box(face: Face) -> tuple[float, float, float, float]:
    """(centre x, centre y, width, area) of the face's box, px."""
    x0, y0, x1, y1 = (float(v) for v in face.bbox_px[:4])
    w, h = max(x1 - x0, 0.0), max(y1 - y0, 0.0)
    return 0.5 * (x0 + x1), 0.5 * (y0 + y1), w, w * h


class PatientTracker:
    """See the module docstring. :meth:`update` per frame -> (present 1.0/0.0, patient face id or -1)."""

    def __init__(self, spec: str, reacquire_widths: float = 1.0) -> None:
        self.mode, self.fixed_id = parse_patient(spec)
        if not self.mode:
            raise ValueError("PatientTracker needs a patient mode")
        if not (math.isfinite(reacquire_widths) and reacquire_widths > 0):
            raise ValueError(f"field 'patient_reacquire_widths' must be > 0, got {reacquire_widths}")
        self.reacquire_widths = float(reacquire_widths)
        self.face_id: int = self.fixed_id
        self._last: tuple[float, float, float, float] | None = None  # patient's last box
        self.reacquired = 0  # times the patient came back under a new face id

    def update(self, faces: Sequence[Face], width: int, height: int) -> tuple[float, int]:
        ids = {int(f.face_id): f for f in faces}
        if self.mode == "id":
            return (1.0, self.fixed_id) if self.fixed_id in ids else (0.0, -1)
        if self.face_id >= 0 and self.face_id in ids:
            self._last = _box(ids[self.face_id])
            return 1.0, self.face_id
        if not faces:
            return 0.0, -1
        if self._last is None:  # first lock
            if self.mode == "largest":
                pick = max(faces, key=lambda f: _box(f)[3])
            else:
                cx, cy = 0.5 * width, 0.5 * height
                pick = min(faces, key=lambda f: math.hypot(_box(f)[0] - cx, _box(f)[1] - cy))
        else:  # the patient's id is gone: only a face at the patient's place takes over
            lx, ly, lw, _ = self._last
            best, pick = math.inf, None
            for f in faces:
                x, y, w, _ = _box(f)
                d = math.hypot(x - lx, y - ly)
                if d <= self.reacquire_widths * lw and 0.5 * lw <= w <= 2.0 * lw and d < best:
                    best, pick = d, f
            if pick is None:
                return 0.0, -1
            self.reacquired += 1
        self.face_id = int(pick.face_id)
        self._last = _box(pick)
        return 1.0, self.face_id
