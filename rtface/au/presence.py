"""AU presence (on/off) from intensities, vectorised over AUs, state per face id, timed on media time.

- A still image: an AU is present when its intensity is ``>= on_threshold``.
- The first frame of a face in a sequence: present when ``>= clear_threshold``.
- Then an absent AU switches ON once its intensity has stayed ``>= on_threshold`` for ``on_s`` seconds of
  media time, or at once when it reaches ``clear_threshold`` (clear evidence needs no confirmation); a present AU
  switches OFF once it has stayed ``< off_threshold`` for ``off_s`` seconds. In between it keeps its state, so
  presence does not flicker around one threshold.
Durations count the media time between the first frame that crossed and the current one, so the rule means the
same at 15, 30 or 60 fps (``on_s = 0.03``: the second frame at 30 fps). Frames in which a face is not seen do not
count. NaN intensities count as "below". Thresholds are scalars or per-AU arrays (K,).

Thread ownership: one :class:`PresenceTracker` belongs to the thread that calls ``update`` (the AU stage's
processing thread); it is not locked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rtface.errors import ConfigError


@dataclass
class _FaceState:
    present: np.ndarray  # (K,) bool
    above_since: np.ndarray  # (K,) float64 media time the AU first crossed on_threshold while absent (nan = not)
    below_since: np.ndarray  # (K,) float64 media time it first fell below off_threshold while present (nan = not)
    last_t: float


class PresenceTracker:
    """Timed hysteresis presence for K AUs per face id (FACS 0-5 units for the thresholds; seconds)."""

    def __init__(self, n_aus: int, *, on_threshold: float | np.ndarray = 1.0,
                 off_threshold: float | np.ndarray = 0.5, clear_threshold: float | np.ndarray = 2.0,
                 on_s: float = 0.03, off_s: float = 0.03) -> None:
        if n_aus < 1:
            raise ConfigError(f"PresenceTracker: n_aus must be >= 1, got {n_aus}")
        try:
            on_t, off_t, clear_t = (np.broadcast_to(np.asarray(v, dtype=np.float64), (n_aus,)).copy()
                                    for v in (on_threshold, off_threshold, clear_threshold))
        except ValueError as exc:
            raise ConfigError(f"PresenceTracker: thresholds must be scalars or ({n_aus},) arrays: {exc}") from exc
        if not (np.isfinite(on_t).all() and np.isfinite(off_t).all() and np.isfinite(clear_t).all()) \
                or np.any(off_t > on_t) or np.any(clear_t < on_t):
            raise ConfigError(
                f"PresenceTracker: need finite thresholds with presence_off <= presence_on <= presence_clear, "
                f"got off={off_threshold}, on={on_threshold}, clear={clear_threshold}")
        for name, v in (("on_s", on_s), ("off_s", off_s)):
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"PresenceTracker: {name} must be finite and >= 0, got {v}")
        self.n_aus = int(n_aus)
        self.on_threshold, self.off_threshold, self.clear_threshold = on_t, off_t, clear_t
        self.on_s, self.off_s = float(on_s), float(off_s)
        self._faces: dict[int, _FaceState] = {}

    def update(self, face_id: int, intensity: np.ndarray, t_s: float, still: bool = False) -> np.ndarray:
        """Advance ``face_id``'s state with one frame (media time ``t_s``); returns presence (K,) bool (a copy).
        ``still``: an independent image: single-frame rule, no state kept."""
        x = np.asarray(intensity)
        if x.shape != (self.n_aus,):
            raise ValueError(f"PresenceTracker.update: intensity shape {x.shape}, expected ({self.n_aus},)")
        above = x >= self.on_threshold  # NaN -> False
        st = None if still else self._faces.get(face_id)
        if st is None or t_s < st.last_t:
            present = above.copy() if still else x >= self.clear_threshold
            if not still:
                nan = np.full(self.n_aus, np.nan)
                self._faces[face_id] = _FaceState(present.copy(), np.where(above, t_s, nan), nan.copy(), t_s)
            return present
        below = ~(x >= self.off_threshold)  # NaN -> True
        clear = x >= self.clear_threshold
        p = st.present
        st.above_since = np.where(~p & above, np.where(np.isnan(st.above_since), t_s, st.above_since), np.nan)
        st.below_since = np.where(p & below, np.where(np.isnan(st.below_since), t_s, st.below_since), np.nan)
        with np.errstate(invalid="ignore"):
            turn_on = ~p & (clear | (above & (t_s - st.above_since >= self.on_s - 1e-9)))
            turn_off = p & below & (t_s - st.below_since >= self.off_s - 1e-9)
        st.present = (p | turn_on) & ~turn_off
        st.above_since[turn_on] = np.nan
        st.below_since[turn_off] = np.nan
        st.last_t = t_s
        return st.present.copy()

    def present(self, face_id: int) -> np.ndarray | None:
        """Current presence of a face (copy), or None if never updated."""
        st = self._faces.get(face_id)
        return None if st is None else st.present.copy()

    def forget(self, face_id: int) -> None:
        """Drop a face's state (e.g. when its id has left the view for good)."""
        self._faces.pop(face_id, None)

    def face_ids(self) -> list[int]:
        return list(self._faces)

    def reset(self) -> None:
        self._faces.clear()
