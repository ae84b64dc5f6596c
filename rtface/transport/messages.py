"""Builders for the payload of each topic, and one-line summaries for ``rtface listen``.

Builders run on the processing thread, return plain dicts (numpy arrays kept as arrays; no copy when already
float32 C-contiguous) and leave ``seq``/``t_publish_ns`` to :class:`~rtface.transport.publisher.Publisher`.
Field meanings and units: docs/message-schema.md.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rtface.errors import TransportError
from rtface.records import Face, FrameResult
from rtface.transport.wire import (
    TOPIC_ALERT, TOPIC_FRAME, TOPIC_SESSION, TOPIC_STATS, WIRE_VERSION, _ARRAY_KINDS, _INT_MIN, _UINT_MAX,
)

FRAME_FIELDS = frozenset({"topic", "v", "seq", "t_publish_ns", "frame", "t_capture_ns", "t_media_ns", "width",
                          "height", "source", "stage_ms", "faces", "skipped_extras"})


class _NotPlain(Exception):
    pass


def _plain(value: Any, depth: int = 0) -> Any:
    """Copy of ``value`` made only of msgpack-able values and numeric arrays; raises _NotPlain otherwise."""
    if value is None or isinstance(value, (bool, float, str, bytes)):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _UINT_MAX:
            raise _NotPlain
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
            raise _NotPlain
        return value
    if isinstance(value, np.generic) and value.dtype.kind in _ARRAY_KINDS:
        return value.item()
    if depth > 16:
        raise _NotPlain
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise _NotPlain
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    raise _NotPlain


def _copy_extras(extras: Mapping[str, Any], reserved: frozenset[str], out: dict, where: str) -> None:
    skipped = []
    for key, value in extras.items():
        if not isinstance(key, str):
            raise TransportError(f"{where}: extra key {key!r} must be a str")
        if key in reserved:
            raise TransportError(f"{where}: extra {key!r} collides with a message field; rename it in its stage")
        try:
            out[key] = _plain(value)
        except _NotPlain:
            skipped.append(key)
    if skipped:
        out.setdefault("skipped_extras", []).extend(skipped)


def _f32(a: np.ndarray, where: str, shape_tail: tuple[int, ...] = ()) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=np.float32)
    if shape_tail and out.shape[-len(shape_tail):] != shape_tail:
        raise TransportError(f"frame message: {where} has shape {out.shape}, expected (..., "
                             f"{', '.join(map(str, shape_tail))})")
    return out


_FACE_FIELDS = frozenset({"id", "confidence", "bbox_px", "landmarks_px", "pose", "canonical_cm", "neutral_ready",
                          "shape_frames", "au", "emotion", "skipped_extras"})


def _face_dict(face: Face, i: int, au_names: Sequence[str], emotion_names: Sequence[str],
               include_landmarks: bool) -> dict[str, Any]:
    where = f"faces[{i}]"
    d: dict[str, Any] = {"id": int(face.face_id), "confidence": float(face.confidence),
                         "bbox_px": _f32(face.bbox_px, f"{where}.bbox_px", (4,))}
    if include_landmarks:
        d["landmarks_px"] = _f32(face.landmarks_px, f"{where}.landmarks_px", (3,))
    p = face.pose
    if p is not None:
        d["pose"] = {"yaw_deg": float(p.yaw_deg), "pitch_deg": float(p.pitch_deg), "roll_deg": float(p.roll_deg),
                     "tx_cm": float(p.tx_cm), "ty_cm": float(p.ty_cm), "tz_cm": float(p.tz_cm),
                     "scale": float(p.scale)}
    if face.canonical_cm is not None and include_landmarks:
        d["canonical_cm"] = _f32(face.canonical_cm, f"{where}.canonical_cm", (3,))
    d["neutral_ready"] = bool(face.neutral_ready)
    d["shape_frames"] = float(face.shape_frames)
    if face.au_intensity is not None:
        inten = _f32(face.au_intensity, f"{where}.au_intensity").reshape(-1)
        if len(au_names) != inten.shape[0]:
            raise TransportError(f"frame message: {where}.au_intensity has {inten.shape[0]} values but "
                                 f"{len(au_names)} au_names were given")
        au: dict[str, Any] = {"names": list(au_names), "intensity": inten}
        if face.au_presence is not None:
            pres = np.ascontiguousarray(face.au_presence, dtype=np.bool_).reshape(-1)
            if pres.shape != inten.shape:
                raise TransportError(f"frame message: {where}.au_presence has {pres.shape[0]} values, "
                                     f"au_intensity has {inten.shape[0]}")
            au["presence"] = pres
        d["au"] = au
    if face.emotion is not None:
        probs = _f32(face.emotion, f"{where}.emotion").reshape(-1)
        if len(emotion_names) != probs.shape[0]:
            raise TransportError(f"frame message: {where}.emotion has {probs.shape[0]} values but "
                                 f"{len(emotion_names)} emotion_names were given")
        d["emotion"] = {"names": list(emotion_names), "probs": probs}
    if face.extras:
        _copy_extras(face.extras, _FACE_FIELDS, d, f"frame message {where}")
    return d


def frame_message(result: FrameResult, *, au_names: Sequence[str] = (), emotion_names: Sequence[str] = (),
                  include_landmarks: bool = True) -> dict:
    """Payload for :data:`TOPIC_FRAME` built from one FrameResult (processing thread).

    Per-frame and per-face extras are copied through when they are plain msgpack values or numeric arrays; the
    names of the others are listed in ``skipped_extras``. Raises TransportError when AU/emotion name counts do not
    match the vectors or an extra collides with a message field.
    """
    m = result.meta
    msg: dict[str, Any] = {
        "topic": TOPIC_FRAME, "v": WIRE_VERSION,
        "frame": int(m.index), "t_capture_ns": int(m.t_capture_ns), "t_media_ns": int(m.t_media_ns),
        "still": bool(m.still),
        "width": int(m.width), "height": int(m.height), "source": str(m.source),
        "stage_ms": {str(k): float(v) for k, v in result.stage_ms.items()},
        "faces": [_face_dict(f, i, au_names, emotion_names, include_landmarks) for i, f in enumerate(result.faces)],
    }
    if result.extras:
        _copy_extras(result.extras, FRAME_FIELDS, msg, "frame message")
    return msg


def _summary_copy(d: Mapping, path: str, skipped: list[str]) -> dict:
    """Copy a stats/summary mapping for the wire: non-str keys become str (e.g. int face ids), values that are not
    plain msgpack values or numeric arrays are left out and their paths appended to ``skipped``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = k if isinstance(k, str) else str(k)
        where = f"{path}.{key}" if path else key
        if isinstance(v, Mapping):
            out[key] = _summary_copy(v, where, skipped)
            continue
        try:
            out[key] = _plain(v)
        except _NotPlain:
            skipped.append(where)
    return out


def _summary_message(topic: str, d: Mapping[str, Any]) -> dict:
    if not isinstance(d, Mapping):
        raise TransportError(f"{topic} message: expected a dict, got {type(d).__name__}")
    skipped: list[str] = []
    msg = _summary_copy(d, "", skipped)
    for header in ("seq", "t_publish_ns"):
        msg.pop(header, None)
    if skipped:
        msg["skipped_fields"] = skipped
    msg.update(topic=topic, v=WIRE_VERSION)
    return msg


def stats_message(stats: Mapping[str, Any]) -> dict:
    """Payload for :data:`TOPIC_STATS`: ``stats`` (numbers and nested dicts, see schema) copied and stamped.

    Never raises on content (it runs once a second on the processing thread): non-str keys are turned into str and
    values that cannot be sent are left out, their dotted paths listed in ``skipped_fields``.
    """
    return _summary_message(TOPIC_STATS, stats)


def session_message(summary: Mapping[str, Any]) -> dict:
    """Payload for :data:`TOPIC_SESSION` (end-of-run summary); same copying rules as :func:`stats_message`."""
    return _summary_message(TOPIC_SESSION, summary)


# ---------------------------------------------------------------------------------------------------- summaries

def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    if isinstance(v, np.ndarray):
        return f"<{v.dtype.str}{list(v.shape)}>"
    if isinstance(v, dict):
        return "{" + " ".join(f"{k}={_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_fmt(x) for x in v[:6]) + (",..." if len(v) > 6 else "") + "]"
    return str(v)


def _face_summary(f: Mapping[str, Any], top_aus: int) -> str:
    parts = [f"#{f.get('id', '?')}", f"conf={float(f.get('confidence', float('nan'))):.2f}"]
    pose = f.get("pose")
    if isinstance(pose, Mapping):
        parts += [f"{k}={float(pose.get(k + '_deg', float('nan'))):.1f}" for k in ("yaw", "pitch", "roll")]
    au = f.get("au")
    if isinstance(au, Mapping) and len(au.get("names", ())):
        inten = np.asarray(au["intensity"], dtype=np.float64)
        pres = au.get("presence")
        order = np.argsort(-inten, kind="stable")
        shown = [i for i in order if pres is None or bool(pres[i])][:top_aus]
        parts += [f"{au['names'][i]}={inten[i]:.1f}" for i in shown if inten[i] > 0]
    emo = f.get("emotion")
    if isinstance(emo, Mapping) and len(emo.get("names", ())):
        probs = np.asarray(emo["probs"], dtype=np.float64)
        k = int(np.argmax(probs))
        parts.append(f"{emo['names'][k]}={probs[k]:.2f}")
    return "[" + " ".join(parts) + "]"


_DROP_WORDS = ("drop", "overrun", "skip", "torn", "error", "missed", "lost")


def _drop_counters(drops: Mapping[str, Any], path: str = "") -> list[tuple[str, Any]]:
    """Flat (dotted name, count) pairs: every top-level number, and nested ones whose name says drop/skip/error."""
    out: list[tuple[str, Any]] = []
    for k, v in drops.items():
        name = f"{path}.{k}" if path else str(k)
        if isinstance(v, Mapping):
            out += _drop_counters(v, name)
        elif isinstance(v, (int, float)) and (not path or any(w in name.lower() for w in _DROP_WORDS)):
            out.append((name, v))
    return out


def format_summary(topic: str, msg: Mapping[str, Any], *, top_aus: int = 3) -> str:
    """One readable line per message for ``rtface listen`` (any topic; unknown fields are shown compactly).

    Frame latency ``lat`` is ``t_publish_ns - t_capture_ns`` (capture to publish, ms). Never raises: a message whose
    fields have unexpected types (it passed the wire checks, but not from an rtface publisher) gets a generic line.
    """
    try:
        return _format_summary(topic, msg, top_aus)
    except Exception:  # noqa: BLE001 - any decoded message must print
        try:
            body = " ".join(f"{k}={_fmt(v)}" for k, v in dict(msg).items() if k not in ("topic", "v"))
        except Exception:  # noqa: BLE001
            body = "<unprintable>"
        return f"{topic!s:.80} (unexpected field types) {body}"[:2000]


def _format_summary(topic: str, msg: Mapping[str, Any], top_aus: int) -> str:
    if topic == TOPIC_FRAME:
        lat = (msg.get("t_publish_ns", 0) - msg.get("t_capture_ns", 0)) / 1e6
        faces = msg.get("faces", [])
        line = (f"frame {msg.get('frame', '?')}  t={msg.get('t_media_ns', 0) / 1e9:.3f}s  lat={lat:.1f}ms  "
                f"faces={len(faces)}")
        if faces:
            line += "  " + " ".join(_face_summary(f, top_aus) for f in faces)
        return line
    if topic == TOPIC_STATS:
        lat = msg.get("latency_ms", {}) or {}
        drops = msg.get("drops", {}) or {}
        line = (f"stats fps={float(msg.get('fps', float('nan'))):.1f} lat p50={float(lat.get('p50', float('nan'))):.1f}"
                f" p99={float(lat.get('p99', float('nan'))):.1f} ms")
        shown = _drop_counters(drops) if isinstance(drops, Mapping) else []
        return line + " drops: " + (" ".join(f"{k}={_fmt(v)}" for k, v in shown) if shown else "none")
    short = topic[len("rtface.v1."):] if topic.startswith("rtface.v1.") else topic
    body = {k: v for k, v in msg.items() if k not in ("topic", "v", "seq", "t_publish_ns")}
    if topic.startswith(TOPIC_ALERT + ".") or topic == TOPIC_ALERT:
        return f"ALERT {short[len('alert.'):] or short} " + " ".join(f"{k}={_fmt(v)}" for k, v in body.items())
    return f"{short} " + " ".join(f"{k}={_fmt(v)}" for k, v in body.items())
