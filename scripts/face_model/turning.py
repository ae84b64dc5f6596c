"""The turning part of the AU floors: what a neutral face turning, nodding or tilting reads, per AU and axis.

MediaPipe's tracked landmarks lag a head that rotates (the region of interest and the landmark model's shape prior
come from the previous frame), and the lag reads as AUs on a neutral face exactly where the pose floor is smallest:
crossing frontal at full speed (scripts/validate_aus.py's moving faces, 2026-12-04: the AU sum of a held-back face
turning at 40 deg/s peaks at 2.5-5.0 as it crosses yaw 0, where a face held at that pose reads about 0). Measured
here on rendered rotations of faces outside the validation: ``N_IDENTITIES`` identities of the hm_population render
set after the ones :mod:`face_model.approach` uses (MakeHuman head, never in scripts/validate_aus.py), each in one
30 fps video per axis that holds, then rotates at several speeds to amplitudes other than the validation's, under
a random focal length. Each video goes through the Engine with the packaged default config (turning floor off,
floors published); per AU and axis the gain is the ``QUANTILE`` over frames of that axis' video rotating faster
than ``MIN_SPEED`` of the extra floor each frame needed, sqrt(max(reading^2 - floor^2, 0)) / speed (the stage adds
gain x speed per axis to its floors in quadrature; speed = the AU stage's low-passed rotation speed on that axis,
deg/s). Owner: scripts/build_face_model.py (build time only).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

N_IDENTITIES = 4
FIRST_IDENTITY = 12  # hm_population identities 0-11 calibrate the approach floor
QUANTILE = 0.9
MIN_SPEED = 8.0  # deg/s: frames rotating at least this fast on the video's axis measure the gain
SIZE = 640
DISTANCE_CM = 55.0
AXES = ("yaw", "pitch", "roll")
AMPLITUDE_DEG = {"yaw": 32.0, "pitch": 18.0, "roll": 22.0}  # validation: 40 / 25 / 30


def profile(amplitude: float) -> np.ndarray:
    """Angle per 30 fps frame (deg): holds, then 0 -> +A at 20 deg/s, +A -> -A at 60 deg/s, -A -> 0 at 35 deg/s,
    0 -> +A/2 -> 0 at 90 deg/s."""
    def ramp(a: float, b: float, speed: float) -> np.ndarray:
        n = max(2, int(round(abs(b - a) / speed * 30.0)))
        return np.linspace(a, b, n + 1)[1:]
    hold = lambda v, n: np.full(n, v)  # noqa: E731
    a = amplitude
    return np.concatenate([hold(0.0, 10), ramp(0, a, 20), hold(a, 8), ramp(a, -a, 60), hold(-a, 8), ramp(-a, 0, 35),
                           hold(0.0, 8), ramp(0, a / 2, 90), ramp(a / 2, 0, 90), hold(0.0, 10)])


def conditions() -> list[tuple[str, int, str, float]]:
    """(video name, identity index, axis, focal px) of every calibration video."""
    rng = np.random.default_rng(11)
    return [(f"turn_{k}_{axis}.mp4", k, axis, float(rng.uniform(600, 900)))
            for k in range(FIRST_IDENTITY, FIRST_IDENTITY + N_IDENTITIES) for axis in AXES]


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
    betas = identities(501, 100)  # the hm_population identities
    for (name, k, axis, focal), video in zip(todo, videos):
        if video.is_file():
            continue
        part = video.with_suffix(".part.mp4")
        wr = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (SIZE, SIZE))
        for angle in profile(AMPLITUDE_DEG[axis]):  # hm08 mesh units are dm
            scene = Scene(focal_px=focal, size=SIZE, distance=DISTANCE_CM * 0.1, **{f"{axis}_deg": float(angle)})
            wr.write(P.render_sample(P.Sample(tuple(betas[k]), (), scene))[:, :, ::-1])
        wr.release()
        part.replace(video)
    return videos


def measure(video: Path, face_model: Path, basis: Path) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """(AU names, readings (T, K), floors (T, K), rotation speeds (T, 3) deg/s) of one video through the Engine
    (packaged default config up to the AU stage with the files ``face_model`` and ``basis``, turning floor off)."""
    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine

    cfg = with_overrides(load_config(), source={"spec": str(video), "realtime": False},
                         publish={"enabled": False}, control={"enabled": False})
    stages = []
    for sc in cfg.stages:
        if sc.kind in ("canonical", "aus"):
            extra = ({"publish_floor": True, "turn_floor_scale": 0.0, "basis_path": str(basis)}
                     if sc.kind == "aus" else {})
            sc = dataclasses.replace(sc, params=dataclasses.replace(sc.params, face_model_path=str(face_model),
                                                                    **extra))
        if sc.kind in ("landmarks", "canonical", "aus"):
            stages.append(sc)
    reads, floors, speeds = [], [], []
    with Engine(dataclasses.replace(cfg, stages=tuple(stages))) as eng:
        for r in eng.results():
            if r.faces and r.faces[0].au_intensity is not None:
                f = r.faces[0]
                reads.append(f.au_intensity)
                floors.append(f.extras["au_floor"])
                speeds.append(f.extras["turn_speed_deg_s"])
        names = eng.names("aus")
    return tuple(names), np.array(reads, np.float64), np.array(floors, np.float64), np.array(speeds, np.float64)


def gains(reads: np.ndarray, floors: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """(K,) FACS per deg/s on one axis: the QUANTILE of the extra floor per unit speed that frames rotating faster
    than MIN_SPEED (``speed`` (T,) on that axis) needed (0 for an AU that never read above its floor there)."""
    m = speed > MIN_SPEED
    if not m.any():
        return np.zeros(reads.shape[1])
    raw = reads[m] + floors[m]  # the reading before the floor, where it was above it
    need = np.where(reads[m] > 0, np.sqrt(np.maximum(raw ** 2 - floors[m] ** 2, 0.0)), 0.0) / speed[m, None]
    return np.quantile(need, QUANTILE, axis=0)


def turn_floor_gain(shared: Path, cache: Path, face_model: Path, basis: Path,
                    names: list[str]) -> tuple[np.ndarray, dict]:
    """((3, K) gains, axes yaw/pitch/roll, in the order of ``names``; report) measured with ``face_model`` and
    ``basis``."""
    per_axis: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {a: [] for a in AXES}
    au_names: tuple[str, ...] = ()
    for (_, _, axis, _), video in zip(conditions(), render_videos(shared, cache / "turning")):
        au_names, a, f, s = measure(video, face_model, basis)
        per_axis[axis].append((a, f, s[:, AXES.index(axis)]))
    out = np.zeros((len(AXES), len(names)))
    report: dict = {"identities": N_IDENTITIES, "quantile": QUANTILE, "min_speed_deg_s": MIN_SPEED,
                    "amplitude_deg": AMPLITUDE_DEG, "axes": {}}
    for i, axis in enumerate(AXES):
        reads, floors, speed = (np.concatenate([g[j] for g in per_axis[axis]]) for j in range(3))
        by = dict(zip(au_names, gains(reads, floors, speed).tolist()))
        out[i] = [by.get(n, 0.0) for n in names]
        report["axes"][axis] = {"frames": int(len(speed)), "rotating_frames": int((speed > MIN_SPEED).sum()),
                                "max_speed_deg_s": round(float(speed.max()), 1),
                                "gain_facs_per_deg_s": {n: round(float(x), 4) for n, x in zip(names, out[i])}}
    return out, report
