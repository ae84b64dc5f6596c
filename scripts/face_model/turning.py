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

from pathlib import Path

import numpy as np

from face_model import motion_floor as MF

N_IDENTITIES = 4
FIRST_IDENTITY = 12  # hm_population identities 0-11 calibrate the approach floor
QUANTILE = 0.9
MIN_SPEED = 8.0  # deg/s: frames rotating at least this fast on the video's axis measure the gain
SIZE = MF.SIZE
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
    from face_model import population as P
    from face_model.scene import Scene

    folder.mkdir(parents=True, exist_ok=True)
    todo = conditions()
    videos = [folder / c[0] for c in todo]
    if all(v.is_file() for v in videos):
        return videos
    betas = MF.hm_population_betas(shared)
    for (name, k, axis, focal), video in zip(todo, videos):
        if not video.is_file():  # hm08 mesh units are dm
            MF.write_video(video, (P.render_sample(P.Sample(tuple(betas[k]), (), Scene(
                focal_px=focal, size=SIZE, distance=DISTANCE_CM * 0.1, **{f"{axis}_deg": float(angle)})))
                for angle in profile(AMPLITUDE_DEG[axis])))
    return videos


def turn_floor_gain(shared: Path, cache: Path, face_model: Path, basis: Path,
                    names: list[str]) -> tuple[np.ndarray, dict]:
    """((3, K) gains, axes yaw/pitch/roll, in the order of ``names``; report) measured with ``face_model`` and
    ``basis``."""
    per_axis: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {a: [] for a in AXES}
    au_names: tuple[str, ...] = ()
    for (_, _, axis, _), video in zip(conditions(), render_videos(shared, cache / "turning")):
        au_names, a, f, s = MF.read_floors(video, face_model, basis, {"turn_floor_scale": 0.0}, "turn_speed_deg_s")
        per_axis[axis].append((a, f, s[:, AXES.index(axis)]))
    out = np.zeros((len(AXES), len(names)))
    report: dict = {"identities": N_IDENTITIES, "quantile": QUANTILE, "min_speed_deg_s": MIN_SPEED,
                    "amplitude_deg": AMPLITUDE_DEG, "axes": {}}
    for i, axis in enumerate(AXES):
        reads, floors, speed = (np.concatenate([g[j] for g in per_axis[axis]]) for j in range(3))
        by = dict(zip(au_names, MF.floor_gain(reads, floors, speed, MIN_SPEED, QUANTILE).tolist()))
        out[i] = [by.get(n, 0.0) for n in names]
        report["axes"][axis] = {"frames": int(len(speed)), "rotating_frames": int((speed > MIN_SPEED).sum()),
                                "max_speed_deg_s": round(float(speed.max()), 1),
                                "gain_facs_per_deg_s": {n: round(float(x), 4) for n, x in zip(names, out[i])}}
    return out, report
