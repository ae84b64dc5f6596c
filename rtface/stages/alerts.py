"""Alerts stage: patient-risk rules over the signals of earlier stages, journaled and sent on the acknowledged
alert channel (a thin adapter over :mod:`rtface.alerts.service`).

Config (``[[stages]] kind = "alerts"``; rules as ``[[stages.rules]]`` tables, see :mod:`rtface.alerts.rules` and
README "Alerts"): ``endpoint`` (ROUTER, default ``tcp://127.0.0.1:5557`` or ``$RTFACE_ALERTS_ENDPOINT``; ``""`` =
journal only), ``journal``
(SQLite file; ``""`` = ``<user data dir>/rtface/alerts/journal.sqlite``), ``journal_sync`` (``full`` | ``normal``),
``token`` (needed to bind beyond loopback), ``default_rules``, ``rules``, ``negative_classes`` (the emotion classes
summed into ``negative_emotion``), ``forget_face_s``, channel timing (``heartbeat_s``, ``redeliver_s``,
``peer_timeout_s``, ``max_inflight``) and ``drain_s`` (at the end of a run, how long connected listeners get to
acknowledge what is in flight). ``patient`` (``"largest"``, ``"central"`` or ``"id:N"``;
:mod:`rtface.alerts.patient`): the packaged ``face_lost`` rule then watches the patient's face
(``patient_face_count``), so it fires while visitors are still in view.

A packaged rule whose signal needs a stage the pipeline does not have (e.g. ``pain`` without ``aus``) is left out
and listed in the summary; a rule the config names explicitly must be satisfiable (ConfigError naming it).
Per frame it writes ``result.extras["alerts"]`` (the events this frame caused, short form) when there are any.
Thread ownership: the runner's processing thread owns the stage, its journal and its socket.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtface.errors import ConfigError
from rtface.graph.stage import Stage, register_stage
from rtface.records import FrameResult
from rtface.transport.alert_wire import default_alert_endpoint

log = logging.getLogger("rtface.alerts")


@dataclass(frozen=True)
class AlertParams:
    endpoint: str = field(default_factory=default_alert_endpoint)  # alert channel (ROUTER); "" = journal only
    journal: str = ""  # SQLite journal ("" = <user data dir>/rtface/alerts/journal.sqlite)
    journal_sync: str = "full"  # "full": every commit survives power loss | "normal": survives a killed process
    token: str = ""  # listeners' shared secret (required beyond loopback): "auto" = random per run, "" = none;
    # $RTFACE_ALERTS_TOKEN overrides; written to a 0600 per-user file (rtface/transport/alert_channel.py)
    default_rules: bool = True  # start from the packaged rules
    rules: tuple[Any, ...] = ()  # [[stages.rules]] tables: change packaged rules by name, or add rules
    negative_classes: tuple[str, ...] = ("sadness", "fear", "anger", "disgust")  # summed into negative_emotion
    forget_face_s: float = 10.0  # a face unseen this long: its alerts clear (reason face_gone), s
    heartbeat_s: float = 1.0  # heartbeat to each listener, s
    redeliver_s: float = 1.0  # resend an unacknowledged event after this long, s
    peer_timeout_s: float = 10.0  # forget a listener not heard from for this long, s
    max_inflight: int = 256  # unacknowledged events per listener
    drain_s: float = 2.0  # at the end of a run, wait this long at most for listeners' acks, s
    patient: str = ""  # "" = any face | "largest" | "central" | "id:N": face_lost watches that face (patient.py)
    patient_reacquire_widths: float = 1.0  # a new face this near the patient's last place (box widths) is them

    def __post_init__(self) -> None:
        """Checked when the config loads (ValueError -> ConfigError naming the stage and field)."""
        for f in ("forget_face_s", "heartbeat_s", "redeliver_s", "peer_timeout_s"):
            v = getattr(self, f)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"field '{f}' must be finite and > 0, got {v}")
        if not (math.isfinite(self.drain_s) and self.drain_s >= 0):
            raise ValueError(f"field 'drain_s' must be finite and >= 0, got {self.drain_s}")
        if self.max_inflight < 1:
            raise ValueError(f"field 'max_inflight' must be >= 1, got {self.max_inflight}")
        if self.journal_sync not in ("full", "normal"):
            raise ValueError(f"field 'journal_sync': {self.journal_sync!r} is not 'full' or 'normal'")
        if self.token and self.token != "auto" and len(self.token) < 16:
            raise ValueError("field 'token' must be \"auto\" or at least 16 characters")
        from rtface.alerts.patient import parse_patient

        parse_patient(self.patient)
        if not (math.isfinite(self.patient_reacquire_widths) and self.patient_reacquire_widths > 0):
            raise ValueError(f"field 'patient_reacquire_widths' must be finite and > 0, got "
                             f"{self.patient_reacquire_widths}")
        self.build_rules()

    def build_rules(self) -> tuple[tuple[Any, ...], set[str]]:
        """(enabled rules, names the config set itself); ValueError naming the rule and field."""
        from rtface.alerts.rules import build_rules
        from rtface.config import build_dataclass

        try:
            return build_rules(self.rules, defaults=self.default_rules, make=build_dataclass, where="rules",
                               patient=bool(self.patient.strip()))
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc


@register_stage
class AlertStage(Stage):
    kind = "alerts"
    inputs = ("landmarks",)
    outputs = ("alerts",)
    Params = AlertParams

    def __init__(self, name: str, params: AlertParams) -> None:
        super().__init__(name, params)
        try:
            self.rules, self._explicit = params.build_rules()
        except ValueError as exc:
            raise ConfigError(f"stage '{name}': {exc}") from exc
        self._upstream: dict[str, tuple[str, ...]] = {}
        self.skipped_rules: list[str] = []
        self.service = None
        self._summary: dict[str, Any] = {}

    def bind(self, upstream: Mapping[str, tuple[str, ...]]) -> None:
        self._upstream = dict(upstream)

    def open(self) -> None:
        from rtface.alerts.journal import Journal, default_journal_path
        from rtface.alerts.rules import needs
        from rtface.alerts.service import AlertService, ChannelSettings
        from rtface.alerts.signals import SignalReader
        from rtface.transport.alert_channel import alert_token

        p = self.params
        reader = SignalReader(self._upstream.get("aus", ()), self._upstream.get("emotion", ()), p.negative_classes)
        keep = []
        for r in self.rules:
            key = needs(r.signal)
            why = f"needs a '{key}' stage before it" if key is not None and key not in self._upstream else None
            why = why or (reader.check(r.signal) if r.scope == "face" else None)
            if r.signal == "patient_face_count" and not p.patient.strip():
                raise ConfigError(f"stage '{self.name}': rule '{r.name}': signal 'patient_face_count' needs "
                                  f"field 'patient' (\"largest\", \"central\" or \"id:N\")")
            if why is None:
                keep.append(r)
            elif r.name in self._explicit:
                raise ConfigError(f"stage '{self.name}': rule '{r.name}': signal {r.signal!r} {why}")
            else:
                self.skipped_rules.append(r.name)
        if self.skipped_rules:
            log.info("stage '%s': packaged rules left out (their signals are not computed): %s", self.name,
                     ", ".join(self.skipped_rules))
        journal = Journal(p.journal or default_journal_path(), sync=p.journal_sync)
        try:
            self.service = AlertService(tuple(keep), reader, journal,
                                        ChannelSettings(p.endpoint, alert_token(p.token), p.heartbeat_s,
                                                        p.redeliver_s,
                                                        p.peer_timeout_s, p.max_inflight),
                                        forget_face_s=p.forget_face_s, patient=p.patient,
                                        patient_reacquire_widths=p.patient_reacquire_widths)
        except BaseException:
            journal.close()
            raise

    @property
    def endpoint(self) -> str:
        """The alert channel's bound address ("" without a channel)."""
        return self.service.endpoint if self.service is not None else ""

    def alert_endpoint(self) -> str:
        """Same as :attr:`endpoint` (found by ``Engine.stage("alert_endpoint")``)."""
        return self.endpoint

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        events = self.service.on_frame(result)
        if events:
            result.extras["alerts"] = events

    def tick(self, now_ns: int, live: bool) -> None:
        if self.service is not None:
            self.service.on_tick(now_ns, live)

    def summary(self) -> dict[str, Any]:
        if self.service is not None:
            self._summary = {**self.service.summary(), "rules": sorted(self.service.rules),
                             "skipped_rules": list(self.skipped_rules)}
        return dict(self._summary)

    def close(self) -> None:
        svc, self.service = self.service, None
        if svc is not None:
            self._summary = {**svc.summary(), "rules": sorted(svc.rules), "skipped_rules": list(self.skipped_rules)}
            svc.close(self.params.drain_s)
