"""Gaze-on-face stage: which facial AOI each eye-tracker gaze sample of this frame falls on.

Reads ``result.faces`` (landmarks) and gaze samples from a provider (``rtface.gaze.providers``), chosen by config:
- a recording: ``recording`` (+ ``format``); frame ``meta.index`` gets the samples aligned to that scene frame;
- live, ``live = "pupil_remote"``: Pupil Capture / Pupil Core through Pupil Remote at ``live_host``:``live_port``;
- live, ``live = "pixel_zmq"``: any publisher of topic ``rtface.v1.gaze_in`` at ``live_endpoint``;
- or any object injected with ``GazeAOIStage(name, params, provider=...)``.
Live receivers are started in ``open`` (which waits up to ``live_connect_timeout_s`` for the connection and raises
TransportError naming the endpoint) and stopped in ``close``. Live samples are matched to frames by time
(``live_match = "time"``, see ``LiveGazeProvider``); for Pupil Capture, Pupil time is mapped to the frame capture
clock (UTC ns) with the offset measured by Pupil Remote's "t" request, plus ``offset_ns``.

Writes ``result.extras["gaze"]`` = {"t_ns" (frame clock), "x_px", "y_px", "face_id" (int64, -1 none),
"aoi" (label per sample; multi-label joined with "|"), "aoi_names"}.
All calls come from the runner's processing thread; live receivers own their own network thread.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.errors import ConfigError, TransportError
from rtface.gaze.aoi import OFF_FACE, OFF_IMAGE, AOIConfig, map_frame
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult

log = logging.getLogger("rtface.gaze")

LIVE_SOURCES = {"": "", "pupil_remote": "pupil_remote", "pixel_zmq": "pixel_zmq", "lsl": "lsl", "neon": "neon",
                "pupil": "pupil_remote", "zmq": "pixel_zmq"}  # the last two: older spellings


@dataclass(frozen=True)
class GazeAOIParams:
    aoi_shape: str = "pupil"  # "pupil" (circles + mouth ellipse) | "mesh" (landmark polygons)
    mode: str = "exclusive"  # "exclusive" (first hit in priority) | "multi" (all hits)
    radius_mode: str = "iod"  # "iod" (sizes scale with the face) | "px" (fixed pixels, Pupil Labs-style)
    eye_radius_iod: float = 0.3  # iod mode: fractions of the inter-ocular distance
    nose_radius_iod: float = 0.25
    mouth_margin_iod: float = 0.07
    dilation_iod: float = 0.0  # mesh polygons offset
    gaze_radius_iod: float = 0.1  # gaze circle (0 = use the fixed gaze_radius_px)
    gaze_radius_px: float = 20.0  # px mode: gaze circle radius; 0 = point must be inside
    eye_radius_px: float = 30.0
    nose_radius_px: float = 30.0
    mouth_margin_px: float = 10.0
    dilation_px: float = 0.0  # mesh polygons offset, px
    priority: tuple[str, ...] = ()  # () = default order (eyes > brows > nose > mouth > cheeks > forehead > chin)
    offset_ns: int = 0  # added to gaze times to reach the frame clock (live: on top of the measured clock offset)
    align_mode: str = "nearest"  # recording alignment: "nearest" | "interval"
    recording: str = ""  # recording folder ("" = no recording)
    format: str = ""  # "pupil_player" | "neon_csv" | "neon_native" | "" (detect)
    scene_width: int = 0  # size of the gaze pixel space (0 = recording's own / live: the processed frame's)
    scene_height: int = 0
    live: str = ""  # "" | "pupil_remote" (Pupil Capture) | "pixel_zmq" (topic rtface.v1.gaze_in) | "lsl" | "neon"
    live_host: str = "127.0.0.1"  # Pupil Remote host
    live_port: int = 50020  # Pupil Remote port
    live_topic: str = "gaze."  # Pupil topic prefix ("gaze.3d.0." = one eye only)
    live_endpoint: str = ""  # pixel_zmq: endpoint of the pixel-gaze publisher
    live_stream: str = ""  # lsl: name of the LSL gaze stream (channels in scene pixels)
    live_x_channel: int = 0  # lsl: channel index of x_px
    live_y_channel: int = 1  # lsl: channel index of y_px
    live_neon_port: int = 8080  # neon: Neon Companion real-time API port (host = live_host)
    live_match: str = "time"  # "time" (nearest frame by timestamp) | "arrival" (all samples since last frame)
    live_window_ns: int = 0  # time match: a frame takes samples up to t_frame + this (0 = half a frame interval)
    live_max_lag_ns: int = 200_000_000  # time match: samples older than t_frame - this are dropped (stale)
    live_connect_timeout_s: float = 5.0  # open() waits this long for the live source
    clock_sync_rounds: int = 5  # Pupil Remote "t" requests; the one with the shortest round trip is used
    queue_size: int = 4096
    min_confidence: float = 0.0
    use_numba: bool = True


@register_stage
class GazeAOIStage(Stage):
    kind = "gaze_aoi"
    inputs = ("landmarks",)
    outputs = ("gaze",)
    Params = GazeAOIParams

    def __init__(self, name: str, params: GazeAOIParams, provider: Any | None = None) -> None:
        super().__init__(name, params)
        p = params
        kw: dict[str, Any] = {}
        if p.priority:
            kw["priority"] = tuple(p.priority)
        try:
            self.aoi_cfg = AOIConfig(shape=p.aoi_shape, mode=p.mode, radius_mode=p.radius_mode,
                                     gaze_radius_px=p.gaze_radius_px, eye_radius_px=p.eye_radius_px,
                                     nose_radius_px=p.nose_radius_px, mouth_margin_px=p.mouth_margin_px,
                                     dilation_px=p.dilation_px, eye_radius_iod=p.eye_radius_iod,
                                     nose_radius_iod=p.nose_radius_iod, mouth_margin_iod=p.mouth_margin_iod,
                                     dilation_iod=p.dilation_iod, gaze_radius_iod=p.gaze_radius_iod,
                                     use_numba=p.use_numba, **kw)
        except ConfigError as exc:
            raise ConfigError(f"stage '{name}': {exc}") from None
        if p.live not in LIVE_SOURCES:
            raise ConfigError(f"stage '{name}': field 'live': {p.live!r} is not one of '', 'pupil_remote', "
                              "'pixel_zmq', 'lsl', 'neon'")
        self.live = LIVE_SOURCES[p.live]
        if self.live == "lsl" and not p.live_stream:
            raise ConfigError(f"stage '{name}': field 'live_stream' (the LSL stream name) is required when "
                              "live = 'lsl'")
        if self.live == "pixel_zmq" and not p.live_endpoint:
            raise ConfigError(f"stage '{name}': field 'live_endpoint' is required when live = 'pixel_zmq'")
        if p.live_match not in ("time", "arrival"):
            raise ConfigError(f"stage '{name}': field 'live_match': {p.live_match!r} is not 'time' or 'arrival'")
        if bool(p.scene_width) != bool(p.scene_height):
            raise ConfigError(f"stage '{name}': fields 'scene_width'/'scene_height' must be set together")
        self.provider = provider
        self._counts: dict[str, int] = {}
        self._n_samples = 0
        self._warned_receiver = False

    def open(self) -> None:
        p = self.params
        if self.provider is not None:
            return
        size = (p.scene_width, p.scene_height) if p.scene_width and p.scene_height else None
        if p.recording:
            from rtface.gaze.providers import RecordingGazeProvider
            from rtface.gaze.readers import read_recording

            track = read_recording(p.recording, p.format, size=size)
            self.provider = RecordingGazeProvider(track, p.offset_ns, p.align_mode)
        elif self.live:
            self.provider = self._open_live(size)
        else:
            raise ConfigError(f"stage '{self.name}': no gaze source: set 'recording' or 'live', or inject a provider")

    def _open_live(self, size: tuple[int, int] | None) -> Any:
        from rtface.gaze.live import (GazeQueue, LSLGazeReceiver, NeonRealtimeReceiver, PixelGazeReceiver,
                                      PupilRemoteReceiver)
        from rtface.gaze.providers import LiveGazeProvider

        p = self.params
        q = GazeQueue(p.queue_size)
        if self.live == "pupil_remote":
            rx: Any = PupilRemoteReceiver(size, p.live_host, p.live_port, topic=p.live_topic, queue=q,
                                          min_confidence=p.min_confidence, sync_clock=True,
                                          sync_rounds=p.clock_sync_rounds)
            where = f"Pupil Remote tcp://{p.live_host}:{p.live_port}"
        elif self.live == "lsl":
            rx = LSLGazeReceiver(p.live_stream, queue=q, x_channel=p.live_x_channel, y_channel=p.live_y_channel)
            where = f"LSL stream '{p.live_stream}'"
        elif self.live == "neon":
            rx = NeonRealtimeReceiver(p.live_host, p.live_neon_port, queue=q)
            where = f"Neon Companion {p.live_host}:{p.live_neon_port}"
        else:
            rx = PixelGazeReceiver(p.live_endpoint, queue=q)
            where = f"gaze input {p.live_endpoint}"
        rx.start()
        if not rx.wait_connected(p.live_connect_timeout_s):
            err = rx.error
            rx.stop()
            if isinstance(err, TransportError):
                raise TransportError(f"stage '{self.name}': {err} (is Pupil Capture running with Pupil Remote "
                                     "enabled?)" if self.live == "pupil_remote" else f"stage '{self.name}': {err}")
            raise TransportError(f"stage '{self.name}': {where}: not connected after "
                                 f"{p.live_connect_timeout_s} s" + (f" ({err})" if err else ""))
        normalised = self.live == "pupil_remote" and size is None
        return LiveGazeProvider(q, p.offset_ns, receiver=rx, normalised=normalised, match=p.live_match,
                                window_ns=p.live_window_ns, max_lag_ns=p.live_max_lag_ns)

    def warmup(self) -> None:
        """Compile the AOI hit-test kernel (numba) on the canonical face drawn at 640x480 (no state touched)."""
        from rtface.geometry.canonical_model import load_canonical_model

        v = np.asarray(load_canonical_model().vertices_cm, float)
        lm = np.stack([320 + 10 * v[:, 0], 240 - 10 * v[:, 1], -10 * v[:, 2]], axis=1)
        map_frame(np.zeros(2, np.int64), np.array([320.0, 0.0]), np.array([240.0, 0.0]), [(0, lm)], self.aoi_cfg,
                  (640, 480))

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        meta = result.meta
        s = self.provider.samples_for_frame(meta)
        rx = getattr(self.provider, "receiver", None)
        if rx is not None and getattr(rx, "error", None) is not None and not self._warned_receiver:
            self._warned_receiver = True
            log.warning("stage %s: live gaze receiver stopped: %s", self.name, rx.error)
        faces = [(f.face_id, f.landmarks_px) for f in result.faces]
        fg = map_frame(s.t_ns, s.x_px, s.y_px, faces, self.aoi_cfg, (meta.width, meta.height))
        result.extras["gaze"] = fg.as_dict()
        self._n_samples += len(fg.aoi)
        for lab in fg.aoi:
            for part in lab.split("|"):
                self._counts[part] = self._counts.get(part, 0) + 1

    def summary(self) -> dict[str, Any]:
        """Session totals: samples seen, the share (%) of samples per AOI label (multi: per AOI hit), and the
        live provider's counters (received, stale, ...) when live."""
        n = max(self._n_samples, 1)
        names = list(self.aoi_cfg.names) + [OFF_FACE, OFF_IMAGE]
        out: dict[str, Any] = {"gaze_samples": self._n_samples,
                               "gaze_aoi_percent": {k: 100.0 * self._counts.get(k, 0) / n for k in names}}
        stats = getattr(self.provider, "stats", None)
        if callable(stats):
            out["gaze_live"] = stats()
        return out

    def close(self) -> None:
        if self.provider is not None and hasattr(self.provider, "close"):
            self.provider.close()
