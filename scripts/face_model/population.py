"""Sample rendering conditions and faces, render them in a process pool and detect them with MediaPipe.

A *sample* is (identity coefficients, expression {target: weight}, Scene). Rendering runs in forked worker
processes; the parent runs MediaPipe FaceMesh (static images, refine_landmarks) on the images in order and keeps
the raw landmarks (x px, y px, z = MediaPipe z * width) of the most central face. Build-time only.
"""
from __future__ import annotations

import multiprocessing as mp_proc
from dataclasses import asdict, dataclass, field

import numpy as np

from au_basis.detect import Detector
from au_basis.hm08 import Hm08Head

from .heads import IdentityModel
from .scene import Scene, render_scene

FACE_WIDTH_CM = 14.0  # rough bizygomatic width used to turn a face size in px into a distance


@dataclass(frozen=True)
class Sample:
    beta: tuple[float, ...]                      # identity coefficients (first len(beta) modes)
    expr: tuple[tuple[str, float], ...] = ()     # expression targets and weights
    scene: Scene = field(default_factory=Scene)


_STATE: dict = {}


def _init(head: Hm08Head, ident: IdentityModel | None) -> None:
    _STATE["head"], _STATE["ident"] = head, ident


def render_sample(s: Sample) -> np.ndarray:
    """Render one sample. Paint is attached to the undeformed surface (albedo from ``head.base``), so brows, lips
    and eyes move with the identity and expression deformation like a texture."""
    head: Hm08Head = _STATE["head"]
    ident: IdentityModel | None = _STATE["ident"]
    v = head.base.copy()
    if ident is not None and len(s.beta):
        v += np.tensordot(np.asarray(s.beta), ident.modes[: len(s.beta)].astype(np.float64), axes=1)
    for name, w in s.expr:
        v += w * head.delta(name)
    return render_scene(head, v, s.scene)


def run_samples(head: Hm08Head, ident: IdentityModel | None, samples: list[Sample], workers: int = 2,
                log=print) -> tuple[np.ndarray, np.ndarray]:
    """Render + detect. Returns (landmarks (N, 478, 3) float32 with NaN where no face, found (N,) bool)."""
    _init(head, ident)
    det = Detector()
    out = np.full((len(samples), 478, 3), np.nan, np.float32)
    found = np.zeros(len(samples), bool)
    pool = None
    if workers > 1:
        pool = mp_proc.get_context("fork").Pool(workers, initializer=_init, initargs=(head, ident))
        images = pool.imap(render_sample, samples, chunksize=4)
    else:
        images = map(render_sample, samples)
    try:
        for n, img in enumerate(images):
            lm = det.landmarks_px(img)
            if lm is not None:
                out[n] = lm
                found[n] = True
            if (n + 1) % 100 == 0:
                log(f"  {n + 1}/{len(samples)} rendered, {int(found[: n + 1].sum())} faces found")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        det.close()
    return out, found


def samples_to_arrays(samples: list[Sample]) -> dict[str, np.ndarray]:
    """Sample parameters as arrays for an npz cache."""
    keys = list(asdict(samples[0].scene))
    arr = {f"scene_{k}": np.array([asdict(s.scene)[k] for s in samples]) for k in keys if k != "light"}
    arr["scene_light"] = np.array([s.scene.light for s in samples])
    nb = max(len(s.beta) for s in samples)
    arr["beta"] = np.array([list(s.beta) + [0.0] * (nb - len(s.beta)) for s in samples])
    names = sorted({n for s in samples for n, _ in s.expr})
    arr["expr_names"] = np.array(names)
    arr["expr_w"] = np.array([[dict(s.expr).get(n, 0.0) for n in names] for s in samples]).reshape(len(samples), -1)
    return arr
