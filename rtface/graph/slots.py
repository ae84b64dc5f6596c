"""Stage slots of the engine: a stage with its error-policy state, and the helper that opens some stages on
another thread while the engine opens the rest (``Warmup``; joined before any frame, so open/warmup happen-before
every ``process`` call)."""
from __future__ import annotations

import threading

from rtface.graph.stage import Stage


class StageSlot:
    """A stage plus its error policy state (processing thread only)."""

    def __init__(self, stage: Stage, on_error: str, max_errors: int) -> None:
        self.stage, self.on_error, self.max_errors = stage, on_error, max_errors
        self.errors = 0
        self.enabled = True


class Warmup:
    """``open()`` + ``warmup()`` of some stages on a helper thread; :meth:`join` waits and re-raises an error."""

    def __init__(self, slots: list[StageSlot]) -> None:
        self._slots, self._error = slots, None
        self._thread = threading.Thread(target=self._run, name="rtface-warmup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for slot in self._slots:
                slot.stage.open()
                slot.stage.warmup()
        except BaseException as exc:  # noqa: BLE001 - re-raised by join() in the opening thread
            self._error = exc

    def join(self, quiet: bool = False) -> None:
        self._thread.join()
        if self._error is not None and not quiet:
            raise self._error
