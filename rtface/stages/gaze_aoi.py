"""Gaze-on-face stage: which facial AOI each eye-tracker gaze sample of this frame falls on.

Reads ``result.faces`` (landmarks) and gaze samples from a provider (``rtface.gaze.providers``): a recording
(``recording`` + ``format``), a live receiver (``live`` = "pupil" | "zmq"), or any object injected with
``GazeAOIStage(name, params, provider=...)``. Writes ``result.extras["gaze"]`` = {"t_ns", "x_px", "y_px",
"face_id" (int64, -1 none), "aoi" (label per sample; multi-label joined with "|"), "aoi_names"}.
All calls come from the runner's processing thread; live receivers own their own network thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rtface.errors import ConfigError
from rtface.gaze.aoi import OFF_FACE, OFF_IMAGE, AOIConfig, map_frame
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult


@dataclass(frozen=True)
class GazeAOIParams:
    aoi_shape: str = "pupil"  # "pupil" (circles + mouth ellipse) | "mesh" (landmark polygons)
    mode: str = "exclusive"  # "exclusive" (first hit in priority) | "multi" (all hits)
    gaze_radius_px: float = 20.0  # gaze circle radius; 0 = point must be inside
    eye_radius_px: float = 30.0
    nose_radius_px: float = 30.0
    mouth_margin_px: float = 10.0
    dilation_px: float = 0.0  # mesh polygons offset, px
    priority: tuple[str, ...] = ()  # () = default order (eyes > brows > nose > mouth > cheeks > forehead > chin)
    offset_ns: int = 0  # gaze clock -> frame clock
    align_mode: str = "nearest"  # recording alignment: "nearest" | "interval"
    recording: str = ""  # recording folder ("" = no recording)
    format: str = ""  # "pupil_player" | "neon_csv" | "neon_native" | "" (detect)
    scene_width: int = 0  # override of the recording's scene size (0 = from the recording)
    scene_height: int = 0
    live: str = ""  # "" | "pupil" (Pupil Remote) | "zmq" (rtface.v1.gaze_in)
    live_host: str = "127.0.0.1"  # Pupil Remote host
    live_port: int = 50020  # Pupil Remote port
    live_endpoint: str = ""  # zmq: endpoint of the pixel-gaze publisher
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
            self.aoi_cfg = AOIConfig(shape=p.aoi_shape, mode=p.mode, gaze_radius_px=p.gaze_radius_px,
                                     eye_radius_px=p.eye_radius_px, nose_radius_px=p.nose_radius_px,
                                     mouth_margin_px=p.mouth_margin_px, dilation_px=p.dilation_px,
                                     use_numba=p.use_numba, **kw)
        except ConfigError as exc:
            raise ConfigError(f"stage '{name}': {exc}") from None
        if p.live not in ("", "pupil", "zmq"):
            raise ConfigError(f"stage '{name}': field 'live': {p.live!r} is not one of '', 'pupil', 'zmq'")
        if p.live == "zmq" and not p.live_endpoint:
            raise ConfigError(f"stage '{name}': field 'live_endpoint' is required when live = 'zmq'")
        if p.live == "pupil" and not (p.scene_width and p.scene_height):
            raise ConfigError(f"stage '{name}': fields 'scene_width'/'scene_height' are required when live = "
                              "'pupil' (norm_pos -> pixels)")
        self.provider = provider
        self._counts: dict[str, int] = {}
        self._n_samples = 0

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
        elif p.live:
            from rtface.gaze.live import GazeQueue, PixelGazeReceiver, PupilRemoteReceiver
            from rtface.gaze.providers import LiveGazeProvider

            q = GazeQueue(p.queue_size)
            if p.live == "pupil":
                rx: Any = PupilRemoteReceiver(size, p.live_host, p.live_port, queue=q,  # type: ignore[arg-type]
                                              min_confidence=p.min_confidence)
            else:
                rx = PixelGazeReceiver(p.live_endpoint, queue=q)
            rx.start()
            self.provider = LiveGazeProvider(q, p.offset_ns, receiver=rx)
        else:
            raise ConfigError(f"stage '{self.name}': no gaze source: set 'recording' or 'live', or inject a provider")

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        meta = result.meta
        s = self.provider.samples_for_frame(meta)
        faces = [(f.face_id, f.landmarks_px) for f in result.faces]
        fg = map_frame(s.t_ns, s.x_px, s.y_px, faces, self.aoi_cfg, (meta.width, meta.height))
        result.extras["gaze"] = fg.as_dict()
        self._n_samples += len(fg.aoi)
        for lab in fg.aoi:
            for part in lab.split("|"):
                self._counts[part] = self._counts.get(part, 0) + 1

    def summary(self) -> dict[str, Any]:
        """Session totals: samples seen and the share (%) of samples per AOI label (multi: per AOI hit)."""
        n = max(self._n_samples, 1)
        names = list(self.aoi_cfg.names) + [OFF_FACE, OFF_IMAGE]
        return {"gaze_samples": self._n_samples,
                "gaze_aoi_percent": {k: 100.0 * self._counts.get(k, 0) / n for k in names}}

    def close(self) -> None:
        if self.provider is not None and hasattr(self.provider, "close"):
            self.provider.close()
