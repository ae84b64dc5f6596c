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
