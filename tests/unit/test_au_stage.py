"""AU solver and AU stage on a synthetic basis built on the real canonical model (pure logic, hand-built records),
plus one check against the shipped AU basis when it exists."""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from rtface.au.session import CompositeSpec
from rtface.au.solve import FACE_OVAL_IDS, IRIS_IDS, AUSolver, landmark_weights
from rtface.errors import ConfigError, DataError, StageError
from rtface.facemodel.population import load_population_model
from rtface.geometry.canonical_model import load_canonical_model
from rtface.graph.stage import stage_class
from rtface.records import Face, FrameMeta, FrameResult
from rtface.stages.aus import AUParams, AUStage

NAMES = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU16",
         "AU17", "AU20", "AU23", "AU25", "AU26", "AU43")
SHIPPED = Path(__file__).resolve().parents[2] / "rtface" / "data" / "au_basis" / "au_basis.npz"


@dataclass
class SynthBasis:
    """Stand-in with the fields of rtface.au.basis.AUBasis that the solver uses."""

    names: tuple[str, ...]
    basis: np.ndarray  # (K, 478, 3) cm per unit activation
    matrix: np.ndarray  # (1434, K)
    unit_to_facs: np.ndarray  # (K,)
    meta: dict = field(default_factory=dict)


def synth_basis(seed: int = 0, names: tuple[str, ...] = NAMES) -> SynthBasis:
    """Smooth bilateral displacement fields: Gaussian bumps (sigma 1.2 cm) around a landmark and its mirror."""
    model = load_canonical_model()
    v = model.vertices_cm
    rng = np.random.default_rng(seed)
    k = len(names)
    fields = np.zeros((k, 478, 3))
    for j in range(k):
        c = int(rng.integers(0, 468))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        for centre, sgn in ((c, 1.0), (int(model.mirror_index[c]), -1.0)):
            w = np.exp(-np.sum((v - v[centre]) ** 2, axis=1) / (2 * 1.2**2))
            fields[j] += 0.5 * w[:, None] * (direction * np.array([sgn, 1.0, 1.0]))[None, :]
    u2f = rng.uniform(2.0, 6.0, k)
    return SynthBasis(tuple(names), fields.astype(np.float32), fields.reshape(k, -1).T.astype(np.float64), u2f)


def _canonical(basis: SynthBasis, facs: np.ndarray, noise_cm: float = 0.0, seed: int = 0) -> np.ndarray:
    act = facs / basis.unit_to_facs
    disp = (basis.matrix @ act).reshape(478, 3)
    rng = np.random.default_rng(seed)
    return (load_canonical_model().vertices_cm + disp + noise_cm * rng.normal(size=(478, 3))).astype(np.float32)


def _sparse_facs(rng: np.random.Generator, k: int) -> np.ndarray:
    return np.where(rng.random(k) < 0.35, rng.uniform(0.5, 4.5, k), 0.0)


# ------------------------------------------------------------------------------------------------------ solver
def test_solver_recovers_known_intensities() -> None:
    basis = synth_basis()
    solver = AUSolver(basis, ridge=1e-5, landmark_weights=landmark_weights(1.0, 1.0))
    tmpl = load_canonical_model().vertices_cm
    rng = np.random.default_rng(1)
    for t in range(20):
        facs = _sparse_facs(rng, len(NAMES))
        out = solver.solve(_canonical(basis, facs, 0.002, seed=t), tmpl)
        assert out.dtype == np.float32 and out.shape == (len(NAMES),)
        assert np.all((out >= 0) & (out <= 5))
        np.testing.assert_allclose(out, facs, atol=0.25)
    # warm start from the previous activations gives the same answer
    c = _canonical(basis, facs)
    cold = solver.solve_activations(c, tmpl)
    warm = solver.solve_activations(c, tmpl, prev=cold * 1.1)
    np.testing.assert_allclose(warm, cold, atol=1e-7)
    np.testing.assert_array_equal(solver.solve(tmpl, tmpl), np.zeros(len(NAMES), np.float32))


def test_solver_upper_bound_and_clip() -> None:
    basis = synth_basis()
    tmpl = load_canonical_model().vertices_cm
    facs = np.zeros(len(NAMES))
    facs[3] = 8.0  # beyond the FACS scale
    bounded = AUSolver(basis, ridge=1e-6, upper=5.0).solve_activations(_canonical(basis, facs), tmpl)
    assert bounded[3] * basis.unit_to_facs[3] == pytest.approx(5.0)
    free = AUSolver(basis, ridge=1e-6, upper=None)
    act = free.solve_activations(_canonical(basis, facs), tmpl)
    assert act[3] * basis.unit_to_facs[3] == pytest.approx(8.0, rel=1e-3)
    assert free.to_facs(act)[3] == 5.0  # output clipped to the FACS range


def test_contour_weights_ignore_silhouette_noise() -> None:
    basis = synth_basis()
    tmpl = load_canonical_model().vertices_cm
    facs = np.zeros(len(NAMES))
    facs[[2, 8]] = [2.0, 3.0]
    clean = _canonical(basis, facs).astype(np.float64)
    dirty = clean.copy()
    dirty[list(FACE_OVAL_IDS)] += np.random.default_rng(2).normal(0, 0.4, (len(FACE_OVAL_IDS), 3))
    dirty[list(IRIS_IDS)] += 0.5
    s0 = AUSolver(basis, ridge=1e-6, landmark_weights=landmark_weights(0.0, 0.0))
    np.testing.assert_allclose(s0.solve(dirty, tmpl), s0.solve(clean, tmpl), atol=1e-4)
    s1 = AUSolver(basis, ridge=1e-6, landmark_weights=landmark_weights(1.0, 1.0))
    assert np.abs(s1.solve(dirty, tmpl) - s1.solve(clean, tmpl)).max() > 1e-3
    w = landmark_weights(0.25, 0.0)
    assert w.shape == (478,) and w[152] == 0.25 and w[468] == 0.0 and w[1] == 1.0


def test_face_oval_ids_match_mediapipe() -> None:
    fmc = pytest.importorskip("mediapipe.python.solutions.face_mesh_connections")
    assert sorted(FACE_OVAL_IDS) == sorted({i for e in fmc.FACEMESH_FACE_OVAL for i in e})
    assert {i for e in fmc.FACEMESH_IRISES for i in e} <= set(IRIS_IDS)


def test_solver_rejects_bad_inputs() -> None:
    basis = synth_basis()
    with pytest.raises(DataError):
        AUSolver(SynthBasis(basis.names, basis.basis, basis.matrix[:-3], basis.unit_to_facs))
    with pytest.raises(DataError):
        AUSolver(SynthBasis(basis.names, basis.basis, basis.matrix, -basis.unit_to_facs))
    with pytest.raises(ConfigError):
        AUSolver(basis, ridge=-1.0)
    with pytest.raises(ConfigError):
        landmark_weights(-0.5)
    with pytest.raises(DataError):
        AUSolver(basis).solve(np.zeros((468, 3)), np.zeros((468, 3)))


# ------------------------------------------------------------------------------------------------------- stage
def _frame(index: int, faces: list[Face]) -> FrameResult:
    return FrameResult(FrameMeta(index, 0, index * 33_333_333, 640, 480, "test"), faces)


def _face(fid: int, canonical: np.ndarray | None, ready: bool = True) -> Face:
    return Face(fid, 0.9, np.zeros(4, np.float32), np.zeros((478, 3), np.float32), canonical_cm=canonical,
                neutral_ready=ready)


def test_stage_fills_faces_and_session() -> None:
    assert stage_class("aus") is AUStage
    basis = synth_basis()
    stage = AUStage("aus", AUParams(ridge=1e-5, noise_path="none", face_model_path="none", presence_clear=5.0),
                    basis=basis)  # exact recovery, no floors
    with pytest.raises(StageError):
        stage.process(np.zeros((4, 4, 3), np.uint8), _frame(0, []))
    stage.open()
    assert stage.names == NAMES
    k = len(NAMES)
    i12, i4 = NAMES.index("AU12"), NAMES.index("AU04")
    smile = np.zeros(k)
    smile[[NAMES.index("AU06"), i12]] = [2.0, 3.5]
    frown = np.zeros(k)
    frown[i4] = 2.5
    spec = CompositeSpec(NAMES)
    for t in range(6):
        faces = [_face(1, _canonical(basis, smile * (t >= 2))), _face(2, _canonical(basis, frown)), _face(3, None)]
        res = _frame(t, faces)
        stage.process(np.zeros((4, 4, 3), np.uint8), res)
        f1, f2, f3 = res.faces
        assert f3.au_intensity is None and "pspi" not in f3.extras
        assert f1.au_intensity.dtype == np.float32 and f1.au_intensity.shape == (k,)
        assert f1.au_presence.dtype == bool and f1.au_presence.shape == (k,)
        np.testing.assert_allclose(f2.au_intensity, frown, atol=0.05)
        np.testing.assert_allclose(f1.au_intensity, smile * (t >= 2), atol=0.05)
        assert f1.au_presence[i12] == (t >= 3)  # on after 0.03 s >= 1.0 (the second frame at 30 fps)
        assert f2.au_presence[i4] == (t >= 1)
        assert f1.extras["pspi"] == pytest.approx(spec.pspi(f1.au_intensity, f1.au_presence))
    s = stage.summary()
    assert s["names"] == list(NAMES)
    d1, d2 = s["faces"][1], s["faces"][2]
    assert d1["n_frames"] == 6 and 3 not in s["faces"]
    assert d1["fac_AU12int_mean"] == pytest.approx(3.5 * 4 / 6, abs=0.05)
    assert d1["fac_AU12pres_pct"] == pytest.approx(3 / 6)
    assert d2["fac_AU04pres_pct"] == pytest.approx(5 / 6)
    assert d1["fac_hapinthard_mean"] > 0 and d2["fac_hapinthard_mean"] == 0
    assert d2["fac_pspi_mean"] == pytest.approx(2.5, abs=0.05)
    stage.close()
    stage.close()


def test_stage_neutral_gate_nonfinite_and_config() -> None:
    basis = synth_basis()
    k = len(NAMES)
    facs = np.zeros(k)
    facs[0] = 2.0
    gated = AUStage("aus", AUParams(min_neutral_ready=True, noise_path="none", face_model_path="none"), basis=basis)
    gated.open()
    res = _frame(0, [_face(1, _canonical(basis, facs), ready=False), _face(2, _canonical(basis, facs), ready=True)])
    gated.process(np.zeros((4, 4, 3), np.uint8), res)
    assert res.faces[0].au_intensity is None and res.faces[1].au_intensity is not None
    assert gated.skipped_not_ready == 1 and set(gated.summary()["faces"]) == {2}

    default = AUStage("aus", AUParams(noise_path="none", face_model_path="none"), basis=basis)
    default.open()
    bad = _canonical(basis, facs)
    bad[5, 1] = np.nan
    res = _frame(0, [_face(1, _canonical(basis, facs), ready=False), _face(2, bad)])
    default.process(np.zeros((4, 4, 3), np.uint8), res)
    assert res.faces[0].au_intensity is not None  # published before the neutral is ready (default)
    assert res.faces[1].au_intensity is None and default.skipped_nonfinite == 1
    with pytest.raises(StageError):
        default.process(np.zeros((4, 4, 3), np.uint8), _frame(1, [_face(3, np.zeros((10, 3), np.float32))]))
    for bad_params in (AUParams(ridge=-1), AUParams(presence_on=0.5, presence_off=1.0),
                       AUParams(presence_on=3.0, presence_clear=2.0), AUParams(presence_on_s=-1.0),
                       AUParams(upper_bound=0.0), AUParams(weight_contour=float("nan")), AUParams(floor_quantile=1.5),
                       AUParams(floor_samples=2), AUParams(obs_sd_cm=float("inf"))):
        with pytest.raises(ConfigError):
            AUStage("aus", bad_params, basis=basis)


def test_stage_forgets_stale_faces() -> None:
    basis = synth_basis()
    stage = AUStage("aus", AUParams(face_model_path="none"), basis=basis)
    stage.open()
    img = np.zeros((4, 4, 3), np.uint8)
    stage.process(img, _frame(0, [_face(1, _canonical(basis, np.zeros(len(NAMES))))]))
    assert 1 in stage._prev
    stage.process(img, _frame(1000, []))
    assert 1 not in stage._prev and stage.summary()["faces"][1]["n_frames"] == 1  # session results are kept


@pytest.mark.skipif(not SHIPPED.exists(), reason=f"shipped AU basis not built yet: {SHIPPED} is absent")
def test_shipped_basis_recovers_synthetic_expressions() -> None:
    from rtface.au.basis import load_au_basis

    basis = load_au_basis()
    k = len(basis.names)
    assert basis.matrix.shape == (1434, k) and all(n.startswith("AU") for n in basis.names)
    solver = AUSolver(basis, ridge=1e-4, landmark_weights=landmark_weights(1.0, 1.0))
    tmpl = load_canonical_model().vertices_cm
    rng = np.random.default_rng(0)
    errs = []
    for _ in range(10):
        facs = np.zeros(k)
        pick = rng.choice(k, size=min(3, k), replace=False)
        facs[pick] = rng.uniform(1.0, 4.0, pick.size)
        disp = (basis.matrix @ (facs / basis.unit_to_facs)).reshape(478, 3)
        errs.append(np.abs(solver.solve(tmpl + disp, tmpl) - facs).max())
    msg = f"median max-abs FACS error {np.median(errs):.3f} (cond {solver.condition_number:.3g})"
    assert np.median(errs) < 0.5, msg
    stage = AUStage("aus", AUParams())  # loads the shipped basis itself
    stage.open()
    assert stage.names == tuple(basis.names)


def test_realign_removes_anchor_similarity_motion() -> None:
    """With realign anchors, a small whole-face similarity motion added to an expression does not change the
    solve; without them it does. The projection only uses the anchor landmarks."""
    from rtface.au.solve import similarity_tangent

    basis = synth_basis()
    tmpl = load_canonical_model().vertices_cm
    anchors = (10, 9, 8, 151, 6, 168, 197, 195, 33, 263, 133, 362)
    # make the synthetic columns free of the anchor similarity, as the basis build does
    S = similarity_tangent(tmpl)
    rows = (np.array(anchors)[:, None] * 3 + np.arange(3)).reshape(-1)
    coef = np.linalg.lstsq(S[rows], basis.matrix[rows], rcond=None)[0]
    m = basis.matrix - S @ coef
    clean_basis = SynthBasis(basis.names, m.T.reshape(-1, 478, 3).astype(np.float32), m, basis.unit_to_facs)
    facs = np.zeros(len(NAMES))
    facs[[2, 8]] = [2.0, 3.0]
    expr = _canonical(clean_basis, facs).astype(np.float64)
    drift = (S @ np.array([0.05, -0.03, 0.02, 0.01, -0.008, 0.006, 0.004])).reshape(478, 3)
    on = AUSolver(clean_basis, ridge=1e-6, realign_anchors=anchors)
    off = AUSolver(clean_basis, ridge=1e-6)
    np.testing.assert_allclose(on.solve(expr + drift, tmpl), facs, atol=0.02)
    assert np.abs(off.solve(expr + drift, tmpl) - facs).max() > 0.05
    with pytest.raises(ConfigError):
        AUSolver(clean_basis, realign_anchors=(1, 2))


def test_regions_solve_each_group_on_its_landmarks_and_anchors() -> None:
    """Mechanism: with ``regions`` the solve equals one separate solve per region (its AUs, its landmarks, its
    anchors); a similarity drift on one region's anchors only is removed there; bad region specs are named."""
    from rtface.au.solve import similarity_tangent

    tmpl = load_canonical_model().vertices_cm
    basis = synth_basis(seed=4)
    y = tmpl[:, 1]
    split = 168
    up = [n for i, n in enumerate(NAMES) if i % 3 == 0]
    regions = [{"aus": up, "anchors": [168, 6, 197, 195, 4, 33, 263, 133, 362], "above_landmark": split},
               {"aus": [n for n in NAMES if n not in up], "anchors": [10, 9, 8, 151, 6, 168, 197, 195, 33, 263],
                "below_landmark": split}]
    solver = AUSolver(basis, ridge=1e-3, upper=None, landmark_weights=landmark_weights(), regions=regions)
    rng = np.random.default_rng(1)
    d = rng.normal(scale=0.2, size=(478, 3))
    got = solver.solve_activations(tmpl + d, tmpl)
    for r, keep in ((regions[0], y > y[split]), (regions[1], y < y[split])):
        idx = [NAMES.index(a) for a in r["aus"]]
        sub = SynthBasis(tuple(r["aus"]), basis.basis[idx], basis.matrix[:, idx], basis.unit_to_facs[idx])
        S = similarity_tangent(tmpl)
        rows = (np.array(r["anchors"])[:, None] * 3 + np.arange(3)).reshape(-1)
        proj = lambda m: m - S @ np.linalg.lstsq(S[rows], m[rows], rcond=None)[0]  # noqa: E731
        m = proj(sub.matrix)
        clean = SynthBasis(sub.names, m.T.reshape(-1, 478, 3), m, sub.unit_to_facs)
        one = AUSolver(clean, ridge=1e-3, upper=None, landmark_weights=landmark_weights() * keep,
                       realign_anchors=r["anchors"])
        np.testing.assert_allclose(got[idx], one.solve_activations(tmpl + d, tmpl), rtol=1e-6, atol=1e-8)
    with pytest.raises(DataError, match="leave AUs"):
        AUSolver(basis, regions=regions[:1])
    with pytest.raises(DataError, match="two regions"):
        AUSolver(basis, regions=[regions[0], {**regions[1], "aus": list(NAMES)}])
    with pytest.raises(DataError, match="not a landmark id"):
        AUSolver(basis, regions=[{**regions[0], "above_landmark": 999}, regions[1]])


def test_shipped_basis_solves_brows_in_their_own_region() -> None:
    """Mechanism: the shipped basis names its regions and the AU stage's solver honours them: the brow AUs
    (AU01/AU02/AU04) do not change when landmarks below the nasal root that are not their anchors move (a mouth
    motion), and the other AUs do not change when the brows and forehead move."""
    from rtface.au.basis import load_au_basis
    from rtface.stages.aus import build_solver

    basis = load_au_basis()
    regions = basis.meta["solve_regions"]
    assert regions[0]["aus"] == ["AU01", "AU02", "AU04"]
    tmpl = load_canonical_model().vertices_cm
    solver, _ = build_solver(AUParams(noise_path="none"), basis, tmpl)
    brow = [basis.names.index(a) for a in regions[0]["aus"]]
    rest = [i for i in range(len(basis.names)) if i not in brow]
    rng = np.random.default_rng(2)
    d = rng.normal(scale=0.15, size=(478, 3))
    base = solver.solve_activations(tmpl + d, tmpl)
    low = tmpl[:, 1] < tmpl[168, 1]
    low[list(regions[0]["anchors"])] = False
    mouth = d.copy()
    mouth[low] += rng.normal(scale=0.3, size=(int(low.sum()), 3))
    np.testing.assert_allclose(solver.solve_activations(tmpl + mouth, tmpl)[brow], base[brow], atol=1e-6)
    high = tmpl[:, 1] > tmpl[168, 1]
    high[list(regions[1]["anchors"])] = False
    brows = d.copy()
    brows[high, 1] -= 0.4
    np.testing.assert_allclose(solver.solve_activations(tmpl + brows, tmpl)[rest], base[rest], atol=1e-6)


# ------------------------------------------------------------------------------------------- noise-aware read-out
def _noise_model(seed: int = 3, rank: int = 6, scale: float = 0.02):
    from rtface.au.solve import NoiseModel

    rng = np.random.default_rng(seed)
    factor = scale * rng.normal(size=(rank, 1434))
    resid = (0.5 * scale) ** 2 * rng.uniform(0.5, 1.5, 1434)
    return NoiseModel(factor, resid, {})


def test_noise_propagation_matches_monte_carlo() -> None:
    """Analytic per-AU noise std (through the re-aligned, weighted normal equations) = empirical std of solves."""
    basis = synth_basis()
    nm = _noise_model()
    tmpl = load_canonical_model().vertices_cm
    s = AUSolver(basis, ridge=0.01, upper=None, landmark_weights=landmark_weights(0.25, 0.0), noise=nm,
                 realign_anchors=(10, 9, 8, 151, 6, 168, 197, 195, 33, 263, 133, 362))
    rng = np.random.default_rng(4)
    n = 4000
    noise = rng.normal(size=(n, nm.factor.shape[0])) @ nm.factor + rng.normal(size=(n, 1434)) * np.sqrt(nm.resid_var)
    c = noise @ s._AtW.T  # (n, K)
    unconstrained = np.linalg.solve(s._G, c.T).T * s.unit_to_facs
    np.testing.assert_allclose(c.std(0), s.noise_sigma_c, rtol=0.06)
    np.testing.assert_allclose(unconstrained.std(0), s.noise_facs, rtol=0.06)
    # soft threshold: reading = clip(a * unit_to_facs - t * noise_facs, 0, 5)
    act = np.linspace(0.0, 1.0, len(NAMES))
    np.testing.assert_allclose(s.to_facs(act, 1.5), np.clip(act * s.unit_to_facs - 1.5 * s.noise_facs, 0, 5),
                               rtol=1e-6)
    assert s.solve(tmpl, tmpl, noise_t=1.0).max() == 0.0


def test_l1_term_equals_reference_qp() -> None:
    """noise_z adds lambda_k = 2 z sigma_c,k: same minimiser as the NumPy box-QP reference with c - z sigma_c;
    an AU whose correlation with the displacement is below z sigma_c stays off."""
    from rtface.kernels.nnls import box_qp_ref

    basis = synth_basis()
    nm = _noise_model()
    tmpl = load_canonical_model().vertices_cm
    s = AUSolver(basis, ridge=1e-3, upper=None, noise=nm, noise_z=2.0)
    facs = np.zeros(len(NAMES))
    facs[[2, 8]] = [3.0, 4.0]
    canon = _canonical(basis, facs, 0.01, seed=5).astype(np.float64)
    d = (canon - tmpl).reshape(-1)
    c = s._AtW @ d
    ref = box_qp_ref(s._G, c - 2.0 * s.noise_sigma_c, lower=np.zeros(len(NAMES)))
    np.testing.assert_allclose(s.solve_activations(canon, tmpl), ref, atol=1e-7)
    np.testing.assert_allclose(s.solve_activations(canon, tmpl, noise_z=0.0),
                               box_qp_ref(s._G, c, lower=np.zeros(len(NAMES))), atol=1e-7)
    # a lone AU whose c is 1.5 sigma_c stays off at z = 2, turns on at z = 1
    k = 5
    a = 1.5 * s.noise_sigma_c[k] / (s._G[k, k] - s.ridge_abs)  # G carries the ridge
    lone = tmpl + (basis.matrix[:, k] * a).reshape(478, 3)
    c1 = s._AtW @ (lone - tmpl).reshape(-1)
    assert c1[k] == pytest.approx(1.5 * s.noise_sigma_c[k], rel=1e-6)
    assert s.solve_activations(lone, tmpl, noise_z=2.0)[k] == 0.0
    assert s.solve_activations(lone, tmpl, noise_z=1.0)[k] > 0.0
    with pytest.raises(ConfigError):
        AUSolver(basis, noise_z=1.0)  # no noise model
    with pytest.raises(ConfigError):
        AUSolver(basis, noise=nm, noise_t=-0.5)


def test_stage_floors_from_jitter_and_shape_frames() -> None:
    """Mechanism: the floor subtracted is what expressionless faces read; it shrinks as the person's shape rests on
    more frames and is the jitter part alone with an explicit neutral."""
    basis = synth_basis()
    nm = _noise_model(scale=0.05)
    stage = AUStage("aus", AUParams(ridge=1e-5, face_model_path="none", publish_floor=True), basis=basis, noise=nm)
    stage.open()
    facs = np.zeros(len(NAMES))
    facs[[2, 8]] = [3.0, 4.5]
    res = _frame(0, [_face(1, _canonical(basis, facs))])
    stage.process(np.zeros((4, 4, 3), np.uint8), res)
    floor = res.faces[0].extras["au_floor"]
    assert np.all(floor >= 0) and np.all(floor < 2.0) and floor.max() > 0
    np.testing.assert_allclose(res.faces[0].au_intensity, np.clip(facs - floor, 0, 5), atol=0.05)
    assert np.all(stage.floors_for(2.0) >= stage.floors_for(float("inf")) - 1e-9)  # neutral jitter adds
    off = AUStage("aus", AUParams(noise_path="none", face_model_path="none"), basis=basis)
    off.open()
    assert np.all(off.floors_for(0.0) == 0)  # nothing modelled: no floor
    with pytest.raises(ConfigError):
        AUStage("aus", AUParams(noise_path="/nonexistent/noise.json"), basis=basis).open()


def test_stage_population_floors_shrink_with_shape_frames() -> None:
    """Mechanism, shipped face model and basis: a single frame gets the population's identity floor, refined shapes
    get less, an explicit neutral none."""
    stage = AUStage("aus", AUParams(marginal_readout=False))
    stage.open()
    f0, f8, finf = stage.floors_for(0.0), stage.floors_for(8.0), stage.floors_for(float("inf"))
    assert np.all(f0 >= f8 - 1e-6) and np.all(f8 >= finf - 1e-6) and f0.sum() > 2 * finf.sum()
    assert np.all(stage.floors_for(0.0, 30.0, 0.0, 0.0) >= f0 - 1e-6)  # a turned head adds the pose residual


def test_stage_pose_floor_per_axis() -> None:
    """Mechanism, shipped face model (reads the floor model's pose units): the pose part of the floors is, per AU,
    the larger of the combined residual's part and the per-axis residuals' parts (each scaled by |angle| / 30 deg)
    in quadrature, so nodding and turning by the same angle add different floors."""
    stage = AUStage("aus", AUParams(marginal_readout=False))
    stage.open()
    fm = stage._floors
    inf = float("inf")
    base = stage.floors_for(inf)
    pop = load_population_model()
    for angles in ((30.0, 0.0, 0.0), (0.0, 30.0, 0.0), (15.0, -15.0, 0.0), (0.0, 9.0, 21.0)):
        comb = (round(pop.pose_residual_scale(*angles), 1) * fm._pose_unit(None)) ** 2
        axes = sum((round(s, 1) * fm._pose_unit(a)) ** 2
                   for a, s in enumerate(pop.pose_residual_axis_scales(*angles)))
        want = np.minimum(np.sqrt(base ** 2 + np.maximum(comb, axes)), 5.0)
        np.testing.assert_allclose(stage.floors_for(inf, *angles), want, atol=1e-6)
    assert not np.allclose(fm._pose_unit(0), fm._pose_unit(1))


def _moving_face(params: AUParams, pop, poses: list, still: bool) -> tuple[list[Face], AUStage]:
    """One face (the template, i.e. neutral) at 30 fps with these head poses through a fresh stage using ``pop``."""
    stage = AUStage("aus", params, population=pop)
    stage.open()
    faces = []
    for i, pose in enumerate(poses):
        face = _face(1, stage._template.astype(np.float32))
        face.pose = pose
        res = FrameResult(FrameMeta(i, 0, i * 33_333_333, 640, 480, "test", still=still), [face])
        stage.process(np.zeros((4, 4, 3), np.uint8), res)
        faces.append(face)
    return faces, stage


def test_stage_approach_floor_grows_with_approach_rate_only() -> None:
    """Mechanism (a face model with hand-set approach gains): in a sequence, a face moving towards the camera gets
    gain x rate added to its floors in quadrature; moving away, a still and approach_floor_scale 0 add nothing."""
    import dataclasses

    from rtface.facemodel.population import load_population_model
    from rtface.records import HeadPose

    pop = load_population_model()
    gains = np.zeros(len(pop.floor_au_names))
    gains[list(pop.floor_au_names).index("AU05")] = 8.0
    pop = dataclasses.replace(pop, approach_floor_gain=gains)

    def run(distances: list[float], still: bool = False, scale: float = 1.0) -> tuple[list[Face], AUStage]:
        return _moving_face(AUParams(publish_floor=True, approach_floor_scale=scale, marginal_readout=False), pop,
                            [HeadPose(0.0, 0.0, 0.0, 0.0, 0.0, d, 1.0, np.eye(3)) for d in distances], still)

    rate = 0.5  # 1/s: ln distance falls by rate / 30 per frame
    towards = [60.0 * math.exp(-rate * i / 30) for i in range(40)]
    faces, stage = run(towards)
    k = stage.names.index("AU05")
    base = stage.floors_for(float(faces[-1].shape_frames))
    assert faces[0].extras["approach_rate"] == 0.0  # no rate on the first frame of a track
    assert faces[-1].extras["approach_rate"] == pytest.approx(rate, rel=0.02)  # low-pass settled (tau 0.15 s)
    want = min(math.hypot(base[k], 8.0 * faces[-1].extras["approach_rate"]), 5.0)
    assert faces[-1].extras["au_floor"][k] == pytest.approx(want, rel=1e-5)
    others = np.arange(len(stage.names)) != k
    np.testing.assert_allclose(faces[-1].extras["au_floor"][others], base[others], rtol=1e-6)  # gain 0 there
    away, _ = run(towards[::-1])
    assert away[-1].extras["approach_rate"] < 0
    np.testing.assert_allclose(away[-1].extras["au_floor"], stage.floors_for(float(away[-1].shape_frames)),
                               rtol=1e-6)
    stills, st = run(towards, still=True)
    assert stills[-1].extras["approach_rate"] == 0.0
    np.testing.assert_allclose(stills[-1].extras["au_floor"], st.floors_for(0.0), rtol=1e-6)
    off, st = run(towards, scale=0.0)
    np.testing.assert_allclose(off[-1].extras["au_floor"], st.floors_for(float(off[-1].shape_frames)), rtol=1e-6)
    with pytest.raises(ConfigError):
        AUStage("aus", AUParams(approach_tau_s=-1.0))


def test_stage_turning_floor_grows_with_rotation_speed_per_axis() -> None:
    """Mechanism (a face model with hand-set turning gains): in a sequence, a rotating head gets gain x low-passed
    speed per axis added to its floors in quadrature (yaw gains act on yaw speed only); a head held still, a still
    and turn_floor_scale 0 add nothing."""
    import dataclasses

    from rtface.facemodel.population import load_population_model
    from rtface.records import HeadPose

    pop = load_population_model()
    gains = np.zeros((3, len(pop.floor_au_names)))
    gains[0, list(pop.floor_au_names).index("AU07")] = 0.05  # FACS per deg/s of yaw
    gains[1, list(pop.floor_au_names).index("AU25")] = 0.08  # ... of pitch
    pop = dataclasses.replace(pop, turn_floor_gain=gains)

    def run(yaws: list[float], still: bool = False, scale: float = 1.0) -> tuple[list[Face], AUStage]:
        return _moving_face(AUParams(publish_floor=True, turn_floor_scale=scale, marginal_readout=False), pop,
                            [HeadPose(y, 0.0, 0.0, 0.0, 0.0, 50.0, 1.0, np.eye(3)) for y in yaws], still)

    turning = [-15.0 + 30.0 * i / 30 for i in range(45)]  # 30 deg/s of yaw for 1.5 s
    faces, stage = run(turning)
    k7, k25 = stage.names.index("AU07"), stage.names.index("AU25")
    last = faces[-1]
    speed = last.extras["turn_speed_deg_s"]
    assert faces[0].extras["turn_speed_deg_s"] == (0.0, 0.0, 0.0)  # no speed on the first frame of a track
    assert speed[0] == pytest.approx(30.0, rel=0.02) and speed[1] == speed[2] == 0.0  # low-pass settled
    base = stage.floors_for(float(last.shape_frames), last.pose.yaw_deg)
    assert last.extras["au_floor"][k7] == pytest.approx(min(math.hypot(base[k7], 0.05 * speed[0]), 5.0), rel=1e-5)
    others = np.arange(len(stage.names)) != k7
    np.testing.assert_allclose(last.extras["au_floor"][others], base[others], rtol=1e-6)  # pitch gain: no pitch
    held, st = run([20.0] * 45)
    np.testing.assert_allclose(held[-1].extras["au_floor"], st.floors_for(float(held[-1].shape_frames), 20.0),
                               rtol=1e-6)
    stills, st = run(turning, still=True)
    np.testing.assert_allclose(stills[-1].extras["au_floor"], st.floors_for(0.0, turning[-1], still=True), rtol=1e-6)
    off, st = run(turning, scale=0.0)
    np.testing.assert_allclose(off[-1].extras["au_floor"],
                               st.floors_for(float(off[-1].shape_frames), turning[-1]), rtol=1e-6)
    with pytest.raises(ConfigError):
        AUStage("aus", AUParams(turn_floor_scale=-1.0))


def test_noise_model_file(tmp_path: Path) -> None:
    import json

    from rtface.au.solve import DEFAULT_NOISE_PATH, load_noise_model

    bad = tmp_path / "noise.json"
    bad.write_text(json.dumps({"factor_cm": [[0.0] * 10], "resid_var_cm2": [0.0] * 1434}))
    with pytest.raises(DataError, match="factor_cm"):
        load_noise_model(bad)
    bad.write_text("{not json")
    with pytest.raises(DataError):
        load_noise_model(bad)
    if DEFAULT_NOISE_PATH.exists():
        nm = load_noise_model()
        assert nm.factor.shape[1] == 1434 and nm.resid_var.shape == (1434,)
        assert 0.01 < nm.meta["pooled_per_landmark_std_cm"]["median"] < 0.1
        s = AUSolver(synth_basis(), noise=nm)
        assert np.all(np.isfinite(s.noise_facs)) and np.all(s.noise_facs > 0)


def test_presence_per_au_thresholds() -> None:
    from rtface.au.presence import PresenceTracker

    t = PresenceTracker(2, on_threshold=np.array([1.0, 2.0]), off_threshold=np.array([0.5, 1.5]),
                        clear_threshold=5.0, on_s=0.0, off_s=0.0)
    t.update(0, np.zeros(2), 0.0)
    np.testing.assert_array_equal(t.update(0, np.array([1.5, 1.5]), 0.1), [True, False])
    np.testing.assert_array_equal(t.update(0, np.array([0.7, 2.5]), 0.2), [True, True])
    np.testing.assert_array_equal(t.update(0, np.array([0.4, 1.4]), 0.3), [False, False])
    with pytest.raises(ConfigError):
        PresenceTracker(2, on_threshold=np.array([1.0, 1.0]), off_threshold=np.array([0.5, 1.5]))
    with pytest.raises(ConfigError):
        PresenceTracker(2, on_threshold=np.ones(3))


def test_marginalised_solver_equals_joint_least_squares_with_identity_integrated_out() -> None:
    """Mechanism, pure linear algebra: the marginalised read-out's unconstrained estimate equals the joint least
    squares of d ~ B a + F^T b with prior b ~ N(0, I) and residual sd s (the b block of the augmented system
    ridge-penalised by s^2), on one region without re-alignment, ridge 0."""
    rng = np.random.default_rng(5)
    m, k, r, sd = 478 * 3, 4, 6, 0.08
    basis = type("B", (), {"names": ("A1", "A2", "A3", "A4"), "matrix": rng.standard_normal((m, k)) * 0.1,
                           "unit_to_facs": np.ones(k), "meta": {}})()
    factor = rng.standard_normal((r, m)) * 0.05
    solver = AUSolver(basis, ridge=0.0, upper=None, marginal=(factor, sd))
    d = rng.standard_normal(m) * 0.1
    est = solver.readout_facs() @ d
    aug = np.hstack([basis.matrix, factor.T])
    reg = np.zeros(k + r)
    reg[k:] = sd * sd
    joint = np.linalg.solve(aug.T @ aug + np.diag(reg), aug.T @ d)[:k]
    np.testing.assert_allclose(est, joint, rtol=1e-6, atol=1e-9)
    plain = AUSolver(basis, ridge=0.0, upper=None)
    assert not np.allclose(plain.readout_facs() @ d, est)  # the identity directions change the read-out
    # along an identity direction alone the marginalised read-out moves much less than the plain one
    dz = factor[0]
    assert np.abs(solver.readout_facs() @ dz).sum() < 0.2 * np.abs(plain.readout_facs() @ dz).sum()
    with pytest.raises(ConfigError, match="marginal"):
        AUSolver(basis, marginal=(factor[:, :10], sd))
    with pytest.raises(ConfigError, match="marginal sd"):
        AUSolver(basis, marginal=(factor, 0.0))


def test_stage_single_frame_floors_below_range_with_shipped_model() -> None:
    """Shipped face model, basis and default config: on a single photo no AU's floor reaches its range (the plain
    read-out's identity floor is 5 for AU05/AU07/AU17); per AU the read-out whose full-weight gain per unit of floor
    is larger is the one used on a still, and the published floor is that read-out's."""
    stage = AUStage("aus", AUParams())
    stage.open()
    assert stage._msolver is not None
    f0 = stage.floors_for(0.0, still=True)
    assert f0.max() < 5.0, dict(zip(stage.names, f0.round(2)))
    np.testing.assert_allclose(stage.floors_for(0.0), stage._floors.floors(0.0, 0.0, 0.0, 0.0))  # sequences: plain
    plain = AUStage("aus", AUParams(marginal_readout=False))
    plain.open()
    p0 = plain.floors_for(0.0)
    assert p0.max() >= 5.0  # what the plain read-out alone gives on a single photo
    m0 = stage._mfloors.floors(0.0, 0.0, 0.0, 0.0)
    use = stage._gain[1] * p0 > stage._gain[0] * m0
    np.testing.assert_allclose(f0, np.where(use, m0, p0))
    assert not use[stage.names.index("AU06")]  # the real smile reads no AU06 through the marginalised read-out
    assert not use[stage.names.index("AU12")]


def test_stage_publishes_which_read_out_each_au_used() -> None:
    """Shipped path mechanism: with publish_floor the stage publishes au_floor and au_marginal (bool per AU); a
    still is read with the single-frame choice, a sequence frame with the plain read-out."""
    stage = AUStage("aus", AUParams(publish_floor=True))
    stage.open()
    face = _face(1, stage._template.astype(np.float32), ready=False)
    res = FrameResult(FrameMeta(0, 0, 0, 640, 480, "test", still=True), [face])
    stage.process(np.zeros((4, 4, 3), np.uint8), res)
    mask = face.extras["au_marginal"]
    assert mask.dtype == bool and mask.shape == (len(stage.names),) and mask.any() and not mask.all()
    np.testing.assert_allclose(face.extras["au_floor"], stage.floors_for(0.0, still=True), rtol=1e-6)
    seq = _face(2, stage._template.astype(np.float32), ready=False)
    stage.process(np.zeros((4, 4, 3), np.uint8), FrameResult(FrameMeta(1, 0, 0, 640, 480, "test"), [seq]))
    assert not seq.extras["au_marginal"].any()  # a sequence frame: the plain read-out
    assert float(face.au_intensity.sum()) == 0.0  # the template itself reads nothing


def test_stage_au06_smile_prior_only_where_au06_cannot_be_measured() -> None:
    """Mechanism, shipped face model and basis: with the person's face unknown (a still) AU06 is raised to
    au06_smile_prior x AU12 x the identity share still unknown along AU06 (1 on a still) and the inferred amount is
    published; with an explicit neutral (share 0) the measurement stands alone; 0 turns it off."""
    def read(params: AUParams, still: bool, frames: float) -> Face:
        stage = AUStage("aus", params)
        stage.open()
        k12 = stage.names.index("AU12")
        disp = np.asarray(stage._solver._AtW[k12]).reshape(478, 3)  # any displacement the plain read-out sees as AU12
        face = _face(1, (stage._template + 0.5 * disp / np.abs(disp).max()).astype(np.float32))
        face.shape_frames = frames
        stage.process(np.zeros((4, 4, 3), np.uint8),
                      FrameResult(FrameMeta(0, 0, 0, 640, 480, "test", still=still), [face]))
        face.extras["names"] = stage.names
        face.extras["share"] = stage._floors.identity_share(frames)
        return face

    on = read(AUParams(publish_floor=True), True, 0.0)
    names = on.extras["names"]
    k06, k12 = names.index("AU06"), names.index("AU12")
    assert on.au_intensity[k12] > 0.5
    assert on.extras["share"][k06] == pytest.approx(1.0, abs=0.05)
    assert on.au_intensity[k06] == pytest.approx(0.8 * on.au_intensity[k12] * on.extras["share"][k06], rel=1e-5)
    assert on.extras["au06_inferred"] > 0
    off = read(AUParams(publish_floor=True, au06_smile_prior=0.0), True, 0.0)
    assert off.extras["au06_inferred"] == 0.0 and off.au_intensity[k06] < on.au_intensity[k06]
    known = read(AUParams(publish_floor=True), False, float("inf"))
    assert known.extras["share"][k06] == 0.0 and known.extras["au06_inferred"] == 0.0
    with pytest.raises(ConfigError, match="au06_smile_prior"):
        AUStage("aus", AUParams(au06_smile_prior=-1.0))


def test_stage_untaken_rest_offset_bounds_the_share_term_per_au() -> None:
    """Mechanism, shipped face model and basis: the floor's untaken-offset term (``neutral_au_share``) covers per AU
    at most what the person's own untaken rest offset reads while the head holds still: a rest offset that reads
    nothing leaves the floor of a fully taken neutral, one that reads a lot, or a moving head, keeps the population's
    term; the AU06 smile prior uses the same per-AU share; the stage computes the offset's reading from
    ``Face.rest_au_offset_cm``."""
    stage = AUStage("aus", AUParams(publish_floor=True))
    stage.open()
    fm = stage._floors
    k = len(stage.names)
    none, pop, zero = fm.floors(3.0, 0, 0, 0, 0.5), fm.floors(3.0, 0, 0, 0, 0.0), np.zeros(k)
    np.testing.assert_allclose(fm.floors(3.0, 0, 0, 0, 0.5, zero), pop)
    np.testing.assert_allclose(fm.floors(3.0, 0, 0, 0, 0.5, np.full(k, 5.0)), none, rtol=1e-9)
    some = np.zeros(k)
    some[stage.names.index("AU12")] = 0.3
    mixed = fm.floors(3.0, 0, 0, 0, 0.5, some)
    assert np.all(mixed >= pop - 1e-12) and np.all(mixed <= none + 1e-12)
    assert mixed[stage.names.index("AU12")] > pop[stage.names.index("AU12")]
    np.testing.assert_allclose(fm.unknown_share(3.0, 0.5, zero), fm.identity_share(3.0))
    np.testing.assert_allclose(fm.unknown_share(3.0, 0.5, np.full(k, 5.0)), fm.unknown_share(3.0, 0.5))
    # a moving head (steady 0) keeps the population's term; half-steady lies in between
    np.testing.assert_allclose(fm.floors(3.0, 0, 0, 0, 0.5, zero, steady=0.0), none, rtol=1e-9)
    half = fm.floors(3.0, 0, 0, 0, 0.5, zero, steady=0.5)
    assert np.all(half >= pop - 1e-12) and np.all(half <= none + 1e-12) and half.sum() > pop.sum()
    np.testing.assert_allclose(fm.unknown_share(3.0, 0.5, zero, steady=0.0), fm.unknown_share(3.0, 0.5))

    k12 = stage.names.index("AU12")
    disp = np.asarray(stage._solver._AtW[k12]).reshape(478, 3)
    offset = (0.5 * disp / np.abs(disp).max()).astype(np.float32)  # a rest offset the read-out sees as AU12

    def floor_for(rest_offset: np.ndarray | None) -> np.ndarray:
        face = _face(7, stage._template.astype(np.float32), ready=False)
        face.shape_frames = 3.0
        face.extras["neutral_au_share"] = 0.5
        face.rest_au_offset_cm = rest_offset
        stage.process(np.zeros((4, 4, 3), np.uint8), FrameResult(FrameMeta(0, 0, 0, 640, 480, "test"), [face]))
        return face.extras["au_floor"]

    flat = floor_for(np.zeros((478, 3), np.float32))
    np.testing.assert_allclose(flat, pop, rtol=1e-5)
    smiley = floor_for(offset)
    assert smiley[k12] > flat[k12] + 0.05  # this person's own offset reads as AU12: the floor keeps covering it
    np.testing.assert_allclose(floor_for(None), none, rtol=1e-5)  # no offset handed over: the population's term
