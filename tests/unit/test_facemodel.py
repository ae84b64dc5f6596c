"""Population face model, identity posterior and per-person shape (pure logic; the shipped model file for loading)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rtface.errors import DataError
from rtface.facemodel.identity import IdentityPosterior, quantise_frames
from rtface.facemodel.person import PersonParams, PersonShape
from rtface.facemodel.pose_features import FEATURE_NAMES, features, features_batch
from rtface.facemodel.population import DEFAULT_PATH, load_population_model


def _dense(factor: np.ndarray, detail: float, obs_sd: float, n: float) -> tuple[np.ndarray, np.ndarray]:
    """Reference: posterior gain C (C + s I)^-1 and posterior covariance with dense matrices."""
    c = factor.T @ factor + detail ** 2 * np.eye(factor.shape[1])
    s = obs_sd ** 2 / n
    gain = c @ np.linalg.inv(c + s * np.eye(len(c)))
    return gain, c - gain @ c


def test_identity_posterior_matches_dense_reference() -> None:
    rng = np.random.default_rng(0)
    m, k = 60, 7
    factor = rng.normal(size=(k, m)) * 0.1
    detail = 0.03
    post = IdentityPosterior(factor, detail, obs_sd_cm=0.04)
    r = rng.normal(size=m) * 0.1
    readout = rng.normal(size=(5, m))
    for n in (1.0, 4.0, 2.0 ** 4.5):
        gain, cov = _dense(factor, detail, 0.04, quantise_frames(n))
        np.testing.assert_allclose(post.posterior_mean(r, n), gain @ r, atol=1e-10)
        np.testing.assert_allclose(post.posterior_var_along(readout, n), np.diag(readout @ cov @ readout.T),
                                   rtol=1e-8, atol=1e-12)
    prior = np.diag(readout @ (factor.T @ factor + detail ** 2 * np.eye(m)) @ readout.T)
    np.testing.assert_allclose(post.posterior_var_along(readout, 0.0), prior, rtol=1e-10)
    assert np.all(post.posterior_mean(r, 0.0) == 0.0)
    np.testing.assert_allclose(post.posterior_mean(r, math.inf), r)
    assert np.all(post.posterior_var_along(readout, math.inf) == 0.0)
    v = [post.posterior_var_along(readout, n).sum() for n in (0.0, 1.0, 4.0, 16.0, 64.0)]
    assert all(a > b for a, b in zip(v, v[1:]))  # more frames, less left unknown


def test_quantise_frames_ladder() -> None:
    assert quantise_frames(0.5) == 0.0 and quantise_frames(1.0) == 1.0 and math.isinf(quantise_frames(math.inf))
    assert quantise_frames(3.0) == pytest.approx(2 ** 1.5) and quantise_frames(2 ** 1.5 - 1e-9) == pytest.approx(2 ** 1.25)
    assert len({quantise_frames(n) for n in np.linspace(1, 1000, 5000)}) <= 41


def _person(m: int = 12) -> tuple[PersonShape, np.ndarray]:
    mean = np.zeros((m, 3))
    post = IdentityPosterior(np.zeros((1, 3 * m)), np.full(3 * m, 0.2), obs_sd_cm=0.02)
    return PersonShape(mean, post, PersonParams(sample_every_s=0.1, window_s=30.0, update_every=1), recent=5), mean


def test_opening_expression_does_not_become_the_neutral() -> None:
    """40 frames of a strong expression (high score), then neutral frames (low score): the estimate follows the
    neutral frames as soon as there are enough of them, because frames are ranked by their expression score."""
    p, _ = _person()
    neutral = np.full((12, 3), 0.1)
    smile = neutral + 0.5
    t = 0.0
    for _ in range(40):
        p.observe(t, smile, score=3.0, yaw_deg=0.0, pitch_deg=0.0)
        t += 1 / 30
    assert np.abs(p.neutral_cm - smile).max() < 0.1  # only expressive frames seen so far: they are the best guess
    settled = None
    for i in range(80):
        p.observe(t, neutral, score=0.2, yaw_deg=0.0, pitch_deg=0.0)
        t += 1 / 30
        if settled is None and np.abs(p.neutral_cm - neutral).max() < 0.02:
            settled = i / 30
    assert settled is not None and settled <= 1.0
    assert p.frames > 0 and not p.locked


def test_person_shape_sampling_pose_gate_lock_and_time_reset() -> None:
    p, mean = _person()
    assert p.observe(0.0, mean + 1.0, 0.0, 0.0, 0.0)
    assert not p.observe(0.05, mean, 0.0, 0.0, 0.0)  # within sample_every_s: not sampled
    assert not p.observe(1.0, mean, 0.0, yaw_deg=50.0, pitch_deg=0.0)  # too turned (beyond max_angle_deg 45)
    p.remember(mean + 7.0)
    p.set_explicit(mean + 2.0)
    assert p.locked and math.isinf(p.frames)
    assert not p.observe(2.0, mean, 0.0, 0.0, 0.0)
    np.testing.assert_allclose(p.neutral_cm, mean + 2.0)
    np.testing.assert_allclose(p.recent_frontal(1)[0], mean + 7.0)
    p.unlock()
    assert not p.locked
    p.observe(5.0, mean, 0.0, 0.0, 0.0)
    p.observe(1.0, mean, 0.0, 0.0, 0.0)  # media time went back (a looped file): start again
    assert p.samples_seen >= 1 and p.frames <= 1.0


def test_turned_face_still_refines_its_shape() -> None:
    """Mechanism: a face held at 40 deg of shape yaw (a real face turned 29-31 deg of camera yaw reads 38-40 deg
    through the weak-perspective shape pose) is sampled: with the old 30-deg gate such a face never got a person model and kept the
    single-photo floors for the whole session."""
    p, mean = _person()
    t = 0.0
    for _ in range(30):
        p.observe(t, mean + 0.1, score=0.2, yaw_deg=40.0, pitch_deg=8.0)
        t += 1 / 30
    assert p.samples_seen >= 9 and p.frames > 1.0
    np.testing.assert_allclose(p.neutral_cm, mean + 0.1, atol=0.03)


def test_pose_features() -> None:
    assert features(0, 0, 0, 100.0).shape == (len(FEATURE_NAMES),) and not features(0, 0, 0, 50.0).any()
    b = features_batch(np.array([[10.0, -5.0, 3.0], [0.0, 0.0, 0.0]]), np.array([120.0, 80.0]))
    np.testing.assert_allclose(b[0], features(10.0, -5.0, 3.0, 120.0))


def test_shipped_population_model_loads_and_is_cached() -> None:
    pop = load_population_model()
    assert pop is load_population_model("")
    assert pop.mean_cm.shape == (478, 3) and pop.pose_fields.shape == (len(FEATURE_NAMES), 478, 3)
    k = pop.identity_modes.shape[0]
    assert pop.identity_factor().shape == (k, 1434) and pop.identity_scale > 0
    np.testing.assert_allclose(pop.expected_neutral(0, 0, 0, 100), pop.mean_cm)
    assert pop.pose_residual_scale(0, 0, 0) == 0.0 < pop.pose_residual_scale(30, 0, 0)
    ax = pop.pose_residual_axis_factor
    assert ax.shape[0] == 3 and ax.shape[2:] == (478, 3) and np.abs(ax).sum(axis=(1, 2, 3)).min() > 0
    np.testing.assert_allclose(pop.pose_residual_axis_scales(-15, 30, 0), [0.5, 1.0, 0.0])
    assert pop.single_frame_floor_for(("AU12", "AU06")).shape == (2,)
    assert pop.single_frame_floor_for(("AU99",)) is None
    floor_m, gain = pop.marginal_readout_for(("AU12", "AU06", "AU25"))
    assert pop.marginal_sd_cm > 0 and floor_m.shape == (3,) and gain.shape == (2, 3)
    assert (floor_m < 5).all() and (gain >= 0).all() and (gain <= 5).all()
    assert pop.marginal_readout_for(("AU99",)) is None
    assert not pop.mean_cm.flags.writeable


def test_population_model_errors_name_file_and_field(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_population_model(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        load_population_model(junk)
    with np.load(DEFAULT_PATH) as z:
        fields = {k: z[k] for k in z.files}
    for drop, match in (("pose_fields", "pose_fields"), ("mean_cm", "mean_cm")):
        bad = tmp_path / f"no_{drop}.npz"
        np.savez(bad, **{k: v for k, v in fields.items() if k != drop})
        with pytest.raises(DataError, match=rf"no_{drop}\.npz.*{match}"):
            load_population_model(bad)
    bad = tmp_path / "axes.npz"
    np.savez(bad, **{**fields, "pose_residual_axis_factor": fields["pose_residual_axis_factor"][:2]})
    with pytest.raises(DataError, match=r"axes\.npz.*pose_residual_axis_factor"):
        load_population_model(bad)
    bad = tmp_path / "gain.npz"
    np.savez(bad, **{**fields, "readout_gain": fields["readout_gain"][:1]})
    with pytest.raises(DataError, match=r"gain\.npz.*readout_gain"):
        load_population_model(bad)
    bad = tmp_path / "sd.npz"
    np.savez(bad, **{**fields, "marginal_sd_cm": np.array(0.0)})
    with pytest.raises(DataError, match=r"sd\.npz.*marginal_sd_cm"):
        load_population_model(bad)
    old = tmp_path / "old.npz"  # a model from before the marginalised read-out: it is simply off
    np.savez(old, **{k: v for k, v in fields.items() if k not in ("marginal_sd_cm", "marginal_single_frame_floor",
                                                                   "readout_gain")})
    assert load_population_model(old).marginal_readout_for(("AU12",)) is None
    no_turn = {k: v for k, v in fields.items() if k != "turn_floor_gain"}  # from before the turning floor: off
    np.savez(old, **no_turn)
    assert not load_population_model(old).turn_floor_for(("AU12", "AU99")).any()
    k = len(fields["floor_au_names"])
    for name, value in (("turn_shape", np.zeros((2, k))), ("turn_negative", -np.ones((3, k)))):
        bad = tmp_path / f"{name}.npz"
        np.savez(bad, **{**no_turn, "turn_floor_gain": value})
        with pytest.raises(DataError, match=rf"{name}\.npz.*turn_floor_gain"):
            load_population_model(bad)
    good = tmp_path / "turn.npz"
    gains = np.zeros((3, k))
    gains[1, list(fields["floor_au_names"]).index("AU25")] = 0.03
    np.savez(good, **{**no_turn, "turn_floor_gain": gains})
    got = load_population_model(good).turn_floor_for(("AU99", "AU25"))
    np.testing.assert_array_equal(got, [[0.0, 0.0], [0.0, 0.03], [0.0, 0.0]])
    bad = tmp_path / "version.npz"
    np.savez(bad, **{**fields, "format_version": np.array(7)})
    with pytest.raises(DataError, match="format_version"):
        load_population_model(bad)
    bad = tmp_path / "nan.npz"
    mean = fields["mean_cm"].copy()
    mean[3, 1] = np.nan
    np.savez(bad, **{**fields, "mean_cm": mean})
    with pytest.raises(DataError, match="non-finite"):
        load_population_model(bad)


def test_person_hands_over_the_untaken_au_part_of_its_rest_offset() -> None:
    """Mechanism: with an ``au_part``, the estimate takes the AU-shaped part of the rest offset by w = n / (n + 3)
    and hands the rest, (1 - w) x au_part(shift), to the AU floors (``au_untaken_cm``); explicit neutrals and a
    reset hand over nothing."""
    m = 12
    mean = np.zeros((m, 3))
    post = IdentityPosterior(np.zeros((1, 3 * m)), np.full(3 * m, 0.2), obs_sd_cm=0.02)
    half = lambda d: 0.5 * d  # noqa: E731 - half of any displacement looks like an expression
    p = PersonShape(mean, post, PersonParams(sample_every_s=0.1, update_every=1), au_part=half)
    assert p.au_untaken_cm is None
    rest = np.full((m, 3), 0.2)
    for i in range(10):
        p.observe(0.1 * i, rest, score=0.0, yaw_deg=0.0, pitch_deg=0.0)
    w = 1.0 - p.au_share
    assert 0.0 < w < 1.0
    shift = (p.neutral_cm - mean) / (1.0 - 0.5 * (1.0 - w))  # neutral = mean + shift - (1 - w) half(shift)
    np.testing.assert_allclose(p.au_untaken_cm, (1.0 - w) * 0.5 * shift, rtol=1e-5)
    np.testing.assert_allclose(p.neutral_cm + p.au_untaken_cm, mean + shift, rtol=1e-5)
    p.set_explicit(rest)
    assert p.au_untaken_cm is None
    p.reset()
    assert p.au_untaken_cm is None
