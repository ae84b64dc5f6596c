"""Emotion class names and the label synonyms training/evaluation accept.

Canonical classes (this order in the shipped model): neutral, happiness, sadness, surprise, fear, anger, disgust,
contempt. Input labels are lower-cased and stripped, then mapped through :data:`SYNONYMS`; a user map
(``--label-map old=new``) is applied first. Anything else is an unknown label (DataError naming it).
"""
from __future__ import annotations

from typing import Iterable, Mapping

from rtface.errors import DataError

CLASSES: tuple[str, ...] = ("neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust", "contempt")

SYNONYMS: dict[str, str] = {
    "neutral": "neutral", "none": "neutral", "calm": "neutral",
    "happiness": "happiness", "happy": "happiness", "joy": "happiness", "smile": "happiness",
    "smiling": "happiness", "happy_face": "happiness",
    "sadness": "sadness", "sad": "sadness", "sorrow": "sadness",
    "surprise": "surprise", "surprised": "surprise",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "anger": "anger", "angry": "anger", "mad": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "contempt": "contempt", "contemptuous": "contempt",
}


def parse_label_map(items: Iterable[str] | None) -> dict[str, str]:
    """``["calm=neutral", ...]`` -> {"calm": "neutral"} (DataError on a malformed item)."""
    out: dict[str, str] = {}
    for it in items or ():
        old, sep, new = it.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise DataError(f"--label-map item {it!r} is not of the form old=new")
        out[old.strip().lower()] = new.strip().lower()
    return out


def normalise_labels(raw: Iterable[object], where: str, user_map: Mapping[str, str] | None = None) -> list[str]:
    """Map raw labels to canonical class names; DataError listing every unknown label (with counts)."""
    user_map = user_map or {}
    out: list[str] = []
    unknown: dict[str, int] = {}
    for r in raw:
        key = str(r).strip().lower()
        key = user_map.get(key, key)
        name = SYNONYMS.get(key)
        if name is None:
            unknown[str(r)] = unknown.get(str(r), 0) + 1
            out.append("")
        else:
            out.append(name)
    if unknown:
        listed = ", ".join(f"{k!r} ({n} rows)" for k, n in sorted(unknown.items()))
        raise DataError(f"{where}: unknown emotion label(s): {listed}. Known: {', '.join(CLASSES)} and synonyms "
                        f"{', '.join(sorted(k for k in SYNONYMS if k not in CLASSES))}; map others with "
                        f"--label-map old=new")
    return out
