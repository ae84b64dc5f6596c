"""Synthetic labelled AU data from EMFACS prototypes, passed through the real geometry and the live AU solver.

Used by ``scripts/build_default_emotion_head.py`` (the shipped head) and by tests. No real expression data.

1. Prototype FACS intensities per class (:data:`PROTOTYPES`, EMFACS-style; AU16 is not in the basis, so disgust
   uses 9+15+17 / 9+10 variants). Per sample: a variant, an apex intensity from a mixture (subtle 0.5-1.5, 35 %;
   moderate 1.5-3, 40 %; strong 3-5, 25 %), each AU at apex * U(0.7, 1.15) (AU05 of surprise capped at B = 2),
   optional AUs of the variant dropped with p = 0.25 (partial prototypes), and co-activation noise: every other AU
   on with p = 0.08 at U(0, 1.2) FACS. Neutral = noise only. Happiness adds the appearance overlap of a real AU12
   (:data:`_AU12_OVERLAP`: AU06, AU09, AU10 at U(0, f) x the AU12 intensity). NOTE: these fractions were chosen
   after seeing that real smiles (London photos) read out as AU06 + AU09 + AU10 + AU12 through this basis, so the
   London check is not an independent test of this choice.
2. Basis mismatch (real faces do not move like the basis' one synthetic head): per sample each AU's displacement
   field is scaled by U(0.7, 1.3) and leaks into the AUs whose basis columns are coherent with it (|cos| > 0.6) with
   weight U(0, 0.6) * |cos|. This is what gives the solved features realistic cross-talk (e.g. AU06/AU09/AU14).
3. Geometry: displacement (canonical frame, cm) added to a real neutral face (pose-free landmarks of a neutral
   photo, or the canonical template); a session pose (yaw +/-25, pitch +/-15, roll +/-10 deg, distance 40-90
   cm) and this frame's pose (session pose + N(0, 4 deg) per angle), projected by a 640x480 pinhole camera (63 deg
   vertical FOV) to MediaPipe-style px landmarks with i.i.d. landmark noise of 0.02-0.06 cm (0.005 cm for the
   neutral, which the live engine averages over many frames), converted to px at the face's distance; then back
   through ``metric_landmarks`` + ``PoseSolver``, canonicalised against the neutral observed the same way (so,
   as live, the pipeline's systematic perspective error cancels and pose changes leave realistic residue) and
   solved with the live ``AUSolver`` (:class:`rtface.emotion.features.AUFeaturizer`).
Contempt uses the unilateral columns (``basis_lr``: AU12_R + AU14_R, intensity A-B) when the basis file has them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rtface.emotion.features import AUFeaturizer
from rtface.emotion.labels import CLASSES

# class -> list of (AUs of the variant, AUs that are never dropped)
PROTOTYPES: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "neutral": [((), ())],
    "happiness": [(("AU06", "AU12"), ("AU12",)), (("AU12",), ("AU12",)), (("AU06", "AU12", "AU25"), ("AU12",)),
                  (("AU06", "AU12", "AU25", "AU26"), ("AU06", "AU12"))],
    "sadness": [(("AU01", "AU04", "AU15"), ("AU15",)), (("AU01", "AU04", "AU15", "AU17"), ("AU01", "AU15")),
                (("AU01", "AU04"), ("AU01", "AU04")), (("AU04", "AU15", "AU17"), ("AU15",))],
    "surprise": [(("AU01", "AU02", "AU05", "AU26"), ("AU01", "AU02")), (("AU01", "AU02", "AU05", "AU25", "AU26"),
                 ("AU26",)), (("AU01", "AU02", "AU26"), ("AU01", "AU26")), (("AU01", "AU02", "AU05"),
                 ("AU01", "AU02", "AU05"))],
    "fear": [(("AU01", "AU02", "AU04", "AU05", "AU07", "AU20", "AU26"), ("AU01", "AU04", "AU20")),
             (("AU01", "AU02", "AU04", "AU05", "AU20", "AU25"), ("AU04", "AU05", "AU20")),
             (("AU01", "AU04", "AU05", "AU20", "AU26"), ("AU01", "AU04", "AU05"))],
    "anger": [(("AU04", "AU05", "AU07", "AU23"), ("AU04", "AU23")), (("AU04", "AU05", "AU07", "AU24"),
              ("AU04", "AU24")), (("AU04", "AU07", "AU10", "AU23", "AU25"), ("AU04", "AU07")),
              (("AU04", "AU05", "AU07", "AU17", "AU23"), ("AU04",))],
    "disgust": [(("AU09", "AU15", "AU17"), ("AU09",)), (("AU09", "AU10", "AU17"), ("AU09",)),
                (("AU09", "AU10"), ("AU09", "AU10")), (("AU10", "AU17"), ("AU10",)), (("AU09", "AU15"), ("AU09",))],
    "contempt": [(("AU12_R", "AU14_R"), ("AU12_R", "AU14_R"))],
}

# A strong real AU12 also raises the cheeks and deepens the nasolabial furrow (FACS: appearance like AU06 and
# AU09/AU10); the basis' AU12 (one synthetic head) does not, so real smiles read out as AU06 + AU09 + AU10 + AU12.
_AU12_OVERLAP = (("AU06", 0.8), ("AU09", 1.0), ("AU10", 0.6))  # AU, max fraction of the AU12 intensity added

IMAGE_W, IMAGE_H = 640, 480
_FY = (IMAGE_H / 2.0) / math.tan(math.radians(63.0) / 2.0)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    from rtface.geometry.pose import matrix_from_euler_xyz

    return matrix_from_euler_xyz(math.radians(pitch), math.radians(yaw), math.radians(roll))


def project(posefree: np.ndarray, yaw: float, pitch: float, roll: float, dist_cm: float) -> np.ndarray:
    """Canonical-frame face (cm) -> MediaPipe-style px landmarks (x, y px; z = relative depth in px units)."""
    r = _rotation(yaw, pitch, roll) @ np.diag([1.0, -1.0, -1.0])  # canonical -> camera (see geometry.pose)
    cam = posefree @ r.T + np.array([0.0, 0.0, dist_cm])
    x = _FY * cam[:, 0] / cam[:, 2] + IMAGE_W / 2.0
    y = _FY * cam[:, 1] / cam[:, 2] + IMAGE_H / 2.0
    z = (cam[:, 2] - dist_cm) * _FY / dist_cm
    return np.stack([x, y, z], axis=1)


class PrototypeSynth:
    """Generates (features, labels) with the live featurizer; see module doc."""

    def __init__(self, featurizer: AUFeaturizer, neutrals: list[np.ndarray], seed: int = 0,
                 basis_file: str | Path | None = None) -> None:
        self.fz = featurizer
        self.names = featurizer.names
        self.idx = {n: i for i, n in enumerate(self.names)}
        self.neutrals = [np.asarray(n, dtype=np.float64) for n in neutrals]
        self.rng = np.random.default_rng(seed)
        k = len(self.names)
        self.cols = np.asarray(featurizer.basis.matrix, dtype=np.float64)  # (1434, K) cm per activation
        self.u2f = np.asarray(featurizer.basis.unit_to_facs, dtype=np.float64)
        nrm = np.linalg.norm(self.cols, axis=0)
        cos = np.abs(self.cols.T @ self.cols) / np.outer(nrm, nrm)
        np.fill_diagonal(cos, 0.0)
        self.coherence = np.where(cos > 0.6, cos, 0.0)  # (K, K)
        self.lr_cols: dict[str, np.ndarray] = {}
        path = Path(basis_file) if basis_file else Path(__file__).resolve().parents[1] / "data" / "au_basis" / \
            "au_basis.npz"
        if path.is_file():
            with np.load(path) as z:
                if "names_lr" in z.files:
                    for n, b, u in zip(z["names_lr"], z["basis_lr"], z["unit_to_facs_lr"]):
                        self.lr_cols[str(n)] = b.reshape(-1).astype(np.float64) / float(u)  # cm per FACS point
        self._k = k

    def facs(self, cls: str) -> tuple[np.ndarray, dict[str, float]]:
        """Bilateral FACS vector (K,) and unilateral extras {name: FACS} of one prototype sample."""
        rng = self.rng
        f = np.zeros(self._k)
        extra: dict[str, float] = {}
        variants = PROTOTYPES[cls]
        aus, core = variants[rng.integers(len(variants))]
        u = rng.random()
        apex = rng.uniform(0.5, 1.5) if u < 0.35 else rng.uniform(1.5, 3.0) if u < 0.75 else rng.uniform(3.0, 5.0)
        if cls == "contempt":
            apex = rng.uniform(0.7, 2.5)  # A-B
        for au in aus:
            if au not in core and rng.random() < 0.25:
                continue
            val = apex * rng.uniform(0.7, 1.15)
            if cls == "surprise" and au == "AU05":
                val = min(val, 2.0)
            if au in self.idx:
                f[self.idx[au]] = min(val, 5.0)
            else:
                extra[au] = min(val, 5.0)
        if cls == "happiness" and "AU12" in self.idx:  # appearance overlap of a real AU12 (module doc, step 1)
            a12 = f[self.idx["AU12"]]
            for au, frac in _AU12_OVERLAP:
                if au in self.idx:
                    f[self.idx[au]] = min(5.0, f[self.idx[au]] + a12 * rng.uniform(0.0, frac))
        noise_on = rng.random(self._k) < 0.08
        f = np.where((f == 0) & noise_on, rng.uniform(0, 1.2, self._k), f)
        return f, extra

    def displacement(self, f: np.ndarray, extra: dict[str, float]) -> np.ndarray:
        """(478, 3) cm displacement of the FACS vector through a per-sample mismatched basis."""
        rng = self.rng
        act = f / self.u2f
        mix = np.diag(rng.uniform(0.7, 1.3, self._k)) + rng.uniform(0, 0.6, (self._k, self._k)) * self.coherence
        d = self.cols @ (mix.T @ act)
        for name, val in extra.items():
            col = self.lr_cols.get(name)
            if col is None:  # no unilateral basis: half-strength bilateral AU
                base = name.split("_")[0]
                d = d + self.cols[:, self.idx[base]] * (0.5 * val / self.u2f[self.idx[base]])
            else:
                d = d + col * val * rng.uniform(0.7, 1.3)
        return d.reshape(478, 3)

    def sample(self, cls: str) -> tuple[np.ndarray, np.ndarray]:
        """(FACS truth (K,), solved features (K,) float32) of one sample of class ``cls``."""
        rng = self.rng
        f, extra = self.facs(cls)
        neutral = self.neutrals[rng.integers(len(self.neutrals))]
        dist = rng.uniform(40.0, 90.0)
        pose = np.array([rng.uniform(-25, 25), rng.uniform(-15, 15), rng.uniform(-10, 10)])
        # the person's neutral as the live engine sees it: same camera and distance, session-typical pose,
        # averaged over many frames (little noise)
        n_px = project(neutral, *pose, dist)
        n_px += rng.normal(0.0, 0.005 * _FY / dist, n_px.shape)
        neutral_obs = self.fz.posefree(n_px, IMAGE_W, IMAGE_H)
        face = neutral + self.displacement(f, extra)
        px = project(face, *(pose + rng.normal(0.0, 4.0, 3)), dist)
        px += rng.normal(0.0, rng.uniform(0.02, 0.06) * _FY / dist, px.shape)
        pf = self.fz.posefree(px, IMAGE_W, IMAGE_H)
        return f, self.fz.aus(pf[None], neutral_obs)[0]

    def dataset(self, n_per_class: int, classes: tuple[str, ...] = CLASSES) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) float32 features and (N,) int labels (index into ``classes``), classes interleaved."""
        x = np.zeros((n_per_class * len(classes), self._k), dtype=np.float32)
        y = np.zeros(len(x), dtype=np.int64)
        i = 0
        for _ in range(n_per_class):
            for ci, c in enumerate(classes):
                x[i] = self.sample(c)[1]
                y[i] = ci
                i += 1
        return x, y


def landmark_table(synth: PrototypeSynth, classes: tuple[str, ...], videos_per_class: int, frames: int = 40,
                   neutral_frames: int = 12, label_names: dict[str, str] | None = None,
                   apex: float | None = None) -> dict[str, list]:
    """Columns of a layout-(a) table (see :mod:`rtface.emotion.dataset`): per video a session pose and identity,
    ``neutral_frames`` neutral frames, then the class's expression ramping up (labelled with the class; neutral
    frames labelled ``neutral``). Coordinates normalised like MediaPipe (x/W, y/H, z/W of a 640x480 image).
    ``label_names`` renames labels in the table (e.g. {"happiness": "happy"}) to exercise synonyms; ``apex``
    rescales each video's prototype so its strongest AU has this FACS intensity."""
    rng = synth.rng
    label_names = label_names or {}
    cols: dict[str, list] = {"video_filename": [], "frame_num": [], "emotion": []}
    lm_cols = [f"{a}_{i}" for a in "xyz" for i in range(478)]
    for c in lm_cols:
        cols[c] = []
    for cls in classes:
        for v in range(videos_per_class):
            neutral = synth.neutrals[rng.integers(len(synth.neutrals))]
            dist = rng.uniform(40.0, 90.0)
            pose = np.array([rng.uniform(-20, 20), rng.uniform(-10, 10), rng.uniform(-8, 8)])
            f, extra = synth.facs(cls)
            if apex is not None:
                top = max([float(f.max())] + list(extra.values()))
                scale = apex / top if top > 0 else 1.0
                f = np.minimum(f * scale, 5.0)
                extra = {k: min(v * scale, 5.0) for k, v in extra.items()}
            disp = synth.displacement(f, extra)
            for t in range(frames):
                ramp = 0.0 if t < neutral_frames else min(1.0, (t - neutral_frames + 1) / 6.0)
                px = project(neutral + ramp * disp, *(pose + rng.normal(0.0, 2.0, 3)), dist)
                px += rng.normal(0.0, 0.03 * _FY / dist, px.shape)
                label = "neutral" if ramp == 0.0 else cls
                cols["video_filename"].append(f"{cls}_{v:02d}.mp4")
                cols["frame_num"].append(t)
                cols["emotion"].append(label_names.get(label, label))
                flat = np.concatenate([px[:, 0] / IMAGE_W, px[:, 1] / IMAGE_H, px[:, 2] / IMAGE_W])
                for c, val in zip(lm_cols, flat):
                    cols[c].append(float(val))
    return cols
