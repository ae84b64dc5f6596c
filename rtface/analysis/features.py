"""Per-face frame features: one :class:`FaceAccumulator` per face id, fed frame by frame.

The same object serves a live stream (the behaviour stage feeds it each published face) and a result table
(:mod:`rtface.analysis.table_input` feeds it each row), so both give the same numbers. Per frame it stores
scalars only (about 100 float64 values: AUs, emotions, pose, head speed, landmark asymmetry and kinematics per
region, eye signals), never the landmarks, so a session costs ~0.8 kB per face per frame (~90 MB for an hour
at 30 fps). :meth:`frame_table` adds the per-frame quantities that are pure functions of stored columns
(OpenDBM composites, ``expressivity``, eye closure).

Bounded memory (the live behaviour stage; a table read by ``rtface analyze`` keeps every frame):

- ``max_frames`` caps the session history. When it is full, every second stored row is dropped and from then on
  only every ``stride``-th frame is stored (``stride`` doubles at each such *decimation*, counted in
  ``decimations``); the history then always spans the whole session with between ``max_frames / 2`` and
  ``max_frames`` evenly spaced frames. The streamed per-frame values (kinematics, head speed) are computed on every
  frame before decimation, so each kept row is exact; session measures from a decimated history are those of the
  kept frames, except ``n_frames``, ``duration_s`` and, when the eye-closure signal is given, the blink measures,
  which are streamed over every frame (:class:`rtface.analysis.blinks.BlinkStream`).
- ``recent_s`` keeps a separate buffer of the frames of the last ``recent_s`` of media time (the rolling window,
  :meth:`recent_table`), so the live values never depend on the decimation.

Thread ownership: an accumulator belongs to the thread that calls ``add`` (the processing thread for the stage).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from rtface.analysis import asymmetry, blinks, kinematics
from rtface.analysis.expressivity import Composites
from rtface.analysis.mesh import REPORT_REGIONS

POSE_COLS = ("pitch", "yaw", "roll", "tx_cm", "ty_cm", "tz_cm")


class FaceAccumulator:
    """Stores the per-frame features of one face (module doc)."""

    def __init__(self, face_id: int, au_names=(), emotion_names=(), lr_aus=(), *, tau_s: float = 0.05,
                 max_gap_s: float = 0.5, max_frames: int = 0, recent_s: float = 0.0) -> None:
        if max_frames and max_frames < 4:
            raise ValueError(f"FaceAccumulator: max_frames must be 0 (no cap) or >= 4, got {max_frames}")
        self.face_id = int(face_id)
        self.au_names, self.emotion_names, self.lr_aus = tuple(au_names), tuple(emotion_names), tuple(lr_aus)
        cols = ["t", "frame", "confidence", "neutral_ready"]
        cols += [f"{a}_r" for a in self.au_names] + [f"{a}_c" for a in self.au_names]
        cols += [f"au_asym_{a}" for a in self.lr_aus]
        cols += [f"emotion_{e}" for e in self.emotion_names]
        cols += list(POSE_COLS) + ["head_angspeed", "head_speed"]
        cols += [f"asym_{r}" for r in REPORT_REGIONS]
        cols += [f"{k}_{r}" for k in ("speed", "acc", "jerk") for r in REPORT_REGIONS]
        cols += ["lid_l", "lid_r", "closure_l", "closure_r", "blink", "blink_duration_ms"]
        self.columns = tuple(cols)
        self._ix = {c: i for i, c in enumerate(cols)}
        self.max_frames, self.recent_s = int(max_frames), float(recent_s)
        self._buf = np.full((min(256, self.max_frames or 256), len(cols)), np.nan)
        self.n = 0  # rows in the history
        self.seen = 0  # frames added (every frame, stored or not)
        self.stride, self.decimations = 1, 0
        self.t_first = self.t_last = math.nan
        self._row = np.full(len(cols), np.nan)
        self._rec = np.full((64, len(cols)), np.nan) if self.recent_s > 0 else None
        self._rn = 0
        self.blinks = blinks.BlinkStream()
        self._kin = kinematics.LandmarkKinematics(tau_s, max_gap_s)
        self._head = kinematics.HeadKinematics(max_gap_s)
        self._comp = Composites(self.au_names)

    def add(self, t_s: float, frame: int, *, confidence: float = math.nan, neutral_ready: float = math.nan,
            au_r=None, au_c=None, au_lr=None, emotion=None, pose=None, canonical=None, mesh_px=None,
            closure=None, blink=None) -> None:
        """One frame of this face. ``pose``: (pitch, yaw, roll deg, tx, ty, tz cm); ``canonical``: (478, 3) cm;
        ``mesh_px``: (478, 2+) image points (only for the fallback lid ratio); ``au_lr``: {AU: (L, R)};
        ``closure``: (left, right) 0-1; ``blink``: (flag, duration ms)."""
        row = self._row
        row.fill(np.nan)
        ix = self._ix
        row[ix["t"]], row[ix["frame"]] = t_s, frame
        row[ix["confidence"]], row[ix["neutral_ready"]] = confidence, neutral_ready
        k = len(self.au_names)
        if k and au_r is not None:
            j = ix[f"{self.au_names[0]}_r"]
            row[j:j + k] = au_r
            if au_c is not None:
                row[j + k:j + 2 * k] = au_c
        if au_lr:
            for a, (left, right) in au_lr.items():
                if a in self.lr_aus:
                    row[ix[f"au_asym_{a}"]] = float(left) - float(right)
        if self.emotion_names and emotion is not None:
            j = ix[f"emotion_{self.emotion_names[0]}"]
            row[j:j + len(self.emotion_names)] = emotion
        if pose is not None:
            j = ix["pitch"]
            row[j:j + 6] = pose
            ang, lin = self._head.update(t_s, pose[0], pose[1], pose[2], np.asarray(pose[3:6], float))
            row[ix["head_angspeed"]], row[ix["head_speed"]] = ang, lin
        pts = None if canonical is None else np.asarray(canonical, dtype=np.float64)
        if pts is not None and np.all(np.isfinite(pts)):
            for r, v in asymmetry.region_asymmetry(pts).items():
                row[ix[f"asym_{r}"]] = v
        for name, v in self._kin.update(t_s, pts).items():
            row[ix[name]] = v
        if closure is not None:
            row[ix["closure_l"]], row[ix["closure_r"]] = closure
        elif mesh_px is not None:
            left, right = blinks.lid_ratios(np.asarray(mesh_px))
            row[ix["lid_l"]], row[ix["lid_r"]] = left, right
        if blink is not None:
            row[ix["blink"]], row[ix["blink_duration_ms"]] = blink
        c = [float(v) for v in closure if math.isfinite(v)] if closure is not None else []
        self.blinks.add(t_s, sum(c) / len(c) if c else math.nan, blink)
        self._store(row, t_s)

    def _store(self, row: np.ndarray, t_s: float) -> None:
        if self.seen == 0:
            self.t_first = t_s
        self.t_last = t_s
        keep = self.seen % self.stride == 0
        self.seen += 1
        if self._rec is not None:
            self._keep_recent(row, t_s)
        if not keep:
            return
        if self.n == len(self._buf):
            if self.max_frames and self.n >= self.max_frames:
                half = self._buf[0:self.n:2].copy()  # kept rows are every (2 stride)-th frame
                self._buf[:len(half)] = half
                self._buf[len(half):] = np.nan
                self.n, self.stride = len(half), self.stride * 2
                self.decimations += 1
                if (self.seen - 1) % self.stride:
                    return
            else:
                grow = len(self._buf) if not self.max_frames else min(len(self._buf), self.max_frames - self.n)
                self._buf = np.concatenate([self._buf, np.full((grow, len(self.columns)), np.nan)])
        self._buf[self.n] = row
        self.n += 1

    def _keep_recent(self, row: np.ndarray, t_s: float) -> None:
        if self._rn == len(self._rec):
            start = int(np.searchsorted(self._rec[:self._rn, 0], t_s - self.recent_s, side="right"))
            if start == 0:
                self._rec = np.concatenate([self._rec, np.full_like(self._rec, np.nan)])
            else:
                self._rec[:self._rn - start] = self._rec[start:self._rn]
                self._rn -= start
        self._rec[self._rn] = row
        self._rn += 1

    def recent_table(self, t_from: float) -> dict[str, np.ndarray]:
        """Frame table of the frames after media time ``t_from`` (s): from the recent buffer when there is one
        (``recent_s`` >= the span asked for), else from the history."""
        if self._rec is not None:
            start = int(np.searchsorted(self._rec[:self._rn, 0], t_from, side="right"))
            return self._table(self._rec[start:self._rn])
        start = int(np.searchsorted(self._buf[:self.n, 0], t_from, side="right"))
        return self.frame_table(start)

    @property
    def nbytes(self) -> int:
        """Bytes held by the history and recent buffers."""
        return int(self._buf.nbytes + (0 if self._rec is None else self._rec.nbytes))

    def frame_table(self, start: int = 0) -> dict[str, np.ndarray]:
        """{column: (n,) values} of frames ``start:``, plus composites, ``expressivity``, ``closure``."""
        return self._table(self._buf[start:self.n])

    def _table(self, b: np.ndarray) -> dict[str, np.ndarray]:
        d = {c: b[:, i] for i, c in enumerate(self.columns)}
        k = len(self.au_names)
        if k:
            x = np.stack([d[f"{a}_r"] for a in self.au_names], 1)
            p = np.stack([d[f"{a}_c"] for a in self.au_names], 1)
            d.update(self._comp.compute(x, np.nan_to_num(p)))
            d["expressivity"] = nanmean(x, axis=1)
        else:
            d["expressivity"] = np.full(len(b), np.nan)
        d.update(closure_columns(d))
        return d


def closure_columns(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{"closure": mean eye closure, "closure_source": ...}: the given closure, else the lid-ratio fallback."""
    given = nanmean(np.stack([d["closure_l"], d["closure_r"]]), axis=0)
    if len(d["t"]) and np.any(np.isfinite(given)):
        return {"closure": given, "closure_source": np.array(["eye_closure"])}
    fb = [blinks.closure_from_ratio(d[c]) for c in ("lid_l", "lid_r")]
    c = nanmean(np.stack(fb), axis=0)
    return {"closure": c, "closure_source": np.array(["landmarks" if np.any(np.isfinite(c)) else "none"])}


def nanmean(x: np.ndarray, axis=None):
    """np.nanmean without the warning for all-NaN slices (they give NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)
