"""Signal values of one frame for the alert rules.

Face signals (one value per face): ``eye_closure`` (mean of both eyes, 0-1), ``eye_closure_l``/``_r``,
``eyes_closed_s``, ``perclos``, ``blink_rate_min``, ``AU45_r`` (eyes stage); ``pspi`` (AU stage); ``au.AU04``
(an AU intensity, 0-5); ``emotion.sadness`` (a class probability); ``negative_emotion`` (sum of the probabilities of
the ``negative`` classes); any other name reads a numeric per-face extra of that name (a plug-in stage's output).
Camera signals (one value per frame): ``face_count`` (faces in the frame), ``patient_face_count`` (1 while the
configured patient is in view, else 0: :mod:`rtface.alerts.patient`) and ``frame_gap_s`` (media time since
the previous frame, s). A value that is missing (the stage did not fill it, NaN) does not advance the rule.
Pure functions of one frame; the caller owns the frame.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

from rtface.records import Face

NAN = float("nan")


class SignalReader:
    """Reads face signals by name, knowing the AU and emotion name orders of the running pipeline."""

    def __init__(self, au_names: Sequence[str] = (), emotion_names: Sequence[str] = (),
                 negative: Sequence[str] = ()) -> None:
        self.au_index = {n: i for i, n in enumerate(au_names)}
        self.emotion_index = {n: i for i, n in enumerate(emotion_names)}
        self.negative_index = [self.emotion_index[n] for n in negative if n in self.emotion_index]
        self.missing_negative = [n for n in negative if n not in self.emotion_index]

    def check(self, signal: str) -> str | None:
        """Why ``signal`` can never be read in this pipeline (None if it can)."""
        if signal.startswith("au.") and signal[3:] not in self.au_index:
            return f"AU {signal[3:]!r} is not produced (AUs: {', '.join(self.au_index) or 'none'})"
        if signal.startswith("emotion.") and signal[8:] not in self.emotion_index:
            return f"emotion {signal[8:]!r} is not produced (classes: {', '.join(self.emotion_index) or 'none'})"
        if signal == "negative_emotion" and (self.missing_negative or not self.negative_index):
            return (f"negative classes {self.missing_negative} are not produced (classes: "
                    f"{', '.join(self.emotion_index) or 'none'})")
        return None

    def face(self, face: Face, signal: str) -> float:
        """Value of face signal ``signal`` for ``face`` (NaN when missing)."""
        x = face.extras
        if signal == "eye_closure":
            vals = [_num(x.get("eye_closure_l")), _num(x.get("eye_closure_r"))]
            vals = [v for v in vals if math.isfinite(v)]
            return sum(vals) / len(vals) if vals else NAN
        if signal.startswith("au."):
            i = self.au_index.get(signal[3:])
            return NAN if i is None or face.au_intensity is None else float(face.au_intensity[i])
        if signal.startswith("emotion."):
            i = self.emotion_index.get(signal[8:])
            return NAN if i is None or face.emotion is None else float(face.emotion[i])
        if signal == "negative_emotion":
            if face.emotion is None or not self.negative_index:
                return NAN
            return float(sum(float(face.emotion[i]) for i in self.negative_index))
        return _num(x.get(signal))


def _num(v: object) -> float:
    """float(v) for a real number (numpy scalars included, bool excluded), else NaN."""
    if type(v) is float:
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return NAN
    return float(v)
