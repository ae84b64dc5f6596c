"""AU presence (on/off) from intensities with hysteresis, vectorised over AUs, state per face id.

An AU switches ON after its intensity has been ``>= on_threshold`` for ``n_on`` consecutive updates of that face,
and OFF after it has been ``< off_threshold`` for ``n_off`` consecutive updates. In between it keeps its state.
Frames in which a face is not seen do not count (its state is simply kept). NaN intensities count as "below".
Thresholds are scalars or per-AU arrays (K,) (the AU stage raises them above each AU's noise level).

Thread ownership: one :class:`PresenceTracker` belongs to the thread that calls ``update`` (the AU stage's
processing thread); it is not locked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtface.errors import ConfigError


@dataclass
class _FaceState:
    present: np.ndarray  # (K,) bool
    on_count: np.ndarray  # (K,) int32 consecutive updates at/above on_threshold while absent
    off_count: np.ndarray  # (K,) int32 consecutive updates below off_threshold while present


class PresenceTracker:
    """Hysteresis presence for K AUs per face id (FACS 0-5 units for the thresholds)."""

    def __init__(
        self,
        n_aus: int,
        *,
        on_threshold: float | np.ndarray = 1.0,
        off_threshold: float | np.ndarray = 0.5,
        n_on: int = 2,
        n_off: int = 2,
    ) -> None:
        if n_aus < 1:
            raise ConfigError(f"PresenceTracker: n_aus must be >= 1, got {n_aus}")
        try:
            on_t = np.broadcast_to(np.asarray(on_threshold, dtype=np.float64), (n_aus,)).copy()
            off_t = np.broadcast_to(np.asarray(off_threshold, dtype=np.float64), (n_aus,)).copy()
        except ValueError as exc:
            raise ConfigError(f"PresenceTracker: thresholds must be scalars or ({n_aus},) arrays: {exc}") from exc
        if not (np.isfinite(on_t).all() and np.isfinite(off_t).all()) or np.any(off_t > on_t):
            raise ConfigError(
                f"PresenceTracker: need finite thresholds with presence_off <= presence_on, "
                f"got on={on_threshold}, off={off_threshold}"
            )
        if int(n_on) < 1 or int(n_off) < 1:
            raise ConfigError(f"PresenceTracker: n_on and n_off must be >= 1, got {n_on}, {n_off}")
        self.n_aus = int(n_aus)
        self.on_threshold = on_t  # (K,) FACS
        self.off_threshold = off_t  # (K,) FACS
        self.n_on = int(n_on)
        self.n_off = int(n_off)
        self._faces: dict[int, _FaceState] = {}

    def update(self, face_id: int, intensity: np.ndarray) -> np.ndarray:
        """Advance ``face_id``'s state with one frame of intensities (K,); returns presence (K,) bool (a copy)."""
        x = np.asarray(intensity)
        if x.shape != (self.n_aus,):
            raise ValueError(f"PresenceTracker.update: intensity shape {x.shape}, expected ({self.n_aus},)")
        st = self._faces.get(face_id)
        if st is None:
            k = self.n_aus
            st = _FaceState(np.zeros(k, bool), np.zeros(k, np.int32), np.zeros(k, np.int32))
            self._faces[face_id] = st
        above = x >= self.on_threshold  # NaN -> False
        below = ~(x >= self.off_threshold)  # NaN -> True
        p = st.present
        st.on_count = np.where(~p & above, st.on_count + 1, 0).astype(np.int32)
        st.off_count = np.where(p & below, st.off_count + 1, 0).astype(np.int32)
        turn_on = ~p & (st.on_count >= self.n_on)
        turn_off = p & (st.off_count >= self.n_off)
        st.present = (p | turn_on) & ~turn_off
        st.on_count[turn_on] = 0
        st.off_count[turn_off] = 0
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
