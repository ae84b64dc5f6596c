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
