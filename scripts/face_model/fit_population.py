"""Fit the population face model's render-derived parts (build-time): pose response, perceived identity modes and
the pose residual, from neutral renders of many faces, each under one camera and light and several head poses
(the *_population sets).

1. Pose response: within each face, the change of the pose-free shape (flattened, 1434 values, cm) from its
   near-frontal render to each turned render, regressed on the change of the pose features:
   ``y_i - y_ref = (f_i - f_ref) @ P + e_i``. Identity, camera and light cancel.
2. Pose residual: ``e_i`` grows with the angles (slope ``g`` of its RMS over |angles| / 30 deg); the factor is the
   principal directions (scaled to their sd) of the residuals of pairs turned 20-40 deg, and the scale
   ``g . |angles| / 30`` is normalised to 1 at those pairs' mean angles (zero at frontal).
   Per axis too: ``e_i = sum_a (|angle_ia| / 30) z_ia`` with independent ``z_a ~ N(0, C_a)``, so the residual
   covariance is linear in the squared angles; ``C_a`` by least squares on the pairs' outer products (an intercept
   takes what does not grow with the angles), its leading positive eigen-directions scaled to their sd.
3. Identity modes: ``y_i - f_i @ P = m_head + beta_i @ S + r_i`` over all renders (one intercept per rendered
   head; their painted features differ), S = how MediaPipe reports each ICT identity mode (cm per unit).
"""
from __future__ import annotations

import numpy as np

from rtface.facemodel.pose_features import features_batch


def fit_population(pf: np.ndarray, pose: np.ndarray, iod: np.ndarray, beta: np.ndarray, head: np.ndarray,
                   template: np.ndarray, n_resid: int = 40) -> dict[str, np.ndarray]:
    ok = np.isfinite(pf).all(axis=(1, 2)) & np.isfinite(pose).all(1)
    pf, pose, iod, beta, head = pf[ok], pose[ok], iod[ok], beta[ok], head[ok]
    n = len(pf)
    y = (pf - template).reshape(n, -1)
    feats = features_batch(pose, iod)
    # group renders of the same face (same identity coefficients and head); reference = smallest |angles|
    keys = [h + ":" + b.tobytes().hex() for h, b in zip(head, beta)]
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    dy, df, ang = [], [], []
    for idx in groups.values():
        ref = min(idx, key=lambda i: float(np.abs(pose[i]).sum()))
        for i in idx:
            if i != ref:
                dy.append(y[i] - y[ref])
                df.append(feats[i] - feats[ref])
                ang.append(np.abs(pose[i] - pose[ref]) / 30.0)
    dy, df, ang = np.array(dy), np.array(df), np.array(ang)
    P, *_ = np.linalg.lstsq(df, dy, rcond=None)
    e = dy - df @ P
    energy = np.sqrt((e ** 2).mean(1))
    # growth with the angles: slope of the residual energy (an intercept absorbs what does not depend on the
    # angle); the factor = principal directions of the residuals of the turned pairs (largest angle 20-40 deg),
    # at their own size, and the scale is 1 at those pairs' mean angles and 0 at frontal
    coef_e, *_ = np.linalg.lstsq(np.c_[np.ones(len(ang)), ang], energy, rcond=None)
    slope = np.clip(coef_e[1:], 1e-4, None)
    mid = (ang.max(1) >= 20 / 30.0) & (ang.max(1) < 40 / 30.0)
    if mid.sum() < 20:
        mid = np.ones(len(ang), bool)
    gain = slope / float(ang[mid].mean(0) @ slope)
    _, s, vt = np.linalg.svd(e[mid], full_matrices=False)
    sd = s / np.sqrt(int(mid.sum()))
    factor = vt[:n_resid] * sd[:n_resid, None]
    axis_factors = _axis_factors(e, ang, n_resid)
    # the pose-feature energy relative to the raw scale of the energies, for the report
    pose_r2 = 1.0 - float((e ** 2).sum()) / float((dy ** 2).sum())
    heads = sorted(set(head.tolist()))
    onehot = np.stack([(head == h).astype(float) for h in heads], 1)
    x = np.concatenate([onehot, beta], 1)
    y0 = y - feats @ P
    coef, *_ = np.linalg.lstsq(x, y0, rcond=None)
    r = y0 - x @ coef
    id_r2 = 1.0 - float((r ** 2).sum()) / float(((y0 - onehot @ coef[:len(heads)]) ** 2).sum())
    return {"head_means": coef[:len(heads)], "heads": np.array(heads), "identity_modes": coef[len(heads):],
            "pose_fields": P, "pose_residual_factor": factor, "pose_residual_gain": gain,
            "pose_residual_axis_factor": axis_factors,
            "n_samples": np.array(n), "n_pairs": np.array(len(dy)), "pose_r2": np.array(pose_r2),
            "identity_r2": np.array(id_r2),
            "pose_resid_rms_cm": np.array(float(np.sqrt((e.reshape(len(e), -1, 3) ** 2).sum(2).mean()))),
            "resid_rms_cm": np.array(float(np.sqrt((r.reshape(n, -1, 3) ** 2).sum(2).mean()))),
            "resid_explained_by_factor": np.array(float((sd[:n_resid] ** 2).sum() / (sd ** 2).sum()))}


def _axis_factors(e: np.ndarray, ang: np.ndarray, n_resid: int) -> np.ndarray:
    """(3, n_resid, D) per-axis residual factors: ``Cov(e_i) = C_0 + sum_a ang_ia^2 C_a`` fitted by least squares
    on the outer products (weights = the pseudo-inverse rows), each ``C_a`` cut to its leading positive
    eigen-directions x sqrt(eigenvalue). ``ang`` in units of 30 deg."""
    design = np.c_[np.ones(len(ang)), ang ** 2]
    w = np.linalg.pinv(design)  # (4, n): C_k = sum_i w_ki e_i e_i^T
    out = np.zeros((3, n_resid, e.shape[1]))
    for a in range(3):
        c = (e * w[a + 1][:, None]).T @ e
        lam, vec = np.linalg.eigh(c)
        order = np.argsort(lam)[::-1][:n_resid]
        lam = np.clip(lam[order], 0.0, None)
        out[a] = (vec[:, order] * np.sqrt(lam)).T
    return out
