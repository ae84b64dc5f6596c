"""Rule specification, config merging and the rule timers (pure logic, mechanism tests)."""
from __future__ import annotations

import math

import pytest

from rtface.alerts.evaluator import Evaluator
from rtface.alerts.rules import DEFAULT_RULES, RuleSpec, build_rules, needs
from rtface.config import build_dataclass, config_from_dict
from rtface.errors import ConfigError

S = 1_000_000_000
K = ("cam", 0)


def steps(rule: RuleSpec, values, dt_s: float = 0.1, inhibited=None):
    ev = Evaluator((rule,))
    out = []
    for i, v in enumerate(values):
        tr = ev.step(rule, K, int(i * dt_s * S), v, bool(inhibited and inhibited[i]))
        if tr:
            out.append((i, tr.kind))
    return out


def test_onset_and_hysteresis_give_one_alert_per_event():
    r = RuleSpec("x", "s", threshold=1.0, onset_s=0.3, clear_threshold=0.5, clear_s=0.2)
    vals = [0, 2, 2, 2, 2, 2, 0.8, 0.8, 2, 0.2, 0.2, 0.2, 0.2, 0]
    assert steps(r, vals) == [(4, "raise"), (11, "clear")]  # 0.8 is inside the hysteresis band: no clear


def test_onset_restarts_when_the_condition_drops():
    r = RuleSpec("x", "s", threshold=1.0, onset_s=0.3)
    assert steps(r, [2, 2, 0, 2, 2, 2, 2]) == [(6, "raise")]


def test_cooldown_suppresses_a_new_alert_then_allows_it():
    r = RuleSpec("x", "s", threshold=1.0, cooldown_s=1.0)
    vals = [2, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    assert steps(r, vals) == [(0, "raise"), (1, "clear"), (11, "raise")]  # cooldown ends 1 s after the clear


def test_below_rules_and_inhibit():
    r = RuleSpec("lost", "face_count", op="<", threshold=1.0, onset_s=0.2)
    assert steps(r, [1, 0, 0, 0, 1]) == [(3, "raise"), (4, "clear")]
    p = RuleSpec("pain", "pspi", threshold=4.0, inhibit="emotion.happiness >= 0.5")
    assert steps(p, [5, 5, 5], inhibited=[True, True, False]) == [(2, "raise")]


def test_windowed_inhibit_holds_over_the_window():
    """A windowed rule's inhibit counts over the same window: a mean that inhibited frames filled does not raise the
    moment the inhibit ends (a smile's PSPI is not pain), only once fewer than half of the window's frames were
    inhibited."""
    p = RuleSpec("pain", "pspi", threshold=4.0, window_s=1.0, inhibit="emotion.happiness >= 0.5")
    inh = [True] * 20 + [False] * 20
    ev = steps(p, [5.0] * 40, inhibited=inh)
    assert len(ev) == 1 and ev[0][1] == "raise" and 24 <= ev[0][0] <= 27  # about half a window after the inhibit
    # ended (frame 20), not at once
    assert steps(p, [5.0] * 40, inhibited=[True] * 3 + [False] * 37)[0][0] == 10  # a full window with few inhibited


def test_window_waits_for_a_full_window_and_averages():
    r = RuleSpec("w", "s", threshold=1.0, window_s=1.0)
    assert steps(r, [3.0] * 3 + [0.0] * 30) == []  # 0.3 s at 3 in the first full second: mean 0.9 < 1
    assert steps(r, [3.0] * 5 + [0.0] * 30) == [(10, "raise"), (12, "clear")]  # mean 1.5, then falls below 1
    assert steps(r, [2.0] * 15)[0] == (10, "raise")  # the first frame whose window holds 1 s


def test_a_long_gap_restarts_the_timers():
    r = RuleSpec("x", "s", threshold=1.0, onset_s=0.5)
    ev = Evaluator((r,), max_gap_s=1.0)
    assert ev.step(r, K, 0, 2) is None and ev.step(r, K, 3 * S, 2) is None  # 3 s without the face: restart
    assert ev.step(r, K, int(3.5 * S), 2).kind == "raise"


def test_nan_values_do_not_advance_a_rule():
    r = RuleSpec("x", "s", threshold=1.0)
    assert steps(r, [math.nan, math.nan, 2]) == [(2, "raise")]


def test_spec_checks_name_the_rule_and_field():
    with pytest.raises(ValueError, match=r"rule 'x'.*'clear_threshold'.*safe side"):
        RuleSpec("x", "s", threshold=1.0, clear_threshold=2.0).check()
    with pytest.raises(ValueError, match=r"rule 'x'.*'priority'"):
        RuleSpec("x", "s", threshold=1.0, priority="urgent").check()
    with pytest.raises(ValueError, match=r"rule 'x'.*'threshold' is required"):
        RuleSpec("x", "s").check()
    with pytest.raises(ValueError, match=r"'inhibit'"):
        RuleSpec("x", "s", threshold=1.0, inhibit="happy").check()
    with pytest.raises(ValueError, match=r"camera signal"):
        RuleSpec("x", "face_count", threshold=1.0, window_s=2).check()


def test_defaults_overrides_and_new_rules():
    rules, explicit = build_rules([{"name": "pain", "threshold": 5.0}, {"name": "distress", "enabled": False},
                                   {"name": "yawn", "signal": "au.AU26", "threshold": 3.0, "onset_s": 1.0}],
                                  defaults=True, make=build_dataclass, where="stage 'alerts'")
    by = {r.name: r for r in rules}
    assert by["pain"].threshold == 5.0 and by["pain"].window_s == 5.0  # only the given field changed
    assert "distress" not in by and by["yawn"].onset_s == 1.0
    assert explicit == {"pain", "distress", "yawn"}
    assert {r.name for r in DEFAULT_RULES} - {"distress"} <= set(by)
    assert needs("perclos") == "eyes" and needs("pspi") == "aus" and needs("emotion.fear") == "emotion"
    with pytest.raises(ConfigError, match=r"rule 'pain'.*field 'threshold'.*number"):
        build_rules([{"name": "pain", "threshold": "high"}], defaults=True, make=build_dataclass, where="s")
    with pytest.raises(ConfigError, match=r"rule 'new'.*unknown field 'treshold'"):
        build_rules([{"name": "new", "signal": "x", "treshold": 1}], defaults=True, make=build_dataclass, where="s")


def test_config_file_rules_are_checked_when_the_config_loads():
    cfg = config_from_dict({"stages": [
        {"kind": "landmarks"}, {"kind": "alerts", "endpoint": "", "rules": [{"name": "face_lost", "onset_s": 5.0}]}]})
    st = cfg.stages[1].cls(cfg.stages[1].name, cfg.stages[1].params)
    assert {r.name: r for r in st.rules}["face_lost"].onset_s == 5.0
    with pytest.raises(ConfigError, match=r"stage 'alerts'.*rules\[0\].*'name' is required"):
        config_from_dict({"stages": [{"kind": "landmarks"}, {"kind": "alerts", "rules": [{"threshold": 1}]}]})
    with pytest.raises(ConfigError, match=r"stage 'alerts'.*rule 'pain'.*'clear_threshold'"):
        config_from_dict({"stages": [{"kind": "landmarks"},
                                     {"kind": "alerts", "rules": [{"name": "pain", "clear_threshold": 9.0}]}]})
    with pytest.raises(ConfigError, match=r"stage 'alerts'.*'journal_sync'"):
        config_from_dict({"stages": [{"kind": "landmarks"}, {"kind": "alerts", "journal_sync": "fast"}]})
