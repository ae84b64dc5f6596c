"""Alert rules: what one rule says, the packaged defaults, and how a config overrides them.

A rule watches one signal (:mod:`rtface.alerts.signals`) per face (face signals) or per camera (``face_count``,
``frame_gap_s``) and raises an alert when ``value <op> threshold`` has held for ``onset_s`` (on media time). The
value may first be averaged over a trailing ``window_s`` (then the rule waits until the window is full). It clears
once the value has been on the other side of ``clear_threshold`` (hysteresis; default = threshold) for
``clear_s``. ``latching`` alerts stay until acknowledged even after the condition ended (IEC 60601-1-8 latching
alarm signal). After a clear the same rule cannot raise again for that face/camera for ``cooldown_s``.
Unacknowledged alerts escalate one priority step (low -> medium -> high) every ``escalate_after_s`` (0 = never).
``inhibit`` ("signal op number", e.g. ``"emotion.happiness >= 0.5"``) holds the condition false while it is true.
Priorities use IEC 60601-1-8's terms: ``high`` (immediate response), ``medium`` (prompt), ``low`` (awareness).

Config: ``[[stages]] kind = "alerts"`` takes the packaged rules (``default_rules = true``); each
``[[stages.rules]]`` table either names a packaged rule and changes some fields (``name = "pain"``,
``threshold = 5.0``; ``enabled = false`` turns it off) or adds a new rule (then ``signal`` and ``threshold`` are
required). Numbers and sources of the defaults: README, "Alerts".
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PRIORITIES = ("low", "medium", "high")
OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda v, t: v >= t, ">": lambda v, t: v > t, "<=": lambda v, t: v <= t, "<": lambda v, t: v < t}
CAMERA_SIGNALS = ("face_count", "frame_gap_s", "patient_face_count")
EYE_SIGNALS = ("eye_closure", "eye_closure_l", "eye_closure_r", "eyes_closed_s", "perclos", "blink_rate_min",
               "AU45_r", "AU45_c", "blink")
_NAME_RE = re.compile(r"^[a-z0-9_]{1,48}$")
_INHIBIT_RE = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class RuleSpec:
    name: str  # alert kind: lower-case letters, digits, '_' (also the alert topic suffix)
    signal: str = ""  # see rtface.alerts.signals
    op: str = ">="  # ">=", ">", "<=", "<"
    threshold: float = math.nan
    window_s: float = 0.0  # average the signal over this trailing window first (0 = frame value), s
    onset_s: float = 0.0  # the condition must hold this long before the alert is raised, s
    clear_threshold: float = math.nan  # hysteresis level (NaN = threshold)
    clear_s: float = 0.0  # the clear condition must hold this long, s
    priority: str = "medium"  # "low" | "medium" | "high" (IEC 60601-1-8)
    latching: bool = False  # stays active until acknowledged, even after the condition ended
    cooldown_s: float = 0.0  # after a clear, no new alert of this rule for this face/camera for this long, s
    escalate_after_s: float = 0.0  # unacknowledged this long: one priority step up, repeatedly (0 = never), s
    inhibit: str = ""  # "signal op number": while true the condition counts as false
    message: str = ""  # human-readable text sent with the alert
    enabled: bool = True

    @property
    def scope(self) -> str:
        """"camera" for camera signals, else "face"."""
        return "camera" if self.signal in CAMERA_SIGNALS else "face"

    @property
    def clear_level(self) -> float:
        return self.threshold if math.isnan(self.clear_threshold) else self.clear_threshold

    def inhibit_parts(self) -> tuple[str, str, float] | None:
        """(signal, op, number) of ``inhibit``, or None."""
        if not self.inhibit:
            return None
        m = _INHIBIT_RE.match(self.inhibit)
        if not m:
            raise ValueError(f"rule '{self.name}': field 'inhibit': {self.inhibit!r} is not 'signal op number' "
                             f"(e.g. 'emotion.happiness >= 0.5')")
        return m.group(1), m.group(2), float(m.group(3))

    def check(self) -> None:
        """Raise ValueError naming the rule and field for anything inconsistent."""
        w = f"rule '{self.name}'"
        if not _NAME_RE.match(self.name):
            raise ValueError(f"{w}: field 'name' must be 1-48 lower-case letters, digits or '_'")
        if not self.signal:
            raise ValueError(f"{w}: field 'signal' is required")
        if self.op not in OPS:
            raise ValueError(f"{w}: field 'op': {self.op!r} is not one of {tuple(OPS)}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"{w}: field 'threshold' is required and must be finite")
        if not (math.isnan(self.clear_threshold) or math.isfinite(self.clear_threshold)):
            raise ValueError(f"{w}: field 'clear_threshold' must be finite")
        if self.op in (">=", ">") and self.clear_level > self.threshold or \
                self.op in ("<=", "<") and self.clear_level < self.threshold:
            raise ValueError(f"{w}: field 'clear_threshold' ({self.clear_level}) must be on the safe side of "
                             f"'threshold' ({self.threshold}) for op {self.op!r} (hysteresis)")
        for f in ("window_s", "onset_s", "clear_s", "cooldown_s", "escalate_after_s"):
            v = getattr(self, f)
            if not (math.isfinite(v) and 0 <= v <= 86400):
                raise ValueError(f"{w}: field '{f}' must be in [0, 86400] s, got {v}")
        if self.priority not in PRIORITIES:
            raise ValueError(f"{w}: field 'priority': {self.priority!r} is not one of {PRIORITIES}")
        if self.scope == "camera" and self.window_s:
            raise ValueError(f"{w}: field 'window_s': camera signal {self.signal!r} takes no window")
        self.inhibit_parts()


def needs(signal: str) -> str | None:
    """Data key of the stage that must run before the alerts stage for ``signal`` (None: landmarks suffice or
    unknown extra)."""
    if signal in EYE_SIGNALS:
        return "eyes"
    if signal == "pspi" or signal.startswith("au."):
        return "aus"
    if signal == "negative_emotion" or signal.startswith("emotion."):
        return "emotion"
    return None


def _d(**kw: Any) -> RuleSpec:
    return RuleSpec(**kw)


_FACE_LOST_MESSAGE = "no face in view for 3 s"

# Packaged rules (README "Alerts" gives the source of every number).
DEFAULT_RULES: tuple[RuleSpec, ...] = (
    _d(name="microsleep", signal="eyes_closed_s", threshold=1.0, clear_threshold=0.5, clear_s=1.0,
       priority="high", latching=True, cooldown_s=10.0,
       message="eyes closed continuously for 1 s or more (microsleep)"),
    _d(name="drowsiness", signal="perclos", threshold=0.15, clear_threshold=0.10, clear_s=10.0, priority="medium",
       cooldown_s=60.0, escalate_after_s=120.0, message="PERCLOS P80 over the last minute at or above 15 %"),
    _d(name="pain", signal="pspi", window_s=5.0, threshold=4.0, clear_threshold=2.0, clear_s=5.0,
       priority="medium", cooldown_s=60.0, escalate_after_s=120.0, inhibit="emotion.happiness >= 0.5",
       message="sustained pain expression: PSPI averaged over 5 s at or above 4"),
    _d(name="distress", signal="negative_emotion", window_s=10.0, threshold=0.6, clear_threshold=0.4,
       clear_s=5.0, priority="medium", cooldown_s=60.0, escalate_after_s=120.0,
       message="sustained negative emotion: sadness+fear+anger+disgust averaged over 10 s at or above 0.6"),
    _d(name="face_lost", signal="face_count", op="<", threshold=1.0, onset_s=3.0, clear_threshold=1.0,
       clear_s=1.0, priority="medium", cooldown_s=10.0, escalate_after_s=120.0,
       message=_FACE_LOST_MESSAGE),
    _d(name="source_lost", signal="frame_gap_s", threshold=2.0, clear_threshold=1.0, clear_s=1.0,
       priority="high", message="no frame from the camera for 2 s"),
)


PATIENT_FACE_LOST = {"signal": "patient_face_count", "message": "the patient's face not in view for 3 s"}


def build_rules(tables: Iterable[Mapping[str, Any]], *, defaults: bool,
                make: Callable[[type, dict, str], Any], where: str, patient: bool = False
                ) -> tuple[tuple[RuleSpec, ...], set[str]]:
    """Packaged rules (if ``defaults``) overridden / extended by ``tables``; returns (enabled rules, names that the
    config itself set). ``make(cls, table, where)`` builds a dataclass from a TOML table (rtface.config's
    validator). ``patient``: a patient is configured, so ``face_lost`` watches ``patient_face_count`` (unless
    the config gave face_lost a signal itself). Raises ValueError / the validator's error naming the rule and
    field."""
    rules: dict[str, RuleSpec] = {r.name: r for r in DEFAULT_RULES} if defaults else {}
    explicit: set[str] = set()
    explicit_fields: dict[str, set[str]] = {}
    for i, table in enumerate(tables):
        if not isinstance(table, Mapping):
            raise ValueError(f"{where}: rules[{i}] must be a table")
        name = table.get("name")
        if not isinstance(name, str):
            raise ValueError(f"{where}: rules[{i}]: field 'name' is required (a packaged rule to change, or a new "
                             f"rule's name; packaged: {', '.join(r.name for r in DEFAULT_RULES)})")
        if name in explicit:
            raise ValueError(f"{where}: rules[{i}]: rule '{name}' is given twice")
        base = rules.get(name)
        fields = dict(table) if base is None else {**dataclasses.asdict(base), **table}
        rules[name] = make(RuleSpec, fields, f"{where}: rule '{name}'")
        explicit.add(name)
        explicit_fields[name] = set(table)
    if patient and "face_lost" in rules and "signal" not in explicit_fields.get("face_lost", ()):
        fl = rules["face_lost"]
        msg = PATIENT_FACE_LOST["message"] if fl.message == _FACE_LOST_MESSAGE else fl.message
        rules["face_lost"] = dataclasses.replace(fl, signal=PATIENT_FACE_LOST["signal"], message=msg)
    out = tuple(r for r in rules.values() if r.enabled)
    for r in out:
        r.check()
    return out, explicit
