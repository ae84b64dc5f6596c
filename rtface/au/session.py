"""Session summaries per face id: OpenDBM-style AU and emotion-expressivity variables, and PSPI pain.

What is matched from OpenDBM (AiCure open_dbm: ``video_util.add_au_emotion`` / ``add_au_occ``, ``derive.py``, and
its "Emotional Expressivity" documentation), per frame, for an emotion with member AUs m:

- ``fac_<emo>intsoft`` = sum of the intensities (0-5) of the members that are *present* / (6 * number of present
  members), 0 if none is present. OpenDBM's code divides by 6 per AU (its docs say "range 0 to 1"; with a 0-5
  intensity the maximum is 5/6); we keep the divisor 6 (``OPENDBM_SOFT_DIVISOR``) so values compare directly.
- ``fac_<emo>inthard`` = the soft value if *all* members are present, else 0.
- ``fac_<emo>pres`` = 1 if all members are present, else 0.

Session (derived) variables, as OpenDBM's ``derive.py``: ``_mean``; ``_std`` is the sample standard deviation
(ddof = 1, NaN for fewer than 2 frames, like pandas); ``_pct`` is the FRACTION (0-1, despite the name) of frames
whose value is > 0. Per AU: ``fac_AU12int_mean``, ``fac_AU12int_std``, ``fac_AU12pres_pct``; per emotion:
``fac_<emo>intsoft_mean/_std``, ``fac_<emo>inthard_mean/_std``, ``fac_<emo>pres_pct``. OpenDBM only counts frames
with smoothed OpenFace confidence > 0.8; here every frame in which the AU stage published the face counts.

Emotions (OpenDBM table; short names as in its variable names): hap 6+12, sad 1+4+15, sur 1+2+5+26,
fea 1+2+4+5+7+20+26, ang 4+5+7+23, dis 9+15+16, con 12+14. Members missing from the basis are left out (listed in
:attr:`EmotionSpec.missing`); an emotion with no member in the basis gets no variables. OpenDBM's pain, positive,
negative, neutral, activation and overall composites are not computed; pain is reported as PSPI instead.

PSPI (Prkachin & Solomon 2008): AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43, range 0-16. In the original AU43 (eyes
closed) is coded 0/1; we keep that: the AU43 term is 1 if AU43 is *present* (hysteresis), else 0, so the 0-16 range
holds. A missing AU counts 0. Session: ``fac_pspi_mean/_std/_max`` and ``fac_pspi_pct`` = fraction of frames with
PSPI >= ``pspi_threshold`` (default 1.0, i.e. "PSPI > 0" on the original integer scale).

Thread ownership: a :class:`SessionAccumulator` belongs to the thread that calls ``add`` (the AU stage's
processing thread). ``summary`` may be called from it at any time (e.g. at the end of a run).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rtface.errors import ConfigError

OPENDBM_SOFT_DIVISOR = 6.0
EMOTIONS: dict[str, tuple[int, ...]] = {
    "hap": (6, 12),
    "sad": (1, 4, 15),
    "sur": (1, 2, 5, 26),
    "fea": (1, 2, 4, 5, 7, 20, 26),
    "ang": (4, 5, 7, 23),
    "dis": (9, 15, 16),
    "con": (12, 14),
}
_AU_RE = re.compile(r"^AU(\d+)$")


def au_number(name: str) -> int | None:
    """FACS number of a bilateral AU name ("AU06" -> 6); None for anything else ("AU12_L", "pspi")."""
    m = _AU_RE.match(name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class EmotionSpec:
    key: str  # OpenDBM short name: "hap", "sad", ...
    members: tuple[int, ...]  # indices into the AU names
    missing: tuple[int, ...]  # FACS numbers of members not in the basis


class CompositeSpec:
    """Per-frame composites (emotion soft/hard/presence, PSPI) for a fixed AU name order."""

    def __init__(self, names: tuple[str, ...], *, soft_divisor: float = OPENDBM_SOFT_DIVISOR) -> None:
        self.names = tuple(names)
        index: dict[int, int] = {}
        for i, n in enumerate(self.names):
            num = au_number(n)
            if num is not None and num not in index:
                index[num] = i
        self.au_index = index
        emos = []
        for key, aus in EMOTIONS.items():
            members = tuple(index[a] for a in aus if a in index)
            missing = tuple(a for a in aus if a not in index)
            if members:
                emos.append(EmotionSpec(key, members, missing))
        self.emotions: tuple[EmotionSpec, ...] = tuple(emos)
        k = len(self.names)
        self._M = np.zeros((len(emos), k))
        for e, spec in enumerate(emos):
            self._M[e, list(spec.members)] = 1.0
        self._n_members = self._M.sum(axis=1)
        self.soft_divisor = float(soft_divisor)
        self._pspi_idx = {a: index.get(a) for a in (4, 6, 7, 9, 10, 43)}

    def emotion(self, intensity: np.ndarray, presence: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(soft, hard, present) arrays (E,) float64 for one frame, in :attr:`emotions` order."""
        p = np.asarray(presence, dtype=np.float64)
        x = np.asarray(intensity, dtype=np.float64)
        num = self._M @ (x * p)
        cnt = self._M @ p
        soft = np.divide(num, self.soft_divisor * cnt, out=np.zeros_like(num), where=cnt > 0)
        allp = (cnt == self._n_members).astype(np.float64)
        return soft, soft * allp, allp

    def pspi(self, intensity: np.ndarray, presence: np.ndarray) -> float:
        """PSPI 0-16 for one frame (see module doc: AU43 term binary from presence; missing AUs count 0)."""

        def v(a: int) -> float:
            i = self._pspi_idx[a]
            return 0.0 if i is None else float(intensity[i])

        i43 = self._pspi_idx[43]
        au43 = 0.0 if i43 is None else float(bool(presence[i43]))
        return v(4) + max(v(6), v(7)) + max(v(9), v(10)) + au43


class _Running:
    """Vectorised running count / mean / M2 (Welford) / count of values > 0 / count >= threshold / max."""

    def __init__(self, n: int) -> None:
        self.n = 0
        self.mean = np.zeros(n)
        self.m2 = np.zeros(n)
        self.pos = np.zeros(n, np.int64)
        self.max = np.full(n, -np.inf)

    def add(self, v: np.ndarray) -> None:
        self.n += 1
        delta = v - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (v - self.mean)
        self.pos += v > 0
        np.maximum(self.max, v, out=self.max)

    def std(self) -> np.ndarray:
        if self.n < 2:
            return np.full(self.mean.shape, np.nan)
        return np.sqrt(np.maximum(self.m2, 0.0) / (self.n - 1))


class SessionAccumulator:
    """Accumulates per-frame AU intensities/presence per face id; :meth:`summary` gives the session variables."""

    def __init__(
        self,
        names: tuple[str, ...],
        *,
        pspi_threshold: float = 1.0,
        soft_divisor: float = OPENDBM_SOFT_DIVISOR,
    ) -> None:
        if not np.isfinite(pspi_threshold):
            raise ConfigError(f"SessionAccumulator: pspi_threshold must be finite, got {pspi_threshold}")
        if not soft_divisor > 0:
            raise ConfigError(f"SessionAccumulator: soft_divisor must be > 0, got {soft_divisor}")
        self.spec = CompositeSpec(tuple(names), soft_divisor=soft_divisor)
        self.names = self.spec.names
        self.pspi_threshold = float(pspi_threshold)
        self._k = len(self.names)
        self._e = len(self.spec.emotions)
        # channel layout: [int K | pres K | soft E | hard E | epres E | pspi 1 | pspi>=thr 1]
        self._n_ch = 2 * self._k + 3 * self._e + 2
        self._faces: dict[int, _Running] = {}

    def add(self, face_id: int, intensity: np.ndarray, presence: np.ndarray) -> float:
        """Add one frame of one face (intensity (K,) 0-5, presence (K,) bool); returns that frame's PSPI."""
        x = np.asarray(intensity, dtype=np.float64)
        p = np.asarray(presence, dtype=bool)
        if x.shape != (self._k,) or p.shape != (self._k,):
            raise ValueError(f"SessionAccumulator.add: shapes {x.shape}, {p.shape}, expected ({self._k},)")
        soft, hard, epres = self.spec.emotion(x, p)
        pspi = self.spec.pspi(x, p)
        v = np.concatenate([x, p.astype(np.float64), soft, hard, epres, [pspi, float(pspi >= self.pspi_threshold)]])
        acc = self._faces.get(face_id)
        if acc is None:
            acc = self._faces[face_id] = _Running(self._n_ch)
        acc.add(v)
        return pspi

    def n_frames(self, face_id: int) -> int:
        acc = self._faces.get(face_id)
        return 0 if acc is None else acc.n

    def reset(self) -> None:
        self._faces.clear()

    def summary(self) -> dict[int, dict[str, float]]:
        """{face_id: {variable: value}} (see module doc for names and definitions)."""
        out: dict[int, dict[str, float]] = {}
        k, e = self._k, self._e
        for fid, acc in self._faces.items():
            n = acc.n
            std = acc.std()
            frac = acc.pos / n
            d: dict[str, float] = {"n_frames": float(n)}
            for i, name in enumerate(self.names):
                d[f"fac_{name}int_mean"] = float(acc.mean[i])
                d[f"fac_{name}int_std"] = float(std[i])
            for i, name in enumerate(self.names):
                d[f"fac_{name}pres_pct"] = float(frac[k + i])
            base = 2 * k
            for j, spec in enumerate(self.spec.emotions):
                s, h, p = base + j, base + e + j, base + 2 * e + j
                d[f"fac_{spec.key}intsoft_mean"] = float(acc.mean[s])
                d[f"fac_{spec.key}intsoft_std"] = float(std[s])
                d[f"fac_{spec.key}inthard_mean"] = float(acc.mean[h])
                d[f"fac_{spec.key}inthard_std"] = float(std[h])
                d[f"fac_{spec.key}pres_pct"] = float(frac[p])
            ps = base + 3 * e
            d["fac_pspi_mean"] = float(acc.mean[ps])
            d["fac_pspi_std"] = float(std[ps])
            d["fac_pspi_max"] = float(acc.max[ps])
            d["fac_pspi_pct"] = float(acc.mean[ps + 1])
            out[fid] = d
        return out
