"""Live gaze from a real Lab Streaming Layer outlet on this machine (pylsl ships liblsl), through the gaze stage."""
from __future__ import annotations

import time

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl", reason="pylsl is in the test extra")

from rtface.errors import ConfigError  # noqa: E402
from rtface.records import Face, FrameMeta, FrameResult  # noqa: E402
from rtface.stages.gaze_aoi import GazeAOIParams, GazeAOIStage  # noqa: E402
from tests.conftest import SAMPLE_VIDEO, video_landmarks  # noqa: E402


def test_lsl_gaze_reaches_the_stage_with_labels_and_utc_times():
    sizes, faces = video_landmarks(str(SAMPLE_VIDEO))
    lm = faces[0]
    name = f"rtface_test_gaze_{time.time_ns()}"
    info = pylsl.StreamInfo(name, "Gaze", 2, 200, "float32", name)
    outlet = pylsl.StreamOutlet(info)
    stage = GazeAOIStage("gaze", GazeAOIParams(live="lsl", live_stream=name, aoi_shape="mesh",
                                               live_match="arrival"))
    stage.open()
    try:
        targets = {"nose": lm[1, :2], "right_eye": lm[468, :2], "off_face": lm[:468, :2].min(axis=0) - 40}
        t_before = time.time_ns()
        want = []
        for _ in range(10):
            for label, xy in targets.items():
                outlet.push_sample([float(xy[0]), float(xy[1])])
                want.append(label)
            time.sleep(0.005)
        deadline = time.monotonic() + 5
        got_labels, got_t = [], []
        while len(got_labels) < len(want) and time.monotonic() < deadline:
            time.sleep(0.05)
            r = FrameResult(FrameMeta(0, time.time_ns(), 0, *sizes[0]))
            r.faces = [Face(0, 1.0, np.zeros(4, np.float32), lm)]
            stage.process(None, r)
            g = r.extras["gaze"]
            got_labels += list(g["aoi"])
            got_t += list(np.asarray(g["t_ns"]))
        assert got_labels == want
        # LSL times were mapped to the UTC frame clock
        assert all(t_before - 1e9 < t < time.time_ns() + 1e9 for t in got_t)
    finally:
        stage.close()
        del outlet


def test_lsl_needs_a_stream_name():
    with pytest.raises(ConfigError, match="live_stream"):
        GazeAOIStage("gaze", GazeAOIParams(live="lsl"))
