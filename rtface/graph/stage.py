"""Stage contract and registry.

A stage is one step of the per-frame graph. ``open``, ``warmup``, ``process`` and ``close`` are called in that
order and never concurrently for one stage; ``close`` must be safe to call twice. Which thread: the runner's
processing thread, except that (a) in pipelined file runs the *leading* stage's ``process`` runs on the front
thread (:mod:`rtface.graph.pipeline`), and (b) the later stages' ``open`` / ``warmup`` may run on a helper thread
while the leading stage opens (:class:`rtface.graph.slots.Warmup`); each hand-over is a thread join or a queue, so
a stage sees its own calls in order, as if from one thread. Stages declare the data keys they read (``inputs``) and write (``outputs``); the graph builder checks
that every input is produced by an earlier stage, so later stages plug in without touching the runner.

Data keys used by the built-in stages: ``image`` (always available), ``landmarks``, ``pose``, ``canonical``,
``aus``, ``emotion``, ``eyes``, ``gaze``, ``alerts``.

Optional hooks (no-ops here): ``bind`` receives the names earlier stages publish before ``open``; ``tick`` lets a
stage that keeps timers (alerts) act while no frame arrives; ``face_columns`` names per-face scalar extras the
stage writes, which become result-table columns; ``take_messages()`` (define it to use it) returns the
``(topic, payload)`` pairs the stage wants published on topics of their own after the frame's message (e.g. the
opt-in JPEG preview), and ``bind_source(source)`` receives the engine's source before the first frame.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rtface.records import FrameResult

_REGISTRY: dict[str, type["Stage"]] = {}


@dataclasses.dataclass(frozen=True)
class NoParams:
    """Parameters of a stage that takes none."""


class Stage:
    """Base class. Subclasses set ``kind``, ``inputs``, ``outputs`` and ``Params`` (a frozen dataclass)."""

    kind: ClassVar[str] = ""
    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type] = NoParams
    face_columns: ClassVar[tuple[str, ...]] = ()  # per-face scalar extras written as table columns

    def __init__(self, name: str, params: Any) -> None:
        self.name = name  # instance name from the config ("landmarks", "aus", ...)
        self.params = params

    def bind(self, upstream: Mapping[str, tuple[str, ...]]) -> None:
        """Called once before ``open`` with every data key the earlier stages produce, mapped to the names they
        publish for it (``{"aus": AU names, "emotion": class names, "landmarks": ()}``)."""

    def open(self) -> None:
        """Acquire resources (models, files). Called once before the first frame."""

    def warmup(self) -> None:
        """Compile/load JIT kernels and lazy models without touching per-face state. Called after ``open``,
        before the first frame, so live latency does not pay for compilation."""

    def process(self, image: np.ndarray, result: FrameResult) -> None:
        """Read ``image`` (BGR uint8, H x W x 3) and earlier outputs in ``result``; write own outputs.

        The image buffer is reused for the next frame: do not modify it or keep a reference (copy what you need).
        """
        raise NotImplementedError

    def tick(self, now_ns: int, live: bool) -> None:
        """Called on the processing thread while no frame arrives: after each ring read that timed out (so at
        most about every 0.1 s, never while frames flow). ``now_ns``: ``time.time_ns()``, the clock of ``FrameMeta.t_capture_ns``; ``live``:
        the source is live (camera, stream, real-time file). For timers that must run without frames (source or
        face lost); offline file runs should keep to media time so they stay reproducible."""

    def summary(self) -> dict[str, Any]:
        """Session-level results (e.g. OpenDBM variables). Called at end of a run; may be empty."""
        return {}

    def close(self) -> None:
        """Release resources. Safe to call twice."""


def register_stage(cls: type[Stage]) -> type[Stage]:
    """Class decorator: make a stage available to configs under ``cls.kind``."""
    if not cls.kind:
        raise ValueError(f"{cls.__name__} has no kind")
    _REGISTRY[cls.kind] = cls
    return cls


def stage_class(kind: str) -> type[Stage]:
    """Look up a registered stage class by kind (KeyError if unknown)."""
    return _REGISTRY[kind]


def registered_kinds() -> list[str]:
    return sorted(_REGISTRY)
