"""One readable line per alert item (``rtface alerts listen``, ``rtface listen``). Pure functions."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any


def _clock(t_ns: Any) -> str:
    if not isinstance(t_ns, int) or t_ns <= 0:
        return "-"
    return dt.datetime.fromtimestamp(t_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]


def _num(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3g}"
    return str(v)


def format_alert(item: Mapping[str, Any]) -> str:
    """E.g. ``ALERT raised #3 high microsleep face 0 @ camera:0 frame 812 12:03:04.120 eyes_closed_s=1.03 >= 1 held
    1.03 s | eyes closed continuously for 1 s or more (microsleep)``."""
    kind = str(item.get("type", "?"))
    if item.get("local"):
        return f"ALERT {kind} {item.get('rule')} {item.get('priority')} (this listener) | {item.get('message', '')}"
    who = f"face {item.get('face_id')}" if isinstance(item.get("face_id"), int) and item["face_id"] >= 0 else "camera"
    parts = [f"ALERT {kind}", f"#{item.get('alert_id')}", str(item.get("priority")), str(item.get("rule")),
             f"{who} @ {item.get('camera', '?')}"]
    frame = item.get("frame")
    if isinstance(frame, int) and frame >= 0:
        parts.append(f"frame {frame}")
    parts.append(_clock(item.get("t_capture_ns")))
    ev = item.get("evidence") if isinstance(item.get("evidence"), Mapping) else {}
    if kind in ("raised", "active") and ev.get("signal"):
        parts.append(f"{ev['signal']}={_num(ev.get('value'))} {ev.get('op', '')} {_num(ev.get('threshold'))} "
                     f"held {_num(ev.get('held_s'))} s")
    if kind == "active":
        parts.append(f"state={item.get('state')}" + (f" acked by {item['acked_by']}" if item.get("acked_by") else ""))
    if item.get("by"):
        parts.append(f"by {item['by']}")
    if item.get("reason"):
        parts.append(f"({item['reason']})")
    if kind == "escalated":
        parts.append(f"from {ev.get('from_priority')}")
    line = " ".join(parts)
    if kind in ("raised", "active", "escalated") and item.get("message"):
        line += f" | {item['message']}"
    return line
