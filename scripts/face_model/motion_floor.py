"""What the motion parts of the AU floors are measured with (owners: :mod:`face_model.approach`,
:mod:`face_model.turning`; build time only): the renderer on the hm_population faces, one calibration video read
through the Engine up to the AU stage, and the gain (FACS per unit of motion) a neutral face's readings need.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

SIZE = 640  # calibration videos are SIZE x SIZE, 30 fps


def hm_population_betas(shared: Path) -> list[tuple[float, ...]]:
    """Set up :mod:`face_model.population`'s renderer (MakeHuman head with the ICT identity modes transferred) and
    return the hm_population identities (never in scripts/validate_aus.py)."""
    from au_basis.hm08 import load_hm08
    from face_model import population as P
    from face_model.heads import load_ict_identity
    from face_model.sets import identities
    from face_model.transfer import transfer_identity

    hm = load_hm08(shared / "au_sources" / "facshuman")
    ict, ident = load_ict_identity(shared / "au_sources" / "ict_facekit")
    P._init(hm, transfer_identity(ict, ident, hm))
    return identities(501, 100)


def write_video(video: Path, frames) -> None:
    """Write the BGR-from-RGB ``frames`` (SIZE x SIZE renders) to ``video`` at 30 fps (via a .part file)."""
    import cv2

    part = video.with_suffix(".part.mp4")
    wr = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (SIZE, SIZE))
    for rgb in frames:
        wr.write(rgb[:, :, ::-1])
    wr.release()
    part.replace(video)


def read_floors(video: Path, face_model: Path, basis: Path, aus: dict, extra: str
                ) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """(AU names, readings (T, K), floors (T, K), the AU stage's ``extras[extra]`` per frame) of one video through
    the Engine: packaged default config up to the AU stage with the files ``face_model`` and ``basis``, floors
    published, ``aus`` = further AU-stage parameters (the motion floor being measured switched off)."""
    from rtface.config import load_config, with_overrides
    from rtface.graph.runner import Engine

    cfg = with_overrides(load_config(), source={"spec": str(video), "realtime": False},
                         publish={"enabled": False}, control={"enabled": False})
    stages = []
    for sc in cfg.stages:
        if sc.kind in ("canonical", "aus"):
            more = {"publish_floor": True, "basis_path": str(basis), **aus} if sc.kind == "aus" else {}
            sc = dataclasses.replace(sc, params=dataclasses.replace(sc.params, face_model_path=str(face_model),
                                                                    **more))
        if sc.kind in ("landmarks", "canonical", "aus"):
            stages.append(sc)
    reads, floors, values = [], [], []
    with Engine(dataclasses.replace(cfg, stages=tuple(stages))) as eng:
        for r in eng.results():
            if r.faces and r.faces[0].au_intensity is not None:
                f = r.faces[0]
                reads.append(f.au_intensity)
                floors.append(f.extras["au_floor"])
                values.append(f.extras[extra])
        names = eng.names("aus")
    return tuple(names), np.array(reads, np.float64), np.array(floors, np.float64), np.array(values, np.float64)


def floor_gain(reads: np.ndarray, floors: np.ndarray, motion: np.ndarray, min_motion: float,
               quantile: float) -> np.ndarray:
    """(K,) FACS per unit of motion: the ``quantile`` over frames moving faster than ``min_motion`` (``motion``
    (T,)) of the extra floor each frame needed, sqrt(max(reading^2 - floor^2, 0)) / motion (0 for an AU that never
    read above its floor there; the stage adds gain x motion to its floors in quadrature)."""
    m = motion > min_motion
    if not m.any():
        return np.zeros(reads.shape[1])
    raw = reads[m] + floors[m]  # the reading before the floor, where it was above it
    need = np.where(reads[m] > 0, np.sqrt(np.maximum(raw ** 2 - floors[m] ** 2, 0.0)), 0.0) / motion[m, None]
    return np.quantile(need, quantile, axis=0)
