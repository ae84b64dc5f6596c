"""Typed, frozen settings loaded from ``configs/*.toml``; validated once at load, errors name the field.

Layout of a config file::

    [source]    spec, realtime, loop, fps
    [engine]    ring_slots, max_frames, stats_interval_s, pipeline, pipeline_live
    [publish]   enabled, endpoint, sndhwm, include_landmarks
    [output]    path, write_canonical
    [control]   enabled, endpoint
    [[stages]]  kind, name, on_error, <stage parameters ...>

Stage parameters are the fields of the stage class's ``Params`` dataclass; an unknown or mistyped field is a
ConfigError naming the stage and the field.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtface.errors import ConfigError
from rtface.graph.stage import Stage

PACKAGE_DIR = Path(__file__).resolve().parent
SAMPLE_VIDEO = PACKAGE_DIR / "data" / "samples" / "single_face.mp4"
CONFIG_DIR = PACKAGE_DIR / "configs"

# built-in stage kinds -> module that registers them (imported on demand, so heavy imports stay lazy)
BUILTIN_STAGES = {
    "landmarks": "rtface.stages.landmarks",
    "canonical": "rtface.stages.canonical",
    "aus": "rtface.stages.aus",
    "emotion": "rtface.stages.emotion",
    "gaze_aoi": "rtface.stages.gaze_aoi",
    "behaviour": "rtface.stages.behaviour",
    "eyes": "rtface.stages.eyes",
    "alerts": "rtface.stages.alerts",
    "preview": "rtface.stages.preview",
    "lsl": "rtface.stages.lsl",
}
ERROR_POLICIES = ("raise", "skip", "disable")
MIN_STATS_INTERVAL_S = 0.1  # heartbeat at most 10 times a second


def _require(ok: bool, name: str, what: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"field '{name}' {what}, got {value!r}")


def _check_endpoint(endpoint: str, section: str) -> None:
    from rtface.errors import TransportError
    from rtface.transport.guard import parse_endpoint

    try:
        parse_endpoint(endpoint, where=f"{section} endpoint")
    except TransportError as exc:
        raise ValueError(f"field 'endpoint': {exc}") from exc


@dataclass(frozen=True)
class SourceConfig:
    spec: str = "sample"  # "sample" (embedded video), camera index "0", file, folder, glob or stream URL
    realtime: bool = False  # pace a file at its own fps, as if it were a camera (live semantics: may drop)
    loop: bool = False  # restart a file at its end
    fps: float = 30.0  # frame rate assumed for image folders
    allow_incomplete: bool = False  # accept a file that ended early or had undecodable frames (else: error)
    images: str = "stills"  # image folders/globs: "stills" (each image on its own) | "sequence" (frames of a video)
    start_frame: int = 0  # video files: first frame to process (a chunk of a batch job)
    stop_frame: int = 0  # video files: stop before this frame (0 = at the end)

    def __post_init__(self) -> None:
        _require(self.fps > 0, "fps", "must be > 0", self.fps)
        _require(self.start_frame >= 0, "start_frame", "must be >= 0", self.start_frame)
        _require(self.stop_frame == 0 or self.stop_frame > self.start_frame, "stop_frame",
                 "must be 0 (to the end) or > start_frame", self.stop_frame)


@dataclass(frozen=True)
class EngineSettings:
    ring_slots: int = 8  # power of two
    max_frames: int = 0  # stop after this many frames (0 = until the source ends)
    stats_interval_s: float = 1.0  # heartbeat period, s (at least MIN_STATS_INTERVAL_S)
    pipeline: bool = True  # file runs: landmarks on a front thread, later stages/publish/write overlap with it
    pipeline_live: bool = False  # live sources too (more frames per second when processing is slower than the camera)
    pipeline_buffer_mb: float = 64.0  # file runs: images the front thread may queue ahead (at most 64 frames), MiB

    def __post_init__(self) -> None:
        _require(self.max_frames >= 0, "max_frames", "must be >= 0 (0 = until the source ends)", self.max_frames)
        _require(math.isfinite(self.pipeline_buffer_mb) and self.pipeline_buffer_mb >= 0, "pipeline_buffer_mb",
                 "must be finite and >= 0 (0 = two frames ahead)", self.pipeline_buffer_mb)
        _require(self.stats_interval_s >= MIN_STATS_INTERVAL_S, "stats_interval_s",
                 f"must be >= {MIN_STATS_INTERVAL_S} s", self.stats_interval_s)


@dataclass(frozen=True)
class PublishConfig:
    enabled: bool = True
    endpoint: str = "tcp://127.0.0.1:5555"  # loopback by default: patient data stays on this machine
    sndhwm: int = 100  # messages queued per subscriber before ZeroMQ drops (PUB never blocks)
    include_landmarks: bool = True
    wait_subscribers: int = 0  # before the first frame, wait until this many subscriptions arrived (file mode)
    wait_timeout_s: float = 10.0  # ... for at most this long, then start anyway

    def __post_init__(self) -> None:
        _check_endpoint(self.endpoint, "publish")
        _require(self.sndhwm >= 1, "sndhwm", "must be >= 1 (messages; 0 would mean unbounded)", self.sndhwm)
        _require(self.wait_subscribers >= 0, "wait_subscribers", "must be >= 0", self.wait_subscribers)
        _require(self.wait_timeout_s >= 0, "wait_timeout_s", "must be >= 0", self.wait_timeout_s)


@dataclass(frozen=True)
class ControlConfig:
    enabled: bool = True  # REP socket for commands (calibrate/save/load neutral, stats, stop)
    endpoint: str = "tcp://127.0.0.1:5556"  # loopback by default
    auth: str = "token"  # "token": state-changing commands need the engine's token | "none" (loopback only)
    token: str = ""  # fixed token (>= 16 characters); "" = $RTFACE_CONTROL_TOKEN or a random one per run
    neutral_dir: str = ""  # folder of save-/load-neutral files ("" = <user data folder>/neutrals)

    def __post_init__(self) -> None:
        _check_endpoint(self.endpoint, "control")
        _require(self.auth in ("token", "none"), "auth", "must be 'token' or 'none'", self.auth)
        _require(not self.token or len(self.token) >= 16, "token", "must be at least 16 characters", "<hidden>")


@dataclass(frozen=True)
class OutputConfig:
    path: str = ""  # .parquet or .csv; "" = no file
    write_canonical: bool = False  # also write canonical landmarks cX_i, cY_i, cZ_i (cm)
    overwrite: bool = False  # replace an existing file at path once the run completes (else: refuse at start)
    finalize_on_stop: bool = False  # a file run stopped early (ctl stop) still gets its final name (exit 0)
    analyze: bool = True  # after a completed run: behaviour analysis files + HTML report beside path (issue 13)
    parquet_layout: str = "compact"  # "compact" (landmark blocks as list columns) | "flat" (a column per value)

    def __post_init__(self) -> None:
        _require(self.parquet_layout in ("compact", "flat"), "parquet_layout", "must be 'compact' or 'flat'",
                 self.parquet_layout)


@dataclass(frozen=True)
class StageConfig:
    kind: str
    name: str
    on_error: str  # "raise" | "skip" (count and go on) | "disable" (stop calling it after max_errors)
    max_errors: int
    params: Any  # the stage's frozen Params dataclass
    cls: type[Stage] = field(repr=False, compare=False, default=Stage)


@dataclass(frozen=True)
class EngineConfig:
    source: SourceConfig = SourceConfig()
    engine: EngineSettings = EngineSettings()
    publish: PublishConfig = PublishConfig()
    output: OutputConfig = OutputConfig()
    control: ControlConfig = ControlConfig()
    stages: tuple[StageConfig, ...] = ()
    origin: str = "<defaults>"  # file the config came from, for messages


def resolve_stage_class(kind: str, where: str) -> type[Stage]:
    """Built-in kind, or ``package.module:ClassName`` for a user's own stage."""
    from rtface.graph.stage import registered_kinds, stage_class

    if ":" in kind:
        mod, _, attr = kind.partition(":")
        try:
            cls = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{where}: field 'kind': cannot load {kind!r}: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Stage)):
            raise ConfigError(f"{where}: field 'kind': {kind!r} is not a Stage subclass")
        return cls
    if kind not in registered_kinds() and kind in BUILTIN_STAGES:
        try:
            importlib.import_module(BUILTIN_STAGES[kind])
        except ImportError as exc:
            raise ConfigError(f"{where}: field 'kind': stage {kind!r} is not available: {exc}") from exc
    if kind not in registered_kinds():
        raise ConfigError(f"{where}: field 'kind': unknown stage kind {kind!r} "
                          f"(built-in: {', '.join(BUILTIN_STAGES)}; or 'package.module:Class')")
    return stage_class(kind)


def _coerce(value: Any, typ: Any, where: str, name: str) -> Any:
    origin = typing.get_origin(typ)
    if typ is Any:
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: field '{name}': expected true/false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: field '{name}': expected an integer, got {value!r}")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: field '{name}': expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: field '{name}': expected a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: field '{name}': expected a list, got {value!r}")
        args = typing.get_args(typ)
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, where, f"{name}[{i}]") for i, v in enumerate(value))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for a in args:
            try:
                return _coerce(value, a, where, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1])
    return value


def build_dataclass(cls: type, table: dict[str, Any], where: str) -> Any:
    """Instantiate frozen dataclass ``cls`` from a TOML table, rejecting unknown fields and wrong types."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(f"{where}: unknown field '{unknown[0]}' (allowed: {', '.join(names) or 'none'})")
    kwargs = {k: _coerce(v, hints[k], where, k) for k, v in table.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _stage_config(i: int, table: Any, origin: str) -> StageConfig:
    where = f"{origin}: stages[{i}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    t = dict(table)
    kind = t.pop("kind", None)
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"{where}: field 'kind' is required (a stage kind such as 'landmarks')")
    name = t.pop("name", kind.rpartition(":")[2].lower() if ":" in kind else kind)
    where = f"{origin}: stage '{name}'"
    on_error = t.pop("on_error", "skip")
    if on_error not in ERROR_POLICIES:
        raise ConfigError(f"{where}: field 'on_error': {on_error!r} is not one of {ERROR_POLICIES}")
    max_errors = t.pop("max_errors", 10)
    if isinstance(max_errors, bool) or not isinstance(max_errors, int) or max_errors < 1:
        raise ConfigError(f"{where}: field 'max_errors': expected a positive integer, got {max_errors!r}")
    cls = resolve_stage_class(kind, where)
    params = build_dataclass(cls.Params, t, where)
    return StageConfig(kind=kind, name=name, on_error=on_error, max_errors=max_errors, params=params, cls=cls)


def config_from_dict(data: dict[str, Any], origin: str = "<dict>") -> EngineConfig:
    """Validate a parsed TOML document into an EngineConfig (checks stage order too)."""
    allowed = {"source", "engine", "publish", "output", "control", "stages"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{origin}: unknown section '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")
    source = build_dataclass(SourceConfig, data.get("source", {}), f"{origin}: [source]")
    engine = build_dataclass(EngineSettings, data.get("engine", {}), f"{origin}: [engine]")
    if engine.ring_slots < 2 or engine.ring_slots & (engine.ring_slots - 1):
        raise ConfigError(f"{origin}: [engine]: field 'ring_slots' must be a power of two >= 2, "
                          f"got {engine.ring_slots}")
    publish = build_dataclass(PublishConfig, data.get("publish", {}), f"{origin}: [publish]")
    output = build_dataclass(OutputConfig, data.get("output", {}), f"{origin}: [output]")
    control = build_dataclass(ControlConfig, data.get("control", {}), f"{origin}: [control]")
    raw_stages = data.get("stages", [{"kind": "landmarks"}])
    if not isinstance(raw_stages, list):
        raise ConfigError(f"{origin}: 'stages' must be an array of tables ([[stages]])")
    stages = tuple(_stage_config(i, t, origin) for i, t in enumerate(raw_stages))
    cfg = EngineConfig(source, engine, publish, output, control, stages, origin)
    check_graph(cfg)
    return cfg


def check_graph(cfg: EngineConfig) -> None:
    """Every stage's inputs must be produced by an earlier stage; names must be unique."""
    available = {"image"}
    seen: set[str] = set()
    for st in cfg.stages:
        if st.name in seen:
            raise ConfigError(f"{cfg.origin}: stage '{st.name}': duplicate stage name (set 'name')")
        seen.add(st.name)
        missing = [k for k in st.cls.inputs if k not in available]
        if missing:
            raise ConfigError(f"{cfg.origin}: stage '{st.name}': input '{missing[0]}' is not produced by any "
                              f"earlier stage (available: {', '.join(sorted(available))})")
        available.update(st.cls.outputs)


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config: {exc}") from exc


def merge_over_default(data: dict[str, Any], origin: str = "<dict>") -> dict[str, Any]:
    """``data`` laid over the packaged default: each section's fields replace the default's, other fields and
    sections keep their default; ``[[stages]]`` replaces the default pipeline only if ``data`` declares it."""
    merged = _read_toml(CONFIG_DIR / "default.toml")
    for key, value in data.items():
        if key != "stages" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None) -> EngineConfig:
    """Load a TOML config; ``None`` = the packaged default (configs/default.toml).

    A file overrides the packaged default (:func:`merge_over_default`), so a file with only ``[publish] sndhwm``
    keeps the default pipeline and pacing. Errors name the file the field came from.
    """
    p = Path(path) if path is not None else CONFIG_DIR / "default.toml"
    if not p.is_file():
        named = CONFIG_DIR / f"{p.name}.toml" if p.suffix == "" else None
        if named is not None and named.is_file():
            p = named
        else:
            raise ConfigError(f"config file not found: {p}")
    data = _read_toml(p)
    return config_from_dict(merge_over_default(data, str(p)), str(p))


def with_overrides(cfg: EngineConfig, **sections: dict[str, Any]) -> EngineConfig:
    """Copy of cfg with some section fields replaced, e.g. ``with_overrides(cfg, source={"spec": "a.mp4"})``."""
    changes = {}
    for sec, vals in sections.items():
        if vals:
            current = getattr(cfg, sec)
            merged = {**dataclasses.asdict(current), **vals}
            changes[sec] = build_dataclass(type(current), merged, f"override [{sec}]")
    return dataclasses.replace(cfg, **changes)
