"""Stages used by the engine tests through the ``package.module:Class`` plugin path of configs."""
from __future__ import annotations

from dataclasses import dataclass

from rtface.graph.stage import Stage


@dataclass(frozen=True)
class FailParams:
    fail_at: int = 10  # frame index at which process() starts raising
    every: bool = False  # keep failing on every later frame


class FailingStage(Stage):
    """Raises RuntimeError from frame ``fail_at`` on (a real exception, as a buggy plug-in would)."""

    kind = "failing_test_stage"
    inputs = ("landmarks",)
    Params = FailParams

    def process(self, image, result) -> None:
        i = result.meta.index
        if i == self.params.fail_at or (self.params.every and i > self.params.fail_at):
            raise RuntimeError(f"boom at frame {i}")


@dataclass(frozen=True)
class ToggleParams:
    faces: int = 2  # faces per frame, ids 0..faces-1
    period: int = 10  # frames per half cycle of the "toggle" extra (1 = flips every frame)
    go_file: str = ""  # if set, "toggle" stays 0 until this file exists (tests start alerts when listeners are in)
    on_real_faces: bool = False  # set "toggle" on the faces earlier stages found instead of making faces


class AlertToggleStage(Stage):
    """Makes ``faces`` faces per frame (zero landmarks) whose extra ``toggle`` flips between 1 and 0 every
    ``period`` frames (face i shifted by i frames): a rule on it raises and clears alerts at a known rate. Used to
    drive the real alert stage, journal and channel at high rates in the fault and load tests (mechanism)."""

    kind = "alert_toggle_test_stage"
    inputs = ("image",)
    outputs = ("landmarks",)
    Params = ToggleParams

    def process(self, image, result) -> None:
        import numpy as np

        from rtface.records import Face

        import os

        i = result.meta.index
        go = not self.params.go_file or os.path.exists(self.params.go_file)
        if self.params.on_real_faces:
            for face in result.faces:
                face.extras["toggle"] = 1.0 if go and ((i + face.face_id) // self.params.period) % 2 == 0 else 0.0
            return
        for f in range(self.params.faces):
            face = Face(f, 1.0, np.zeros(4, np.float32), np.zeros((478, 3), np.float32))
            face.extras["toggle"] = 1.0 if go and ((i + f) // self.params.period) % 2 == 0 else 0.0
            result.faces.append(face)

class ImageDigestStage(Stage):
    """Stores a digest of the image it is given in ``result.extras['digest']`` (a leading stage)."""

    kind = "digest_test_stage"
    outputs = ("digest",)

    def process(self, image, result) -> None:
        import zlib

        result.extras["digest"] = zlib.crc32(image.tobytes())


class ImageCheckStage(Stage):
    """Counts frames whose image changed between the leading stage and this one (``mismatches``)."""

    kind = "check_test_stage"
    inputs = ("digest",)

    def __init__(self, name, params) -> None:
        super().__init__(name, params)
        self.mismatches = 0
        self.seen = 0

    def process(self, image, result) -> None:
        import time
        import zlib

        time.sleep(0.003)  # slower than the leading stage: the front thread runs ahead and reuses buffers
        self.seen += 1
        if zlib.crc32(image.tobytes()) != result.extras["digest"]:
            self.mismatches += 1


@dataclass(frozen=True)
class RaiseParams:
    at: int = 5


class RaisingLeadStage(Stage):
    """A leading stage that raises at frame ``at`` (with on_error = "raise" the run must fail with it)."""

    kind = "raising_lead_test_stage"
    outputs = ("landmarks",)
    Params = RaiseParams

    def process(self, image, result) -> None:
        if result.meta.index == self.params.at:
            raise RuntimeError(f"lead stage boom at frame {result.meta.index}")
