"""The approach part of the AU floors: what a neutral face moving towards the camera reads, per AU.

MediaPipe's tracked landmarks lag a face that grows in the frame (the region of interest comes from the previous
frame), and that lag reads as AU05/AU07 (and AU01, AU15 ...) on a neutral face. Measured here on rendered
approaches of faces outside the validation: the first ``N_IDENTITIES`` identities of the hm_population render set
(MakeHuman head, used for the population pose response, never in scripts/validate_aus.py), each in two 30 fps
videos (facing the camera, and turned by a few degrees) that move between 30 and 75 cm at several speeds under a
random focal length.
Each video goes through the Engine with the packaged default config (approach floor off, floors published); per
AU the gain is the ``QUANTILE`` over frames approaching faster than ``MIN_RATE`` of the extra floor each frame
needed, sqrt(max(reading^2 - floor^2, 0)) / approach rate (the stage adds gain x rate to its floors in
quadrature). Owner: scripts/build_face_model.py (build time only).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from face_model import motion_floor as MF

N_IDENTITIES = 12
QUANTILE = 0.9
MIN_RATE = 0.1  # 1/s: frames approaching at least this fast measure the gain
SIZE = MF.SIZE
# per 30 fps frame: holds, approaches at 0.38 and 0.77 /s, recessions at 0.35-0.46 /s (of ln distance)
DISTANCE_CM = np.concatenate([
    np.full(10, 50.0), np.linspace(50, 30, 40), np.full(15, 30.0), np.linspace(30, 75, 60), np.full(15, 75.0),
    np.linspace(75, 45, 20), np.full(15, 45.0), np.linspace(45, 60, 25), np.full(10, 60.0)])


def conditions() -> list[tuple[str, int, float, float, float]]:
    """(video name, identity index, focal px, yaw deg, pitch deg) of every calibration video: each identity once
    facing the camera and once slightly turned (|yaw| <= 10, |pitch| <= 8 deg). Both are needed: the lag reads
    strongest on a face that faces the camera squarely (one held-back face on this distance profile: AU05/AU07
    2.4/2.1 on average while approaching, facing a 900 px camera; 0.4/0.5 turned 8 deg yaw / 4 deg pitch before a
    788 px one)."""
    turned, frontal = np.random.default_rng(7), np.random.default_rng(8)
    out = []
    for k in range(N_IDENTITIES):
        focal, yaw, pitch = float(turned.uniform(600, 900)), float(turned.uniform(-10, 10)), float(turned.uniform(-8, 8))
        out.append((f"approach_{k}.mp4", k, focal, yaw, pitch))
        out.append((f"approach_{k}_frontal.mp4", k, float(frontal.uniform(600, 900)), 0.0, 0.0))
    return out


def render_videos(shared: Path, folder: Path) -> list[Path]:
    """The calibration videos (cached in ``folder``)."""
    from face_model import population as P
    from face_model.scene import Scene

    folder.mkdir(parents=True, exist_ok=True)
    todo = conditions()
    videos = [folder / c[0] for c in todo]
    if all(v.is_file() for v in videos):
        return videos
    betas = MF.hm_population_betas(shared)[:N_IDENTITIES]
    for (name, k, focal, yaw, pitch), video in zip(todo, videos):
        if not video.is_file():  # hm08 mesh units are dm
            MF.write_video(video, (P.render_sample(P.Sample(tuple(betas[k]), (), Scene(
                focal_px=focal, size=SIZE, distance=float(d) * 0.1, yaw_deg=yaw, pitch_deg=pitch)))
                for d in DISTANCE_CM))
    return videos


def approach_floor_gain(shared: Path, cache: Path, face_model: Path, basis: Path,
                        names: list[str]) -> tuple[np.ndarray, dict]:
    """(gains in the order of ``names``, report) measured with the files ``face_model`` and ``basis``."""
    got: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    au_names: tuple[str, ...] = ()
    for video in render_videos(shared, cache / "approach"):
        au_names, a, f, r = MF.read_floors(video, face_model, basis, {"approach_floor_scale": 0.0}, "approach_rate")
        got.append((a, f, r))
    reads, floors, rates = (np.concatenate([g[i] for g in got]) for i in range(3))
    g = MF.floor_gain(reads, floors, rates, MIN_RATE, QUANTILE)
    by = dict(zip(au_names, g.tolist()))
    out = np.array([by.get(n, 0.0) for n in names])
    report = {"identities": N_IDENTITIES, "frames": int(len(rates)), "approaching_frames": int((rates > MIN_RATE).sum()),
              "max_rate_per_s": round(float(rates.max()), 3), "quantile": QUANTILE, "min_rate_per_s": MIN_RATE,
              "gain_facs_per_rate": {n: round(float(x), 2) for n, x in zip(names, out)}}
    return out, report
