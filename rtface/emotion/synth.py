"""Synthetic labelled faces from EMFACS prototypes, read back through the live canonical and AU stages.

Used by ``scripts/build_default_emotion_head.py`` (the shipped head) and by tests. No real expression data. Each
sample is a FACE SHAPE, not an AU vector: it is rendered to MediaPipe-style landmarks and its features are what
:class:`rtface.emotion.features.AUFeaturizer` (the real ``CanonicalStage`` + ``AUStage``) reads from them.

1. Prototype FACS intensities per class (:data:`PROTOTYPES`, EMFACS-style; AU16 is not in the basis, so disgust
   uses 9+15+17 / 9+10 variants). Per sample: a variant, an apex intensity from a mixture (subtle 0.5-1.5, 35 %;
   moderate 1.5-3, 40 %; strong 3-5, 25 %), each AU at apex * U(0.7, 1.15) (AU05 of surprise capped at B = 2),
   optional AUs of the variant dropped with p = 0.25 (partial prototypes), and co-activation noise: every other AU
   on with p = 0.08 at U(0, 1.2) FACS. Neutral = co-activation noise only, at U(0, 0.8) (below trace, A).
   Happiness adds what real smiles read besides AU12 (``overlap``, AU -> max fraction of the AU12 intensity; each
   sample adds U(0, fraction) x AU12). The build script MEASURES these fractions with the shipped pipeline on real
   smiles (training people only) and passes them in; :data:`DEFAULT_SMILE_OVERLAP` is the value it measured.
2. Basis mismatch (real faces do not move like the basis): per sample each AU's displacement field is scaled by
   U(0.7, 1.3) and leaks into the AUs whose basis columns are coherent with it (|cos| > 0.5) with weight
   U(0, 0.6) * |cos|. Contempt uses the basis' unilateral columns (AU12_R + AU14_R, intensity 0.7-2.5).
3. Face shape: frontal shape = a real person's neutral (``neutrals``: frontal shapes as the canonical stage reports
   them, e.g. :meth:`AUFeaturizer.frontal_shape` of a neutral photo; with probability ``blend`` a blend of 2-3 of
   them: population mean + sum w_i (neutral_i - mean) / |w|, w ~ Dirichlet(1), so that more identities than the
   few real ones are seen at the real identities' distance from the mean) + the displacement; as MediaPipe would report
   it at a head pose: + the population model's pose response at that pose + a draw of the pose residual the model
   leaves (per axis, ``pose_residual_axis_factor`` each scaled by its own angle, or without it
   ``pose_residual_factor`` scaled for the pose; one draw per session) + landmark jitter drawn from the AU
   stage's noise model (``noise.json``, per frame). Then rotated and projected (weak perspective, the canonical
   stage's camera) into a 640x480 image at a random face size and position.
4. Regimes, as the engine meets faces:
   - ``still``: one frame, ``FrameMeta.still`` (population reference, ``shape_frames`` 0); pose yaw N(0, 8),
     pitch N(0, 6), roll N(0, 5) deg (photos are mostly frontal);
   - ``sequence``: 30 fps; a session pose (yaw U(-20, 20), pitch U(-12, 12), roll U(-10, 10) deg) with N(0, 2 deg)
     per frame; 0 neutral frames (10 %: the session opens with the expression) or 10-60, then the expression
     ramps up over 3-8 frames and holds 6-30 frames (intensity x U(0.9, 1.05) per frame); the sample is the last
     frame (class label) and, when there were neutral frames, the last neutral frame (label neutral).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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

# What the build script measured real smiles to read besides AU12 (max fraction of AU12, see module doc step 1;
# numbers and their source in rtface/data/emotion/build_report.json "smile_overlap").
DEFAULT_SMILE_OVERLAP: dict[str, float] = {"AU06": 1.16, "AU09": 0.32, "AU10": 0.25, "AU14": 0.29, "AU20": 0.2}

NEUTRAL_NOISE_MAX = 0.8  # co-activation noise of a neutral face stays below FACS A (trace)
IMAGE_W, IMAGE_H = 640, 480
REGIMES = ("still", "sequence")
_COHERENCE_MIN = 0.5


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    from rtface.geometry.pose import matrix_from_euler_xyz

    return matrix_from_euler_xyz(math.radians(pitch), math.radians(yaw), math.radians(roll))


def project(shape_cm: np.ndarray, yaw: float, pitch: float, roll: float, px_per_cm: float,
            centre_px: tuple[float, float] = (IMAGE_W / 2.0, IMAGE_H / 2.0)) -> np.ndarray:
    """Canonical-frame face shape (cm, as MediaPipe reports it at this pose) -> px landmarks by weak perspective:
    x, y image px; z relative depth in px units (the canonical stage's camera model)."""
    r = _rotation(yaw, pitch, roll) @ np.diag([1.0, -1.0, -1.0])  # canonical -> camera (see geometry.pose)
    cam = (shape_cm - shape_cm.mean(axis=0)) @ r.T * px_per_cm
    return cam + np.array([centre_px[0], centre_px[1], 0.0])


class PrototypeSynth:
    """Generates labelled synthetic faces and their live-stage features (module doc)."""

    def __init__(self, featurizer: AUFeaturizer, neutrals: list[np.ndarray], seed: int = 0,
                 overlap: dict[str, float] | None = None, basis_file: str | Path | None = None,
                 blend: float = 0.0) -> None:
        from rtface.au.solve import load_noise_model
        from rtface.facemodel.population import load_population_model
        from rtface.geometry.canonical_model import load_canonical_model

        if not neutrals:
            raise ValueError("PrototypeSynth needs at least one neutral face")
        self.fz = featurizer
        self.names = featurizer.names
        self.idx = {n: i for i, n in enumerate(self.names)}
        self.neutrals = [np.asarray(n, dtype=np.float64) for n in neutrals]
        self.overlap = dict(DEFAULT_SMILE_OVERLAP if overlap is None else overlap)
        self.blend = float(blend)
        self.rng = np.random.default_rng(seed)
        self.pop = load_population_model(featurizer.canonical.params.face_model_path or None)
        noise_path = featurizer.aus.params.noise_path
        self.noise = None if noise_path.lower() == "none" else load_noise_model(noise_path or None)
        k = len(self.names)
        self.cols = np.asarray(featurizer.basis.matrix, dtype=np.float64)  # (1434, K) cm per activation
        self.u2f = np.asarray(featurizer.basis.unit_to_facs, dtype=np.float64)
        nrm = np.linalg.norm(self.cols, axis=0)
        cos = np.abs(self.cols.T @ self.cols) / np.outer(nrm, nrm)
        np.fill_diagonal(cos, 0.0)
        self.coherence = np.where(cos > _COHERENCE_MIN, cos, 0.0)  # (K, K)
        self.lr_cols: dict[str, np.ndarray] = {}
        path = Path(basis_file) if basis_file else Path(featurizer.basis.path)
        if path.is_file():
            with np.load(path) as z:
                if "names_lr" in z.files:
                    for n, b, u in zip(z["names_lr"], z["basis_lr"], z["unit_to_facs_lr"]):
                        self.lr_cols[str(n)] = b.reshape(-1).astype(np.float64) / float(u)  # cm per FACS point
        self._k = k
        tmpl = load_canonical_model().vertices_cm
        self._iod_cm = float(np.linalg.norm(tmpl[33, :2] - tmpl[263, :2]))

    # ---- expression --------------------------------------------------------------------------------------------
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
        if cls == "happiness" and "AU12" in self.idx:  # what real smiles read besides AU12 (module doc, step 1)
            a12 = f[self.idx["AU12"]]
            for au, frac in self.overlap.items():
                if au in self.idx:
                    f[self.idx[au]] = min(5.0, f[self.idx[au]] + a12 * rng.uniform(0.0, frac))
        noise_on = rng.random(self._k) < 0.08
        top = NEUTRAL_NOISE_MAX if cls == "neutral" else 1.2
        f = np.where((f == 0) & noise_on, rng.uniform(0, top, self._k), f)
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

    # ---- rendering ---------------------------------------------------------------------------------------------
    def _session(self, still: bool) -> dict[str, Any]:
        rng = self.rng
        if still:
            pose = np.array([rng.normal(0, 8), rng.normal(0, 6), rng.normal(0, 5)])
        else:
            pose = np.array([rng.uniform(-20, 20), rng.uniform(-12, 12), rng.uniform(-10, 10)])
        iod = rng.uniform(60.0, 220.0)  # outer eye-corner distance, px
        centre = (IMAGE_W / 2 + rng.uniform(-0.2, 0.2) * IMAGE_W, IMAGE_H / 2 + rng.uniform(-0.15, 0.15) * IMAGE_H)
        ax = self.pop.pose_residual_axis_factor
        shape = (3, ax.shape[1]) if ax.size else (self.pop.pose_residual_factor.shape[0],)
        return {"neutral": self._identity(), "pose": pose, "iod": iod,
                "centre": centre, "residual": rng.standard_normal(shape)}

    def _identity(self) -> np.ndarray:
        """A neutral face: one of ``neutrals``, or (probability ``blend``) a random face of the Gaussian they span
        around the population mean: mean + sum z_i (neutral_i - mean) / |z|, z ~ N(0, I), at the real identities'
        distance from the mean (module doc, step 3)."""
        rng = self.rng
        n = len(self.neutrals)
        if n < 2 or rng.random() >= self.blend:
            return self.neutrals[rng.integers(n)]
        z = rng.standard_normal(n)
        mean = self.pop.mean_cm
        return mean + sum(zi * (nb - mean) for zi, nb in zip(z, self.neutrals)) / math.sqrt(float(z @ z))

    def _jitter(self) -> np.ndarray:
        if self.noise is None:
            return np.zeros((478, 3))
        nz, rng = self.noise, self.rng
        d = rng.standard_normal(nz.factor.shape[0]) @ nz.factor + rng.standard_normal(478 * 3) * np.sqrt(nz.resid_var)
        return d.reshape(478, 3)

    def render(self, session: dict[str, Any], disp: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, int, int]:
        """One frame: (landmarks_px (478, 3), width, height) of the session's face + ``disp`` at ``pose``."""
        yaw, pitch, roll = (float(a) for a in pose)
        shape = session["neutral"] + disp + self.pop.pose_offset(yaw, pitch, roll, session["iod"])
        ax = self.pop.pose_residual_axis_factor
        if ax.size:
            scales = self.pop.pose_residual_axis_scales(yaw, pitch, roll)
            shape = shape + np.einsum("a,ar,arlk->lk", scales, session["residual"], ax)
        else:
            scale = self.pop.pose_residual_scale(yaw, pitch, roll)
            if scale > 0:
                shape = shape + scale * np.tensordot(session["residual"], self.pop.pose_residual_factor, axes=1)
        shape = shape + self._jitter()
        return project(shape, yaw, pitch, roll, session["iod"] / self._iod_cm, session["centre"]), IMAGE_W, IMAGE_H

    # ---- samples -----------------------------------------------------------------------------------------------
    def still(self, cls: str) -> tuple[np.ndarray, np.ndarray]:
        """(FACS truth (K,), features (K,) float32) of one still image of class ``cls``."""
        f, extra = self.facs(cls)
        s = self._session(True)
        frame = self.render(s, self.displacement(f, extra), s["pose"])
        return f, self.fz.stills([frame])[0]

    def sequence_frames(self, cls: str, n_neutral: int | None = None) -> tuple[list, list[str], np.ndarray]:
        """Frames of one sequence (module doc, step 4), their labels, and the FACS truth of the expression."""
        rng = self.rng
        f, extra = self.facs(cls)
        disp = self.displacement(f, extra)
        s = self._session(False)
        if n_neutral is None:
            n_neutral = 0 if rng.random() < 0.1 else int(rng.integers(10, 61))
        ramp, hold = int(rng.integers(3, 9)), int(rng.integers(6, 31))
        frames, labels = [], []
        for t in range(n_neutral + ramp + hold):
            pose = s["pose"] + rng.normal(0.0, 2.0, 3)
            if t < n_neutral:
                w, lab = 0.0, "neutral"
            else:
                w = min(1.0, (t - n_neutral + 1) / ramp) * (rng.uniform(0.9, 1.05) if t >= n_neutral + ramp else 1)
                lab = cls
            frames.append(self.render(s, w * disp, pose))
            labels.append(lab)
        return frames, labels, f

    def sequence(self, cls: str) -> list[tuple[str, np.ndarray, float]]:
        """[(label, features (K,), shape_frames)] of one sequence: its last frame and, if it had neutral frames, its
        last neutral frame."""
        frames, labels, _ = self.sequence_frames(cls)
        faces = self.fz.sequence_faces(frames)
        out = [(labels[-1], faces[-1].au_intensity, faces[-1].shape_frames)]
        if "neutral" in labels and cls != "neutral":
            j = max(i for i, lab in enumerate(labels) if lab == "neutral")
            out.append(("neutral", faces[j].au_intensity, faces[j].shape_frames))
        return out

    def dataset(self, n_still: int, n_sequence: int, classes: tuple[str, ...] = CLASSES,
                neutral_stills: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Features (N, K) float32, labels (N,) int (index into ``classes``), regime (N,) str ("still" /
        "sequence") and shape_frames (N,) of ``n_still`` stills and ``n_sequence`` sequences per class
        (``neutral_stills`` neutral stills, default ``n_still``); classes interleaved."""
        n_neutral = n_still if neutral_stills is None else int(neutral_stills)
        xs, ys, rs, fs = [], [], [], []
        for i in range(max(n_still, n_sequence, n_neutral)):
            for ci, c in enumerate(classes):
                if i < (n_neutral if c == "neutral" else n_still):
                    xs.append(self.still(c)[1])
                    ys.append(ci)
                    rs.append("still")
                    fs.append(0.0)
                if i < n_sequence:
                    for lab, x, frames in self.sequence(c):
                        xs.append(x)
                        ys.append(classes.index(lab))
                        rs.append("sequence")
                        fs.append(frames)
        return (np.asarray(xs, dtype=np.float32).reshape(-1, self._k), np.asarray(ys, dtype=np.int64),
                np.asarray(rs, dtype=object), np.asarray(fs, dtype=np.float64))


def landmark_table(synth: PrototypeSynth, classes: tuple[str, ...], videos_per_class: int, frames: int = 40,
                   neutral_frames: int = 12, label_names: dict[str, str] | None = None,
                   apex: float | None = None) -> dict[str, list]:
    """Columns of a layout-(a) table (see :mod:`rtface.emotion.dataset`): per video a session (pose, identity),
    ``neutral_frames`` neutral frames, then the class's expression ramping up over 6 frames (labelled with the
    class; neutral frames labelled ``neutral``). Coordinates normalised like MediaPipe (x/W, y/H, z/W of a 640x480
    image). ``label_names`` renames labels in the table (e.g. {"happiness": "happy"}) to exercise synonyms; ``apex``
    rescales each video's prototype so its strongest AU has this FACS intensity."""
    rng = synth.rng
    label_names = label_names or {}
    cols: dict[str, list] = {"video_filename": [], "frame_num": [], "emotion": []}
    lm_cols = [f"{a}_{i}" for a in "xyz" for i in range(478)]
    for c in lm_cols:
        cols[c] = []
    for cls in classes:
        for v in range(videos_per_class):
            s = synth._session(False)
            f, extra = synth.facs(cls)
            if apex is not None:
                top = max([float(f.max())] + list(extra.values()))
                scale = apex / top if top > 0 else 1.0
                f = np.minimum(f * scale, 5.0)
                extra = {k: min(val * scale, 5.0) for k, val in extra.items()}
            disp = synth.displacement(f, extra)
            for t in range(frames):
                ramp = 0.0 if t < neutral_frames else min(1.0, (t - neutral_frames + 1) / 6.0)
                px, w, h = synth.render(s, ramp * disp, s["pose"] + rng.normal(0.0, 2.0, 3))
                label = "neutral" if ramp == 0.0 else cls
                cols["video_filename"].append(f"{cls}_{v:02d}.mp4")
                cols["frame_num"].append(t)
                cols["emotion"].append(label_names.get(label, label))
                flat = np.concatenate([px[:, 0] / w, px[:, 1] / h, px[:, 2] / w])
                for c, val in zip(lm_cols, flat):
                    cols[c].append(float(val))
    return cols
