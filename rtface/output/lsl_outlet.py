"""Lab Streaming Layer outlets: one regular stream of per-face signals, one irregular string Markers stream.

Channel layout (fixed for the life of the outlet, declared in the stream's XML description as XDF's meta-data
conventions ask: ``desc/channels/channel/{label, unit, type}`` for every channel): ``frame`` (the engine's frame
index, so a sample can be matched to the ZeroMQ frame message), then for each of ``faces`` face slots ``face<k>_``
+ ``id``, ``confidence``, head pose (``yaw_deg``, ``pitch_deg``, ``roll_deg``, ``tx_cm``, ``ty_cm``, ``tz_cm``),
``<AU>_r`` (FACS 0-5) and ``<AU>_c`` (0/1) per AU, ``emotion_<class>`` (probability), ``eye_closure_l``,
``eye_closure_r`` (0-1) and ``gaze_aoi`` (code of the AOI the frame's last gaze sample on that face hit; the codes
are listed in ``desc/aoi_codes``), each group present when the pipeline computes it. A face keeps its slot while it
stays in view; a new face takes the lowest free slot; an empty slot is NaN in every channel (more faces than slots:
counted in ``faces_dropped``).

Timestamps are the frame's capture time on the LSL clock: ``local_clock() - (now_utc - t_capture)``, measured at
push time (the UTC and LSL clocks are read together, so no offset is kept that could drift). ``double64`` samples
keep frame indices and float32 values exact. Owned by the thread that pushes (the engine's processing thread).
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FACE_STREAM_TYPE = "FacialExpression"  # XDF lists no content type for faces; this name says what it carries
MARKER_STREAM_TYPE = "Markers"  # XDF's content type for irregular event markers (strings here, as LabRecorder takes)


@dataclass(frozen=True)
class Channel:
    label: str
    unit: str
    type: str


def face_channels(au_names: Sequence[str], emotion_names: Sequence[str], *, pose: bool, eyes: bool,
                  gaze: bool) -> list[Channel]:
    """The channels of one face slot (labels without the ``face<k>_`` prefix)."""
    ch = [Channel("id", "id", "FaceId"), Channel("confidence", "probability", "Confidence")]
    if pose:
        ch += [Channel(f"{a}_deg", "degrees", "HeadPose") for a in ("yaw", "pitch", "roll")]
        ch += [Channel(f"{a}_cm", "centimeters", "HeadPose") for a in ("tx", "ty", "tz")]
    ch += [Channel(f"{n}_r", "FACS intensity 0-5", "ActionUnit") for n in au_names]
    ch += [Channel(f"{n}_c", "presence 0/1", "ActionUnitPresence") for n in au_names]
    ch += [Channel(f"emotion_{n}", "probability", "Emotion") for n in emotion_names]
    if eyes:
        ch += [Channel("eye_closure_l", "closure 0-1", "EyeClosure"), Channel("eye_closure_r", "closure 0-1",
                                                                               "EyeClosure")]
    if gaze:
        ch.append(Channel("gaze_aoi", "AOI code", "GazeAOI"))
    return ch


def stream_channels(n_faces: int, per_face: Sequence[Channel]) -> list[Channel]:
    return [Channel("frame", "frame index", "FrameIndex")] + [
        Channel(f"face{k}_{c.label}", c.unit, c.type) for k in range(n_faces) for c in per_face]


class SlotMap:
    """Face id -> slot (0..n-1), kept while the face stays in view (pure logic)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.slot_of: dict[int, int] = {}
        self.dropped = 0

    def assign(self, face_ids: Sequence[int]) -> tuple[dict[int, int], list[int], list[int]]:
        """Slots for this frame's faces; returns (face id -> slot, ids that entered, ids that left)."""
        present = set(face_ids)
        left = [f for f in self.slot_of if f not in present]
        for f in left:
            del self.slot_of[f]
        entered = []
        used = set(self.slot_of.values())
        for f in face_ids:
            if f in self.slot_of:
                continue
            free = next((s for s in range(self.n) if s not in used), None)
            if free is None:
                self.dropped += 1
                continue
            self.slot_of[f] = free
            used.add(free)
            entered.append(f)
        return dict(self.slot_of), entered, left


def lsl_time(t_capture_ns: int, local_clock) -> float:
    """A UTC capture time (ns) on the LSL clock (s)."""
    return local_clock() - (time.time_ns() - t_capture_ns) / 1e9


class FaceOutlets:
    """The face-signal outlet and the Markers outlet (pylsl), created together."""

    def __init__(self, *, name: str, source_id: str, n_faces: int, au_names: Sequence[str],
                 emotion_names: Sequence[str], pose: bool, eyes: bool, aoi_names: Sequence[str] | None,
                 nominal_srate: float, source: str, version: str) -> None:
        import pylsl

        self._lsl = pylsl
        self.au_names, self.emotion_names = tuple(au_names), tuple(emotion_names)
        self.aoi_codes = {n: i for i, n in enumerate(aoi_names)} if aoi_names is not None else None
        self.per_face = face_channels(au_names, emotion_names, pose=pose, eyes=eyes, gaze=aoi_names is not None)
        self.channels = stream_channels(n_faces, self.per_face)
        self.n_faces, self.pose, self.eyes = n_faces, pose, eyes
        self.slots = SlotMap(n_faces)
        self._sample = np.full(len(self.channels), np.nan)
        self._stride = len(self.per_face)
        info = pylsl.StreamInfo(name, FACE_STREAM_TYPE, len(self.channels), nominal_srate, pylsl.cf_double64,
                                source_id)
        desc = info.desc()
        chans = desc.append_child("channels")
        for c in self.channels:
            e = chans.append_child("channel")
            e.append_child_value("label", c.label)
            e.append_child_value("unit", c.unit)
            e.append_child_value("type", c.type)
        acq = desc.append_child("acquisition")
        acq.append_child_value("manufacturer", "rtface")
        acq.append_child_value("model", f"rtface {version}")
        acq.append_child_value("source", source)
        desc.append_child_value("face_slots", str(n_faces))
        desc.append_child_value("timestamps", "frame capture time mapped to the LSL clock")
        desc.append_child_value("missing", "NaN in every channel of an empty face slot")
        if aoi_names is not None:
            codes = desc.append_child("aoi_codes")
            for n, i in self.aoi_codes.items():
                a = codes.append_child("aoi")
                a.append_child_value("code", str(i))
                a.append_child_value("name", n)
        self.outlet = pylsl.StreamOutlet(info)
        minfo = pylsl.StreamInfo(f"{name} Markers", MARKER_STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                                 f"{source_id}-markers")
        md = minfo.desc()
        mc = md.append_child("channels").append_child("channel")
        mc.append_child_value("label", "event")
        mc.append_child_value("unit", "JSON")
        mc.append_child_value("type", "Marker")
        md.append_child_value("content", "one JSON object per marker: alert events and session events")
        self.markers = pylsl.StreamOutlet(minfo)
        self.samples = 0
        self.marker_count = 0

    def push_frame(self, result, gaze: dict[str, Any] | None) -> tuple[list[int], list[int]]:
        """Push one sample for ``result`` (a FrameResult); returns (face ids that entered, ids that left)."""
        s = self._sample
        s[:] = np.nan
        s[0] = result.meta.index
        slot_of, entered, left = self.slots.assign([f.face_id for f in result.faces])
        aoi_by_face = self._aoi_by_face(gaze) if self.aoi_codes is not None else {}
        for face in result.faces:
            k = slot_of.get(face.face_id)
            if k is None:
                continue
            j = 1 + k * self._stride
            vals: list[float] = [face.face_id, face.confidence]
            if self.pose:
                p = face.pose
                vals += ([p.yaw_deg, p.pitch_deg, p.roll_deg, p.tx_cm, p.ty_cm, p.tz_cm] if p is not None
                         else [math.nan] * 6)
            n_au = len(self.au_names)
            if n_au:
                inten = face.au_intensity if face.au_intensity is not None else np.full(n_au, np.nan)
                pres = face.au_presence if face.au_presence is not None else np.full(n_au, np.nan)
                vals += [float(v) for v in np.asarray(inten, np.float32)]
                vals += [float(v) for v in np.asarray(pres, np.float64)]
            if self.emotion_names:
                emo = face.emotion if face.emotion is not None else np.full(len(self.emotion_names), np.nan)
                vals += [float(v) for v in np.asarray(emo, np.float32)]
            if self.eyes:
                vals += [float(face.extras.get("eye_closure_l", math.nan)),
                         float(face.extras.get("eye_closure_r", math.nan))]
            if self.aoi_codes is not None:
                vals.append(aoi_by_face.get(face.face_id, math.nan))
            s[j:j + len(vals)] = vals
        self.outlet.push_sample(s.tolist(), lsl_time(result.meta.t_capture_ns, self._lsl.local_clock))
        self.samples += 1
        return entered, left

    def _aoi_by_face(self, gaze: dict[str, Any] | None) -> dict[int, float]:
        """Face id -> code of the AOI that the frame's last gaze sample on that face hit."""
        out: dict[int, float] = {}
        if not gaze:
            return out
        for fid, label in zip(np.asarray(gaze.get("face_id", ())).tolist(), gaze.get("aoi", ())):
            code = self.aoi_codes.get(str(label).split("|", 1)[0])
            if code is not None and fid >= 0:
                out[int(fid)] = float(code)
        return out

    def marker(self, event: dict[str, Any], t_capture_ns: int | None = None) -> None:
        """Push one marker (a JSON object) at a capture time (UTC ns) or now."""
        ts = self._lsl.local_clock() if t_capture_ns is None else lsl_time(t_capture_ns, self._lsl.local_clock)
        self.markers.push_sample([json.dumps(event, separators=(",", ":"), default=str)], ts)
        self.marker_count += 1

    def close(self) -> None:
        self.outlet = None
        self.markers = None
