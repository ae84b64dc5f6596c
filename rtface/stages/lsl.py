"""LSL stage: publish every frame's per-face signals and the alert / session events to Lab Streaming Layer.

Add it last (``rtface run --lsl``, or ``[[stages]] kind = "lsl"`` after the stages it reads): it reads what the
earlier stages computed (pose, AUs, emotions, eye closure, gaze AOI hits, the frame's alert events) and writes
nothing into the frame. Outlets (:mod:`rtface.output.lsl_outlet`) are created on the first frame, when the source's
frame rate (``nominal_srate``; 0 = irregular when unknown or for still images) and the AOI names are known.
Parameters: ``faces`` (face slots in the stream), ``stream_name`` (the Markers stream is ``<stream_name> Markers``),
``source_id`` (``""`` = derived from the host, the source and the stage name, so the same set-up gets the same id
after a restart and LabRecorder reconnects). Needs pylsl (``pip install 'rtface[lsl]'``).
Thread ownership: the processing thread owns the stage and its outlets.
"""
from __future__ import annotations

import hashlib
import logging
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.errors import ConfigError
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

log = logging.getLogger("rtface.lsl")
_NAME_RE = re.compile(r"^[A-Za-z0-9_ .:()-]{1,64}$")


@dataclass(frozen=True)
class LslParams:
    faces: int = 1  # face slots in the stream (a slot's channels are NaN while it holds no face)
    stream_name: str = "rtface"  # LSL stream name; the markers stream is "<stream_name> Markers"
    source_id: str = ""  # "" = derived from host, source and stage name (stable across restarts)

    def __post_init__(self) -> None:
        if not 1 <= self.faces <= 16:
            raise ValueError(f"field 'faces' must be 1..16 face slots, got {self.faces}")
        if not _NAME_RE.match(self.stream_name):
            raise ValueError(f"field 'stream_name' must be 1-64 letters, digits, spaces or _ .:()-, got "
                             f"{self.stream_name!r}")
        if self.source_id and not _NAME_RE.match(self.source_id):
            raise ValueError(f"field 'source_id' must be 1-64 letters, digits, spaces or _ .:()-")


@register_stage
class LslStage(Stage):
    kind = "lsl"
    inputs = ("landmarks",)
    outputs = ()
    Params = LslParams

    def __init__(self, name: str, params: LslParams) -> None:
        super().__init__(name, params)
        self._upstream: dict[str, tuple[str, ...]] = {}
        self._source = None
        self.outlets = None
        self.source_id = ""

    def bind(self, upstream: Mapping[str, tuple[str, ...]]) -> None:
        self._upstream = dict(upstream)

    def bind_source(self, source: Any) -> None:
        self._source = source

    def open(self) -> None:
        try:
            import pylsl  # noqa: F401
        except ImportError as exc:
            raise ConfigError(f"stage '{self.name}': the LSL outlet needs pylsl (pip install 'rtface[lsl]')") from exc

    def _stable_id(self, source_name: str) -> str:
        if self.params.source_id:
            return self.params.source_id
        key = f"{socket.gethostname()}|{source_name}|{self.name}|{self.params.stream_name}"
        return f"rtface-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}"

    def _create(self, result: FrameResult) -> None:
        from rtface import __version__
        from rtface.output.lsl_outlet import FaceOutlets

        src = self._source
        fps = getattr(src, "fps", None)
        stills = bool(getattr(src, "stills", False)) or result.meta.still
        srate = float(fps) if fps and not stills else 0.0
        gaze = result.extras.get("gaze") if "gaze" in self._upstream else None
        aoi_names = None
        if "gaze" in self._upstream:
            names = list(gaze.get("aoi_names", ())) if isinstance(gaze, Mapping) else []
            aoi_names = names + [n for n in ("off_face", "off_image") if n not in names]
        self.source_id = self._stable_id(result.meta.source)
        self.outlets = FaceOutlets(
            name=self.params.stream_name, source_id=self.source_id, n_faces=self.params.faces,
            au_names=self._upstream.get("aus", ()), emotion_names=self._upstream.get("emotion", ()),
            pose="pose" in self._upstream, eyes="eyes" in self._upstream, aoi_names=aoi_names, nominal_srate=srate,
            source=result.meta.source, version=__version__)
        self.outlets.marker({"event": "session_start", "source": result.meta.source, "frame": result.meta.index},
                            result.meta.t_capture_ns)
        log.info("LSL outlets %r (%d channels, %.3g Hz) and %r, source_id %s", self.params.stream_name,
                 len(self.outlets.channels), srate, f"{self.params.stream_name} Markers", self.source_id)

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        if self.outlets is None:
            self._create(result)
        o = self.outlets
        m = result.meta
        entered, left = o.push_frame(result, result.extras.get("gaze"))
        for fid in entered:
            o.marker({"event": "face_enter", "face_id": fid, "slot": o.slots.slot_of.get(fid), "frame": m.index},
                     m.t_capture_ns)
        for fid in left:
            o.marker({"event": "face_leave", "face_id": fid, "frame": m.index}, m.t_capture_ns)
        for ev in result.extras.get("alerts", ()) or ():
            if isinstance(ev, Mapping):
                o.marker({"event": "alert", **{k: ev.get(k) for k in ("type", "alert_id", "rule", "priority",
                                                                     "face_id", "seq")}, "frame": m.index},
                         m.t_capture_ns)

    def summary(self) -> dict[str, Any]:
        o = self.outlets
        if o is None:
            return {"samples": 0}
        return {"samples": o.samples, "markers": o.marker_count, "channels": len(o.channels),
                "faces_dropped": o.slots.dropped, "source_id": self.source_id}

    def close(self) -> None:
        o, self.outlets = self.outlets, None
        if o is not None:
            try:
                o.marker({"event": "session_end"})
            finally:
                o.close()
