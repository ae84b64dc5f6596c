"""The AU stage's pose floor counted from the person's rest pose (rtface.au.pose_floor, PersonShape.rest_pose_deg,
AUStage rest_pose_floor). Mechanism tests: pure functions, hand-built records."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rtface.au import pose_floor as PF
from rtface.facemodel.identity import IdentityPosterior
from rtface.facemodel.person import PersonParams, PersonShape
from rtface.records import Face, FrameMeta, FrameResult, HeadPose
from rtface.stages.aus import AUParams, AUStage


def test_turning_speeds_low_pass_each_axis() -> None:
    assert PF.turning_speeds(None, 0.0, (10.0, 0.0, 0.0)) == (0.0, 0.0, 0.0)
    state, t = (0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), 0.0
    for i in range(1, 61):  # yaw at 30 deg/s, pitch at -10 deg/s, 30 fps, 2 s
        t = i / 30
        s = PF.turning_speeds(state, t, (30.0 * t, -10.0 * t, 0.0))
        state = (t, (30.0 * t, -10.0 * t, 0.0), s)
    assert state[2] == pytest.approx((30.0, 10.0, 0.0), rel=5e-3, abs=1e-9)  # 2 s = 6.7 time constants
    assert PF.turning_speeds(state, t + 2.0, (0.0, 0.0, 0.0)) == state[2]  # a gap keeps the last speeds
    assert PF.turning_speeds(state, t, (0.0, 0.0, 0.0)) == state[2]  # no time passed


def test_steady_share_ramps_and_floor_pose() -> None:
    assert PF.steady_share(0.0, 0.0) == 1.0
    assert PF.steady_share(PF.TURNING_DEG_S, 0.0) == 0.0
    assert PF.steady_share(0.5 * (PF.STEADY_DEG_S + PF.TURNING_DEG_S), 0.0) == pytest.approx(0.5)
    assert PF.steady_share(0.0, -PF.MOVING_RATE) == 0.0  # moving away counts as moving too
    assert PF.floor_pose((30.0, -5.0, 2.0), (28.0, -4.0, 0.0), 1.0) == pytest.approx((2.0, -1.0, 2.0))
    assert PF.floor_pose((30.0, -5.0, 2.0), (28.0, -4.0, 0.0), 0.5) == pytest.approx((16.0, -3.0, 2.0))
    assert PF.floor_pose((30.0, -5.0, 2.0), None, 1.0) == (30.0, -5.0, 2.0)


def test_person_rest_pose_is_the_absorbed_mean_pose_of_its_rest_frames() -> None:
    m = 12
    mean = np.zeros((m, 3))
    post = IdentityPosterior(np.zeros((1, 3 * m)), np.full(3 * m, 0.2), obs_sd_cm=0.02)
    p = PersonShape(mean, post, PersonParams(sample_every_s=0.1, update_every=1), recent=5)
    assert np.all(p.rest_pose_deg == 0)
    for i in range(30):  # neutral frames (low score) at 30 deg yaw, expressive ones (high score) frontal
        turned = i % 2 == 0
        p.observe(i * 0.11, mean, 0.1 if turned else 3.0, 40.0, 0.0, pose_deg=(30.0, 4.0, 0.0) if turned
                  else (0.0, 0.0, 0.0))
    n = round(p.p.keep_fraction * 30)  # 9 rest frames, all of them turned ones
    w = n / (n + p.p.au_prior_frames)
    assert p.frames == pytest.approx(n * w)
    np.testing.assert_allclose(p.rest_pose_deg, w * np.array([30.0, 4.0, 0.0]), rtol=1e-9)
    p.remember(mean, (20.0, 0.0, 0.0))
    np.testing.assert_allclose(p.recent_pose(1), [20.0, 0.0, 0.0])
    p.set_explicit(mean, np.array([25.0, 1.0, 0.0]))
    np.testing.assert_allclose(p.rest_pose_deg, [25.0, 1.0, 0.0])
    p.set_explicit(mean)  # a saved neutral of unknown pose: frontal
    assert np.all(p.rest_pose_deg == 0)
    p.reset()
    assert np.all(p.rest_pose_deg == 0)


def _run(stage: AUStage, yaws: list[float], rest: tuple[float, float, float] | None, still: bool = False,
         frames: float = 9.0) -> list[Face]:
    out = []
    for i, yaw in enumerate(yaws):
        face = Face(1, 0.9, np.zeros(4, np.float32), np.zeros((478, 3), np.float32),
                    canonical_cm=stage._template.astype(np.float32), shape_frames=frames)
        face.pose = HeadPose(yaw, 0.0, 0.0, 0.0, 0.0, 60.0, 1.0, np.eye(3))
        if rest is not None:
            face.extras["rest_pose_deg"] = rest
        stage.process(np.zeros((4, 4, 3), np.uint8), FrameResult(
            FrameMeta(i, 0, i * 33_333_333, 640, 480, "test", still=still), [face]))
        out.append(face)
    return out


def test_stage_pose_floor_counts_from_the_rest_pose_while_the_head_holds_still() -> None:
    """Mechanism, shipped face model: a face held at 30 deg of yaw whose neutral was learned there gets the floors
    of a frontal face; turning fast, on a still or with rest_pose_floor off it gets those of 30 deg."""
    stage = AUStage("aus", AUParams(publish_floor=True, marginal_readout=False))
    stage.open()
    held = _run(stage, [30.0] * 10, (30.0, 0.0, 0.0))
    np.testing.assert_allclose(held[-1].extras["au_floor"], stage.floors_for(9.0), rtol=1e-6)
    turned = stage.floors_for(9.0, 30.0)
    assert turned.sum() > held[-1].extras["au_floor"].sum() + 1.0  # the shipped model's yaw residual is large
    stage2 = AUStage("aus", AUParams(publish_floor=True, marginal_readout=False))
    stage2.open()
    fast = _run(stage2, [30.0 + 2.0 * (i % 2) for i in range(20)], (30.0, 0.0, 0.0))  # 60 deg/s jitter-like swings
    assert fast[-1].extras["au_floor"].sum() > held[-1].extras["au_floor"].sum() + 1.0
    off = AUStage("aus", AUParams(publish_floor=True, marginal_readout=False, rest_pose_floor=False))
    off.open()
    np.testing.assert_allclose(_run(off, [30.0] * 10, (30.0, 0.0, 0.0))[-1].extras["au_floor"], turned, rtol=1e-6)
    st = AUStage("aus", AUParams(publish_floor=True, marginal_readout=False))
    st.open()
    np.testing.assert_allclose(_run(st, [30.0] * 3, (30.0, 0.0, 0.0), still=True, frames=0.0)[-1]
                               .extras["au_floor"], st.floors_for(0.0, 30.0), rtol=1e-6)
    assert math.isfinite(float(held[-1].extras["au_floor"].sum()))
