"""The render sets of the face-model build: which faces, expressions and scenes are rendered (seeded, so a rebuild
renders the same images). Build sets and held-back validation sets use disjoint identity seeds and pose ranges.

Identity coefficients are drawn N(0, 0.8^2) per mode, clipped to +-2 (a population of plausible faces; 0.8 keeps
caricatures out). Scenes: vertical FOV, face width in px, image offset, light and head pose as listed per set.
"""
from __future__ import annotations

import numpy as np

from .population import FACE_WIDTH_CM, Sample
from .scene import Scene

# FACSHuman targets (on hm08) for each bilateral AU, and their left/right variants
FACSHUMAN = {"AU01": "01/1", "AU02": "01/2", "AU04": "01/4", "AU05": "01/5", "AU06": "01/6", "AU07": "01/7",
             "AU09": "02/9", "AU10": "02/10", "AU12": "02/12", "AU14": "02/14", "AU15": "02/15", "AU17": "02/17",
             "AU20": "02/20", "AU23": "02/23", "AU24": "02/24", "AU25": "03/25", "AU26": "03/26", "AU28": "02/28",
             "AU43": "01/43"}
FACSHUMAN_LR = {"AU01": ("01/L1", "01/R1"), "AU02": ("01/L2", "01/R2"), "AU05": ("01/L5", "01/R5"),
                "AU06": ("01/L6", "01/R6"), "AU07": ("01/L7", "01/R7"), "AU09": ("02/L9", "02/R9"),
                "AU10": ("02/L10", "02/R10"), "AU12": ("02/L12", "02/R12"), "AU14": ("02/L14", "02/R14"),
                "AU15": ("02/L15", "02/R15"), "AU20": ("02/L20", "02/R20"), "AU43": ("01/L43", "01/R43")}
# ICT-FaceKit shapes (bilateral sums of _L/_R where they exist), ICT's own AU table
ICT = ("browInnerUp", "browOuterUp", "browDown", "eyeWide", "cheekSquint", "eyeSquint", "noseSneer",
       "mouthShrugUpper", "mouthUpperUp", "mouthSmile", "mouthDimple", "mouthFrown", "mouthShrugLower",
       "mouthStretch", "mouthPress", "jawOpen", "mouthRollLower", "mouthRollUpper", "eyeBlink", "mouthLowerDown",
       "mouthPucker", "mouthFunnel")
ICT_LR = ("cheekSquint_L", "cheekSquint_R")


def identities(seed: int, n: int, n_modes: int = 100, first_zero: bool = False) -> list[tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = np.zeros(n_modes) if (first_zero and i == 0) else np.clip(0.8 * rng.standard_normal(n_modes), -2, 2)
        out.append(tuple(float(x) for x in b))
    return out


def scene(rng: np.random.Generator, yaw: float, pitch: float, roll: float, unit: float, size: int = 640,
          width_px: tuple[float, float] = (180.0, 320.0), fov: tuple[float, float] = (30.0, 70.0),
          offset: float = 0.1) -> Scene:
    """A scene with the given pose (deg); ``unit`` = mesh units per cm (hm08 dm: 0.1, ICT cm: 1)."""
    f = (size / 2.0) / np.tan(np.deg2rad(rng.uniform(*fov)) / 2.0)
    dist = f * FACE_WIDTH_CM * unit / rng.uniform(*width_px)
    ox, oy = rng.uniform(-offset, offset, 2) * size
    light = (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.1, 0.7)), 1.0)
    return Scene(yaw_deg=float(yaw), pitch_deg=float(pitch), roll_deg=float(roll), distance=float(dist),
                 x=float(ox * dist / f), y=float(-oy * dist / f), focal_px=float(f), size=size, light=light)


def build_scenes(rng: np.random.Generator, unit: float) -> list[Scene]:
    """Three poses per identity: near-frontal, turned one way, turned the other (yaw 10-25 deg)."""
    s = rng.choice([-1.0, 1.0])
    return [scene(rng, rng.uniform(-3, 3), rng.uniform(-3, 3), rng.uniform(-3, 3), unit),
            scene(rng, s * rng.uniform(10, 25), rng.uniform(-10, 10), rng.uniform(-10, 10), unit),
            scene(rng, -s * rng.uniform(10, 25), rng.uniform(-10, 10), rng.uniform(-10, 10), unit)]


def heldback_scenes(rng: np.random.Generator, unit: float) -> list[Scene]:
    """Two wider poses per held-back identity (yaw up to 30, pitch 15, roll 25 deg) and wider cameras."""
    return [scene(rng, rng.uniform(-30, 30), rng.uniform(-15, 15), rng.uniform(-25, 25), unit,
                  width_px=(120.0, 420.0), fov=(25.0, 80.0), offset=0.2) for _ in range(2)]


def expression_set(idents, scenes_per_ident, bilateral: list[str], lr: list[str],
                   weights: tuple[float, ...] = (0.5, 1.0)) -> list[Sample]:
    """For every (identity, scene): the neutral, each bilateral target at each weight, each L/R target at 1."""
    out = []
    for beta, scenes in zip(idents, scenes_per_ident):
        for sc in scenes:
            out.append(Sample(beta, (), sc))
            out += [Sample(beta, ((t, float(w)),), sc) for t in bilateral for w in weights]
            out += [Sample(beta, ((t, 1.0),), sc) for t in lr]
    return out


def validation_set(idents, scenes_per_ident, targets: list[str], rng: np.random.Generator,
                   n_combos: int = 6) -> list[Sample]:
    """For every (identity, scene): the neutral, each target at a random weight U(0.2, 1) and at 1.0, and random
    combinations of 2-4 targets with random weights."""
    out = []
    for beta, scenes in zip(idents, scenes_per_ident):
        for sc in scenes:
            out.append(Sample(beta, (), sc))
            for t in targets:
                out.append(Sample(beta, ((t, float(rng.uniform(0.2, 1.0))),), sc))
                out.append(Sample(beta, ((t, 1.0),), sc))
            for _ in range(n_combos):
                k = int(rng.integers(2, 5))
                pick = rng.choice(len(targets), size=k, replace=False)
                out.append(Sample(beta, tuple((targets[i], float(rng.uniform(0.2, 0.9))) for i in sorted(pick)), sc))
    return out


def population_set(idents, rng: np.random.Generator, unit: float, poses: int = 5) -> list[Sample]:
    """Neutral faces, each under one camera and light and ``poses`` head poses (the first near-frontal, then
    yaw up to 45, pitch 25, roll 35 deg): within-face pose changes give the pose response free of identity."""
    from dataclasses import replace
    out = []
    for beta in idents:
        base = scene(rng, 0.0, 0.0, 0.0, unit, width_px=(100.0, 400.0), fov=(20.0, 80.0), offset=0.2)
        for k in range(poses):
            if k == 0:
                yaw, pitch, roll = rng.uniform(-3, 3, 3)
            else:
                yaw = rng.uniform(-45, 45) if rng.random() < 0.6 else rng.uniform(-15, 15)
                pitch, roll = rng.uniform(-25, 25), rng.uniform(-35, 35)
            out.append(Sample(beta, (), replace(base, yaw_deg=float(yaw), pitch_deg=float(pitch), roll_deg=float(roll))))
    return out
