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

import dataclasses
from pathlib import Path

import numpy as np

N_IDENTITIES = 12
QUANTILE = 0.9
MIN_RATE = 0.1  # 1/s: frames approaching at least this fast measure the gain
SIZE = 640
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
    import cv2

    from au_basis.hm08 import load_hm08
    from face_model import population as P
    from face_model.heads import load_ict_identity
    from face_model.scene import Scene
    from face_model.sets import identities
    from face_model.transfer import transfer_identity

    folder.mkdir(parents=True, exist_ok=True)
    todo = conditions()
    videos = [folder / c[0] for c in todo]
    if all(v.is_file() for v in videos):
        return videos
    hm = load_hm08(shared / "au_sources" / "facshuman")
    ict, ident = load_ict_identity(shared / "au_sources" / "ict_facekit")
    P._init(hm, transfer_identity(ict, ident, hm))
    betas = identities(501, 100)[:N_IDENTITIES]  # the hm_population identities
    for (name, k, focal, yaw, pitch), video in zip(todo, videos):
        if video.is_file():
            continue
        part = video.with_suffix(".part.mp4")
        wr = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (SIZE, SIZE))
        for d in DISTANCE_CM:  # hm08 mesh units are dm
            scene = Scene(focal_px=focal, size=SIZE, distance=float(d) * 0.1, yaw_deg=yaw, pitch_deg=pitch)
            wr.write(P.render_sample(P.Sample(tuple(betas[k]), (), scene))[:, :, ::-1])
        wr.release()
        part.replace(video)
    return videos


def measure(video: Path, face_model: Path, basis: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """(AU names, readings (T, K), floors (T, K), approach rate (T,)) of one video through the Engine (packaged
    default config up to the AU stage with the files ``face_model`` and ``basis``, approach floor off)."""
    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine

    cfg = with_overrides(load_config(), source={"spec": str(video), "realtime": False, "images": "sequence"},
                         publish={"enabled": False}, control={"enabled": False})
    stages = []
    for sc in cfg.stages:
        if sc.kind in ("canonical", "aus"):
            extra = ({"publish_floor": True, "approach_floor_scale": 0.0, "basis_path": str(basis)}
                     if sc.kind == "aus" else {})
            sc = dataclasses.replace(sc, params=dataclasses.replace(sc.params, face_model_path=str(face_model),
                                                                    **extra))
        if sc.kind in ("landmarks", "canonical", "aus"):
            stages.append(sc)
    reads, floors, rates = [], [], []
    with Engine(dataclasses.replace(cfg, stages=tuple(stages))) as eng:
        for r in eng.results():
            if r.faces and r.faces[0].au_intensity is not None:
                f = r.faces[0]
                reads.append(f.au_intensity)
                floors.append(f.extras["au_floor"])
                rates.append(f.extras["approach_rate"])
        names = eng.names("aus")
    return tuple(names), np.array(reads, np.float64), np.array(floors, np.float64), np.array(rates)


def gains(reads: np.ndarray, floors: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """(K,) FACS per 1/s: the QUANTILE of the extra floor per unit approach rate that frames approaching faster
    than MIN_RATE needed (0 for an AU that never read above its floor there)."""
    m = rates > MIN_RATE
    if not m.any():
        return np.zeros(reads.shape[1])
    raw = reads[m] + floors[m]  # the reading before the floor, where it was above it
    need = np.where(reads[m] > 0, np.sqrt(np.maximum(raw ** 2 - floors[m] ** 2, 0.0)), 0.0) / rates[m, None]
    return np.quantile(need, QUANTILE, axis=0)


def approach_floor_gain(shared: Path, cache: Path, face_model: Path, basis: Path,
                        names: list[str]) -> tuple[np.ndarray, dict]:
    """(gains in the order of ``names``, report) measured with the files ``face_model`` and ``basis``."""
    got: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    au_names: tuple[str, ...] = ()
    for video in render_videos(shared, cache / "approach"):
        au_names, a, f, r = measure(video, face_model, basis)
        got.append((a, f, r))
    reads, floors, rates = (np.concatenate([g[i] for g in got]) for i in range(3))
    g = gains(reads, floors, rates)
    by = dict(zip(au_names, g.tolist()))
    out = np.array([by.get(n, 0.0) for n in names])
    report = {"identities": N_IDENTITIES, "frames": int(len(rates)), "approaching_frames": int((rates > MIN_RATE).sum()),
              "max_rate_per_s": round(float(rates.max()), 3), "quantile": QUANTILE, "min_rate_per_s": MIN_RATE,
              "gain_facs_per_rate": {n: round(float(x), 2) for n, x in zip(names, out)}}
    return out, report
