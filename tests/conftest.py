"""Shared test fixtures: paths to the small real data shipped with the tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
LONDON = DATA / "faces" / "london"
MISC = DATA / "faces" / "misc"
VIDEO = DATA / "video"
SAMPLE_VIDEO = TESTS.parent / "rtface" / "data" / "samples" / "single_face.mp4"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA
