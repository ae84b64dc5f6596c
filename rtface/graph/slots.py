"""Stage slots of the engine: a stage with its error-policy state, and the helper that opens some stages on
another thread while the engine opens the rest (``Warmup``; joined before any frame, so open/warmup happen-before
every ``process`` call)."""
from __future__ import annotations

import threading
from collections.abc import Callable

from rtface.graph.stage import Stage


class StageSlot:
    """A stage plus its error policy state (processing thread only)."""

    def __init__(self, stage: Stage, on_error: str, max_errors: int) -> None:
        self.stage, self.on_error, self.max_errors = stage, on_error, max_errors
        self.errors = 0
        self.enabled = True


def open_stages(slots: list[StageSlot], upstream: dict[str, tuple[str, ...]]) -> None:
    """``bind`` (the names earlier stages publish), ``open()`` and ``warmup()`` each stage in order; ``upstream``
    is updated with what each stage produces, so a later call continues the chain."""
    for slot in slots:
        slot.stage.bind(dict(upstream))
        slot.stage.open()
        slot.stage.warmup()
        upstream.update({k: tuple(getattr(slot.stage, "names", ())) for k in slot.stage.outputs})


class Warmup:
    """:func:`open_stages` for some stages on a helper thread (after ``prepare()``, if given); :meth:`join` waits
    and re-raises an error."""

    def __init__(self, slots: list[StageSlot], upstream: dict[str, tuple[str, ...]],
                 prepare: Callable[[], None] | None = None) -> None:
        self._slots, self._upstream, self._error, self._prepare = slots, upstream, None, prepare
        self._thread = threading.Thread(target=self._run, name="rtface-warmup", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            if self._prepare is not None:
                self._prepare()
            open_stages(self._slots, self._upstream)
        except BaseException as exc:  # noqa: BLE001 - re-raised by join() in the opening thread
            self._error = exc

    def join(self, quiet: bool = False) -> None:
        self._thread.join()
        if self._error is not None and not quiet:
            raise self._error
