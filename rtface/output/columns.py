"""Column layout of per-face-per-frame result tables: an OpenFace-compatible layout plus rtface's own columns.

One row per face per frame; a frame without any face gets one row with ``face_id = -1`` and ``success = 0`` (as
OpenFace does), so processed-but-empty frames are distinguishable from frames that were never processed; its
landmark, pose and AU cells are empty (NaN).

OpenFace's names keep OpenFace's meanings: ``x_i, y_i`` are the 68 iBUG points (derived from the MediaPipe mesh,
:mod:`rtface.landmarking.ibug68`), never mesh points; the mesh has its own names ``mp_x_i`` etc.

| column | unit / meaning |
|---|---|
| frame | 0-based frame index in the source (OpenFace counts from 1) |
| face_id | stable id while the face stays in view (-1: no face in this frame) |
| timestamp | source presentation time, s (OpenFace's ``timestamp``) |
| t_capture_ns | UTC wall clock when the frame was grabbed, ns |
| confidence | face detection score 0..1 |
| success | 1 if a face was found |
| bbox_x0, bbox_y0, bbox_x1, bbox_y1 | tight landmark box, px |
| pose_Tx, pose_Ty, pose_Tz | head translation in the camera frame, mm (OpenFace units) |
| pose_Rx, pose_Ry, pose_Rz | pitch, yaw, roll, radians (OpenFace order) |
| yaw_deg, pitch_deg, roll_deg | the same angles in degrees |
| neutral_ready | 1 once the person's neutral face is reliable (refined from rest frames, or explicit) |
| shape_frames | rest frames the person's face shape rests on (0 = population prior only; inf = explicit neutral) |
| x_i, y_i (i = 0..67) | iBUG 68 points in the image, px (OpenFace ``x_i, y_i``) |
| X_i, Y_i, Z_i (i = 0..67) | the same points in 3D, camera frame (x right, y down, z forward), mm (with a pose) |
| AUxx_r | Action Unit intensity, FACS 0-5 scale |
| AUxx_c | Action Unit presence, 0/1 |
| emotion_<class> | emotion probability 0..1 |
| pspi | Prkachin & Solomon pain intensity, 0-16 |
| AU45_r, AU45_c | eye closure as OpenFace's blink AU: 5 x mean closure (0-5), 1 while the eyes are closed (eyes stage; at the end of the *_r and *_c blocks, as in OpenFace) |
| eye_closure_l, eye_closure_r, eyes_closed_s, blink, blink_duration_ms, perclos, blink_rate_min | eyes stage: closure 0-1 per eye (subject's left/right), s, 0/1, ms, share 0-1, 1/min |
| mp_x_i, mp_y_i (i = 0..477) | MediaPipe mesh points in the image, px |
| mp_z_i | MediaPipe relative depth scaled like x, px (smaller = closer to the camera) |
| cX_i, cY_i, cZ_i | canonicalized mesh points, cm (only with ``write_canonical``) |

Compact Parquet layout (the default for .parquet; :meth:`TableLayout.landmark_blocks`): the scalar columns as
above, and each landmark block as one ``fixed_size_list<float32>`` column (``ibug_xy``, ``ibug_XYZ``, ``mp_xyz``,
``c_XYZ``) whose items are the flat columns in the order listed. :func:`rtface.output.tables.read_results` reads
either layout back as the flat table.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rtface.landmarking.ibug68 import N_IBUG
from rtface.records import N_LANDMARKS

BASE = ["frame", "face_id", "timestamp", "t_capture_ns", "confidence", "success",
        "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
_AU_R = re.compile(r"^AU\d+_r$")
_AU_C = re.compile(r"^AU\d+_c$")
POSE = ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz", "yaw_deg", "pitch_deg", "roll_deg",
        "neutral_ready", "shape_frames"]


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

    def ibug_columns(self) -> list[str]:
        """OpenFace's landmark block: x_0..67, y_0..67, then (with a pose) X_, Y_, Z_ 0..67."""
        r = range(N_IBUG)
        cols = [f"x_{i}" for i in r] + [f"y_{i}" for i in r]
        if self.has_pose:
            cols += [f"X_{i}" for i in r] + [f"Y_{i}" for i in r] + [f"Z_{i}" for i in r]
        return cols

    def mesh_columns(self) -> list[str]:
        """rtface's own landmark block: mp_x/y/z 0..477, then (with ``write_canonical``) cX/cY/cZ 0..477."""
        r = range(N_LANDMARKS)
        cols = [f"mp_x_{i}" for i in r] + [f"mp_y_{i}" for i in r] + [f"mp_z_{i}" for i in r]
        if self.write_canonical:
            cols += [f"cX_{i}" for i in r] + [f"cY_{i}" for i in r] + [f"cZ_{i}" for i in r]
        return cols

    def landmark_columns(self) -> list[str]:
        """Every float32 landmark column (iBUG block, then mesh block)."""
        return self.ibug_columns() + self.mesh_columns()

    def landmark_blocks(self) -> list[tuple[str, int, int]]:
        """Compact Parquet layout: (name, start, stop) of each landmark block within :meth:`landmark_columns`. A
        block is one fixed-size list<float32> column whose items are the flat columns ``start..stop`` in order
        (``ibug_xy`` = x_0..67, y_0..67; ``ibug_XYZ`` = X_, Y_, Z_ 0..67; ``mp_xyz`` = mp_x_, mp_y_, mp_z_ 0..477;
        ``c_XYZ`` = cX_, cY_, cZ_ 0..477)."""
        blocks, j = [("ibug_xy", 2 * N_IBUG)], 0
        if self.has_pose:
            blocks.append(("ibug_XYZ", 3 * N_IBUG))
        blocks.append(("mp_xyz", 3 * N_LANDMARKS))
        if self.write_canonical:
            blocks.append(("c_XYZ", 3 * N_LANDMARKS))
        out = []
        for name, size in blocks:
            out.append((name, j, j + size))
            j += size
        return out

    def compact_columns(self) -> list[str]:
        """Column order of the compact Parquet layout: head scalars, tail scalars, then the landmark blocks."""
        return self.head_columns() + self.tail_columns() + [b[0] for b in self.landmark_blocks()]

    def columns(self) -> list[str]:
        """File column order (OpenFace's relative order for the shared names): head scalars, iBUG points, AU and
        other tail scalars, then rtface's mesh and canonical points."""
        return self.head_columns() + self.ibug_columns() + self.tail_columns() + self.mesh_columns()
