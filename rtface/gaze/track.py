"""``GazeTrack``: one eye-tracker recording in a common form, plus the clean-up every reader applies.

Conventions (all readers): ``t_ns`` and ``frame_t_ns`` are int64 nanoseconds on ONE clock named in ``clock``;
gaze is in scene-image pixels (float64, origin top-left, x right, y down). A track is built once by a reader (the
caller's thread) and is read-only afterwards, so it can be shared by the stage's provider.

Clean-up rules (``sanitize``), each counted in ``issues`` so nothing is silently lost:
- NaN / inf in t, x or y -> sample dropped ("dropped N samples with NaN ...").
- Unsorted timestamps -> stable sort ("sorted N out-of-order samples"), or DataError when ``strict``.
- Exact duplicate timestamps -> the first sample is kept, the others dropped ("dropped N duplicate ..."), or
  DataError when ``strict``.
- Gaze outside the image -> kept and flagged in ``off_image`` (the AOI label is then "off_image").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtface.errors import DataError


@dataclass
class GazeTrack:
    t_ns: np.ndarray  # (N,) int64 gaze timestamps, clock = ``clock``
    x_px: np.ndarray  # (N,) float64 scene pixels, origin top-left
    y_px: np.ndarray  # (N,) float64
    confidence: np.ndarray  # (N,) float64 0..1 (1.0 when the format has none)
    frame_t_ns: np.ndarray  # (F,) int64 scene-frame timestamps, same clock
    width: int  # scene image width, px
    height: int  # scene image height, px
    clock: str  # provenance of the clock: "pupil_s" (Pupil time), "utc_ns" (Neon), ...
    source: str = ""  # file or folder the track was read from
    world_index: np.ndarray | None = None  # (N,) int64 frame index written by the recorder, if any
    worn: np.ndarray | None = None  # (N,) bool, Neon "worn" flag, if any
    issues: list[str] = field(default_factory=list)  # clean-up notes (counts), see module doc

    def __len__(self) -> int:
        return int(self.t_ns.shape[0])

    @property
    def off_image(self) -> np.ndarray:
        """(N,) bool: the gaze point lies outside [0, width) x [0, height)."""
        return ~((self.x_px >= 0) & (self.x_px < self.width) & (self.y_px >= 0) & (self.y_px < self.height))

    def select(self, keep: np.ndarray) -> "GazeTrack":
        """A new track holding only the samples where ``keep`` (bool mask or index array) selects."""
        opt = lambda a: None if a is None else a[keep]  # noqa: E731
        return GazeTrack(self.t_ns[keep], self.x_px[keep], self.y_px[keep], self.confidence[keep],
                         self.frame_t_ns, self.width, self.height, self.clock, self.source,
                         opt(self.world_index), opt(self.worn), list(self.issues))


def sanitize(track: GazeTrack, strict: bool = False) -> GazeTrack:
    """Apply the module's clean-up rules to a freshly read track; returns a new track (input untouched)."""
    src = track.source or "<gaze>"
    n0 = len(track)
    finite = np.isfinite(track.x_px) & np.isfinite(track.y_px)
    out = track
    if not finite.all():
        out = out.select(finite)
        out.issues.append(f"dropped {n0 - int(finite.sum())} samples with NaN/inf gaze")
    t = out.t_ns
    if t.size > 1 and np.any(np.diff(t) < 0):
        n_bad = int(np.sum(np.diff(t) < 0))
        if strict:
            raise DataError(f"{src}: gaze timestamps not sorted ({n_bad} decreasing steps)")
        order = np.argsort(t, kind="stable")
        n_moved = int(np.sum(order != np.arange(t.size)))
        out = out.select(order)
        out.issues.append(f"sorted {n_moved} out-of-order samples")
    t = out.t_ns
    if t.size > 1:
        dup = np.zeros(t.size, dtype=bool)
        dup[1:] = t[1:] == t[:-1]
        if dup.any():
            if strict:
                raise DataError(f"{src}: {int(dup.sum())} duplicate gaze timestamps")
            out = out.select(~dup)
            out.issues.append(f"dropped {int(dup.sum())} duplicate-timestamp samples")
    ft = out.frame_t_ns
    if ft.size > 1 and np.any(np.diff(ft) <= 0):
        if strict:
            raise DataError(f"{src}: scene-frame timestamps not strictly increasing")
        # Frames keep their index (it is the video frame number), so only report it; alignment sorts a copy.
        out.issues.append(f"{int(np.sum(np.diff(ft) <= 0))} non-increasing scene-frame timestamps")
    n_off = int(out.off_image.sum())
    if n_off:
        out.issues.append(f"{n_off} samples off-image (kept, labelled off_image)")
    return out
