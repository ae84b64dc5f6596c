"""The behaviour analysis at the end of a completed ``--out`` run ([output] analyze = true, the default).

Called by :meth:`rtface.graph.runner.Engine.close` after the result table got its final name and the session files
were written, so nothing here can lose or damage them: every failure is logged and reported as no files. With a
behaviour stage in the pipeline its accumulators are used as they are (no re-reading; the same numbers as the
session files); without one the table is read back (:func:`rtface.analysis.session.analyze_table`).
Runs on the processing thread.
"""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("rtface")


def analyze_after_run(engine, table: Path) -> list[Path]:
    """Write the analysis files and report beside ``table``; [] (and a warning) if anything fails."""
    try:
        from rtface.analysis.session import analyze_table, write_outputs

        stage = next((s.stage for s in engine._slots if callable(getattr(s.stage, "analysis", None))), None)
        if stage is None:
            analysis = analyze_table(table)
        else:
            stats = engine.summary.get("stats", {}) if engine.summary else {}
            analysis = stage.analysis({"source": str(table), "outcome": engine.outcome,
                                       "drops": stats.get("drops", {}),
                                       "frames_without_face": stats.get("frames_without_face",
                                                                        stage.frames_without_face)})
        return write_outputs(analysis, table)
    except Exception as exc:  # noqa: BLE001 - the run's own results are complete; say what failed and go on
        log.warning("behaviour analysis of %s failed (the result table is complete): %s: %s", table,
                    type(exc).__name__, exc)
        return []
