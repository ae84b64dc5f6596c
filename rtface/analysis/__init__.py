"""Behaviour analyses on rtface's per-frame results: expressivity, asymmetry, kinematics, blinks, head movement
and two-person coordination, per face per session and on rolling windows, plus an offline HTML report.

Entry points: ``rtface analyze results.parquet`` (:mod:`rtface.analysis.cli`), the end of a ``--out`` run
(:mod:`rtface.analysis.after_run`), the live ``behaviour`` stage (:mod:`rtface.stages.behaviour`) and, for
notebooks, :mod:`rtface.analysis.frames` (pandas DataFrame in, DataFrame out). Definitions, units and sources:
``docs/behaviour-analyses.md``. Everything here reads result tables or per-frame values; nothing feeds back
into the engine's measurements.
"""
from rtface.analysis.session import Analysis, AnalysisSettings, analyze_table, write_outputs

__all__ = ["Analysis", "AnalysisSettings", "analyze_table", "write_outputs"]
