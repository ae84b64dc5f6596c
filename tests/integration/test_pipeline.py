"""The pipelined engine (rtface.graph.pipeline): the leading stage on a front thread, the rest on the processing
thread. Real videos, real MediaPipe: same results as the serial engine, images intact while the front thread runs
ahead, errors and stops behave as before."""
from __future__ import annotations

import numpy as np
import pytest

from rtface.config import config_from_dict
from rtface.errors import StageError
from rtface.graph.runner import Engine
from tests.conftest import SAMPLE_VIDEO

PLUG = "tests.integration.stage_plugins"


def engine(stages, pipeline=True, live=False, buffer_mb=64.0, **source) -> Engine:
    return Engine(config_from_dict({"source": {"spec": str(SAMPLE_VIDEO), **source},
                                    "engine": {"pipeline": pipeline, "pipeline_live": live,
                                               "pipeline_buffer_mb": buffer_mb},
                                    "publish": {"enabled": False},
                                    "control": {"enabled": False}, "stages": stages}))


def test_pipelined_and_serial_engines_give_the_same_results():
    stages = [{"kind": "landmarks"}, {"kind": "canonical"}, {"kind": "aus"}, {"kind": "emotion"}]
    runs = {}
    for pipe in (True, False):
        runs[pipe] = [(r.meta.index, [(f.face_id, f.landmarks_px.copy(), f.au_intensity.copy(), f.emotion.copy())
                                      for f in r.faces]) for r in engine(stages, pipe).results()]
    assert [i for i, _ in runs[True]] == list(range(72)) == [i for i, _ in runs[False]]
    for (_, a), (_, b) in zip(runs[True], runs[False]):
        assert len(a) == len(b) == 1
        for x, y in zip(a[0], b[0]):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("buffer_mb, depth", [(0.0, 2), (8.0, 12), (64.0, 64)])
def test_images_stay_intact_while_the_front_thread_runs_ahead(buffer_mb, depth):
    """Two frames ahead (pipeline_buffer_mb = 0), as many as 8 MiB of 640x360 images hold (12), the cap (64): the
    processing thread is slower than the front thread, so it runs that far ahead and reuses its image buffers."""
    e = engine([{"kind": f"{PLUG}:ImageDigestStage", "name": "digest"},
                {"kind": f"{PLUG}:ImageCheckStage", "name": "check"}], buffer_mb=buffer_mb)
    assert sum(1 for _ in e.results()) == 72
    check = e._slots[1].stage
    assert check.seen == 72 and check.mismatches == 0
    assert e.front.depth == depth


def test_an_error_in_the_leading_stage_ends_the_run_with_it():
    e = engine([{"kind": f"{PLUG}:RaisingLeadStage", "name": "lead", "on_error": "raise"},
                {"kind": "tests.integration.stage_plugins:FailingStage", "fail_at": 1000}])
    got = []
    with pytest.raises(StageError, match="lead stage boom at frame 5"):
        for r in e.results():
            got.append(r.meta.index)
    assert got == [0, 1, 2, 3, 4] and e.outcome == "failed"
    assert e.front is not None and not e.front.alive


def test_stop_ends_a_pipelined_live_run():
    e = engine([{"kind": "landmarks"}, {"kind": "canonical"}], live=True, realtime=True, loop=True)
    for n, r in enumerate(e.results()):
        if n == 20:
            e.stop()
    assert e.outcome == "stopped" and not e.front.alive and not e.grabber.alive
    assert "stale" in e.drops()["pipeline"]


def test_live_sources_run_serially_unless_asked():
    e = engine([{"kind": "landmarks"}, {"kind": "canonical"}], realtime=True, loop=True)
    for n, r in enumerate(e.results()):
        if n == 5:
            e.stop()
    assert e.front is None and e.outcome == "stopped"
