"""The dashboard's state: what the page shows, built from stream messages and alert items (pure logic).

:class:`DashboardView` is fed by the bridge threads (under its lock) and read by the web server as one JSON text
per version (:meth:`DashboardView.snapshot`). Field names follow docs/message-schema.md. NaN and infinities become
JSON ``null`` (the page shows "-"); ``shape_frames`` of an explicit neutral is ``"explicit"``.

State, per camera ("" for a direct engine stream, the hub's camera id for ``<topic>@<camera>`` topics): the last
frame (index, times, latency, source, size), its faces (id, confidence, pose, readiness, AUs, emotions, eyes,
landmarks), the last stats heartbeat (fps, latency, drops), gaze AOI sample counts per face since the dashboard
started (dwell shares), the session message when the run ended, and whether the stream is ``live``, ``stalled``
(no message for ``stall_s``) or still ``waiting`` for its first message. Alerts: the open ones (from the alert
channel's snapshot and events, or read-only from ``rtface.v1.alert.*`` topics of a replay), the last cleared ones.
"""
from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from rtface.transport.hub import TOPIC_HUB
from rtface.transport.wire import TOPIC_ALERT, TOPIC_FRAME, TOPIC_SESSION, TOPIC_STATS

TOPIC_PREVIEW = "rtface.v1.preview"
CAMERA_SEP = "@"
RECENT_CLEARED = 20


def clean(v: Any) -> Any:
    """JSON-safe copy: numpy -> lists/numbers, NaN/inf -> None, bytes dropped, keys as str."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "b":
            return v.astype(bool).tolist()
        if v.dtype.kind in "iu":
            return v.tolist()
        return [x if math.isfinite(x) else None for x in np.asarray(v, np.float64).ravel().tolist()]
    if isinstance(v, np.generic):
        return clean(v.item())
    if isinstance(v, Mapping):
        return {str(k): clean(x) for k, x in v.items() if not isinstance(x, (bytes, bytearray, memoryview))}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    return None


def whole(v: Any) -> int | None:
    """``v`` if it is an integer (not a bool), else None: fields the wire defines as counts, ids or ns."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def split_topic(topic: str) -> tuple[str, str]:
    """``rtface.v1.frame@cam1`` -> (``rtface.v1.frame``, ``cam1``); no camera -> ``""``."""
    base, _, cam = topic.partition(CAMERA_SEP)
    return base, cam


def _round(a: Any, nd: int) -> list:
    arr = np.asarray(a, np.float64)
    return [x if math.isfinite(x) else None for x in np.round(arr, nd).ravel().tolist()]


def face_view(f: Mapping[str, Any], landmarks: bool) -> dict[str, Any]:
    """One face of a frame message, as the page uses it."""
    out: dict[str, Any] = {"id": clean(f.get("id")), "confidence": clean(f.get("confidence")),
                           "neutral_ready": bool(f.get("neutral_ready", False))}
    sf = f.get("shape_frames")
    out["shape_frames"] = "explicit" if isinstance(sf, float) and math.isinf(sf) else clean(sf)
    if isinstance(f.get("bbox_px"), np.ndarray):
        out["bbox"] = _round(f["bbox_px"], 1)
    if isinstance(f.get("pose"), Mapping):
        out["pose"] = clean(f["pose"])
    au = f.get("au")
    if isinstance(au, Mapping) and "names" in au:
        out["au"] = {"names": clean(list(au["names"])), "intensity": _round(au.get("intensity", []), 3),
                     "presence": clean(au.get("presence")) if au.get("presence") is not None else None}
    emo = f.get("emotion")
    if isinstance(emo, Mapping) and "names" in emo:
        out["emotion"] = {"names": clean(list(emo["names"])), "probs": _round(emo.get("probs", []), 4)}
    eyes = {k: clean(f.get(k)) for k in ("eye_closure_l", "eye_closure_r", "AU45_c", "eyes_closed_s", "perclos",
                                          "blink_rate_min", "blink") if k in f}
    if eyes:
        out["eyes"] = eyes
    if isinstance(f.get("behaviour"), Mapping):
        out["behaviour"] = clean(f["behaviour"])
    lm = f.get("landmarks_px")
    if landmarks and isinstance(lm, np.ndarray) and lm.ndim == 2 and lm.shape[1] >= 2:
        out["landmarks"] = _round(lm[:, :2], 1)
    return out


class CameraView:
    """Everything the page shows about one camera's stream."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.frame: dict[str, Any] | None = None
        self.faces: list[dict[str, Any]] = []
        self.stats: dict[str, Any] | None = None
        self.session: dict[str, Any] | None = None
        self.last_rx = 0.0  # monotonic s of the last message from this camera (0 = none yet)
        self.gaze_counts: dict[int, Counter] = {}  # face id -> AOI -> samples
        self.gaze_total = 0  # every gaze sample of this camera, off-face ones included
        self.gaze_off = Counter()  # off_face / off_image samples
        self.aoi_names: list[str] = []
        self.frames = 0
        self._rx: deque[float] = deque(maxlen=60)  # arrival times of frame messages, for the received rate

    def on_frame(self, msg: Mapping[str, Any], now: float, landmarks: bool) -> None:
        self.frames += 1
        self._rx.append(now)
        lat = None
        if isinstance(msg.get("t_publish_ns"), int) and isinstance(msg.get("t_capture_ns"), int):
            lat = (msg["t_publish_ns"] - msg["t_capture_ns"]) / 1e6
        source = msg.get("source")
        self.frame = {"index": whole(msg.get("frame")), "t_capture_ns": whole(msg.get("t_capture_ns")),
                      "t_media_s": (msg["t_media_ns"] / 1e9 if isinstance(msg.get("t_media_ns"), int) else None),
                      "latency_ms": lat, "source": source if isinstance(source, str) else None,
                      "width": whole(msg.get("width")), "height": whole(msg.get("height")),
                      "stage_ms": clean(msg.get("stage_ms", {})),
                      "t_receive_ns": time.time_ns()}
        self.faces = [face_view(f, landmarks) for f in msg.get("faces", []) if isinstance(f, Mapping)]
        self.session = None
        g = msg.get("gaze")
        if isinstance(g, Mapping):
            self._on_gaze(g)

    def _on_gaze(self, g: Mapping[str, Any]) -> None:
        names = g.get("aoi_names")
        if isinstance(names, list):
            self.aoi_names = [str(n) for n in names]
        fids = np.asarray(g.get("face_id", []), np.int64).ravel().tolist()
        for fid, label in zip(fids, g.get("aoi", []) or []):
            first = str(label).split("|", 1)[0]
            self.gaze_total += 1
            if fid < 0 or first in ("off_face", "off_image"):
                self.gaze_off[first] += 1
            else:
                self.gaze_counts.setdefault(int(fid), Counter())[first] += 1

    def rx_fps(self, now: float) -> float | None:
        r = [t for t in self._rx if now - t <= 2.0]
        return (len(r) - 1) / (r[-1] - r[0]) if len(r) >= 2 and r[-1] > r[0] else None

    def state(self, now: float, stall_s: float) -> str:
        if not self.last_rx:
            return "waiting"
        if self.session is not None:
            return "ended"
        return "stalled" if now - self.last_rx > stall_s else "live"

    def as_dict(self, now: float, stall_s: float) -> dict[str, Any]:
        faces = []
        for f in self.faces:
            counts = self.gaze_counts.get(f.get("id"), Counter())
            f = dict(f)
            if self.gaze_total:
                f["gaze"] = {"samples": sum(counts.values()),
                             "share": {k: counts.get(k, 0) / self.gaze_total for k in
                                       (self.aoi_names or sorted(counts))}}
            faces.append(f)
        st = self.stats or {}
        return {"name": self.name, "state": self.state(now, stall_s),
                "age_s": (now - self.last_rx) if self.last_rx else None, "frame": self.frame, "faces": faces,
                "frames_received": self.frames, "rx_fps": self.rx_fps(now),
                "stats": {k: st.get(k) for k in ("fps", "latency_ms", "drops", "stage_ms", "frames", "uptime_s",
                                                 "frames_without_face", "stage_errors")} if st else None,
                "session": self.session,
                "gaze": ({"samples": self.gaze_total, "off": dict(self.gaze_off),
                          "off_share": {k: v / self.gaze_total for k, v in self.gaze_off.items()}}
                         if self.gaze_total else None)}


class DashboardView:
    """Thread-safe state (one lock); every change bumps :attr:`version` and calls ``on_change`` (any thread)."""

    def __init__(self, *, stream_endpoint: str, alerts_endpoint: str, stall_s: float = 3.0,
                 landmarks: bool = True, on_change=None) -> None:
        self.lock = threading.Lock()
        self.stream_endpoint, self.alerts_endpoint = stream_endpoint, alerts_endpoint
        self.stall_s, self.landmarks = stall_s, landmarks
        self.on_change = on_change or (lambda: None)
        self.version = 0
        self.cameras: dict[str, CameraView] = {}
        self.transport: dict[str, Any] = {"received": 0, "missed_frames": 0, "index_gaps": 0, "malformed": 0,
                                          "reconnects": 0}
        self.alerts: dict[str, dict[str, Any]] = {}  # key (journal:alert id, or local id) -> alert
        self.cleared: deque[dict[str, Any]] = deque(maxlen=RECENT_CLEARED)
        self.channel: dict[str, Any] = {"state": "off" if not alerts_endpoint else "connecting",
                                        "endpoint": alerts_endpoint, "journal": None, "error": None}
        self.clients: dict[str, Any] = {"connected": 0, "dropped": 0, "malformed": 0}
        self.preview: dict[str, Any] | None = None
        self.preview_version = 0
        self.hub: dict[str, Any] | None = None  # last rtface.v1.hub heartbeat (when subscribed to a hub)
        self._cache: tuple[int, str] | None = None

    def _changed(self) -> None:
        self.version += 1
        self.on_change()

    def camera(self, name: str) -> CameraView:
        c = self.cameras.get(name)
        if c is None:
            c = self.cameras[name] = CameraView(name)
        return c

    # ------------------------------------------------------------------------------------------------ stream
    def on_message(self, topic: str, msg: Mapping[str, Any], counters: Mapping[str, int]) -> None:
        """One decoded stream message (stream thread)."""
        now = time.monotonic()
        base, cam = split_topic(topic)
        with self.lock:
            self.transport.update(counters)
            if base == TOPIC_HUB:  # the hub's own heartbeat: about the hub, not a camera
                self.hub = {"t_rx": now, "stats": clean(dict(msg))}
                self._changed()
                return
            c = self.camera(cam or (msg.get("camera") if isinstance(msg.get("camera"), str) else ""))
            c.last_rx = now
            try:
                self._apply_message(c, base, msg, now)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError):
                self.transport["unusable"] = self.transport.get("unusable", 0) + 1  # wire-valid, odd fields
            self._changed()

    def _apply_message(self, c: CameraView, base: str, msg: Mapping[str, Any], now: float) -> None:
        if base == TOPIC_FRAME:
            c.on_frame(msg, now, self.landmarks)
        elif base == TOPIC_STATS:
            c.stats = clean(dict(msg))
        elif base == TOPIC_SESSION:
            c.session = {"outcome": clean(msg.get("outcome")), "complete": clean(msg.get("complete"))}
        elif base.startswith(TOPIC_PREVIEW) and isinstance(msg.get("jpeg"), bytes):
            self.preview = {"type": "preview", "camera": c.name, "frame": clean(msg.get("frame")),
                            "width": clean(msg.get("width")), "height": clean(msg.get("height")),
                            "scale": clean(msg.get("scale")),
                            "jpeg": base64.b64encode(msg["jpeg"]).decode("ascii")}
            self.preview_version += 1
        elif base.startswith(TOPIC_ALERT + ".") and isinstance(msg.get("alert"), Mapping):
            self._apply_alert(dict(msg["alert"]), replayed=True)

    def tick(self, counters: Mapping[str, int] | None = None) -> None:
        """No message for a while (stream thread): ages and the stalled state move on."""
        with self.lock:
            if counters:
                self.transport.update(counters)
            self._changed()

    # ------------------------------------------------------------------------------------------------ alerts
    def on_alert_item(self, item: Mapping[str, Any]) -> None:
        """One item of the alert client (alert thread)."""
        with self.lock:
            try:
                self._apply_alert(dict(item), replayed=False)
            except (TypeError, ValueError, KeyError, AttributeError):
                self.transport["unusable"] = self.transport.get("unusable", 0) + 1
            self._changed()

    def _apply_alert(self, item: dict[str, Any], replayed: bool) -> None:
        kind = item.get("type")
        if item.get("local"):  # monitor_offline, raised by the alert client itself
            if kind == "raised":
                self.channel.update(state="offline", error=item.get("message"))
                self.alerts["local"] = {**clean(item), "state": "active", "local": True}
            else:
                self.channel.update(state="connected", error=None)
                self.alerts.pop("local", None)
            return
        key = f"{item.get('journal', '')}:{item.get('alert_id')}"
        cur = self.alerts.get(key)
        if kind in ("active", "raised"):
            a = clean(item)
            a.setdefault("state", "active")
            a["replayed"] = replayed
            if cur is None or kind == "active":
                self.alerts[key] = a
        elif cur is not None and kind == "acknowledged":
            cur.update(state="acknowledged", acked_by=item.get("by"), t_acked_ns=item.get("t_event_ns"))
        elif cur is not None and kind == "escalated":
            cur.update(priority=item.get("priority"))
        elif kind == "cleared":
            gone = self.alerts.pop(key, None) or clean(item)
            self.cleared.appendleft({**gone, "state": "cleared", "reason": item.get("reason"),
                                     "t_cleared_ns": item.get("t_event_ns")})

    def set_channel(self, **fields: Any) -> None:
        with self.lock:
            self.channel.update(fields)
            self._changed()

    def set_clients(self, **fields: Any) -> None:
        with self.lock:
            self.clients.update(fields)
            self._changed()

    # ------------------------------------------------------------------------------------------------ out
    def snapshot(self) -> tuple[int, str]:
        """(version, JSON text of the whole state); the text is built once per version."""
        with self.lock:
            if self._cache is not None and self._cache[0] == self.version:
                return self._cache
            now = time.monotonic()
            cams = [c.as_dict(now, self.stall_s) for c in self.cameras.values()]
            states = [c["state"] for c in cams]
            overall = ("waiting" if not cams else "stalled" if "stalled" in states else
                       "live" if "live" in states else states[0])
            order = {"high": 0, "medium": 1, "low": 2}
            alerts = sorted(self.alerts.values(), key=lambda a: (a.get("state") != "active",
                                                                 order.get(a.get("priority"), 3),
                                                                 -(a.get("t_capture_ns") or 0)))
            doc = {"type": "state", "version": self.version, "t_server_ns": time.time_ns(),
                   "stream": {"endpoint": self.stream_endpoint, "state": overall, "stall_s": self.stall_s,
                              **self.transport},
                   "cameras": cams, "alerts": alerts, "cleared": list(self.cleared), "channel": dict(self.channel),
                   "clients": dict(self.clients),
                   "hub": None if self.hub is None else {"age_s": round(now - self.hub["t_rx"], 3),
                                                         "stats": self.hub["stats"]}}
            self._cache = (self.version, json.dumps(doc, separators=(",", ":"), allow_nan=False))
            return self._cache

    def preview_snapshot(self) -> tuple[int, str | None]:
        with self.lock:
            return self.preview_version, (json.dumps(self.preview) if self.preview is not None else None)
