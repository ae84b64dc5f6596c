"""Rule timers: onset delay, hysteresis clear, cooldown, per rule and key (camera, face id), on media time (ns).

One :class:`Evaluator` holds a small state per (rule, key). ``step`` feeds one value at time ``t_ns`` and returns a
:class:`Transition` when the condition has just held for ``onset_s`` (``"raise"``) or the clear condition for
``clear_s`` (``"clear"``); nothing else, so one event gives one transition, not one per frame. A key that gets no
value for more than ``max_gap_s`` (face not detected) restarts its timers. Pure logic, processing thread.

Inhibit on a windowed rule holds over the same window as the value: the condition counts as false while the inhibit
holds now or held on at least half of the window's frames (``INHIBIT_SHARE``). A 5-s PSPI mean that a smile filled
is not pain just because the smile ended a frame ago (measured: the sample video looped, neutral then a broad smile,
raised `pain` at the loop's restart with the frame-by-frame inhibit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from rtface.alerts.rules import OPS, RuleSpec
from rtface.signals.window import TrailingWindow

_NS = 1_000_000_000
INHIBIT_SHARE = 0.5  # a windowed rule is inhibited while its inhibit held on at least this share of the window
Key = tuple[str, int]  # (camera, face id; -1 for camera-wide rules)


class Transition(NamedTuple):
    kind: str  # "raise" | "clear"
    rule: RuleSpec
    key: Key
    value: float  # the (windowed) value that decided it
    held_s: float  # how long the condition (or the clear condition) held, s


@dataclass
class _State:
    window: TrailingWindow | None
    since: int | None = None  # condition true since (ns)
    clear_since: int | None = None  # clear condition true since (ns)
    last_t: int | None = None
    active: bool = False
    cooldown_until: int = -(2**62)
    value: float = field(default=math.nan)
    inhibit_window: TrailingWindow | None = None  # 1/0 per frame: the inhibit held (windowed rules)


class Evaluator:
    """States of every (rule, key). ``max_gap_s``: a longer silence of a key restarts its onset/clear timers."""

    def __init__(self, rules: tuple[RuleSpec, ...], max_gap_s: float = 1.0) -> None:
        self.rules = {r.name: r for r in rules}
        self.max_gap_ns = int(max_gap_s * _NS)
        self._states: dict[tuple[str, Key], _State] = {}

    def _state(self, rule: RuleSpec, key: Key) -> _State:
        st = self._states.get((rule.name, key))
        if st is None:
            win = TrailingWindow(int(rule.window_s * _NS)) if rule.window_s > 0 else None
            inh = TrailingWindow(int(rule.window_s * _NS)) if win is not None and rule.inhibit else None
            st = self._states[(rule.name, key)] = _State(win, inhibit_window=inh)
        return st

    def set_active(self, rule: RuleSpec, key: Key, active: bool) -> None:
        """Mark (rule, key) active (an alert restored from the journal) or not."""
        st = self._state(rule, key)
        st.active = active
        st.since = st.clear_since = None

    def is_active(self, rule_name: str, key: Key) -> bool:
        st = self._states.get((rule_name, key))
        return bool(st and st.active)

    def step(self, rule: RuleSpec, key: Key, t_ns: int, value: float, inhibited: bool = False
             ) -> Transition | None:
        st = self._state(rule, key)
        if st.last_t is not None and t_ns - st.last_t > self.max_gap_ns:
            st.since = st.clear_since = None
            if st.window is not None:
                st.window.clear()
            if st.inhibit_window is not None:
                st.inhibit_window.clear()
        st.last_t = t_ns
        if st.inhibit_window is not None:
            st.inhibit_window.add(t_ns, 1.0 if inhibited else 0.0)
            inhibited = inhibited or st.inhibit_window.mean() >= INHIBIT_SHARE
        if st.window is not None and math.isfinite(value):
            st.window.add(t_ns, value)
            value = st.window.mean() if st.window.coverage_ns() >= st.window.window_ns - _NS // 20 else math.nan
        if not math.isfinite(value):
            return None
        st.value = value
        cmp = OPS[rule.op]
        if not st.active:
            if cmp(value, rule.threshold) and not inhibited:
                if st.since is None:
                    st.since = t_ns
                held = t_ns - st.since
                if held >= rule.onset_s * _NS and t_ns >= st.cooldown_until:
                    st.active, st.clear_since = True, None
                    return Transition("raise", rule, key, value, held / _NS)
            else:
                st.since = None
            return None
        if not cmp(value, rule.clear_level):
            if st.clear_since is None:
                st.clear_since = t_ns
            held = t_ns - st.clear_since
            if held >= rule.clear_s * _NS:
                st.active, st.since, st.clear_since = False, None, None
                st.cooldown_until = t_ns + int(rule.cooldown_s * _NS)
                return Transition("clear", rule, key, value, held / _NS)
        else:
            st.clear_since = None
        return None

    def forget(self, key: Key) -> None:
        """Drop every state of ``key`` (a face id that left)."""
        for k in [k for k in self._states if k[1] == key]:
            del self._states[k]
