"""Column layout of per-face-per-frame result tables (OpenFace names where the meaning overlaps).

One row per face per frame; a frame without any face gets one row with ``face_id = -1`` and ``success = 0`` (as
OpenFace does), so processed-but-empty frames are distinguishable from frames that were never processed.

| column | unit / meaning |
|---|---|
| frame | 0-based frame index in the source |
| face_id | stable id while the face stays in view (-1: no face in this frame) |
| timestamp | source presentation time, s (OpenFace's ``timestamp``) |
| t_capture_ns | UTC wall clock when the frame was grabbed, ns |
| confidence | face detection score 0..1 |
| success | 1 if a face was found |
| bbox_x0, bbox_y0, bbox_x1, bbox_y1 | tight landmark box, px |
| x_i, y_i (i = 0..477) | landmark position in the image, px |
| z_i | MediaPipe relative depth scaled like x, px (smaller = closer to the camera) |
| pose_Tx, pose_Ty, pose_Tz | head translation in the camera frame, mm (OpenFace units) |
| pose_Rx, pose_Ry, pose_Rz | pitch, yaw, roll, radians (OpenFace order) |
| yaw_deg, pitch_deg, roll_deg | the same angles in degrees |
| neutral_ready | 1 once the person's neutral face is reliable |
| AUxx_r | Action Unit intensity, FACS 0-5 scale |
| AUxx_c | Action Unit presence, 0/1 |
| emotion_<class> | emotion probability 0..1 |
| pspi | Prkachin & Solomon pain intensity, 0-16 |
| AU45_r, AU45_c | eye closure as OpenFace's blink AU: 5 x mean closure (0-5), 1 while the eyes are closed (eyes stage; at the end of the *_r and *_c blocks, as in OpenFace) |
| eye_closure_l, eye_closure_r, eyes_closed_s, blink, blink_duration_ms, perclos, blink_rate_min | eyes stage: closure 0-1 per eye (subject's left/right), s, 0/1, ms, share 0-1, 1/min |
| cX_i, cY_i, cZ_i | canonicalized landmarks, cm (only with ``write_canonical``) |
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rtface.records import N_LANDMARKS

BASE = ["frame", "face_id", "timestamp", "t_capture_ns", "confidence", "success",
        "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
_AU_R = re.compile(r"^AU\d+_r$")
_AU_C = re.compile(r"^AU\d+_c$")
POSE = ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz", "yaw_deg", "pitch_deg", "roll_deg",
        "neutral_ready"]


@dataclass(frozen=True)
class TableLayout:
    """Which optional column groups a run writes (decided from the stage graph before the first frame)."""

    has_pose: bool = False
    au_names: tuple[str, ...] = ()
    emotion_names: tuple[str, ...] = ()
    extra_scalars: tuple[str, ...] = ()  # per-face scalar extras, e.g. ("pspi",); "AUxx_r"/"AUxx_c" join the AU blocks
    write_canonical: bool = False

    def head_columns(self) -> list[str]:
        """Scalar columns written before the landmarks (OpenFace order: frame.., pose.., then landmarks)."""
        return list(BASE) + (list(POSE) if self.has_pose else [])

    def tail_columns(self) -> list[str]:
        """Scalar columns written after the landmarks (AU *_r block, AU *_c block, emotions, extras)."""
        extra_r = [c for c in self.extra_scalars if _AU_R.match(c)]
        extra_c = [c for c in self.extra_scalars if _AU_C.match(c)]
        cols = [f"{n}_r" for n in self.au_names] + extra_r + [f"{n}_c" for n in self.au_names] + extra_c
        cols += [f"emotion_{n}" for n in self.emotion_names]
        cols += [c for c in self.extra_scalars if c not in extra_r and c not in extra_c]
        return cols

    def scalar_columns(self) -> list[str]:
        return self.head_columns() + self.tail_columns()

    def landmark_columns(self) -> list[str]:
        r = range(N_LANDMARKS)
        cols = [f"x_{i}" for i in r] + [f"y_{i}" for i in r] + [f"z_{i}" for i in r]
        if self.write_canonical:
            cols += [f"cX_{i}" for i in r] + [f"cY_{i}" for i in r] + [f"cZ_{i}" for i in r]
        return cols

    def columns(self) -> list[str]:
        """File column order: head scalars, x/y/z landmarks, tail scalars, canonical landmarks (if any)."""
        lm = self.landmark_columns()
        n = 3 * N_LANDMARKS
        return self.head_columns() + lm[:n] + self.tail_columns() + lm[n:]
