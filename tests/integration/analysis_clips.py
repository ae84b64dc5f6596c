"""Clips built from the real London photos for the behaviour-analysis tests (CC BY 4.0, tests/data/README.md).

- :func:`two_person_clip`: two people side by side; both smile in the same episodes, the right-hand person
  ``lag_s`` later (so the right face follows the left one);
- :func:`shifted_face_clip`: one neutral face moved left and right across the frame (head translation only);
- :func:`expression_sequence`: one person's neutral and smiling photo alternating, as an image sequence.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.conftest import LONDON

SIDE = 360


def _face(pid: str, smiling: bool) -> np.ndarray:
    p = LONDON / ("smiling" if smiling else "neutral") / f"{pid}_{'08' if smiling else '03'}.jpg"
    img = cv2.imread(str(p))
    if img is None:
        raise FileNotFoundError(p)
    return cv2.resize(img, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def _write(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened(), f"cannot write {path}"
    for f in frames:
        vw.write(f)
    vw.release()
    return path


EPISODES = ((1.0, 2.2), (3.6, 4.4), (5.6, 7.2), (8.6, 9.4))


def two_person_clip(path: Path, *, lag_s: float = 0.5, fps: float = 10.0, duration_s: float = 11.0,
                    left: str = "001", right: str = "005") -> Path:
    faces = {(pid, s): _face(pid, s) for pid in (left, right) for s in (False, True)}

    def smiling(t: float) -> bool:
        return any(a <= t < b for a, b in EPISODES)

    frames = []
    for k in range(int(duration_s * fps)):
        t = k / fps
        frames.append(np.hstack([faces[(left, smiling(t))], faces[(right, smiling(t - lag_s))]]))
    return _write(path, frames, fps)


def shifted_face_clip(path: Path, *, fps: float = 30.0, duration_s: float = 2.0, amp_px: float = 80.0,
                      pid: str = "003") -> Path:
    face = _face(pid, False)
    frames = []
    for k in range(int(duration_s * fps)):
        dx = amp_px * np.sin(2 * np.pi * 0.5 * k / fps)
        canvas = np.full((SIDE, SIDE + 2 * int(amp_px) + 20, 3), 128, np.uint8)
        x0 = int(round(amp_px + 10 + dx))
        canvas[:, x0:x0 + SIDE] = face
        frames.append(canvas)
    return _write(path, frames, fps)


def expression_sequence(folder: Path, *, pid: str = "001", pattern: str = "nnnnsssnnnnsssnnnn") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, c in enumerate(pattern):
        cv2.imwrite(str(folder / f"frame_{k:03d}.png"), _face(pid, c == "s"))
    return folder
