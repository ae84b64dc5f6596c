"""Shared test fixtures: paths to the small real data shipped with the tests."""
from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

import pytest

os.environ.setdefault("GLOG_minloglevel", "2")
# per-user folders (control tokens, saved neutrals, alert journals): a private temporary folder, not $HOME
_SANDBOX = tempfile.mkdtemp(prefix="rtface-tests-")
atexit.register(shutil.rmtree, _SANDBOX, True)
os.environ.setdefault("RTFACE_RUNTIME_DIR", os.path.join(_SANDBOX, "run"))
os.environ.setdefault("RTFACE_DATA_DIR", os.path.join(_SANDBOX, "data"))
# engines started by tests with a packaged config bind their alert channel on a random port (no fixed-port clashes)
os.environ.setdefault("RTFACE_ALERTS_ENDPOINT", "tcp://127.0.0.1:0")

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
LONDON = DATA / "faces" / "london"
MISC = DATA / "faces" / "misc"
VIDEO = DATA / "video"
SAMPLE_VIDEO = TESTS.parent / "rtface" / "data" / "samples" / "single_face.mp4"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for endpoints that must be known before a socket binds)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.lru_cache(maxsize=4)
def video_landmarks(path: str) -> tuple[tuple[tuple[int, int], ...], tuple[np.ndarray | None, ...]]:
    """One real MediaPipe FaceMesh pass (tracking, 478 points) over a video, shared by the tests that need it.

    Returns per frame the image size (w, h) and the first face's landmarks (478, 3) float32 in px (x, y, z * w),
    or None where no face was found. Read-only arrays.
    """
    import cv2
    import mediapipe as mp

    sizes, faces = [], []
    cap = cv2.VideoCapture(path)
    with mp.solutions.face_mesh.FaceMesh(max_num_faces=1, refine_landmarks=True) as fm:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            h, w = img.shape[:2]
            res = fm.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
            lm = None
            if res.multi_face_landmarks:
                lm = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark],
                              dtype=np.float32)
                lm.flags.writeable = False
            sizes.append((w, h))
            faces.append(lm)
    cap.release()
    return tuple(sizes), tuple(faces)
