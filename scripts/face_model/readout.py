"""The face model's identity-marginalised read-out fields (rtface.stages.aus: per AU, the plain or the
marginalised read-out, whichever detects better).

- ``marginal_sd_cm``: residual sd with which the identity modes are integrated out: the model's own detail sd and
  one rest frame's spread around the person's neutral (the AU stage's ``obs_sd_cm``) in quadrature; nothing tuned.
- ``marginal_single_frame_floor``: as ``single_frame_floor``, through the marginalised read-out: per AU the 90th
  percentile of what real neutral faces read against the mean of the others.
- ``readout_gain`` (2, K): per AU the median reading (FACS) of its full-weight renders (hm_build render set, each
  against the same face's neutral render in the same scene) through the plain and the marginalised read-out;
  for an AU without renders (AU06: its column comes from a real smile) the median reading of the real
  displacements given for it (the build: the sample video's smile, from which its column and unit were made).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import fit_aus as FA

QUANTILE = 0.9


def marginal_sd(detail_sd_cm: np.ndarray) -> float:
    """cm: the detail sd (RMS over coordinates) and the AU stage's default ``obs_sd_cm`` in quadrature."""
    from rtface.stages.aus import AUParams
    return float(np.sqrt(np.mean(np.asarray(detail_sd_cm) ** 2) + AUParams().obs_sd_cm ** 2))


def solver(basis_path: Path, marginal: tuple[np.ndarray, float] | None = None):
    """(AU solver exactly as the AU stage builds it for this basis, plain or with ``marginal`` = (identity factor,
    sd cm); the basis; the canonical template)."""
    from rtface.au.basis import load_au_basis
    from rtface.geometry.canonical_model import load_canonical_model
    from rtface.stages.aus import AUParams, build_solver
    basis = load_au_basis(str(basis_path))
    template = np.asarray(load_canonical_model().vertices_cm, dtype=np.float64)
    s, _ = build_solver(AUParams(basis_path=str(basis_path)), basis, template, marginal=marginal)
    return s, basis, template


def loo_floor(au_solver, template: np.ndarray, frontal: np.ndarray, quantile: float = QUANTILE) -> np.ndarray:
    """(K,) the ``quantile`` of what each real neutral face reads against the mean of the others (FACS, 0-5)."""
    n = len(frontal)
    reads = []
    for i in range(n):
        mean = frontal[np.arange(n) != i].mean(0)
        reads.append(au_solver.solve_activations(template + frontal[i] - mean, template) * au_solver.unit_to_facs)
    return np.quantile(np.clip(np.array(reads), 0, 5), quantile, axis=0)


def render_gains(plain, marg, basis, template: np.ndarray, hm_build: dict, sources: dict,
                 real: dict[str, list[np.ndarray]]) -> np.ndarray:
    """(2, K) median full-weight readings per AU (module doc); ``real``: AU -> real displacements (478, 3) cm for
    the AUs without renders (an AU in neither reads 0 through both)."""
    names = list(basis.names)
    out = np.zeros((2, len(names)))
    for k, au in enumerate(names):
        if au in sources:
            _, full = FA.per_condition_slopes(hm_build["pf"], hm_build["expr_names"], hm_build["expr_w"],
                                              sources[au][1])
            ds = [d for d in full if np.isfinite(d).all()]
        else:
            ds = real.get(au, [])
        if not ds:
            continue
        for row, s in enumerate((plain, marg)):
            out[row, k] = float(np.median([s.solve_activations(template + d, template)[k] * s.unit_to_facs[k]
                                           for d in ds]))
    return np.clip(out, 0.0, 5.0)


def readout_fields(basis_path: Path, identity_factor: np.ndarray, detail_sd_cm: np.ndarray, frontal: np.ndarray,
                   hm_build: dict | None, sources: dict, real: dict[str, list[np.ndarray]],
                   gains: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The three face-model fields (module doc). ``gains`` given (validation folds: the renders hold no real
    person) skips the renders."""
    sd = marginal_sd(detail_sd_cm)
    plain, basis, template = solver(basis_path)
    marg, _, _ = solver(basis_path, (identity_factor, sd))
    if gains is None:
        gains = render_gains(plain, marg, basis, template, hm_build, sources, real)
    return {"marginal_sd_cm": np.array(sd), "marginal_single_frame_floor": loo_floor(marg, template, frontal),
            "readout_gain": np.asarray(gains, dtype=np.float64)}
